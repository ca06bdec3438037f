//! Plan: the pure comparison of desired nodes with the state, giving ordered actions with
//! reasons and field-level changes.
//!
//! A cluster whose input digest equals the one recorded at its last complete apply, and whose
//! certificates are outside the renewal window, is known unchanged without rendering it
//! (DESIGN §11). Everything else is rendered and compared node by node.
//!
//! [`file`] owns the saved-plan envelope and its digest; [`display`] renders a plan for
//! humans and PR comments. Nothing here reads files or the clock: the caller passes `now` and
//! a lookup for previously applied bodies.

pub mod classify;
mod desired;
pub mod diff;
pub mod display;
pub mod drift;
pub mod file;
pub mod import;
mod parallel;
pub mod reason;
pub mod rollup;
pub mod why;

use crate::address::Address;
use crate::graph::Dag;
use crate::object::{ObjectRef, digest};
use crate::render::{self, Body, DesiredNode};
use crate::role::Role;
use crate::state::{ClusterState, NodeState, State};
use crate::topology::{Cluster, Topology};
pub use desired::Desired;
use diff::FieldChange;
pub use reason::Reason;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Errors while planning.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The desired graph is not a DAG.
    #[error(transparent)]
    Graph(#[from] crate::graph::Error),
    /// A cluster's version would go down.
    #[error(
        "{at}: cluster {cluster}: spec.version {to} is older than the {from} its control plane runs; KKP never downgrades a control plane\n  fix: set spec.version back to {from} or newer, or re-run with --allow-downgrade {cluster} if you know the data of {to} is compatible"
    )]
    Downgrade {
        /// Where the cluster is defined.
        at: crate::topology::Source,
        /// The cluster.
        cluster: String,
        /// The version applied.
        from: String,
        /// The version asked for.
        to: String,
    },
    /// A running cluster's etcd member count would change.
    #[error(
        "{at}: cluster {cluster}: etcd would go from {from} to {to} members; kkp runs etcd without KKP's etcd-launcher, and plain etcd cannot add or remove members of a running cluster (new members would start a cluster of their own, removed ones would still count against quorum)\n  fix: set componentsOverride.etcd.clusterSize back to {from}"
    )]
    EtcdMembers {
        /// Where the cluster is defined.
        at: crate::topology::Source,
        /// The cluster.
        cluster: String,
        /// The members applied.
        from: i32,
        /// The members asked for.
        to: i32,
    },
    /// No update rule of the KubermaticConfiguration allows a cluster's version change.
    #[error(
        "{at}: cluster {cluster}: {why}\n  fix: move the cluster one step at a time along spec.versions.updates, or add an update rule to the KubermaticConfiguration"
    )]
    UpgradePath {
        /// Where the cluster is defined.
        at: crate::topology::Source,
        /// The cluster.
        cluster: String,
        /// What the rules say.
        why: String,
    },
    /// The plan would destroy data without permission.
    #[error(
        "the plan would destroy data:\n{}\n  fix: if this is intended, re-run with {}",
        .0.iter().map(|(a, why)| format!("  {a}: {why}")).collect::<Vec<_>>().join("\n"),
        .0.iter().map(|(a, _)| format!("--allow-destroy {a}")).collect::<Vec<_>>().join(" ")
    )]
    DestroyRefused(Vec<(Address, &'static str)>),
    /// A `--target` or `--exclude` matched nothing.
    #[error(
        "{flag} {address} matches no node of the topology or the state\n  fix: check the address with `kkp graph` (e.g. cluster/<name> or seed/<name>)"
    )]
    NoMatch {
        /// `--target` or `--exclude`.
        flag: &'static str,
        /// The address given.
        address: Address,
    },
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What to do with one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Create it.
    Create,
    /// Change it in place.
    Update,
    /// Delete and create it (or re-issue a certificate).
    Replace,
    /// Delete it.
    Delete,
    /// Take the existing object into the state as it is (`kkp import`); only kkp's ownership
    /// label may be written.
    Import,
}

impl Action {
    /// Terraform's symbols: `+`, `~`, `-/+`, `-`.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
            Action::Import => "<-",
        }
    }
}

/// Options steering a plan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Unix seconds, for certificate renewal.
    pub now: i64,
    /// Plan only these nodes (prefix match) and what they depend on.
    pub targets: Vec<Address>,
    /// Leave out these nodes (prefix match) and what depends on them.
    pub excludes: Vec<Address>,
    /// Allow destroying these data-bearing nodes (prefix match).
    pub allow_destroy: Vec<Address>,
    /// Allow these clusters' versions to go down.
    pub allow_downgrade: Vec<String>,
    /// Read the seeds first and plan against what they hold (`--refresh`); the planner itself
    /// reads nothing, see [`crate::refresh`].
    pub refresh: bool,
    /// CAs and key pairs changed outside kkp whose change is accepted (prefix match).
    pub accept: Vec<Address>,
    /// Leave the desired bodies out of the actions: for a plan that is only shown, never
    /// saved or applied. A fleet's first plan holds hundreds of thousands of bodies.
    pub without_bodies: bool,
}

/// The plan: ordered actions and what they were planned against.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// What the plan was computed against; apply refuses a plan whose basis changed.
    pub basis: Basis,
    /// Counts, for display.
    pub summary: Summary,
    /// Actions, grouped by seed and cluster, each after its dependencies.
    pub actions: Vec<PlannedAction>,
    /// Cluster records (input digest, version) to write once every action of that cluster
    /// succeeded (None: forget the cluster).
    #[serde(default)]
    pub clusters: BTreeMap<String, Option<ClusterState>>,
    /// What the reviewer should know beyond the actions (display only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
    /// What a refresh found changed outside kkp (`--refresh`); apply takes over the fields of
    /// the nodes listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<drift::DriftEntry>,
    /// Clusters with actions whose `spec.version` changes (classification reads it).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub upgrades: BTreeMap<String, classify::Upgrade>,
    /// `metadata.labels` of the clusters with actions, for policy rules over labels.
    #[serde(default, rename = "clusterLabels", skip_serializing_if = "BTreeMap::is_empty")]
    pub cluster_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl Plan {
    /// True when a cluster waits (a CA changed outside kkp, a seed could not be read): the
    /// plan is incomplete and the exit code says so.
    pub fn has_blocked(&self) -> bool {
        self.notices.iter().any(|n| matches!(n, Notice::SeedUnreadable { .. } | Notice::CertificateAuthorityChanged { .. }))
    }
}

