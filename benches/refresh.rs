//! Refresh at fleet scale: `cargo bench --bench refresh [-- CLUSTERS [SEEDS]]` (default 200
//! clusters on 4 seeds; the target is 10,000 on 20).
//!
//! Each seed is a test API server answering every request 1 ms after it arrived
//! (`KKP_BENCH_LATENCY_MS`). The fleet is applied once (ECDSA keys, not timed), then
//! `kkp plan --refresh` (reading the seeds where the state recorded them) is timed and the bench
//! reports wall time, peak memory, CPU and the requests it made, and the CPU the in-process
//! servers used meanwhile (they share the machine's cores with kkp). Nothing drifted, so the
//! requests are the reads alone: one metadata-only LIST per seed and kind (and page), which
//! shows every object still at the version kkp recorded when it applied it, so no object is
//! read whole and no applied body is loaded; a dry-run apply is only made for an object whose
//! fields differ, and the integration tests cover those. Every cluster gets cloud credentials
//! so the whole fleet applies and is recorded, as after a successful apply.
//!
//! Then the state is deleted and `kkp import -f topology.yaml --kube --auto-approve` (taking the
//! applied fleet over again, as after a lost state) is timed the same way, with its requests.
//!
//! For the case, `KKP_BENCH_NO_IMPORT=1 cargo bench --bench refresh -- 10000 20` (the
//! issue times import at 1,000 clusters: `-- 1000 20`); the fleet is applied through `kkp apply`
//! first, and the test API servers hold it in this process's memory (the bench prints how much
//! per object: about 4 KiB at that size).

use kkp::topology::generate::{Spec, generate};
use kkp_test_apiserver::{FaultConfig, ServerConfig, TestServer};
use std::process::Command;
use std::time::Duration;

