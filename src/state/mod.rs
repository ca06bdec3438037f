//! State: what kkp last applied, per node its identity, digest and outputs.
//!
//! The state is an index kept small on purpose (DESIGN §11): per node the seed, the object's
//! identity, the digest of what was applied, and certificate outputs (fingerprint, not-after).
//! The applied bodies themselves, which only field-level diffs need, are content-addressed
//! blobs loaded for the few nodes that change. Private keys and kubeconfigs are never here.
//!
//! [`format`] owns the on-disk envelope (`format_version`, lineage, serial), [`journal`] the
//! append-only progress log an apply writes after every node, [`lock`] the one-writer lock,
//! [`file`] the local-file backend that puts them together, and [`edit`] the repairs `kkp state`
//! makes by hand.

pub mod backend;
pub mod edit;
pub mod file;
pub mod format;
pub mod journal;
pub mod kube;
pub mod lock;
pub mod objects;
pub mod recorder;
pub mod rollout;
pub mod timings;

use crate::address::Address;
use crate::object::ObjectRef;
use crate::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Errors of the state layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a state file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The state file is not valid.
    #[error("{}: not a kkp state file: {message}\n  fix: restore it from {}.backup, or correct what is named above", path.display(), path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The state was written by a newer kkp.
    #[error("{}: state format {found} was written by a newer kkp (this kkp reads formats up to {supported})\n  fix: upgrade kkp", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// Someone else holds the lock.
    #[error("{0}")]
    Locked(Box<lock::Locked>),
    /// `force-unlock` named a lock that is not the one held.
    #[error("the lock on {} has ID {actual}, not {requested}\n  fix: check the ID printed in the lock error", path.display())]
    LockMismatch {
        /// The lock file.
        path: PathBuf,
        /// The ID the user gave.
        requested: String,
        /// The ID in the lock file.
        actual: String,
    },
    /// `force-unlock` found no lock.
    #[error("{} is not locked", path.display())]
    NotLocked {
        /// The lock file.
        path: PathBuf,
    },
    /// A Kubernetes state backend failed.
    #[error("state {address}: {message}")]
    Remote {
        /// `k8s://CONTEXT/NAMESPACE/NAME`.
        address: String,
        /// What went wrong.
        message: String,
    },
    /// A journal record other than a torn last one does not parse.
    #[error("{}: line {line} is not a journal record kkp writes ({message}); {after} record{} after it would be lost\n  fix: rerun with --discard-journal-tail to recover the records before it and drop the rest (the objects they applied are re-applied by the next apply)", path.display(), if *after == 1 { "" } else { "s" })]
    JournalCorrupt {
        /// The journal.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
        /// Records after it.
        after: usize,
    },
    /// There is no state (or an empty one), but an earlier state left traces: planning would
    /// create everything again over the objects already there.
    #[error(
        "{state}: there is no state, or it is empty, but {evidence}: a plan from nothing would create every object again over the ones already there\n  fix: restore the state (e.g. from its .backup), or pass --new-state to start a new state on purpose"
    )]
    Missing {
        /// The state's path or address.
        state: String,
        /// What shows an earlier state existed.
        evidence: String,
    },
    /// The journal writer stopped.
    #[error("the state journal {} stopped accepting records: {message}", path.display())]
    JournalClosed {
        /// The journal file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The state: lineage and serial, and one entry per applied node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Fixed when the state is created; a plan for another lineage is refused.
    pub lineage: String,
    /// Bumped on every persisted change.
    pub serial: u64,
    /// Per user cluster: the input digest recorded when all its nodes were applied.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterState>,
    /// Per node: what was applied.
    #[serde(default)]
    pub nodes: BTreeMap<Address, NodeState>,
    /// Per seed: the target its objects were applied to (format 3). A plan or apply against
    /// another target is refused.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, SeedTarget>,
    /// How long apply steps took, per target kind: what the next apply's estimate comes from.
    /// Absent in older states; never grows with the fleet.
    #[serde(default, skip_serializing_if = "timings::Timings::is_empty")]
    pub timings: timings::Timings,
    /// The wave an unhealthy check stopped the last rollout at, to check again first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_wave: Option<rollout::StoppedWave>,
}

/// Where a seed's objects were applied: a directory, or an API server and the identity of
/// the cluster behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SeedTarget {
    /// The directory target: files under `<path>/<seed>/`.
    Dir {
        /// The `--dir` directory, absolute.
        path: String,
    },
    /// A Kubernetes API server.
    #[serde(rename_all = "camelCase")]
    Kube {
        /// The API server URL.
        server: String,
        /// The UID of namespace kube-system: the cluster's identity, which survives a new URL
        /// and tells a rebuilt cluster at the same URL apart (None: the server has none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster_uid: Option<String>,
    },
}