/// Something a plan tells its reviewer that is not an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Notice {
    /// `spec.pause` is set: kkp plans nothing for the cluster and deletes nothing of it.
    Paused {
        /// The cluster.
        cluster: String,
        /// `spec.pauseReason`, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The cluster uses the OpenVPN tunnel (`konnectivityEnabled: false`), which KKP
    /// deprecated in 2.24 and removed in 2.26.
    LegacyTunnel {
        /// The cluster.
        cluster: String,
    },
    /// The cluster's seed could not be read during refresh: nothing is planned for it.
    SeedUnreadable {
        /// The cluster.
        cluster: String,
        /// Its seed.
        seed: String,
        /// Why.
        error: String,
    },
    /// A CA or the service-account key was replaced or deleted outside kkp: the cluster waits
    /// until `--accept ADDR` says what to do (keep the live one, or re-issue a deleted one).
    CertificateAuthorityChanged {
        /// The cluster.
        cluster: String,
        /// The Secret.
        address: Address,
    },
    /// `kkp import`: how a cluster (or, as `seed NAME`, a seed's own nodes) fared.
    Import {
        /// `cluster NAME` or `seed NAME`.
        group: String,
        /// Adopted (with or without changes on the next apply) or not, and why.
        verdict: import::Verdict,
    },
}

/// What a plan relied on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Basis {
    /// The state's lineage (None: planned against no state).
    pub lineage: Option<String>,
    /// The state's serial.
    pub serial: u64,
    /// For every node an action touches or takes a value from: its digest in the state.
    pub digests: BTreeMap<Address, Option<String>>,
}

/// Counts of a plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Creates.
    pub add: usize,
    /// In-place updates.
    pub change: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletes.
    pub destroy: usize,
    /// Imports (`kkp import -o`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub import: usize,
    /// Nodes that need nothing.
    pub unchanged: usize,
    /// Seeds with at least one action.
    pub seeds: usize,
    /// User clusters with at least one action.
    pub clusters: usize,
}

impl Summary {
    /// True when the plan does nothing.
    pub fn is_empty(&self) -> bool {
        self.add + self.change + self.replace + self.destroy + self.import == 0
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One action of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    /// The node.
    pub address: Address,
    /// The seed it is applied to.
    pub seed: String,
    /// Its user cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// What the node is for; steers apply (issuing, readiness waits).
    pub role: Role,
    /// What happens.
    pub action: Action,
    /// Why (display only; apply never reads them).
    pub reasons: Vec<Reason>,
    /// The Kubernetes object, if the node is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
    /// For a replace that moves the node to another seed: where it is now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_seed: Option<String>,
    /// The desired body (None for deletes). Fingerprints still unknown are placeholders that
    /// apply fills in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<Desired>,
    /// Other actions that must succeed first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<Address>,
    /// Field-level changes (display only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// Class, risk, data loss, restarts, the cluster's readable name (for reviewers and
    /// policy; apply re-classifies instead of reading them).
    #[serde(flatten)]
    pub review: classify::Review,
    /// For an import: what the state records of the live object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<Box<import::ImportRecord>>,
}

#[cfg(test)]
impl PlannedAction {
    /// A bare action for tests: its cluster from the address, seed `eu`, reason "no longer
    /// rendered", nothing else; tests set what they look at.
    pub(crate) fn example(address: &str, role: Role, action: Action) -> Self {
        let address = Address::parse(address).unwrap();
        PlannedAction {
            cluster: address.cluster().map(str::to_string),
            address,
            seed: "eu".into(),
            role,
            action,
            reasons: vec![Reason::NoLongerRendered],
            object: None,
            prior_seed: None,
            desired: None,
            deps: Vec::new(),
            changes: Vec::new(),
            review: classify::Review::default(),
            import: None,
        }
    }
}

/// What state records of a body: the manifest of an object, the labels and request of a
/// Secret kkp issues, the settings of a logical node. Its digest is the node's digest.
pub fn recorded_value(body: &Body) -> Value {
    match body {
        Body::Logical { settings } => settings.clone(),
        Body::Object { manifest, .. } => manifest.clone(),
        Body::Secret { object, labels, request } => {
            serde_json::json!({"object": object, "labels": labels, "request": request})
        }
    }
}

/// A decision about one node, kept while planning its dependants.
#[derive(Clone)]
struct Decision {
    action: Option<Action>,
    /// Known certificate fingerprint (None: unknown until apply, or not a certificate).
    fingerprint: Option<String>,
}

/// What every group's planning reads: the state, the priors, the clock.
struct Planner<'a> {
    state: Option<&'a State>,
    priors: &'a (dyn Fn(&str) -> Option<Value> + Sync),
    now: i64,
    keep_bodies: bool,
}

/// What planning one seed's or one cluster's nodes decided. Groups are planned on their own
/// (a cluster's nodes read only their own cluster's decisions), so clusters plan in parallel.
#[derive(Default)]
struct GroupPlan {
    actions: Vec<PlannedAction>,
    /// The dependencies of desired nodes that need no action (every other desired node has
    /// an action).
    unchanged_deps: Vec<(Address, Vec<Address>)>,
    basis: Vec<(Address, Option<String>)>,
    unchanged: usize,
}

