//! Apply: executes a plan against the targets, in dependency order and in parallel across
//! clusters and seeds, recording every applied node in the state journal as it goes.
//!
//! [`workflow`] is the whole `kkp apply` (lock, recover, plan or verify, approve, run,
//! persist); [`run`] executes a plan; [`walk`] schedules (global limit, per-seed budget,
//! failure isolation, cancellation); [`execute`] performs one node (issue certificates,
//! server-side apply, delete, wait); [`retry`] retries transient target errors with backoff
//! and jitter. Library code never prints: progress leaves through [`Event`]s.

pub mod eta;
mod execute;
pub mod readyz;
pub mod retry;
pub mod simulate;
pub mod walk;
pub mod waves;
pub mod workflow;

pub use workflow::{Outcome, Source, TargetFactory, View, apply};

use crate::address::Address;
use crate::plan::{Action, Plan};
use crate::state::recorder::Recorder;
use crate::state::{Change, State};
use crate::target::Targets;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Errors that stop an apply before it starts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The plan was made for another state.
    #[error(
        "the plan was made for state lineage {planned}, but the state has lineage {actual}\n  fix: plan against this state (check --state)"
    )]
    OtherLineage {
        /// The plan's lineage.
        planned: String,
        /// The state's lineage.
        actual: String,
    },
    /// A saved plan made against a state is applied where there is none.
    #[error(
        "the plan was made against state lineage {planned} (serial {serial}), but there is no state here\n  fix: check --state (or KKP_STATE) names the state the plan was made from"
    )]
    NoState {
        /// The plan's lineage.
        planned: String,
        /// The serial the plan saw.
        serial: u64,
    },
    /// Nodes the plan relied on changed since it was made.
    #[error("the state changed since the plan was made (serial {planned} -> {actual}); these nodes differ:\n{}\n  fix: run kkp plan again and review the new plan", .changed.iter().map(|a| format!("  {a}")).collect::<Vec<_>>().join("\n"))]
    Stale {
        /// The serial the plan saw.
        planned: u64,
        /// The serial now.
        actual: u64,
        /// Nodes whose recorded digest differs.
        changed: Vec<Address>,
    },
    /// Objects an import plan adopts changed since it was made.
    #[error(
        "the seeds changed since the import plan was made; nothing was recorded or written:\n{}\n  fix: run kkp import again and review the new plan",
        .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n")
    )]
    ImportChanged(Vec<String>),
    /// A seed has no target.
    #[error("the plan writes to seed {0}, but no target is configured for it")]
    NoTarget(String),
    /// The state could not be read, locked or recorded.
    #[error(transparent)]
    State(#[from] crate::state::Error),
    /// Planning failed.
    #[error(transparent)]
    Plan(#[from] crate::plan::Error),
    /// A target could not be set up.
    #[error(transparent)]
    Target(#[from] crate::target::Error),
    /// A seed is not the target the state recorded.
    #[error(transparent)]
    Refresh(#[from] Box<crate::refresh::Error>),
    /// Approval could not be asked for.
    #[error("{0}")]
    NotApproved(String),
    /// The recorder was still shared when the apply ended (a bug).
    #[error("the state recorder is still in use after the apply ended")]
    RecorderInUse,
}

/// Settings of one apply.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Nodes applied at once overall (`--parallelism`).
    pub parallelism: usize,
    /// Nodes applied at once per seed.
    pub per_seed: usize,
    /// Unix seconds, for certificate validity.
    pub now: i64,
    /// How long to wait for a workload other nodes wait on to become ready.
    pub ready_timeout: Duration,
    /// Retry policy for transient target errors.
    pub retry: retry::Policy,
    /// Take over objects kkp did not write, and fields other managers own
    /// (`--force-conflicts`).
    pub take_over: bool,
    /// Secrets the topology documents carry, by (namespace, name): where a copied Secret
    /// (cloud credentials) comes from when its seed has none. Never recorded anywhere.
    pub topology_secrets: Arc<SecretSources>,
    /// Rollout waves (`--waves`); empty: all clusters at once.
    pub waves: Vec<waves::Wave>,
}

/// Secret data by (namespace, name), then key.
pub type SecretSources = BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            parallelism: 10,
            per_seed: 10,
            now: 0,
            ready_timeout: Duration::from_secs(600),
            retry: retry::Policy::default(),
            take_over: false,
            topology_secrets: Arc::default(),
            waves: Vec::new(),
        }
    }
}

/// Progress of an apply.
#[derive(Debug, Clone)]
pub enum Event {
    /// A node started.
    Started {
        /// The node.
        address: Address,
        /// What is done to it.
        action: Action,
    },
    /// A node finished.
    Finished {
        /// The node.
        address: Address,
        /// What was done.
        action: Action,
        /// How long it took.
        elapsed: Duration,
    },
    /// A node failed.
    Failed {
        /// The node.
        address: Address,
        /// What was attempted.
        action: Action,
        /// Why it failed.
        error: String,
    },
    /// A node was skipped because a dependency failed.
    Skipped {
        /// The node.
        address: Address,
        /// The failed dependency.
        because: Address,
    },
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct Report {
    /// Nodes applied.
    pub applied: Vec<(Address, Action)>,
    /// Nodes that failed, with the error.
    pub failed: Vec<(Address, String)>,
    /// Nodes skipped, with the failed dependency.
    pub skipped: Vec<(Address, Address)>,
    /// Nodes not started because of cancellation.
    pub cancelled: Vec<Address>,
    /// How long each applied node took, by seed and step (the state's timings come from
    /// these).
    pub timed: Vec<(String, String, Duration)>,
}

impl Report {
    /// True when every action succeeded.
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && self.cancelled.is_empty()
    }
}

