//! Seed-level nodes: the logical seed, its datacenters, and namespace `kubermatic`.

use super::{Body, DesiredNode, manifest};
use crate::address::Address;
use crate::object::Kind;
use crate::role::Role;
use crate::topology::{Datacenter, Seed};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
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
            body: Body::Logical { settings: datacenter_settings(dc) },
        });
    }
    nodes
}

/// What plans and state record of a datacenter: its settings without the password of vSphere's
/// `infraManagementUser`, which kkp never uses and which must not reach a plan.
fn datacenter_settings(dc: &Datacenter) -> Value {
    let mut settings = serde_json::to_value(dc).expect("plain data");
    if let Some(user) = settings.pointer_mut("/providerSettings/infraManagementUser").and_then(Value::as_object_mut)
        && user.contains_key("password")
    {
        user.insert("password".into(), Value::from("(redacted)"));
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datacenters_infra_management_password_is_not_recorded() {
        let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/topology.yaml");
        let mut seed = crate::topology::load(&[path]).unwrap().seeds.into_values().next().unwrap();
        let dc = seed.datacenters.values_mut().next().unwrap();
        dc.provider_settings =
            json!({"endpoint": "https://vc.example.com", "infraManagementUser": {"username": "infra", "password": "dc-secret"}});
        let bodies: Vec<Value> = render(&seed).into_iter().map(|n| crate::plan::recorded_value(&n.body)).collect();
        let recorded = serde_json::to_string(&bodies).unwrap();
        assert!(!recorded.contains("dc-secret"));
        assert!(recorded.contains(r#""infraManagementUser":{"password":"(redacted)","username":"infra"}"#), "{recorded}");
    }
}
