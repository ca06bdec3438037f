//! `--policy FILE` on `kkp plan` and `kkp apply`: loading the policy, printing its verdict,
//! and the exit codes a CI gate reads (2 allowed, 3 review needed, 4 denied).

use kkp::plan::Plan;
use kkp::policy::{Decision, Policy, Verdict};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code: changes the policy allows.
pub const EXIT_ALLOWED: u8 = 2;
/// Exit code: changes that need a person's approval of the plan's digest.
pub const EXIT_REVIEW: u8 = 3;
/// Exit code: changes the policy denies.
pub const EXIT_DENIED: u8 = 4;

/// Actions named per decision before "and N more".
const NAMED: usize = 20;

#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Policy rules to check the plan against (default: .kkp/policy.yaml when it exists).
    /// Exit codes: 2 allowed, 3 review needed, 4 denied. See docs/ci.md.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

impl PolicyArgs {
    /// The policy in effect: `--policy FILE`, else `.kkp/policy.yaml` if present.
    pub fn load(&self) -> anyhow::Result<Option<Policy>> {
        let path = match &self.policy {
            Some(path) => path.clone(),
            None => {
                let default = PathBuf::from(kkp::policy::DEFAULT_PATH);
                if !default.is_file() {
                    return Ok(None);
                }
                default
            }
        };
        Ok(Some(kkp::policy::load(&path)?))
    }
}

/// The exit code for a verdict.
pub fn exit_code(decision: Decision) -> ExitCode {
    ExitCode::from(match decision {
        Decision::Allow => EXIT_ALLOWED,
        Decision::Review => EXIT_REVIEW,
        Decision::Deny => EXIT_DENIED,
    })
}

/// Evaluates `policy` on `plan` and tells stderr what it decided and why.
pub fn check(policy: &Policy, plan: &Plan) -> Verdict {
    let verdict = kkp::policy::evaluate(policy, plan);
    let file = policy.path.display();
    let what = match verdict.decision {
        Decision::Allow => "every change is allowed",
        Decision::Review => "changes need review: approve this plan's digest and apply it with --expect-digest",
        Decision::Deny => "changes are denied; this plan will not be applied",
    };
    eprintln!("Policy {file}: {what}.");
    for decision in [Decision::Deny, Decision::Review] {
        let listed: Vec<_> = verdict.with(decision).collect();
        for a in listed.iter().take(NAMED) {
            let by = match a.rule {
                Some(line) => format!("rule at {file}:{line}"),
                None => "no rule covers it".to_string(),
            };
            eprintln!("  {:<6} {} ({}, {}; {by})", decision.as_str(), a.address, a.class.as_str(), a.risk.as_str());
        }
        if listed.len() > NAMED {
            eprintln!("  ... and {} more to {}", listed.len() - NAMED, decision.as_str());
        }
    }
    verdict
}
