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
