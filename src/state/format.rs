//! The state file envelope: `format_version`, the writer's version, lineage, serial, and the
//! index. Readers accept every format up to [`FORMAT_VERSION`] and refuse newer ones; only
//! the current format is written. Keys are sorted, so the bytes are deterministic.
//!
//! Format history: 1 had no node roles; 2 records each node's [`Role`]; 3 records each seed's
//! target (`targets`). Format 1 is upgraded on load by naming the role of the objects kkp
//! wrote then (the only place kkp reads meaning from names); formats 1 and 2 load with no
//! targets recorded, and the next apply records the target of each seed it writes to.

use super::{Error, Result, State};
use crate::role::Role;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The format this build writes.
pub const FORMAT_VERSION: u32 = 3;

#[derive(Serialize)]
struct Envelope<'a> {
    format_version: u32,
    kkp_version: &'a str,
    #[serde(flatten)]
    state: &'a State,
}

#[derive(Deserialize)]
struct Version {
    format_version: Option<u32>,
}

/// Serialises a state in the current format.
pub fn to_bytes(state: &State) -> Vec<u8> {
    let envelope = Envelope { format_version: FORMAT_VERSION, kkp_version: env!("CARGO_PKG_VERSION"), state };
    let mut bytes = serde_json::to_vec_pretty(&envelope).expect("state always serialises");
    bytes.push(b'\n');
    bytes
}

/// Parses a state file's bytes; `path` is only for messages.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<State> {
    let corrupt = |message: String| Error::Corrupt { path: path.to_path_buf(), message };
    let version: Version = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    match version.format_version {
        None => Err(corrupt("it has no format_version".into())),
        Some(found) if found > FORMAT_VERSION => Err(Error::TooNew { path: path.to_path_buf(), found, supported: FORMAT_VERSION }),
        Some(0) => Err(corrupt("format_version 0 does not exist".into())),
        Some(version) => {
            let state: State = if version == 1 {
                let mut value: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
                upgrade_v1(&mut value).map_err(corrupt)?;
                serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?
            } else {
                serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?
            };
            if state.lineage.is_empty() {
                return Err(corrupt("it has no lineage".into()));
            }
            // An entry that is not one kkp writes would be planned as an orphan and deleted.
            for (address, node) in &state.nodes {
                super::check_entry(address, node).map_err(&corrupt)?;
            }
            Ok(state)
        }
    }
}

