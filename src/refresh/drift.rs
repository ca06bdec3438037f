//! Drift: the pure comparison of what kkp last applied (the state and its bodies) with what a
//! seed holds now, and how a plan takes it into account.
//!
//! [`compare`] finds, per node, an object deleted outside kkp, fields kkp applied that hold
//! other values now (naming the field managers that own them), and issued Secrets whose
//! certificate is not the one kkp recorded. [`prepare`] turns drift into a state the planner
//! plans against (so restoring is an ordinary create, update or re-issue), and [`annotate`]
//! puts the drift into the plan: its own section, reasons on the actions, and clusters blocked
//! because a CA or the service-account key changed, or their seed could not be read.

use crate::address::Address;
use crate::object::ObjectRef;
use crate::plan::diff::{self, FieldChange};
use crate::plan::{Notice, Plan, Reason};
use crate::role::Role;
use crate::state::{CertificateState, State};
use base64::Engine;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use crate::plan::drift::{Drift, DriftEntry};

/// A node whose fields differ from what kkp applied, to be confirmed by a dry-run apply.
#[derive(Debug, Clone)]
pub struct Suspect {
    /// The node.
    pub address: Address,
    /// Its seed.
    pub seed: String,
    /// What kkp last applied.
    pub applied: Value,
}

/// Whether a role's replacement must be accepted before kkp plans around it.
pub fn needs_acceptance(role: Role) -> bool {
    matches!(role, Role::CertificateAuthority | Role::KeyPair)
}

/// `live` reduced to the fields `applied` sets: what kkp's fields hold now.
pub fn project(applied: &Value, live: &Value) -> Option<Value> {
    match (applied, live) {
        (Value::Object(a), Value::Object(l)) => {
            let mut out = serde_json::Map::new();
            for (key, sub) in a {
                if let Some(found) = l.get(key).and_then(|v| project(sub, v)) {
                    out.insert(key.clone(), found);
                }
            }
            Some(Value::Object(out))
        }
        (Value::Array(a), Value::Array(l)) => {
            let named = |list: &[Value]| list.iter().all(|v| v.get("name").and_then(Value::as_str).is_some()) && !list.is_empty();
            if named(a) && named(l) {
                let by_name: HashMap<&str, &Value> = l.iter().filter_map(|v| Some((v.get("name")?.as_str()?, v))).collect();
                // kkp's entries first, in kkp's order; entries others added are kept too, so
                // they show as added.
                let mut out: Vec<Value> =
                    a.iter().filter_map(|v| by_name.get(v.get("name")?.as_str()?).and_then(|found| project(v, found))).collect();
                let ours: BTreeSet<&str> = a.iter().filter_map(|v| v.get("name")?.as_str()).collect();
                out.extend(l.iter().filter(|v| v.get("name").and_then(Value::as_str).is_some_and(|n| !ours.contains(n))).cloned());
                Some(Value::Array(out))
            } else if a.len() == l.len() {
                Some(Value::Array(a.iter().zip(l).map(|(x, y)| project(x, y).unwrap_or_else(|| y.clone())).collect()))
            } else {
                Some(live.clone())
            }
        }
        (_, other) => Some(other.clone()),
    }
}

/// The fields of `applied` that `live` holds with other values (before: applied, after: live).
pub fn changed_fields(applied: &Value, live: &Value) -> Vec<FieldChange> {
    let projected = project(applied, live).unwrap_or(Value::Null);
    diff::diff(applied, &projected)
}

/// What a server-side dry-run apply answers, without what the server stamps on every
/// object, so it compares with the live object.
pub fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["resourceVersion", "managedFields", "generation", "uid", "creationTimestamp"] {
            meta.remove(key);
        }
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    object
}

