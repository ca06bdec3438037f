//! Rollout waves: a plan's clusters applied a group at a time, each group healthy before the
//! next starts (`kkp apply --waves canary=c1+c2,25%,100%`).
//!
//! Parsing and splitting are pure. A wave is `[NAME=]SELECTOR` where the selector is `N%` (the
//! plan's clusters up to N% of them, counted over all waves so far), `KEY:VALUE[&KEY:VALUE]`
//! (clusters carrying those labels) or `CLUSTER[+CLUSTER...]` (names). Seed-level actions go
//! with the first wave, since every cluster depends on its seed. Clusters no wave selects form
//! a last wave of their own, so nothing is left out silently.
//!
//! Where a rollout stopped is in the state itself: every node of a finished wave is recorded
//! with its cluster's input digest, so planning again finds those clusters unchanged and the
//! waves continue with the clusters still to do.

use crate::plan::{Plan, PlannedAction};
use crate::state::rollout::StoppedWave;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One wave as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// Its name, for output (`wave-N` when not given).
    pub name: String,
    /// Which clusters it takes.
    pub selector: Selector,
}

/// How a wave picks clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// Up to this percentage of all the plan's clusters, counting earlier waves.
    Percent(u32),
    /// Clusters carrying all of these labels.
    Labels(BTreeMap<String, String>),
    /// These clusters.
    Names(BTreeSet<String>),
}

/// Parses `--waves`, e.g. `canary=c1+c2,env:staging,25%,100%`.
pub fn parse(spec: &str) -> Result<Vec<Wave>, String> {
    let mut waves = Vec::new();
    for (i, part) in spec.split(',').map(str::trim).enumerate() {
        let (name, selector) = match part.split_once('=') {
            Some((name, selector)) if !name.is_empty() && !name.contains(':') => (name.to_string(), selector),
            _ => (format!("wave-{}", i + 1), part),
        };
        if selector.is_empty() {
            return Err(format!("wave {} ({name}) selects nothing; give N%, KEY:VALUE labels or cluster names joined by +", i + 1));
        }
        let selector = if let Some(percent) = selector.strip_suffix('%') {
            match percent.parse::<u32>() {
                Ok(p) if (1..=100).contains(&p) => Selector::Percent(p),
                _ => return Err(format!("wave {} ({name}): {selector:?} is not a percentage from 1% to 100%", i + 1)),
            }
        } else if selector.contains(':') {
            let mut labels = BTreeMap::new();
            for pair in selector.split('&') {
                let Some((key, value)) = pair.split_once(':').filter(|(k, _)| !k.is_empty()) else {
                    return Err(format!("wave {} ({name}): {pair:?} is not a KEY:VALUE label", i + 1));
                };
                labels.insert(key.to_string(), value.to_string());
            }
            Selector::Labels(labels)
        } else {
            Selector::Names(selector.split('+').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect())
        };
        waves.push(Wave { name, selector });
    }
    if waves.is_empty() {
        return Err("--waves needs at least one wave".into());
    }
    Ok(waves)
}

/// The clusters of each wave, in wave order; empty waves are dropped. Clusters are taken in
/// name order (deterministic), each in the first wave that selects it.
pub fn assign(plan: &Plan, waves: &[Wave]) -> Vec<(String, BTreeSet<String>)> {
    let clusters: BTreeSet<&str> = plan.actions.iter().filter_map(|a| a.cluster.as_deref()).collect();
    let total = clusters.len();
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for wave in waves {
        let picked: BTreeSet<&str> = match &wave.selector {
            Selector::Percent(p) => {
                let upto = (total * *p as usize).div_ceil(100);
                let room = upto.saturating_sub(taken.len());
                clusters.iter().filter(|c| !taken.contains(*c)).take(room).copied().collect()
            }
            Selector::Labels(labels) => clusters
                .iter()
                .filter(|c| !taken.contains(*c))
                .filter(|c| plan.cluster_labels.get(**c).is_some_and(|have| labels.iter().all(|(k, v)| have.get(k) == Some(v))))
                .copied()
                .collect(),
            Selector::Names(names) => clusters.iter().filter(|c| !taken.contains(*c) && names.contains(**c)).copied().collect(),
        };
        taken.extend(&picked);
        if !picked.is_empty() || (out.is_empty() && has_seed_actions(plan)) {
            out.push((wave.name.clone(), picked.into_iter().map(str::to_string).collect()));
        }
    }
    let rest: BTreeSet<String> = clusters.iter().filter(|c| !taken.contains(*c)).map(|c| c.to_string()).collect();
    if !rest.is_empty() || out.is_empty() {
        out.push(("rest".into(), rest));
    }
    out
}

