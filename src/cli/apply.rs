//! `kkp apply [PLANFILE] [-f PATH...] [--dir DIR] [--auto-approve] [--parallelism N]`

use super::plan::{PlanFlags, plan_options};
use super::progress::Progress;
use super::{StateArgs, TopologyArgs};
use kkp::apply::{Event, Outcome, Settings, Source, retry};
use kkp::plan::Plan;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `kkp plan -o`; applied exactly, without a new plan.
    planfile: Option<PathBuf>,
    /// Topology to plan from. With PLANFILE it is not planned again; it only supplies the
    /// Secrets among its documents (Seeds' kubeconfigs, cloud credentials to copy).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required_unless_present = "planfile")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    target: super::targets::TargetArgs,
    /// Apply without asking for confirmation.
    #[arg(long)]
    auto_approve: bool,
    /// Refuse the plan file unless its digest is this one (as reviewed).
    #[arg(long, value_name = "DIGEST", requires = "planfile")]
    expect_digest: Option<String>,
    /// Nodes applied at once across all seeds.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Nodes applied at once on one seed.
    #[arg(long, default_value_t = 10)]
    per_seed: usize,
    /// Print progress as NDJSON events.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = super::state::open(&args.state).await?;
    // A saved plan is checked before anything is locked or read.
    let source = match &args.planfile {
        Some(_) if !args.flags.is_empty() => {
            anyhow::bail!(
                "--target, --exclude, --allow-destroy and --allow-downgrade shape a new plan; a saved plan is applied as it is\n  fix: pass them to `kkp plan -o PLANFILE` instead"
            )
        }
        Some(path) => Source::Saved(read_plan(path, args.expect_digest.as_deref())?),
        None => {
            let topology = super::plan::load_topology(&TopologyArgs { files: args.files.clone() })?;
            Source::Topology { topology, options: plan_options(&args.flags)? }
        }
    };
    let targets = args.target.factory(&args.files)?;
    // Objects on the target with no state: planning from nothing would overwrite them all.
    if !args.state.new_state
        && let Some(object) = args.target.existing_object()
        && backend.load().await?.state.is_none()
    {
        anyhow::bail!(
            "{}: there is no state, but {} already holds objects (e.g. {}): a plan from nothing would create every object again over them\n  fix: restore the state (e.g. from its .backup), or pass --new-state to start a new state on purpose",
            backend.describe(),
            args.target.describe(),
            object.display()
        );
    }
    let settings = Settings {
        parallelism: args.parallelism.max(1),
        per_seed: args.per_seed.max(1),
        now: super::now(),
        retry: retry::Policy::default(),
        ready_timeout: std::time::Duration::from_secs(args.target.ready_timeout),
        take_over: args.target.force_conflicts,
        topology_secrets: Arc::new(super::targets::topology_secrets(&args.files)?),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!("\nInterrupted: finishing the actions in flight, starting no new ones, saving the state.");
        }
    });
    let view = Arc::new(Terminal { json: args.json, auto_approve: args.auto_approve, progress: Mutex::new(None) });
    let outcome = kkp::apply::apply(backend, source, &targets, settings, view, cancel).await?;
    let json = args.json;
    Ok(match outcome {
        Outcome::NoChanges => {
            if json {
                super::output::outln!("{}", serde_json::json!({"event": "summary", "result": "no-changes"}));
            } else {
                super::output::outln!("No changes to apply.");
            }
            ExitCode::SUCCESS
        }
        Outcome::Declined => {
            eprintln!("Apply cancelled.");
            ExitCode::from(1)
        }
        Outcome::Applied { report, serial, interrupted } => {
            if json {
                super::output::outln!("{}", summary_json(&report, serial, interrupted));
            } else {
                print_summary(&report, serial, interrupted);
            }
            match (interrupted, report.is_complete()) {
                (true, _) => ExitCode::from(130),
                (false, true) => ExitCode::SUCCESS,
                (false, false) => ExitCode::from(1),
            }
        }
    })
}

/// The summary as the last NDJSON event of `apply --json`.
fn summary_json(report: &kkp::apply::Report, serial: u64, interrupted: bool) -> serde_json::Value {
    serde_json::json!({
        "event": "summary",
        "result": if report.is_complete() { "complete" } else if interrupted { "interrupted" } else { "incomplete" },
        "applied": report.applied.len(),
        "failed": report.failed.iter().map(|(a, e)| serde_json::json!({"address": a, "error": e})).collect::<Vec<_>>(),
        "skipped": report.skipped.len(),
        "not_started": report.cancelled.len(),
        "serial": serial,
    })
}

