//! The whole of `kkp apply` as one library call: take the state lock, fold in the journal of
//! an interrupted apply, plan (or check a saved plan's basis), ask the view for approval,
//! apply, and persist the new state. The command line only parses arguments, builds the
//! targets and the view, and maps the [`Outcome`] to an exit code.

use super::{Error, Event, Report, Settings};
use crate::plan::{self, Plan};
use crate::state::backend::{Backend, Lock};
use crate::state::recorder::Recorder;
use crate::state::timings::Sample;
use crate::state::{Change, State};
use crate::target::Targets;
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What to apply.
pub enum Source {
    /// A plan saved with `kkp plan -o`, already read and verified against its digest.
    Saved(Plan),
    /// A topology to plan now; the plan is shown and needs approval.
    Topology {
        /// The desired world.
        topology: crate::topology::Topology,
        /// How to plan it.
        options: plan::Options,
    },
}

/// How the workflow talks to the person (or pipeline) running it. Library code never
/// prints; a view decides how each step looks.
pub trait View: Send + Sync {
    /// An interrupted apply's journal was folded into the state.
    fn recovered(&self, records: usize, serial: u64);
    /// A new plan was made from the topology.
    fn planned(&self, plan: &Plan);
    /// Asks whether to apply `plan`. `Err` says why approval cannot be asked for.
    fn approve(&self, plan: &Plan) -> Result<bool, String>;
    /// The apply starts.
    fn starting(&self, plan: &Plan, settings: &Settings, target: &str);
    /// Progress.
    fn event(&self, event: Event);
    /// The apply ended (successfully or not); progress displays close.
    fn finished(&self);
    /// A rollout wave starts (with `--waves` only).
    fn wave_starting(&self, _name: &str, _clusters: &BTreeSet<String>, _actions: usize) {}
    /// What the apiserver check found for each cluster of a wave whose actions all succeeded.
    fn wave_readyz(&self, _name: &str, _checked: &[(String, super::readyz::Readyz)]) {}
    /// A wave's actions all succeeded and none of its apiservers answered not ready; `Err`
    /// says why it is not healthy and stops the rollout.
    fn wave_healthy(&self, _name: &str, _clusters: &BTreeSet<String>) -> Result<(), String> {
        Ok(())
    }
    /// The wave that stopped the last rollout is checked again before anything starts.
    fn wave_rechecking(&self, _name: &str, _clusters: &BTreeSet<String>, _last_why: &str) {}
    /// The rollout stopped after this wave; later waves do not start.
    fn wave_stopped(&self, _name: &str, _clusters: &BTreeSet<String>, _why: &str) {}
    /// How long the apply (`wave` None, before approval) or a wave is expected to take.
    fn estimated(&self, _estimate: &super::eta::Estimate, _wave: Option<&str>) {}
}

/// Makes the targets of the seeds a plan writes to.
#[async_trait]
pub trait TargetFactory: Send + Sync {
    /// A target for each of `seeds`.
    async fn targets(&self, seeds: &BTreeSet<String>) -> Result<Targets, crate::target::Error>;
    /// For messages: where the objects go.
    fn describe(&self) -> String;
    /// Whether `seed` is reached through its API server (known without reaching it).
    fn reaches_api_server(&self, _seed: &str) -> bool {
        false
    }
}

/// How an apply ended.
#[derive(Debug)]
pub enum Outcome {
    /// The plan had nothing to do.
    NoChanges,
    /// The view declined the plan.
    Declined,
    /// The plan was applied (wholly or partly; see the report).
    Applied {
        /// What happened to each action.
        report: Report,
        /// The serial of the persisted state.
        serial: u64,
        /// Whether `cancel` stopped it early.
        interrupted: bool,
    },
}

/// Runs an apply from `source` against `backend`'s state. `cancel` (Ctrl-C) stops new
/// actions from starting; the state is persisted either way.
pub async fn apply(
    backend: Arc<dyn Backend>,
    source: Source,
    targets: &dyn TargetFactory,
    settings: Settings,
    view: Arc<dyn View>,
    cancel: Arc<AtomicBool>,
) -> Result<Outcome, Error> {
    let lock: Arc<dyn Lock> = Arc::from(backend.lock("apply").await?);
    let result = locked(backend, lock.clone(), source, targets, settings, view, cancel).await;
    lock.release().await;
    result
}

