//! plans/ holds what `kkp plan` of each example against an empty state must produce, byte
//! for byte: the saved plan (what a CI gate applies) and its human rendering (what a reviewer
//! reads). Regenerate after an intended change with `KKP_UPDATE_GOLDEN=1 cargo test --test golden`.

mod common;

use common::{Workspace, repo, text};

fn check(example: &str) {
    let ws = Workspace::new();
    let saved = ws.path().join("plan.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kkp"))
        .args(["plan", "-f", &format!("examples/{example}"), "--state"])
        .arg(ws.path().join("empty.state.json"))
        .arg("-o")
        .arg(&saved)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let golden = [(format!("plans/{example}.plan.json"), std::fs::read(&saved).unwrap()), (format!("plans/{example}.txt"), out.stdout)];
    for (path, actual) in golden {
        let path = repo().join(path);
        if std::env::var_os("KKP_UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read(&path).unwrap_or_else(|_| panic!("{} is missing; run with KKP_UPDATE_GOLDEN=1", path.display()));
        assert!(expected == actual, "{} differs from `kkp plan`; review and regenerate with KKP_UPDATE_GOLDEN=1", path.display());
    }
}

#[test]
fn quickstart_plan_matches_its_golden_files() {
    check("quickstart");
}

#[test]
fn multi_seed_plan_matches_its_golden_files() {
    check("multi-seed");
}

/// The JSON schema in docs/plan-format.md (the first `json` block after "## JSON schema").
fn documented_schema() -> serde_json::Value {
    let doc = std::fs::read_to_string(repo().join("docs/plan-format.md")).unwrap();
    let section = doc.split("## JSON schema").nth(1).expect("docs/plan-format.md has a JSON schema section");
    let block = section.split("```json\n").nth(1).and_then(|b| b.split("```").next()).expect("a json block");
    serde_json::from_str(block).expect("the documented schema is JSON")
}

#[test]
fn golden_plans_validate_against_the_documented_schema() {
    let validator = jsonschema::validator_for(&documented_schema()).expect("the documented schema compiles");
    for example in ["quickstart", "multi-seed"] {
        let path = repo().join(format!("plans/{example}.plan.json"));
        let plan: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let errors: Vec<String> = validator.iter_errors(&plan).map(|e| format!("{}: {e}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        // Every action of a user cluster names its readable name where the topology gives one.
        let actions = plan["plan"]["actions"].as_array().unwrap();
        assert!(actions.iter().any(|a| a["humanReadableName"].is_string()), "{example}");
        // A plan that breaks the schema is caught: the test can fail.
        let mut broken = plan.clone();
        broken["plan"]["actions"][0]["risk"] = "catastrophic".into();
        assert!(!validator.is_valid(&broken));
    }
}
