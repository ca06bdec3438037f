//! KKP's field names per API type (`kkp_fields.txt`), to tell a KKP field kkp does not model
//! (a note) from a field KKP does not have at all (an error with the closest KKP name).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

/// How a field's value is looked into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A scalar, a free-form map or a type kkp has no names for: not looked into.
    Opaque,
    /// A typed block.
    Block(&'static str),
    /// A list of typed blocks.
    List(&'static str),
    /// A map with free keys whose values are typed blocks.
    Map(&'static str),
}

type Fields = Vec<(&'static str, Shape)>;

fn types() -> &'static HashMap<&'static str, Fields> {
    static TYPES: OnceLock<HashMap<&'static str, Fields>> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types = HashMap::new();
        for line in include_str!("kkp_fields.txt").lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let Some(name) = words.next() else { continue };
            let fields = words
                .map(|word| match word.split_once(':') {
                    None => (word, Shape::Opaque),
                    Some((field, ty)) => {
                        let shape = if let Some(inner) = ty.strip_prefix("[]") {
                            Shape::List(inner)
                        } else if let Some(inner) = ty.strip_prefix("{}") {
                            Shape::Map(inner)
                        } else {
                            Shape::Block(ty)
                        };
                        (field, shape)
                    }
                })
                .collect();
            types.insert(name, fields);
        }
        types
    })
}

fn fields(ty: &str) -> &'static [(&'static str, Shape)] {
    types().get(ty).map(Vec::as_slice).unwrap_or_default()
}

/// The KKP field names of a type (e.g. `ClusterSpec`), in KKP's order.
pub fn field_names(ty: &str) -> Vec<&'static str> {
    fields(ty).iter().map(|(name, _)| *name).collect()
}

/// A key KKP does not have at its place in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// Map keys from the document root to the unknown key (list indices left out), for `locate`.
    pub keys: Vec<String>,
    /// The path as printed, e.g. `spec.machineNetworks[0].gatway`.
    pub path: String,
    /// The KKP type holding the key.
    pub parent_type: &'static str,
    /// The closest KKP field name there, if one is close enough to be a likely typo.
    pub suggestion: Option<&'static str>,
}

/// Every key of `value` (a whole document of KKP type `root`) that KKP does not have. Keys under
/// an unknown key are not looked into.
pub fn unknown_fields(root: &'static str, value: &Value) -> Vec<Unknown> {
    let mut out = Vec::new();
    walk(root, value, &mut Vec::new(), &mut String::new(), &mut out);
    out
}

fn walk(ty: &'static str, value: &Value, keys: &mut Vec<String>, path: &mut String, out: &mut Vec<Unknown>) {
    let Value::Object(map) = value else { return };
    let known = fields(ty);
    for (key, child) in map {
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        keys.push(key.clone());
        match known.iter().find(|(name, _)| name == key) {
            None => out.push(Unknown { keys: keys.clone(), path: path.clone(), parent_type: ty, suggestion: closest(key, known) }),
            Some((_, shape)) => descend(*shape, child, keys, path, out),
        }
        keys.pop();
        path.truncate(len);
    }
}

