//! Import: taking over control planes that already run (made by kkp before the state was
//! lost, or by KKP itself) by adopting their live objects into the state.
//!
//! [`adopt`] is pure: given what kkp renders for the topology and what the seeds hold, it
//! decides per cluster whether adopting is safe and what the state records for every object
//! (identity, the live object reduced to kkp's fields and its digest, certificate
//! fingerprint, not-after and issuer read from the live Secret; never key material). The
//! zero-diff proof is its report: a cluster is `adopted, no changes` (a plan right after
//! shows none for it), `adopted, N changes` (listed), or `not adopted` with the reasons (etcd
//! would change or roll, a CA or the service-account key would be issued anew, an immutable
//! field such as a selector would change) unless `--accept` names it. CAs and the
//! service-account key are adopt-only: taken as they are, never issued over. A cluster
//! whose KKP `Cluster` object is not paused is refused: KKP's controllers would fight kkp.
//!
//! [`read`] reads the seeds ([`read_live`]: one paginated LIST per seed and kind; Secrets
//! metadata-only, their bodies only from the namespaces holding a Secret kkp renders; a GET per
//! cluster for KKP's `Cluster` object). [`run`] then records the adopted nodes under the state
//! lock and puts kkp's ownership label on adopted objects kkp did not make (a server-side
//! apply of just the label as manager `kkp`): the only write import makes to a seed.
//! [`to_plan`] instead saves the adoption as a plan (`kkp import -o`) whose actions of class
//! `import` carry those records; applying it first checks with [`verify_live`] that every
//! adopted object is still what the plan recorded ([`changed_since`]).

use crate::address::Address;
use crate::object::ObjectRef;
use crate::plan::Desired;
use crate::plan::diff::{self, FieldChange};
use crate::render::{Body, DesiredNode};
use crate::role::Role;
use crate::state::{CertificateState, Change, NodeState, State};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use crate::plan::import::{Pending, Verdict};

/// One node import adopts: its record (digest filled in from the body when recorded) and
/// the body the state stores for it (for an object, the live object reduced to kkp's fields;
/// for a Secret kkp issues, its request; never key material).
#[derive(Debug, Clone)]
pub struct Adopted {
    /// The node.
    pub address: Address,
    /// What the state records.
    pub record: NodeState,
    /// What the state stores as its applied body ([`crate::plan::recorded_value`] of it).
    pub body: Body,
}

/// What [`adopt`] decided.
#[derive(Debug, Default)]
pub struct Adoption {
    /// Per cluster (`None`: seeds' own nodes), the verdict.
    pub verdicts: BTreeMap<String, Verdict>,
    /// Everything adopted, in a stable order.
    pub adopted: Vec<Adopted>,
    /// Adopted objects kkp does not own yet, by seed: they get kkp's ownership label, so that
    /// refreshes find them with their label-selected lists.
    pub to_label: Vec<(String, ObjectRef)>,
}

/// Whether kkp neither labelled nor wrote any field of `object` (KKP or someone else made it).
fn foreign(object: &Value) -> bool {
    let labelled = object.pointer("/metadata/labels").and_then(|l| l.get(crate::render::MANAGED_BY.0)).and_then(Value::as_str)
        == Some(crate::render::MANAGED_BY.1);
    let written = object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|m| m.iter().any(|e| e.get("manager").and_then(Value::as_str) == Some(crate::target::kube::FIELD_MANAGER)));
    !labelled && !written
}

/// `object` with kkp's ownership label, as it will be once import labelled it.
fn labelled(object: &Value) -> Value {
    let mut object = object.clone();
    object["metadata"]["labels"][crate::render::MANAGED_BY.0] = Value::String(crate::render::MANAGED_BY.1.into());
    object
}

/// What a seed holds, by identity.
pub type Live = HashMap<String, HashMap<ObjectRef, Value>>;

/// The group under which a node is reported: its cluster, or `seed <name>`.
fn group(node: &DesiredNode) -> String {
    node.cluster.clone().unwrap_or_else(|| format!("seed {}", node.seed))
}

