//! kkp against Kubernetes API servers (the project's test server), as a user runs it: two
//! seeds, kubectl reading what kkp applied, faults, a dead seed, and a remote state locked by a
//! Lease.

mod common;

use common::{Workspace, text};
use kkp_test_apiserver::{FaultConfig, ServerConfig, TestServer};
use std::process::Output;
use std::time::Duration;

/// Two seeds, each served by its own test server, and a kubeconfig naming them.
struct Fleet {
    us: TestServer,
    eu: TestServer,
    ws: Workspace,
    topology: String,
}

impl Fleet {
    /// seed-us is reached through the kubeconfig Secret beside its Seed (rewritten to point at
    /// its server); seed-eu through a kubeconfig context named like it.
    async fn start() -> Fleet {
        let us = TestServer::start(ServerConfig { seed: 1, ..Default::default() }).await.unwrap();
        let eu = TestServer::start(ServerConfig { seed: 2, ..Default::default() }).await.unwrap();
        let ws = Workspace::new();
        let dir = ws.copy_example("multi-seed");
        let seed_us = std::fs::read_to_string(dir.join("seed-us.yaml")).unwrap();
        let kubeconfig: String = us.kubeconfig_yaml("seed-us").lines().map(|l| format!("    {l}\n")).collect();
        let start = seed_us.find("  kubeconfig: |\n").unwrap();
        let end = seed_us.find("---").unwrap();
        let rewritten = format!("{}  kubeconfig: |\n{kubeconfig}{}", &seed_us[..start], &seed_us[end..]);
        std::fs::write(dir.join("seed-us.yaml"), rewritten).unwrap();
        std::fs::write(ws.path().join("kubeconfig"), eu.kubeconfig_yaml("seed-eu")).unwrap();
        Fleet { us, eu, topology: dir.to_string_lossy().into_owned(), ws }
    }

    /// Runs kkp without blocking the servers' runtime.
    async fn kkp(&self, args: &[&str]) -> Output {
        let mut command = self.ws.command(args);
        command.env("KUBECONFIG", self.ws.path().join("kubeconfig"));
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }

    async fn apply(&self, extra: &[&str]) -> Output {
        let mut args = vec!["apply", "-f", &self.topology, "--kube", "--auto-approve", "--parallelism", "16"];
        args.extend(extra);
        self.kkp(&args).await
    }

    async fn plan_exit(&self) -> Option<i32> {
        self.kkp(&["plan", "-f", &self.topology, "--detailed-exitcode"]).await.status.code()
    }
}

/// The objects kkp renders for `seed` from the multi-seed example: what a complete apply leaves
/// on its API server.
fn rendered_objects(seed: &str) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/multi-seed");
    let topology = kkp::topology::load(&[dir]).unwrap();
    kkp::render::topology(&topology).iter().filter(|n| n.seed == seed && n.body.object().is_some()).count()
}

