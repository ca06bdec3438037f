//! Render: the pure step from a [`Topology`] to the desired nodes of the graph.
//!
//! For every seed: a logical seed node, a logical node per datacenter, and namespace
//! `kubermatic`. For every user cluster, in namespace `cluster-<name>` on its seed, the objects
//! KKP's seed-controller-manager creates, with KKP's names, ports, labels and certificate
//! subjects (see docs/architecture.md for where kkp deviates and why).
//!
//! Nothing here reads files, the clock or randomness. Certificates are described, not issued
//! ([`Body::Secret`]); workloads name the Secrets whose fingerprints they carry
//! ([`FingerprintRef`]), and plan/apply fill those in.

mod apiserver;
mod cloud_config;
mod cloud_controller;
mod component;
mod controller_manager;
mod csi;
mod dashboard;
mod dockercfg;
mod etcd;
mod etcd_backup;
mod http_prober;
mod konnectivity;
mod kube_state_metrics;
mod machine_controller;
mod meta;
mod nodeport_proxy;
mod operating_system_manager;
mod scheduler;
mod usercluster;

pub use meta::MANAGED_BY;
pub use pki::external_url;
mod namespace;
mod openvpn;
mod pki;
mod prometheus;
mod seed;

use crate::address::Address;
use crate::object::ObjectRef;
use crate::pki::CertRequest;
use crate::role::Role;
use crate::topology::{Cluster, Topology};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped whenever rendering changes what it produces for the same input, so per-cluster input
/// digests recorded by older versions stop matching and those clusters are rendered again.
pub const RENDERER_VERSION: u32 = 4;

/// One node of the desired graph.
#[derive(Debug, Clone)]
pub struct DesiredNode {
    /// Stable address.
    pub address: Address,
    /// The seed the node lives on.
    pub seed: String,
    /// The user cluster it belongs to, if any.
    pub cluster: Option<String>,
    /// What the node is for; plan and apply decide by it.
    pub role: Role,
    /// Nodes that must be in place first.
    pub deps: Vec<Address>,
    /// What the node is.
    pub body: Body,
}

/// What a node is.
// Secret bodies are the largest; nodes live in vectors, so boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Body {
    /// A node with no object (seed, datacenter); kept in state so changes are visible.
    Logical {
        /// The settings that define it.
        settings: Value,
    },
    /// A Kubernetes object written as rendered.
    Object {
        /// The manifest; placeholders wherever `fingerprints` point.
        manifest: Value,
        /// Places in the manifest that carry a Secret's fingerprint.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fingerprints: Vec<FingerprintRef>,
    },
    /// A Secret whose content (keys and certificates) is issued at apply time.
    Secret {
        /// The Secret's identity.
        object: ObjectRef,
        /// Labels to put on it.
        labels: std::collections::BTreeMap<String, String>,
        /// What it must hold.
        request: CertRequest,
    },
}

impl Body {
    /// Whether pods mount what this node writes (a Secret or ConfigMap), so its fingerprint
    /// must be decided before the workloads that carry it.
    pub fn is_mounted(&self) -> bool {
        matches!(self, Body::Secret { .. }) || self.object().is_some_and(|o| o.kind.is_mounted())
    }

    /// The Kubernetes object this node writes, if any.
    pub fn object(&self) -> Option<ObjectRef> {
        match self {
            Body::Logical { .. } => None,
            Body::Object { manifest, .. } => ObjectRef::of(manifest),
            Body::Secret { object, .. } => Some(object.clone()),
        }
    }
}

/// A manifest location (JSON pointer) that holds the fingerprint of a mounted Secret or
/// ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintRef {
    /// JSON pointer into the manifest.
    pub pointer: String,
    /// The Secret or ConfigMap node whose fingerprint goes there (`secret` in plans written
    /// before ConfigMaps had fingerprints).
    #[serde(alias = "secret")]
    pub mounted: Address,
}

/// Writes into `manifest` the fingerprint of every Secret in `refs` that `lookup` knows;
/// returns the refs still unknown.
pub fn fill_fingerprints(
    manifest: &mut Value,
    refs: &[FingerprintRef],
    lookup: impl Fn(&Address) -> Option<String>,
) -> Vec<FingerprintRef> {
    let mut unknown = Vec::new();
    for f in refs {
        match (lookup(&f.mounted), manifest.pointer_mut(&f.pointer)) {
            (Some(fingerprint), Some(slot)) => *slot = Value::String(fingerprint),
            _ => unknown.push(f.clone()),
        }
    }
    unknown
}