impl SeedTarget {
    /// Whether `other` is the same place. A kube target is the same cluster when the
    /// kube-system UIDs match (the URL may change, e.g. behind a new load balancer); without
    /// UIDs, when the URLs match.
    pub fn same_as(&self, other: &SeedTarget) -> bool {
        match (self, other) {
            (SeedTarget::Dir { path: a }, SeedTarget::Dir { path: b }) => a == b,
            (SeedTarget::Kube { cluster_uid: Some(x), .. }, SeedTarget::Kube { cluster_uid: Some(y), .. }) => x == y,
            (SeedTarget::Kube { server: a, .. }, SeedTarget::Kube { server: b, .. }) => a == b,
            _ => false,
        }
    }
}

impl std::fmt::Display for SeedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeedTarget::Dir { path } => write!(f, "directory {path}"),
            SeedTarget::Kube { server, cluster_uid: Some(uid) } => write!(f, "API server {server} (kube-system UID {uid})"),
            SeedTarget::Kube { server, cluster_uid: None } => write!(f, "API server {server}"),
        }
    }
}

/// What is recorded of one user cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterState {
    /// [`crate::render::cluster_input_digest`] of the inputs all its nodes were applied from.
    pub input_digest: String,
    /// The Kubernetes version its control plane was applied at (refuses silent downgrades).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The etcd members its control plane was applied with (plain etcd cannot change them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_members: Option<i32>,
}

/// What is recorded of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeState {
    /// The seed it lives on.
    pub seed: String,
    /// What the node is for, as render said when it was applied.
    pub role: Role,
    /// The object written, None for logical nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// Digest of the applied body (manifest, certificate request, or logical settings); the
    /// key of its blob.
    pub digest: String,
    /// Certificate outputs, for Secrets kkp issues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateState>,
    /// What the API server answered kkp's last apply of the object with (absent for a
    /// directory, an adopted object, and in older states): a refresh that finds it so needs
    /// neither the object nor its applied body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<ObjectVersion>,
}

/// An object's version as kkp applied it: how a refresh tells from a metadata-only list that
/// nobody changed what kkp applied since ([`crate::target::version`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectVersion {
    /// `metadata.resourceVersion` right after the apply: any write since changes it.
    pub resource_version: String,
    /// Fingerprint of the object's uid and kkp's own managed-fields entry: status writes and
    /// fields others add leave it as it is; a field kkp applied that anyone else changed or
    /// removed leaves kkp's entry (its owner changes), and so changes it.
    pub fields: String,
}

/// Public facts about an issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateState {
    /// Digest of the request it was issued for.
    pub request_digest: String,
    /// sha256 of the certificate DER (of the public key for a key pair).
    pub fingerprint: String,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<i64>,
    /// Fingerprint of the CA that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_fingerprint: Option<String>,
}

/// One change to a state, as an apply records it.
// Puts dominate; a boxed node would cost an allocation per record for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "op")]
pub enum Change {
    /// A node was applied.
    Put {
        /// Which node.
        address: Address,
        /// What is now recorded.
        node: NodeState,
    },
    /// A node was deleted.
    Remove {
        /// Which node.
        address: Address,
    },
    /// A cluster's record (input digest, version) was written (Some) or invalidated (None).
    Cluster {
        /// Cluster name.
        name: String,
        /// The record, or None.
        #[serde(default)]
        record: Option<ClusterState>,
    },
    /// A seed's target was recorded (Some) or forgotten (None).
    Target {
        /// The seed.
        seed: String,
        /// Where its objects go.
        #[serde(default)]
        target: Option<SeedTarget>,
    },
}