/// Field managers other than kkp that own any of `changes`' paths in `live`'s managedFields;
/// when none matches, every other manager that wrote the object.
pub fn managers_of(live: &Value, changes: &[FieldChange]) -> Vec<String> {
    let entries = live.pointer("/metadata/managedFields").and_then(Value::as_array).cloned().unwrap_or_default();
    let others: Vec<(String, BTreeSet<String>)> = entries
        .iter()
        .filter_map(|e| {
            let manager = e.get("manager")?.as_str()?;
            (manager != crate::target::kube::FIELD_MANAGER).then(|| {
                let mut paths = BTreeSet::new();
                if let Some(fields) = e.get("fieldsV1") {
                    field_paths(fields, String::new(), &mut paths);
                }
                (manager.to_string(), paths)
            })
        })
        .collect();
    let related = |a: &str, b: &str| {
        a == b
            || (a.starts_with(b) && matches!(a.as_bytes().get(b.len()), Some(b'.' | b'[')))
            || (b.starts_with(a) && matches!(b.as_bytes().get(a.len()), Some(b'.' | b'[')))
    };
    let mut named: Vec<String> = others
        .iter()
        .filter(|(_, paths)| changes.iter().any(|c| paths.iter().any(|p| related(&c.path, p))))
        .map(|(m, _)| m.clone())
        .collect();
    if named.is_empty() {
        named = others.into_iter().map(|(m, _)| m).collect();
    }
    named.sort();
    named.dedup();
    named
}

/// The leaf paths of a FieldsV1 tree, spelled as [`diff`] spells paths.
fn field_paths(tree: &Value, at: String, out: &mut BTreeSet<String>) {
    let Some(map) = tree.as_object() else { return };
    let mut leaf = true;
    for (key, sub) in map {
        let path = if let Some(field) = key.strip_prefix("f:") {
            let simple = !field.is_empty() && field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            match (at.is_empty(), simple) {
                (true, true) => field.to_string(),
                (false, true) => format!("{at}.{field}"),
                (_, false) => format!("{at}[{field:?}]"),
            }
        } else if let Some(k) = key.strip_prefix("k:") {
            let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
            match parsed.get("name").and_then(Value::as_str) {
                Some(name) => format!("{at}[{name}]"),
                None => format!("{at}[{k}]"),
            }
        } else if let Some(v) = key.strip_prefix("v:") {
            format!("{at}[{v}]")
        } else {
            continue;
        };
        leaf = false;
        field_paths(sub, path, out);
    }
    if leaf && !at.is_empty() {
        out.insert(at);
    }
}

/// The decoded `data` of a Secret, `stringData` on top.
pub fn secret_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .get("data")
        .and_then(Value::as_object)
        .map(|d| d.iter().filter_map(|(k, v)| Some((k.clone(), engine.decode(v.as_str()?).ok()?))).collect())
        .unwrap_or_default();
    if let Some(strings) = secret.get("stringData").and_then(Value::as_object) {
        out.extend(strings.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.as_bytes().to_vec()))));
    }
    out
}

/// The fingerprints a live Secret can be recorded under, the first the most specific: its
/// certificate's (or public key's), a kubeconfig's client certificate's, the digest of its
/// data. With the certificate's not-after.
pub fn live_fingerprints(request: &crate::pki::CertRequest, data: &BTreeMap<String, Vec<u8>>) -> Vec<(String, Option<i64>)> {
    let mut out = Vec::new();
    let pem_facts = |bytes: &[u8]| -> Option<(String, Option<i64>)> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(bytes).ok()?;
        let not_after = pem.parse_x509().ok().map(|c| c.validity().not_after.timestamp());
        Some((crate::object::digest_bytes(&pem.contents), not_after))
    };
    if let Some(bytes) = data.get(&request.layout.cert)
        && let Some(facts) = pem_facts(bytes)
    {
        out.push(facts);
    }
    if let Some(kubeconfig) = data.get(crate::pki::KUBECONFIG_KEY)
        && let Ok(parsed) = serde_saphyr::from_slice::<Value>(kubeconfig)
        && let Some(encoded) = parsed.pointer("/users/0/user/client-certificate-data").and_then(Value::as_str)
        && let Ok(pem) = base64::engine::general_purpose::STANDARD.decode(encoded)
        && let Some(facts) = pem_facts(&pem)
    {
        out.push(facts);
    }
    out.push((crate::pki::data_fingerprint(data), None));
    out
}

