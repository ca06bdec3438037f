//! An apply killed half way, interrupted with Ctrl-C, and two applies at once.

mod common;

use common::{Workspace, files, repo, text};
use std::time::{Duration, Instant};

/// Lines in the journal of a running apply (its progress), 0 when there is none.
fn journal_lines(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.path().join("kkp.state.json.journal")).map(|t| t.lines().count()).unwrap_or(0)
}

/// What a first apply of `topology` does: its actions, and how many of them write objects.
fn first_plan(ws: &Workspace, topology: &str) -> (usize, usize) {
    let plan = ws.kkp(&["plan", "-f", topology, "--json"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let actions = plan["plan"]["actions"].as_array().unwrap();
    (actions.len(), actions.iter().filter(|a| a.get("object").is_some()).count())
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_apply_killed_half_way_loses_and_duplicates_nothing() {
    let ws = Workspace::new();
    let topology = repo().join("examples/multi-seed");
    let topology = topology.to_str().unwrap();
    let (actions, objects) = first_plan(&ws, topology);
    let mut child = ws
        .command(&["apply", "-f", topology, "--dir", "out", "--auto-approve", "--parallelism", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a good part, but not all, of the work is recorded.
    wait_for("progress in the journal", || journal_lines(&ws) > 40);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let recorded = journal_lines(&ws);
    assert!(recorded < actions, "the apply finished before it could be killed ({recorded} records)");

    // The state loads (the journal is replayed) and the plan covers only what is missing.
    let plan = ws.kkp(&["plan", "-f", topology, "--json"]);
    assert!(plan.status.success(), "{}", text(&plan));
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let remaining = plan["plan"]["summary"]["add"].as_u64().unwrap() + plan["plan"]["summary"]["change"].as_u64().unwrap();
    assert!(remaining > 0 && (remaining as usize) < actions, "{remaining} actions remain");

    let resumed = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(text(&resumed).contains("Recovered"), "{}", text(&resumed));
    assert_eq!(ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"]).status.code(), Some(0));

    // Every node of the state has its object, and every object belongs to a node.
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("kkp.state.json")).unwrap()).unwrap();
    let mut expected: Vec<String> = state["nodes"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|n| {
            let o = n.get("object")?;
            let folder = o.get("namespace").and_then(|v| v.as_str()).unwrap_or("_cluster");
            Some(format!("{}/{folder}/{}-{}.yaml", n["seed"].as_str()?, o["kind"].as_str()?.to_lowercase(), o["name"].as_str()?))
        })
        .collect();
    expected.sort();
    assert_eq!(files(&ws.path().join("out")), expected);
    assert_eq!(expected.len(), objects);
    // Every cluster is recorded complete, so the next plan skips rendering all five.
    assert_eq!(state["clusters"].as_object().unwrap().len(), 5);
}

#[test]
fn a_second_apply_is_refused_naming_the_holder() {
    let ws = Workspace::new();
    let topology = repo().join("examples/multi-seed");
    let topology = topology.to_str().unwrap();
    let mut first = ws
        .command(&["apply", "-f", topology, "--dir", "out", "--auto-approve", "--parallelism", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first apply to take the lock", || journal_lines(&ws) > 0);
    let second = ws.kkp(&["apply", "-f", topology, "--dir", "out", "--auto-approve"]);
    let still_running = first.try_wait().unwrap().is_none();
    first.kill().ok();
    first.wait().unwrap();
    assert!(still_running, "the first apply ended before the second was tried");
    assert_eq!(second.status.code(), Some(1));
    let message = text(&second);
    assert!(message.contains("the state is locked"), "{message}");
    assert!(message.contains(&format!("(pid {})", first.id())), "{message}");
    assert!(message.contains("for `apply`"), "{message}");
    assert!(message.contains("kkp force-unlock"), "{message}");
}

#[test]
fn ctrl_c_starts_nothing_new_and_saves_the_state() {
    let ws = Workspace::new();
    let topology = repo().join("examples/multi-seed");
    let topology = topology.to_str().unwrap();
    let (actions, _) = first_plan(&ws, topology);
    let child = ws
        .command(&["apply", "-f", topology, "--dir", "out", "--auto-approve", "--parallelism", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The header, the two seeds' target records, and at least 10 nodes.
    wait_for("progress in the journal", || journal_lines(&ws) > 12);
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(text(&out).contains("Interrupted"), "{}", text(&out));
    assert!(text(&out).contains("not started"), "{}", text(&out));
    // At most one line per cluster about what did not run, and how to resume.
    assert!(!text(&out).lines().any(|l| l.trim_start().starts_with("skipped") || l.contains(": skipped")), "{}", text(&out));
    // Five clusters on two seeds.
    assert!(text(&out).lines().filter(|l| l.contains("not started:")).count() <= 7, "{}", text(&out));
    assert!(text(&out).contains("run the same command again"), "{}", text(&out));
    // The state was compacted: no journal is left, and the plan shows only the rest.
    assert!(!ws.path().join("kkp.state.json.journal").exists());
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("kkp.state.json")).unwrap()).unwrap();
    let recorded = state["nodes"].as_object().unwrap().len();
    // More than 12 journal lines: the header, two target records and at least 10 nodes.
    assert!((10..actions).contains(&recorded), "{recorded} nodes recorded");
    let plan = ws.kkp(&["plan", "-f", topology, "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["plan"]["summary"]["add"].as_u64().unwrap() as usize, actions - recorded);
}

#[test]
fn a_plan_during_an_apply_says_so_and_force_unlock_asks_before_breaking_a_live_lock() {
    let ws = Workspace::new();
    let topology = repo().join("examples/multi-seed");
    let topology = topology.to_str().unwrap();
    let mut apply = ws
        .command(&["apply", "-f", topology, "--dir", "out", "--auto-approve", "--parallelism", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the apply to take the lock", || journal_lines(&ws) > 0);
    let plan = ws.kkp(&["plan", "-f", topology]);
    let lock: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("kkp.state.json.lock")).unwrap()).unwrap();
    let unlock = ws.kkp(&["force-unlock", lock["id"].as_str().unwrap()]);
    let lock_kept = ws.path().join("kkp.state.json.lock").exists();
    let still_running = apply.try_wait().unwrap().is_none();
    apply.kill().ok();
    apply.wait().unwrap();
    assert!(still_running, "the apply ended before the checks ran");

    assert!(plan.status.success(), "{}", text(&plan));
    assert!(text(&plan).contains("`apply` by") && text(&plan).contains("is running on this state"), "{}", text(&plan));
    assert_eq!(unlock.status.code(), Some(1), "{}", text(&unlock));
    assert!(text(&unlock).contains(&format!("pid {} is running on this host", apply.id())), "{}", text(&unlock));
    assert!(text(&unlock).contains("pass --force"), "{}", text(&unlock));
    assert!(lock_kept, "force-unlock removed a live holder's lock without asking");
}

/// Every file under `dir` whose name says it is a leftover of an interrupted write.
fn leftovers(dir: &std::path::Path) -> Vec<String> {
    files(dir).into_iter().filter(|f| f.ends_with(".tmp") || f.ends_with(".journal") || f.ends_with(".lock")).collect()
}

#[test]
fn many_random_kills_then_a_completed_apply_leave_every_object_and_no_leftovers() {
    let ws = Workspace::new();
    let topology = repo().join("examples/multi-seed");
    let topology = topology.to_str().unwrap();
    let seed = std::env::var("KKP_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    eprintln!("crash trial seed {seed} (rerun with KKP_CRASH_SEED={seed})");
    let started = Instant::now();
    let mut kills = 0;
    // About 45 s of kills at random moments: while planning, applying, journaling, compacting.
    // An apply that finishes leaves nothing to do, so the state is then deleted: the next
    // applies (with --new-state) write the whole fleet again, and there is always work to kill.
    let state = ws.path().join("kkp.state.json");
    let apply = |parallelism: &str| {
        let mut args = vec!["apply", "-f", topology, "--dir", "out", "--auto-approve", "--parallelism", parallelism];
        if !state.exists() {
            args.push("--new-state");
        }
        ws.command(&args)
    };
    while started.elapsed() < Duration::from_secs(45) {
        let parallelism = rng.usize(1..=16).to_string();
        let mut child = apply(&parallelism).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.u64(20..2500)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let status = child.wait().unwrap();
        assert!(status.code().is_none() || status.code() == Some(0), "an apply failed on its own: {status:?} (seed {seed})");
        if status.success() {
            std::fs::remove_file(&state).unwrap();
            std::fs::remove_file(ws.path().join("kkp.state.json.backup")).ok();
        }
    }
    assert!(kills >= 5, "only {kills} applies were killed (seed {seed})");

    let done = apply("10").output().unwrap();
    assert!(done.status.success(), "seed {seed}: {}", text(&done));
    let again = ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "seed {seed}: {}", text(&again));

    // Exactly the objects a first apply writes, and nothing left over in the state or target.
    let fresh = ws.kkp(&["plan", "-f", topology, "--json", "--state", "fresh.json"]);
    assert!(fresh.status.success(), "{}", text(&fresh));
    let fresh: serde_json::Value = serde_json::from_slice(&fresh.stdout).unwrap();
    let mut wanted: Vec<String> = fresh["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| {
            let o = a.get("object")?;
            let folder = o.get("namespace").and_then(|v| v.as_str()).unwrap_or("_cluster");
            Some(format!("{}/{folder}/{}-{}.yaml", a["seed"].as_str()?, o["kind"].as_str()?.to_lowercase(), o["name"].as_str()?))
        })
        .collect();
    wanted.sort();
    assert_eq!(files(&ws.path().join("out")), wanted, "seed {seed}");
    assert_eq!(leftovers(ws.path()), Vec::<String>::new(), "seed {seed}");
    eprintln!("{kills} kills");
}
