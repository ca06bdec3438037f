//! The expected duration of an apply, from the step timings earlier applies recorded in the
//! state ([`crate::state::timings`]). Pure: the workflow passes the timings, the kind of target
//! each seed is on and the limits; nothing here reads a clock.
//!
//! Each action is expected to take its step's recorded mean on its seed's kind of target. The
//! estimate is the longest of three lower bounds on the walk's wall time: the critical path
//! (the heaviest dependency chain through the plan's graph, with those durations), all the work
//! spread over `--parallelism`, and the busiest seed's work spread over `--per-seed`. Waves run
//! one after another, so a rollout's estimate is the sum of its waves'. Without timings for
//! the plan's kind of target there is no estimate, and it says so rather than inventing one; a
//! step never timed before counts at the mean of the steps that were (and is counted as such).
//!
//! Estimates never enter a plan or its digest: timings change from run to run, plans must not.

use crate::graph::Dag;
use crate::plan::{Action, Plan, PlannedAction};
use crate::role::Role;
use crate::state::timings::{Timing, Timings};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// What estimates are made from.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The timings the state recorded.
    pub timings: Timings,
    /// Per seed, the kind of target it is on (`dir`, `kube`).
    pub kinds: BTreeMap<String, String>,
    /// Nodes applied at once overall.
    pub parallelism: usize,
    /// Nodes applied at once per seed.
    pub per_seed: usize,
}

/// How long an apply is expected to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Estimate {
    /// There is nothing to estimate from; says why.
    Unknown(String),
    /// An estimate.
    Expected(Expected),
}

/// An estimate and what it is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// The estimate: the longest of the bounds below (summed over waves).
    pub total: Duration,
    /// The heaviest dependency chain.
    pub critical_path: Duration,
    /// All the work, one node after another.
    pub work: Duration,
    /// Earlier applies the timings come from.
    pub applies: u64,
    /// Actions whose step was never timed on their kind of target (counted at the mean).
    pub untimed: usize,
}

impl History {
    /// The estimate for applying `plan` in one go.
    pub fn estimate(&self, plan: &Plan) -> Estimate {
        self.estimate_of(&plan.actions.iter().collect::<Vec<_>>())
    }

    /// The estimate for applying `actions` (a plan or a wave of it) in one go.
    fn estimate_of(&self, actions: &[&PlannedAction]) -> Estimate {
        if actions.is_empty() {
            return Estimate::Expected(Expected { applies: self.timings.applies, ..Expected::default() });
        }
        let mut untimed = 0;
        let mut durations = Vec::with_capacity(actions.len());
        let in_plan: HashSet<&crate::address::Address> = actions.iter().map(|a| &a.address).collect();
        let deps: Vec<Vec<crate::address::Address>> =
            actions.iter().map(|a| a.deps.iter().filter(|d| in_plan.contains(d)).cloned().collect()).collect();
        let dag = match Dag::new(actions.iter().zip(&deps).map(|(a, d)| (&a.address, d.as_slice()))) {
            Ok(dag) => dag,
            Err(e) => return Estimate::Unknown(format!("the plan's graph: {e}")),
        };
        for (i, action) in actions.iter().enumerate() {
            let awaited = dag.dependants(i).next().is_some();
            let kind = self.kinds.get(&action.seed).map(String::as_str);
            let Some(steps) = kind.and_then(|k| self.timings.by_target.get(k)) else {
                return Estimate::Unknown(match (kind, self.timings.is_empty()) {
                    (_, true) => "no earlier apply recorded how long its steps took; this one will".into(),
                    (Some(kind), false) => format!(
                        "no earlier apply to a {kind} target recorded timings (the state has them for {}); this one will",
                        self.timings.by_target.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    (None, false) => format!("the target of seed {} is not known", action.seed),
                });
            };
            let ms = match steps.get(&step(action.role, action.action, awaited)) {
                Some(timing) => timing.mean_ms,
                None => {
                    untimed += 1;
                    mean(steps.values())
                }
            };
            durations.push(Duration::from_millis(ms));
        }
        // Heaviest chain: each node finishes its own duration after its latest dependency.
        let mut finish = vec![Duration::ZERO; durations.len()];
        for &i in dag.topological_order() {
            finish[i] = durations[i] + dag.dependencies(i).map(|d| finish[d]).max().unwrap_or_default();
        }
        let critical_path = finish.iter().copied().max().unwrap_or_default();
        let work: Duration = durations.iter().sum();
        let mut per_seed: BTreeMap<&str, Duration> = BTreeMap::new();
        for (action, d) in actions.iter().zip(&durations) {
            *per_seed.entry(&action.seed).or_default() += *d;
        }
        let busiest = per_seed.values().copied().max().unwrap_or_default();
        let total = critical_path.max(work / self.parallelism.max(1) as u32).max(busiest / self.per_seed.max(1) as u32);
        Estimate::Expected(Expected { total, critical_path, work, applies: self.timings.applies, untimed })
    }

    /// The estimate for applying `plan` in `waves` (one after another), and each wave's.
    pub fn estimate_waves(&self, plan: &Plan, waves: &[super::waves::Wave]) -> (Estimate, Vec<(String, Estimate)>) {
        let mut each = Vec::new();
        let mut sum = Expected { applies: self.timings.applies, ..Expected::default() };
        let mut unknown = None;
        for (i, (name, clusters)) in super::waves::assign(plan, waves).iter().enumerate() {
            let wave: Vec<&PlannedAction> = plan.actions.iter().filter(|a| super::waves::belongs(a, clusters, i == 0)).collect();
            let estimate = self.estimate_of(&wave);
            match &estimate {
                Estimate::Expected(e) => {
                    sum.total += e.total;
                    sum.critical_path += e.critical_path;
                    sum.work += e.work;
                    sum.untimed += e.untimed;
                }
                Estimate::Unknown(why) => unknown = unknown.or_else(|| Some(why.clone())),
            }
            each.push((name.clone(), estimate));
        }
        (unknown.map_or(Estimate::Expected(sum), Estimate::Unknown), each)
    }
}

/// The mean over steps, weighted by the nodes each timed.
fn mean<'a>(timings: impl Iterator<Item = &'a Timing>) -> u64 {
    let (nodes, total) =
        timings.fold((0u128, 0u128), |(n, t), timing| (n + timing.nodes as u128, t + timing.nodes as u128 * timing.mean_ms as u128));
    total.checked_div(nodes).unwrap_or_default() as u64
}

