//! Apply at fleet scale against API servers: `cargo bench --bench apply [-- CLUSTERS [SEEDS]]`
//! (default 200 clusters on 4 seeds).
//!
//! Each seed is a test API server answering every request after 10 ms. The bench saves the
//! plan of the generated topology, times `kkp apply PLANFILE --kube` and reports, beside the
//! wall time:
//! - the critical-path bound: the requests on the longest dependency chain x latency;
//! - the throughput bound: all requests kkp made x latency / parallelism;
//! - kubectl: `kubectl apply --server-side -R` of the same objects (written by kkp's directory
//!   target) against fresh servers with the same latency, one seed after the other.
//!
//! Runs once with ECDSA keys (the key-algorithm annotation) and once with KKP's RSA-2048, whose
//! key generation is CPU work no request latency hides; its CPU bound is reported too.

use kkp::graph::Dag;
use kkp::plan::{Action, Options, create};
use kkp::render::Body;
use kkp::topology::generate::{Spec, generate};
use kkp_test_apiserver::{FaultConfig, ServerConfig, TestServer};
use std::process::Command;
use std::time::Duration;

mod support;

// The API servers run in this process and share the two cores with kkp; an allocator as fast
// as kkp's keeps their share small.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Latency of every request; `KKP_BENCH_LATENCY_MS` overrides it (0 shows kkp's own overhead).
/// Per-seed budget: twice an even share, so the global limit is what binds.
fn per_seed(seeds: usize) -> usize {
    (2 * parallelism()).div_ceil(seeds.max(1))
}

fn latency() -> Duration {
    Duration::from_millis(std::env::var("KKP_BENCH_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(10))
}
/// `--parallelism` (env `KKP_BENCH_PARALLELISM`, default 32): low enough that two cores shared
/// by kkp and the API servers are not the limit, since the bench measures the scheduler against
/// request latency.
fn parallelism() -> usize {
    std::env::var("KKP_BENCH_PARALLELISM").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let clusters = args.first().copied().unwrap_or(200);
    let seeds = args.get(1).copied().unwrap_or(4);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!(
        "{clusters} clusters on {seeds} seeds, {} ms per request, --parallelism {} --per-seed {}",
        latency().as_millis(),
        parallelism(),
        per_seed(seeds)
    );
    let mut kubectl_seconds = None;
    // KKP_BENCH_KEYS=ECDSA-P256 skips the slow RSA row.
    let keys = std::env::var("KKP_BENCH_KEYS").unwrap_or_else(|_| "ECDSA-P256,RSA-2048".into());
    for key in keys.split(',') {
        runtime.block_on(bench(clusters, seeds, key, &mut kubectl_seconds));
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

async fn bench(clusters: usize, seeds: usize, key: &str, kubectl_seconds: &mut Option<f64>) {
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
    let chain: u32 = dag.critical_path().into_iter().map(|i| requests_per_node(plan.actions[i].desired.as_ref(), has_dependants[i])).sum();
    let keys = plan.actions.iter().filter(|a| a.action == Action::Create && matches!(a.desired, Some(Body::Secret { .. }))).count();

    let servers_started = std::time::Instant::now();
    let fleet = servers(seeds).await;
    std::fs::write(dir.path().join("kubeconfig"), kubeconfig(&fleet)).unwrap();
    // The CI-gate flow: the plan is saved (not timed) and exactly that plan is applied.
    let mut save = Command::new(env!("CARGO_BIN_EXE_kkp"));
    save.current_dir(dir.path()).args(["plan", "-f", "topology.yaml", "-o", "plan.json"]);
    assert_eq!(run(save).await.exit, 0, "kkp plan failed");
    let mut kkp = Command::new(env!("CARGO_BIN_EXE_kkp"));
    kkp.current_dir(dir.path()).args(["apply", "plan.json", "--kube", "--kubeconfig", "kubeconfig"]);
    kkp.args(["--parallelism", &parallelism().to_string(), "--per-seed", &per_seed(seeds).to_string()]);
    let servers_before = support::own_cpu();
    let launched = servers_started.elapsed();
    let cost = run(kkp).await;
    let servers_cpu = support::own_cpu() - servers_before;
    assert_eq!(cost.exit, 0, "kkp apply failed");
    let wall = cost.wall;
    let requests: usize = fleet.iter().map(|s| s.requests().len()).sum();
    // Where the wall time went: before kkp's first request arrived, and after its last.
    let arrivals: Vec<Duration> = fleet.iter().flat_map(|s| s.requests()).map(|r| r.at).collect();
    let first = arrivals.iter().min().copied().unwrap_or_default().saturating_sub(launched);
    let last = arrivals.iter().max().copied().unwrap_or_default().saturating_sub(launched);
    // KKP_BENCH_ARRIVALS=FILE keeps every arrival (seconds after kkp started), to see where
    // the requests in flight fell below --parallelism.
    if let Ok(path) = std::env::var("KKP_BENCH_ARRIVALS") {
        let lines: Vec<String> = arrivals.iter().map(|a| format!("{:.6}", a.saturating_sub(launched).as_secs_f64())).collect();
        std::fs::write(path, lines.join("\n")).unwrap();
    }
    let objects: usize = fleet.iter().map(|s| s.objects().len()).sum();
    let critical = latency() * chain;
    let throughput = latency().mul_f64(requests as f64 / parallelism() as f64);
    let bound = critical.max(throughput);

    // kubectl, once, with the same objects written by the directory target
    // (KKP_BENCH_KUBECTL=0 skips it while iterating on kkp).
    let want_kubectl = std::env::var("KKP_BENCH_KUBECTL").map_or(true, |v| v != "0");
    if want_kubectl && kubectl_seconds.is_none() {
        let mut to_dir = Command::new(env!("CARGO_BIN_EXE_kkp"));
        to_dir.current_dir(dir.path()).args([
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
            kubectl.args(["apply", "--server-side", "-R", "-f"]).arg(dir.path().join("objects").join(format!("seed-{i:03}")));
            let cost = run(kubectl).await;
            assert_eq!(cost.exit, 0, "kubectl apply failed");
            total += cost.wall;
        }
        let applied: usize = targets.iter().map(|s| s.objects().len()).sum();
        assert_eq!(applied, objects, "kubectl applied the same objects");
        *kubectl_seconds = Some(total.as_secs_f64());
    }
    let (wall_s, bound_s) = (wall.as_secs_f64(), bound.as_secs_f64());
    println!("{key}: {objects} objects, {requests} requests, {keys} keys");
    println!(
        "  wall {wall_s:.2} s: first request after {:.2} s, last request at {:.2} s (requests span {:.2} s)",
        first.as_secs_f64(),
        last.as_secs_f64(),
        (last - first).as_secs_f64()
    );
    println!(
        "  kkp CPU {:.2} s, peak {} MiB; API servers CPU {:.2} s",
        cost.cpu.as_secs_f64(),
        cost.max_rss_kib / 1024,
        servers_cpu.as_secs_f64()
    );
    println!(
        "  critical-path bound {:.2} s ({chain} requests); throughput bound {:.2} s; wall/bound {:.2}x",
        critical.as_secs_f64(),
        throughput.as_secs_f64(),
        wall_s / bound_s
    );
    if let Some(kubectl) = kubectl_seconds {
        println!("  kubectl {kubectl:.2} s ({:.1}x slower)", *kubectl / wall_s);
    }
}