fn count(server: &TestServer, kind: &str) -> usize {
    server.objects().iter().filter(|o| o["kind"] == kind).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_seed_applies_to_two_api_servers_and_kubectl_reads_it() {
    let fleet = Fleet::start().await;
    let out = fleet.apply(&[]).await;
    assert!(out.status.success(), "{}", text(&out));
    // seed-us hosts three clusters, seed-eu two; each seed also gets namespace kubermatic.
    assert_eq!(fleet.us.objects().len(), rendered_objects("seed-us"));
    assert_eq!(fleet.eu.objects().len(), rendered_objects("seed-eu"));
    assert_eq!(count(&fleet.eu, "StatefulSet"), 4);
    let sts = fleet.eu.object("apps/v1", "StatefulSet", Some("cluster-eu6tj3nbqx"), "etcd").unwrap();
    assert_eq!(sts["spec"]["replicas"], 5);
    assert_eq!(sts["metadata"]["managedFields"][0]["manager"], "kkp");
    // Writes were server-side applies as field manager kkp.
    assert!(
        fleet
            .us
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH")
            .all(|r| r.field_manager.as_deref() == Some("kkp") && r.content_type == "application/apply-patch+yaml")
    );

    // kubectl sees what kkp applied.
    let kubectl = kkp_kubectl(&fleet.eu, &["get", "statefulsets", "-A"]).await;
    assert!(kubectl.contains("cluster-eu6tj3nbqx") && kubectl.contains("etcd") && kubectl.contains("prometheus"), "{kubectl}");
    assert_eq!(fleet.plan_exit().await, Some(0));
}

/// kubectl against one server, with a fresh cache.
async fn kkp_kubectl(server: &TestServer, args: &[&str]) -> String {
    let cache = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(kkp_test_apiserver::kubectl());
    command.args(["--server", &server.url(), "--cache-dir"]).arg(cache.path()).args(args).env("KUBECONFIG", "/dev/null");
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    text(&out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_converges_through_server_errors_and_latency() {
    let fleet = Fleet::start().await;
    for server in [&fleet.us, &fleet.eu] {
        server.faults().set(FaultConfig { latency: Duration::from_millis(10), error_rate: 0.2, error_code: 500, ..Default::default() });
    }
    let out = fleet.apply(&[]).await;
    assert!(out.status.success(), "{}", text(&out));
    let failures = fleet.us.requests().iter().chain(fleet.eu.requests().iter()).filter(|r| r.status >= 500).count();
    assert!(failures > 20, "only {failures} injected errors were seen");
    assert_eq!(fleet.eu.objects().len(), rendered_objects("seed-eu"));
    for server in [&fleet.us, &fleet.eu] {
        server.faults().clear();
    }
    assert_eq!(fleet.plan_exit().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_requests_wait_as_long_as_retry_after_asks() {
    let fleet = Fleet::start().await;
    fleet.eu.faults().set(FaultConfig { throttle_rate: 0.1, retry_after_secs: 1, ..Default::default() });
    let out = fleet.apply(&[]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fleet.eu.objects().len(), rendered_objects("seed-eu"));
    let log = fleet.eu.requests();
    let throttled: Vec<_> = log.iter().filter(|r| r.status == 429).collect();
    assert!(!throttled.is_empty(), "no request was throttled");
    for first in throttled {
        let again = log
            .iter()
            .filter(|r| r.method == first.method && r.path == first.path && r.at > first.at)
            .min_by_key(|r| r.at)
            .unwrap_or_else(|| panic!("{} {} was not retried", first.method, first.path));
        let waited = again.at - first.at;
        assert!(waited >= Duration::from_secs(1), "{} {} was retried after {waited:?}", first.method, first.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_seed_fails_only_its_clusters_and_a_rerun_completes() {
    let fleet = Fleet::start().await;
    fleet.eu.faults().refuse_connections(true);
    let out = fleet.apply(&[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("seed seed-eu (context seed-eu)"), "{report}");
    // A whole seed's worth of skipped nodes is summed up per cluster.
    assert!(report.contains("of cluster eu6tj3nbqx (depending on failed"), "{report}");
    assert!(!report.contains("failed  cluster/us"), "{report}");
    assert_eq!(fleet.us.objects().len(), rendered_objects("seed-us"), "seed-us was applied completely");
    assert!(fleet.eu.objects().is_empty());

    fleet.eu.faults().refuse_connections(false);
    let rerun = fleet.apply(&[]).await;
    assert!(rerun.status.success(), "{}", text(&rerun));
    // Only seed-eu's objects remain (its logical nodes needed no API server and were recorded).
    let remaining = format!("Plan: {} to add", rendered_objects("seed-eu"));
    assert!(text(&rerun).contains(&remaining), "only seed-eu's nodes remain: {}", text(&rerun));
    assert_eq!(fleet.eu.objects().len(), rendered_objects("seed-eu"));
    assert_eq!(fleet.plan_exit().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_kubectl_created_are_reported_not_overwritten() {
    let fleet = Fleet::start().await;
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cluster-eu9rk5wgsv\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: prometheus\n  namespace: cluster-eu9rk5wgsv\ndata:\n  prometheus.yaml: hand-made\n";
    let file = fleet.ws.path().join("hand-made.yaml");
    std::fs::write(&file, namespace).unwrap();
    let created = kkp_kubectl(&fleet.eu, &["create", "-f", file.to_str().unwrap()]).await;
    assert!(created.contains("configmap/prometheus created"), "{created}");

    let out = fleet.apply(&[]).await;
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out);
    assert!(
        report
            .contains("Namespace cluster-eu9rk5wgsv already exists on seed seed-eu and was not created by kkp (managed by kubectl-create)"),
        "{report}"
    );
    let cm = fleet.eu.object("v1", "ConfigMap", Some("cluster-eu9rk5wgsv"), "prometheus").unwrap();
    assert_eq!(cm["data"]["prometheus.yaml"], "hand-made");

    let forced = fleet.apply(&["--force-conflicts"]).await;
    assert!(forced.status.success(), "{}", text(&forced));
    let cm = fleet.eu.object("v1", "ConfigMap", Some("cluster-eu9rk5wgsv"), "prometheus").unwrap();
    assert!(cm["data"]["prometheus.yaml"].as_str().unwrap().contains("scrape_configs"));
}

/// A third API server holding the state in namespace kkp-system, reached via KKP_KUBECONFIG.
async fn state_server(fleet: &Fleet) -> TestServer {
    let state = TestServer::start(ServerConfig { seed: 3, ..Default::default() }).await.unwrap();
    std::fs::write(fleet.ws.path().join("state-kubeconfig"), state.kubeconfig_yaml("state")).unwrap();
    let ns = fleet.ws.path().join("ns.yaml");
    std::fs::write(&ns, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kkp-system\n").unwrap();
    assert!(kkp_kubectl(&state, &["create", "-f", ns.to_str().unwrap()]).await.contains("created"));
    state
}

const REMOTE: &str = "k8s://state/kkp-system/fleet";

impl Fleet {
    fn remote_command(&self, args: &[&str]) -> std::process::Command {
        let mut command = self.ws.command(args);
        command.env("KUBECONFIG", self.ws.path().join("kubeconfig")).env("KKP_KUBECONFIG", self.ws.path().join("state-kubeconfig"));
        command
    }

    async fn remote(&self, args: &[&str]) -> Output {
        let mut command = self.remote_command(args);
        tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
    }
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn journal_batches(state: &TestServer) -> usize {
    state.objects().iter().filter(|o| o.pointer("/metadata/labels/kkp.k8c.io~1journal-of").is_some()).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_state_admits_one_apply_at_a_time() {
    let fleet = Fleet::start().await;
    let state = state_server(&fleet).await;
    let apply = ["apply", "-f", &fleet.topology, "--kube", "--auto-approve", "--parallelism", "2", "--state", REMOTE];
    let mut first = fleet.remote_command(&apply).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    wait_until("the first apply to hold the lease", || {
        state.object("coordination.k8s.io/v1", "Lease", Some("kkp-system"), "fleet-lock").is_some()
    })
    .await;
    let second = fleet.remote(&apply).await;
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let message = text(&second);
    assert!(message.contains("the state is locked"), "{message}");
    assert!(message.contains(&format!("(pid {})", first.id())), "{message}");
    let status = tokio::task::spawn_blocking(move || first.wait().unwrap()).await.unwrap();
    assert!(status.success());

    // The state lives in the cluster: gzip'd in a Secret, the lock released, no journal left.
    let secret = state.object("v1", "Secret", Some("kkp-system"), "fleet").expect("state Secret");
    assert!(secret["data"]["state.json.gz"].is_string());
    assert!(state.object("coordination.k8s.io/v1", "Lease", Some("kkp-system"), "fleet-lock").is_none());
    assert_eq!(journal_batches(&state), 0);
    let plan = fleet.remote(&["plan", "-f", &fleet.topology, "--detailed-exitcode", "--state", REMOTE]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holder_loses_its_lease_and_the_next_apply_finishes() {
    let fleet = Fleet::start().await;
    let state = state_server(&fleet).await;
    let apply =
        ["apply", "-f", &fleet.topology, "--kube", "--auto-approve", "--parallelism", "1", "--state", REMOTE, "--lock-duration", "2"];
    let mut holder = fleet.remote_command(&apply).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    wait_until("progress in the journal", || journal_batches(&state) >= 10).await;
    holder.kill().unwrap();
    let _ = holder.wait();

    let refused = fleet.remote(&apply).await;
    assert!(text(&refused).contains("the state is locked"), "the lease is still valid right after the kill: {}", text(&refused));
    tokio::time::sleep(Duration::from_millis(2_200)).await;
    let resumed = fleet.remote(&apply).await;
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("Recovered"), "{}", text(&resumed));
    let plan = fleet.remote(&["plan", "-f", &fleet.topology, "--detailed-exitcode", "--state", REMOTE]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert_eq!(fleet.us.objects().len() + fleet.eu.objects().len(), rendered_objects("seed-us") + rendered_objects("seed-eu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_remote_state_is_split_across_secrets_and_read_back() {
    use kkp::address::Address;
    use kkp::state::backend::Backend;
    use kkp::state::kube::KubeBackend;
    use kkp::state::{NodeState, State};

    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let ws = Workspace::new();
    let ns = ws.path().join("ns.yaml");
    std::fs::write(&ns, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kkp-system\n").unwrap();
    assert!(kkp_kubectl(&server, &["create", "-f", ns.to_str().unwrap()]).await.contains("created"));
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml("state")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let backend = KubeBackend::new(
        client,
        "k8s://state/kkp-system/big".into(),
        "kkp-system",
        "big",
        Duration::from_secs(30),
        ws.path().join("objects"),
    );

    // Digests do not compress: 40,000 nodes make well over one Secret's worth of gzip.
    let mut state = State::new("lineage".into());
    state.serial = 3;
    for i in 0..40_000u32 {
        let digest = kkp::object::digest(&i);
        state.nodes.insert(
            Address::cluster_object(&format!("c{i}"), kkp::object::Kind::Secret, "ca"),
            NodeState {
                seed: "s".into(),
                role: kkp::role::Role::CertificateAuthority,
                object: Some(kkp::object::ObjectRef::namespaced(kkp::object::Kind::Secret, &format!("cluster-c{i}"), "ca")),
                digest,
                certificate: None,
            },
        );
    }
    let lock = backend.lock("test").await.unwrap();
    backend.persist(&state, lock.as_ref()).await.unwrap();
    let parts =
        |server: &TestServer| server.objects().iter().filter(|o| o.pointer("/metadata/labels/kkp.k8c.io~1state-part-of").is_some()).count();
    assert!(parts(&server) >= 1, "the state was split");
    assert_eq!(backend.load().await.unwrap().state.unwrap(), state);

    // A smaller state drops the parts it no longer needs.
    state.nodes.retain(|a, _| a.as_str() < "cluster/c1");
    state.serial = 4;
    backend.persist(&state, lock.as_ref()).await.unwrap();
    assert_eq!(parts(&server), 0);
    assert_eq!(backend.load().await.unwrap().state.unwrap(), state);

    // A writer that read an older version is refused instead of overwriting.
    let stale = KubeBackend::new(
        kube::Client::try_from(
            kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml("state")).unwrap(),
                &Default::default(),
            )
            .await
            .unwrap(),
        )
        .unwrap(),
        "k8s://state/kkp-system/big".into(),
        "kkp-system",
        "big",
        Duration::from_secs(30),
        ws.path().join("objects2"),
    );
    stale.load().await.unwrap();
    state.serial = 5;
    backend.persist(&state, lock.as_ref()).await.unwrap();
    let err = stale.persist(&state, lock.as_ref()).await.unwrap_err().to_string();
    assert!(err.contains("changed by someone else"), "{err}");
    lock.release().await;
}
