//! Refresh: reading what the seeds hold before planning, so a plan restores what was changed
//! outside kkp (`kkp plan --refresh`, `kkp apply --refresh`), shows only that
//! (`--refresh-only`), or records it as the truth (`kkp apply --refresh-only`).
//!
//! I/O lives here and in the targets; the comparison is pure ([`drift`]). Reads scale with
//! seeds and kinds, not objects: one paginated metadata-only LIST per seed and kind with kkp's
//! managed-by label, which tells the objects nobody changed since kkp applied them
//! ([`crate::target::version`]: neither they nor their applied bodies are read); the others
//! are read (a GET each when few, else one full LIST; a GET for an object the list lacks, as
//! its label may have been removed) and compared, and a server-side dry-run apply is made only
//! for an object whose fields differ from what kkp applied (to tell a real change from server
//! defaulting). Objects without a recorded version (a directory, older states, adopted
//! objects) are all read and compared. `parallelism` bounds the requests in flight.
//!
//! [`connect`] also checks that every seed is the target the state recorded for it.

pub mod drift;

use crate::address::Address;
use crate::apply::TargetFactory;
use crate::object::{Kind, ObjectRef};
use crate::plan::{self, Plan};
use crate::state::{SeedTarget, State};
use crate::target::Targets;
use drift::DriftEntry;
use futures::StreamExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Objects of one seed and kind that are read one GET each when their version does not tell
/// they are unchanged; more are read with one LIST.
const GETS_AT_MOST: usize = 32;

/// Errors before a refresh or apply can start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A seed is not the target the state recorded for it.
    #[error(
        "seed {seed}: the state was applied to {recorded}, but this run targets {now}\n  fix: run with the target the state was applied to ({hint}), or use another state for the new target (--state FILE); to move the seed, `kkp state rm --seed {seed}` forgets what was applied there (objects are left alone) and the next apply creates everything on the new target"
    )]
    OtherTarget {
        /// The seed.
        seed: String,
        /// What the state recorded.
        recorded: SeedTarget,
        /// What this run reaches.
        now: SeedTarget,
        /// The flags that reach the recorded target.
        hint: String,
    },
}

/// The seeds' targets, checked against the state.
pub struct Connected {
    /// Targets that could be built.
    pub targets: Targets,
    /// Where each reachable seed is.
    pub identities: BTreeMap<String, SeedTarget>,
    /// Seeds that could not be reached, with why.
    pub unreachable: BTreeMap<String, String>,
}

/// The flags that reach `target`.
pub fn hint(target: &SeedTarget) -> String {
    match target {
        SeedTarget::Dir { path } => format!("--dir {path}"),
        SeedTarget::Kube { server, .. } => format!("--kube with a context for {server}"),
    }
}

/// Builds the targets of `seeds` and checks each against the target `state` recorded. A seed
/// that cannot be reached is listed, not an error: its actions fail on their own (or, with
/// refresh, its clusters are not planned).
pub async fn connect(factory: &dyn TargetFactory, seeds: &BTreeSet<String>, state: Option<&State>) -> Result<Connected, Error> {
    let mut targets = Targets::new();
    let mut unreachable = BTreeMap::new();
    for seed in seeds {
        match factory.targets(&BTreeSet::from([seed.clone()])).await {
            Ok(built) => targets.extend(built),
            Err(e) => {
                unreachable.insert(seed.clone(), e.to_string());
            }
        }
    }
    let asked =
        futures::future::join_all(targets.iter().map(|(seed, target)| async move { (seed.clone(), target.identity().await) })).await;
    let mut identities = BTreeMap::new();
    for (seed, identity) in asked {
        match identity {
            Ok(identity) => {
                identities.insert(seed, identity);
            }
            Err(e) => {
                unreachable.insert(seed, e.to_string());
            }
        }
    }
    if let Some(state) = state {
        // A seed meant to be reached through its API server that cannot be reached is still
        // not the directory the state recorded.
        for (seed, error) in &unreachable {
            if let Some(recorded @ SeedTarget::Dir { .. }) = state.targets.get(seed)
                && factory.reaches_api_server(seed)
            {
                let now = SeedTarget::Kube {
                    server: format!("(not reachable: {})", error.lines().next().unwrap_or_default()),
                    cluster_uid: None,
                };
                return Err(Error::OtherTarget { seed: seed.clone(), recorded: recorded.clone(), now, hint: hint(recorded) });
            }
        }
        for (seed, now) in &identities {
            if let Some(recorded) = state.targets.get(seed)
                && !recorded.same_as(now)
            {
                return Err(Error::OtherTarget { seed: seed.clone(), recorded: recorded.clone(), now: now.clone(), hint: hint(recorded) });
            }
        }
    }
    Ok(Connected { targets, identities, unreachable })
}

