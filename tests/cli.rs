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

#[test]
fn refresh_finds_files_edited_or_deleted_by_hand_and_apply_restores_them() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    assert!(ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]).status.success());
    let ns = ws.path().join("out/europe/cluster-qs4k7x2mzp");
    let deployment = ns.join("deployment-apiserver.yaml");
    let original = std::fs::read_to_string(&deployment).unwrap();
    std::fs::write(&deployment, original.replace("replicas: 2", "replicas: 7")).unwrap();
    std::fs::remove_file(ns.join("configmap-audit-config.yaml")).unwrap();
    // A leaf certificate replaced by hand (another cluster's).
    std::fs::copy(ws.path().join("out/europe/cluster-qs9d3vh6rt/secret-apiserver-tls.yaml"), ns.join("secret-apiserver-tls.yaml")).unwrap();

    let only = ws.kkp(&["plan", "-f", topology, "--refresh-only", "--detailed-exitcode"]);
    assert_eq!(only.status.code(), Some(2), "{}", text(&only));
    let out = String::from_utf8_lossy(&only.stdout).into_owned();
    assert!(out.starts_with("Changed outside kkp (3 objects):"), "{out}");
    assert!(out.contains("cluster/qs4k7x2mzp/configmap/audit-config (ConfigMap cluster-qs4k7x2mzp/audit-config on seed europe): deleted"));
    assert!(out.contains("~ spec.replicas: 2 -> 7"), "{out}");
    assert!(out.contains("cluster/qs4k7x2mzp/secret/apiserver-tls") && out.contains("certificate replaced"), "{out}");
    assert!(!out.contains("kkp will perform"), "--refresh-only plans nothing: {out}");

    let plan = ws.kkp(&["plan", "-f", topology, "--refresh", "--json"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let reasons: Vec<(String, String)> = plan["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["address"].as_str().unwrap().to_string(), a["reasons"][0]["code"].as_str().unwrap().to_string()))
        .collect();
    for (address, code) in [
        ("cluster/qs4k7x2mzp/configmap/audit-config", "deleted-outside-kkp"),
        ("cluster/qs4k7x2mzp/deployment/apiserver", "changed-outside-kkp"),
        ("cluster/qs4k7x2mzp/secret/apiserver-tls", "certificate-replaced-outside-kkp"),
    ] {
        assert!(reasons.contains(&(address.to_string(), code.to_string())), "{address}: {reasons:?}");
    }

    let applied = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--refresh", "--auto-approve"]);
    assert!(applied.status.success(), "{}", text(&applied));
    assert!(std::fs::read_to_string(&deployment).unwrap().contains("replicas: 2"));
    assert!(ns.join("configmap-audit-config.yaml").is_file());
    let again = ws.kkp(&["plan", "-f", topology, "--refresh", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));

    // apply --refresh-only (no target flag: the directory the state recorded) records a hand
    // edit as the truth; the next plain plan restores it.
    std::fs::write(&deployment, std::fs::read_to_string(&deployment).unwrap().replace("replicas: 2", "replicas: 5")).unwrap();
    let only = ws.kkp(&["apply", "-f", topology, "--refresh-only", "--auto-approve"]);
    assert!(only.status.success() && text(&only).contains("Recorded 1 nodes"), "{}", text(&only));
    assert!(std::fs::read_to_string(&deployment).unwrap().contains("replicas: 5"), "nothing was written");
    let plan = ws.kkp(&["plan", "-f", topology]);
    assert!(text(&plan).contains("~ spec.replicas: 5 -> 2"), "{}", text(&plan));
}

#[test]
fn an_apply_to_another_directory_than_the_state_recorded_is_refused() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    assert!(ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]).status.success());
    let state: Value = serde_json::from_slice(&std::fs::read(ws.path().join("kkp.state.json")).unwrap()).unwrap();
    let recorded = ws.path().canonicalize().unwrap().join("out");
    assert_eq!(state["targets"]["europe"], serde_json::json!({"type": "dir", "path": recorded.to_str().unwrap()}));

    let other = ws.kkp(&["apply", "-f", topology, "--dir", "elsewhere", "--auto-approve"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        text(&other)
            .contains(&format!("seed europe: the state was applied to directory {}, but this run targets directory", recorded.display())),
        "{}",
        text(&other)
    );
    assert!(text(&other).contains(&format!("fix: run with the target the state was applied to (--dir {})", recorded.display())));
    assert!(!ws.path().join("elsewhere").exists(), "nothing was written");
}

