//! kubectl, a client nobody on this team wrote, against the test server.

mod common;

use kkp_test_apiserver::{Resource, ServerConfig, TestServer};
use std::process::Output;
use std::time::Duration;

struct Kubectl {
    cache: tempfile::TempDir,
    kubeconfig: tempfile::NamedTempFile,
}

impl Kubectl {
    fn new(server: &TestServer) -> Self {
        let kubeconfig = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(kubeconfig.path(), server.kubeconfig_yaml("test")).unwrap();
        Kubectl { cache: tempfile::tempdir().unwrap(), kubeconfig }
    }

    /// Runs kubectl (on a blocking thread: the server runs on this test's runtime).
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = std::process::Command::new(common::kubectl());
        command.arg("--kubeconfig").arg(self.kubeconfig.path()).arg("--cache-dir").arg(self.cache.path()).args(args);
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            let mut child = command.spawn().expect("kubectl starts");
            if let Some(text) = stdin {
                child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
            }
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cluster-abc\n";
const OBJECTS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: etcd-config\n  namespace: cluster-abc\ndata:\n  size: \"3\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: apiserver\n  namespace: cluster-abc\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {app: apiserver}\n  template:\n    metadata:\n      labels: {app: apiserver}\n    spec:\n      containers:\n      - name: apiserver\n        image: registry.k8s.io/kube-apiserver:v1.31.2\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_applies_reads_and_deletes() {
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let k = Kubectl::new(&server);

    let created = k.run(&["create", "-f", "-"], Some(NAMESPACE)).await;
    assert!(created.status.success(), "{}", text(&created));
    assert_eq!(String::from_utf8_lossy(&created.stdout).trim(), "namespace/cluster-abc created");
    let again = k.run(&["create", "-f", "-"], Some(NAMESPACE)).await;
    assert!(text(&again).contains("Error from server (AlreadyExists)"), "{}", text(&again));

    let applied = k.run(&["apply", "--server-side", "-f", "-"], Some(OBJECTS)).await;
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(text(&applied).contains("deployment.apps/apiserver serverside-applied"));
    assert!(
        server.requests().iter().any(|r| r.method == "PATCH"
            && r.field_manager.as_deref() == Some("kubectl")
            && r.content_type == "application/apply-patch+yaml")
    );

    let namespaces = k.run(&["get", "ns"], None).await;
    let namespaces = text(&namespaces);
    assert!(namespaces.lines().any(|l| l.starts_with("cluster-abc") && l.contains("Active")), "{namespaces}");
    let listed = k.run(&["get", "deploy,cm", "-n", "cluster-abc"], None).await;
    let listed = text(&listed);
    assert!(listed.lines().any(|l| l.starts_with("deployment.apps/apiserver") && l.contains("2/2")), "READY from the table: {listed}");
    assert!(listed.contains("configmap/etcd-config"), "{listed}");
    let all = k.run(&["get", "all", "-n", "cluster-abc"], None).await;
    assert!(text(&all).contains("deployment.apps/apiserver"), "the `all` category: {}", text(&all));
    let yaml = k.run(&["get", "deploy", "apiserver", "-n", "cluster-abc", "-o", "yaml"], None).await;
    let yaml = String::from_utf8_lossy(&yaml.stdout).to_string();
    assert!(yaml.contains("image: registry.k8s.io/kube-apiserver:v1.31.2") && yaml.contains("readyReplicas: 2"), "{yaml}");

    let managed = k.run(&["get", "deploy", "apiserver", "-n", "cluster-abc", "-o", "yaml", "--show-managed-fields"], None).await;
    let managed = String::from_utf8_lossy(&managed.stdout).to_string();
    for expected in ["manager: kubectl", "operation: Apply", "fieldsType: FieldsV1", "k:{\"name\":\"apiserver\"}:", "f:image: {}"] {
        assert!(managed.contains(expected), "{expected} in {managed}");
    }

