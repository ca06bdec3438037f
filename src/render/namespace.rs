//! The control-plane namespace `cluster-<name>`.

use super::{Body, DesiredNode, manifest};
use crate::address::Address;
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Namespace `cluster-<name>`; it waits for its datacenter's logical node.
pub fn cluster_namespace(cluster: &Cluster) -> DesiredNode {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(cluster.namespace()),
            labels: Some(BTreeMap::from([
                (super::meta::MANAGED_BY.0.to_string(), super::meta::MANAGED_BY.1.to_string()),
                ("cluster".to_string(), cluster.name.clone()),
            ])),
            ..Default::default()
        },
        ..Default::default()
    };
    DesiredNode {
        address: Address::cluster_namespace(&cluster.name),
        seed: cluster.seed.clone(),
        cluster: Some(cluster.name.clone()),
        role: crate::role::Role::Namespace,
        deps: vec![Address::datacenter(&cluster.seed, &cluster.datacenter)],
        body: Body::Object { manifest: manifest(&namespace), fingerprints: Vec::new() },
    }
}