/// Decides the adoption of `nodes` (rendered from the topology) against `live`. Nodes `state`
/// already holds are left alone. `managed_by_kkp` lists clusters whose KKP `Cluster` object is
/// not paused (refused). `accept` lets a cluster (or node) be adopted despite reasons.
pub fn adopt(nodes: &[DesiredNode], state: Option<&State>, live: &Live, managed_by_kkp: &BTreeSet<String>, accept: &[Address]) -> Adoption {
    let mut by_group: BTreeMap<String, Vec<&DesiredNode>> = BTreeMap::new();
    for node in nodes {
        if state.is_some_and(|s| s.nodes.contains_key(&node.address)) {
            continue;
        }
        by_group.entry(group(node)).or_default().push(node);
    }
    let mut out = Adoption::default();
    for (name, group_nodes) in by_group {
        let accepted = |address: &Address| accept.iter().any(|a| address.starts_with(a));
        let mut reasons = Vec::new();
        if managed_by_kkp.contains(&name) {
            reasons.push(format!(
                "KKP's controllers still manage it (its Cluster object is not paused)\n    fix: pause it first: kubectl patch cluster {name} --type merge -p '{{\"spec\":{{\"pause\":true}}}}'"
            ));
        }
        let mut pending = Vec::new();
        let mut changes = Vec::new();
        let mut to_label = Vec::new();
        // A cluster of which nothing runs yet is simply created by the next apply.
        let any_live = group_nodes.iter().any(|n| n.body.object().is_some_and(|o| live.get(&n.seed).is_some_and(|l| l.contains_key(&o))));
        // Fingerprints of the Secrets and ConfigMaps adopted so far, for the workloads' rollout
        // annotations and the leaves' issuers: those come first (CAs before their leaves, as
        // rendered).
        let mut fingerprints: HashMap<Address, String> = HashMap::new();
        let (mounted, others): (Vec<&DesiredNode>, Vec<&DesiredNode>) = group_nodes.iter().partition(|n| n.body.is_mounted());
        for node in mounted.iter().chain(&others) {
            let found = node.body.object().and_then(|o| live.get(&node.seed).and_then(|objects| objects.get(&o)));
            match &node.body {
                Body::Logical { settings } => {
                    let record = NodeState {
                        seed: node.seed.clone(),
                        role: node.role,
                        object: None,
                        digest: crate::object::digest(settings),
                        certificate: None,
                        version: None,
                    };
                    changes.push(Adopted { address: node.address.clone(), record, body: node.body.clone() });
                }
                Body::Secret { object, request, .. } => {
                    let Some(found) = found else {
                        if crate::refresh::drift::needs_acceptance(node.role) && !accepted(&node.address) && any_live {
                            reasons.push(format!(
                                "{} does not exist: a new one would be issued and everything it signs re-issued",
                                node.address
                            ));
                        }
                        pending.push(Pending { address: node.address.clone(), what: "created".into(), fields: Vec::new() });
                        continue;
                    };
                    let data = crate::refresh::drift::secret_data(found);
                    let facts = crate::refresh::drift::live_fingerprints(request, &data);
                    let issuer_fingerprint = request.issuer.as_ref().and_then(|i| fingerprints.get(i).cloned());
                    let usable = match request.kind {
                        crate::pki::CertKind::Ca | crate::pki::CertKind::KeyPair => crate::pki::accept_as_is(request, &data).is_some(),
                        _ => !facts.is_empty(),
                    };
                    if !usable {
                        if crate::refresh::drift::needs_acceptance(node.role) && !accepted(&node.address) {
                            reasons.push(format!("{} holds no usable CA or key: it would be issued anew", node.address));
                        }
                        pending.push(Pending { address: node.address.clone(), what: "re-issued".into(), fields: Vec::new() });
                        continue;
                    }
                    if foreign(found) {
                        to_label.push((node.seed.clone(), object.clone()));
                    }
                    let (fingerprint, not_after) = facts.first().cloned().expect("a usable Secret has a fingerprint");
                    fingerprints.insert(node.address.clone(), fingerprint.clone());
                    let record = NodeState {
                        seed: node.seed.clone(),
                        role: node.role,
                        object: Some(object.clone()),
                        digest: crate::object::digest(&crate::plan::recorded_value(&node.body)),
                        certificate: Some(CertificateState {
                            request_digest: request.digest(),
                            fingerprint,
                            not_after,
                            issuer_fingerprint,
                        }),
                        version: None,
                    };
                    changes.push(Adopted { address: node.address.clone(), record, body: node.body.clone() });
                }
                Body::Object { manifest, fingerprints: refs } => {
                    let mut desired = manifest.clone();
                    crate::render::fill_fingerprints(&mut desired, refs, |secret| fingerprints.get(secret).cloned());
                    let object = node.body.object().expect("objects have an identity");
                    if object.kind.is_mounted() {
                        fingerprints.insert(node.address.clone(), crate::object::digest(&desired));
                    }
                    let Some(found) = found else {
                        pending.push(Pending { address: node.address.clone(), what: "created".into(), fields: Vec::new() });
                        continue;
                    };
                    let found = if foreign(found) {
                        to_label.push((node.seed.clone(), object.clone()));
                        &labelled(found)
                    } else {
                        found
                    };
                    let projected = crate::refresh::drift::project(&desired, found).unwrap_or(Value::Null);
                    let fields = diff::diff(&projected, &desired);
                    if !fields.is_empty() {
                        if let Some(why) = refusal(node, object.kind, &fields)
                            && !accepted(&node.address)
                        {
                            reasons.push(why);
                        }
                        pending.push(Pending { address: node.address.clone(), what: "updated".into(), fields });
                    }
                    let record = NodeState {
                        seed: node.seed.clone(),
                        role: node.role,
                        object: Some(object),
                        digest: crate::object::digest(&projected),
                        certificate: None,
                        version: None,
                    };
                    changes.push(Adopted {
                        address: node.address.clone(),
                        record,
                        body: Body::Object { manifest: projected, fingerprints: Vec::new() },
                    });
                }
            }
        }
        let name_as_address = Address::parse(&format!("cluster/{name}")).ok();
        if !reasons.is_empty() && !name_as_address.as_ref().is_some_and(accepted) {
            out.verdicts.insert(name, Verdict::NotAdopted { reasons });
            continue;
        }
        out.adopted.extend(changes);
        out.to_label.extend(to_label);
        out.verdicts
            .insert(name, if pending.is_empty() { Verdict::AdoptedNoChanges } else { Verdict::AdoptedWithChanges { changes: pending } });
    }
    out
}

