//! The graph walk: runs every node once all of its dependencies succeeded, in parallel within
//! a global limit and a per-group budget (one group per seed). A failure skips only what
//! depends on it; cancellation starts nothing new and lets running nodes finish.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// How a node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed.
    Failed(String),
    /// It did not run because this dependency failed (or was itself skipped).
    Skipped(usize),
    /// It did not run because the walk was cancelled.
    Cancelled,
}

/// A node's place in the global limit and its group's budget; dropping it frees both.
pub struct Permit {
    _budget: tokio::sync::OwnedSemaphorePermit,
    _global: tokio::sync::OwnedSemaphorePermit,
}

/// Concurrency limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nodes running at once, overall.
    pub global: usize,
    /// Nodes running at once within one group.
    pub per_group: usize,
}

/// Walks the DAG given as `deps[i]` (the nodes `i` waits for), running `run(i, permit)` for
/// each node. `group[i]` picks the budget node `i` counts against; `run` may drop its permit
/// before it finishes, to let another node start while it does work the limits do not cover.
pub async fn walk<F, Fut>(deps: &[Vec<usize>], group: &[usize], limits: Limits, cancel: Arc<AtomicBool>, run: F) -> Vec<Outcome>
where
    F: Fn(usize, Permit) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let n = deps.len();
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependants[d].push(i);
        }
    }
    let global = Arc::new(Semaphore::new(limits.global.max(1)));
    let groups: Vec<Arc<Semaphore>> =
        (0..=group.iter().copied().max().unwrap_or(0)).map(|_| Arc::new(Semaphore::new(limits.per_group.max(1)))).collect();
    let run = Arc::new(run);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut tasks = JoinSet::new();

    let spawn = |i: usize, tasks: &mut JoinSet<(usize, Outcome)>| {
        let (global, budget, run, cancel) = (global.clone(), groups[group[i]].clone(), run.clone(), cancel.clone());
        tasks.spawn(async move {
            let budget = budget.acquire_owned().await.expect("semaphores are never closed");
            let global = global.acquire_owned().await.expect("semaphores are never closed");
            if cancel.load(Ordering::SeqCst) {
                return (i, Outcome::Cancelled);
            }
            // A task of its own, so a panic (a bug) fails only this node, not the whole walk.
            match tokio::spawn(run(i, Permit { _budget: budget, _global: global })).await {
                Ok(Ok(())) => (i, Outcome::Succeeded),
                Ok(Err(e)) => (i, Outcome::Failed(e)),
                Err(e) => (i, Outcome::Failed(panic_message(e))),
            }
        });
    };
    for (i, _) in waiting.iter().enumerate().filter(|(_, w)| **w == 0) {
        spawn(i, &mut tasks);
    }
    while let Some(joined) = tasks.join_next().await {
        // Node panics are caught inside the task; only the walk's own code runs here.
        let (i, outcome) = joined.expect("the walk's tasks do not panic");
        let succeeded = outcome == Outcome::Succeeded;
        let cancelled = outcome == Outcome::Cancelled;
        outcomes[i] = Some(outcome);
        if cancelled {
            // Not started because of Ctrl-C: what waits on it is not started either, not
            // "skipped because of a failure" (there was none).
            let mut stack: Vec<usize> = dependants[i].clone();
            while let Some(d) = stack.pop() {
                if outcomes[d].is_none() {
                    outcomes[d] = Some(Outcome::Cancelled);
                    stack.extend(&dependants[d]);
                }
            }
        } else if succeeded {
            for &d in &dependants[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 && outcomes[d].is_none() {
                    if cancel.load(Ordering::SeqCst) {
                        outcomes[d] = Some(Outcome::Cancelled);
                    } else {
                        spawn(d, &mut tasks);
                    }
                }
            }
        } else {
            // Everything downstream is skipped, naming the first failure upstream.
            let mut stack: Vec<usize> = dependants[i].clone();
            while let Some(d) = stack.pop() {
                if outcomes[d].is_none() {
                    outcomes[d] = Some(Outcome::Skipped(i));
                    stack.extend(&dependants[d]);
                }
            }
        }
    }
    outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Cancelled)).collect()
}