/// Plans `topology` against `state`. `priors` returns a previously applied body by digest
/// (for field-level diffs; None degrades to a digest-only reason).
///
/// Seeds are planned first; then each cluster is rendered, planned, given its deletes,
/// dependencies, classes and order on a worker thread of its own (its nodes depend only on
/// its own and its seed's), and the groups are put together at the end.
pub fn create(
    topology: &Topology,
    state: Option<&State>,
    priors: &(dyn Fn(&str) -> Option<Value> + Sync),
    options: &Options,
) -> Result<Plan> {
    let planner = Planner { state, priors, now: options.now, keep_bodies: !options.without_bodies };
    let mut unchanged = 0;
    let mut fast_clusters: HashSet<&str> = HashSet::new();
    let mut cluster_digests = BTreeMap::new();
    let mut notices = Vec::new();

    let mut seed_groups: Vec<GroupPlan> = topology.seeds.values().map(|seed| planner.plan_group(render::seed(seed), true)).collect();
    let seeds = SeedActions::of(&seed_groups);
    for group in &mut seed_groups {
        let deps = seeds.deps_of(group);
        group.set_deps(deps);
    }
    let seed_levels = seeds.levels(&seed_groups)?;
    let mut to_render = Vec::new();
    for cluster in topology.clusters.values() {
        if cluster.paused {
            // Like KKP's controllers, kkp leaves a paused cluster as it is: nothing of it is
            // rendered, changed or deleted, and its record stays as it was.
            notices.push(Notice::Paused { cluster: cluster.name.clone(), reason: cluster.pause_reason.clone() });
            fast_clusters.insert(cluster.name.as_str());
            unchanged += planner.cluster_nodes(&cluster.name).len();
            continue;
        }
        check_version_change(topology, cluster, state, &options.allow_downgrade)?;
        check_etcd_members(cluster, state)?;
        let input_digest = render::cluster_input_digest(cluster);
        if planner.cluster_unchanged(&cluster.name, &input_digest) {
            fast_clusters.insert(cluster.name.as_str());
            unchanged += planner.cluster_nodes(&cluster.name).len();
            continue;
        }
        cluster_digests.insert(
            cluster.name.clone(),
            Some(ClusterState { input_digest, version: Some(cluster.version.to_string()), etcd_members: Some(cluster.etcd.cluster_size) }),
        );
        to_render.push(cluster);
    }

    let mut basis_digests = Vec::new();
    let mut unchanged_deps: HashMap<Address, Vec<Address>> = HashMap::new();
    // The seeds' own nodes and whatever of the state no rendered cluster owns are planned
    // here; their actions are ordered together.
    let mut seed_level_actions = Vec::new();
    for group in seed_groups {
        unchanged += group.unchanged;
        unchanged_deps.extend(group.unchanged_deps);
        basis_digests.extend(group.basis);
        seed_level_actions.extend(group.actions);
    }
    let mut runs: Vec<Vec<PlannedAction>> = Vec::new();
    let mut failed = None;
    parallel::map_in_order(
        &to_render,
        |cluster| planner.plan_cluster(cluster, &seeds, &seed_levels),
        |_, group| match group {
            Ok(group) => {
                unchanged += group.unchanged;
                unchanged_deps.extend(group.unchanged_deps);
                basis_digests.extend(group.basis);
                runs.extend(runs_by_seed(group.actions));
            }
            Err(e) => failed = Some(e),
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(state) = state {
        let desired: HashSet<&Address> = seed_level_actions.iter().map(|a| &a.address).chain(unchanged_deps.keys()).collect();
        let rest = rest_of_state(state, topology, &desired);
        drop(desired);
        let mut deletes = deletes(rest, |address, node| match address.cluster() {
            Some(c) if !topology.clusters.contains_key(c) => Reason::ClusterRemoved { cluster: c.to_string() },
            None if !topology.seeds.contains_key(&node.seed) => Reason::SeedRemoved { seed: node.seed.clone() },
            _ => Reason::NoLongerRendered,
        });
        basis_digests.extend(deletes.iter().map(|d| (d.address.clone(), Some(state.nodes[&d.address].digest.clone()))));
        seed_level_actions.append(&mut deletes);
        for name in state.clusters.keys() {
            if !topology.clusters.contains_key(name) {
                cluster_digests.insert(name.clone(), None);
            }
        }
    }
    let (_, seed_level_context) = review_context(std::iter::empty(), state);
    classify::annotate(&mut seed_level_actions, &seed_level_context);
    let seed_level_actions = order(seed_level_actions, &HashMap::new())?;
    runs.extend(runs_by_group(seed_level_actions));
    // Runs are single groups (seed, then seed level before clusters, then cluster), each
    // ordered by dependency level and address within.
    runs.sort_by(|a, b| group_key(&a[0]).cmp(&group_key(&b[0])));
    let mut actions = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    for run in runs {
        actions.extend(run);
    }

    let (partial, dropped) = select(&mut actions, options, &unchanged_deps, state)?;
    drop(unchanged_deps);
    for name in &partial {
        cluster_digests.remove(name);
    }
    refuse_destroy(&actions, &options.allow_destroy)?;
    let touched_clusters = touched(&actions);
    let (upgrades, cluster_labels, context) = review_inputs(topology, state, &touched_clusters);
    notices.extend(
        topology
            .clusters
            .values()
            .filter(|c| c.tunnel == crate::topology::Tunnel::OpenVpn && touched_clusters.contains(c.name.as_str()))
            .map(|c| Notice::LegacyTunnel { cluster: c.name.clone() }),
    );
    drop(touched_clusters);
    if !dropped.is_empty() {
        // What the selection left out no longer restarts or reclassifies what remains.
        classify::annotate(&mut actions, &context);
    }

    let mut basis = Basis { lineage: state.map(|s| s.lineage.clone()), serial: state.map_or(0, |s| s.serial), digests: BTreeMap::new() };
    // Keep what the remaining actions rely on: their own priors and the fingerprints they
    // took from the state (not the priors of actions the selection dropped).
    basis.digests = basis_digests.into_iter().filter(|(address, _)| !dropped.contains(address)).collect();
    let summary = summarise(&actions, unchanged);
    Ok(Plan { basis, summary, actions, clusters: cluster_digests, notices, drift: Vec::new(), upgrades, cluster_labels })
}

/// The clusters with actions.
fn touched(actions: &[PlannedAction]) -> BTreeSet<&str> {
    let mut touched = BTreeSet::new();
    // Actions come grouped by cluster: each name is looked at once per group.
    let mut last = None;
    for cluster in actions.iter().filter_map(|a| a.cluster.as_deref()) {
        if last != Some(cluster) {
            touched.insert(cluster);
            last = Some(cluster);
        }
    }
    touched
}

/// Where an action sorts among the groups of a plan: by seed, then the seed's own nodes
/// before its clusters, then by cluster.
fn group_key(action: &PlannedAction) -> (&str, bool, Option<&str>) {
    (&action.seed, action.cluster.is_some(), action.cluster.as_deref())
}

/// Splits ordered actions into runs of one group each.
fn runs_by_group(actions: Vec<PlannedAction>) -> Vec<Vec<PlannedAction>> {
    let mut runs: Vec<Vec<PlannedAction>> = Vec::new();
    for action in actions {
        match runs.last_mut() {
            Some(run) if group_key(&run[0]) == group_key(&action) => run.push(action),
            _ => runs.push(vec![action]),
        }
    }
    runs
}

/// A cluster's ordered actions as runs of one seed each (a cluster that moves seeds deletes
/// what it no longer renders on the seed it left). Most clusters are one run, moved whole.
fn runs_by_seed(actions: Vec<PlannedAction>) -> Vec<Vec<PlannedAction>> {
    if actions.windows(2).all(|w| w[0].seed == w[1].seed) {
        return if actions.is_empty() { Vec::new() } else { vec![actions] };
    }
    runs_by_group(actions)
}

/// The nodes of the state that no planned group owns and nothing desires: the seeds' nodes no
/// longer rendered and the nodes of clusters gone from the topology. Those of clusters in the
/// topology are their own group's business (or kept as they are, when paused or unchanged).
fn rest_of_state<'s>(state: &'s State, topology: &Topology, desired: &HashSet<&Address>) -> Vec<(&'s Address, &'s NodeState)> {
    let mut rest = Vec::new();
    // Addresses are sorted, so a cluster's nodes are together: look each cluster up once.
    let mut last: Option<(&str, bool)> = None;
    for (address, node) in &state.nodes {
        let owned = match address.cluster() {
            None => desired.contains(address),
            Some(c) => match last {
                Some((name, in_topology)) if name == c => in_topology,
                _ => {
                    let in_topology = topology.clusters.contains_key(c);
                    last = Some((c, in_topology));
                    in_topology
                }
            },
        };
        if !owned {
            rest.push((address, node));
        }
    }
    rest
}

/// Delete actions for `nodes`, each with the reason `why` gives. Within a cluster (or seed),
/// a delete waits for the deletes of higher rank.
fn deletes<'s>(nodes: Vec<(&'s Address, &'s NodeState)>, why: impl Fn(&Address, &NodeState) -> Reason) -> Vec<PlannedAction> {
    let mut deletes: Vec<PlannedAction> = nodes
        .into_iter()
        .map(|(address, node)| PlannedAction {
            address: address.clone(),
            seed: node.seed.clone(),
            cluster: address.cluster().map(str::to_string),
            role: node.role,
            action: Action::Delete,
            reasons: vec![why(address, node)],
            object: node.object.clone(),
            prior_seed: None,
            desired: None,
            deps: Vec::new(),
            changes: Vec::new(),
            review: classify::Review::default(),
            import: None,
        })
        .collect();
    type Group = (String, Option<String>);
    let mut by_group: BTreeMap<Group, Vec<(u8, Address)>> = BTreeMap::new();
    for d in &deletes {
        by_group.entry((d.seed.clone(), d.cluster.clone())).or_default().push((delete_rank(d), d.address.clone()));
    }
    for d in &mut deletes {
        let rank = delete_rank(d);
        let group = &by_group[&(d.seed.clone(), d.cluster.clone())];
        d.deps = group.iter().filter(|(r, _)| *r > rank).map(|(_, a)| a.clone()).collect();
        d.deps.sort();
    }
    deletes
}