/// Why changing these fields of an existing object is not a safe in-place change.
fn refusal(node: &DesiredNode, kind: crate::object::Kind, fields: &[FieldChange]) -> Option<String> {
    if let Some(change) = diff::immutable_change(kind, fields) {
        return Some(format!("{}: {} would change, which replaces the object", node.address, change.path));
    }
    if node.role == Role::DataStore {
        let rolls = fields.iter().find(|c| c.path.starts_with("spec.template") || c.path.starts_with("spec.replicas"));
        if let Some(change) = rolls {
            return Some(format!("{}: {} would change, which rolls etcd's pods", node.address, change.path));
        }
    }
    None
}

/// `cluster NAME` for a cluster's verdict, `seed NAME` as it is.
fn group_label(name: &str) -> String {
    if name.starts_with("seed ") { name.to_string() } else { format!("cluster {name}") }
}

/// The report in words, one block per cluster.
pub fn report(adoption: &Adoption) -> String {
    adoption.verdicts.iter().map(|(name, verdict)| crate::plan::display::import_verdict(&group_label(name), verdict)).collect()
}

/// How `kkp import` ended.
#[derive(Debug)]
pub enum Outcome {
    /// The view declined.
    Declined,
    /// Adopted nodes were recorded (possibly none).
    Recorded {
        /// Nodes recorded.
        nodes: usize,
        /// Objects given kkp's ownership label.
        labelled: usize,
        /// Objects whose label could not be written (with why); the state holds them anyway.
        unlabelled: Vec<(ObjectRef, String)>,
        /// The state's serial.
        serial: u64,
        /// Clusters not adopted.
        refused: usize,
    },
}

