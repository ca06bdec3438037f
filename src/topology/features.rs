//! KKP's cluster features (`Cluster.spec.features`) and feature gates
//! (`KubermaticConfiguration.spec.featureGates`), and what kkp does instead for each one it does
//! not honour. When a renderer starts honouring one, its row here changes.

use super::schema::edit_distance;

/// KKP's cluster features (`sdk/apis/kubermatic/v1/cluster.go`), each with what kkp does when it
/// is enabled.
const CLUSTER_FEATURES: &[(&str, &str)] = &[
    (
        "etcdLauncher",
        "kkp runs etcd with KKP's plain etcd command line, without etcd-launcher; the feature only sets the member count (clusterSize) and the nine-member etcd SANs",
    ),
    // Honoured: the provider's external cloud-controller-manager (src/render/cloud_controller.rs).
    ("externalCloudProvider", ""),
    // Honoured: `--cluster-name` for the cloud-controller-managers KKP passes it to.
    ("ccmClusterName", ""),
    ("vsphereCSIClusterID", "kkp sets the cloud-config's cluster-id to the cluster name, but renders no vSphere CSI configuration"),
    ("apiserverNetworkPolicy", "kkp renders no NetworkPolicies for the apiserver"),
    ("kubeSystemNetworkPolicies", "kkp does not write into user clusters; these NetworkPolicies come from KKP's user-cluster controller"),
    ("encryptionAtRest", "kkp configures no encryption at rest; the apiserver stores Secrets in etcd unencrypted"),
];

/// KKP's feature gates (`pkg/features/features.go`), each with what kkp does when it is enabled.
const FEATURE_GATES: &[(&str, &str)] = &[
    (
        "EtcdLauncher",
        "kkp runs etcd with KKP's plain etcd command line, without etcd-launcher; the gate only sets the member count (clusterSize) and the nine-member etcd SANs",
    ),
    ("EtcdDataCorruptionChecks", "kkp starts etcd without the corruption-check flags"),
    // Honoured: the apiserver authenticates with the OIDC issuer (structured authentication).
    ("OpenIDAuthPlugin", ""),
    ("VerticalPodAutoscaler", "kkp sets up no VerticalPodAutoscaler for control-plane components"),
    ("DynamicResourceAllocation", "kkp enables no DynamicResourceAllocation feature gates on control-plane components"),
    ("OIDCKubeCfgEndpoint", "it concerns KKP's API, which kkp does not run"),
    ("PrometheusEndpoint", "it concerns KKP's API, which kkp does not run"),
    ("UserClusterMLA", "kkp deploys no MLA stack"),
    ("HeadlessInstallation", "it concerns KKP's installer; kkp installs no dashboard or API either way"),
    ("DevelopmentEnvironment", "it concerns KKP's controllers, which kkp does not run"),
    ("DisableUserSSHKey", "kkp manages no user SSH keys either way"),
    ("ExternalApplicationCatalogManager", "it concerns KKP's application catalog, which kkp does not manage"),
    ("HTTPRouteGatewaySync", "it concerns KKP's master ingress, which kkp does not manage"),
    ("KubeVirtAcceleratorQuota", "it concerns KKP's quota accounting, which kkp does not run"),
];

/// Notes for the enabled cluster features kkp does not honour, and for names KKP does not know
/// (which KKP ignores too): `(feature, message)`.
pub fn cluster_feature_notes<'a>(features: impl IntoIterator<Item = (&'a String, &'a bool)>) -> Vec<(String, String)> {
    notes(features, CLUSTER_FEATURES, "spec.features", "cluster feature")
}

/// Notes for the enabled feature gates kkp does not honour, and for names KKP does not know.
pub fn feature_gate_notes<'a>(gates: impl IntoIterator<Item = (&'a String, &'a bool)>) -> Vec<(String, String)> {
    notes(gates, FEATURE_GATES, "spec.featureGates", "feature gate")
}

fn notes<'a>(
    given: impl IntoIterator<Item = (&'a String, &'a bool)>,
    table: &[(&'static str, &'static str)],
    field: &str,
    what: &str,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, enabled) in given {
        match table.iter().find(|(known, _)| known == name) {
            Some((_, instead)) if *enabled && !instead.is_empty() => {
                out.push((name.clone(), format!("{field}.{name} is on, but {instead}")))
            }
            Some(_) => {}
            None => {
                let closest = table
                    .iter()
                    .map(|(known, _)| (edit_distance(&name.to_ascii_lowercase(), &known.to_ascii_lowercase()), *known))
                    .filter(|(distance, known)| *distance <= (known.len() / 3).max(2))
                    .min()
                    .map(|(_, known)| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                out.push((name.clone(), format!("{field}.{name} is not a KKP {what}; KKP and kkp ignore it{closest}")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn map(entries: &[(&str, bool)]) -> BTreeMap<String, bool> {
        entries.iter().map(|(k, v)| ((*k).to_string(), *v)).collect()
    }

    #[test]
    fn enabled_features_kkp_does_not_honour_say_what_kkp_does() {
        let features = map(&[("externalCloudProvider", true), ("apiserverNetworkPolicy", false), ("encryptionAtRest", true)]);
        let notes = cluster_feature_notes(&features);
        let names: Vec<&str> = notes.iter().map(|(n, _)| n.as_str()).collect();
        // kkp renders the external cloud-controller-manager, so that feature gives no note.
        assert_eq!(names, ["encryptionAtRest"]);
        assert_eq!(
            notes[0].1,
            "spec.features.encryptionAtRest is on, but kkp configures no encryption at rest; the apiserver stores Secrets in etcd unencrypted"
        );
    }

    #[test]
    fn unknown_names_are_noted_with_the_closest_known_one() {
        let notes = feature_gate_notes(&map(&[("EtcdLauncer", true), ("SomethingElse", true)]));
        assert_eq!(
            notes[0].1,
            "spec.featureGates.EtcdLauncer is not a KKP feature gate; KKP and kkp ignore it (did you mean `EtcdLauncher`?)"
        );
        assert_eq!(notes[1].1, "spec.featureGates.SomethingElse is not a KKP feature gate; KKP and kkp ignore it");
    }

    #[test]
    fn the_etcd_launcher_gate_says_what_it_still_decides() {
        let notes = feature_gate_notes(&map(&[("EtcdLauncher", true)]));
        assert!(notes[0].1.contains("without etcd-launcher") && notes[0].1.contains("member count"), "{}", notes[0].1);
    }
}
