//! Apply at fleet scale against API servers: `cargo bench --bench apply [-- CLUSTERS [SEEDS]]`
//! (default 200 clusters on 4 seeds).
//!
//! Each seed is a test API server answering every request 10 ms after it arrived. The bench
//! saves the plan of the generated topology, times `kkp apply PLANFILE --kube` against fresh
//! servers (median of three runs per row) and reports, beside the wall time:
//! - the critical-path bound: the requests on the longest dependency chain x latency;
//! - the throughput bound: all requests kkp made x latency / parallelism;
//! - kubectl: `kubectl apply --server-side -R` of the same objects (written by kkp's directory
//!   target) against fresh servers with the same latency, one seed after the other.
//!
//! Rows: ECDSA keys (the key-algorithm annotation) at `--parallelism` 16, 24 and 32, then KKP's
//! RSA-2048 once, whose key generation is CPU work no request latency hides. Environment:
//! `KKP_BENCH_KEYS`, `KKP_BENCH_PARALLELISM` (comma lists), `KKP_BENCH_RUNS`,
//! `KKP_BENCH_LATENCY_MS`, `KKP_BENCH_KUBECTL=0` (skip kubectl), `KKP_BENCH_ARRIVALS=FILE`.

use kkp::graph::Dag;
use kkp::plan::{Action, Options, create};
use kkp::render::Body;
use kkp::topology::generate::{Spec, generate};
use kkp_test_apiserver::{FaultConfig, ServerConfig, TestServer};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;

