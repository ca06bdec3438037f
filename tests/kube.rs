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
    // Only one node applies each object, so the next PATCH of a path is the retry; several
    // nodes may GET the same Secret (a CA, `tokens`), so a later GET need not be one.
    let throttled: Vec<_> = log.iter().filter(|r| r.status == 429 && r.method == "PATCH").collect();
    assert!(!throttled.is_empty(), "no apply was throttled");
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

    fleet.eu.clear_requests();
    let out = fleet.apply(&[]).await;
    // Whether an object to create exists, and who made it, is read from its metadata alone.
    let checked: Vec<_> =
        fleet.eu.requests().into_iter().filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces/cluster-eu9rk5wgsv").collect();
    assert!(!checked.is_empty() && checked.iter().all(|r| r.accept.contains("as=PartialObjectMetadata")), "{checked:?}");
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
                version: None,
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
    server.clear_requests();
    backend.persist(&state, lock.as_ref()).await.unwrap();
    assert_eq!(parts(&server), 0);
    // Stale parts are found by name: kube-rs's metadata-only list, which the server answers.
    let listed: Vec<_> = server.requests().into_iter().filter(|r| r.method == "GET" && r.query.contains("state-part-of")).collect();
    assert!(!listed.is_empty() && listed.iter().all(|r| r.accept.contains("as=PartialObjectMetadataList")), "{listed:?}");
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

/// One seed `europe` (reached through the kubeconfig context of that name) with an OpenStack
/// cluster whose credentials Secret is not among the documents: it must come from the seed.
const OPENSTACK_ON_SEED: &str = "apiVersion: kubermatic.k8c.io/v1\nkind: KubermaticConfiguration\nmetadata:\n  name: kubermatic\n  namespace: kubermatic\nspec:\n  ingress:\n    domain: kkp.example.com\n---\napiVersion: kubermatic.k8c.io/v1\nkind: Seed\nmetadata:\n  name: europe\n  namespace: kubermatic\nspec:\n  datacenters:\n    os-fra:\n      spec:\n        openstack:\n          authURL: https://keystone.example.com:5000/v3\n          region: RegionOne\n---\napiVersion: kubermatic.k8c.io/v1\nkind: Cluster\nmetadata:\n  name: os7k2m9xqp\nspec:\n  version: 1.34.2\n  cloud:\n    dc: os-fra\n    openstack:\n      credentialsReference:\n        name: credential-openstack-os7k2m9xqp\n        namespace: kubermatic\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_config_is_made_from_the_credentials_secret_on_the_seed() {
    let server = TestServer::start(ServerConfig { seed: 3, ..Default::default() }).await.unwrap();
    let ws = Workspace::new();
    std::fs::write(ws.path().join("kubeconfig"), server.kubeconfig_yaml("europe")).unwrap();
    std::fs::write(ws.path().join("kkp.yaml"), OPENSTACK_ON_SEED).unwrap();
    let run = |args: &'static [&'static str]| {
        let mut command = ws.command(args);
        command.env("KUBECONFIG", ws.path().join("kubeconfig"));
        async move { tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap() }
    };
    let apply: &[&str] = &["apply", "-f", "kkp.yaml", "--kube", "--auto-approve"];

    // Without the Secret, what is made from it fails (saying how to provide it), the rest lands.
    let first = run(apply).await;
    assert_eq!(first.status.code(), Some(1), "{}", text(&first));
    let report = text(&first);
    assert!(report.contains("failed  cluster/os7k2m9xqp/secret/cloud-config"), "{report}");
    assert!(report.contains("kubermatic/credential-openstack-os7k2m9xqp") && report.contains("fix: create it on the seed"), "{report}");
    assert!(server.object("v1", "Secret", Some("cluster-os7k2m9xqp"), "cloud-config").is_none());

    // The operator creates it on the seed; the next apply makes the config from it.
    // (kubectl create secret speaks protobuf, which the test server does not; a file does the same.)
    let file = ws.path().join("credentials.yaml");
    let credentials = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: credential-openstack-os7k2m9xqp\n  namespace: kubermatic\nstringData:\n  domain: Default\n  username: seed-user\n  password: seed-only-password\n  project: p\n  projectID: pid\n";
    std::fs::write(&file, credentials).unwrap();
    let created = kkp_kubectl(&server, &["create", "-f", file.to_str().unwrap()]).await;
    assert!(created.contains("created"), "{created}");
    let second = run(apply).await;
    assert!(second.status.success(), "{}", text(&second));
    let secret = server.object("v1", "Secret", Some("cluster-os7k2m9xqp"), "cloud-config").expect("cloud-config applied");
    use base64::Engine;
    let config = base64::engine::general_purpose::STANDARD.decode(secret["data"]["config"].as_str().unwrap()).unwrap();
    let config = String::from_utf8(config).unwrap();
    assert!(config.contains("username = \"seed-user\"\npassword = \"seed-only-password\"\n"), "{config}");
    let state = std::fs::read_to_string(ws.path().join("kkp.state.json")).unwrap();
    assert!(!state.contains("seed-only-password") && !text(&second).contains("seed-only-password"));
    let plan = run(&["plan", "-f", "kkp.yaml", "--detailed-exitcode"]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
}

/// The first cluster of seed-eu in the multi-seed example.
const EU_CLUSTER: &str = "eu6tj3nbqx";