/// Reads what the seeds hold of `wanted` (by seed): one LIST per seed and kind, not a GET per
/// object. KKP's objects carry no kkp label, so lists are not filtered by it. Secrets are
/// listed metadata-only first; their bodies (a certificate to fingerprint) are then read only
/// from the namespaces holding a Secret kkp renders, so the keys of every other Secret on the
/// seed never reach kkp. On error: the seed and why.
pub async fn read_live(
    targets: &crate::target::Targets,
    wanted: &BTreeMap<String, BTreeSet<ObjectRef>>,
    parallelism: usize,
) -> Result<Live, (String, crate::target::Error)> {
    use crate::object::Kind;
    use futures::StreamExt;
    let none = BTreeMap::new();
    let none = &none;
    let no_target = |seed: &str| crate::target::Error::Unreachable {
        seed: seed.to_string(),
        context: "import".into(),
        message: "no target is configured for it".into(),
        transient: false,
    };
    let mut lists: Vec<(String, Kind, Option<String>, bool)> = Vec::new();
    for (seed, objects) in wanted {
        let kinds: BTreeSet<Kind> = objects.iter().map(|o| o.kind).collect();
        lists.extend(kinds.into_iter().map(|kind| (seed.clone(), kind, None, kind == Kind::Secret)));
    }
    let run = |lists: Vec<(String, Kind, Option<String>, bool)>| {
        futures::stream::iter(lists)
            .map(|(seed, kind, namespace, metadata_only)| {
                let target = targets.get(&seed).cloned();
                async move {
                    let Some(target) = target else {
                        let error = no_target(&seed);
                        return (seed, metadata_only, Err(error));
                    };
                    let listed = crate::apply::retry::retry(&Default::default(), || async {
                        if metadata_only {
                            target.list_metadata(kind, namespace.as_deref(), none).await
                        } else {
                            target.list(kind, namespace.as_deref(), none).await
                        }
                    })
                    .await;
                    (seed, metadata_only, listed)
                }
            })
            .buffer_unordered(parallelism.max(1))
            .collect::<Vec<_>>()
    };
    let mut live: Live = HashMap::new();
    let mut secrets_present: BTreeSet<(String, ObjectRef)> = BTreeSet::new();
    for (seed, metadata_only, answer) in run(lists).await {
        let items = answer.map_err(|e| (seed.clone(), e))?;
        for item in items {
            let Some(identity) = ObjectRef::of(&item) else { continue };
            if metadata_only {
                secrets_present.insert((seed.clone(), identity));
            } else {
                live.entry(seed.clone()).or_default().insert(identity, item);
            }
        }
    }
    let bodies: BTreeSet<(String, String)> = wanted
        .iter()
        .flat_map(|(seed, objects)| objects.iter().map(move |o| (seed, o)))
        .filter(|(seed, o)| o.kind == Kind::Secret && secrets_present.contains(&((*seed).clone(), (*o).clone())))
        .filter_map(|(seed, o)| Some((seed.clone(), o.namespace.clone()?)))
        .collect();
    let lists = bodies.into_iter().map(|(seed, namespace)| (seed, Kind::Secret, Some(namespace), false)).collect();
    for (seed, _, answer) in run(lists).await {
        let items = answer.map_err(|e| (seed.clone(), e))?;
        let objects = live.entry(seed).or_default();
        objects.extend(items.into_iter().filter_map(|item| Some((ObjectRef::of(&item)?, item))));
    }
    Ok(live)
}

/// What [`read`] found: the adoption, against which state, and where the seeds are.
pub struct Read {
    /// The decision.
    pub adoption: Adoption,
    /// The state it was decided against.
    pub state: Option<State>,
    /// The seeds' targets and identities.
    pub connected: crate::refresh::Connected,
}

