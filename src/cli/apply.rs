//! `kkp apply [PLANFILE] [-f PATH...] [--dir DIR] [--auto-approve] [--parallelism N]`

use super::plan::{PlanFlags, make_plan};
use super::progress::Progress;
use super::{StateArgs, TopologyArgs};
use kkp::apply::{Settings, retry};
use kkp::state::State;
use kkp::state::backend::{Backend, Lock};
use kkp::state::recorder::Recorder;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `kkp plan -o`; applied exactly, without a new plan.
    planfile: Option<PathBuf>,
    /// Topology to plan from. With PLANFILE it is not planned again; it only supplies the
    /// Seeds' kubeconfig Secrets.
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
    let saved = match &args.planfile {
        Some(_) if !(args.flags.targets.is_empty() && args.flags.excludes.is_empty() && args.flags.allow_destroy.is_empty()) => {
            anyhow::bail!(
                "--target, --exclude and --allow-destroy shape a new plan; a saved plan is applied as it is\n  fix: pass them to `kkp plan -o PLANFILE` instead"
            )
        }
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let (plan, digest) = kkp::plan::file::from_bytes(path, &bytes)?;
            if let Some(expected) = &args.expect_digest
                && expected != &digest
            {
                anyhow::bail!(
                    "{}: the plan's digest is {digest}, not the expected {expected}\n  fix: apply the plan that was reviewed",
                    path.display()
                );
            }
            Some(plan)
        }
        None => None,
    };

    let lock: Arc<dyn Lock> = Arc::from(backend.lock("apply").await?);
    let result = locked(&args, backend.clone(), lock.clone(), saved).await;
    lock.release().await;
    result
}

/// Everything apply does while holding the lock.
async fn locked(args: &Args, shared: Arc<dyn Backend>, lock: Arc<dyn Lock>, saved: Option<kkp::plan::Plan>) -> anyhow::Result<ExitCode> {
    let backend = shared.as_ref();
    let loaded = backend.load().await?;
    let mut state = loaded.state;
    if loaded.recovered > 0 {
        // Fold the interrupted apply's journal into the state before a new journal replaces it.
        let mut recovered = state.take().expect("a replayed journal yields a state");
        recovered.serial += 1;
        backend.persist(&recovered, lock.as_ref()).await?;
        eprintln!("Recovered {} records of an interrupted apply into the state (serial {}).", loaded.recovered, recovered.serial);
        state = Some(recovered);
    }

    let plan = match saved {
        Some(plan) => {
            kkp::apply::verify_basis(&plan, state.as_ref())?;
            plan
        }
        None => {
            let topology = TopologyArgs { files: args.files.clone() };
            let plan = make_plan(&topology, &args.flags, backend, state.as_ref())?;
            print!("{}", kkp::plan::display::human(&plan));
            if plan.summary.is_empty() {
                if plan.clusters.is_empty() {
                    return Ok(ExitCode::SUCCESS);
                }
            } else if !args.auto_approve && !confirm()? {
                println!("Apply cancelled.");
                return Ok(ExitCode::from(1));
            }
            plan
        }
    };
    // A plan without actions may still record clusters found unchanged node by node, so the
    // next plan can skip rendering them.
    if plan.summary.is_empty() && plan.clusters.is_empty() {
        println!("No changes to apply.");
        return Ok(ExitCode::SUCCESS);
    }

    let base = state.unwrap_or_else(|| State::new(uuid::Uuid::new_v4().to_string()));
    let recorder = Arc::new(Recorder::start(shared.clone(), lock.clone(), base).await?);
    let targets = args.target.targets(&plan, &args.files).await?;
    eprintln!(
        "Applying {} actions to {} (parallelism {}, {} per seed).",
        plan.actions.len(),
        args.target.describe(),
        args.parallelism,
        args.per_seed
    );

    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::SeqCst);
            eprintln!("\nInterrupted: finishing the actions in flight, starting no new ones, saving the state.");
        }
    });
    let progress = Arc::new(Progress::new(plan.actions.len(), args.json));
    let events = progress.clone();
    let settings = Settings {
        parallelism: args.parallelism.max(1),
        per_seed: args.per_seed.max(1),
        now: super::now(),
        retry: retry::Policy::default(),
        ready_timeout: std::time::Duration::from_secs(args.target.ready_timeout),
        take_over: args.target.force_conflicts,
    };
    let report =
        kkp::apply::run(Arc::new(plan), targets, recorder.clone(), settings, cancel.clone(), Arc::new(move |e| events.event(e))).await;
    progress.finish();
    let report = report?;
    let recorder = Arc::try_unwrap(recorder).map_err(|_| anyhow::anyhow!("the recorder is still in use"))?;
    let state = recorder.finish().await?;

    println!(
        "\nApply {}: {} applied, {} failed, {} skipped, {} not started. State serial {}.",
        if report.is_complete() { "complete" } else { "incomplete" },
        report.applied.len(),
        report.failed.len(),
        report.skipped.len(),
        report.cancelled.len(),
        state.serial
    );
    for (address, error) in &report.failed {
        println!("  failed  {address}: {error}");
    }
    for (address, because) in &report.skipped {
        println!("  skipped {address} (depends on failed {because})");
    }
    if cancel.load(Ordering::SeqCst) {
        return Ok(ExitCode::from(130));
    }
    Ok(if report.is_complete() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Asks for `yes` on a terminal; refuses without one instead of hanging.
fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "apply needs confirmation, but stdin is not a terminal\n  fix: review the plan and pass --auto-approve, or save it with `kkp plan -o PLANFILE` and run `kkp apply PLANFILE`"
        );
    }
    print!("\nDo you want to apply these actions? Only 'yes' will be accepted: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}