/// What a node's task that did not finish says about it.
fn panic_message(error: tokio::task::JoinError) -> String {
    if !error.is_panic() {
        return "its task was cancelled".into();
    }
    let payload = error.into_panic();
    let message = payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned());
    format!("kkp bug: applying it panicked ({}); please report it", message.unwrap_or_else(|| "no message".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Mutex;

    fn run_walk(deps: Vec<Vec<usize>>, fail: Vec<usize>, limits: Limits) -> (Vec<Outcome>, Vec<usize>) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let group: Vec<usize> = (0..deps.len()).map(|i| i % 3).collect();
        let recorded = order.clone();
        let outcomes = rt.block_on(walk(&deps, &group, limits, Arc::new(AtomicBool::new(false)), move |i, _permit| {
            let recorded = recorded.clone();
            let fails = fail.contains(&i);
            async move {
                tokio::task::yield_now().await;
                recorded.lock().unwrap().push(i);
                if fails { Err(format!("node {i} failed")) } else { Ok(()) }
            }
        }));
        let order = order.lock().unwrap().clone();
        (outcomes, order)
    }

    #[test]
    fn a_failure_stops_only_its_dependants() {
        // 0 -> 1 -> 2, and 3 -> 4 independent.
        let deps = vec![vec![], vec![0], vec![1], vec![], vec![3]];
        let (outcomes, _) = run_walk(deps, vec![1], Limits { global: 4, per_group: 4 });
        assert_eq!(
            outcomes,
            vec![Outcome::Succeeded, Outcome::Failed("node 1 failed".into()), Outcome::Skipped(1), Outcome::Succeeded, Outcome::Succeeded]
        );
    }

    #[test]
    fn a_panicking_node_fails_only_itself_and_its_dependants() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        // 0 -> 1 -> 2, and 3 -> 4 independent; node 1 panics.
        let deps = vec![vec![], vec![0], vec![1], vec![], vec![3]];
        let outcomes = rt.block_on(walk(
            &deps,
            &[0, 0, 0, 1, 1],
            Limits { global: 2, per_group: 2 },
            Arc::new(AtomicBool::new(false)),
            |i, _permit| async move {
                if i == 1 {
                    panic!("node {i} hit a bug");
                }
                Ok(())
            },
        ));
        assert!(matches!(&outcomes[1], Outcome::Failed(e) if e.contains("panicked (node 1 hit a bug)")), "{outcomes:?}");
        assert_eq!(outcomes[2], Outcome::Skipped(1));
        assert_eq!([&outcomes[0], &outcomes[3], &outcomes[4]], [&Outcome::Succeeded; 3]);
    }

    #[test]
    fn cancellation_starts_nothing_new() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        let deps = vec![vec![], vec![0], vec![1]];
        let outcomes = rt.block_on(walk(&deps, &[0, 0, 0], Limits { global: 1, per_group: 1 }, cancel, move |i, _permit| {
            let flag = flag.clone();
            async move {
                if i == 0 {
                    flag.store(true, Ordering::SeqCst);
                }
                Ok(())
            }
        }));
        assert_eq!(outcomes, vec![Outcome::Succeeded, Outcome::Cancelled, Outcome::Cancelled]);
    }

    #[test]
    fn what_waits_on_a_cancelled_node_is_cancelled_not_skipped() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        // 0 and 1 start together; 0 cancels while 1 waits for the one global slot.
        let deps = vec![vec![], vec![], vec![1], vec![2]];
        let outcomes = rt.block_on(walk(&deps, &[0, 0, 0, 0], Limits { global: 1, per_group: 1 }, cancel, move |i, _permit| {
            let flag = flag.clone();
            async move {
                if i == 0 {
                    flag.store(true, Ordering::SeqCst);
                }
                Ok(())
            }
        }));
        assert_eq!(outcomes, vec![Outcome::Succeeded, Outcome::Cancelled, Outcome::Cancelled, Outcome::Cancelled]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Every node that runs, runs after all of its dependencies; every node ends with
        /// exactly one outcome; a node runs iff nothing upstream failed.
        #[test]
        fn every_node_runs_after_its_dependencies(edges in proptest::collection::vec((0usize..20, 0usize..20), 0..60), fail in proptest::collection::vec(0usize..20, 0..3), global in 1usize..5) {
            let mut deps = vec![Vec::new(); 20];
            for (a, b) in edges {
                if a < b && !deps[b].contains(&a) {
                    deps[b].push(a);
                }
            }
            let (outcomes, order) = run_walk(deps.clone(), fail.clone(), Limits { global, per_group: 2 });
            let position = |i: usize| order.iter().position(|&x| x == i);
            for i in 0..20 {
                let upstream_failed = {
                    let mut stack = deps[i].clone();
                    let mut seen = [false; 20];
                    let mut failed = false;
                    while let Some(d) = stack.pop() {
                        if std::mem::replace(&mut seen[d], true) { continue; }
                        failed |= fail.contains(&d);
                        stack.extend(&deps[d]);
                    }
                    failed
                };
                prop_assert_eq!(position(i).is_some(), !upstream_failed);
                if let Some(p) = position(i) {
                    for &d in &deps[i] {
                        prop_assert!(position(d).unwrap() < p);
                    }
                }
                prop_assert_eq!(matches!(outcomes[i], Outcome::Skipped(_)), upstream_failed);
            }
        }
    }
}