/// Reads the seeds of `topology` (`seeds` limits them; empty: all) and decides the adoption
/// against `state`. Writes nothing.
pub async fn read(
    state: Option<State>,
    factory: &dyn crate::apply::TargetFactory,
    topology: &crate::topology::Topology,
    seeds: &[String],
    accept: &[Address],
    parallelism: usize,
) -> Result<Read, crate::apply::Error> {
    let chosen: BTreeSet<String> = topology.seeds.keys().filter(|s| seeds.is_empty() || seeds.contains(s)).cloned().collect();
    let connected = crate::refresh::connect(factory, &chosen, state.as_ref()).await.map_err(Box::new)?;
    if let Some((seed, error)) = connected.unreachable.iter().next() {
        return Err(crate::apply::Error::Target(crate::target::Error::Unreachable {
            seed: seed.clone(),
            context: "import".into(),
            message: error.clone(),
            transient: false,
        }));
    }
    use futures::StreamExt;
    // One seed at a time: what kkp renders for it and what it holds are dropped before the
    // next seed is read, so memory grows with the biggest seed, not with the fleet (the
    // adoption keeps only records and bodies reduced to kkp's fields).
    let mut adoption = Adoption::default();
    for seed in &chosen {
        let clusters: Vec<&crate::topology::Cluster> = topology.clusters.values().filter(|c| &c.seed == seed).collect();
        let mut nodes: Vec<DesiredNode> = topology.seeds.get(seed).map(crate::render::seed).unwrap_or_default();
        for cluster in &clusters {
            nodes.extend(crate::render::cluster(cluster));
        }
        let objects: BTreeSet<ObjectRef> = nodes.iter().filter_map(|n| n.body.object()).collect();
        let wanted = BTreeMap::from([(seed.clone(), objects)]);
        let live = read_live(&connected.targets, &wanted, parallelism).await.map_err(|(_, e)| crate::apply::Error::Target(e))?;
        let target = &connected.targets[seed];
        let asked: Vec<(String, crate::target::Result<Option<Value>>)> = futures::stream::iter(clusters)
            .map(|cluster| async move { (cluster.name.clone(), target.kkp_cluster(&cluster.name).await) })
            .buffer_unordered(parallelism.max(1))
            .collect()
            .await;
        let mut managed = BTreeSet::new();
        for (name, found) in asked {
            if found?.is_some_and(|c| c.pointer("/spec/pause").and_then(Value::as_bool) != Some(true)) {
                managed.insert(name);
            }
        }
        let part = adopt(&nodes, state.as_ref(), &live, &managed, accept);
        adoption.verdicts.extend(part.verdicts);
        adoption.adopted.extend(part.adopted);
        adoption.to_label.extend(part.to_label);
    }
    Ok(Read { adoption, state, connected })
}

/// Reads the seeds of `topology`, decides the adoption and, once `approve` saw the report,
/// records it in the state under its lock. `seeds` limits the seeds (empty: all).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    backend: std::sync::Arc<dyn crate::state::backend::Backend>,
    factory: &dyn crate::apply::TargetFactory,
    topology: &crate::topology::Topology,
    seeds: &[String],
    accept: &[Address],
    parallelism: usize,
    approve: &(dyn Fn(&Adoption) -> Result<bool, String> + Sync),
) -> Result<Outcome, crate::apply::Error> {
    use futures::StreamExt;
    let lock = backend.lock("import").await?;
    let result = async {
        let loaded = backend.load().await?;
        let Read { adoption, state, connected } = read(loaded.state, factory, topology, seeds, accept, parallelism).await?;
        if !approve(&adoption).map_err(crate::apply::Error::NotApproved)? {
            return Ok(Outcome::Declined);
        }
        let refused = adoption.verdicts.values().filter(|v| matches!(v, Verdict::NotAdopted { .. })).count();
        let mut state = state.unwrap_or_else(|| State::new(uuid::Uuid::new_v4().to_string()));
        let mut bodies = Vec::new();
        let mut recorded = 0;
        let mut adopted_seeds = BTreeSet::new();
        for Adopted { address, mut record, body } in adoption.adopted {
            adopted_seeds.insert(record.seed.clone());
            let bytes = serde_json::to_vec(&crate::plan::recorded_value(&body)).expect("plain data");
            // The digest a plan compares with must be the one of the stored body.
            record.digest = crate::object::digest_bytes(&bytes);
            bodies.push((record.digest.clone(), bytes));
            recorded += 1;
            state.apply(Change::Put { address, node: record });
        }
        for seed in adopted_seeds {
            if let Some(identity) = connected.identities.get(&seed) {
                state.apply(Change::Target { seed, target: Some(identity.clone()) });
            }
        }
        backend.objects().write_pack(&bodies)?;
        state.serial += 1;
        backend.persist(&state, lock.as_ref()).await?;
        // The state first: a label without a state entry would claim an object kkp does not
        // know; a state entry without its label only costs a refresh one GET.
        let labels: Vec<_> = futures::stream::iter(adoption.to_label)
            .map(|(seed, object)| {
                let target = connected.targets[&seed].clone();
                async move {
                    let written = crate::apply::retry::retry(&Default::default(), || target.add_managed_by_label(&object)).await;
                    (object, written)
                }
            })
            .buffer_unordered(parallelism.max(1))
            .collect()
            .await;
        let mut labelled = 0;
        let mut unlabelled = Vec::new();
        for (object, written) in labels {
            match written {
                Ok(_) => labelled += 1,
                Err(e) => unlabelled.push((object, e.to_string())),
            }
        }
        Ok(Outcome::Recorded { nodes: recorded, labelled, unlabelled, serial: state.serial, refused })
    }
    .await;
    lock.release().await;
    result
}