fn has_seed_actions(plan: &Plan) -> bool {
    plan.actions.iter().any(|a| a.cluster.is_none())
}

/// Whether `action` is in the wave of `clusters`: an action of one of them, or a seed's action
/// in the first wave.
pub fn belongs(action: &PlannedAction, clusters: &BTreeSet<String>, first: bool) -> bool {
    match &action.cluster {
        Some(c) => clusters.contains(c),
        None => first,
    }
}

/// The part of `plan` a wave applies: its clusters' actions (the first wave also the seeds'),
/// and the cluster records of its clusters.
pub fn part(plan: &Plan, clusters: &BTreeSet<String>, first: bool) -> Plan {
    // Field by field, so the fleet's actions are not all copied for every wave.
    Plan {
        actions: plan.actions.iter().filter(|a| belongs(a, clusters, first)).cloned().collect(),
        clusters: plan.clusters.iter().filter(|(name, _)| clusters.contains(*name)).map(|(k, v)| (k.clone(), v.clone())).collect(),
        basis: plan.basis.clone(),
        summary: plan.summary.clone(),
        notices: plan.notices.clone(),
        drift: plan.drift.clone(),
        upgrades: plan.upgrades.clone(),
        cluster_labels: plan.cluster_labels.clone(),
    }
}

/// Applies `plan` wave by wave (`settings.waves`): each wave's part runs like a whole apply; a
/// wave with a failed, skipped or cancelled action, a cluster whose apiserver answers not ready
/// ([`super::readyz`]), or one the view finds unhealthy, stops the rollout and the later waves'
/// actions are reported as not started. A wave that stopped the last rollout although all its
/// actions landed (recorded in the state) is checked again first: still unhealthy, nothing
/// starts.
pub async fn run(
    plan: Plan,
    targets: crate::target::Targets,
    recorder: Arc<crate::state::recorder::Recorder>,
    settings: super::Settings,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    view: Arc<dyn super::View>,
    history: &super::eta::History,
) -> Result<super::Report, super::Error> {
    let mut report = super::Report::default();
    let health = Health { targets: &targets, settings: &settings, view: view.as_ref() };
    if let Some(last) = recorder.stopped_wave() {
        // Clusters the plan changes again are checked after their own wave.
        let planned: BTreeSet<&str> = plan.actions.iter().filter_map(|a| a.cluster.as_deref()).collect();
        let again: BTreeMap<String, String> = last.clusters.into_iter().filter(|(c, _)| !planned.contains(c.as_str())).collect();
        if !again.is_empty() {
            let names: BTreeSet<String> = again.keys().cloned().collect();
            view.wave_rechecking(&last.wave, &names, &last.why);
            if let Some(why) = health.check(&last.wave, &again).await {
                view.wave_stopped(&last.wave, &names, &why);
                report.cancelled = plan.actions.iter().map(|a| a.address.clone()).collect();
                return Ok(report);
            }
        }
        recorder.set_stopped_wave(None);
    }
    let mut stopped = false;
    for (i, (name, clusters)) in assign(&plan, &settings.waves).iter().enumerate() {
        let part = Arc::new(part(&plan, clusters, i == 0));
        if stopped {
            report.cancelled.extend(part.actions.iter().map(|a| a.address.clone()));
            continue;
        }
        view.wave_starting(name, clusters, part.actions.len());
        view.estimated(&history.estimate(&part), Some(name));
        let events = view.clone();
        let done = super::run(
            part.clone(),
            targets.clone(),
            recorder.clone(),
            settings.clone(),
            cancel.clone(),
            Arc::new(move |e| events.event(e)),
        )
        .await?;
        let complete = done.is_complete();
        report.applied.extend(done.applied);
        report.failed.extend(done.failed);
        report.skipped.extend(done.skipped);
        report.cancelled.extend(done.cancelled);
        report.timed.extend(done.timed);
        let why = if complete {
            let seeds = super::readyz::seeds(&part);
            let why = health.check(name, &seeds).await;
            if let Some(why) = &why {
                // Every action landed, so the next plan finds these clusters unchanged: the
                // state keeps the wave, to be checked again before the rollout goes on.
                recorder.set_stopped_wave(Some(StoppedWave { wave: name.clone(), clusters: seeds, why: why.clone() }));
            }
            why
        } else {
            // Unfinished clusters are planned (and checked) again by the next run.
            Some("not every action of the wave succeeded".to_string())
        };
        if let Some(why) = why {
            view.wave_stopped(name, clusters, &why);
            stopped = true;
        }
    }
    Ok(report)
}