/// The seeds' actions and the dependencies of their unchanged nodes: what a cluster's
/// dependencies on its seed resolve to.
struct SeedActions {
    actions: HashSet<Address>,
    unchanged_deps: HashMap<Address, Vec<Address>>,
}

impl SeedActions {
    fn of(groups: &[GroupPlan]) -> SeedActions {
        SeedActions {
            actions: groups.iter().flat_map(|g| &g.actions).map(|a| a.address.clone()).collect(),
            unchanged_deps: groups.iter().flat_map(|g| g.unchanged_deps.iter().cloned()).collect(),
        }
    }

    /// The dependencies of each of `group`'s actions among the planned actions, looking
    /// through unchanged nodes. Until here, an action holds its node's own dependencies.
    fn deps_of(&self, group: &GroupPlan) -> Vec<Vec<Address>> {
        let own: HashSet<&Address> = group.actions.iter().map(|a| &a.address).collect();
        let own_unchanged: HashMap<&Address, &Vec<Address>> = group.unchanged_deps.iter().map(|(a, d)| (a, d)).collect();
        let in_plan = |a: &Address| own.contains(a) || self.actions.contains(a);
        let unchanged = |a: &Address| own_unchanged.get(a).copied().or_else(|| self.unchanged_deps.get(a));
        group
            .actions
            .iter()
            .map(|a| if a.action == Action::Delete { a.deps.clone() } else { action_deps(&a.deps, &unchanged, &in_plan) })
            .collect()
    }

    /// The dependency level of every seed action, which the levels of the cluster actions
    /// that wait for them continue from.
    fn levels(&self, groups: &[GroupPlan]) -> Result<HashMap<Address, usize>> {
        let actions: Vec<&PlannedAction> = groups.iter().flat_map(|g| &g.actions).collect();
        let dag = Dag::new(actions.iter().map(|a| (&a.address, a.deps.as_slice())))?;
        Ok(actions.iter().map(|a| a.address.clone()).zip(dag.levels()).collect())
    }
}

