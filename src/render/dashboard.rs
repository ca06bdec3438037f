//! The Kubernetes dashboard of a user cluster, run in the seed: Deployment
//! `kubernetes-dashboard` (KKP `pkg/resources/kubernetes-dashboard`), only while the cluster's
//! `kubernetesDashboard.enabled` is on (KKP's default).

use super::DesiredNode;
use super::component::{self, Component, SAFE_TO_EVICT, app_labels};
use super::meta::{mount, secret_volume};
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, EmptyDirVolumeSource, PodAffinityTerm, PodAntiAffinity, PodSpec, SecurityContext, Volume,
    VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// Deployment name, `app` label and container name.
pub const NAME: &str = "kubernetes-dashboard";
/// KKP's dashboard release for every Kubernetes version it supports (1.32 to 1.36).
pub const IMAGE: &str = "docker.io/kubernetesui/dashboard:v2.7.0";
const KUBECONFIG_SECRET: &str = "kubernetes-dashboard-kubeconfig";
const TMP: &str = "tmp-volume";

/// The dashboard Deployment, if the cluster has the dashboard on.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    if !cluster.kubernetes_dashboard {
        return Vec::new();
    }
    let container = Container {
        name: NAME.into(),
        image: Some(IMAGE.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["/dashboard".into()]),
        args: Some(
            ["--kubeconfig", "/etc/kubernetes/kubeconfig/kubeconfig", "--namespace", "kubernetes-dashboard", "--enable-insecure-login"]
                .map(String::from)
                .to_vec(),
        ),
        ports: Some(vec![ContainerPort { container_port: 9090, protocol: Some("TCP".into()), ..Default::default() }]),
        resources: Some(component::resources("100m", "256Mi", "250m", "512Mi")),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_user: Some(1001),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig"),
            VolumeMount { name: TMP.into(), mount_path: "/tmp".into(), ..Default::default() },
        ]),
        ..Default::default()
    };
    // Two replicas, preferably on different nodes.
    let affinity = Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    label_selector: Some(LabelSelector { match_labels: Some(app_labels(NAME)), ..Default::default() }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..Default::default()
                },
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![
        Component {
            cluster,
            name: NAME,
            replicas: 2,
            extra_pod_labels: BTreeMap::new(),
            annotations: BTreeMap::from([(SAFE_TO_EVICT.to_string(), TMP.to_string())]),
            pod: PodSpec {
                containers: vec![container],
                volumes: Some(vec![
                    secret_volume(KUBECONFIG_SECRET),
                    Volume { name: TMP.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
                ]),
                affinity: Some(affinity),
                ..Default::default()
            },
            wrap: Some((NAME, Vec::new())),
            strategy: None,
            secrets: vec![KUBECONFIG_SECRET],
            configmaps: Vec::new(),
            image_pull_secret: true,
        }
        .into_node(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::render::component::tests::{
        assert_matches_golden, cluster_with, find, fixture_cluster, golden, golden_command, rendered_command,
    };

    const GOLDEN: &str = "deployment-aws-1.33.0-kubernetes-dashboard.yaml";

    #[test]
    fn matches_kkps_golden_deployment() {
        let rendered = find(&render(&fixture_cluster()), Kind::Deployment, NAME).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        assert_eq!(rendered["spec"]["replicas"], 2);
        let pod = |v: &serde_json::Value| v["spec"]["template"]["spec"]["affinity"].clone();
        assert_eq!(pod(&rendered), pod(&golden(GOLDEN)));
    }

    #[test]
    fn only_when_the_cluster_has_the_dashboard_on() {
        assert!(render(&cluster_with(|c| c.kubernetes_dashboard = false)).is_empty());
        assert_eq!(render(&fixture_cluster()).len(), 1);
    }
}
