//! Shared pieces of rendered objects: metadata, labels, volumes, fingerprint annotations.

use super::{DesiredNode, FingerprintRef};
use crate::address::Address;
use crate::object::{KNOWN_AFTER_APPLY, Kind};
use crate::role::Role;
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, KeyToPath, SecretVolumeSource, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use std::collections::BTreeMap;

/// Label every object kkp writes carries, so an operator (and `kkp import`) can find them.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "kkp");
/// Prefix of the pod-template annotations holding mounted Secrets' fingerprints.
pub const FINGERPRINT_ANNOTATION_PREFIX: &str = "fingerprint.kkp.k8c.io/";

/// KKP's component labels: `app=<component>`, `cluster=<cluster>`.
pub fn selector_labels(component: &str, cluster: &Cluster) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), component.to_string()), ("cluster".to_string(), cluster.name.clone())])
}

/// Selector labels plus the managed-by label.
pub fn object_labels(component: &str, cluster: &Cluster) -> BTreeMap<String, String> {
    let mut labels = selector_labels(component, cluster);
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels
}

/// Metadata of an object in the cluster's namespace.
pub fn object_meta(name: &str, component: &str, cluster: &Cluster) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(cluster.namespace()),
        labels: Some(object_labels(component, cluster)),
        ..Default::default()
    }
}

/// Metadata of an object KKP labels with nothing: only kkp's managed-by label.
pub fn managed_meta(name: &str, cluster: &Cluster) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(cluster.namespace()),
        labels: Some(BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())])),
        ..Default::default()
    }
}

/// A label selector on KKP's component labels.
pub fn selector(component: &str, cluster: &Cluster) -> LabelSelector {
    LabelSelector { match_labels: Some(selector_labels(component, cluster)), ..Default::default() }
}

/// A volume from a Secret.
pub fn secret_volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource { secret_name: Some(name.into()), ..Default::default() }),
        ..Default::default()
    }
}

/// A volume with only the CA certificate of a CA Secret: pods verify with it but never see
/// the CA's key.
pub fn ca_cert_volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(name.into()),
            items: Some(vec![KeyToPath { key: "ca.crt".into(), path: "ca.crt".into(), ..Default::default() }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Volumes for mounted Secrets; CA Secrets contribute only their certificate.
pub fn secret_volumes(secrets: &[&str], cas: &[&str]) -> Vec<Volume> {
    secrets.iter().map(|s| if cas.contains(s) { ca_cert_volume(s) } else { secret_volume(s) }).collect()
}

/// A volume from a ConfigMap.
pub fn configmap_volume(name: &str) -> Volume {
    Volume { name: name.into(), config_map: Some(ConfigMapVolumeSource { name: name.into(), ..Default::default() }), ..Default::default() }
}

/// A read-only mount.
pub fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), read_only: Some(true), ..Default::default() }
}

/// Pod-template annotations with a placeholder fingerprint per mounted Secret, and the refs
/// that say where each fingerprint goes (pointer relative to the manifest root).
pub fn fingerprint_annotations(cluster: &Cluster, secrets: &[&str]) -> (BTreeMap<String, String>, Vec<FingerprintRef>) {
    fingerprint_slots(secrets.iter().map(|secret| (secret.to_string(), Address::cluster_object(&cluster.name, Kind::Secret, secret))))
}

/// As [`fingerprint_annotations`], for mounted ConfigMaps (`<prefix>configmap-<name>`), so a
/// changed configuration or CA bundle rolls the pods that read it at start.
pub fn config_map_fingerprint_annotations(cluster: &Cluster, config_maps: &[&str]) -> (BTreeMap<String, String>, Vec<FingerprintRef>) {
    fingerprint_slots(
        config_maps.iter().map(|name| (format!("configmap-{name}"), Address::cluster_object(&cluster.name, Kind::ConfigMap, name))),
    )
}

fn fingerprint_slots(slots: impl Iterator<Item = (String, Address)>) -> (BTreeMap<String, String>, Vec<FingerprintRef>) {
    let mut annotations = BTreeMap::new();
    let mut refs = Vec::new();
    for (suffix, mounted) in slots {
        let key = format!("{FINGERPRINT_ANNOTATION_PREFIX}{suffix}");
        refs.push(FingerprintRef {
            pointer: format!("/spec/template/metadata/annotations/{}", key.replace('~', "~0").replace('/', "~1")),
            mounted,
        });
        annotations.insert(key, KNOWN_AFTER_APPLY.to_string());
    }
    (annotations, refs)
}

/// A node in the cluster's namespace.
pub fn cluster_node(cluster: &Cluster, kind: Kind, name: &str, role: Role, deps: Vec<Address>, body: super::Body) -> DesiredNode {
    let mut deps = deps;
    deps.insert(0, Address::cluster_namespace(&cluster.name));
    DesiredNode {
        address: Address::cluster_object(&cluster.name, kind, name),
        seed: cluster.seed.clone(),
        cluster: Some(cluster.name.clone()),
        role,
        deps,
        body,
    }
}

/// The address of a Secret in the cluster's namespace.
pub fn secret(cluster: &Cluster, name: &str) -> Address {
    Address::cluster_object(&cluster.name, Kind::Secret, name)
}

/// The address of another object in the cluster's namespace.
pub fn object(cluster: &Cluster, kind: Kind, name: &str) -> Address {
    Address::cluster_object(&cluster.name, kind, name)
}

/// `https://etcd-<i>.etcd.<ns>.svc.cluster.local.:2379` for every member: fully qualified, as
/// KKP writes them, so the pod's DNS search list is never tried first.
pub fn etcd_client_endpoints(cluster: &Cluster) -> Vec<String> {
    (0..cluster.etcd.cluster_size).map(|i| format!("https://etcd-{i}.etcd.{}.svc.cluster.local.:2379", cluster.namespace())).collect()
}