/// Up to this many skipped nodes are listed one by one.
const FEW: usize = 20;

/// The human summary: every failure, but what did not run only as one line per cluster (or
/// seed), so a large fleet's interrupted apply does not flood the terminal.
fn print_summary(report: &kkp::apply::Report, serial: u64, interrupted: bool) {
    use std::collections::BTreeMap;
    super::output::outln!(
        "\nApply {}: {} applied, {} failed, {} skipped, {} not started. State serial {serial}.",
        if report.is_complete() { "complete" } else { "incomplete" },
        report.applied.len(),
        report.failed.len(),
        report.skipped.len(),
        report.cancelled.len(),
    );
    for (address, error) in &report.failed {
        super::output::outln!("  failed  {address}: {error}");
    }
    let group = |a: &kkp::address::Address| match a.cluster() {
        Some(cluster) => format!("cluster {cluster}"),
        None => format!("seed {}", a.as_str().split('/').nth(1).unwrap_or_default()),
    };
    if report.skipped.len() <= FEW {
        for (address, because) in &report.skipped {
            super::output::outln!("  skipped {address} (depends on failed {because})");
        }
    } else {
        let mut skipped: BTreeMap<String, (usize, &kkp::address::Address)> = BTreeMap::new();
        for (address, because) in &report.skipped {
            skipped.entry(group(address)).or_insert((0, because)).0 += 1;
        }
        for (owner, (count, because)) in skipped {
            super::output::outln!("  skipped {count} nodes of {owner} (depending on failed {because})");
        }
    }
    let mut not_started: BTreeMap<String, usize> = BTreeMap::new();
    for address in &report.cancelled {
        *not_started.entry(group(address)).or_default() += 1;
    }
    for (owner, count) in not_started {
        super::output::outln!("  not started: {count} of {owner}");
    }
    if interrupted {
        super::output::outln!("Interrupted. The state records everything applied; run the same command again to finish.");
    } else if !report.is_complete() {
        super::output::outln!("Fix the failures above and run the same command again; what was applied is not redone.");
    }
}

/// Reads a saved plan and checks it is the one reviewed.
fn read_plan(path: &std::path::Path, expected: Option<&str>) -> anyhow::Result<Plan> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let (plan, digest) = kkp::plan::file::from_bytes(path, &bytes)?;
    if let Some(expected) = expected
        && expected != digest
    {
        anyhow::bail!(
            "{}: the plan's digest is {digest}, not the expected {expected}\n  fix: apply the plan that was reviewed",
            path.display()
        );
    }
    Ok(plan)
}

/// The terminal view of an apply: the plan, a confirmation prompt, progress, summaries.
struct Terminal {
    json: bool,
    auto_approve: bool,
    progress: Mutex<Option<Progress>>,
}

impl kkp::apply::View for Terminal {
    fn recovered(&self, records: usize, serial: u64) {
        eprintln!("Recovered {records} records of an interrupted apply into the state (serial {serial}).");
    }

    fn planned(&self, plan: &Plan) {
        // `--json` keeps stdout pure NDJSON: the plan for a person goes to stderr.
        if self.json {
            eprint!("{}", kkp::plan::display::human(plan));
        } else {
            super::output::print_human(&kkp::plan::display::human(plan));
        }
    }

    fn approve(&self, _plan: &Plan) -> Result<bool, String> {
        if self.auto_approve {
            return Ok(true);
        }
        confirm()
    }

    fn starting(&self, plan: &Plan, settings: &Settings, target: &str) {
        eprintln!(
            "Applying {} actions to {target} (parallelism {}, {} per seed).",
            plan.actions.len(),
            settings.parallelism,
            settings.per_seed
        );
        *self.progress.lock().expect("progress lock") = Some(Progress::new(plan.actions.len(), self.json));
    }

    fn event(&self, event: Event) {
        if let Some(progress) = self.progress.lock().expect("progress lock").as_ref() {
            progress.event(event);
        }
    }

    fn finished(&self) {
        if let Some(progress) = self.progress.lock().expect("progress lock").take() {
            progress.finish();
        }
    }
}

/// Asks for `yes` on a terminal; refuses without one instead of hanging.
fn confirm() -> Result<bool, String> {
    if !std::io::stdin().is_terminal() {
        return Err("apply needs confirmation, but stdin is not a terminal\n  fix: review the plan and pass --auto-approve, or save it with `kkp plan -o PLANFILE` and run `kkp apply PLANFILE`".into());
    }
    eprint!("\nDo you want to apply these actions? Only 'yes' will be accepted: ");
    std::io::stderr().flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer.trim() == "yes")
}