/// Everything apply does while holding the lock.
async fn locked(
    backend: Arc<dyn Backend>,
    lock: Arc<dyn Lock>,
    source: Source,
    targets: &dyn TargetFactory,
    settings: Settings,
    view: Arc<dyn View>,
    cancel: Arc<AtomicBool>,
) -> Result<Outcome, Error> {
    let loaded = backend.load().await?;
    let mut state = loaded.state;
    if loaded.recovered > 0 {
        // Fold the interrupted apply's journal into the state before a new journal replaces it.
        let mut recovered = state.take().expect("a replayed journal yields a state");
        recovered.serial += 1;
        backend.persist(&recovered, lock.as_ref()).await?;
        view.recovered(loaded.recovered, recovered.serial);
        state = Some(recovered);
    }
    // Finish any clean-up an earlier run was killed in (stale journal, temp files).
    backend.tidy(state.as_ref(), lock.as_ref()).await?;

    let history = |connected: &crate::refresh::Connected| super::eta::History {
        timings: state.as_ref().map(|s| s.timings.clone()).unwrap_or_default(),
        kinds: connected.identities.iter().map(|(seed, target)| (seed.clone(), target.kind().to_string())).collect(),
        parallelism: settings.parallelism,
        per_seed: settings.per_seed,
    };
    let estimate = |history: &super::eta::History, plan: &Plan| {
        if settings.waves.is_empty() { history.estimate(plan) } else { history.estimate_waves(plan, &settings.waves).0 }
    };
    let (plan, connected) = match source {
        Source::Saved(plan) => {
            super::verify_basis(&plan, state.as_ref())?;
            let seeds = plan.actions.iter().flat_map(|a| std::iter::once(&a.seed).chain(&a.prior_seed)).cloned().collect();
            let connected = crate::refresh::connect(targets, &seeds, state.as_ref()).await.map_err(Box::new)?;
            // An import plan records live objects: each must still be what it recorded.
            if plan.actions.iter().any(|a| a.action == plan::Action::Import) {
                crate::import::verify_live(&plan, &connected, settings.parallelism).await.map_err(Error::ImportChanged)?;
            }
            if !plan.summary.is_empty() {
                view.estimated(&estimate(&history(&connected), &plan), None);
            }
            (plan, connected)
        }
        Source::Topology { topology, options } => {
            // Every seed is checked against the target the state recorded, even when nothing
            // changes: an apply to another target must not report "no changes".
            let connected = crate::refresh::connect(targets, &crate::refresh::seeds_in_play(&topology, state.as_ref()), state.as_ref())
                .await
                .map_err(Box::new)?;
            let priors = |digest: &str| backend.objects().read_json(digest);
            let plan = crate::refresh::plan(&topology, state.as_ref(), &priors, Some(&connected), settings.parallelism, &options).await?;
            view.planned(&plan);
            if !plan.summary.is_empty() {
                view.estimated(&estimate(&history(&connected), &plan), None);
            }
            if !plan.summary.is_empty() && !view.approve(&plan).map_err(Error::NotApproved)? {
                return Ok(Outcome::Declined);
            }
            (plan, connected)
        }
    };
    // A plan without actions may still record clusters found unchanged node by node, so the
    // next plan can skip rendering them.
    if plan.summary.is_empty() && plan.clusters.is_empty() {
        return Ok(Outcome::NoChanges);
    }

    let history = history(&connected);
    let base = state.unwrap_or_else(|| State::new(uuid::Uuid::new_v4().to_string()));
    let base_targets = base.targets.clone();
    let recheck_seeds: BTreeSet<String> = base.stopped_wave.iter().flat_map(|w| w.clusters.values().cloned()).collect();
    let mut timings = history.timings.clone();
    let recorder = Arc::new(Recorder::start(backend.clone(), lock.clone(), base).await?);
    let seeds: BTreeSet<String> =
        plan.actions.iter().filter(|a| a.object.is_some()).flat_map(|a| std::iter::once(&a.seed).chain(&a.prior_seed)).cloned().collect();
    for seed in &seeds {
        if let Some(identity) = connected.identities.get(seed)
            && base_targets.get(seed) != Some(identity)
        {
            recorder.record(Change::Target { seed: seed.clone(), target: Some(identity.clone()) }, None).await?;
        }
    }
    view.starting(&plan, &settings, &targets.describe());
    let factory = targets;
    let mut targets = factory.targets(&seeds).await?;
    // A wave that stopped the last rollout is checked again on its seeds, which this plan may
    // not write to; one that cannot be reached is reported as not checked.
    if !settings.waves.is_empty() {
        for seed in recheck_seeds.difference(&seeds) {
            if let Ok(reached) = factory.targets(&BTreeSet::from([seed.clone()])).await {
                targets.extend(reached);
            }
        }
    }

    let events = view.clone();
    let report = if settings.waves.is_empty() {
        super::run(Arc::new(plan), targets, recorder.clone(), settings, cancel.clone(), Arc::new(move |e| events.event(e))).await
    } else {
        super::waves::run(plan, targets, recorder.clone(), settings, cancel.clone(), view.clone(), &history).await
    };
    view.finished();
    let report = report?;
    let samples: Vec<Sample> = report
        .timed
        .iter()
        .filter_map(|(seed, step, elapsed)| {
            Some(Sample { target: connected.identities.get(seed)?.kind().to_string(), step: step.clone(), elapsed: *elapsed })
        })
        .collect();
    timings.fold(&samples);
    recorder.set_timings(timings);
    let recorder = Arc::try_unwrap(recorder).map_err(|_| Error::RecorderInUse)?;
    let state = recorder.finish().await?;
    Ok(Outcome::Applied { report, serial: state.serial, interrupted: cancel.load(Ordering::SeqCst) })
}
