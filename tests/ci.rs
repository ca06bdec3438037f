//! CI approval gates: exit codes, policy verdicts on plan and on apply, and the example
//! workflows of examples/ci run step by step (their own shell scripts, with `gh` and `curl`
//! replaced by recorders) on the quickstart example, against the directory target.

mod common;

use common::{Workspace, repo, text};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn usage_errors_exit_1_not_the_2_of_pending_changes() {
    let ws = Workspace::new();
    let typo = ws.kkp(&["plan", "-f", "x", "--detailed-exitcod"]);
    assert_eq!(code(&typo), 1, "{}", text(&typo));
    assert!(text(&typo).contains("--detailed-exitcode"), "clap suggests the flag: {}", text(&typo));
    assert_eq!(code(&ws.kkp(&["plann"])), 1);
    assert_eq!(code(&ws.kkp(&["--version"])), 0);
    assert_eq!(code(&ws.kkp(&["plan", "--help"])), 0);
}

#[test]
fn a_policy_denying_data_replace_exits_4_on_plan_and_on_apply_of_the_saved_plan() {
    let ws = Workspace::new();
    let topology = ws.copy_example("multi-seed");
    let topology = topology.to_str().unwrap();
    let out = ws.kkp(&["apply", "-f", topology, "--dir", "seeds", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    // Move a cluster to the other seed: its etcd is made anew there.
    edit(&ws.path().join("multi-seed/clusters.yaml"), "dc: aws-us-east-2", "dc: aws-eu-central-1");
    write(
        &ws.path().join("deny.yaml"),
        "rules:\n  - decision: allow\n    risk: [low, medium, high]\n  - decision: deny\n    class: data-replace\n",
    );
    let plan = ws.kkp(&["plan", "-f", topology, "--allow-destroy", "cluster/us4xk2ptmw", "--policy", "deny.yaml", "-o", "plan.json"]);
    assert_eq!(code(&plan), 4, "{}", text(&plan));
    assert!(
        text(&plan).contains("deny   cluster/us4xk2ptmw/statefulset/etcd (data-replace, data-loss; rule at deny.yaml:4)"),
        "{}",
        text(&plan)
    );

    // The saved plan is refused by apply's own check, with or without the reviewed digest.
    let state_before = std::fs::read(ws.path().join("kkp.state.json")).unwrap();
    let digest = saved_digest(&ws, "plan.json");
    for extra in [vec![], vec!["--expect-digest", digest.as_str()]] {
        let mut args = vec!["apply", "plan.json", "-f", topology, "--dir", "seeds", "--policy", "deny.yaml"];
        args.extend(extra);
        let apply = ws.kkp(&args);
        assert_eq!(code(&apply), 4, "{}", text(&apply));
        assert!(text(&apply).contains("the policy denies this plan; nothing was applied"), "{}", text(&apply));
    }
    // The default policy file is found without --policy.
    write(&ws.path().join(".kkp/policy.yaml"), &std::fs::read_to_string(ws.path().join("deny.yaml")).unwrap());
    let apply = ws.kkp(&["apply", "plan.json", "-f", topology, "--dir", "seeds"]);
    assert_eq!(code(&apply), 4, "{}", text(&apply));
    // Planning and applying in one go is refused the same way.
    let direct = ws.kkp(&["apply", "-f", topology, "--allow-destroy", "cluster/us4xk2ptmw", "--dir", "seeds", "--auto-approve"]);
    assert_eq!(code(&direct), 4, "{}", text(&direct));
    assert_eq!(std::fs::read(ws.path().join("kkp.state.json")).unwrap(), state_before, "nothing was applied");
}

fn saved_digest(ws: &Workspace, plan: &str) -> String {
    let show = ws.kkp(&["show", plan, "--json"]);
    assert!(show.status.success(), "{}", text(&show));
    let value: Value = serde_json::from_slice(&show.stdout).unwrap();
    value["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_renewal_only_plan_passes_a_policy_that_allows_renewals() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    let out = ws.kkp(&["apply", "-f", topology, "--dir", "seeds", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    // Bring one certificate into the renewal window, as time would.
    let state_path = ws.path().join("kkp.state.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let cert = &mut state["nodes"]["cluster/qs4k7x2mzp/secret/apiserver-tls"]["certificate"];
    assert!(cert.is_object(), "the state records the certificate");
    cert["notAfter"] = (now + 10 * 86_400).into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();

    write(&ws.path().join("renewals.yaml"), "rules:\n  - decision: allow\n    class: cert-renewal\n");
    let plan = ws.kkp(&["plan", "-f", topology, "--policy", "renewals.yaml", "--json"]);
    assert_eq!(code(&plan), 2, "{}", text(&plan));
    let json: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let actions = json["plan"]["actions"].as_array().unwrap();
    assert!(actions.len() > 1 && actions.iter().all(|a| a["class"] == "cert-renewal"), "{actions:#?}");
    assert!(text(&plan).contains("every change is allowed"), "{}", text(&plan));
    // Without a rule for renewals the same plan needs review.
    write(&ws.path().join("empty.yaml"), "rules: []\n");
    assert_eq!(code(&ws.kkp(&["plan", "-f", topology, "--policy", "empty.yaml"])), 3);
    // --summary prints the roll-ups only.
    let summary = ws.kkp(&["plan", "-f", topology, "--summary"]);
    assert!(text(&summary).contains("Replace and destroy: 1 action") && !text(&summary).contains("Every action"), "{}", text(&summary));
}

#[test]
fn a_bad_policy_file_is_an_error_naming_its_line() {
    let ws = Workspace::new();
    write(&ws.path().join("bad.yaml"), "rules:\n  - decision: allow\n    class: create\n  - decision: deny\n    class: data-replaced\n");
    let out = ws.kkp(&["plan", "-f", repo().join("examples/quickstart").to_str().unwrap(), "--policy", "bad.yaml"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("error: bad.yaml:4: rule 2: \"data-replaced\" is not a class"), "{}", text(&out));
    assert!(text(&out).contains("fix: use one of: create, import, version-upgrade"), "{}", text(&out));
}

/// Runs CI scripts in a workspace: `kkp` is the binary under test, `gh` and `curl` record
/// what they were given.
struct Ci {
    ws: Workspace,
    bin: PathBuf,
}

impl Ci {
    fn new() -> Ci {
        let ws = Workspace::new();
        let bin = ws.path().join(".bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kkp"), bin.join("kkp")).unwrap();
        // gh pr comment PR --body-file FILE; curl ... --data @FILE URL
        let recorder = |name: &str, script: &str| {
            let path = bin.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        };
        recorder("gh", r#"[ "$1 $2" = "pr comment" ] && [ "$4" = "--body-file" ] || exit 9; cp "$5" comment.md"#);
        recorder("curl", r#"for a in "$@"; do case "$a" in @*) cp "${a#@}" note.json;; esac; done"#);
        let topology = ws.copy_example("quickstart");
        std::fs::rename(topology, ws.path().join("topology")).unwrap();
        write(&ws.path().join(".kkp/policy.yaml"), &std::fs::read_to_string(repo().join("examples/ci/policy.yaml")).unwrap());
        Ci { ws, bin }
    }

    fn run(&self, script: &str, env: &BTreeMap<String, String>) -> Output {
        let path = format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap_or_default());
        Command::new("bash")
            .args(["-e", "-c", script])
            .current_dir(self.ws.path())
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.ws.path())
            .envs(env)
            .output()
            .unwrap()
    }
}

fn workflow(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples/ci").join(name)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The GitHub workflow's env with the state in a file and the directory target instead of
/// the cluster (what the test can run).
fn local_env(declared: &Value) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> =
        declared.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    for key in ["KKP_TOPOLOGY", "KKP_STATE", "KKP_TARGET_FLAGS"] {
        assert!(env.contains_key(key), "the workflow sets {key}");
    }
    env.insert("KKP_STATE".into(), "kkp.state.json".into());
    env.insert("KKP_TARGET_FLAGS".into(), "--dir seeds".into());
    env
}

/// Runs one GitHub Actions job's `run` steps in order; returns its step outputs.
fn github_job(ci: &Ci, job: &Value, env: &BTreeMap<String, String>, inputs: &BTreeMap<&str, String>) -> BTreeMap<String, String> {
    let outputs_file = ci.ws.path().join("github_output");
    std::fs::write(&outputs_file, "").unwrap();
    let mut outputs: BTreeMap<String, String> = BTreeMap::new();
    for step in job["steps"].as_array().unwrap() {
        let Some(script) = step["run"].as_str() else { continue };
        let mut env = env.clone();
        env.insert("GITHUB_OUTPUT".into(), outputs_file.display().to_string());
        for (key, value) in step["env"].as_object().into_iter().flatten() {
            let value = value.as_str().unwrap();
            let expression = value.trim().strip_prefix("${{").and_then(|v| v.strip_suffix("}}")).map(str::trim);
            let resolved = match expression {
                None => value.to_string(),
                Some(e) if e.starts_with("secrets.") => String::new(),
                Some("github.token") => "token".into(),
                Some("github.event.pull_request.number") => "7".into(),
                Some(e) if e.starts_with("steps.plan.outputs.") => outputs[&e["steps.plan.outputs.".len()..]].clone(),
                Some(e) if e.starts_with("inputs.") => inputs[&e["inputs.".len()..]].clone(),
                Some(other) => panic!("the test does not know the expression {other}"),
            };
            env.insert(key.clone(), resolved);
        }
        let out = ci.run(script, &env);
        assert!(out.status.success(), "step {}: {}", step["name"], text(&out));
        for line in std::fs::read_to_string(&outputs_file).unwrap().lines() {
            if let Some((k, v)) = line.split_once('=') {
                outputs.insert(k.to_string(), v.to_string());
            }
        }
    }
    outputs
}

#[test]
fn the_github_workflow_plans_comments_gates_and_applies_the_reviewed_digest() {
    let ci = Ci::new();
    let flow = workflow("github-actions.yml");
    let env = local_env(&flow["env"]);
    let (plan_job, apply_job) = (&flow["jobs"]["plan"], &flow["jobs"]["apply"]);
    assert_eq!(apply_job["environment"], "production", "apply runs in a protected environment");

    // A pull request adding the clusters: creates only, which the policy allows.
    let outputs = github_job(&ci, plan_job, &env, &BTreeMap::new());
    assert_eq!(outputs["decision"], "allow");
    assert!(outputs["digest"].starts_with("sha256:"));
    let comment = std::fs::read_to_string(ci.ws.path().join("comment.md")).unwrap();
    assert!(
        comment.starts_with("### kkp plan") && comment.contains(&outputs["digest"]) && comment.ends_with("**Policy:** allow\n"),
        "{comment}"
    );
    github_job(&ci, apply_job, &env, &BTreeMap::from([("digest", outputs["digest"].clone())]));
    assert!(ci.ws.path().join("seeds/europe/cluster-qs4k7x2mzp/statefulset-etcd.yaml").is_file());

    // An upgrade: no rule allows it for these clusters, so it needs review.
    edit(&ci.ws.path().join("topology/kkp.yaml"), "version: 1.33.5", "version: 1.34.2");
    let reviewed = github_job(&ci, plan_job, &env, &BTreeMap::new());
    assert_eq!(reviewed["decision"], "review");
    // Applying with any other digest than the reviewed one is refused, and changes nothing.
    let before = std::fs::read(ci.ws.path().join("kkp.state.json")).unwrap();
    let script = apply_job["steps"].as_array().unwrap().iter().find_map(|s| s["run"].as_str().filter(|r| r.contains("kkp apply"))).unwrap();
    let mut stale = env.clone();
    stale.insert("REVIEWED_DIGEST".into(), outputs["digest"].clone());
    let refused = ci.run(script, &stale);
    assert_eq!(code(&refused), 1, "{}", text(&refused));
    assert!(text(&refused).contains("not the expected"), "{}", text(&refused));
    assert_eq!(std::fs::read(ci.ws.path().join("kkp.state.json")).unwrap(), before);
    // The reviewed digest applies.
    github_job(&ci, apply_job, &env, &BTreeMap::from([("digest", reviewed["digest"].clone())]));
    let again = ci.ws.kkp(&["plan", "-f", "topology", "--detailed-exitcode"]);
    assert_eq!(code(&again), 0, "{}", text(&again));
}

#[test]
fn the_gitlab_pipeline_runs_the_same_flow() {
    let ci = Ci::new();
    let flow = workflow("gitlab-ci.yml");
    let mut env = local_env(&flow["variables"]);
    env.remove("KUBECONFIG");
    let script =
        |job: &str| -> Vec<String> { flow[job]["script"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect() };
    for (key, value) in
        [("GITLAB_API_TOKEN", "token"), ("CI_API_V4_URL", "http://gitlab/api/v4"), ("CI_PROJECT_ID", "1"), ("CI_MERGE_REQUEST_IID", "7")]
    {
        env.insert(key.into(), value.into());
    }
    for part in script("plan") {
        let out = ci.run(&part, &env);
        assert!(out.status.success(), "{part}\n{}", text(&out));
    }
    let note: Value = serde_json::from_slice(&std::fs::read(ci.ws.path().join("note.json")).unwrap()).unwrap();
    let body = note["body"].as_str().unwrap();
    assert!(body.starts_with("### kkp plan") && body.ends_with("**Policy:** allow\n"), "{body}");
    assert_eq!(flow["apply"]["environment"], "production");
    assert_eq!(flow["apply"]["rules"][0]["when"], "manual");
    env.insert("KKP_REVIEWED_DIGEST".into(), saved_digest(&ci.ws, "kkp.plan.json"));
    for part in script("apply") {
        let out = ci.run(&part, &env);
        assert!(out.status.success(), "{part}\n{}", text(&out));
    }
    assert!(ci.ws.path().join("seeds/europe/cluster-qs4k7x2mzp/statefulset-etcd.yaml").is_file());
}

#[test]
fn a_failing_wave_check_stops_the_rollout_and_a_rerun_continues() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    // The rollout comes from the policy file; the check fails for the first wave.
    write(
        &ws.path().join(".kkp/policy.yaml"),
        "rules:\n  - decision: allow\nrollout:\n  waves: canary=qs4k7x2mzp,100%\n  check: test \"$KKP_WAVE\" != canary || { echo \"canary $KKP_WAVE_CLUSTERS unhealthy\" >&2; exit 3; }\n",
    );
    let out = ws.kkp(&["apply", "-f", topology, "--dir", "seeds", "--auto-approve"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("Rollout stopped after wave canary (qs4k7x2mzp): the wave check `test")
            && text(&out).contains("canary qs4k7x2mzp unhealthy"),
        "{}",
        text(&out)
    );
    // A directory has no apiserver to ask: said, and the rollout goes on to the check.
    assert!(text(&out).contains("apiserver /readyz not checked for qs4k7x2mzp: the directory target has no API server"), "{}", text(&out));
    assert!(text(&out).contains("wave canary expected: unknown (no earlier apply recorded"), "{}", text(&out));
    assert!(ws.path().join("seeds/europe/cluster-qs4k7x2mzp/statefulset-etcd.yaml").is_file());
    assert!(!ws.path().join("seeds/europe/cluster-qs9d3vh6rt").exists(), "the second wave never started");
    // Re-run with the check still failing: the canary is checked again, nothing else starts.
    let again = ws.kkp(&["apply", "-f", topology, "--dir", "seeds", "--auto-approve"]);
    assert_eq!(code(&again), 1, "{}", text(&again));
    assert!(text(&again).contains("Wave canary (qs4k7x2mzp) stopped the last rollout (the wave check `test"), "{}", text(&again));
    assert!(!ws.path().join("seeds/europe/cluster-qs9d3vh6rt").exists(), "the second wave still never started");
    // With the check passing, the same command continues with the cluster still to do.
    let rerun = ws.kkp(&["apply", "-f", topology, "--dir", "seeds", "--auto-approve", "--wave-check", "true"]);
    assert!(rerun.status.success(), "{}", text(&rerun));
    assert!(text(&rerun).contains("Wave wave-2: 1 clusters") && !text(&rerun).contains("Wave canary: 1"), "{}", text(&rerun));
    // Each wave's estimate comes from the timings the stopped run recorded.
    assert!(
        text(&rerun).contains("wave wave-2 expected: ") && text(&rerun).contains("(from timings of 1 earlier apply)"),
        "{}",
        text(&rerun)
    );
    assert!(ws.path().join("seeds/europe/cluster-qs9d3vh6rt/statefulset-etcd.yaml").is_file());
    assert_eq!(code(&ws.kkp(&["plan", "-f", topology, "--detailed-exitcode"])), 0);
}

#[test]
fn why_names_the_line_of_the_topology_that_caused_a_change() {
    let ws = Workspace::new();
    let topology = ws.copy_example("quickstart");
    let topology = topology.to_str().unwrap();
    let out = ws.kkp(&["apply", "-f", topology, "--dir", "seeds", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out));
    let file = ws.path().join("quickstart/kkp.yaml");
    let line = std::fs::read_to_string(&file).unwrap().lines().position(|l| l.trim() == "version: 1.33.5").unwrap() + 1;
    edit(&file, "version: 1.33.5", "version: 1.34.2");
    let why = ws.kkp(&["plan", "-f", topology, "--why", "cluster/qs9d3vh6rt/deployment"]);
    assert!(why.status.success(), "{}", text(&why));
    let shown = String::from_utf8_lossy(&why.stdout).to_string();
    assert!(shown.contains("~ cluster/qs9d3vh6rt/deployment/apiserver"), "{shown}");
    assert!(shown.contains(&format!("kkp.yaml:{line}: cluster qs9d3vh6rt: spec.version 1.33.5 -> 1.34.2")), "{shown}");
    assert!(!shown.contains("qs4k7x2mzp"), "{shown}");
}