/// Gives every node of a format-1 state the role of what kkp 0.1 wrote at that address.
fn upgrade_v1(state: &mut Value) -> std::result::Result<(), String> {
    let Some(nodes) = state.get_mut("nodes").and_then(Value::as_object_mut) else { return Ok(()) };
    for (address, node) in nodes.iter_mut() {
        let kind = node.pointer("/object/kind").and_then(Value::as_str);
        let name = node.pointer("/object/name").and_then(Value::as_str).unwrap_or_default();
        let role = match (kind, name) {
            (None, _) if address.contains("/datacenter/") => Role::Datacenter,
            (None, _) => Role::Seed,
            (Some("Namespace"), _) => Role::Namespace,
            (Some("Secret"), "ca" | "front-proxy-ca" | "openvpn-ca") => Role::CertificateAuthority,
            (Some("Secret"), "service-account-key") => Role::KeyPair,
            (Some("Secret"), _) => Role::Certificate,
            (Some("StatefulSet"), "etcd") => Role::DataStore,
            (Some("StatefulSet" | "Deployment"), _) => Role::Workload,
            (Some("Service"), _) => Role::Service,
            (Some("ConfigMap"), _) => Role::Config,
            (Some("PodDisruptionBudget"), _) => Role::DisruptionBudget,
            (Some(other), _) => return Err(format!("node {address}: kkp 0.1 never wrote a {other}")),
        };
        node["role"] = serde_json::to_value(role).expect("roles serialise");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::state::NodeState;

    #[test]
    fn round_trips_and_is_deterministic() {
        let mut state = State::new("l-1".into());
        state.serial = 7;
        for name in ["b", "a"] {
            state.nodes.insert(
                Address::seed(name),
                NodeState {
                    seed: name.into(),
                    role: crate::role::Role::Seed,
                    object: None,
                    digest: "sha256:00".into(),
                    certificate: None,
                    version: None,
                },
            );
        }
        let bytes = to_bytes(&state);
        assert_eq!(from_bytes(Path::new("s"), &bytes).unwrap(), state);
        assert_eq!(bytes, to_bytes(&from_bytes(Path::new("s"), &bytes).unwrap()));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.find("seed/a").unwrap() < text.find("seed/b").unwrap());
        assert!(text.contains("\"format_version\": 3"));
    }

    #[test]
    fn format_1_states_get_the_roles_of_what_they_hold() {
        let v1 = br#"{"format_version": 1, "lineage": "l", "serial": 3, "nodes": {
            "cluster/a/secret/ca": {"seed": "s", "object": {"apiVersion": "v1", "kind": "Secret", "namespace": "cluster-a", "name": "ca"}, "digest": "d", "certificate": {"requestDigest": "r", "fingerprint": "f"}},
            "cluster/a/statefulset/etcd": {"seed": "s", "object": {"apiVersion": "apps/v1", "kind": "StatefulSet", "namespace": "cluster-a", "name": "etcd"}, "digest": "d"},
            "seed/s/datacenter/d": {"seed": "s", "digest": "d"}}}"#;
        let state = from_bytes(Path::new("s"), v1).unwrap();
        let role = |a: &str| state.nodes[a].role;
        assert_eq!(role("cluster/a/secret/ca"), Role::CertificateAuthority);
        assert_eq!(role("cluster/a/statefulset/etcd"), Role::DataStore);
        assert_eq!(role("seed/s/datacenter/d"), Role::Datacenter);
        assert!(String::from_utf8(to_bytes(&state)).unwrap().contains("\"role\": \"data-store\""));
    }

    #[test]
    fn format_2_states_load_without_targets_and_are_written_as_3() {
        let v2 = br#"{"format_version": 2, "lineage": "l", "serial": 3, "nodes": {
            "seed/s": {"seed": "s", "role": "seed", "digest": "d"}}}"#;
        let state = from_bytes(Path::new("s"), v2).unwrap();
        assert!(state.targets.is_empty());
        assert_eq!(state.nodes.len(), 1);
        let mut state = state;
        state.targets.insert("s".into(), crate::state::SeedTarget::Dir { path: "/x/kkp-seeds".into() });
        let text = String::from_utf8(to_bytes(&state)).unwrap();
        assert!(text.contains("\"format_version\": 3") && text.contains("\"type\": \"dir\""), "{text}");
        assert_eq!(from_bytes(Path::new("s"), text.as_bytes()).unwrap(), state);
    }

    #[test]
    fn newer_formats_are_refused_with_the_fix() {
        let err = from_bytes(Path::new("kkp.state.json"), br#"{"format_version": 9, "lineage": "x", "serial": 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kkp.state.json: state format 9 was written by a newer kkp (this kkp reads formats up to 3)\n  fix: upgrade kkp"
        );
    }

    #[test]
    fn an_entry_with_an_address_that_does_not_name_its_object_is_refused() {
        let state = br#"{"format_version": 2, "lineage": "l", "serial": 3, "nodes": {
            "cluster/a/secret/cb": {"seed": "s", "role": "certificate-authority", "object": {"apiVersion": "v1", "kind": "Secret", "namespace": "cluster-a", "name": "ca"}, "digest": "d"}}}"#;
        let err = from_bytes(Path::new("kkp.state.json"), state).unwrap_err().to_string();
        assert!(err.starts_with("kkp.state.json: not a kkp state file: `cluster/a/secret/cb` does not name"), "{err}");
        assert!(err.contains("fix: "), "{err}");
        let empty = br#"{"format_version": 2, "lineage": "l", "serial": 3, "nodes": {
            "": {"seed": "s", "role": "seed", "digest": "d"}}}"#;
        assert!(from_bytes(Path::new("s"), empty).is_err());
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        let err = from_bytes(Path::new("s.json"), b"{\"format_version\": 1, \"lineage\": ").unwrap_err();
        assert!(err.to_string().starts_with("s.json: not a kkp state file"), "{err}");
    }
}