/// Compares what kkp recorded of `nodes` on `seed` with `live` (which holds at least their
/// objects). `priors` returns applied bodies by digest. Returns the drift found and the nodes
/// whose fields differ, to be confirmed by a dry-run.
pub fn compare(
    seed: &str,
    nodes: &[(&Address, &crate::state::NodeState)],
    live: &HashMap<ObjectRef, Value>,
    priors: &dyn Fn(&str) -> Option<Value>,
) -> (Vec<DriftEntry>, Vec<Suspect>) {
    let mut drift = Vec::new();
    let mut suspects = Vec::new();
    for &(address, node) in nodes {
        let Some(object) = &node.object else { continue };
        let entry = |drift: Drift| DriftEntry {
            address: address.clone(),
            seed: seed.to_string(),
            role: node.role,
            object: object.clone(),
            blocks: false,
            drift,
        };
        let Some(found) = live.get(object) else {
            drift.push(entry(Drift::Deleted));
            continue;
        };
        let Some(applied) = priors(&node.digest) else { continue };
        if let Some(certificate) = &node.certificate {
            let Some(request) = applied.get("request").and_then(|r| serde_json::from_value::<crate::pki::CertRequest>(r.clone()).ok())
            else {
                continue;
            };
            let candidates = live_fingerprints(&request, &secret_data(found));
            if !candidates.iter().any(|(fp, _)| *fp == certificate.fingerprint) {
                let (live, not_after) = candidates.first().cloned().map_or((None, None), |(fp, na)| (Some(fp), na));
                drift.push(entry(Drift::CertificateReplaced { recorded: certificate.fingerprint.clone(), live, not_after }));
            }
            continue;
        }
        if !changed_fields(&applied, found).is_empty() {
            suspects.push(Suspect { address: address.clone(), seed: seed.to_string(), applied });
        }
    }
    (drift, suspects)
}

/// Confirms a suspect with the dry-run answer: drift when applying kkp's body would change
/// the live object.
pub fn confirm(state: &State, suspect: &Suspect, live: &Value, dry_run: &Value) -> Option<DriftEntry> {
    if comparable(live) == comparable(dry_run) {
        return None;
    }
    let node = state.nodes.get(&suspect.address)?;
    let changes = changed_fields(&suspect.applied, live);
    if changes.is_empty() {
        return None;
    }
    let managers = managers_of(live, &changes);
    Some(DriftEntry {
        address: suspect.address.clone(),
        seed: suspect.seed.clone(),
        role: node.role,
        object: node.object.clone()?,
        drift: Drift::Changed { changes, managers },
        blocks: false,
    })
}

/// A state to plan against, with the drift folded in.
#[derive(Debug)]
pub struct Prepared<'a> {
    /// The state as the seeds are: deleted objects forgotten, changed ones recorded with their
    /// live fields, replaced certificates unknown (the state itself when nothing drifted: a
    /// fleet's state is not copied for nothing).
    pub state: std::borrow::Cow<'a, State>,
    /// Bodies the plan diffs against that are not in the object store (live fields), by digest.
    pub priors: HashMap<String, Value>,
    /// Clusters that wait, with why.
    pub blocked: BTreeMap<String, Notice>,
}