/// The adoption as a plan to save and apply later (`kkp import -o import.plan`): one action of
/// class `import` per adopted node, carrying what the state will record (the body, the
/// certificate's public facts) and whether kkp's label is added; the verdicts as notices. Its
/// basis is `state` with every adopted address absent, so applying it is refused once the
/// state holds any of them.
pub fn to_plan(adoption: &Adoption, state: Option<&State>) -> crate::plan::Plan {
    use crate::plan::{Action, Notice, PlannedAction, Reason, import::ImportRecord};
    let labelled: BTreeSet<(&str, &ObjectRef)> = adoption.to_label.iter().map(|(seed, object)| (seed.as_str(), object)).collect();
    let mut actions: Vec<PlannedAction> = adoption
        .adopted
        .iter()
        .map(|adopted| {
            let record = &adopted.record;
            let label = record.object.as_ref().is_some_and(|o| labelled.contains(&(record.seed.as_str(), o)));
            PlannedAction {
                address: adopted.address.clone(),
                seed: record.seed.clone(),
                cluster: adopted.address.cluster().map(str::to_string),
                role: record.role,
                action: Action::Import,
                reasons: vec![Reason::ImportExisting { adds_label: label }],
                object: record.object.clone(),
                prior_seed: None,
                desired: Some(Desired::new(&adopted.body)),
                deps: Vec::new(),
                changes: Vec::new(),
                review: Default::default(),
                import: Some(Box::new(ImportRecord { certificate: record.certificate.clone(), label })),
            }
        })
        .collect();
    // By seed, then cluster, then address: the order views group by.
    actions.sort_by(|a, b| (&a.seed, &a.cluster, &a.address).cmp(&(&b.seed, &b.cluster, &b.address)));
    crate::plan::classify::annotate(&mut actions, &Default::default());
    let basis = crate::plan::Basis {
        lineage: state.map(|s| s.lineage.clone()),
        serial: state.map_or(0, |s| s.serial),
        digests: actions.iter().map(|a| (a.address.clone(), None)).collect(),
    };
    let notices =
        adoption.verdicts.iter().map(|(name, verdict)| Notice::Import { group: group_label(name), verdict: verdict.clone() }).collect();
    crate::plan::Plan { basis, summary: crate::plan::summarise(&actions, 0), actions, notices, ..Default::default() }
}

