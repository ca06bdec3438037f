//! EtcdBackupConfig `default-backups`: KKP's default etcd backups of a cluster, rendered when
//! its seed names a default backup destination (KKP `pkg/resources/etcd/backupconfig.go`).
//! KKP's backup controller on the seed acts on it; kkp only declares it.

use super::meta::{self, MANAGED_BY};
use super::{Body, DesiredNode};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::Cluster;
use serde_json::{Value, json};

/// The name KKP gives the config and its backups.
pub const NAME: &str = "default-backups";

/// The config, or nothing when the seed has no default destination.
pub fn render(cluster: &Cluster) -> Option<DesiredNode> {
    let backups = cluster.etcd_backups.as_ref()?;
    let mut labels = serde_json::Map::from_iter([(MANAGED_BY.0.to_string(), Value::from(MANAGED_BY.1))]);
    if let Some(project) = &cluster.project_id {
        labels.insert("project-id".into(), project.as_str().into());
    }
    let mut spec = json!({
        // KKP's reference also carries the Cluster object's uid; kkp creates no Cluster
        // objects, so the reference is by name (docs/architecture.md).
        "cluster": {"apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster", "name": cluster.name},
        "destination": backups.destination,
        "name": NAME,
        "schedule": format!("@every {}m", backups.interval_minutes),
    });
    if let Some(keep) = backups.keep {
        spec["keep"] = keep.into();
    }
    let manifest = json!({
        "apiVersion": Kind::EtcdBackupConfig.api_version(),
        "kind": "EtcdBackupConfig",
        "metadata": {"name": NAME, "namespace": cluster.namespace(), "labels": labels},
        "spec": spec,
    });
    // Backups are of a running etcd: the controller finds it through the StatefulSet's pods.
    let deps = vec![meta::object(cluster, Kind::StatefulSet, "etcd")];
    Some(meta::cluster_node(
        cluster,
        Kind::EtcdBackupConfig,
        NAME,
        Role::BackupConfig,
        deps,
        Body::Object { manifest, fingerprints: Vec::new() },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::component::tests::{cluster_with, golden};
    use crate::topology::EtcdBackups;

    #[test]
    fn only_seeds_with_a_default_destination_back_clusters_up() {
        assert!(render(&cluster_with(|c| c.etcd_backups = None)).is_none());
    }

    #[test]
    fn the_config_is_kkps() {
        let cluster = cluster_with(|c| {
            c.project_id = Some("my-project".into());
            c.etcd_backups = Some(EtcdBackups { destination: "s3".into(), interval_minutes: 20, keep: None });
        });
        let Body::Object { manifest, .. } = render(&cluster).unwrap().body else { panic!("not an object") };
        let theirs = golden("etcdbackupconfig-aws-1.33.0-default-backups.yaml");
        for field in ["name", "schedule"] {
            assert_eq!(manifest["spec"][field], theirs["spec"][field], "{field}");
        }
        assert_eq!(manifest["spec"]["cluster"]["name"], theirs["spec"]["cluster"]["name"]);
        assert_eq!(manifest["spec"]["destination"], "s3");
        assert_eq!(manifest["metadata"]["labels"]["project-id"], theirs["metadata"]["labels"]["project-id"]);
        assert!(manifest["spec"].get("keep").is_none());
    }

    #[test]
    fn interval_and_count_come_through() {
        let cluster =
            cluster_with(|c| c.etcd_backups = Some(EtcdBackups { destination: "s3".into(), interval_minutes: 90, keep: Some(5) }));
        let Body::Object { manifest, .. } = render(&cluster).unwrap().body else { panic!("not an object") };
        assert_eq!(manifest["spec"]["schedule"], "@every 90m");
        assert_eq!(manifest["spec"]["keep"], 5);
    }
}