/// Every desired node of the topology: seeds first, then clusters, each in name order.
pub fn topology(topology: &Topology) -> Vec<DesiredNode> {
    let mut nodes = Vec::new();
    for seed in topology.seeds.values() {
        nodes.extend(self::seed(seed));
    }
    for cluster in topology.clusters.values() {
        nodes.extend(self::cluster(cluster));
    }
    nodes
}

/// The desired nodes of one seed (logical seed and datacenter nodes, namespace `kubermatic`).
pub fn seed(seed: &crate::topology::Seed) -> Vec<DesiredNode> {
    let mut nodes = seed::render(seed);
    nodes.extend(usercluster::seed_cluster_roles(seed));
    nodes
}

/// The desired nodes of one user cluster, in dependency order.
pub fn cluster(cluster: &Cluster) -> Vec<DesiredNode> {
    let mut nodes = vec![namespace::cluster_namespace(cluster)];
    nodes.extend(pki::secrets(cluster));
    nodes.extend(dockercfg::render(cluster));
    nodes.extend(etcd::render(cluster));
    nodes.extend(etcd_backup::render(cluster));
    nodes.extend(apiserver::render(cluster));
    nodes.extend(konnectivity::render(cluster));
    nodes.extend(openvpn::render(cluster));
    nodes.extend(nodeport_proxy::render(cluster));
    nodes.extend(prometheus::render(cluster));
    nodes.extend(controller_manager::render(cluster));
    nodes.extend(cloud_controller::render(cluster));
    nodes.extend(csi::render(cluster));
    nodes.extend(scheduler::render(cluster));
    nodes.extend(kube_state_metrics::render(cluster));
    nodes.extend(dashboard::render(cluster));
    nodes.extend(usercluster::render(cluster));
    nodes.extend(machine_controller::render(cluster));
    nodes.extend(operating_system_manager::render(cluster));
    nodes
}

/// Digest of everything a cluster's objects are rendered from (its resolved settings and the
/// renderer version). Equal digests prove the rendered objects are equal without rendering.
pub fn cluster_input_digest(cluster: &Cluster) -> String {
    crate::object::digest(&(RENDERER_VERSION, cluster))
}

/// The cluster's nodes as [`cluster`] renders them, except that each object's manifest holds
/// only its identity: `apiVersion`, `kind`, `metadata.name` and `metadata.namespace`.
/// Addresses, roles, dependencies, certificate requests and fingerprint places are the same.
///
/// For a plan that is only shown, of a cluster the state does not know: every node is created
/// and no body is kept, and turning typed objects into JSON was most of rendering's cost.
pub fn cluster_outline(cluster: &Cluster) -> Vec<DesiredNode> {
    let _outline = OutlineScope::enter();
    self::cluster(cluster)
}

thread_local! {
    /// Set while [`cluster_outline`] renders on this thread. A flag rather than a parameter so
    /// that every renderer keeps one path, and outlines cannot drift from what is rendered.
    static OUTLINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Sets [`OUTLINE`] for its lifetime, and clears it even if rendering panics.
struct OutlineScope;

impl OutlineScope {
    fn enter() -> OutlineScope {
        OUTLINE.set(true);
        OutlineScope
    }
}

impl Drop for OutlineScope {
    fn drop(&mut self) {
        OUTLINE.set(false);
    }
}

/// Serialises a typed k8s-openapi object into its manifest (its identity only, in an outline).
fn manifest<T>(object: &T) -> Value
where
    T: Serialize + k8s_openapi::Resource + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
{
    if OUTLINE.get() {
        let metadata = object.metadata();
        let mut identity = serde_json::Map::new();
        identity.insert("name".into(), metadata.name.clone().into());
        if let Some(namespace) = &metadata.namespace {
            identity.insert("namespace".into(), namespace.clone().into());
        }
        return serde_json::json!({ "apiVersion": T::API_VERSION, "kind": T::KIND, "metadata": identity });
    }
    serde_json::to_value(object).expect("k8s-openapi objects always serialise")
}

#[cfg(test)]
mod tests;