/// Checks, before anything is recorded or written, that every object an import plan adopts
/// is still what it recorded (one LIST per seed and kind): a CA replaced since the plan was
/// made is never recorded, and an import plan lands whole or not at all. Returns what
/// changed, one line per object.
pub async fn verify_live(plan: &crate::plan::Plan, connected: &crate::refresh::Connected, parallelism: usize) -> Result<(), Vec<String>> {
    let imports: Vec<&crate::plan::PlannedAction> = plan.actions.iter().filter(|a| a.action == crate::plan::Action::Import).collect();
    let mut wanted: BTreeMap<String, BTreeSet<ObjectRef>> = BTreeMap::new();
    for action in &imports {
        if let Some(object) = &action.object {
            wanted.entry(action.seed.clone()).or_default().insert(object.clone());
        }
    }
    let mut problems = Vec::new();
    let live = match read_live(&connected.targets, &wanted, parallelism).await {
        Ok(live) => live,
        Err((seed, e)) => {
            let why = connected.unreachable.get(&seed).cloned().unwrap_or_else(|| e.to_string());
            return Err(vec![format!("seed {seed} could not be read: {why}")]);
        }
    };
    for action in imports {
        let (Some(object), Some(record), Some(body)) = (&action.object, &action.import, &action.desired) else { continue };
        match live.get(&action.seed).and_then(|objects| objects.get(object)) {
            None => problems.push(format!("{}: {object} no longer exists on seed {}", action.address, action.seed)),
            Some(found) => {
                if let Some(why) = changed_since(&body.body(), record, found) {
                    problems.push(format!("{}: {object} on seed {} changed: {why}", action.address, action.seed));
                }
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(problems) }
}

/// Why an adopted live object no longer is what the import plan recorded (`None`: it still
/// is). `body` and `record` are the import action's; `live` is the object now.
pub fn changed_since(body: &Body, record: &crate::plan::import::ImportRecord, live: &Value) -> Option<String> {
    match body {
        Body::Secret { request, .. } => {
            let planned = record.certificate.as_ref()?;
            let data = crate::refresh::drift::secret_data(live);
            let now = crate::refresh::drift::live_fingerprints(request, &data);
            let found = now.first().map(|(f, _)| f.as_str()).unwrap_or("none");
            (found != planned.fingerprint)
                .then(|| format!("its content's fingerprint is {found}, the plan recorded {}", planned.fingerprint))
        }
        Body::Object { manifest, .. } => {
            let live = if record.label { labelled(live) } else { live.clone() };
            let projected = crate::refresh::drift::project(manifest, &live).unwrap_or(Value::Null);
            let fields = diff::diff(manifest, &projected);
            (!fields.is_empty()).then(|| {
                let paths: Vec<&str> = fields.iter().map(|f| f.path.as_str()).collect();
                format!("changed fields: {}", paths.join(", "))
            })
        }
        Body::Logical { .. } => None,
    }
}

/// Where KKP keeps what kkp's topology is made of: KubermaticConfigurations and Seeds on the
/// master (namespace kubermatic), Clusters on each seed.
pub const CONFIGURATION_PATHS: &[&str] = &[
    "/apis/operator.kubermatic.io/v1/namespaces/kubermatic/kubermaticconfigurations",
    "/apis/kubermatic.k8c.io/v1/namespaces/kubermatic/kubermaticconfigurations",
];
/// Seeds, on the master.
pub const SEEDS_PATH: &str = "/apis/kubermatic.k8c.io/v1/namespaces/kubermatic/seeds";
/// Clusters, on a seed.
pub const CLUSTERS_PATH: &str = "/apis/kubermatic.k8c.io/v1/clusters";

/// An object as a topology document: apiVersion, kind, name, namespace, labels, annotations
/// (without kubectl's last-applied copy) and spec; no status or server metadata.
pub fn clean(object: &Value, api_version: &str, kind: &str) -> Value {
    let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
    let mut metadata = serde_json::Map::new();
    for key in ["name", "namespace", "labels"] {
        if let Some(value) = meta.get(key).filter(|v| !v.is_null()) {
            metadata.insert(key.into(), value.clone());
        }
    }
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let kept: serde_json::Map<String, Value> = annotations
            .iter()
            .filter(|(k, _)| k.as_str() != "kubectl.kubernetes.io/last-applied-configuration")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !kept.is_empty() {
            metadata.insert("annotations".into(), Value::Object(kept));
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("apiVersion".into(), object.get("apiVersion").cloned().unwrap_or_else(|| api_version.into()));
    out.insert("kind".into(), object.get("kind").cloned().unwrap_or_else(|| kind.into()));
    out.insert("metadata".into(), Value::Object(metadata));
    if let Some(spec) = object.get("spec") {
        out.insert("spec".into(), spec.clone());
    }
    Value::Object(out)
}

/// Topology YAML of cleaned documents, one after another, in a stable order
/// (configuration, seeds, clusters; by name within each).
pub fn topology_yaml(configurations: &[Value], seeds: &[Value], clusters: &[Value]) -> String {
    let name = |v: &Value| v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut out = String::from("# Written by `kkp import` from the KKP objects on the master and the seeds.\n");
    for group in [configurations, seeds, clusters] {
        let mut sorted: Vec<&Value> = group.iter().collect();
        sorted.sort_by_key(|v| name(v));
        for doc in sorted {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(doc).expect("JSON values serialise to YAML"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clean_documents_carry_no_status_or_server_metadata() {
        let live = json!({"metadata": {"name": "c", "uid": "u", "resourceVersion": "7", "managedFields": [], "creationTimestamp": "t",
            "labels": {"project-id": "p"}, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"}},
            "spec": {"version": "1.33.0"}, "status": {"phase": "Running"}});
        let doc = clean(&live, "kubermatic.k8c.io/v1", "Cluster");
        assert_eq!(
            doc,
            json!({"apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster",
            "metadata": {"name": "c", "labels": {"project-id": "p"}, "annotations": {"note": "x"}}, "spec": {"version": "1.33.0"}})
        );
        let yaml = topology_yaml(&[], &[], &[doc]);
        assert!(yaml.contains("kind: Cluster") && !yaml.contains("status") && !yaml.contains("uid"), "{yaml}");
    }

    /// A saved import is a plan like any other: its actions are class `import`, survive the
    /// plan file's round trip, and a policy decides on them by that class.
    #[test]
    fn an_import_plan_is_class_import_for_policies_and_round_trips() {
        let address = Address::parse("cluster/c1/configmap/audit-config").unwrap();
        let object = ObjectRef::namespaced(crate::object::Kind::ConfigMap, "cluster-c1", "audit-config");
        let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "audit-config", "namespace": "cluster-c1"}, "data": {"a": "1"}});
        let adoption = Adoption {
            verdicts: BTreeMap::from([("c1".to_string(), Verdict::AdoptedNoChanges)]),
            adopted: vec![Adopted {
                address: address.clone(),
                record: NodeState {
                    seed: "eu".into(),
                    role: Role::Config,
                    object: Some(object.clone()),
                    digest: String::new(),
                    certificate: None,
                    version: None,
                },
                body: Body::Object { manifest: manifest.clone(), fingerprints: Vec::new() },
            }],
            to_label: vec![("eu".to_string(), object)],
        };
        let plan = to_plan(&adoption, None);
        assert_eq!(plan.summary.import, 1);
        assert_eq!(plan.actions[0].review.class, crate::plan::classify::Class::Import);
        assert_eq!(plan.actions[0].import.as_ref().map(|r| r.label), Some(true));
        assert_eq!(plan.basis.digests.get(&address), Some(&None), "applying needs the node still absent from the state");
        let (bytes, digest) = crate::plan::file::to_bytes(&plan);
        let (read, again) = crate::plan::file::from_bytes(std::path::Path::new("import.plan"), &bytes).unwrap();
        assert_eq!((read, again), (plan.clone(), digest));
        let policy = crate::policy::parse(std::path::Path::new("p.yaml"), "rules:\n  - decision: review\n    class: import\n").unwrap();
        assert_eq!(crate::policy::evaluate(&policy, &plan).decision, crate::policy::Decision::Review);
        let text = crate::plan::display::human(&plan);
        assert!(text.contains("note: cluster c1: adopted, no changes") && text.contains("1 to import"), "{text}");

        // The live object changed since: the record is refused.
        let record = plan.actions[0].import.clone().unwrap();
        let mut live = manifest.clone();
        assert_eq!(changed_since(&plan.actions[0].desired.as_ref().unwrap().body(), &record, &live), None);
        live["data"]["x"] = json!("1");
        assert_eq!(
            changed_since(&plan.actions[0].desired.as_ref().unwrap().body(), &record, &live),
            None,
            "fields kkp does not set are not its business"
        );
        live["data"]["a"] = json!("2");
        assert!(changed_since(&plan.actions[0].desired.as_ref().unwrap().body(), &record, &live).is_some());
    }
}