/// A duration as people say it: `under a second`, `about 45s`, `about 2m10s`, `about 1h05m`.
pub fn approx(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0 if d < Duration::from_millis(500) => "under a second".into(),
        0..60 => format!("about {}s", s.max(1)),
        60..3600 => format!("about {}m{:02}s", s / 60, s % 60),
        _ => {
            let minutes = (s + 30) / 60;
            format!("about {}h{:02}m", minutes / 60, minutes % 60)
        }
    }
}

/// The step a node's time counts for: its role, and what was done that takes its own time:
/// `:delete`, `:issue` (keys generated for a created or replaced Secret kkp issues), `:ready`
/// (a workload others wait for, awaited until ready).
pub fn step(role: Role, action: Action, awaited: bool) -> String {
    let suffix = match action {
        Action::Delete => ":delete",
        Action::Create | Action::Replace if role.is_issued() => ":issue",
        _ if awaited && role.is_workload() => ":ready",
        _ => "",
    };
    format!("{}{suffix}", role.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;

    fn action(address: &str, seed: &str, role: Role, act: Action, deps: &[&str]) -> PlannedAction {
        PlannedAction {
            seed: seed.into(),
            deps: deps.iter().map(|d| Address::parse(d).unwrap()).collect(),
            ..PlannedAction::example(address, role, act)
        }
    }

    /// One cluster on seed `eu`: namespace -> CA -> certificate -> etcd (awaited) -> apiserver,
    /// and a ConfigMap beside; a dependency outside the plan (already applied) is ignored.
    fn cluster(name: &str) -> Vec<PlannedAction> {
        let at = |what: &str| format!("cluster/{name}/{what}");
        vec![
            action(&at("namespace"), "eu", Role::Namespace, Action::Create, &["seed/eu"]),
            action(&at("secret/ca"), "eu", Role::CertificateAuthority, Action::Create, &[&at("namespace")]),
            action(&at("secret/etcd-tls"), "eu", Role::Certificate, Action::Create, &[&at("secret/ca")]),
            action(&at("statefulset/etcd"), "eu", Role::DataStore, Action::Create, &[&at("secret/etcd-tls")]),
            action(&at("deployment/apiserver"), "eu", Role::Workload, Action::Create, &[&at("statefulset/etcd")]),
            action(&at("configmap/audit"), "eu", Role::Config, Action::Create, &[&at("namespace")]),
        ]
    }

    fn timing(ms: u64) -> Timing {
        Timing { nodes: 1, applies: 1, mean_ms: ms }
    }

    fn history(parallelism: usize) -> History {
        let steps = BTreeMap::from([
            ("namespace".to_string(), timing(100)),
            ("certificate-authority:issue".to_string(), timing(2000)),
            ("certificate:issue".to_string(), timing(500)),
            ("data-store:ready".to_string(), timing(30_000)),
            ("workload".to_string(), timing(1000)),
            ("config".to_string(), timing(50)),
        ]);
        History {
            timings: Timings { applies: 3, by_target: BTreeMap::from([("kube".to_string(), steps)]) },
            kinds: BTreeMap::from([("eu".to_string(), "kube".to_string())]),
            parallelism,
            per_seed: 100,
        }
    }

    fn plan(clusters: &[&str]) -> Plan {
        Plan { actions: clusters.iter().flat_map(|c| cluster(c)).collect(), ..Plan::default() }
    }

    fn expected(estimate: Estimate) -> Expected {
        match estimate {
            Estimate::Expected(e) => e,
            Estimate::Unknown(why) => panic!("no estimate: {why}"),
        }
    }

    #[test]
    fn steps_name_the_role_and_the_work_that_takes_its_own_time() {
        assert_eq!(step(Role::Certificate, Action::Create, false), "certificate:issue");
        assert_eq!(step(Role::Certificate, Action::Update, false), "certificate");
        assert_eq!(step(Role::DataStore, Action::Update, true), "data-store:ready");
        assert_eq!(step(Role::Workload, Action::Create, false), "workload");
        assert_eq!(step(Role::Config, Action::Create, true), "config");
        assert_eq!(step(Role::Workload, Action::Delete, true), "workload:delete");
    }

    #[test]
    fn the_critical_path_weighs_each_step_by_its_recorded_time() {
        let e = expected(history(10).estimate(&plan(&["a"])));
        // namespace 0.1 + CA 2 + certificate 0.5 + etcd awaited 30 + apiserver 1 (not awaited:
        // nothing in the plan depends on it); the ConfigMap is off the path.
        assert_eq!(e.critical_path, Duration::from_millis(33_600));
        assert_eq!(e.work, Duration::from_millis(33_650));
        assert_eq!(e.total, e.critical_path);
        assert_eq!((e.applies, e.untimed), (3, 0));
    }

    #[test]
    fn many_clusters_are_bounded_by_the_work_spread_over_the_parallelism() {
        // 20 independent clusters: the chain is still 33.6 s, but 20 x 33.65 s over 4 at once
        // is 168.25 s; over 100 at once the chain decides again.
        let names: Vec<String> = (0..20).map(|i| format!("c{i:02}")).collect();
        let p = plan(&names.iter().map(String::as_str).collect::<Vec<_>>());
        let e = expected(history(4).estimate(&p));
        assert_eq!(e.critical_path, Duration::from_millis(33_600));
        assert_eq!(e.total, Duration::from_millis(168_250));
        assert_eq!(expected(history(100).estimate(&p)).total, Duration::from_millis(33_600));
        // The seed's own budget bounds it too.
        let narrow = History { per_seed: 2, ..history(100) };
        assert_eq!(expected(narrow.estimate(&p)).total, Duration::from_millis(336_500));
    }

    #[test]
    fn without_timings_for_the_target_there_is_no_estimate() {
        let none = History { timings: Timings::default(), ..history(10) };
        assert!(matches!(none.estimate(&plan(&["a"])), Estimate::Unknown(why) if why.contains("no earlier apply recorded")));
        let dir = History { kinds: BTreeMap::from([("eu".to_string(), "dir".to_string())]), ..history(10) };
        assert!(
            matches!(dir.estimate(&plan(&["a"])), Estimate::Unknown(why) if why.contains("to a dir target") && why.contains("for kube"))
        );
    }

    #[test]
    fn a_step_never_timed_counts_at_the_mean_and_is_counted() {
        let mut p = plan(&["a"]);
        p.actions.push(action("cluster/a/cronjob/defrag", "eu", Role::Job, Action::Create, &["cluster/a/namespace"]));
        let e = expected(history(10).estimate(&p));
        assert_eq!(e.untimed, 1);
        // The mean of the six timed steps: 33,650 / 6 = 5,608 ms.
        assert_eq!(e.work, Duration::from_millis(33_650 + 5_608));
    }

    #[test]
    fn waves_add_up() {
        let p = plan(&["a", "b", "c"]);
        let waves = super::super::waves::parse("canary=a,100%").unwrap();
        let (total, each) = history(10).estimate_waves(&p, &waves);
        assert_eq!(each.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["canary", "wave-2"]);
        assert_eq!(expected(each[0].1.clone()).total, Duration::from_millis(33_600));
        // Two clusters at once in the second wave: still one chain.
        assert_eq!(expected(each[1].1.clone()).total, Duration::from_millis(33_600));
        assert_eq!(expected(total).total, Duration::from_millis(67_200));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(approx(Duration::from_millis(120)), "under a second");
        assert_eq!(approx(Duration::from_millis(700)), "about 1s");
        assert_eq!(approx(Duration::from_secs(45)), "about 45s");
        assert_eq!(approx(Duration::from_secs(130)), "about 2m10s");
        assert_eq!(approx(Duration::from_secs(3900)), "about 1h05m");
        assert_eq!(approx(Duration::from_secs(7195)), "about 2h00m");
    }
}
