//! End-to-end behaviour of the kkp binary on the offline directory target.

mod common;

use common::{Workspace, files, repo, text};
use serde_json::Value;

fn plan_json(ws: &Workspace, topology: &str) -> Value {
    let out = ws.kkp(&["plan", "-f", topology, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).expect("plan --json prints JSON")
}

fn actions(plan: &Value) -> Vec<(String, String)> {
    plan["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["action"].as_str().unwrap().to_string(), a["address"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn apply_then_plan_is_empty_and_a_version_bump_changes_only_that_cluster() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    // Every object in the cluster's namespace lands in the namespace's folder.
    let plan = plan_json(&ws, topology);
    let in_namespace =
        plan["plan"]["actions"].as_array().unwrap().iter().filter(|a| a["object"]["namespace"] == "cluster-qs4k7x2mzp").count();
    let out = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));

    let written = files(&ws.path().join("out"));
    assert!(written.contains(&"europe/cluster-qs4k7x2mzp/statefulset-etcd.yaml".to_string()), "{written:?}");
    assert!(written.contains(&"europe/_cluster/namespace-cluster-qs9d3vh6rt.yaml".to_string()));
    assert_eq!(written.iter().filter(|f| f.contains("cluster-qs4k7x2mzp/")).count(), in_namespace);
    assert!(ws.path().join("kkp.state.json").is_file());

    let again = ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("No changes"));

    let file = ws.path().join("quickstart/kkp.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap().replace("version: 1.33.5", "version: 1.34.2");
    std::fs::write(&file, yaml).unwrap();
    let bumped = ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"]);
    assert_eq!(bumped.status.code(), Some(2), "{}", text(&bumped));
    let plan = plan_json(&ws, topology);
    // The control plane's versioned workloads update in place; nothing else changes.
    let changed = actions(&plan);
    assert!(changed.contains(&("update".to_string(), "cluster/qs9d3vh6rt/deployment/apiserver".to_string())), "{changed:?}");
    assert!(changed.contains(&("update".to_string(), "cluster/qs9d3vh6rt/deployment/controller-manager".to_string())), "{changed:?}");
    assert!(changed.iter().all(|(action, address)| action == "update" && address.starts_with("cluster/qs9d3vh6rt/")), "{changed:?}");
    assert!(
        text(&bumped).contains("\"registry.k8s.io/kube-apiserver:v1.33.5\" -> \"registry.k8s.io/kube-apiserver:v1.34.2\""),
        "{}",
        text(&bumped)
    );

    let applied = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let deployment = std::fs::read_to_string(ws.path().join("out/europe/cluster-qs9d3vh6rt/deployment-apiserver.yaml")).unwrap();
    assert!(deployment.contains("kube-apiserver:v1.34.2"));
    assert_eq!(ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"]).status.code(), Some(0));
}

#[test]
fn saved_plans_apply_exactly_and_tampering_is_refused() {
    let ws = Workspace::new();
    let topology = repo().join("examples/quickstart");
    let topology = topology.to_str().unwrap();
    let out = ws.kkp(&["plan", "-f", topology, "-o", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let saved = std::fs::read_to_string(ws.path().join("plan.json")).unwrap();

    // Change one character inside the plan body.
    let tampered = saved.replacen("\"replicas\":3", "\"replicas\":4", 1);
    assert_ne!(tampered, saved);
    std::fs::write(ws.path().join("tampered.json"), &tampered).unwrap();
    let refused = ws.kkp(&["apply", "tampered.json", "--dir", "out"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("the plan was modified after it was saved"), "{}", text(&refused));
    assert!(!ws.path().join("out").exists(), "nothing is written for a refused plan");

    let wrong = ws.kkp(&["apply", "plan.json", "--dir", "out", "--expect-digest", "sha256:0000"]);
    assert!(text(&wrong).contains("not the expected sha256:0000"), "{}", text(&wrong));

    // Without the topology the Secrets apply copies (cloud credentials) have no source but the
    // seed: those nodes fail, naming the fix.
    let digest = serde_json::from_str::<Value>(&saved).unwrap()["digest"].as_str().unwrap().to_string();
    let bare = Workspace::new();
    std::fs::write(bare.path().join("plan.json"), &saved).unwrap();
    let without = bare.kkp(&["apply", "plan.json", "--dir", "out", "--expect-digest", &digest]);
    assert_eq!(without.status.code(), Some(1), "{}", text(&without));
    assert!(text(&without).contains("or put it among the topology documents"), "{}", text(&without));

    // With it (-f only supplies Secrets here; the plan is not made again), the plan applies.
    let applied = ws.kkp(&["apply", "plan.json", "-f", topology, "--dir", "out", "--expect-digest", &digest]);
    assert!(applied.status.success(), "{}", text(&applied));

    // The same plan again: what it relied on has changed, so it is stale.
    let stale = ws.kkp(&["apply", "plan.json", "--dir", "out"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale).contains("the state changed since the plan was made"), "{}", text(&stale));
}

#[test]
fn apply_without_a_terminal_or_approval_refuses_instead_of_hanging() {
    let ws = Workspace::new();
    let topology = repo().join("examples/quickstart");
    let out = ws.command(&["apply", "-f", topology.to_str().unwrap(), "--dir", "out"]).stdin(std::process::Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("stdin is not a terminal"), "{}", text(&out));
    assert!(!ws.path().join("kkp.state.json").exists());
}

#[test]
fn no_private_key_reaches_the_state_the_plan_or_the_output() {
    let ws = Workspace::new();
    let topology = repo().join("examples/quickstart");
    let topology = topology.to_str().unwrap();
    let plan = ws.kkp(&["plan", "-f", topology, "-o", "plan.json"]);
    let apply = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert!(apply.status.success());
    // The keys do exist, on the target only.
    let ca = std::fs::read_to_string(ws.path().join("out/europe/cluster-qs4k7x2mzp/secret-ca.yaml")).unwrap();
    let ca: Value = serde_saphyr::from_str(&ca).unwrap();
    let key_b64 = ca["data"]["ca.key"].as_str().unwrap();
    assert!(key_b64.len() > 100);
    let fragment = &key_b64[40..80];

    let mut haystacks = vec![
        text(&plan),
        text(&apply),
        std::fs::read_to_string(ws.path().join("plan.json")).unwrap(),
        std::fs::read_to_string(ws.path().join("kkp.state.json")).unwrap(),
    ];
    for object in files(&ws.path().join("kkp.state.json.objects")) {
        haystacks.push(std::fs::read_to_string(ws.path().join("kkp.state.json.objects").join(object)).unwrap());
    }
    for hay in &haystacks {
        assert!(!hay.contains("PRIVATE KEY"));
        assert!(!hay.contains(fragment), "key material leaked");
        assert!(!hay.contains("LS0tLS1CRUdJTi"), "base64 PEM leaked");
    }
}

#[test]
fn removing_a_cluster_needs_permission_to_destroy_its_data() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    assert!(ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]).status.success());
    let file = ws.path().join("quickstart/kkp.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    let cut = yaml.find("apiVersion: kubermatic.k8c.io/v1\nkind: Cluster\nmetadata:\n  name: qs9d3vh6rt").unwrap();
    std::fs::write(&file, &yaml[..cut.saturating_sub(4)]).unwrap();

    let refused = ws.kkp(&["plan", "-f", topology]);
    assert_eq!(refused.status.code(), Some(1));
    let message = text(&refused);
    assert!(message.contains("cluster/qs9d3vh6rt/statefulset/etcd: it holds the cluster's data"), "{message}");
    assert!(message.contains("--allow-destroy cluster/qs9d3vh6rt/namespace"), "{message}");

    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("kkp.state.json")).unwrap()).unwrap();
    let nodes = state["nodes"].as_object().unwrap().keys().filter(|a| a.starts_with("cluster/qs9d3vh6rt/")).count();
    let out = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve", "--allow-destroy", "cluster/qs9d3vh6rt"]);
    assert!(out.status.success(), "{}", text(&out));
    let summary = format!("Plan: 0 to add, 0 to change, 0 to replace, {nodes} to destroy");
    assert!(text(&out).contains(&summary), "{}", text(&out));
    assert!(!ws.path().join("out/europe/cluster-qs9d3vh6rt").exists());
    assert!(!ws.path().join("out/europe/_cluster/namespace-cluster-qs9d3vh6rt.yaml").exists());
    assert_eq!(ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"]).status.code(), Some(0));
}

#[test]
fn targeted_plans_cover_the_target_and_its_dependencies_only() {
    let ws = Workspace::new();
    let topology = repo().join("examples/quickstart");
    let out = ws.kkp(&["plan", "-f", topology.to_str().unwrap(), "--json", "--target", "cluster/qs4k7x2mzp/deployment/apiserver"]);
    assert!(out.status.success(), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let addresses: Vec<String> = actions(&plan).into_iter().map(|(_, a)| a).collect();
    assert!(addresses.contains(&"cluster/qs4k7x2mzp/statefulset/etcd".to_string()));
    assert!(addresses.contains(&"cluster/qs4k7x2mzp/secret/ca".to_string()));
    assert!(!addresses.iter().any(|a| a.contains("prometheus") || a.contains("qs9d3vh6rt")), "{addresses:?}");

    let unknown = ws.kkp(&["plan", "-f", topology.to_str().unwrap(), "--target", "cluster/nope"]);
    assert!(text(&unknown).contains("--target cluster/nope matches no node"), "{}", text(&unknown));
}

#[test]
fn graph_prints_dot_with_the_dependency_edges() {
    let ws = Workspace::new();
    let out = ws.kkp(&["graph", "-f", repo().join("examples/quickstart").to_str().unwrap(), "--cluster", "qs4k7x2mzp"]);
    assert!(out.status.success(), "{}", text(&out));
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph kkp {"));
    assert!(dot.contains("\"cluster/qs4k7x2mzp/statefulset/etcd\" -> \"cluster/qs4k7x2mzp/deployment/apiserver\";"));
    assert!(dot.contains("\"cluster/qs4k7x2mzp/secret/ca\" -> \"cluster/qs4k7x2mzp/secret/apiserver-tls\";"));
    assert!(!dot.contains("qs9d3vh6rt"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("critical path"));
}

#[test]
fn an_object_kkp_did_not_create_is_reported_not_overwritten() {
    let ws = Workspace::new();
    let topology = repo().join("examples/quickstart");
    let topology = topology.to_str().unwrap();
    let foreign = ws.path().join("out/europe/cluster-qs4k7x2mzp/configmap-prometheus.yaml");
    std::fs::create_dir_all(foreign.parent().unwrap()).unwrap();
    let mine =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: prometheus\n  namespace: cluster-qs4k7x2mzp\ndata:\n  prometheus.yaml: mine\n";
    std::fs::write(&foreign, mine).unwrap();

    let out = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("ConfigMap cluster-qs4k7x2mzp/prometheus already exists on seed europe and was not created by kkp"),
        "{report}"
    );
    assert!(report.contains("skipped cluster/qs4k7x2mzp/statefulset/prometheus"), "{report}");
    assert_eq!(std::fs::read_to_string(&foreign).unwrap(), mine, "the foreign object is untouched");
    // The other cluster was applied completely.
    assert!(ws.path().join("out/europe/cluster-qs9d3vh6rt/statefulset-prometheus.yaml").exists());

    let forced = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve", "--force-conflicts"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(std::fs::read_to_string(&foreign).unwrap().contains("scrape_configs"));
    assert_eq!(ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"]).status.code(), Some(0));
}

#[test]
fn an_apply_without_changes_still_records_clusters_found_unchanged() {
    let ws = Workspace::new();
    let topology = repo().join("examples/quickstart");
    let topology = topology.to_str().unwrap();
    assert!(ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]).status.success());
    // A state without cluster input digests (as an older renderer or a partial apply leaves
    // it) makes every plan render every cluster again.
    let path = ws.path().join("kkp.state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    state["clusters"] = serde_json::json!({});
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();

    let out = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("No changes"), "{}", text(&out));
    let state: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(state["clusters"].as_object().unwrap().len(), 2, "both clusters are recorded unchanged again");
}

/// An OpenStack cluster whose credentials Secret is among the topology's documents, with
/// `credential` lines as its `stringData`.
fn openstack_topology(credential: &str) -> String {
    format!(
        "apiVersion: kubermatic.k8c.io/v1\nkind: KubermaticConfiguration\nmetadata:\n  name: kubermatic\n  namespace: kubermatic\n\
         spec:\n  ingress:\n    domain: kkp.example.com\n---\n\
         apiVersion: kubermatic.k8c.io/v1\nkind: Seed\nmetadata:\n  name: europe\n  namespace: kubermatic\nspec:\n  datacenters:\n\
         \x20   os-fra:\n      country: DE\n      spec:\n        openstack:\n          authURL: https://keystone.example.com:5000/v3\n\
         \x20         region: RegionOne\n          useOctavia: true\n---\n\
         apiVersion: kubermatic.k8c.io/v1\nkind: Cluster\nmetadata:\n  name: os7k2m9xqp\nspec:\n  version: 1.34.2\n  cloud:\n\
         \x20   dc: os-fra\n    openstack:\n      credentialsReference:\n        name: credential-openstack-os7k2m9xqp\n\
         \x20       namespace: kubermatic\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: credential-openstack-os7k2m9xqp\n  namespace: kubermatic\ntype: Opaque\n\
         stringData:\n{credential}"
    )
}

const OPENSTACK_PASSWORD: &str = "s3cr3t-Pa55w0rd-never-in-the-state";

#[test]
fn an_openstack_cloud_config_holds_the_credentials_on_the_target_only() {
    let ws = Workspace::new();
    let login = "  domain: Default\n  username: kkp-user\n  project: kkp-project\n  projectID: 0a1b2c3d\n";
    std::fs::write(ws.path().join("kkp.yaml"), openstack_topology(&format!("{login}  password: {OPENSTACK_PASSWORD}\n"))).unwrap();
    let plan = ws.kkp(&["plan", "-f", "kkp.yaml", "-o", "plan.json"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let apply = ws.kkp(&["apply", "-f", "kkp.yaml", "--dir", "out", "--state", "state.json", "--auto-approve"]);
    assert!(apply.status.success(), "{}", text(&apply));

    // The apiserver and controller-manager mount it; the Secret holds KKP's INI with the login.
    let secret = std::fs::read_to_string(ws.path().join("out/europe/cluster-os7k2m9xqp/secret-cloud-config.yaml")).unwrap();
    let secret: Value = serde_saphyr::from_str(&secret).unwrap();
    assert_eq!(secret["metadata"]["labels"]["app"], "cloud-config");
    use base64::Engine;
    let decode = |key: &str| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(secret["data"][key].as_str().unwrap()).unwrap()).unwrap()
    };
    let config = decode("config");
    assert!(
        config.starts_with(&format!(
            "[Global]\nauth-url = \"https://keystone.example.com:5000/v3\"\nregion = \"RegionOne\"\nusername = \"kkp-user\"\n\
             password = \"{OPENSTACK_PASSWORD}\"\ntenant-name = \"kkp-project\"\ntenant-id = \"0a1b2c3d\"\ndomain-name = \"Default\"\n\n\
             [LoadBalancer]\nmanage-security-groups = true\n"
        )),
        "{config}"
    );
    assert!(config.contains("use-octavia = true\n\n[BlockStorage]\n"), "{config}");
    assert_eq!(decode("fakeVmwareUUID"), "VMware-42 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00");
    for workload in ["deployment-apiserver.yaml", "deployment-controller-manager.yaml"] {
        let text = std::fs::read_to_string(ws.path().join("out/europe/cluster-os7k2m9xqp").join(workload)).unwrap();
        assert!(text.contains("fingerprint.kkp.k8c.io/cloud-config: sha256:"), "{workload} rolls with the config");
    }

    // Nothing recorded or printed holds the password, raw or base64-encoded.
    let encoded = base64::engine::general_purpose::STANDARD.encode(OPENSTACK_PASSWORD);
    let mut haystacks = vec![
        text(&plan),
        text(&apply),
        std::fs::read_to_string(ws.path().join("plan.json")).unwrap(),
        std::fs::read_to_string(ws.path().join("state.json")).unwrap(),
    ];
    for object in files(&ws.path().join("state.json.objects")) {
        haystacks.push(std::fs::read_to_string(ws.path().join("state.json.objects").join(object)).unwrap());
    }
    assert!(haystacks[2].contains("\"openstackConfig\""), "the plan holds the request");
    for hay in &haystacks {
        assert!(!hay.contains(OPENSTACK_PASSWORD) && !hay.contains(&encoded[..20]), "the password leaked");
    }
    let again = ws.kkp(&["plan", "-f", "kkp.yaml", "--state", "state.json", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // A datacenter setting changes the request, so the plan re-makes the config.
    std::fs::write(
        ws.path().join("kkp.yaml"),
        openstack_topology(&format!("{login}  password: {OPENSTACK_PASSWORD}\n")).replace("useOctavia: true", "useOctavia: false"),
    )
    .unwrap();
    let changed = ws.kkp(&["plan", "-f", "kkp.yaml", "--state", "state.json"]);
    let report = text(&changed);
    assert!(report.contains("-/+ cluster/os7k2m9xqp/secret/cloud-config") && report.contains("useOctavia: true -> false"), "{report}");
}

#[test]
fn a_missing_credential_key_fails_the_cloud_config_naming_the_secret_key_and_fix() {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("kkp.yaml"),
        openstack_topology("  domain: Default\n  username: kkp-user\n  project: p\n  projectID: i\n"),
    )
    .unwrap();
    let out = ws.kkp(&["apply", "-f", "kkp.yaml", "--dir", "out", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(
        report.contains("failed  cluster/os7k2m9xqp/secret/cloud-config")
            && report.contains("the cloud credentials Secret kubermatic/credential-openstack-os7k2m9xqp has no key \"password\"")
            && report.contains("fix: add it"),
        "{report}"
    );
    assert!(report.contains("skipped cluster/os7k2m9xqp/deployment/apiserver"), "{report}");
    assert!(!ws.path().join("out/europe/cluster-os7k2m9xqp/secret-cloud-config.yaml").exists());
}