/// The seeds a plan of `topology` against `state` may touch.
pub fn seeds_in_play(topology: &crate::topology::Topology, state: Option<&State>) -> BTreeSet<String> {
    let mut seeds: BTreeSet<String> = topology.seeds.keys().cloned().collect();
    if let Some(state) = state {
        seeds.extend(state.nodes.values().filter(|n| n.object.is_some()).map(|n| n.seed.clone()));
    }
    seeds
}

/// What a refresh found.
#[derive(Debug, Default)]
pub struct Refreshed {
    /// Nodes changed outside kkp.
    pub drift: Vec<DriftEntry>,
    /// For changed nodes: the live object reduced to kkp's fields.
    pub live: HashMap<Address, Value>,
    /// Seeds that could not be read, with why.
    pub unreadable: BTreeMap<String, String>,
}

/// Reads every seed of `state` that `connected` reaches (or lists as unreachable) and
/// compares it with what kkp applied. `priors` returns applied bodies by digest.
pub async fn read(state: &State, connected: &Connected, parallelism: usize, priors: &dyn Fn(&str) -> Option<Value>) -> Refreshed {
    // The applied objects by seed and kind: each group is one LIST.
    let mut groups: BTreeMap<(&str, Kind), Vec<(&Address, &crate::state::NodeState)>> = BTreeMap::new();
    for (address, node) in &state.nodes {
        if let Some(object) = &node.object {
            groups.entry((node.seed.as_str(), object.kind)).or_default().push((address, node));
        }
    }
    let mut out = Refreshed::default();
    let labels = BTreeMap::from([(crate::render::MANAGED_BY.0.to_string(), crate::render::MANAGED_BY.1.to_string())]);
    let mut lists = Vec::new();
    for ((seed, kind), nodes) in groups {
        if let Some(error) = connected.unreachable.get(seed) {
            out.unreadable.insert(seed.to_string(), error.clone());
            continue;
        }
        let Some(target) = connected.targets.get(seed) else {
            out.unreadable.insert(seed.to_string(), "no target is configured for it".into());
            continue;
        };
        lists.push((seed, kind, nodes, target.clone()));
    }
    // One metadata-only LIST per seed and kind, `parallelism` at a time: objects whose
    // version is still the one kkp recorded after applying them are done. The others are read
    // (by GET when few, else one full LIST) and compared as soon as they are, then dropped: a
    // fleet's live objects never are in memory all at once. Only the objects that look
    // changed are kept, for the dry-run below.
    let labels = &labels;
    let mut compared = futures::stream::iter(lists)
        .map(|(seed, kind, nodes, target)| async move {
            let read = async {
                let policy = crate::apply::retry::Policy::default();
                let recorded: Vec<(&ObjectRef, &crate::state::ObjectVersion)> =
                    nodes.iter().filter_map(|(_, n)| Some((n.object.as_ref()?, n.version.as_ref()?))).collect();
                let unchanged: HashSet<&ObjectRef> = match recorded.is_empty() {
                    true => None,
                    false => crate::apply::retry::retry(&policy, || target.list_unchanged(kind, labels, &recorded)).await?,
                }
                .map(|flags| recorded.iter().zip(flags).filter(|(_, same)| *same).map(|((o, _), _)| *o).collect())
                .unwrap_or_default();
                let nodes: Vec<_> =
                    nodes.iter().copied().filter(|(_, n)| n.object.as_ref().is_some_and(|o| !unchanged.contains(o))).collect();
                let mut objects: HashMap<ObjectRef, Value> = HashMap::with_capacity(nodes.len());
                if nodes.len() > GETS_AT_MOST {
                    let wanted: HashSet<&ObjectRef> = nodes.iter().filter_map(|(_, n)| n.object.as_ref()).collect();
                    for item in crate::apply::retry::retry(&policy, || target.list(kind, None, labels)).await? {
                        if let Some(identity) = ObjectRef::of(&item).filter(|i| wanted.contains(i)) {
                            objects.insert(identity, item);
                        }
                    }
                }
                // The rest, and objects the list lacks (their label may have been removed):
                // one GET each.
                for (_, node) in &nodes {
                    let Some(object) = node.object.as_ref().filter(|o| !objects.contains_key(o)) else { continue };
                    if let Some(value) = crate::apply::retry::retry(&policy, || target.get(object)).await? {
                        objects.insert(object.clone(), value);
                    }
                }
                Ok::<_, crate::target::Error>((nodes, objects))
            };
            (seed, read.await)
        })
        .buffer_unordered(parallelism.max(1));
    let mut suspects = Vec::new();
    while let Some(answer) = compared.next().await {
        match answer {
            (seed, Ok((nodes, objects))) => {
                if out.unreadable.contains_key(seed) {
                    continue;
                }
                let (drift, suspicious) = drift::compare(seed, &nodes, &objects, priors);
                out.drift.extend(drift);
                suspects.extend(suspicious.into_iter().map(|s| {
                    let object = state.nodes[&s.address].object.as_ref().expect("suspects are objects");
                    let current = objects[object].clone();
                    (s, current)
                }));
            }
            (seed, Err(e)) => {
                out.unreadable.entry(seed.to_string()).or_insert_with(|| e.to_string());
            }
        }
    }
    drop(compared);
    let unreadable = &out.unreadable;
    suspects.retain(|(s, _): &(drift::Suspect, Value)| !unreadable.contains_key(&s.seed));
    // Fields that differ may only be the server's defaulting or normalising: a dry-run apply of
    // what kkp applied says whether applying it would change anything.
    let confirmed: Vec<(drift::Suspect, Value, crate::target::Result<Value>)> = futures::stream::iter(suspects)
        .map(|(suspect, current)| {
            let target = connected.targets[&suspect.seed].clone();
            async move {
                let answer =
                    crate::apply::retry::retry(&crate::apply::retry::Policy::default(), || target.dry_run_apply(&suspect.applied)).await;
                (suspect, current, answer)
            }
        })
        .buffer_unordered(parallelism.max(1))
        .collect()
        .await;
    for (suspect, current, answer) in confirmed {
        match answer {
            Ok(dry_run) => {
                if let Some(entry) = drift::confirm(state, &suspect, &current, &dry_run) {
                    if let Some(projected) = drift::project(&suspect.applied, &current) {
                        out.live.insert(entry.address.clone(), projected);
                    }
                    out.drift.push(entry);
                }
            }
            Err(e) => {
                out.unreadable.entry(suspect.seed.clone()).or_insert_with(|| e.to_string());
            }
        }
    }
    let unreadable = &out.unreadable;
    out.drift.retain(|d| !unreadable.contains_key(&d.seed));
    out.drift.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// Plans `topology` against `state`; with `options.refresh`, against what the seeds hold:
/// reads them ([`read`]), folds the drift in ([`drift::prepare`]) and annotates the plan
/// ([`drift::annotate`]). `objects` returns applied bodies by digest.
pub async fn plan(
    topology: &crate::topology::Topology,
    state: Option<&State>,
    objects: &(dyn Fn(&str) -> Option<Value> + Sync),
    connected: Option<&Connected>,
    parallelism: usize,
    options: &plan::Options,
) -> Result<Plan, plan::Error> {
    let (Some(state), Some(connected), true) = (state, connected, options.refresh) else {
        return plan::create(topology, state, objects, options);
    };
    let refreshed = read(state, connected, parallelism, objects).await;
    Ok(plan_refreshed(topology, state, objects, refreshed, options)?.0)
}

/// The plan against a refreshed state, and what the refresh found.
pub fn plan_refreshed(
    topology: &crate::topology::Topology,
    state: &State,
    objects: &(dyn Fn(&str) -> Option<Value> + Sync),
    mut refreshed: Refreshed,
    options: &plan::Options,
) -> Result<(Plan, Refreshed), plan::Error> {
    let prepared = drift::prepare(state, &mut refreshed.drift, &refreshed.live, &refreshed.unreadable, &options.accept);
    let priors = |digest: &str| prepared.priors.get(digest).cloned().or_else(|| objects(digest));
    let mut plan = plan::create(topology, Some(&prepared.state), &priors, options)?;
    drift::annotate(&mut plan, Some(state), refreshed.drift.clone(), prepared.blocked);
    Ok((plan, refreshed))
}

/// How `kkp apply --refresh-only` ended.
#[derive(Debug)]
pub enum TruthOutcome {
    /// There is no state to refresh.
    NoState,
    /// The seeds hold what the state says (apart from unreadable seeds).
    NoDrift {
        /// Seeds that could not be read.
        unreadable: BTreeMap<String, String>,
    },
    /// The view declined.
    Declined,
    /// The live truth was recorded.
    Recorded {
        /// Nodes whose record changed.
        nodes: usize,
        /// The new serial.
        serial: u64,
        /// Seeds that could not be read (nothing of them was recorded).
        unreadable: BTreeMap<String, String>,
    },
}

/// Asks whether to record the drift found (and says which seeds could not be read).
pub type Approve = dyn Fn(&[DriftEntry], &BTreeMap<String, String>) -> Result<bool, String> + Sync;

/// `kkp apply --refresh-only`: under the state lock, reads every seed of the state and records
/// what they hold (deleted objects forgotten, changed fields and replaced certificates as they
/// are now), after `approve` saw the drift. Nothing is written to a seed.
pub async fn record_truth(
    backend: std::sync::Arc<dyn crate::state::backend::Backend>,
    factory: &dyn TargetFactory,
    parallelism: usize,
    approve: &Approve,
) -> Result<TruthOutcome, crate::apply::Error> {
    let lock = backend.lock("apply --refresh-only").await?;
    let result = async {
        let loaded = backend.load().await?;
        let Some(mut state) = loaded.state else { return Ok(TruthOutcome::NoState) };
        let seeds: BTreeSet<String> = state.nodes.values().filter(|n| n.object.is_some()).map(|n| n.seed.clone()).collect();
        let connected = connect(factory, &seeds, Some(&state)).await.map_err(Box::new)?;
        let priors = |digest: &str| backend.objects().read_json(digest);
        let refreshed = read(&state, &connected, parallelism, &priors).await;
        if refreshed.drift.is_empty() && loaded.recovered == 0 {
            return Ok(TruthOutcome::NoDrift { unreadable: refreshed.unreadable });
        }
        if !refreshed.drift.is_empty() && !approve(&refreshed.drift, &refreshed.unreadable).map_err(crate::apply::Error::NotApproved)? {
            return Ok(TruthOutcome::Declined);
        }
        let changes = drift::truth(&state, &refreshed.drift, &refreshed.live);
        let mut bodies = Vec::new();
        let nodes = refreshed.drift.len();
        for (mut change, body) in changes {
            if let (crate::state::Change::Put { node, .. }, Some(body)) = (&mut change, body) {
                let bytes = serde_json::to_vec(&body).expect("plain data");
                node.digest = crate::object::digest_bytes(&bytes);
                bodies.push((node.digest.clone(), bytes));
            }
            state.apply(change);
        }
        backend.objects().write_pack(&bodies)?;
        state.serial += 1;
        backend.persist(&state, lock.as_ref()).await?;
        Ok(TruthOutcome::Recorded { nodes, serial: state.serial, unreadable: refreshed.unreadable })
    }
    .await;
    lock.release().await;
    result
}