impl GroupPlan {
    fn set_deps(&mut self, deps: Vec<Vec<Address>>) {
        for (action, deps) in self.actions.iter_mut().zip(deps) {
            action.deps = deps;
        }
    }
}

impl Planner<'_> {
    /// Everything of one cluster: its nodes planned, what of it the state holds but it no
    /// longer renders deleted, each action's dependencies resolved, classified and ordered.
    fn plan_cluster(&self, cluster: &Cluster, seeds: &SeedActions, seed_levels: &HashMap<Address, usize>) -> Result<GroupPlan> {
        let recorded = self.cluster_nodes(&cluster.name);
        let fingerprints = self.keep_bodies || !recorded.is_empty();
        // Without fingerprints every node is created and its body dropped: its identity is enough.
        let nodes = if fingerprints { render::cluster(cluster) } else { render::cluster_outline(cluster) };
        let mut group = self.plan_group(nodes, fingerprints);
        if let Some(state) = self.state {
            let desired: HashSet<&Address> =
                group.actions.iter().map(|a| &a.address).chain(group.unchanged_deps.iter().map(|(a, _)| a)).collect();
            let gone: Vec<_> = recorded.into_iter().filter(|(a, _)| !desired.contains(a)).collect();
            drop(desired);
            let gone = deletes(gone, |_, _| Reason::NoLongerRendered);
            group.basis.extend(gone.iter().map(|d| (d.address.clone(), Some(state.nodes[&d.address].digest.clone()))));
            group.actions.extend(gone);
        }
        let deps = seeds.deps_of(&group);
        group.set_deps(deps);
        let (_, context) = review_context(std::iter::once(cluster), self.state);
        classify::annotate(&mut group.actions, &context);
        group.actions = order(std::mem::take(&mut group.actions), seed_levels)?;
        // Sorted here, the clusters' records go into the plan's basis in one pass.
        group.basis.sort_unstable();
        Ok(group)
    }
}

/// A rendered node with what the planner reads of its body, worked out on the thread that
/// rendered it.
struct Prepared {
    node: DesiredNode,
    /// The object the body writes.
    object: Option<ObjectRef>,
    /// Whether pods mount it (a Secret or ConfigMap): decided before the workloads.
    mounted: bool,
    /// The manifest's digest, for a mounted object that carries no fingerprints (so it is
    /// final as rendered).
    digest: Option<String>,
}

impl Prepared {
    fn new(node: DesiredNode, fingerprints: bool) -> Prepared {
        let object = node.body.object();
        let mounted = matches!(node.body, Body::Secret { .. }) || object.as_ref().is_some_and(|o| o.kind.is_mounted());
        let digest = match &node.body {
            Body::Object { manifest, fingerprints: refs } if fingerprints && mounted && refs.is_empty() => Some(digest(manifest)),
            _ => None,
        };
        Prepared { node, object, mounted, digest }
    }
}

impl Planner<'_> {
    fn prior(&self, address: &Address) -> Option<&NodeState> {
        self.state.and_then(|s| s.nodes.get(address))
    }

    /// The state's nodes of one cluster (all addresses under `cluster/<name>/`).
    fn cluster_nodes(&self, cluster: &str) -> Vec<(&Address, &NodeState)> {
        let Some(state) = self.state else { return Vec::new() };
        let prefix = format!("cluster/{cluster}/");
        let from: (std::ops::Bound<&str>, std::ops::Bound<&str>) = (std::ops::Bound::Included(&prefix), std::ops::Bound::Unbounded);
        state.nodes.range::<str, _>(from).take_while(|(a, _)| a.as_str().starts_with(&prefix)).collect()
    }

    /// True when the cluster's recorded inputs equal `input_digest` and none of its
    /// certificates is due for renewal: nothing of it can have changed.
    fn cluster_unchanged(&self, cluster: &str, input_digest: &str) -> bool {
        let Some(state) = self.state else { return false };
        if state.clusters.get(cluster).map(|c| c.input_digest.as_str()) != Some(input_digest) {
            return false;
        }
        let window = crate::pki::RENEWAL_WINDOW_DAYS * 86_400;
        !self
            .cluster_nodes(cluster)
            .into_iter()
            .any(|(_, n)| n.certificate.as_ref().and_then(|c| c.not_after).is_some_and(|t| t - self.now < window))
    }

    /// Plans one seed's or cluster's nodes: certificates first (CAs before the leaves they
    /// sign, as rendered), then everything else, so fingerprints are decided before the
    /// workloads that carry them.
    /// Nodes are consumed: their bodies move into the actions (or are dropped).
    /// `fingerprints`: whether fingerprints and digests are worked out. A plan only shown
    /// needs none for a group the state does not know: every node is created and no body
    /// kept.
    fn plan_group(&self, nodes: Vec<DesiredNode>, fingerprints: bool) -> GroupPlan {
        let mut group = GroupPlanner { planner: self, fingerprints, decisions: HashMap::new(), plan: GroupPlan::default() };
        let (mounted, others): (Vec<_>, Vec<_>) = nodes.into_iter().map(|n| Prepared::new(n, fingerprints)).partition(|n| n.mounted);
        for node in mounted.into_iter().chain(others) {
            group.plan_node(node);
        }
        group.plan
    }
}

/// Plans the nodes of one group, keeping the decisions its workloads read.
struct GroupPlanner<'p, 'a> {
    planner: &'p Planner<'a>,
    /// See [`Planner::plan_group`].
    fingerprints: bool,
    /// Decisions about mounted nodes (Secrets, ConfigMaps), which others read.
    decisions: HashMap<Address, Decision>,
    plan: GroupPlan,
}

impl GroupPlanner<'_, '_> {
    fn prior(&self, address: &Address) -> Option<&NodeState> {
        self.planner.prior(address)
    }