fn descend(shape: Shape, value: &Value, keys: &mut Vec<String>, path: &mut String, out: &mut Vec<Unknown>) {
    match (shape, value) {
        (Shape::Opaque, _) => {}
        (Shape::Block(ty), _) => walk(ty, value, keys, path, out),
        (Shape::List(ty), Value::Array(items)) => {
            for (index, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{index}]"));
                walk(ty, item, keys, path, out);
                path.truncate(len);
            }
        }
        (Shape::Map(ty), Value::Object(entries)) => {
            for (key, item) in entries {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                keys.push(key.clone());
                walk(ty, item, keys, path, out);
                keys.pop();
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Whether a path serde skipped (dot-separated, list indices as numbers) names a KKP field of
/// `root`. Paths through opaque values count as known.
pub fn is_kkp_field(root: &'static str, path: &str) -> bool {
    let mut shape = Shape::Block(root);
    for segment in path.split('.') {
        shape = match shape {
            Shape::Opaque => return true,
            Shape::List(ty) if segment.parse::<usize>().is_ok() => Shape::Block(ty),
            Shape::Map(ty) => Shape::Block(ty),
            Shape::Block(ty) | Shape::List(ty) => match fields(ty).iter().find(|(name, _)| *name == segment) {
                Some((_, next)) => *next,
                None => return false,
            },
        };
    }
    true
}

/// The known name closest to `key` by edit distance (ignoring case first), if it is close
/// enough to be a typo of it: at most a third of the longer name's length, and at least 2.
fn closest(key: &str, known: &[(&'static str, Shape)]) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    known
        .iter()
        .map(|(name, _)| (edit_distance(&lower, &name.to_ascii_lowercase()), edit_distance(key, name), *name))
        .filter(|(distance, _, name)| *distance <= (key.len().max(name.len()) / 3).max(2))
        .min()
        .map(|(_, _, name)| name)
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_referenced_type_has_names() {
        for (ty, fields) in types() {
            for (field, shape) in fields {
                if let Shape::Block(inner) | Shape::List(inner) | Shape::Map(inner) = shape {
                    assert!(types().contains_key(inner), "{ty}.{field} refers to {inner}, which has no line");
                }
            }
        }
        assert!(field_names("ClusterSpec").contains(&"componentsOverride"));
        assert!(field_names("CloudSpec").contains(&"vmwareclouddirector"));
    }

    #[test]
    fn typos_get_the_closest_name_at_their_place() {
        let doc = json!({
            "apiVersion": "kubermatic.k8c.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "abc", "labels": {"anything": "goes"}},
            "spec": {
                "humanReadablename": "x",
                "exposestrategy": "NodePort",
                "componentsOverride": {"etcd": {"clustersize": 3}, "apiserver": {"replicas": 2}},
                "cloud": {"dc": "x", "awz": {}},
                "machineNetworks": [{"gatway": "10.0.0.1"}],
                "features": {"whatever": true},
            },
            "status": {"free": {"form": 1}},
        });
        let unknown = unknown_fields("Cluster", &doc);
        let found: Vec<(&str, Option<&str>)> = unknown.iter().map(|u| (u.path.as_str(), u.suggestion)).collect();
        assert_eq!(
            found,
            vec![
                ("spec.cloud.awz", Some("aws")),
                ("spec.componentsOverride.etcd.clustersize", Some("clusterSize")),
                ("spec.exposestrategy", Some("exposeStrategy")),
                ("spec.humanReadablename", Some("humanReadableName")),
                ("spec.machineNetworks[0].gatway", Some("gateway")),
            ]
        );
        assert_eq!(unknown[1].keys, ["spec", "componentsOverride", "etcd", "clustersize"]);
        assert_eq!(unknown[1].parent_type, "EtcdStatefulSetSettings");
    }

    #[test]
    fn far_off_names_get_no_suggestion() {
        let unknown = unknown_fields("Seed", &json!({"spec": {"somethingElseEntirely": 1}}));
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].suggestion, None);
    }

    #[test]
    fn datacenter_keys_are_free_but_their_contents_are_checked() {
        let doc = json!({"spec": {"datacenters": {"any-name": {"spec": {"hetzner": {"datacenter": "x"}, "hetzenr": {}}}}}});
        let unknown = unknown_fields("Seed", &doc);
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].path, "spec.datacenters.any-name.spec.hetzenr");
        assert_eq!(unknown[0].suggestion, Some("hetzner"));
    }

    #[test]
    fn skipped_paths_are_classified() {
        assert!(is_kkp_field("Seed", "spec.nodeportProxy"));
        assert!(is_kkp_field("Cluster", "spec.componentsOverride.controllerManager"));
        assert!(is_kkp_field("Cluster", "spec.machineNetworks.0.gateway"));
        assert!(is_kkp_field("KubermaticConfiguration", "spec.versions.updates.0.automatic"));
        assert!(!is_kkp_field("Cluster", "spec.clustersize"));
    }

    #[test]
    fn every_field_kkp_reads_is_a_kkp_field() {
        let seed = "spec.country spec.location spec.kubeconfig.name spec.kubeconfig.namespace spec.kubeconfig.fieldPath \
            spec.seedDNSOverwrite spec.exposeStrategy spec.defaultComponentSettings.apiserver.replicas \
            spec.proxySettings.httpProxy spec.proxySettings.noProxy spec.datacenters.dc.country spec.datacenters.dc.location \
            spec.datacenters.dc.spec.apiServerServiceType spec.datacenters.dc.spec.hetzner.datacenter metadata.name metadata.namespace";
        let cluster = "spec.humanReadableName spec.version spec.cloud.dc spec.cloud.providerName spec.cloud.aws.credentialsReference.name \
            spec.exposeStrategy spec.clusterNetwork.pods.cidrBlocks spec.clusterNetwork.services.cidrBlocks \
            spec.clusterNetwork.nodeCidrMaskSizeIPv4 spec.clusterNetwork.dnsDomain spec.clusterNetwork.proxyMode \
            spec.clusterNetwork.tunnelingAgentIP spec.clusterNetwork.konnectivityEnabled spec.clusterNetwork.nodeLocalDNSCacheEnabled \
            spec.componentsOverride.apiserver.replicas spec.componentsOverride.etcd.clusterSize spec.componentsOverride.etcd.storageClass \
            spec.componentsOverride.etcd.diskSize spec.componentsOverride.prometheus.replicas spec.features spec.pause spec.pauseReason \
            spec.kubernetesDashboard.enabled spec.cniPlugin.type spec.cniPlugin.version";
        let configuration = "spec.ingress.domain spec.exposeStrategy spec.userCluster.apiserverReplicas spec.userCluster.etcdVolumeSize \
            spec.userCluster.nodePortRange spec.featureGates spec.versions.versions spec.versions.default spec.versions.updates.0.from \
            spec.versions.updates.0.to spec.versions.updates.0.automatic spec.versions.updates.0.automaticNodeUpdate \
            spec.versions.providerIncompatibilities.0.provider spec.versions.providerIncompatibilities.0.version \
            spec.versions.providerIncompatibilities.0.condition spec.versions.providerIncompatibilities.0.operation spec.caBundle.name";
        for (root, paths) in [("Seed", seed), ("Cluster", cluster), ("KubermaticConfiguration", configuration)] {
            for path in paths.split_whitespace() {
                assert!(is_kkp_field(root, path), "{root} {path}");
            }
        }
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