impl Fleet {
    async fn plan_refresh(&self, extra: &[&str]) -> Output {
        let mut args = vec!["plan", "-f", &self.topology, "--refresh", "--detailed-exitcode"];
        args.extend(extra);
        self.kkp(&args).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_finds_kubectl_set_image_names_the_manager_and_apply_restores_it() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    let ns = format!("cluster-{EU_CLUSTER}");
    let before = fleet.eu.object("apps/v1", "Deployment", Some(&ns), "apiserver").unwrap();
    let image =
        before["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "apiserver").unwrap()["image"]
            .clone();
    let set = kkp_kubectl(&fleet.eu, &["-n", &ns, "set", "image", "deployment/apiserver", "apiserver=registry.example/evil:1"]).await;
    assert!(set.contains("image updated"), "{set}");

    // Without --refresh kkp does not read the seed.
    assert_eq!(fleet.plan_exit().await, Some(0));
    fleet.eu.clear_requests();
    let plan = fleet.plan_refresh(&[]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let out = text(&plan);
    assert!(out.starts_with("Changed outside kkp") || out.contains("\nChanged outside kkp"), "{out}");
    assert!(out.contains(&format!("cluster/{EU_CLUSTER}/deployment/apiserver")), "{out}");
    assert!(out.contains("changed by kubectl-set"), "the other field manager is named: {out}");
    assert!(out.contains("registry.example/evil:1"), "{out}");
    // Listing is one request per seed and kind, not a GET per object: only the changed
    // Deployment is read whole.
    let log = fleet.eu.requests();
    assert_eq!(log.iter().filter(|r| r.method == "GET" && r.path.contains("/deployments/")).count(), 1, "no GET per object");
    assert!(log.iter().filter(|r| r.method == "GET").count() <= 20, "{} reads", log.len());
    assert!(log.iter().any(|r| r.method == "PATCH" && r.query.contains("dryRun=All")), "the change was confirmed by a dry-run");
    assert!(log.iter().filter(|r| r.method == "PATCH").all(|r| r.query.contains("dryRun=All")), "a plan writes nothing");

    let applied = fleet.apply(&["--refresh"]).await;
    assert!(applied.status.success(), "{}", text(&applied));
    let after = fleet.eu.object("apps/v1", "Deployment", Some(&ns), "apiserver").unwrap();
    let container = after["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().find(|c| c["name"] == "apiserver").unwrap();
    assert_eq!(container["image"], image);
    assert_eq!(fleet.plan_refresh(&[]).await.status.code(), Some(0));
}

/// Reads of whole objects (GETs and LISTs not asking for metadata only) of `plural` in `log`.
fn full_reads(log: &[kkp_test_apiserver::RequestRecord], plural: &str) -> usize {
    log.iter()
        .filter(|r| r.method == "GET" && r.path.contains(&format!("/{plural}")) && !r.accept.contains("as=PartialObjectMetadata"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reads_only_objects_whose_version_changed_and_still_finds_a_label_changed_without_a_new_generation() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    let ns = format!("cluster-{EU_CLUSTER}");
    let state = std::fs::read_to_string(fleet.ws.path().join("kkp.state.json")).unwrap();
    assert!(state.contains("\"resourceVersion\""), "apply records each object's version");

    // A controller writing a Deployment's status changes its resourceVersion, not kkp's fields.
    let status = kkp_kubectl(
        &fleet.eu,
        &["-n", &ns, "patch", "deployment", "apiserver", "--subresource=status", "--type=merge", "-p", r#"{"status":{"replicas":7}}"#],
    )
    .await;
    assert!(status.contains("patched"), "{status}");
    fleet.eu.clear_requests();
    let plan = fleet.plan_refresh(&[]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let log = fleet.eu.requests();
    assert!(log.iter().any(|r| r.accept.contains("as=PartialObjectMetadataList")), "metadata-only lists");
    for plural in ["deployments", "secrets", "configmaps", "services"] {
        assert_eq!(full_reads(&log, plural), 0, "no {plural} is read whole when none changed");
    }

    // Someone relabels the Deployment: the generation stays, kkp's field has another owner.
    let before = fleet.eu.object("apps/v1", "Deployment", Some(&ns), "apiserver").unwrap();
    let label = before["metadata"]["labels"].as_object().unwrap().keys().find(|k| !k.contains("managed-by")).unwrap().clone();
    let relabelled =
        kkp_kubectl(&fleet.eu, &["-n", &ns, "label", "--overwrite", "deployment", "apiserver", &format!("{label}=other")]).await;
    assert!(relabelled.contains("labeled"), "{relabelled}");
    let after = fleet.eu.object("apps/v1", "Deployment", Some(&ns), "apiserver").unwrap();
    assert_eq!(after["metadata"]["generation"], before["metadata"]["generation"]);
    fleet.eu.clear_requests();
    let plan = fleet.plan_refresh(&[]).await;
    let out = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{out}");
    assert!(out.contains(&format!("cluster/{EU_CLUSTER}/deployment/apiserver")) && out.contains("changed by kubectl-label"), "{out}");
    assert_eq!(full_reads(&fleet.eu.requests(), "deployments"), 1, "only the changed Deployment is read whole");
    assert!(fleet.apply(&["--refresh"]).await.status.success());
    let restored = fleet.eu.object("apps/v1", "Deployment", Some(&ns), "apiserver").unwrap();
    assert_eq!(restored["metadata"]["labels"][&label], before["metadata"]["labels"][&label]);
    assert_eq!(fleet.plan_refresh(&[]).await.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_without_recorded_versions_is_refreshed_by_reading_every_object() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    // A state written before kkp recorded versions.
    let path = fleet.ws.path().join("kkp.state.json");
    let mut state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for node in state["nodes"].as_object_mut().unwrap().values_mut() {
        node.as_object_mut().unwrap().remove("version");
    }
    std::fs::write(&path, state.to_string()).unwrap();
    let ns = format!("cluster-{EU_CLUSTER}");
    let set = kkp_kubectl(&fleet.eu, &["-n", &ns, "set", "image", "deployment/apiserver", "apiserver=registry.example/evil:1"]).await;
    assert!(set.contains("image updated"), "{set}");

    fleet.eu.clear_requests();
    let plan = fleet.plan_refresh(&[]).await;
    let out = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{out}");
    assert!(out.contains("registry.example/evil:1") && out.contains("changed by kubectl-set"), "{out}");
    let log = fleet.eu.requests();
    assert!(!log.iter().any(|r| r.accept.contains("as=PartialObjectMetadataList")), "nothing to tell versions by");
    assert!(full_reads(&log, "secrets") > 0 && full_reads(&log, "configmaps") > 0, "every kind is read whole");
    assert!(fleet.apply(&["--refresh"]).await.status.success());
    assert_eq!(fleet.plan_refresh(&[]).await.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_deleted_outside_kkp_are_recreated_and_a_deleted_ca_waits_for_acceptance() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    let ns = format!("cluster-{EU_CLUSTER}");
    let old_leaf = fleet.eu.object("v1", "Secret", Some(&ns), "apiserver-tls").unwrap();
    assert!(kkp_kubectl(&fleet.eu, &["-n", &ns, "delete", "configmap", "audit-config"]).await.contains("deleted"));
    assert!(kkp_kubectl(&fleet.eu, &["-n", &ns, "delete", "secret", "ca"]).await.contains("deleted"));

    let plan = fleet.plan_refresh(&[]).await;
    let out = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "a blocked cluster is not a success: {out}");
    assert!(
        out.contains(&format!("cluster/{EU_CLUSTER}/secret/ca")) && out.contains("deleted (blocks its cluster until accepted)"),
        "{out}"
    );
    assert!(out.contains(&format!("--accept cluster/{EU_CLUSTER}/secret/ca")), "the fix is named: {out}");
    assert!(!out.contains(&format!("+ cluster/{EU_CLUSTER}/secret/ca")), "the CA is not re-issued silently: {out}");

    // An apply does nothing to the blocked cluster and says so.
    let refused = fleet.apply(&["--refresh"]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(fleet.eu.object("v1", "Secret", Some(&ns), "ca").is_none());

    let accepted = fleet.apply(&["--refresh", "--accept", &format!("cluster/{EU_CLUSTER}/secret/ca")]).await;
    assert!(accepted.status.success(), "{}", text(&accepted));
    assert!(text(&accepted).contains("deleted outside kkp"), "{}", text(&accepted));
    assert!(fleet.eu.object("v1", "ConfigMap", Some(&ns), "audit-config").is_some());
    assert!(fleet.eu.object("v1", "Secret", Some(&ns), "ca").is_some());
    let new_leaf = fleet.eu.object("v1", "Secret", Some(&ns), "apiserver-tls").unwrap();
    assert_ne!(new_leaf["data"], old_leaf["data"], "what the old CA signed is re-issued");
    assert_eq!(fleet.plan_refresh(&[]).await.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_replaced_outside_kkp_blocks_and_once_accepted_is_kept_byte_for_byte() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    let ns = format!("cluster-{EU_CLUSTER}");
    // Someone puts another cluster's CA in place (a valid CA with kkp's common name).
    let other_ns = "cluster-eu9rk5wgsv";
    let mut other = fleet.eu.object("v1", "Secret", Some(other_ns), "ca").unwrap();
    let manifest = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ca", "namespace": ns, "labels": other["metadata"]["labels"].take()}, "type": "Opaque", "data": other["data"].take()});
    let file = fleet.ws.path().join("ca.json");
    std::fs::write(&file, manifest.to_string()).unwrap();
    let replaced = kkp_kubectl(
        &fleet.eu,
        &["apply", "--server-side", "--force-conflicts", "--field-manager", "rotator", "-f", file.to_str().unwrap()],
    )
    .await;
    assert!(replaced.contains("serverside-applied"), "{replaced}");
    let ca_before = fleet.eu.object("v1", "Secret", Some(&ns), "ca").unwrap()["data"].clone();

    let plan = fleet.plan_refresh(&[]).await;
    let out = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{out}");
    assert!(out.contains("certificate replaced") && out.contains("blocks its cluster until accepted"), "{out}");

    let accepted = fleet.apply(&["--refresh", "--accept", &format!("cluster/{EU_CLUSTER}/secret/ca")]).await;
    assert!(accepted.status.success(), "{}", text(&accepted));
    assert_eq!(fleet.eu.object("v1", "Secret", Some(&ns), "ca").unwrap()["data"], ca_before, "the accepted CA is kept as it is");
    assert_eq!(fleet.plan_refresh(&[]).await.status.code(), Some(0), "{}", text(&fleet.plan_refresh(&[]).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_cannot_be_read_fails_its_clusters_plan() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    fleet.eu.faults().refuse_connections(true);
    let plan = fleet.plan_refresh(&[]).await;
    let out = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("cluster {EU_CLUSTER} is not planned: its seed seed-eu could not be read")), "{out}");
    assert!(!out.contains("cluster us"), "seed-us was read: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_to_api_servers_after_one_to_a_directory_is_refused() {
    let fleet = Fleet::start().await;
    let dir = fleet.kkp(&["apply", "-f", &fleet.topology, "--auto-approve"]).await;
    assert!(dir.status.success(), "{}", text(&dir));
    let kube = fleet.apply(&[]).await;
    assert_eq!(kube.status.code(), Some(1));
    let out = text(&kube);
    assert!(out.contains("the state was applied to directory") && out.contains("kkp-seeds"), "{out}");
    assert!(out.contains("fix: run with the target the state was applied to (--dir"), "{out}");
    assert!(fleet.us.objects().is_empty() && fleet.eu.objects().is_empty(), "nothing was written");
    // And the other way round: a plan naming the directory against a kube-applied state.
    let ws2 = Fleet::start().await;
    assert!(ws2.apply(&[]).await.status.success());
    let plan = ws2.kkp(&["plan", "-f", &ws2.topology, "--dir", "kkp-seeds"]).await;
    assert_eq!(plan.status.code(), Some(1));
    assert!(text(&plan).contains("the state was applied to API server http://127.0.0.1:"), "{}", text(&plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refresh_only_records_the_live_truth_without_writing_to_seeds() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    let ns = format!("cluster-{EU_CLUSTER}");
    assert!(kkp_kubectl(&fleet.eu, &["-n", &ns, "delete", "configmap", "audit-config"]).await.contains("deleted"));
    fleet.eu.clear_requests();
    let only = fleet.kkp(&["apply", "-f", &fleet.topology, "--kube", "--refresh-only", "--auto-approve"]).await;
    assert!(only.status.success(), "{}", text(&only));
    assert!(text(&only).contains("Recorded 1 nodes"), "{}", text(&only));
    assert!(fleet.eu.requests().iter().all(|r| r.method == "GET"), "nothing was written to the seed");
    // The state now says the ConfigMap is missing: a plain plan creates it.
    let plan = fleet.kkp(&["plan", "-f", &fleet.topology, "--detailed-exitcode"]).await;
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(text(&plan).contains(&format!("+ cluster/{EU_CLUSTER}/configmap/audit-config")), "{}", text(&plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_after_the_state_was_lost_adopts_everything_and_the_next_plan_is_empty() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    let before = fleet.us.objects().len() + fleet.eu.objects().len();
    std::fs::remove_file(fleet.ws.path().join("kkp.state.json")).unwrap();
    let _ = std::fs::remove_dir_all(fleet.ws.path().join("kkp.state.json.objects"));
    // Someone else's Secret on the seed: import has no business reading its key.
    let other = fleet.ws.path().join("other.json");
    std::fs::write(
        &other,
        r#"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other-app"}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "other-app"}, "stringData": {"password": "other-apps-secret"}}]}"#,
    )
    .unwrap();
    let created = kkp_kubectl(&fleet.eu, &["create", "--validate=false", "-f", other.to_str().unwrap()]).await;
    assert!(created.contains("secret/db created"), "{created}");
    let before = before + 2;
    fleet.eu.clear_requests();

    let import = fleet.kkp(&["import", "-f", &fleet.topology, "--kube", "--auto-approve"]).await;
    let report = text(&import);
    assert!(import.status.success(), "{report}");
    assert!(report.contains(&format!("cluster {EU_CLUSTER}: adopted, no changes")), "{report}");
    assert!(!report.contains("changes on the next apply") && !report.contains(": not adopted"), "{report}");
    let log = fleet.eu.requests();
    assert!(log.iter().all(|r| r.method == "GET"), "import reads only");
    // Secrets: one metadata-only LIST of the seed, then bodies only of the clusters' namespaces.
    let secret_lists: Vec<_> = log.iter().filter(|r| r.path.ends_with("/secrets")).collect();
    let metadata_only = |r: &&kkp_test_apiserver::RequestRecord| r.accept.contains("as=PartialObjectMetadataList");
    assert_eq!(secret_lists.iter().filter(|r| r.path == "/api/v1/secrets").count(), 1);
    assert!(secret_lists.iter().filter(|r| r.path == "/api/v1/secrets").all(metadata_only));
    let bodies: Vec<&str> = secret_lists.iter().filter(|r| !metadata_only(r)).map(|r| r.path.as_str()).collect();
    assert!(!bodies.is_empty() && bodies.iter().all(|p| p.starts_with("/api/v1/namespaces/cluster-")), "{bodies:?}");
    assert_eq!(fleet.us.objects().len() + fleet.eu.objects().len(), before);

    let plan = fleet.plan_refresh(&[]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains("No changes."), "{}", text(&plan));
}

/// KKP's own rendering of cluster de-test-01 (testdata/kkp-fixtures), as manifests.
fn kkp_golden_objects() -> Vec<serde_json::Value> {
    let dir = common::repo().join("testdata/kkp-fixtures/golden");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let prefix = name.split('-').next().unwrap();
        let Some(kind) = kkp::object::kind::KINDS.iter().find(|k| k.name.to_lowercase() == prefix) else { continue };
        let mut object: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        object["apiVersion"] = kind.api_version.into();
        object["kind"] = kind.name.into();
        if let Some(meta) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("resourceVersion");
            meta.remove("creationTimestamp");
        }
        out.push(object);
    }
    out
}

/// A seed holding what KKP made for cluster de-test-01 (testdata/kkp-fixtures): its objects, a
/// CA, and its Cluster object (`pause` as given). Returns the server, a workspace whose
/// kubeconfig reaches it, the topology path and the CA as issued.
async fn kkp_made_seed(paused: bool) -> (TestServer, Workspace, String, kkp::pki::Issued) {
    use kkp_test_apiserver::Resource;
    let server = TestServer::start(ServerConfig {
        extra_resources: vec![Resource::new("kubermatic.k8c.io", "v1", "clusters", "Cluster", false, &[])],
        ..Default::default()
    })
    .await
    .unwrap();
    let ws = Workspace::new();
    std::fs::write(ws.path().join("kubeconfig"), server.kubeconfig_yaml("test-seed")).unwrap();
    let topology = common::repo().join("testdata/kkp-fixtures/topology.yaml").to_str().unwrap().to_string();
    let ca =
        kkp::pki::issue(&kkp::pki::CertRequest::ca("root-ca.de-test-01", kkp::pki::KeyAlgorithm::Rsa2048), None, 1_790_000_000).unwrap();
    let encoded: serde_json::Map<String, serde_json::Value> =
        ca.data.iter().map(|(k, v)| (k.clone(), base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v).into())).collect();
    let mut documents = vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cluster-de-test-01"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ca", "namespace": "cluster-de-test-01"}, "type": "Opaque", "data": encoded}),
        serde_json::json!({"apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster", "metadata": {"name": "de-test-01"}, "spec": {"pause": paused}}),
    ];
    documents.extend(kkp_golden_objects());
    let file = ws.path().join("kkp-made.json");
    std::fs::write(&file, serde_json::json!({"apiVersion": "v1", "kind": "List", "items": documents}).to_string()).unwrap();
    let created = kkp_kubectl(&server, &["create", "--validate=false", "-f", file.to_str().unwrap()]).await;
    assert!(created.contains("statefulset.apps/etcd created"), "{created}");
    (server, ws, topology, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kkp_made_objects_are_refused_with_reasons_and_their_ca_is_never_reissued() {
    let (server, ws, topology, ca) = kkp_made_seed(false).await;
    let topology = topology.as_str();
    let ca_before = server.object("v1", "Secret", Some("cluster-de-test-01"), "ca").unwrap();

    let import = |extra: &[&str]| {
        let mut args = vec!["import", "-f", topology, "--kube", "--auto-approve"];
        args.extend(extra);
        let mut command = ws.command(&args);
        command.env("KUBECONFIG", ws.path().join("kubeconfig"));
        async move { tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap() }
    };
    let managed = import(&[]).await;
    assert_eq!(managed.status.code(), Some(1), "{}", text(&managed));
    let report = text(&managed);
    assert!(report.contains("cluster de-test-01: not adopted"), "{report}");
    assert!(report.contains("KKP's controllers still manage it") && report.contains("kubectl patch cluster de-test-01"), "{report}");

    let paused = ws.path().join("paused.json");
    std::fs::write(
        &paused,
        r#"{"apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster", "metadata": {"name": "de-test-01"}, "spec": {"pause": true}}"#,
    )
    .unwrap();
    let replaced = kkp_kubectl(&server, &["replace", "--validate=false", "-f", paused.to_str().unwrap()]).await;
    assert!(replaced.contains("replaced"), "{replaced}");
    let refused = import(&[]).await;
    let report = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{report}");
    assert!(report.contains("cluster de-test-01: not adopted"), "{report}");
    assert!(report.contains("cluster/de-test-01/statefulset/etcd"), "etcd would change: {report}");
    assert!(!report.contains("KKP's controllers still manage it"), "{report}");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("kkp.state.json")).unwrap()).unwrap();
    assert!(
        state["nodes"].as_object().unwrap().keys().all(|a| !a.starts_with("cluster/de-test-01")),
        "nothing of a refused cluster is recorded"
    );

    // Accepted: adopted with its changes listed; the CA is taken as it is.
    let accepted = import(&["--accept", "cluster/de-test-01"]).await;
    let report = text(&accepted);
    assert!(accepted.status.success(), "{report}");
    assert!(report.contains("cluster de-test-01: adopted,") && report.contains("changes on the next apply"), "{report}");
    assert!(!report.contains("re-issued cluster/de-test-01/secret/ca"), "{report}");
    assert_eq!(
        server.object("v1", "Secret", Some("cluster-de-test-01"), "ca").unwrap()["data"],
        ca_before["data"],
        "the CA is byte-identical"
    );
    // The only write: kkp's ownership label, applied alone by manager kkp.
    let etcd = server.object("apps/v1", "StatefulSet", Some("cluster-de-test-01"), "etcd").unwrap();
    assert_eq!(etcd["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kkp", "{report}");
    let golden_etcd = kkp_golden_objects().into_iter().find(|o| o["kind"] == "StatefulSet" && o["metadata"]["name"] == "etcd").unwrap();
    assert_eq!(etcd["spec"]["template"], golden_etcd["spec"]["template"], "etcd is untouched");
    assert!(server.requests().iter().filter(|r| r.method == "PATCH").all(|r| r.field_manager.as_deref() == Some("kkp")));
    let shown = text(&ws.kkp(&["state", "show", "cluster/de-test-01/secret/ca"]));
    assert!(shown.contains(&format!("fingerprint: {}", ca.fingerprint)), "the state records the live CA: {shown}");
    // The plan after it still never replaces etcd silently: that needs --allow-destroy.
    let mut plan = ws.command(&["plan", "-f", topology]);
    plan.env("KUBECONFIG", ws.path().join("kubeconfig"));
    let plan = tokio::task::spawn_blocking(move || plan.output().unwrap()).await.unwrap();
    assert_eq!(plan.status.code(), Some(1));
    assert!(text(&plan).contains("cluster/de-test-01/statefulset/etcd: it holds the cluster's data"), "{}", text(&plan));
    assert!(!text(&plan).contains("secret/ca"), "{}", text(&plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_writes_the_topology_from_kkps_live_objects() {
    use kkp_test_apiserver::Resource;
    let server = TestServer::start(ServerConfig {
        extra_resources: vec![
            Resource::new("kubermatic.k8c.io", "v1", "clusters", "Cluster", false, &[]),
            Resource::new("kubermatic.k8c.io", "v1", "seeds", "Seed", true, &[]),
            Resource::new("kubermatic.k8c.io", "v1", "kubermaticconfigurations", "KubermaticConfiguration", true, &[]),
        ],
        ..Default::default()
    })
    .await
    .unwrap();
    let ws = Workspace::new();
    std::fs::write(ws.path().join("kubeconfig"), server.kubeconfig_yaml("test-seed")).unwrap();
    // KKP's configuration, Seed and Cluster as they live on a master that is also the seed,
    // with the status and metadata the server and KKP add.
    let fixture = std::fs::read_to_string(common::repo().join("testdata/kkp-fixtures/topology.yaml")).unwrap();
    let mut documents = vec![serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubermatic"}})];
    for doc in fixture.split("\n---\n") {
        let mut value: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
        if matches!(value["kind"].as_str(), Some("Seed" | "Cluster" | "KubermaticConfiguration")) {
            if value["kind"] == "Cluster" {
                value["spec"]["pause"] = true.into();
                value["status"] = serde_json::json!({"phase": "Running", "address": {"adminToken": "abcdef.0123456789abcdef"}});
            }
            value["metadata"]["annotations"] = serde_json::json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"});
            documents.push(value);
        }
    }
    let file = ws.path().join("kkp.json");
    std::fs::write(&file, serde_json::json!({"apiVersion": "v1", "kind": "List", "items": documents}).to_string()).unwrap();
    let created = kkp_kubectl(&server, &["create", "--validate=false", "-f", file.to_str().unwrap()]).await;
    assert!(created.contains("created"), "{created}");

    let mut command = ws.command(&[
        "import",
        "--kube",
        "--master-context",
        "test-seed",
        "--context",
        "test-seed=test-seed",
        "-o",
        "imported",
        "--auto-approve",
    ]);
    command.env("KUBECONFIG", ws.path().join("kubeconfig"));
    let out = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("(1 configuration, 1 seeds, 1 clusters)"), "{report}");
    assert!(report.contains("cluster de-test-01: adopted,") && report.contains("created cluster/de-test-01/secret/ca"), "{report}");

    let written = std::fs::read_to_string(ws.path().join("imported/topology.yaml")).unwrap();
    for absent in ["status", "uid", "resourceVersion", "managedFields", "adminToken", "last-applied-configuration", "creationTimestamp"] {
        assert!(!written.contains(absent), "{absent} in {written}");
    }
    assert!(written.contains("kind: Cluster") && written.contains("humanReadableName: de-test-01"), "{written}");
    let validate = ws.kkp(&["validate", "-f", "imported"]);
    assert!(validate.status.success(), "{}", text(&validate));

    // Beside the topology, the import plan; nothing is recorded until it is applied.
    assert!(!ws.path().join("kkp.state.json").exists());
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("imported/import.plan")).unwrap()).unwrap();
    let digest = plan["digest"].as_str().unwrap().to_string();
    // The master is the seed here: its namespace kubermatic (made by KKP) is adopted.
    let namespace = plan["plan"]["actions"].as_array().unwrap().iter().find(|a| a["address"] == "seed/test-seed/namespace/kubermatic");
    assert_eq!(namespace.map(|a| &a["import"]["label"]), Some(&serde_json::json!(true)), "{plan}");
    let mut command = ws.command(&[
        "apply",
        "imported/import.plan",
        "-f",
        "imported",
        "--kube",
        "--context",
        "test-seed=test-seed",
        "--expect-digest",
        &digest,
    ]);
    command.env("KUBECONFIG", ws.path().join("kubeconfig"));
    let applied = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(applied.status.success(), "{}", text(&applied));
    let listed = text(&ws.kkp(&["state", "list", "seed/test-seed"]));
    assert!(listed.lines().any(|l| l == "seed/test-seed/namespace/kubermatic"), "{listed}");
    let kubermatic = server.object("v1", "Namespace", None, "kubermatic").unwrap();
    assert_eq!(kubermatic["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kkp");
}

/// The objects a test server holds in `namespace`.
fn in_namespace(server: &TestServer, namespace: &str) -> usize {
    server.objects().iter().filter(|o| o.pointer("/metadata/namespace").and_then(|n| n.as_str()) == Some(namespace)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_stop_at_a_cluster_whose_etcd_never_becomes_ready_and_a_rerun_continues() {
    let fleet = Fleet::start().await;
    fleet.us.faults().update(|f| f.never_ready = vec!["cluster-us8qv7hzrn".into()]);
    let waves = ["--waves", "canary=us4xk2ptmw,us8qv7hzrn,100%", "--ready-timeout", "3"];
    let out = fleet.apply(&waves).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("Wave canary: 1 clusters"), "{report}");
    assert!(report.contains("Rollout stopped after wave wave-2 (us8qv7hzrn): not every action of the wave succeeded"), "{report}");
    assert!(!report.contains("Wave wave-3"), "{report}");
    // The canary is complete, the stuck cluster has its etcd, the last wave was never touched.
    assert!(in_namespace(&fleet.us, "cluster-us4xk2ptmw") > 20);
    assert!(fleet.us.object("apps/v1", "StatefulSet", Some("cluster-us8qv7hzrn"), "etcd").is_some());
    assert!(fleet.us.object("apps/v1", "Deployment", Some("cluster-us8qv7hzrn"), "apiserver").is_none());
    assert_eq!(in_namespace(&fleet.us, "cluster-us2mw9dfkc"), 0);
    assert_eq!(in_namespace(&fleet.eu, "cluster-eu6tj3nbqx"), 0);

    // etcd comes up; the same command continues with what is left, the canary is not redone.
    fleet.us.faults().update(|f| f.never_ready.clear());
    let rerun = fleet.apply(&waves).await;
    assert!(rerun.status.success(), "{}", text(&rerun));
    let report = text(&rerun);
    assert!(!report.contains("us4xk2ptmw"), "the canary is done: {report}");
    assert!(report.contains("Wave wave-2: 1 clusters"), "{report}");
    assert!(report.contains("us2mw9dfkc") && report.contains("eu6tj3nbqx"), "{report}");
    assert_eq!(fleet.us.objects().len(), rendered_objects("seed-us"));
    assert_eq!(fleet.eu.objects().len(), rendered_objects("seed-eu"));
    assert_eq!(fleet.plan_exit().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_stop_at_a_cluster_whose_apiserver_is_not_ready_and_a_rerun_continues() {
    let fleet = Fleet::start().await;
    fleet.us.faults().update(|f| f.readyz_failing = vec!["cluster-us8qv7hzrn".into()]);
    let waves = ["--waves", "canary=us4xk2ptmw,us8qv7hzrn,100%", "--ready-timeout", "3"];
    let out = fleet.apply(&waves).await;
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    // The canary's apiserver was asked through the seed's service proxy and is ready.
    assert!(report.contains("apiserver /readyz ready: us4xk2ptmw"), "{report}");
    assert!(
        report.contains(
            "Rollout stopped after wave wave-2 (us8qv7hzrn): the apiserver of cluster us8qv7hzrn is not ready: /readyz answered 500: [-]etcd failed: reason withheld"
        ),
        "{report}"
    );
    assert!(!report.contains("Wave wave-3"), "{report}");
    let asked = |server: &TestServer, cluster: &str| {
        let path = format!("/api/v1/namespaces/cluster-{cluster}/services/https:apiserver-external:secure/proxy/readyz");
        server.requests().iter().filter(|r| r.path == path).map(|r| r.status).collect::<Vec<_>>()
    };
    assert_eq!(asked(&fleet.us, "us4xk2ptmw"), [200]);
    // Polled until --ready-timeout, not ready every time.
    let polled = asked(&fleet.us, "us8qv7hzrn");
    assert!(polled.len() >= 2 && polled.iter().all(|s| *s == 500), "{polled:?}");
    // Every action of the stopped wave landed; the last wave was never touched.
    assert!(fleet.us.object("apps/v1", "Deployment", Some("cluster-us8qv7hzrn"), "apiserver").is_some());
    assert_eq!(in_namespace(&fleet.us, "cluster-us2mw9dfkc"), 0);
    assert_eq!(in_namespace(&fleet.eu, "cluster-eu6tj3nbqx"), 0);

    // Re-run while it is still not ready: the stopped wave is checked again first, and
    // nothing else starts.
    let again = fleet.apply(&waves).await;
    let report = text(&again);
    assert_eq!(again.status.code(), Some(1), "{report}");
    assert!(
        report.contains("Wave wave-2 (us8qv7hzrn) stopped the last rollout (the apiserver of cluster us8qv7hzrn is not ready"),
        "{report}"
    );
    assert!(
        report.contains("Rollout stopped after wave wave-2 (us8qv7hzrn): the apiserver of cluster us8qv7hzrn is not ready"),
        "{report}"
    );
    assert!(!report.contains("Wave wave-3"), "{report}");
    assert_eq!(in_namespace(&fleet.us, "cluster-us2mw9dfkc"), 0);
    assert_eq!(in_namespace(&fleet.eu, "cluster-eu6tj3nbqx"), 0);

    // The apiserver recovers; the same command checks it again and continues with the
    // clusters still to do.
    fleet.us.faults().update(|f| f.readyz_failing.clear());
    let rerun = fleet.apply(&waves).await;
    let report = text(&rerun);
    assert!(rerun.status.success(), "{report}");
    assert!(report.contains("apiserver /readyz ready: us8qv7hzrn\n"), "{report}");
    assert!(!report.contains("us4xk2ptmw") && !report.contains("Wave wave-2: "), "the first waves are done: {report}");
    assert!(report.contains("apiserver /readyz ready: eu6tj3nbqx, eu9rk5wgsv, us2mw9dfkc"), "{report}");
    assert_eq!(fleet.us.objects().len(), rendered_objects("seed-us"));
    assert_eq!(fleet.eu.objects().len(), rendered_objects("seed-eu"));
    assert_eq!(fleet.plan_exit().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_read_in_pages() {
    use kkp::target::Target;
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml("s")).unwrap();
    let sources = kkp::target::kube::Sources { kubeconfig: Some(kubeconfig), ..Default::default() };
    let target = kkp::target::kube::KubeTarget::new(sources.resolve("s").await.unwrap(), false).unwrap();
    target.apply(&serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}})).await.unwrap();
    for i in 0..1100 {
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i:04}"), "namespace": "n", "labels": {"app.kubernetes.io/managed-by": "kkp"}}});
        target.apply(&cm).await.unwrap();
    }
    server.clear_requests();
    let labels = std::collections::BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), "kkp".to_string())]);
    let items = target.list(kkp::object::Kind::ConfigMap, None, &labels).await.unwrap();
    assert_eq!(items.len(), 1100);
    let log = server.requests();
    assert_eq!(log.len(), 3, "{:?}", log.iter().map(|r| &r.query).collect::<Vec<_>>());
    assert!(log.iter().all(|r| r.query.contains("limit=500")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_without_a_state_over_seeds_kkp_applied_to_is_refused_unless_new_state() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    std::fs::remove_file(fleet.ws.path().join("kkp.state.json")).unwrap();
    std::fs::remove_file(fleet.ws.path().join("kkp.state.json.backup")).ok();
    std::fs::remove_dir_all(fleet.ws.path().join("kkp.state.json.objects")).ok();
    fleet.eu.clear_requests();
    let refused = fleet.apply(&[]).await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let report = text(&refused);
    assert!(report.contains("there is no state, but seed seed-") && report.contains("--new-state"), "{report}");
    assert!(report.contains("kkp import"), "{report}");
    // The check reads names and labels only: a metadata-only list of namespaces.
    let lists: Vec<_> = fleet.eu.requests().into_iter().filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces").collect();
    assert!(!lists.is_empty());
    assert!(
        lists.iter().all(|r| r.accept.contains("as=PartialObjectMetadataList")),
        "{:?}",
        lists.iter().map(|r| &r.accept).collect::<Vec<_>>()
    );
    // On purpose: a new state applies over what runs (server-side apply, same objects).
    let fresh = fleet.apply(&["--new-state"]).await;
    assert!(fresh.status.success(), "{}", text(&fresh));
    assert_eq!(fleet.plan_exit().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_plan_is_reviewed_applied_by_digest_and_never_records_a_ca_changed_since() {
    let fleet = Fleet::start().await;
    assert!(fleet.apply(&[]).await.status.success());
    let state_file = fleet.ws.path().join("kkp.state.json");
    std::fs::remove_file(&state_file).unwrap();
    let _ = std::fs::remove_dir_all(fleet.ws.path().join("kkp.state.json.objects"));
    let plan_file = fleet.ws.path().join("import.plan");
    let plan_path = plan_file.to_str().unwrap();

    fleet.eu.clear_requests();
    let saved = fleet.kkp(&["import", "-f", &fleet.topology, "--kube", "-o", plan_path]).await;
    let out = text(&saved);
    assert!(saved.status.success(), "{out}");
    assert!(out.contains(&format!("cluster {EU_CLUSTER}: adopted, no changes")), "{out}");
    assert!(fleet.eu.requests().iter().all(|r| r.method == "GET"), "saving an import plan only reads");
    assert!(!state_file.exists(), "nothing is recorded before the plan is applied");
    let plan_text = std::fs::read_to_string(&plan_file).unwrap();
    assert!(!plan_text.contains("PRIVATE KEY") && !plan_text.contains("LS0tLS1CRUdJTi"), "no key material in the plan");
    let digest = serde_json::from_str::<serde_json::Value>(&plan_text).unwrap()["digest"].as_str().unwrap().to_string();

    let wrong = fleet.kkp(&["apply", plan_path, "-f", &fleet.topology, "--kube", "--expect-digest", "sha256:feed"]).await;
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(!state_file.exists());

    // Someone replaces the CA of a cluster between review and apply: refused, left as it is.
    let ns = format!("cluster-{EU_CLUSTER}");
    let original = fleet.eu.object("v1", "Secret", Some(&ns), "ca").unwrap();
    let other_ns = fleet
        .eu
        .objects()
        .into_iter()
        .filter(|o| o["kind"] == "Namespace")
        .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
        .find(|n| n.starts_with("cluster-") && *n != ns)
        .expect("seed-eu runs two clusters");
    let other = fleet.eu.object("v1", "Secret", Some(&other_ns), "ca").unwrap();
    let patch = serde_json::json!({"data": other["data"]}).to_string();
    let patched = kkp_kubectl(&fleet.eu, &["-n", &ns, "patch", "secret", "ca", "--type", "merge", "-p", &patch]).await;
    assert!(patched.contains("patched"), "{patched}");
    let replaced = fleet.eu.object("v1", "Secret", Some(&ns), "ca").unwrap();
    fleet.eu.clear_requests();
    let refused = fleet.kkp(&["apply", plan_path, "-f", &fleet.topology, "--kube", "--expect-digest", &digest]).await;
    let report = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{report}");
    assert!(report.contains("changed since the import plan was made"), "{report}");
    assert!(report.contains(&format!("cluster/{EU_CLUSTER}/secret/ca")), "{report}");
    assert_eq!(fleet.eu.object("v1", "Secret", Some(&ns), "ca").unwrap(), replaced, "the CA Secret is byte-identical");
    assert!(fleet.eu.requests().iter().all(|r| r.method == "GET"), "nothing was written");
    assert!(!state_file.exists(), "nothing was recorded");

    // Put back, the reviewed plan applies: the state is recorded, and the seeds need nothing.
    let restore = serde_json::json!({"data": original["data"]}).to_string();
    assert!(kkp_kubectl(&fleet.eu, &["-n", &ns, "patch", "secret", "ca", "--type", "merge", "-p", &restore]).await.contains("patched"));
    fleet.eu.clear_requests();
    let applied = fleet.kkp(&["apply", plan_path, "-f", &fleet.topology, "--kube", "--expect-digest", &digest]).await;
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(fleet.eu.requests().iter().all(|r| r.method == "GET"), "kkp's own objects need no label write");
    assert_eq!(fleet.eu.object("v1", "Secret", Some(&ns), "ca").unwrap()["data"], original["data"]);
    let plan = fleet.plan_refresh(&[]).await;
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains("No changes."), "{}", text(&plan));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kkp_made_objects_adopted_through_an_import_plan_keep_their_ca_and_get_only_kkps_label() {
    let (server, ws, topology, ca) = kkp_made_seed(true).await;
    let ca_before = server.object("v1", "Secret", Some("cluster-de-test-01"), "ca").unwrap();
    let etcd_before = server.object("apps/v1", "StatefulSet", Some("cluster-de-test-01"), "etcd").unwrap();
    let run = |args: Vec<String>| {
        let mut command = ws.command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        command.env("KUBECONFIG", ws.path().join("kubeconfig"));
        async move { tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap() }
    };
    let args = |list: &[&str]| list.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    // Not adopted without --accept: the plan holds nothing of the cluster, and says why.
    let refused = run(args(&["import", "-f", &topology, "--kube", "-o", "refused.plan"])).await;
    let out = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{out}");
    assert!(out.contains("note: cluster de-test-01: not adopted") && out.contains("cluster/de-test-01/statefulset/etcd:"), "{out}");
    let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("refused.plan")).unwrap()).unwrap();
    assert!(plan["plan"]["actions"].as_array().unwrap().iter().all(|a| a["cluster"] != "de-test-01"), "{plan}");

    server.clear_requests();
    let saved = run(args(&["import", "-f", &topology, "--kube", "--accept", "cluster/de-test-01", "-o", "import.plan"])).await;
    let out = text(&saved);
    assert!(saved.status.success(), "{out}");
    assert!(out.contains("note: cluster de-test-01: adopted,") && out.contains("changes on the next apply"), "{out}");
    assert!(server.requests().iter().all(|r| r.method == "GET"), "saving the plan only reads");
    let plan_text = std::fs::read_to_string(ws.path().join("import.plan")).unwrap();
    assert!(!plan_text.contains("PRIVATE KEY") && !plan_text.contains("LS0tLS1CRUdJTi"), "no key material in the plan");
    let plan: serde_json::Value = serde_json::from_str(&plan_text).unwrap();
    let digest = plan["digest"].as_str().unwrap().to_string();
    let ca_action =
        plan["plan"]["actions"].as_array().unwrap().iter().find(|a| a["address"] == "cluster/de-test-01/secret/ca").unwrap().clone();
    assert_eq!(ca_action["import"]["certificate"]["fingerprint"], ca.fingerprint.as_str(), "the plan records the live CA");
    assert_eq!(ca_action["import"]["label"], true, "KKP's CA gets kkp's label");

    // A policy that wants a person for imports asks for the reviewed digest.
    std::fs::write(ws.path().join("policy.yaml"), "rules:\n  - decision: review\n    class: import\n").unwrap();
    let unreviewed = run(args(&["apply", "import.plan", "--kube", "--policy", "policy.yaml"])).await;
    assert_eq!(unreviewed.status.code(), Some(3), "{}", text(&unreviewed));

    server.clear_requests();
    let applied = run(args(&["apply", "import.plan", "--kube", "--policy", "policy.yaml", "--expect-digest", &digest])).await;
    assert!(applied.status.success(), "{}", text(&applied));
    let ca_after = server.object("v1", "Secret", Some("cluster-de-test-01"), "ca").unwrap();
    assert_eq!(ca_after["data"], ca_before["data"], "the CA is byte-identical");
    assert_eq!(ca_after["metadata"]["labels"]["app.kubernetes.io/managed-by"], "kkp");
    let etcd = server.object("apps/v1", "StatefulSet", Some("cluster-de-test-01"), "etcd").unwrap();
    assert_eq!(etcd["spec"], etcd_before["spec"], "etcd is untouched");
    // The only writes: kkp's label, applied alone as manager kkp.
    let writes: Vec<_> = server.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(!writes.is_empty());
    assert!(writes.iter().all(|r| r.method == "PATCH" && r.field_manager.as_deref() == Some("kkp") && !r.query.contains("force")));
    let managed = &etcd["metadata"]["managedFields"];
    let kkp_fields = managed.as_array().unwrap().iter().find(|m| m["manager"] == "kkp").unwrap();
    assert_eq!(kkp_fields["fieldsV1"], serde_json::json!({"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}}}));
    let shown = text(&run(args(&["state", "show", "cluster/de-test-01/secret/ca"])).await);
    assert!(shown.contains(&format!("fingerprint: {}", ca.fingerprint)), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reads_metadata_only_lists_and_gets_from_the_test_server() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Api, ListParams};
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml("s")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(serde_json::json!({"metadata": {"name": "n"}})).unwrap();
    namespaces.create(&Default::default(), &ns).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client, "n");
    for i in 0..3 {
        let secret = serde_json::from_value(
            serde_json::json!({"metadata": {"name": format!("s{i}"), "labels": {"l": "x"}}, "stringData": {"key": "private"}}),
        )
        .unwrap();
        secrets.create(&Default::default(), &secret).await.unwrap();
    }
    server.clear_requests();
    let first = secrets.list_metadata(&ListParams::default().labels("l=x").limit(2)).await.unwrap();
    assert_eq!((first.types.kind.as_str(), first.types.api_version.as_str()), ("PartialObjectMetadataList", "meta.k8s.io/v1"));
    assert_eq!(first.items.len(), 2);
    let item_types = first.items[0].types.clone().unwrap();
    assert_eq!((item_types.kind.as_str(), item_types.api_version.as_str()), ("PartialObjectMetadata", "meta.k8s.io/v1"));
    let token = first.metadata.continue_.clone().unwrap();
    let rest = secrets.list_metadata(&ListParams::default().labels("l=x").limit(2).continue_token(&token)).await.unwrap();
    let names: Vec<_> = first.items.iter().chain(&rest.items).filter_map(|i| i.metadata.name.clone()).collect();
    assert_eq!(names, ["s0", "s1", "s2"]);
    let one = secrets.get_metadata("s1").await.unwrap();
    assert_eq!(one.metadata.labels.unwrap()["l"], "x");
    assert!(server.requests().iter().all(|r| r.accept.contains("as=PartialObjectMetadata")), "every read was metadata-only");
}