/// Folds `drift` (and unreadable seeds) into a copy of `state`. A CA or key pair changed
/// outside kkp blocks its cluster unless `accept` names it (prefix match); `live` gives, for
/// changed nodes, the live object reduced to kkp's fields ([`project`]).
pub fn prepare<'a>(
    state: &'a State,
    drift: &mut [DriftEntry],
    live: &HashMap<Address, Value>,
    unreadable: &BTreeMap<String, String>,
    accept: &[Address],
) -> Prepared<'a> {
    let mut copy = std::borrow::Cow::Borrowed(state);
    let mut priors = HashMap::new();
    let mut blocked = BTreeMap::new();
    for (address, node) in state.nodes.iter().filter(|_| !unreadable.is_empty()) {
        if let (Some(cluster), Some(error)) = (address.cluster(), unreadable.get(&node.seed)) {
            blocked.entry(cluster.to_string()).or_insert_with(|| Notice::SeedUnreadable {
                cluster: cluster.to_string(),
                seed: node.seed.clone(),
                error: error.clone(),
            });
        }
    }
    for entry in drift.iter_mut() {
        let cluster = entry.address.cluster().map(str::to_string);
        let accepted = accept.iter().any(|a| entry.address.starts_with(a));
        if needs_acceptance(entry.role) && !accepted {
            entry.blocks = true;
            if let Some(c) = &cluster {
                blocked
                    .entry(c.clone())
                    .or_insert_with(|| Notice::CertificateAuthorityChanged { cluster: c.clone(), address: entry.address.clone() });
            }
            continue;
        }
        if let Some(c) = &cluster {
            copy.to_mut().clusters.remove(c);
        }
        match &entry.drift {
            Drift::Deleted => {
                copy.to_mut().nodes.remove(&entry.address);
            }
            Drift::Changed { .. } => {
                let (Some(node), Some(found)) = (copy.to_mut().nodes.get_mut(&entry.address), live.get(&entry.address)) else { continue };
                let digest = crate::object::digest(found);
                node.digest = digest.clone();
                priors.insert(digest, found.clone());
            }
            Drift::CertificateReplaced { live, not_after, .. } => {
                let Some(node) = copy.to_mut().nodes.get_mut(&entry.address) else { continue };
                if needs_acceptance(entry.role) {
                    // Accepted: kkp keeps what is there; the update records it, and what the old
                    // one signed is re-issued.
                    if let (Some(cert), Some(live)) = (node.certificate.as_mut(), live) {
                        cert.fingerprint = live.clone();
                        cert.not_after = *not_after;
                        node.digest = format!("{}+accepted", node.digest);
                    }
                } else {
                    node.certificate = None;
                }
            }
        }
    }
    Prepared { state: copy, priors, blocked }
}

/// Puts drift into `plan` (made against [`Prepared::state`]): the section, reasons, blocked
/// clusters without actions, and a basis that names the digests of the real `state`.
pub fn annotate(plan: &mut Plan, state: Option<&State>, drift: Vec<DriftEntry>, blocked: BTreeMap<String, Notice>) {
    let by_address: HashMap<&Address, &DriftEntry> = drift.iter().map(|d| (&d.address, d)).collect();
    for action in &mut plan.actions {
        let Some(entry) = by_address.get(&action.address) else { continue };
        let reason = match &entry.drift {
            Drift::Deleted => Reason::DeletedOutsideKkp,
            Drift::Changed { managers, .. } => Reason::ChangedOutsideKkp { managers: managers.clone() },
            Drift::CertificateReplaced { .. } => Reason::CertificateReplacedOutsideKkp,
        };
        // The planner's own reason (missing, no certificate recorded) says less.
        if matches!(
            action.reasons.first(),
            Some(Reason::Missing | Reason::NoCertificateRecorded | Reason::DiffersFromApplied { .. } | Reason::LabelsChangeCertificateKept)
        ) {
            action.reasons.remove(0);
        }
        action.reasons.insert(0, reason);
    }
    if !blocked.is_empty() {
        plan.actions.retain(|a| a.cluster.as_ref().is_none_or(|c| !blocked.contains_key(c)));
        for cluster in blocked.keys() {
            plan.clusters.remove(cluster);
        }
        plan.summary = crate::plan::summarise(&plan.actions, plan.summary.unchanged);
        plan.notices.extend(blocked.into_values());
    }
    for entry in &drift {
        if plan.basis.digests.contains_key(&entry.address) {
            plan.basis.digests.insert(entry.address.clone(), state.and_then(|s| s.nodes.get(&entry.address)).map(|n| n.digest.clone()));
        }
    }
    plan.drift = drift;
}

