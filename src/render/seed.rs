//! Seed-level nodes: the logical seed, its datacenters, and namespace `kubermatic`.

use super::{Body, DesiredNode, manifest};
use crate::address::Address;
use crate::object::Kind;
use crate::role::Role;
use crate::topology::Seed;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;
use std::collections::BTreeMap;

/// The seed's nodes.
pub fn render(seed: &Seed) -> Vec<DesiredNode> {
    let seed_address = Address::seed(&seed.name);
    let mut nodes = vec![DesiredNode {
        address: seed_address.clone(),
        seed: seed.name.clone(),
        cluster: None,
        role: Role::Seed,
        deps: Vec::new(),
        body: Body::Logical {
            settings: json!({
                "country": seed.country,
                "location": seed.location,
                "exposeStrategy": seed.expose_strategy,
                "dnsName": seed.dns_name,
            }),
        },
    }];
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some("kubermatic".into()),
            labels: Some(BTreeMap::from([(super::meta::MANAGED_BY.0.to_string(), super::meta::MANAGED_BY.1.to_string())])),
            ..Default::default()
        },
        ..Default::default()
    };
    nodes.push(DesiredNode {
        address: Address::seed_object(&seed.name, Kind::Namespace, "kubermatic"),
        seed: seed.name.clone(),
        cluster: None,
        role: Role::Namespace,
        deps: vec![seed_address.clone()],
        body: Body::Object { manifest: manifest(&namespace), fingerprints: Vec::new() },
    });
    for dc in seed.datacenters.values() {
        nodes.push(DesiredNode {
            address: Address::datacenter(&seed.name, &dc.name),
            seed: seed.name.clone(),
            cluster: None,
            role: Role::Datacenter,
            deps: vec![seed_address.clone()],
            body: Body::Logical { settings: serde_json::to_value(dc).expect("plain data") },
        });
    }
    nodes
}