/// What makes a wave healthy once its actions landed.
struct Health<'a> {
    targets: &'a crate::target::Targets,
    settings: &'a super::Settings,
    view: &'a dyn super::View,
}

impl Health<'_> {
    /// Why the wave `name` of `clusters` (with their seeds) is not healthy, if it is not: an
    /// apiserver not ready, else the view's check.
    async fn check(&self, name: &str, clusters: &BTreeMap<String, String>) -> Option<String> {
        // The apiservers first: a custom check of a wave whose apiserver is not ready would
        // only fail for that reason.
        let checked = super::readyz::check_wave(clusters, self.targets, self.settings.ready_timeout, self.settings.parallelism).await;
        self.view.wave_readyz(name, &checked);
        let not_ready = checked.iter().find_map(|(cluster, found)| match found {
            super::readyz::Readyz::NotReady(said) => Some(format!("the apiserver of cluster {cluster} is not ready: {said}")),
            _ => None,
        });
        let names: BTreeSet<String> = clusters.keys().cloned().collect();
        not_ready.or_else(|| self.view.wave_healthy(name, &names).err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Basis, Summary};
    use crate::role::Role;

    fn plan(clusters: &[&str]) -> Plan {
        let mut actions = vec![action("seed/eu")];
        actions.extend(clusters.iter().map(|c| action(&format!("cluster/{c}/deployment/apiserver"))));
        Plan {
            basis: Basis::default(),
            summary: Summary::default(),
            actions,
            clusters: BTreeMap::new(),
            notices: Vec::new(),
            drift: Vec::new(),
            upgrades: BTreeMap::new(),
            cluster_labels: BTreeMap::from([("c3".to_string(), BTreeMap::from([("env".to_string(), "staging".to_string())]))]),
        }
    }

    fn action(address: &str) -> PlannedAction {
        PlannedAction::example(address, Role::Workload, Action::Update)
    }

    fn names(assigned: &[(String, BTreeSet<String>)]) -> Vec<(&str, Vec<&str>)> {
        assigned.iter().map(|(n, c)| (n.as_str(), c.iter().map(String::as_str).collect())).collect()
    }

    #[test]
    fn waves_take_named_labelled_then_percentages_of_the_clusters() {
        let p = plan(&["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"]);
        let waves = parse("canary=c7,env:staging,50%,100%").unwrap();
        assert_eq!(waves[0].name, "canary");
        assert_eq!(waves[1].name, "wave-2");
        assert_eq!(
            names(&assign(&p, &waves)),
            vec![("canary", vec!["c7"]), ("wave-2", vec!["c3"]), ("wave-3", vec!["c1", "c2"]), ("wave-4", vec!["c4", "c5", "c6", "c8"]),]
        );
        // Seed actions go first; later waves have only their clusters.
        let first = part(&p, &assign(&p, &waves)[0].1, true);
        assert_eq!(
            first.actions.iter().map(|a| a.address.as_str()).collect::<Vec<_>>(),
            vec!["seed/eu", "cluster/c7/deployment/apiserver"]
        );
    }

    #[test]
    fn clusters_no_wave_selects_are_not_left_out() {
        let p = plan(&["c1", "c2", "c3", "c4"]);
        let assigned = assign(&p, &parse("25%").unwrap());
        assert_eq!(names(&assigned), vec![("wave-1", vec!["c1"]), ("rest", vec!["c2", "c3", "c4"])]);
        // A canary already done (not in the plan) leaves its wave out, but the seed's actions
        // still go first.
        let assigned = assign(&p, &parse("canary=gone,100%").unwrap());
        assert_eq!(names(&assigned), vec![("canary", vec![]), ("wave-2", vec!["c1", "c2", "c3", "c4"])]);
    }

    #[test]
    fn bad_waves_say_what_is_wrong() {
        assert!(parse("0%").unwrap_err().contains("not a percentage"));
        assert!(parse("canary=").unwrap_err().contains("selects nothing"));
        assert!(parse("env:").is_ok());
        assert!(parse(":x").unwrap_err().contains("not a KEY:VALUE label"));
    }
}