mod support;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn latency() -> Duration {
    Duration::from_millis(std::env::var("KKP_BENCH_LATENCY_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1))
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let clusters = args.first().copied().unwrap_or(200);
    let seeds = args.get(1).copied().unwrap_or(4);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(bench(clusters, seeds));
}

/// `text` with a credentialsReference in every cluster (to one Secret the topology holds), so
/// the workloads that mount `cloud-credentials` apply and the whole fleet is recorded, as after
/// a successful apply (GCP's service account is `{"project_id":"bench"}`). Generated datacenters take the providers aws, gcp, digitalocean, hetzner
/// in turn (`dc-SSS-D`, D the provider's place).
fn with_credentials(text: &str) -> String {
    const PROVIDERS: [&str; 4] = ["aws", "gcp", "digitalocean", "hetzner"];
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        // GCP's cloud-config needs the datacenter's zones.
        if line == "          region: europe-west3" {
            out.push_str("          zoneSuffixes: [c]\n");
        }
        if let Some(dc) = line.strip_prefix("    dc: dc-") {
            let provider = PROVIDERS[dc.rsplit('-').next().and_then(|d| d.parse::<usize>().ok()).expect("a generated datacenter") % 4];
            out.push_str(&format!(
                "    {provider}:\n      credentialsReference:\n        name: bench-credentials\n        namespace: kubermatic\n"
            ));
        }
    }
    out.push_str("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: bench-credentials\n  namespace: kubermatic\ntype: Opaque\nstringData:\n  token: bench\n  accessKeyId: bench\n  secretAccessKey: bench\n  serviceAccount: eyJwcm9qZWN0X2lkIjoiYmVuY2gifQ==\n");
    out
}

async fn run(command: Command) -> support::Cost {
    tokio::task::spawn_blocking(move || support::run(command)).await.unwrap()
}

async fn bench(clusters: usize, seeds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let text = generate(&Spec { seeds, clusters, ..Spec::default() }).replacen(
        "  namespace: kubermatic\n",
        "  namespace: kubermatic\n  annotations:\n    kkp.k8c.io/key-algorithm: ECDSA-P256\n",
        1,
    );
    let text = with_credentials(&text);
    std::fs::write(dir.path().join("topology.yaml"), &text).unwrap();
    let mut fleet = Vec::new();
    for i in 0..seeds {
        fleet.push(TestServer::start(ServerConfig { seed: i as u64, ..Default::default() }).await.unwrap());
    }
    let mut clusters_yaml = String::new();
    let mut contexts = String::new();
    for (i, s) in fleet.iter().enumerate() {
        clusters_yaml.push_str(&format!("- name: seed-{i:03}\n  cluster:\n    server: {}\n", s.url()));
        contexts.push_str(&format!("- name: seed-{i:03}\n  context:\n    cluster: seed-{i:03}\n    user: anonymous\n"));
    }
    let kubeconfig =
        format!("apiVersion: v1\nkind: Config\nclusters:\n{clusters_yaml}users:\n- name: anonymous\n  user: {{}}\ncontexts:\n{contexts}");
    std::fs::write(dir.path().join("kubeconfig"), kubeconfig).unwrap();

    let mut apply = Command::new(env!("CARGO_BIN_EXE_kkp"));
    apply.current_dir(dir.path()).args(["apply", "-f", "topology.yaml", "--kube", "--kubeconfig", "kubeconfig", "--auto-approve"]);
    apply.args(["--parallelism", "32", "--per-seed", "16"]);
    let applied = run(apply).await;
    let objects: usize = fleet.iter().map(|s| s.objects().len()).sum();
    assert_eq!(applied.exit, 0, "kkp apply failed ({objects} objects applied)");
    println!(
        "{clusters} clusters on {seeds} seeds, {objects} objects applied in {:.1} s, {:.1} s CPU, {} MiB peak (exit {}; not timed below)",
        applied.wall.as_secs_f64(),
        applied.cpu.as_secs_f64(),
        applied.max_rss_kib / 1024,
        applied.exit
    );

    for server in &fleet {
        server.faults().set(FaultConfig { latency: latency(), ..Default::default() });
        server.clear_requests();
    }
    // `KKP_BENCH_SIZES=1` lists the first seed's objects by kind with their served size and
    // their managed fields' share: what the test servers' memory per object is made of.
    if std::env::var_os("KKP_BENCH_SIZES").is_some() {
        let mut by_kind: std::collections::BTreeMap<String, (usize, usize, usize, usize)> = Default::default();
        for o in fleet[0].objects() {
            let e = by_kind.entry(o["kind"].as_str().unwrap_or("?").to_string()).or_default();
            e.0 += 1;
            e.1 += o.to_string().len();
            e.2 += o["metadata"]["managedFields"].to_string().len();
            e.3 += o["metadata"]["managedFields"].as_array().map(|a| a.len()).unwrap_or(0);
        }
        for (k, (n, bytes, mf, managers)) in by_kind {
            println!(
                "  {k}: {n} objects, {} bytes each, managedFields {} bytes, {:.1} managers",
                bytes / n,
                mf / n,
                managers as f64 / n as f64
            );
        }
    }
    // What holding the fleet costs the test servers (this process: little else lives here).
    let rss = support::own_rss_kib();
    println!(
        "the test servers hold {objects} objects: this process's resident memory is {} MiB, {:.1} KiB per object",
        rss / 1024,
        rss as f64 / objects.max(1) as f64
    );
    // `KKP_BENCH_HOLD=1` keeps the seeds up for runs by hand: the bench prints its directory
    // (topology, kubeconfig, state) and waits until a file `done` appears there.
    if std::env::var_os("KKP_BENCH_HOLD").is_some() {
        println!("holding: {} (touch done there to go on)", dir.path().display());
        while !dir.path().join("done").exists() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    for parallelism in [10, 32] {
        // `KKP_BENCH_PERF=FILE` records a profile of the refresh (perf record -g), for `perf report`.
        let mut plan = match std::env::var("KKP_BENCH_PERF") {
            Ok(file) => {
                let mut perf = Command::new("perf");
                perf.args(["record", "-g", "-o", &format!("{file}.{parallelism}"), "--", env!("CARGO_BIN_EXE_kkp")]);
                perf
            }
            Err(_) => Command::new(env!("CARGO_BIN_EXE_kkp")),
        };
        plan.current_dir(dir.path()).args(["plan", "-f", "topology.yaml", "--refresh", "--kubeconfig", "kubeconfig"]);
        plan.args(["--parallelism", &parallelism.to_string()]);
        let servers_before = support::own_cpu();
        let cost = run(plan).await;
        let servers = support::own_cpu() - servers_before;
        assert_ne!(cost.exit, 1, "kkp plan --refresh failed or left clusters out");
        let requests: Vec<_> = fleet.iter().flat_map(|s| s.requests()).collect();
        let count = |verb: &str, dry: bool| requests.iter().filter(|r| r.method == verb && r.query.contains("dryRun") == dry).count();
        println!(
            "plan --refresh, parallelism {parallelism:>2}: {:>6.2} s wall, {:>6.2} s CPU, {:>5} MiB peak; {} requests ({} GET, {} of them metadata-only lists, {} dry-run PATCH), {} ms latency; the test servers used {:.2} s CPU",
            cost.wall.as_secs_f64(),
            cost.cpu.as_secs_f64(),
            cost.max_rss_kib / 1024,
            requests.len(),
            count("GET", false),
            requests.iter().filter(|r| r.accept.contains("as=PartialObjectMetadataList")).count(),
            count("PATCH", true),
            latency().as_millis(),
            servers.as_secs_f64()
        );
        for r in requests.iter().filter(|r| r.method != "GET").take(5) {
            println!("  not a GET: {} {}?{} ({})", r.method, r.path, r.query, r.status);
        }
        for server in &fleet {
            server.clear_requests();
        }
    }

    // `KKP_BENCH_NO_IMPORT=1` stops here (the issue times import at 1,000 clusters).
    if std::env::var_os("KKP_BENCH_NO_IMPORT").is_some() {
        return;
    }
    std::fs::remove_file(dir.path().join("kkp.state.json")).unwrap();
    let _ = std::fs::remove_dir_all(dir.path().join("kkp.state.json.objects"));
    let mut import = Command::new(env!("CARGO_BIN_EXE_kkp"));
    import.current_dir(dir.path()).args(["import", "-f", "topology.yaml", "--kube", "--kubeconfig", "kubeconfig", "--auto-approve"]);
    let cost = run(import).await;
    let requests: Vec<_> = fleet.iter().flat_map(|s| s.requests()).collect();
    let writes = requests.iter().filter(|r| r.method != "GET").count();
    for r in requests.iter().filter(|r| r.method != "GET").take(5) {
        println!("  not a GET: {} {}?{} ({})", r.method, r.path, r.query, r.status);
    }
    println!(
        "import (state deleted): exit {}, {:>6.2} s wall, {:>6.2} s CPU, {:>5} MiB peak; {} requests ({} not GET), {} ms latency",
        cost.exit,
        cost.wall.as_secs_f64(),
        cost.cpu.as_secs_f64(),
        cost.max_rss_kib / 1024,
        requests.len(),
        writes,
        latency().as_millis()
    );
}