#[test]
fn state_commands_list_show_remove_pull_and_push() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    assert!(ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]).status.success());

    let list = ws.kkp(&["state", "list", "cluster/qs4k7x2mzp"]);
    assert!(list.status.success(), "{}", text(&list));
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(listed.lines().all(|l| l.starts_with("cluster/qs4k7x2mzp/")) && listed.contains("cluster/qs4k7x2mzp/secret/ca\n"), "{listed}");

    for address in ["cluster/qs4k7x2mzp/secret/ca", "cluster/qs4k7x2mzp/secret/cloud-config", "cluster/qs4k7x2mzp/secret/admin-kubeconfig"]
    {
        let show = ws.kkp(&["state", "show", address]);
        assert!(show.status.success(), "{}", text(&show));
        let shown = text(&show);
        assert!(shown.contains(&format!("address:  {address}")) && shown.contains("seed:     europe (directory "), "{shown}");
        for secret in ["BEGIN", "PRIVATE", "client-key-data"] {
            assert!(!shown.contains(secret), "{address} shows {secret}: {shown}");
        }
        // Nor any of the data the Secret holds on the seed.
        let name = address.rsplit('/').next().unwrap();
        let on_seed = std::fs::read_to_string(ws.path().join(format!("out/europe/cluster-qs4k7x2mzp/secret-{name}.yaml"))).unwrap();
        let on_seed: Value = serde_saphyr::from_str(&on_seed).unwrap();
        for value in on_seed["data"].as_object().unwrap().values() {
            let value = value.as_str().unwrap();
            assert!(value.len() < 16 || !shown.contains(&value[..16]), "{address} shows its data: {shown}");
        }
    }
    let ca = text(&ws.kkp(&["state", "show", "cluster/qs4k7x2mzp/secret/ca"]));
    assert!(
        ca.contains("role:     certificate-authority") && ca.contains("fingerprint: sha256:") && ca.contains("not after:   20"),
        "{ca}"
    );

    // output: the URL, the public CA, where the admin kubeconfig is; never key material.
    let output = ws.kkp(&["output", "-f", topology, "qs4k7x2mzp"]);
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("apiserver URL:    https://qs4k7x2mzp.europe.kkp.example.com:443"), "{shown}");
    assert!(shown.contains("-----BEGIN CERTIFICATE-----") && !shown.contains("PRIVATE KEY"), "{shown}");
    assert!(shown.contains("cluster-qs4k7x2mzp/secret-admin-kubeconfig.yaml"), "{shown}");

    // rm forgets; the file stays, and the next plan creates (adopts) it again.
    let file = ws.path().join("out/europe/cluster-qs4k7x2mzp/configmap-audit-config.yaml");
    let rm = ws.kkp(&["state", "rm", "cluster/qs4k7x2mzp/configmap/audit-config"]);
    assert!(rm.status.success() && text(&rm).contains("Removed 1 nodes"), "{}", text(&rm));
    assert!(file.is_file());
    assert!(ws.path().join("kkp.state.json.backup").is_file());
    let plan = ws.kkp(&["plan", "-f", topology]);
    assert!(text(&plan).contains("+ cluster/qs4k7x2mzp/configmap/audit-config"), "{}", text(&plan));
    let missing = ws.kkp(&["state", "rm", "cluster/nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing).contains("cluster/nope matches nothing in the state"), "{}", text(&missing));

    // pull and push round-trip; another lineage is refused.
    let pulled = ws.kkp(&["state", "pull"]);
    let path = ws.path().join("pulled.json");
    std::fs::write(&path, &pulled.stdout).unwrap();
    let push = ws.kkp(&["state", "push", path.to_str().unwrap()]);
    assert!(push.status.success(), "{}", text(&push));
    let mut other: Value = serde_json::from_slice(&pulled.stdout).unwrap();
    other["lineage"] = "someone-else".into();
    std::fs::write(&path, other.to_string()).unwrap();
    let refused = ws.kkp(&["state", "push", path.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused).contains("has lineage someone-else"), "{}", text(&refused));

    // rm --seed forgets the seed and its target: another directory is then accepted.
    assert!(ws.kkp(&["state", "rm", "--seed", "europe"]).status.success());
    assert_eq!(ws.kkp(&["state", "list"]).stdout, b"");
    let moved = ws.kkp(&["apply", "-f", topology, "--dir", "elsewhere", "--auto-approve"]);
    assert!(moved.status.success(), "{}", text(&moved));
}

#[test]
fn import_into_a_lost_state_from_a_directory_gives_a_plan_without_changes() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    assert!(ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]).status.success());
    let written = files(&ws.path().join("out"));
    std::fs::remove_file(ws.path().join("kkp.state.json")).unwrap();
    std::fs::remove_dir_all(ws.path().join("kkp.state.json.objects")).unwrap();

    let import = ws.kkp(&["import", "-f", topology, "--dir", "out", "--auto-approve"]);
    let report = text(&import);
    assert!(import.status.success(), "{report}");
    for group in ["cluster qs4k7x2mzp", "cluster qs9d3vh6rt", "seed europe"] {
        assert!(report.contains(&format!("{group}: adopted, no changes")), "{report}");
    }
    assert!(report.contains("0 objects given kkp's ownership label"), "{report}");
    assert_eq!(files(&ws.path().join("out")), written, "import wrote nothing to the seed");
    let plan = ws.kkp(&["plan", "-f", topology, "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    // A second import has nothing left to adopt and changes nothing.
    let again = ws.kkp(&["import", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert!(again.status.success() && text(&again).contains("Imported 0 nodes"), "{}", text(&again));
}

/// The state's step timings as JSON, and a way to write them back.
fn state_json(ws: &Workspace) -> Value {
    serde_json::from_slice(&std::fs::read(ws.path().join("kkp.state.json")).unwrap()).unwrap()
}

#[test]
fn a_second_apply_expects_the_duration_the_first_recorded() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    let first = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("Expected duration: unknown (no earlier apply recorded how long its steps took; this one will)"),
        "{}",
        text(&first)
    );
    // The state keeps one entry per target kind and step, not per node.
    let state = state_json(&ws);
    let timings = &state["timings"];
    assert_eq!(timings["applies"], 1);
    let steps = timings["byTarget"]["dir"].as_object().unwrap();
    assert!(steps.len() < 30 && steps.contains_key("certificate-authority:issue") && steps.contains_key("workload"), "{steps:?}");
    let workload = steps["workload"]["meanMs"].as_u64().unwrap();

    // An upgrade updates four Deployments that do not depend on each other.
    let file = ws.path().join("quickstart/kkp.yaml");
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replace("version: 1.33.5", "version: 1.34.2")).unwrap();
    assert!(ws.kkp(&["plan", "-f", topology, "-o", "up.plan.json"]).status.success());

    // Other timings change the estimate, never the plan: the saved plan is byte-identical.
    let saved_state = std::fs::read(ws.path().join("kkp.state.json")).unwrap();
    let mut slow = state.clone();
    slow["timings"]["byTarget"]["dir"]["workload"]["meanMs"] = 65_000.into();
    std::fs::write(ws.path().join("kkp.state.json"), serde_json::to_vec(&slow).unwrap()).unwrap();
    assert!(ws.kkp(&["plan", "-f", topology, "-o", "again.plan.json"]).status.success());
    assert_eq!(std::fs::read(ws.path().join("up.plan.json")).unwrap(), std::fs::read(ws.path().join("again.plan.json")).unwrap());
    // Printed before the confirmation (which, without a terminal, is refused).
    let asked = ws.command(&["apply", "-f", topology, "--dir", "out"]).stdin(std::process::Stdio::null()).output().unwrap();
    let shown = text(&asked);
    let at = shown.find("Expected duration: about 1m05s (from timings of 1 earlier apply)").unwrap_or_else(|| panic!("{shown}"));
    assert!(at < shown.find("stdin is not a terminal").unwrap(), "{shown}");
    std::fs::write(ws.path().join("kkp.state.json"), saved_state).unwrap();

    // Applied with --json: the estimate event comes first, from the first apply's timings.
    let applied = ws.kkp(&["apply", "up.plan.json", "--dir", "out", "--json"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let events: Vec<Value> = String::from_utf8(applied.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let estimate = &events[0];
    assert_eq!(estimate["event"], "estimate", "{events:?}");
    assert_eq!(estimate["wave"], Value::Null);
    assert_eq!(estimate["from_applies"], 1);
    assert_eq!(estimate["untimed_actions"], 0);
    assert_eq!(estimate["work_ms"].as_u64(), Some(4 * workload), "{estimate}");
    assert_eq!(estimate["critical_path_ms"].as_u64(), Some(workload), "{estimate}");
    assert_eq!(estimate["expected_ms"].as_u64(), Some(workload), "{estimate}");
    // And this apply's timings are folded in.
    let timings = &state_json(&ws)["timings"];
    assert_eq!(timings["applies"], 2);
    assert_eq!(timings["byTarget"]["dir"]["workload"]["nodes"].as_u64(), steps["workload"]["nodes"].as_u64().map(|n| n + 4));
}

#[test]
fn an_import_saved_as_a_plan_is_applied_by_its_digest_and_refused_if_a_ca_changed() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    assert!(ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]).status.success());
    let written = files(&ws.path().join("out"));
    let state_file = ws.path().join("kkp.state.json");
    let applied_state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    std::fs::remove_file(&state_file).unwrap();
    std::fs::remove_dir_all(ws.path().join("kkp.state.json.objects")).unwrap();

    // Saved, not recorded: the plan is printed with the verdicts and nothing is written.
    let saved = ws.kkp(&["import", "-f", topology, "--dir", "out", "-o", "import.plan"]);
    let out = text(&saved);
    assert!(saved.status.success(), "{out}");
    assert!(out.contains("note: cluster qs4k7x2mzp: adopted, no changes"), "{out}");
    assert!(out.contains("<- cluster/qs4k7x2mzp/secret/ca") && out.contains("to import"), "{out}");
    assert!(!state_file.exists(), "import -o records nothing");
    let plan_bytes = std::fs::read(ws.path().join("import.plan")).unwrap();
    let plan_text = String::from_utf8(plan_bytes.clone()).unwrap();
    for marker in ["PRIVATE KEY", "BEGIN"] {
        assert!(!plan_text.contains(marker), "the import plan holds {marker:?}");
    }
    // Nor any of the CA's key, base64 as the Secret holds it or as PEM lines.
    let ca_secret: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(ws.path().join("out/europe/cluster-qs4k7x2mzp/secret-ca.yaml")).unwrap()).unwrap();
    let key_b64 = ca_secret["data"]["ca.key"].as_str().unwrap();
    let key_pem = String::from_utf8(base64::Engine::decode(&base64::engine::general_purpose::STANDARD, key_b64).unwrap()).unwrap();
    assert!(!plan_text.contains(&key_b64[40..80]));
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!plan_text.contains(line), "the import plan holds a line of the CA's key");
    }
    let plan: Value = serde_json::from_slice(&plan_bytes).unwrap();
    let digest = plan["digest"].as_str().unwrap().to_string();
    let actions = plan["plan"]["actions"].as_array().unwrap();
    assert!(actions.iter().all(|a| a["action"] == "import" && a["class"] == "import"), "{plan_text}");
    let ca = actions.iter().find(|a| a["address"] == "cluster/qs4k7x2mzp/secret/ca").unwrap();
    assert_eq!(
        ca["import"]["certificate"]["fingerprint"], applied_state["nodes"]["cluster/qs4k7x2mzp/secret/ca"]["certificate"]["fingerprint"],
        "the plan carries the live CA's fingerprint"
    );
    // Same inputs, byte-identical plan; --json prints it with its digest, as kkp plan --json does.
    let json = ws.kkp(&["import", "-f", topology, "--dir", "out", "-o", "again.plan", "--json"]);
    assert!(json.status.success(), "{}", text(&json));
    assert_eq!(std::fs::read(ws.path().join("again.plan")).unwrap(), plan_bytes);
    let printed: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(printed["digest"], plan["digest"]);
    assert_eq!(printed["plan"]["notices"][0]["verdict"]["result"], "adopted-no-changes");

    // A wrong digest is refused.
    let wrong = ws.kkp(&["apply", "import.plan", "--dir", "out", "--expect-digest", "sha256:0000"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(text(&wrong).contains("not the expected sha256:0000"), "{}", text(&wrong));
    assert!(!state_file.exists());

    // A CA replaced after the plan was made: refused as a whole, the Secret left as it is.
    let ca_file = ws.path().join("out/europe/cluster-qs4k7x2mzp/secret-ca.yaml");
    let original = std::fs::read(&ca_file).unwrap();
    let other_ca = std::fs::read(ws.path().join("out/europe/cluster-qs9d3vh6rt/secret-ca.yaml")).unwrap();
    let swapped = String::from_utf8(other_ca).unwrap().replace("qs9d3vh6rt", "qs4k7x2mzp");
    std::fs::write(&ca_file, &swapped).unwrap();
    let refused = ws.kkp(&["apply", "import.plan", "--dir", "out", "--expect-digest", &digest]);
    let report = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{report}");
    assert!(report.contains("changed since the import plan was made") && report.contains("cluster/qs4k7x2mzp/secret/ca"), "{report}");
    assert_eq!(std::fs::read(&ca_file).unwrap(), swapped.as_bytes(), "the changed CA is never overwritten");
    assert!(!state_file.exists(), "nothing was recorded");

    // As reviewed: recorded, the seed unchanged, and the next refreshed plan is empty.
    std::fs::write(&ca_file, &original).unwrap();
    let applied = ws.kkp(&["apply", "import.plan", "--dir", "out", "--expect-digest", &digest]);
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(files(&ws.path().join("out")), written, "an import plan writes nothing to a directory kkp wrote");
    let recorded: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(recorded["nodes"].as_object().unwrap().len(), applied_state["nodes"].as_object().unwrap().len());
    let plan = ws.kkp(&["plan", "-f", topology, "--dir", "out", "--refresh", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    // Applied once: the state holds its nodes now, so the same plan is stale.
    let stale = ws.kkp(&["apply", "import.plan", "--dir", "out"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale).contains("the state changed since the plan was made"), "{}", text(&stale));
}
