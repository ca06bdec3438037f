//! Every file kkp reads is untrusted: a damaged or missing state, journal or pack gives a
//! clear error naming the file and the fix, never a panic and never a deletion of an object
//! the topology wants.

mod common;

use common::{Workspace, files, repo, text};

/// Applies the quickstart example to `out/` and returns the topology path.
fn applied(ws: &Workspace) -> String {
    let topology = repo().join("examples/quickstart").to_str().unwrap().to_string();
    let out = ws.kkp(&["apply", "-f", &topology, "--dir", "out", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    topology
}

fn state_text(ws: &Workspace) -> String {
    std::fs::read_to_string(ws.path().join("kkp.state.json")).unwrap()
}

#[test]
fn one_changed_byte_in_a_state_address_is_refused_and_deletes_nothing() {
    let ws = Workspace::new();
    let topology = applied(&ws);
    let before = files(&ws.path().join("out"));
    let address = "\"cluster/qs4k7x2mzp/secret/ca\"";
    let state = state_text(&ws);
    assert!(state.contains(address));
    std::fs::write(ws.path().join("kkp.state.json"), state.replace(address, "\"cluster/qs4k7x2mzp/secret/cb\"")).unwrap();

    for command in [vec!["plan", "-f", &topology], vec!["apply", "-f", &topology, "--dir", "out", "--auto-approve"]] {
        let out = ws.kkp(&command);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("kkp.state.json: not a kkp state file: `cluster/qs4k7x2mzp/secret/cb`"), "{err}");
        assert!(err.contains("fix: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_eq!(files(&ws.path().join("out")), before, "no object was deleted");
}

#[test]
fn a_missing_or_empty_state_beside_earlier_traces_is_refused_unless_new_state() {
    let ws = Workspace::new();
    let topology = applied(&ws);
    std::fs::remove_file(ws.path().join("kkp.state.json")).unwrap();
    let plan = ws.kkp(&["plan", "-f", &topology]);
    assert_eq!(plan.status.code(), Some(1), "{}", text(&plan));
    assert!(text(&plan).contains("there is no state"), "{}", text(&plan));
    assert!(text(&plan).contains("--new-state"), "{}", text(&plan));

    // An empty file is no better; only the objects on the target are left.
    std::fs::write(ws.path().join("kkp.state.json"), "").unwrap();
    std::fs::remove_dir_all(ws.path().join("kkp.state.json.objects")).unwrap();
    std::fs::remove_file(ws.path().join("kkp.state.json.backup")).ok();
    let apply = ws.kkp(&["apply", "-f", &topology, "--dir", "out", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    assert!(text(&apply).contains("already holds objects"), "{}", text(&apply));

    let fresh = ws.kkp(&["apply", "-f", &topology, "--dir", "out", "--auto-approve", "--new-state"]);
    assert!(fresh.status.success(), "{}", text(&fresh));
}

#[test]
fn an_apply_while_another_holds_the_lock_is_refused_as_locked_not_as_stateless() {
    // The holder's objects can be out before its first records: the second apply must say who
    // holds the state, not that there is none.
    let ws = Workspace::new();
    let topology = applied(&ws);
    std::fs::remove_file(ws.path().join("kkp.state.json")).unwrap();
    std::fs::remove_dir_all(ws.path().join("kkp.state.json.objects")).unwrap();
    std::fs::remove_file(ws.path().join("kkp.state.json.backup")).ok();
    let _held = kkp::state::lock::LockGuard::acquire(&ws.path().join("kkp.state.json.lock"), "apply").unwrap();
    let apply = ws.kkp(&["apply", "-f", &topology, "--dir", "out", "--auto-approve"]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    assert!(text(&apply).contains("the state is locked"), "{}", text(&apply));
    assert!(text(&apply).contains(&format!("(pid {})", std::process::id())), "{}", text(&apply));
}

#[test]
fn a_saved_plan_applied_without_a_state_says_there_is_no_state() {
    let ws = Workspace::new();
    let topology = applied(&ws);
    let file = ws.path().join("quickstart.yaml");
    let yaml = std::fs::read_to_string(repo().join("examples/quickstart/kkp.yaml")).unwrap().replace("version: 1.33.5", "version: 1.34.2");
    std::fs::write(&file, yaml).unwrap();
    let out = ws.kkp(&["plan", "-f", file.to_str().unwrap(), "-o", "plan.json"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ws.kkp(&["apply", "plan.json", "-f", &topology, "--dir", "elsewhere", "--auto-approve", "--state", "elsewhere.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("there is no state here"), "{}", text(&out));
    assert!(!text(&out).contains("the state changed"), "{}", text(&out));
}

#[test]
fn a_corrupt_journal_record_stops_the_load_unless_the_tail_is_discarded() {
    let ws = Workspace::new();
    let topology = applied(&ws);
    // The journal an apply killed after three records would leave, with the middle one bad.
    let state: serde_json::Value = serde_json::from_str(&state_text(&ws)).unwrap();
    let header = serde_json::json!({"journal": 1, "lineage": state["lineage"], "serial": state["serial"]});
    let remove = |a: &str| serde_json::json!({"op": "remove", "address": a}).to_string();
    let journal = format!(
        "{header}\n{}\n{{\"op\":\"put\",\"address\":\n{}\n",
        remove("cluster/qs4k7x2mzp/configmap/zz-gone"),
        remove("cluster/qs4k7x2mzp/configmap/zz-gone-too")
    );
    std::fs::write(ws.path().join("kkp.state.json.journal"), journal).unwrap();
    let out = ws.kkp(&["plan", "-f", &topology]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("kkp.state.json.journal: line 3"), "{}", text(&out));
    assert!(text(&out).contains("--discard-journal-tail"), "{}", text(&out));

    let out = ws.kkp(&["apply", "-f", &topology, "--dir", "out", "--auto-approve", "--discard-journal-tail"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!ws.path().join("kkp.state.json.journal").exists());
}

#[test]
fn leftovers_of_an_interrupted_clean_up_are_removed_by_the_next_apply() {
    let ws = Workspace::new();
    let topology = applied(&ws);
    // Killed after the state was written, before its journal and the backup staging were removed.
    let state: serde_json::Value = serde_json::from_str(&state_text(&ws)).unwrap();
    let stale = serde_json::json!({"journal": 1, "lineage": state["lineage"], "serial": state["serial"].as_u64().unwrap() - 1});
    std::fs::write(ws.path().join("kkp.state.json.journal"), format!("{stale}\n")).unwrap();
    std::fs::write(ws.path().join("kkp.state.json.backup.tmp"), "{}").unwrap();
    std::fs::write(ws.path().join("kkp.state.json.objects/.pack-x.idx.tmp"), "").unwrap();
    std::fs::write(ws.path().join("kkp.state.json.objects/pack-x.pack"), "").unwrap();
    std::fs::write(ws.path().join("kkp.state.json.lock.0b7e.tmp"), "{}").unwrap();

    let out = ws.kkp(&["apply", "-f", &topology, "--dir", "out", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    for leftover in [
        "kkp.state.json.journal",
        "kkp.state.json.backup.tmp",
        "kkp.state.json.objects/.pack-x.idx.tmp",
        "kkp.state.json.objects/pack-x.pack",
    ] {
        assert!(!ws.path().join(leftover).exists(), "{leftover} is left behind");
    }
}

#[test]
fn damaged_packs_neither_panic_nor_pass_for_the_applied_body() {
    let ws = Workspace::new();
    let topology = applied(&ws);
    let objects = ws.path().join("kkp.state.json.objects");
    let indexes: Vec<_> =
        std::fs::read_dir(&objects).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "idx")).collect();
    assert!(!indexes.is_empty());
    for idx in &indexes {
        let text = std::fs::read_to_string(idx).unwrap();
        // Every length becomes absurd: a capacity overflow, a huge allocation, an overflowing range.
        let damaged: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                let digest = l.split(' ').next().unwrap();
                match i % 3 {
                    0 => format!("{digest} 0 18446744073709551615\n"),
                    1 => format!("{digest} 0 4294967296000\n"),
                    _ => format!("{digest} 18446744073709551000 18446744073709551000\n"),
                }
            })
            .collect();
        std::fs::write(idx, damaged).unwrap();
    }
    let file = ws.path().join("quickstart.yaml");
    let yaml = std::fs::read_to_string(repo().join("examples/quickstart/kkp.yaml")).unwrap().replace("version: 1.33.5", "version: 1.34.2");
    std::fs::write(&file, yaml).unwrap();
    let plan = ws.kkp(&["plan", "-f", file.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", text(&plan));
    // Without the prior body the update is still an update, never a delete-and-create.
    assert!(text(&plan).contains(" 0 to replace, 0 to destroy"), "{}", text(&plan));
    for _ in 0..2 {
        let apply = ws.kkp(&["apply", "-f", file.to_str().unwrap(), "--dir", "out", "--auto-approve"]);
        assert!(apply.status.success(), "{}", text(&apply));
    }
    let _ = topology;
}