/// Checks that a state entry is one kkp could have written: its address parses as a known
/// address, its role fits it, and its object is the one the address names. An entry that
/// fails would otherwise be planned as an orphan and its object deleted (issue 10: one changed
/// byte in an address deleted a live Secret), so loading refuses it instead.
pub fn check_entry(address: &Address, node: &NodeState) -> std::result::Result<(), String> {
    let segments: Vec<&str> = address.as_str().split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!("`{address}` is not an address (an empty segment)"));
    }
    let logical = |role: Role| -> std::result::Result<(), String> {
        match (&node.object, node.role == role) {
            (None, true) => Ok(()),
            (Some(o), _) => Err(format!("`{address}` names a logical node, but the entry holds object {o}")),
            (None, false) => Err(format!("`{address}` names a {} node, but the entry's role is {}", role.as_str(), node.role.as_str())),
        }
    };
    let object = |kind: &str, name: &str, namespace: Option<String>| -> std::result::Result<(), String> {
        let Some(object) = &node.object else { return Err(format!("`{address}` names an object, but the entry holds none")) };
        if object.kind.segment() != kind || object.name != name {
            return Err(format!("`{address}` does not name the entry's object {object}"));
        }
        if object.kind.namespaced() && object.namespace != namespace {
            return Err(format!("`{address}` does not name the entry's object {object} (namespace)"));
        }
        Ok(())
    };
    let same_seed = |seed: &str| {
        if node.seed == seed { Ok(()) } else { Err(format!("`{address}` is on seed {seed}, but the entry says seed {}", node.seed)) }
    };
    match segments.as_slice() {
        ["seed", seed] => same_seed(seed).and_then(|()| logical(Role::Seed)),
        ["seed", seed, "datacenter", _] => same_seed(seed).and_then(|()| logical(Role::Datacenter)),
        ["seed", seed, kind, name] => same_seed(seed).and_then(|()| object(kind, name, Some("kubermatic".into()))),
        ["cluster", cluster, "namespace"] => object("namespace", &format!("cluster-{cluster}"), None),
        ["cluster", cluster, kind, name] => object(kind, name, Some(format!("cluster-{cluster}"))),
        _ => Err(format!("`{address}` is not an address kkp writes (seed/<seed>[/<kind>/<name>] or cluster/<cluster>/<kind>/<name>)")),
    }
}

impl State {
    /// A fresh state with a new lineage.
    pub fn new(lineage: String) -> Self {
        State {
            lineage,
            serial: 0,
            clusters: BTreeMap::new(),
            nodes: BTreeMap::new(),
            targets: BTreeMap::new(),
            timings: Default::default(),
            stopped_wave: None,
        }
    }

    /// Applies one change in memory.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::Put { address, node } => {
                self.nodes.insert(address, node);
            }
            Change::Remove { address } => {
                self.nodes.remove(&address);
            }
            Change::Cluster { name, record: Some(record) } => {
                self.clusters.insert(name, record);
            }
            Change::Cluster { name, record: None } => {
                self.clusters.remove(&name);
            }
            Change::Target { seed, target: Some(target) } => {
                self.targets.insert(seed, target);
            }
            Change::Target { seed, target: None } => {
                self.targets.remove(&seed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;

    fn rendered(example: &str) -> Vec<crate::render::DesiredNode> {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples").join(example);
        crate::render::topology(&crate::topology::load(&[dir]).unwrap())
    }

    fn entry(node: &crate::render::DesiredNode) -> NodeState {
        NodeState {
            seed: node.seed.clone(),
            role: node.role,
            object: node.body.object(),
            digest: "sha256:00".into(),
            certificate: None,
            version: None,
        }
    }

    #[test]
    fn every_rendered_node_is_a_valid_state_entry() {
        for example in ["quickstart", "multi-seed"] {
            for node in rendered(example) {
                assert_eq!(check_entry(&node.address, &entry(&node)), Ok(()), "{}", node.address);
            }
        }
    }

    #[test]
    fn an_entry_whose_address_does_not_name_its_object_is_refused() {
        let nodes = rendered("quickstart");
        let ca = nodes.iter().find(|n| n.address.cluster().is_some() && n.body.object().is_some_and(|o| o.kind == Kind::Secret)).unwrap();
        let good = entry(ca);
        // One changed byte in the name, in the cluster, an unknown kind, an empty address.
        let text = ca.address.as_str();
        let last = text.len() - 1;
        let flipped = format!("{}{}", &text[..last], if text.ends_with('x') { 'y' } else { 'x' });
        let cluster = ca.address.cluster().unwrap();
        for bad in [
            flipped,
            text.replacen(cluster, &format!("{cluster}x"), 1),
            text.replace("/secret/", "/sekret/"),
            String::new(),
            "pods/x".into(),
        ] {
            let address: Address = serde_json::from_value(serde_json::Value::String(bad.clone())).unwrap();
            assert!(check_entry(&address, &good).is_err(), "{bad:?} passed");
        }
        // A right address with another role's shape: a logical seed node holding an object.
        assert!(check_entry(&Address::seed(&good.seed), &good).is_err());
    }
}