/// The state changes that record the seeds as they are (`apply --refresh-only`): deleted
/// objects forgotten, changed fields recorded as live (with their bodies, whose digest the
/// recorder fills in; `live` as for [`prepare`]), replaced
/// certificates recorded with their live fingerprint; each affected cluster re-rendered next
/// time.
pub fn truth(state: &State, drift: &[DriftEntry], live: &HashMap<Address, Value>) -> Vec<(crate::state::Change, Option<Value>)> {
    use crate::state::Change;
    let mut out = Vec::new();
    let mut clusters = BTreeSet::new();
    for entry in drift {
        let Some(node) = state.nodes.get(&entry.address) else { continue };
        clusters.extend(entry.address.cluster().map(str::to_string));
        match &entry.drift {
            Drift::Deleted => out.push((Change::Remove { address: entry.address.clone() }, None)),
            Drift::Changed { .. } => {
                let Some(found) = live.get(&entry.address) else { continue };
                let mut node = node.clone();
                node.digest = String::new();
                out.push((Change::Put { address: entry.address.clone(), node }, Some(found.clone())));
            }
            Drift::CertificateReplaced { live, not_after, .. } => {
                let mut node = node.clone();
                node.certificate = live.as_ref().map(|fp| CertificateState {
                    request_digest: node.certificate.as_ref().map(|c| c.request_digest.clone()).unwrap_or_default(),
                    fingerprint: fp.clone(),
                    not_after: *not_after,
                    issuer_fingerprint: None,
                });
                out.push((Change::Put { address: entry.address.clone(), node }, None));
            }
        }
    }
    for name in clusters {
        out.push((Change::Cluster { name, record: None }, None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "apiserver", "namespace": "cluster-a"},
            "spec": {"template": {"spec": {"containers": [{"name": "apiserver", "image": image}]}}}})
    }

    #[test]
    fn server_defaults_are_not_drift_but_changed_fields_are() {
        let applied = deployment("k8s/apiserver:v1.34.1");
        let mut live = deployment("k8s/apiserver:v1.34.1");
        live["spec"]["replicas"] = json!(1);
        live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
        live["status"] = json!({"readyReplicas": 1});
        assert!(changed_fields(&applied, &live).is_empty());

        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("evil:1");
        let changes = changed_fields(&applied, &live);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].path, "spec.template.spec.containers[apiserver].image");
        assert_eq!(changes[0].before, Some(json!("k8s/apiserver:v1.34.1")));
        assert_eq!(changes[0].after, Some(json!("evil:1")));
    }

    #[test]
    fn the_manager_owning_a_changed_field_is_named() {
        let mut live = deployment("evil:1");
        live["metadata"]["managedFields"] = json!([
            {"manager": "kkp", "operation": "Apply", "fieldsV1": {"f:spec": {"f:template": {}}}},
            {"manager": "kubectl-set", "operation": "Update", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"apiserver\"}": {".": {}, "f:image": {}}}}}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:status": {"f:replicas": {}}}}
        ]);
        let changes = changed_fields(&deployment("good:1"), &live);
        assert_eq!(managers_of(&live, &changes), ["kubectl-set"]);
    }

    #[test]
    fn a_replaced_ca_blocks_its_cluster_until_accepted() {
        let mut state = State::new("l".into());
        let ca = Address::cluster_object("a", crate::object::Kind::Secret, "ca");
        state.nodes.insert(
            ca.clone(),
            crate::state::NodeState {
                seed: "s".into(),
                role: Role::CertificateAuthority,
                object: Some(ObjectRef::namespaced(crate::object::Kind::Secret, "cluster-a", "ca")),
                digest: "sha256:00".into(),
                certificate: Some(CertificateState {
                    request_digest: "r".into(),
                    fingerprint: "old".into(),
                    not_after: None,
                    issuer_fingerprint: None,
                }),
                version: None,
            },
        );
        let entry = DriftEntry {
            address: ca.clone(),
            seed: "s".into(),
            role: Role::CertificateAuthority,
            object: ObjectRef::namespaced(crate::object::Kind::Secret, "cluster-a", "ca"),
            drift: Drift::CertificateReplaced { recorded: "old".into(), live: Some("new".into()), not_after: Some(5) },
            blocks: false,
        };
        let mut drift = vec![entry.clone()];
        let prepared = prepare(&state, &mut drift, &HashMap::new(), &BTreeMap::new(), &[]);
        assert!(drift[0].blocks);
        assert!(prepared.blocked.contains_key("a"));
        assert_eq!(*prepared.state, state, "nothing of a blocked cluster changes");

        let mut drift = vec![entry];
        let prepared = prepare(&state, &mut drift, &HashMap::new(), &BTreeMap::new(), std::slice::from_ref(&ca));
        assert!(prepared.blocked.is_empty());
        assert_eq!(prepared.state.nodes[&ca].certificate.as_ref().unwrap().fingerprint, "new");
    }
}
