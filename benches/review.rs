//! Review output at fleet scale: `cargo bench --bench review [-- CLUSTERS...]` (default 200
//! 10000).
//!
//! For each size it generates a fleet on 4 seeds, builds the state a complete apply would leave
//! (synthetic fingerprints), then changes it the way an upgrade day does: every cluster moves
//! to a new version, one cluster moves to another seed, one is removed. It runs the real
//! `kkp plan --markdown` and `kkp plan --summary` and reports their sizes, checking that the
//! markdown stays under GitHub's 65,536-character comment limit and names every replaced or
//! destroyed node's cluster.

mod simulated;

use kkp::topology::generate::{Spec, generate};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

const SEEDS: usize = 4;
const NOW: i64 = 1_790_000_000;
const MOVED: &str = "c000005";
const REMOVED: &str = "c000006";

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![200, 10_000] } else { sizes };
    println!(
        "{:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>9} {:>8}",
        "clusters", "actions", "replace", "destroy", "markdown", "summary", "human", "wall"
    );
    for clusters in sizes {
        bench(clusters);
    }
}

fn bench(clusters: usize) {
    // KKP_BENCH_KEEP=DIR keeps the fleet (topologies, state) for a look at the plans.
    let dir = match std::env::var_os("KKP_BENCH_KEEP") {
        Some(keep) => {
            tempfile::Builder::new().prefix(&format!("review-{clusters}-")).disable_cleanup(true).tempdir_in(keep).expect("tempdir")
        }
        None => tempfile::tempdir().expect("tempdir"),
    };
    let spec = Spec { seeds: SEEDS, clusters, ..Spec::default() };
    let before = dir.path().join("before.yaml");
    std::fs::write(&before, generate(&spec)).unwrap();
    let state_path = dir.path().join("kkp.state.json");
    simulated::build_state(&before, &state_path, NOW);

    // Upgrade day: all clusters on the new version, one moved to another seed, one removed.
    let upgraded = generate(&Spec { changed_every: Some(1), ..spec.clone() });
    let docs: Vec<String> = upgraded
        .split("---\n")
        .filter(|d| !d.contains(&format!("name: {REMOVED}\n")))
        .map(|d| if d.contains(&format!("name: {MOVED}\n")) { moved(d) } else { d.to_string() })
        .collect();
    let after = dir.path().join("after.yaml");
    std::fs::write(&after, docs.join("---\n")).unwrap();

    if std::env::var_os("KKP_BENCH_KEEP").is_some() {
        eprintln!("fleet of {clusters} clusters kept in {}", dir.path().display());
    }
    let json = kkp(&after, &state_path, &["--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).expect("plan --json");
    let actions = plan["plan"]["actions"].as_array().unwrap();
    let risky: Vec<&serde_json::Value> = actions.iter().filter(|a| a["action"] == "replace" || a["action"] == "delete").collect();
    let start = Instant::now();
    let markdown = String::from_utf8(kkp(&after, &state_path, &["--markdown"]).stdout).unwrap();
    let wall = start.elapsed();
    let summary = kkp(&after, &state_path, &["--summary"]).stdout.len();
    let human = kkp(&after, &state_path, &[]).stdout.len();
    let chars = markdown.chars().count();
    println!(
        "{clusters:>8} {:>8} {:>8} {:>8} {chars:>10} {summary:>10} {human:>9} {:>6.2} s",
        actions.len(),
        plan["plan"]["summary"]["replace"],
        plan["plan"]["summary"]["destroy"],
        wall.as_secs_f64()
    );
    assert!(chars < 65_536, "the markdown has {chars} characters");
    for a in &risky {
        let address = a["address"].as_str().unwrap();
        assert!(markdown.contains(address), "the markdown leaves out {address}");
    }
}

/// The cluster document moved to the second seed's first datacenter.
fn moved(doc: &str) -> String {
    let dc = doc.lines().find_map(|l| l.trim().strip_prefix("dc: ")).expect("the cluster names its datacenter").to_string();
    doc.replace(&format!("dc: {dc}"), "dc: dc-002-0")
}

fn kkp(topology: &Path, state: &Path, extra: &[&str]) -> std::process::Output {
    let allow = [format!("cluster/{MOVED}"), format!("cluster/{REMOVED}")];
    let out = Command::new(env!("CARGO_BIN_EXE_kkp"))
        .args(["plan", "-f"])
        .arg(topology)
        .arg("--state")
        .arg(state)
        .args(["--allow-destroy", &allow[0], "--allow-destroy", &allow[1]])
        .args(extra)
        .output()
        .expect("kkp runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}