// The API servers run in this process and share the two cores with kkp; an allocator as fast
// as kkp's keeps their share small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Latency of every request; `KKP_BENCH_LATENCY_MS` overrides it (0 shows kkp's own overhead).
fn latency() -> Duration {
    Duration::from_millis(std::env::var("KKP_BENCH_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(10))
}

/// The `--parallelism` values to measure (env `KKP_BENCH_PARALLELISM`, a comma list; default
/// 16, 24 and 32). The API servers run in this process, so kkp and four servers share two
/// cores: the higher values show where that machine, not request latency, starts to limit.
fn parallelisms() -> Vec<usize> {
    let list = std::env::var("KKP_BENCH_PARALLELISM").unwrap_or_else(|_| "16,24,32".into());
    list.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

/// Per-seed budget: twice an even share, so the global limit is what binds.
fn per_seed(parallelism: usize, seeds: usize) -> usize {
    (2 * parallelism).div_ceil(seeds.max(1))
}

/// Runs per row (env `KKP_BENCH_RUNS`, default 3); the row reports the median wall time.
fn runs() -> usize {
    std::env::var("KKP_BENCH_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let clusters = args.first().copied().unwrap_or(200);
    let seeds = args.get(1).copied().unwrap_or(4);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("{clusters} clusters on {seeds} seeds, {} ms per request, median of {} runs per row", latency().as_millis(), runs());
    let mut kubectl_seconds = None;
    // KKP_BENCH_KEYS=ECDSA-P256 skips the slow RSA row.
    let keys = std::env::var("KKP_BENCH_KEYS").unwrap_or_else(|_| "ECDSA-P256,RSA-2048".into());
    let parallelisms = parallelisms();
    for key in keys.split(',') {
        // RSA key generation is CPU-bound whatever the parallelism: one row, once, at the
        // middle value, is enough to show it.
        let rows = if key == "RSA-2048" { vec![parallelisms[parallelisms.len() / 2]] } else { parallelisms.clone() };
        let runs = if key == "RSA-2048" { 1 } else { runs() };
        runtime.block_on(bench(clusters, seeds, key, &rows, runs, &mut kubectl_seconds));
    }
}

async fn servers(seeds: usize) -> Vec<TestServer> {
    let mut out = Vec::new();
    for i in 0..seeds {
        let server = TestServer::start(ServerConfig { seed: i as u64, ..Default::default() }).await.unwrap();
        server.faults().set(FaultConfig { latency: latency(), ..Default::default() });
        out.push(server);
    }
    out
}

fn kubeconfig(servers: &[TestServer]) -> String {
    let mut clusters = String::new();
    let mut contexts = String::new();
    for (i, s) in servers.iter().enumerate() {
        clusters.push_str(&format!("- name: seed-{i:03}\n  cluster:\n    server: {}\n", s.url()));
        contexts.push_str(&format!("- name: seed-{i:03}\n  context:\n    cluster: seed-{i:03}\n    user: anonymous\n"));
    }
    format!("apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n- name: anonymous\n  user: {{}}\ncontexts:\n{contexts}")
}

/// Runs a command off the servers' runtime threads.
async fn run(command: Command) -> support::Cost {
    tokio::task::spawn_blocking(move || support::run(command)).await.unwrap()
}

/// Requests each node of the plan makes on a clean seed, in sequence: an existence check and
/// the apply, plus a readiness read for a workload others wait on. Logical nodes make none.
fn requests_per_node(body: Option<&Body>, has_dependants: bool) -> u32 {
    match body {
        Some(Body::Logical { .. }) | None => 0,
        Some(Body::Secret { .. }) => 2,
        Some(Body::Object { manifest, .. }) => {
            let workload = matches!(manifest["kind"].as_str(), Some("StatefulSet" | "Deployment"));
            2 + u32::from(workload && has_dependants)
        }
    }
}

/// What one `kkp apply` against fresh servers cost.
struct Run {
    cost: support::Cost,
    servers_cpu: Duration,
    requests: usize,
    objects: usize,
    /// When kkp's first and last requests arrived, after it started.
    first: Duration,
    last: Duration,
}

/// Applies the saved plan in `dir` to fresh servers with `--parallelism parallelism`.
async fn apply_once(dir: &Path, seeds: usize, parallelism: usize) -> Run {
    for leftover in ["kkp.state.json", "kkp.state.json.journal", "kkp.state.json.lock"] {
        let _ = std::fs::remove_file(dir.join(leftover));
    }
    let _ = std::fs::remove_dir_all(dir.join("kkp.state.json.objects"));
    let servers_started = std::time::Instant::now();
    let fleet = servers(seeds).await;
    std::fs::write(dir.join("kubeconfig"), kubeconfig(&fleet)).unwrap();
    let mut kkp = Command::new(env!("CARGO_BIN_EXE_kkp"));
    kkp.current_dir(dir).args(["apply", "plan.json", "--kube", "--kubeconfig", "kubeconfig"]);
    kkp.args(["--parallelism", &parallelism.to_string(), "--per-seed", &per_seed(parallelism, seeds).to_string()]);
    let servers_before = support::own_cpu();
    let launched = servers_started.elapsed();
    let cost = run(kkp).await;
    let servers_cpu = support::own_cpu() - servers_before;
    assert_eq!(cost.exit, 0, "kkp apply failed");
    let arrivals: Vec<Duration> = fleet.iter().flat_map(|s| s.requests()).map(|r| r.at.saturating_sub(launched)).collect();
    // KKP_BENCH_ARRIVALS=FILE keeps every arrival (seconds after kkp started) of the last run,
    // to see where the requests in flight fell below --parallelism.
    if let Ok(path) = std::env::var("KKP_BENCH_ARRIVALS") {
        let lines: Vec<String> = arrivals.iter().map(|a| format!("{:.6}", a.as_secs_f64())).collect();
        std::fs::write(path, lines.join("\n")).unwrap();
    }
    Run {
        cost,
        servers_cpu,
        requests: arrivals.len(),
        objects: fleet.iter().map(|s| s.objects().len()).sum(),
        first: arrivals.iter().min().copied().unwrap_or_default(),
        last: arrivals.iter().max().copied().unwrap_or_default(),
    }
}

/// kubectl apply --server-side of the objects the directory target writes, seed after seed,
/// against fresh servers; returns its wall time.
async fn kubectl(dir: &Path, seeds: usize, objects: usize) -> f64 {
    let mut to_dir = Command::new(env!("CARGO_BIN_EXE_kkp"));
    to_dir.current_dir(dir).args([
        "apply",
        "-f",
        "topology.yaml",
        "--dir",
        "objects",
        "--auto-approve",
        "--state",
        "dir.state.json",
        "--parallelism",
        "8",
    ]);
    assert_eq!(run(to_dir).await.exit, 0, "writing the objects failed");
    let targets = servers(seeds).await;
    let mut total = Duration::ZERO;
    for (i, server) in targets.iter().enumerate() {
        let cache = tempfile::tempdir().unwrap();
        let mut kubectl = Command::new(kkp_test_apiserver::kubectl());
        kubectl.args(["--server", &server.url(), "--cache-dir"]).arg(cache.path()).env("KUBECONFIG", "/dev/null");
        kubectl.args(["apply", "--server-side", "-R", "-f"]).arg(dir.join("objects").join(format!("seed-{i:03}")));
        let cost = run(kubectl).await;
        assert_eq!(cost.exit, 0, "kubectl apply failed");
        total += cost.wall;
    }
    let applied: usize = targets.iter().map(|s| s.objects().len()).sum();
    assert_eq!(applied, objects, "kubectl applied the same objects");
    total.as_secs_f64()
}

async fn bench(clusters: usize, seeds: usize, key: &str, rows: &[usize], runs: usize, kubectl_seconds: &mut Option<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let text = generate(&Spec { seeds, clusters, ..Spec::default() }).replacen(
        "  namespace: kubermatic\n",
        &format!("  namespace: kubermatic\n  annotations:\n    kkp.k8c.io/key-algorithm: {key}\n"),
        1,
    );
    let topology_path = dir.path().join("topology.yaml");
    std::fs::write(&topology_path, &text).unwrap();

    // The critical-path bound, from the plan's own graph.
    let topology = kkp::topology::load(std::slice::from_ref(&topology_path)).unwrap();
    let plan = create(&topology, None, &|_| None, &Options::default()).unwrap();
    let dag = Dag::new(plan.actions.iter().map(|a| (&a.address, a.deps.as_slice()))).unwrap();
    let has_dependants: Vec<bool> = (0..dag.len()).map(|i| dag.dependants(i).next().is_some()).collect();
    let chain: u32 = dag
        .critical_path()
        .into_iter()
        .map(|i| requests_per_node(plan.actions[i].desired.as_ref().map(|d| d.body()).as_ref(), has_dependants[i]))
        .sum();
    let keys = plan
        .actions
        .iter()
        .filter(|a| a.action == Action::Create && a.desired.as_ref().is_some_and(|d| matches!(d.body(), Body::Secret { .. })))
        .count();
    let critical = latency() * chain;

    // The CI-gate flow: the plan is saved (not timed) and exactly that plan is applied.
    let mut save = Command::new(env!("CARGO_BIN_EXE_kkp"));
    save.current_dir(dir.path()).args(["plan", "-f", "topology.yaml", "-o", "plan.json"]);
    assert_eq!(run(save).await.exit, 0, "kkp plan failed");

    for &parallelism in rows {
        let mut measured = Vec::new();
        for _ in 0..runs {
            measured.push(apply_once(dir.path(), seeds, parallelism).await);
        }
        measured.sort_by_key(|r| r.cost.wall);
        let (fastest, slowest) = (measured[0].cost.wall.as_secs_f64(), measured[runs - 1].cost.wall.as_secs_f64());
        let median = &measured[runs / 2];
        let wall = median.cost.wall.as_secs_f64();
        let throughput = latency().mul_f64(median.requests as f64 / parallelism as f64);
        let bound = critical.max(throughput).as_secs_f64();

        // kubectl, once, with the same objects written by the directory target
        // (KKP_BENCH_KUBECTL=0 skips it while iterating on kkp).
        if std::env::var("KKP_BENCH_KUBECTL").map_or(true, |v| v != "0") && kubectl_seconds.is_none() {
            *kubectl_seconds = Some(kubectl(dir.path(), seeds, median.objects).await);
        }

        println!(
            "{key} --parallelism {parallelism} --per-seed {}: {} objects, {} requests, {keys} keys",
            per_seed(parallelism, seeds),
            median.objects,
            median.requests
        );
        println!(
            "  wall {wall:.2} s (runs {fastest:.2} to {slowest:.2} s): first request after {:.2} s, last at {:.2} s",
            median.first.as_secs_f64(),
            median.last.as_secs_f64()
        );
        println!(
            "  kkp CPU {:.2} s, peak {} MiB; API servers CPU {:.2} s",
            median.cost.cpu.as_secs_f64(),
            median.cost.max_rss_kib / 1024,
            median.servers_cpu.as_secs_f64()
        );
        println!(
            "  critical-path bound {:.2} s ({chain} requests); throughput bound {:.2} s; wall/bound {:.2}x",
            critical.as_secs_f64(),
            throughput.as_secs_f64(),
            wall / bound
        );
        // Key generation is CPU work: spread over every core it still takes this long.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_bound = median.cost.cpu.as_secs_f64() / cores as f64;
        println!("  CPU bound (kkp CPU / {cores} cores) {cpu_bound:.2} s; wall/CPU bound {:.2}x", wall / cpu_bound);
        if let Some(kubectl) = kubectl_seconds {
            // kubectl applies objects whose keys the directory target already generated.
            println!("  kubectl {kubectl:.2} s for the same objects (keys already made): {:.1}x kkp's wall time", *kubectl / wall);
        }
    }
}