    fn plan_node(&mut self, prepared: Prepared) {
        let Prepared { node, object, mounted: mounted_node, digest: rendered_digest } = prepared;
        let prior = self.prior(&node.address).cloned();
        self.plan.basis.push((node.address.clone(), prior.as_ref().map(|p| p.digest.clone())));
        let moved_from = prior.as_ref().filter(|p| p.seed != node.seed).map(|p| p.seed.clone());

        let (body, mut decision, mut reasons) = match node.body {
            Body::Secret { ref request, .. } => {
                let (action, reasons, fingerprint) = self.plan_certificate(&node, request, prior.as_ref());
                (node.body, Decision { action, fingerprint }, reasons)
            }
            Body::Object { mut manifest, fingerprints } => {
                // A certificate's fingerprint is known when the certificate is kept (even if
                // its Secret's labels change).
                let known = |secret: &Address| self.decisions.get(secret).and_then(|d| d.fingerprint.clone());
                let unknown =
                    if self.fingerprints { render::fill_fingerprints(&mut manifest, &fingerprints, known) } else { fingerprints.clone() };
                for f in &fingerprints {
                    if unknown.contains(f) {
                        continue;
                    }
                    let secret_digest = self.prior(&f.mounted).map(|p| p.digest.clone());
                    self.plan.basis.push((f.mounted.clone(), secret_digest));
                }
                // Only worth saying of an object that exists already; a new one is new.
                let reasons = match (&prior, unknown.is_empty()) {
                    (Some(_), false) => vec![Reason::MountsReissued { secrets: unknown.iter().map(|f| f.mounted.clone()).collect() }],
                    _ => Vec::new(),
                };
                // A Secret or ConfigMap rendered whole (configuration, not issued) is known now:
                // its fingerprint is its manifest's digest, so workloads mounting it roll when it
                // changes. Other digests are only needed to compare with a prior.
                let digest = (self.fingerprints && unknown.is_empty() && (prior.is_some() || mounted_node))
                    .then(|| rendered_digest.unwrap_or_else(|| digest(&manifest)));
                let action = match (&prior, &digest) {
                    (None, _) => Some(Action::Create),
                    (Some(p), Some(d)) if &p.digest == d => None,
                    _ => Some(Action::Update),
                };
                let fingerprint = digest.filter(|_| mounted_node);
                (Body::Object { manifest, fingerprints: unknown }, Decision { action, fingerprint }, reasons)
            }
            Body::Logical { ref settings } => {
                let digest = digest(settings);
                let action = match &prior {
                    None => Some(Action::Create),
                    Some(p) if p.digest == digest => None,
                    Some(_) => Some(Action::Update),
                };
                (node.body, Decision { action, fingerprint: None }, Vec::new())
            }
        };
        if moved_from.is_some() {
            decision.action = Some(Action::Replace);
            decision.fingerprint = None;
            reasons.insert(0, Reason::MovesSeed { from: moved_from.clone().unwrap_or_default(), to: node.seed.clone() });
        }
        let Some(mut action) = decision.action else {
            self.plan.unchanged += 1;
            if mounted_node {
                self.decisions.insert(node.address.clone(), decision);
            }
            self.plan.unchanged_deps.push((node.address, node.deps));
            return;
        };

        let prior_value = prior.as_ref().and_then(|p| (self.planner.priors)(&p.digest));
        let changes = match (&prior_value, action) {
            (Some(before), Action::Update | Action::Replace) => diff::diff(before, &recorded_value(&body)),
            _ => Vec::new(),
        };
        if action == Action::Update
            && let Some(object) = &object
            && let Some(change) = diff::immutable_change(object.kind, &changes)
        {
            action = Action::Replace;
            reasons.insert(0, Reason::ImmutableField { path: change.path.clone() });
        }
        if reasons.is_empty() {
            reasons.push(match action {
                Action::Create => Reason::Missing,
                _ if prior_value.is_none() => {
                    Reason::DiffersFromApplied { applied: prior.as_ref().map(|p| p.digest.clone()).unwrap_or_default() }
                }
                _ => Reason::FieldsChange { paths: changes.iter().map(|c| c.path.clone()).collect() },
            });
        }
        // A Secret rendered whole is known whatever happens to it; an issued one only when kept.
        let kept = match (&body, action) {
            (Body::Object { .. }, _) | (_, Action::Update) => decision.fingerprint,
            _ => None,
        };
        if mounted_node {
            self.decisions.insert(node.address.clone(), Decision { action: Some(action), fingerprint: kept });
        }
        self.plan.actions.push(PlannedAction {
            address: node.address,
            seed: node.seed,
            cluster: node.cluster,
            role: node.role,
            action,
            reasons,
            object,
            prior_seed: moved_from,
            desired: self.planner.keep_bodies.then(|| Desired::new(&body)),
            deps: node.deps,
            changes,
            review: classify::Review::default(),
            import: None,
        });
    }

    /// Decides a certificate Secret: create, re-issue (replace), or keep with its known
    /// fingerprint.
    fn plan_certificate(
        &self,
        node: &DesiredNode,
        request: &crate::pki::CertRequest,
        prior: Option<&NodeState>,
    ) -> (Option<Action>, Vec<Reason>, Option<String>) {
        let Some(prior) = prior else {
            let what = match request.kind {
                crate::pki::CertKind::Ca => Reason::NewCertificateAuthority { common_name: request.common_name.clone() },
                crate::pki::CertKind::Leaf => Reason::NewCertificate { common_name: request.common_name.clone() },
                crate::pki::CertKind::KeyPair => Reason::NewKeyPair,
                crate::pki::CertKind::Generated => Reason::NewSecret,
            };
            return (Some(Action::Create), vec![what], None);
        };
        let Some(cert) = &prior.certificate else {
            return (Some(Action::Replace), vec![Reason::NoCertificateRecorded], None);
        };
        if cert.request_digest != request.digest() {
            return (Some(Action::Replace), vec![Reason::RequestChanged], None);
        }
        if let Some(issuer) = &request.issuer {
            match self.decisions.get(issuer) {
                Some(Decision { action: Some(_), .. }) => {
                    return (Some(Action::Replace), vec![Reason::IssuerReissued { issuer: issuer.clone() }], None);
                }
                Some(Decision { fingerprint: Some(fp), .. }) if cert.issuer_fingerprint.as_ref() != Some(fp) => {
                    return (Some(Action::Replace), vec![Reason::SignedByOtherIssuer { issuer: issuer.clone() }], None);
                }
                _ => {}
            }
        }
        if let Some(not_after) = cert.not_after
            && let Some(renewal) = request.renewal(not_after, self.planner.now)
        {
            let reason = match renewal {
                crate::pki::Renewal::Expired => Reason::Expired { not_after },
                crate::pki::Renewal::Expiring => Reason::Expiring { not_after, window_days: crate::pki::RENEWAL_WINDOW_DAYS },
            };
            return (Some(Action::Replace), vec![reason], None);
        }
        let body_digest = digest(&recorded_value(&node.body));
        if body_digest != prior.digest {
            return (Some(Action::Update), vec![Reason::LabelsChangeCertificateKept], Some(cert.fingerprint.clone()));
        }
        (None, Vec::new(), Some(cert.fingerprint.clone()))
    }
}

