//! How long apply steps took in earlier applies: a small summary the state keeps so the next
//! apply can say how long it expects to take (`apply::eta`).
//!
//! Bounded on purpose: one entry per target kind (`dir`, `kube`: a file write and an API
//! server's round trips and readiness waits differ by orders of magnitude) and step (a node's
//! role and what was done to it, e.g. `certificate:issue`, `data-store:ready`), never per
//! node or cluster, so it does not grow with the fleet. Each entry is an exponentially weighted
//! mean over applies: a plain mean for the first three, then each apply moves it 30% toward
//! that apply's own mean, so recent runs count most and one slow run does not dominate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The weight of the newest apply once there are enough of them.
const NEWEST_WEIGHT: f64 = 0.3;

/// Per target kind and step, how long a node took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    /// Applies whose timings are folded in.
    pub applies: u64,
    /// Target kind (`dir`, `kube`), then step, then the timing.
    pub by_target: BTreeMap<String, BTreeMap<String, Timing>>,
}

/// The timing of one step on one kind of target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// Nodes timed, over all applies.
    pub nodes: u64,
    /// Applies that timed this step.
    pub applies: u64,
    /// The weighted mean, in milliseconds.
    pub mean_ms: u64,
}

/// One node's time in one apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The target kind of its seed (`dir`, `kube`).
    pub target: String,
    /// Its step (`apply::eta::step`).
    pub step: String,
    /// From the start of its write until it was done (ready, for awaited workloads) and
    /// recorded.
    pub elapsed: Duration,
}

impl crate::state::SeedTarget {
    /// `dir` or `kube`: what timings are kept apart by.
    pub fn kind(&self) -> &'static str {
        match self {
            crate::state::SeedTarget::Dir { .. } => "dir",
            crate::state::SeedTarget::Kube { .. } => "kube",
        }
    }
}

impl Timings {
    /// True when nothing was ever timed.
    pub fn is_empty(&self) -> bool {
        self.by_target.is_empty()
    }

    /// Folds in the samples of one apply: per step, that apply's mean moves the recorded one.
    /// An apply without samples changes nothing.
    pub fn fold(&mut self, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        let mut sums: BTreeMap<(&str, &str), (u64, u128)> = BTreeMap::new();
        for sample in samples {
            let sum = sums.entry((&sample.target, &sample.step)).or_default();
            sum.0 += 1;
            sum.1 += sample.elapsed.as_micros();
        }
        for ((target, step), (count, micros)) in sums {
            let mean_ms = micros as f64 / count as f64 / 1000.0;
            let steps = self.by_target.entry(target.to_string()).or_default();
            match steps.get_mut(step) {
                None => {
                    steps.insert(step.to_string(), Timing { nodes: count, applies: 1, mean_ms: mean_ms.round() as u64 });
                }
                Some(timing) => {
                    let weight = (1.0 / (timing.applies + 1) as f64).max(NEWEST_WEIGHT);
                    let moved = timing.mean_ms as f64 + (mean_ms - timing.mean_ms as f64) * weight;
                    timing.mean_ms = moved.round() as u64;
                    timing.nodes += count;
                    timing.applies += 1;
                }
            }
        }
        self.applies += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(target: &str, step: &str, ms: u64) -> Sample {
        Sample { target: target.into(), step: step.into(), elapsed: Duration::from_millis(ms) }
    }

    #[test]
    fn the_first_applies_average_then_the_newest_counts_for_thirty_percent() {
        let mut timings = Timings::default();
        timings.fold(&[sample("kube", "workload:ready", 1000), sample("kube", "workload:ready", 3000), sample("dir", "config", 2)]);
        assert_eq!(timings.applies, 1);
        assert_eq!(timings.by_target["kube"]["workload:ready"], Timing { nodes: 2, applies: 1, mean_ms: 2000 });
        assert_eq!(timings.by_target["dir"]["config"].mean_ms, 2);
        // Second and third applies: a plain mean of the applies' means.
        timings.fold(&[sample("kube", "workload:ready", 4000)]);
        assert_eq!(timings.by_target["kube"]["workload:ready"].mean_ms, 3000);
        timings.fold(&[sample("kube", "workload:ready", 6000)]);
        assert_eq!(timings.by_target["kube"]["workload:ready"].mean_ms, 4000);
        // From the fourth on, 30% toward the newest.
        timings.fold(&[sample("kube", "workload:ready", 14000)]);
        assert_eq!(timings.by_target["kube"]["workload:ready"], Timing { nodes: 5, applies: 4, mean_ms: 7000 });
        // A step the later applies did not time keeps its mean; an empty apply counts for nothing.
        assert_eq!(timings.by_target["dir"]["config"], Timing { nodes: 1, applies: 1, mean_ms: 2 });
        timings.fold(&[]);
        assert_eq!(timings.applies, 4);
    }

    #[test]
    fn a_fleet_of_any_size_keeps_one_entry_per_target_kind_and_step() {
        let mut timings = Timings::default();
        let samples: Vec<Sample> = (0..10_000).map(|i| sample("kube", ["workload:ready", "config"][i % 2], i as u64)).collect();
        timings.fold(&samples);
        assert_eq!(timings.by_target.len(), 1);
        assert_eq!(timings.by_target["kube"].len(), 2);
        assert_eq!(timings.by_target["kube"]["config"].nodes, 5000);
    }

    #[test]
    fn states_without_timings_load_and_timings_round_trip() {
        let path = std::path::Path::new("kkp.state.json");
        let older = br#"{"format_version": 3, "lineage": "l", "serial": 4, "nodes": {}}"#;
        let mut state = crate::state::format::from_bytes(path, older).unwrap();
        assert!(state.timings.is_empty());
        assert!(!String::from_utf8(crate::state::format::to_bytes(&state)).unwrap().contains("timings"));
        state.timings.fold(&[sample("kube", "workload:ready", 1500)]);
        let bytes = crate::state::format::to_bytes(&state);
        assert!(String::from_utf8(bytes.clone()).unwrap().contains("\"meanMs\": 1500"));
        assert_eq!(crate::state::format::from_bytes(path, &bytes).unwrap(), state);
    }
}