/// Checks that the nodes `plan` relied on are as they were when it was made. A different
/// serial alone is fine: only the digests of what the plan touches or reads matter.
pub fn verify_basis(plan: &Plan, state: Option<&State>) -> Result<(), Error> {
    if let (Some(planned), None) = (&plan.basis.lineage, state) {
        return Err(Error::NoState { planned: planned.clone(), serial: plan.basis.serial });
    }
    if let (Some(planned), Some(state)) = (&plan.basis.lineage, state)
        && planned != &state.lineage
    {
        return Err(Error::OtherLineage { planned: planned.clone(), actual: state.lineage.clone() });
    }
    let changed: Vec<Address> = plan
        .basis
        .digests
        .iter()
        .filter(|(address, digest)| state.and_then(|s| s.nodes.get(*address)).map(|n| &n.digest) != digest.as_ref())
        .map(|(address, _)| address.clone())
        .collect();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(Error::Stale { planned: plan.basis.serial, actual: state.map_or(0, |s| s.serial), changed })
    }
}

/// Applies `plan` to `targets`, recording into `recorder`. Returns when every action has an
/// outcome; `cancel` stops new actions from starting.
pub async fn run(
    plan: Arc<Plan>,
    targets: Targets,
    recorder: Arc<Recorder>,
    settings: Settings,
    cancel: Arc<AtomicBool>,
    events: Arc<dyn Fn(Event) + Send + Sync>,
) -> Result<Report, Error> {
    for action in &plan.actions {
        for seed in std::iter::once(&action.seed).chain(&action.prior_seed) {
            if action.object.is_some() && !targets.contains_key(seed) {
                return Err(Error::NoTarget(seed.clone()));
            }
        }
    }
    let index: HashMap<&Address, usize> = plan.actions.iter().enumerate().map(|(i, a)| (&a.address, i)).collect();
    let deps: Vec<Vec<usize>> = plan.actions.iter().map(|a| a.deps.iter().filter_map(|d| index.get(d).copied()).collect()).collect();
    let mut has_dependants = vec![false; plan.actions.len()];
    for ds in &deps {
        for &d in ds {
            has_dependants[d] = true;
        }
    }
    let seeds: BTreeMap<&str, usize> = plan
        .actions
        .iter()
        .map(|a| a.seed.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, s)| (s, i))
        .collect();
    let group: Vec<usize> = plan.actions.iter().map(|a| seeds[a.seed.as_str()]).collect();

    // Each finished node's time, for the state's step timings.
    let timed: Arc<std::sync::Mutex<Vec<(Address, Duration)>>> = Arc::default();
    let events: Arc<dyn Fn(Event) + Send + Sync> = {
        let (timed, events) = (timed.clone(), events.clone());
        Arc::new(move |event: Event| {
            if let Event::Finished { address, elapsed, .. } = &event {
                timed.lock().expect("timings lock").push((address.clone(), *elapsed));
            }
            events(event)
        })
    };
    let awaited = has_dependants.clone();
    let context =
        Arc::new(execute::Context::new(plan.clone(), targets, recorder.clone(), settings.clone(), has_dependants, events.clone()));
    let limits = walk::Limits { global: settings.parallelism, per_group: settings.per_seed };
    let walker = context.clone();
    let outcomes = walk::walk(&deps, &group, limits, cancel, move |i, permit| {
        let context = walker.clone();
        async move { context.execute(i, permit).await }
    })
    .await;

    let mut report = Report::default();
    for (address, elapsed) in std::mem::take(&mut *timed.lock().expect("timings lock")) {
        let i = index[&address];
        let action = &plan.actions[i];
        report.timed.push((action.seed.clone(), eta::step(action.role, action.action, awaited[i]), elapsed));
    }
    for (action, outcome) in plan.actions.iter().zip(&outcomes) {
        match outcome {
            walk::Outcome::Succeeded => report.applied.push((action.address.clone(), action.action)),
            walk::Outcome::Failed(e) => report.failed.push((action.address.clone(), e.clone())),
            walk::Outcome::Skipped(because) => {
                let because = plan.actions[*because].address.clone();
                events(Event::Skipped { address: action.address.clone(), because: because.clone() });
                report.skipped.push((action.address.clone(), because));
            }
            walk::Outcome::Cancelled => report.cancelled.push(action.address.clone()),
        }
    }
    // Clusters whose last action landed have their input digest recorded already. One that
    // did not finish loses any older digest: it proves "unchanged" only if all of its nodes
    // were applied. One without actions (all its nodes were already right) gets its digest.
    let unfinished: HashMap<String, usize> = context.unfinished_clusters().into_iter().collect();
    let with_actions: std::collections::HashSet<&str> = plan.actions.iter().filter_map(|a| a.cluster.as_deref()).collect();
    for (name, planned) in &plan.clusters {
        let record = match (unfinished.contains_key(name), with_actions.contains(name.as_str())) {
            (true, _) => None,
            (false, false) => planned.clone(),
            (false, true) => continue,
        };
        recorder.record(Change::Cluster { name: name.clone(), record }, None).await?;
    }
    Ok(report)
}