    // Another manager changing kubectl's field is refused, naming kubectl; forcing takes it.
    let changed = OBJECTS.replace("size: \"3\"", "size: \"5\"");
    let conflict = k.run(&["apply", "--server-side", "--field-manager", "kkp", "-f", "-"], Some(&changed)).await;
    assert!(!conflict.status.success());
    assert!(text(&conflict).contains("conflict with \"kubectl\""), "{}", text(&conflict));
    let forced = k.run(&["apply", "--server-side", "--field-manager", "kkp", "--force-conflicts", "-f", "-"], Some(&changed)).await;
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(server.object("v1", "ConfigMap", Some("cluster-abc"), "etcd-config").unwrap()["data"]["size"], "5");

    let deleted = k.run(&["delete", "ns", "cluster-abc", "--timeout=20s"], None).await;
    assert!(deleted.status.success(), "{}", text(&deleted));
    assert!(server.objects().is_empty(), "the namespace went with its contents");
    let gone = k.run(&["get", "ns", "cluster-abc"], None).await;
    assert!(text(&gone).contains("NotFound"), "{}", text(&gone));
}

/// kubectl the way rust-stack.md ran it: no kubeconfig at all, just `--server`.
async fn bare_kubectl(server: &TestServer, cache: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = std::process::Command::new(common::kubectl());
    command.env("KUBECONFIG", "/dev/null").arg("--server").arg(server.url()).arg("--cache-dir").arg(cache).args(args);
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("kubectl starts");
        if let Some(text) = stdin {
            child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_a_namespace_terminate_and_waits_for_it_to_go() {
    let server =
        TestServer::start(ServerConfig { namespace_cleanup_delay: Some(Duration::from_millis(1500)), ..Default::default() }).await.unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = |args: &'static [&'static str], stdin: Option<&'static str>| bare_kubectl(&server, cache.path(), args, stdin);
    assert!(run(&["apply", "--server-side", "-f", "-"], Some(NAMESPACE)).await.status.success());
    assert!(run(&["apply", "--server-side", "-f", "-"], Some(OBJECTS)).await.status.success());

    let deleted = run(&["delete", "ns", "cluster-abc", "--wait=false"], None).await;
    assert_eq!(String::from_utf8_lossy(&deleted.stdout).trim(), "namespace \"cluster-abc\" deleted", "{}", text(&deleted));
    let phase = run(&["get", "ns", "cluster-abc", "-o", "jsonpath={.status.phase}"], None).await;
    assert_eq!(String::from_utf8_lossy(&phase.stdout), "Terminating");
    let refused = run(&["create", "-f", "-"], Some(OBJECTS)).await;
    assert!(text(&refused).contains("Error from server (Forbidden)") && text(&refused).contains("being terminated"), "{}", text(&refused));

    // kubectl wait lists, then watches until the DELETED event.
    let waited = run(&["wait", "--for=delete", "namespace/cluster-abc", "--timeout=10s"], None).await;
    assert!(waited.status.success(), "{}", text(&waited));
    assert!(server.objects().is_empty(), "the deployment and config map went with it");
    let gone = run(&["get", "ns", "cluster-abc"], None).await;
    assert!(text(&gone).contains("Error from server (NotFound): namespaces \"cluster-abc\" not found"), "{}", text(&gone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_and_reads_registered_kinds() {
    let server = TestServer::start(ServerConfig {
        extra_resources: vec![Resource::new("kubermatic.k8c.io", "v1", "clusters", "Cluster", false, &[])],
        ..Default::default()
    })
    .await
    .unwrap();
    let k = Kubectl::new(&server);
    let cluster = "apiVersion: kubermatic.k8c.io/v1\nkind: Cluster\nmetadata:\n  name: abc\nspec:\n  version: 1.31.2\n";
    let applied = k.run(&["apply", "--server-side", "-f", "-"], Some(cluster)).await;
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(String::from_utf8_lossy(&applied.stdout).trim(), "cluster.kubermatic.k8c.io/abc serverside-applied");
    let version = k.run(&["get", "clusters.kubermatic.k8c.io", "abc", "-o", "jsonpath={.spec.version}"], None).await;
    assert_eq!(String::from_utf8_lossy(&version.stdout), "1.31.2", "{}", text(&version));
}
