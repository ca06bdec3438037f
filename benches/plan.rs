//! Plan at fleet scale: `cargo bench --bench plan [-- CLUSTERS...]` (default 1000 10000).
//!
//! For each size it generates a topology of 20 seeds, builds the state a complete apply of it
//! would leave (synthetic certificate fingerprints, real digests and stored bodies), then
//! times the real `kkp plan` binary end to end: load topology, load state, plan, print.
//! Four cases: nothing changed (exit 0), 1% of clusters on a new version (exit 2), and the
//! first plan of the fleet with no state (exit 2), shown (`first plan`) and saved with `-o`
//! (`first plan -o`).
//! Wall time is the best of three runs; peak memory is the child's max RSS (wait4).

use kkp::topology::generate::{Spec, generate};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

mod simulated;
mod support;

const SEEDS: usize = 20;
const NOW: i64 = 1_790_000_000;

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000] } else { sizes };
    println!(
        "{:>8} {:>9} {:>14} {:>5} {:>12} {:>9} {:>11} {:>10}",
        "clusters", "objects", "case", "exit", "wall (best)", "CPU", "peak RSS", "setup"
    );
    for clusters in sizes {
        bench(clusters);
    }
}

fn bench(clusters: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Instant::now();
    let spec = Spec { seeds: SEEDS, clusters, ..Spec::default() };
    let unchanged = dir.path().join("topology.yaml");
    let changed = dir.path().join("changed.yaml");
    std::fs::write(&unchanged, generate(&spec)).unwrap();
    std::fs::write(&changed, generate(&Spec { changed_every: Some(100), ..spec.clone() })).unwrap();
    let state_path = dir.path().join("kkp.state.json");
    let objects = simulated::build_state(&unchanged, &state_path, NOW);
    let setup = setup.elapsed();

    let no_state = dir.path().join("empty").join("kkp.state.json");
    std::fs::create_dir_all(no_state.parent().unwrap()).unwrap();
    let saved = dir.path().join("first.plan");
    let cases: [(&str, &Path, &Path, Option<&Path>, i32); 4] = [
        ("no change", &unchanged, &state_path, None, 0),
        ("1% changed", &changed, &state_path, None, 2),
        ("first plan", &unchanged, &no_state, None, 2),
        ("first plan -o", &unchanged, &no_state, Some(&saved), 2),
    ];
    for (case, topology, state_path, out, expected_exit) in cases {
        let mut best = Duration::MAX;
        let mut cpu = Duration::MAX;
        let mut peak_kib = 0;
        for _ in 0..3 {
            let cost = run_plan(topology, state_path, out);
            assert_eq!(cost.exit, expected_exit, "kkp plan exited {} for {case}", cost.exit);
            best = best.min(cost.wall);
            cpu = cpu.min(cost.cpu);
            peak_kib = peak_kib.max(cost.max_rss_kib);
        }
        println!(
            "{clusters:>8} {objects:>9} {case:>14} {expected_exit:>5} {:>10.2} s {:>7.2} s {:>7.0} MiB {:>8.1} s",
            best.as_secs_f64(),
            cpu.as_secs_f64(),
            peak_kib as f64 / 1024.0,
            setup.as_secs_f64()
        );
    }
}

/// Runs `kkp plan` (saving the plan to `out` if given).
fn run_plan(topology: &Path, state: &Path, out: Option<&Path>) -> support::Cost {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kkp"));
    command.args(["plan", "--detailed-exitcode", "-f"]).arg(topology).arg("--state").arg(state);
    if let Some(out) = out {
        command.arg("-o").arg(out);
    }
    support::run(command)
}