/// Checks a version change against the one the cluster's control plane was applied at: a
/// lower version is refused unless `allowed` names the cluster; a higher one must follow the
/// KubermaticConfiguration's update rules (KKP's defaults without any).
fn check_version_change(topology: &Topology, cluster: &crate::topology::Cluster, state: Option<&State>, allowed: &[String]) -> Result<()> {
    let applied = state.and_then(|s| s.clusters.get(&cluster.name)).and_then(|c| c.version.as_deref());
    let Some(from) = applied.and_then(|v| semver::Version::parse(v).ok()) else { return Ok(()) };
    if cluster.version < from {
        if allowed.contains(&cluster.name) {
            return Ok(());
        }
        return Err(Error::Downgrade {
            at: cluster.source.clone(),
            cluster: cluster.name.clone(),
            from: from.to_string(),
            to: cluster.version.to_string(),
        });
    }
    topology.upgrade_allowed(&from, &cluster.version).map_err(|why| Error::UpgradePath {
        at: cluster.source.clone(),
        cluster: cluster.name.clone(),
        why,
    })
}

/// Refuses a change of a running cluster's etcd member count (see [`Error::EtcdMembers`]).
fn check_etcd_members(cluster: &crate::topology::Cluster, state: Option<&State>) -> Result<()> {
    let applied = state.and_then(|s| s.clusters.get(&cluster.name)).and_then(|c| c.etcd_members);
    match applied {
        Some(from) if from != cluster.etcd.cluster_size => {
            Err(Error::EtcdMembers { at: cluster.source.clone(), cluster: cluster.name.clone(), from, to: cluster.etcd.cluster_size })
        }
        _ => Ok(()),
    }
}

type ReviewInputs = (BTreeMap<String, classify::Upgrade>, BTreeMap<String, BTreeMap<String, String>>, classify::Context);

/// What review needs of the clusters with actions: version changes, labels, readable names.
fn review_inputs(topology: &Topology, state: Option<&State>, touched: &BTreeSet<&str>) -> ReviewInputs {
    let clusters = || topology.clusters.values().filter(|c| touched.contains(c.name.as_str()));
    let labels = clusters().filter(|c| !c.labels.is_empty()).map(|c| (c.name.clone(), c.labels.clone())).collect();
    let (upgrades, context) = review_context(clusters(), state);
    (upgrades, labels, context)
}

/// The version changes of `clusters` and what classification reads of them.
fn review_context<'a>(
    clusters: impl Iterator<Item = &'a Cluster> + Clone,
    state: Option<&State>,
) -> (BTreeMap<String, classify::Upgrade>, classify::Context) {
    let applied = |name: &str| state.and_then(|s| s.clusters.get(name)).and_then(|c| c.version.clone());
    let upgrades: BTreeMap<String, classify::Upgrade> = clusters
        .clone()
        .filter_map(|c| {
            let from = applied(&c.name)?;
            let to = c.version.to_string();
            (from != to).then(|| (c.name.clone(), classify::Upgrade { from, to }))
        })
        .collect();
    let context = classify::Context {
        upgraded: upgrades.keys().cloned().collect(),
        human_names: clusters
            .filter_map(|c| c.human_readable_name.clone().filter(|n| !n.is_empty()).map(|n| (c.name.clone(), n)))
            .collect(),
    };
    (upgrades, context)
}

/// Deletion rank: higher goes first (see [`Role::delete_rank`]).
fn delete_rank(action: &PlannedAction) -> u8 {
    action.role.delete_rank(action.object.as_ref().map(|o| o.kind))
}

/// Why destroying this node loses data, if it does. A seed's own namespace holds no control
/// plane, so only a user cluster's namespace is protected.
pub(crate) fn data_loss(action: &PlannedAction) -> Option<&'static str> {
    match action.action {
        Action::Replace => action.role.replace_loses(),
        Action::Delete if action.role == Role::Namespace && action.cluster.is_none() => None,
        Action::Delete => action.role.delete_loses(),
        Action::Create | Action::Update | Action::Import => None,
    }
}

fn refuse_destroy(actions: &[PlannedAction], allowed: &[Address]) -> Result<()> {
    let refused: Vec<(Address, &'static str)> = actions
        .iter()
        .filter_map(|a| data_loss(a).map(|why| (a, why)))
        .filter(|(a, _)| !allowed.iter().any(|p| a.address.starts_with(p)))
        .map(|(a, why)| (a.address.clone(), why))
        .collect();
    if refused.is_empty() { Ok(()) } else { Err(Error::DestroyRefused(refused)) }
}

/// Dependencies of an action among the planned actions (`in_plan`), looking through unchanged
/// nodes. `own` are the node's dependencies, `unchanged` gives those of a desired node without
/// action.
fn action_deps<'a>(
    own: &'a [Address],
    unchanged: &impl Fn(&Address) -> Option<&'a Vec<Address>>,
    in_plan: &impl Fn(&Address) -> bool,
) -> Vec<Address> {
    // Usually every dependency has an action itself (always in a first plan).
    if own.iter().all(in_plan) {
        let mut out = own.to_vec();
        out.sort();
        out.dedup();
        return out;
    }
    let mut out = Vec::new();
    let mut stack: Vec<&Address> = own.iter().collect();
    let mut seen = HashSet::new();
    while let Some(dep) = stack.pop() {
        if !seen.insert(dep) {
            continue;
        }
        if in_plan(dep) {
            out.push(dep.clone());
        } else if let Some(more) = unchanged(dep) {
            stack.extend(more);
        }
    }
    out.sort();
    out
}

