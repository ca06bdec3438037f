//! What a new user hits first: pipes, JSON streams, error text, stdin, odd files, colours.

mod common;

use common::{Workspace, repo, text};
use std::io::Write;
use std::process::Stdio;

fn quickstart() -> String {
    repo().join("examples/quickstart").to_str().unwrap().to_string()
}

#[test]
fn a_closed_pipe_ends_plan_quietly() {
    let ws = Workspace::new();
    let mut child = ws.command(&["plan", "-f", &quickstart()]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // `kkp plan | head -0`: the reader goes away before kkp writes.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn apply_json_prints_only_ndjson_on_stdout() {
    let ws = Workspace::new();
    let out = ws.kkp(&["apply", "-f", &quickstart(), "--dir", "out", "--auto-approve", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let events: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"))).collect();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "summary", "{last}");
    assert_eq!(last["result"], "complete", "{last}");
    assert_eq!(last["applied"].as_u64().unwrap() as usize, events.iter().filter(|e| e["event"] == "finished").count());
    let again = ws.kkp(&["apply", "-f", &quickstart(), "--dir", "out", "--auto-approve", "--json"]);
    let line: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(line["result"], "no-changes");
}

#[test]
fn an_io_error_prints_its_cause_once() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path().join("state-dir")).unwrap();
    let out = ws.kkp(&["plan", "-f", &quickstart(), "--state", "state-dir"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("Is a directory").count(), 1, "{stderr}");
}

#[test]
fn dash_reads_the_topology_from_stdin() {
    let ws = Workspace::new();
    let yaml = std::fs::read(repo().join("examples/quickstart/kkp.yaml")).unwrap();
    let mut child =
        ws.command(&["plan", "-f", "-", "--json"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&yaml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let from_stdin: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_file: serde_json::Value = serde_json::from_slice(&ws.kkp(&["plan", "-f", &quickstart(), "--json"]).stdout).unwrap();
    assert_eq!(from_stdin["plan"]["actions"], from_file["plan"]["actions"]);
}

#[test]
fn input_that_is_not_utf8_is_refused_with_its_byte_offset() {
    let ws = Workspace::new();
    let mut bytes = b"apiVersion: kubermatic.k8c.io/v1\nkind: Seed\nmetadata:\n  name: b\xffd\n".to_vec();
    bytes.extend_from_slice(b"spec: {}\n");
    std::fs::write(ws.path().join("bad.yaml"), &bytes).unwrap();
    let out = ws.kkp(&["validate", "-f", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("bad.yaml:4: byte 63 is not UTF-8"), "{}", text(&out));
}

#[test]
fn a_fifo_or_dangling_symlink_named_yaml_is_an_error_not_skipped() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    std::os::unix::fs::symlink(ws.path().join("nowhere.yaml"), topology.join("extra.yaml")).unwrap();
    let out = ws.kkp(&["validate", "-f", topology.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("extra.yaml: named like a topology file, but it is a symbolic link to nothing"), "{}", text(&out));
    std::fs::remove_file(topology.join("extra.yaml")).unwrap();

    let fifo = topology.join("pipe.yaml");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let out = ws.kkp(&["validate", "-f", topology.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("pipe.yaml: named like a topology file, but it is not a regular file"), "{}", text(&out));
}

#[test]
fn graph_of_one_cluster_prints_that_clusters_critical_path() {
    let ws = Workspace::new();
    let topology = repo().join("examples/multi-seed");
    for cluster in ["eu6tj3nbqx", "us4xk2ptmw", "us2mw9dfkc"] {
        let out = ws.kkp(&["graph", "-f", topology.to_str().unwrap(), "--cluster", cluster]);
        assert!(out.status.success(), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let path = stderr.split("critical path").nth(1).unwrap();
        let last = path.trim().rsplit(" -> ").next().unwrap();
        assert!(last.starts_with(&format!("cluster/{cluster}/")), "{stderr}");
    }
}

#[test]
fn colours_appear_on_a_terminal_unless_turned_off() {
    let ws = Workspace::new();
    let kkp = env!("CARGO_BIN_EXE_kkp");
    let run = |extra: &str, env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &format!("{kkp} plan -f {} {extra}", quickstart()), "/dev/null"]).current_dir(ws.path()).env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        String::from_utf8_lossy(&cmd.output().unwrap().stdout).to_string()
    };
    assert!(run("", &[]).contains("\x1b[32m"), "no colour on a terminal");
    assert!(!run("--no-color", &[]).contains("\x1b["));
    assert!(!run("", &[("NO_COLOR", "1")]).contains("\x1b["));
}
