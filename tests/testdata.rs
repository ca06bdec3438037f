//! Inputs from testdata/: every invalid topology gives exactly its recorded error, and
//! manifests in KKP's real shape load and plan.

mod common;

use common::{Workspace, repo, text};

#[test]
fn every_invalid_topology_gives_its_recorded_error() {
    let dir = repo().join("testdata/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let relative = path.strip_prefix(repo()).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kkp"))
            .args(["validate", "-f"])
            .arg(relative)
            .current_dir(repo())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}: {}", relative.display(), text(&out));
        let expected =
            std::fs::read_to_string(path.with_extension("stderr")).unwrap_or_else(|_| panic!("{} has no .stderr", relative.display()));
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{}", relative.display());
        assert!(expected.contains(&format!("{}:", relative.display())) && expected.contains("fix: "), "errors name file:line and a fix");
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} invalid inputs found");
}

#[test]
fn manifests_in_kkps_own_shape_load_and_plan() {
    let ws = Workspace::new();
    let dir = repo().join("testdata/kkp-manifests");
    let validate = ws.kkp(&["validate", "-f", dir.to_str().unwrap()]);
    let report = text(&validate);
    assert!(validate.status.success(), "{report}");
    // Unmodelled fields are listed; status and server-side metadata are not.
    assert!(report.contains("field `spec.nodeportProxy` is not modelled by kkp"), "{report}");
    assert!(report.contains("field `spec.containerRuntime` is not modelled by kkp"), "{report}");
    assert!(!report.contains("status"), "{report}");
    assert!(!report.contains("managedFields") && !report.contains("resourceVersion"), "{report}");

    let plan = ws.kkp(&["plan", "-f", dir.to_str().unwrap(), "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    assert!(text(&plan).contains("cluster/avzn7qmlpt/statefulset/etcd"), "{}", text(&plan));
}

#[test]
fn seeds_and_clusters_without_a_configuration_plan_with_kkps_defaults() {
    let ws = Workspace::new();
    let quickstart = std::fs::read_to_string(repo().join("examples/quickstart/kkp.yaml")).unwrap();
    let without = &quickstart[quickstart.find("---\napiVersion: kubermatic.k8c.io/v1\nkind: Seed").unwrap() + 4..];
    std::fs::write(ws.path().join("topology.yaml"), without).unwrap();
    let validate = ws.kkp(&["validate", "-f", "topology.yaml"]);
    assert!(validate.status.success(), "{}", text(&validate));
    assert!(
        text(&validate).contains("no KubermaticConfiguration among the documents: KKP's defaults apply, with base domain kkp.local"),
        "{}",
        text(&validate)
    );
    let plan = ws.kkp(&["plan", "-f", "topology.yaml"]);
    assert!(text(&plan).contains("root-ca.qs4k7x2mzp.europe.kkp.local"), "{}", text(&plan));
}