/// Applies `--target` and `--exclude`; returns the clusters the selection cut into, whose
/// input digests must not be recorded, and the addresses of the actions it dropped.
/// `unchanged` holds the desired nodes without action.
fn select(
    actions: &mut Vec<PlannedAction>,
    options: &Options,
    unchanged: &HashMap<Address, Vec<Address>>,
    state: Option<&State>,
) -> Result<(BTreeSet<String>, HashSet<Address>)> {
    if options.targets.is_empty() && options.excludes.is_empty() {
        return Ok(Default::default());
    }
    let known = |p: &Address| {
        actions.iter().any(|a| a.address.starts_with(p))
            || unchanged.keys().any(|a| a.starts_with(p))
            || state.is_some_and(|s| s.nodes.keys().any(|a| a.starts_with(p)))
    };
    for (flag, list) in [("--target", &options.targets), ("--exclude", &options.excludes)] {
        if let Some(bad) = list.iter().find(|p| !known(p)) {
            return Err(Error::NoMatch { flag, address: bad.clone() });
        }
    }
    let index: HashMap<Address, usize> = actions.iter().enumerate().map(|(i, a)| (a.address.clone(), i)).collect();
    let mut keep = vec![true; actions.len()];
    if !options.targets.is_empty() {
        keep = vec![false; actions.len()];
        // `seed/NAME` also covers the clusters that seed hosts, so a seed can be a canary.
        let on_seed = |t: &Address, a: &PlannedAction| t.as_str().strip_prefix("seed/").is_some_and(|s| !s.contains('/') && a.seed == s);
        let mut stack: Vec<usize> = (0..actions.len())
            .filter(|&i| options.targets.iter().any(|t| actions[i].address.starts_with(t) || on_seed(t, &actions[i])))
            .collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut keep[i], true) {
                continue;
            }
            stack.extend(actions[i].deps.iter().filter_map(|d| index.get(d).copied()));
        }
    }
    if !options.excludes.is_empty() {
        let mut dependants: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, a) in actions.iter().enumerate() {
            for d in &a.deps {
                if let Some(&j) = index.get(d) {
                    dependants.entry(j).or_default().push(i);
                }
            }
        }
        let mut stack: Vec<usize> =
            (0..actions.len()).filter(|&i| options.excludes.iter().any(|x| actions[i].address.starts_with(x))).collect();
        let mut dropped = vec![false; actions.len()];
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut dropped[i], true) {
                continue;
            }
            keep[i] = false;
            stack.extend(dependants.get(&i).into_iter().flatten().copied());
        }
    }
    let mut partial = BTreeSet::new();
    let mut dropped = HashSet::new();
    let mut i = 0;
    actions.retain(|a| {
        let k = keep[i];
        i += 1;
        if !k {
            dropped.insert(a.address.clone());
            if let Some(c) = &a.cluster {
                partial.insert(c.clone());
            }
        }
        k
    });
    Ok((partial, dropped))
}

/// Orders actions by seed, then seed-level before clusters, then cluster name, then
/// dependency level, then address: deterministic, and every action after its dependencies
/// within its group. `outside` holds the levels of the actions of other groups these
/// depend on (a cluster's on its seed's).
fn order(actions: Vec<PlannedAction>, outside: &HashMap<Address, usize>) -> Result<Vec<PlannedAction>> {
    let outside_deps: BTreeSet<&Address> = actions.iter().flat_map(|a| &a.deps).filter(|d| outside.contains_key(*d)).collect();
    let outside_deps: Vec<&Address> = outside_deps.into_iter().collect();
    let dag = Dag::new(actions.iter().map(|a| (&a.address, a.deps.as_slice())).chain(outside_deps.iter().map(|a| (*a, &[][..]))))?;
    let levels = dag.levels_from(|i| outside_deps.get(i.checked_sub(actions.len())?).map(|a| outside[*a]));
    // Sort positions, not the actions themselves: an action is hundreds of bytes.
    let mut positions: Vec<usize> = (0..actions.len()).collect();
    positions.sort_by(|&i, &j| {
        let (a, b) = (&actions[i], &actions[j]);
        (group_key(a), levels[i], &a.address).cmp(&(group_key(b), levels[j], &b.address))
    });
    let mut slots: Vec<Option<PlannedAction>> = actions.into_iter().map(Some).collect();
    Ok(positions.into_iter().map(|i| slots[i].take().expect("each position once")).collect())
}

/// Counts `actions` (and `unchanged` nodes).
pub fn summarise(actions: &[PlannedAction], unchanged: usize) -> Summary {
    let mut s = Summary { unchanged, ..Summary::default() };
    let mut seeds = BTreeSet::new();
    let mut clusters = BTreeSet::new();
    for (i, a) in actions.iter().enumerate() {
        match a.action {
            Action::Create => s.add += 1,
            Action::Update => s.change += 1,
            Action::Replace => s.replace += 1,
            Action::Delete => s.destroy += 1,
            Action::Import => s.import += 1,
        }
        // Actions come grouped: count a group's seed and cluster at its first action.
        let previous = i.checked_sub(1).map(|p| &actions[p]);
        if previous.is_none_or(|p| p.seed != a.seed) {
            seeds.insert(&a.seed);
        }
        if previous.is_none_or(|p| p.cluster != a.cluster) {
            clusters.extend(&a.cluster);
        }
        seeds.extend(&a.prior_seed);
    }
    s.seeds = seeds.len();
    s.clusters = clusters.len();
    s
}

#[cfg(test)]
mod tests;
