//! `kkp plan -f PATH... [-o PLANFILE] [--json|--markdown] [--summary] [--detailed-exitcode] [--policy FILE] [--why ADDR]
//! [--target ADDR]... [--refresh|--refresh-only] [--accept ADDR]... [--dir DIR|--kube ...]`

use super::output::{Format, FormatArgs};
use super::{StateArgs, TopologyArgs};
use kkp::plan::{Options, Plan};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags that shape a plan; shared with `kkp apply` when it plans itself.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanFlags {
    /// Plan only this node and what it depends on (address prefix, repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Leave out this node and what depends on it (address prefix, repeatable).
    #[arg(long = "exclude", value_name = "ADDR")]
    pub excludes: Vec<String>,
    /// Allow deleting or replacing this data-bearing node (etcd, a CA, a cluster namespace).
    #[arg(long = "allow-destroy", value_name = "ADDR")]
    pub allow_destroy: Vec<String>,
    /// Allow this cluster's spec.version to go below the version it was applied at.
    #[arg(long = "allow-downgrade", value_name = "CLUSTER")]
    pub allow_downgrade: Vec<String>,
    /// Read the seeds first (one LIST per seed and kind) and plan against what they hold:
    /// objects deleted outside kkp are re-created, fields changed by others restored, replaced
    /// certificates shown (docs/cli.md, "Refresh").
    #[arg(long)]
    pub refresh: bool,
    /// Accept that this CA or service-account key (address) was replaced or deleted outside
    /// kkp: keep the live one (or make a deleted one anew) and re-issue what the old one signed.
    #[arg(long = "accept", value_name = "ADDR")]
    pub accept: Vec<String>,
}

impl PlanFlags {
    /// True when no flag was given (a saved plan takes none).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
            && self.excludes.is_empty()
            && self.allow_destroy.is_empty()
            && self.allow_downgrade.is_empty()
            && !self.refresh
            && self.accept.is_empty()
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    flags: PlanFlags,
    #[command(flatten)]
    seeds: super::targets::SeedArgs,
    /// Show only what changed outside kkp (implies --refresh); plan nothing.
    #[arg(long, conflicts_with = "out")]
    refresh_only: bool,
    /// Requests in flight while reading seeds.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Save the plan here, for `kkp apply PLANFILE`.
    #[arg(short = 'o', long = "out", value_name = "PLANFILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
    /// Exit 0 when there are no changes, 2 when there are (with a policy: 2 allowed, 3 review
    /// needed, 4 denied), 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
    #[command(flatten)]
    policy: super::policy::PolicyArgs,
    /// Instead of the plan: for each action at or under ADDR, the topology input (file:line)
    /// that caused it.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["out", "json", "markdown", "summary"])]
    why: Option<String>,
}

pub async fn run(mut args: Args) -> anyhow::Result<ExitCode> {
    // A broken policy is reported before any planning work.
    let policy = args.policy.load()?;
    let backend = super::state::open(&args.state).await?;
    // A plan reads a consistent snapshot (the state and the whole records of the journal), but
    // during an apply that snapshot is half-applied: say so.
    if let Some(holder) = backend.holder().await?
        && holder.alive
    {
        let who = holder
            .info
            .map_or_else(|| "another kkp".to_string(), |i| format!("`{}` by {} (pid {}) since {}", i.operation, i.who, i.pid, i.created));
        eprintln!(
            "note: {who} is running on this state; this plan shows its progress so far, not the final state. Plan again once it is done."
        );
    }
    let loaded = backend.load().await?;
    if loaded.recovered > 0 {
        eprintln!("note: the state includes {} records of an apply that was interrupted", loaded.recovered);
    }
    args.flags.refresh |= args.refresh_only;
    let state = loaded.state.as_ref();
    let topology = load_topology(&args.topology)?;
    let mut options = plan_options(&args.flags)?;
    // A plan only shown to a human never needs its bodies (they go to -o, --json and the
    // digest --markdown prints).
    options.without_bodies = args.out.is_none() && args.format.format() == Format::Human;
    // Seeds are reached only to read them or to check a named target against the state.
    let connected = if args.flags.refresh || args.seeds.is_explicit() {
        let factory = args.seeds.factory_for(&args.topology.files, state)?;
        Some(kkp::refresh::connect(&factory, &kkp::refresh::seeds_in_play(&topology, state), state).await?)
    } else {
        None
    };
    let priors = |digest: &str| backend.objects().read_json(digest);
    let plan = kkp::refresh::plan(&topology, state, &priors, connected.as_ref(), args.parallelism, &options).await?;
    if args.refresh_only {
        return Ok(refresh_only(&plan, &args));
    }
    if let Some(address) = &args.why {
        let address = kkp::address::Address::parse(address).map_err(anyhow::Error::msg)?;
        super::output::print_out(&kkp::plan::display::why(&kkp::plan::why::explain(&plan, &topology, &address)));
        return Ok(ExitCode::SUCCESS);
    }
    let format = args.format.format();
    // The saved form (and its digest) costs a serialisation of every body in the plan: a
    // fleet's first plan holds hundreds of thousands. Only make it when it is used, and
    // stream it into the file.
    let digest = match &args.out {
        Some(out) => kkp::state::file::write_atomic_with(out, |file| kkp::plan::file::write(&plan, file))?,
        None if format != Format::Human => kkp::plan::file::digest(&plan),
        None => String::new(),
    };
    let digest = digest.as_str();
    match format {
        Format::Human => super::output::print_human(&kkp::plan::display::human_view(&plan, args.format.detail())),
        Format::Json => super::output::outln!("{}", super::output::plan_json(&plan, digest)),
        Format::Markdown => super::output::print_out(&kkp::plan::display::markdown_view(&plan, Some(digest), args.format.detail())),
    }
    if let Some(out) = &args.out {
        eprintln!("Saved the plan to {} (digest {digest}). Apply exactly this plan with: kkp apply {}", out.display(), out.display());
    }
    if plan.has_blocked() {
        eprintln!("error: some clusters were not planned (see the notes above)");
        return Ok(ExitCode::from(1));
    }
    let verdict = policy.as_ref().filter(|_| !plan.summary.is_empty()).map(|p| super::policy::check(p, &plan));
    let gate = args.detailed_exitcode || args.policy.policy.is_some();
    let code = match verdict {
        _ if plan.summary.is_empty() || !gate => ExitCode::SUCCESS,
        Some(verdict) => super::policy::exit_code(verdict.decision),
        None => ExitCode::from(super::policy::EXIT_ALLOWED),
    };
    // The process ends here: handing a fleet's plan and topology back to the allocator piece
    // by piece takes longer than the system takes to reclaim the whole heap.
    std::mem::forget((plan, topology));
    Ok(code)
}

/// `--refresh-only`: the drift alone.
fn refresh_only(plan: &Plan, args: &Args) -> ExitCode {
    match args.format.format() {
        Format::Json => {
            let value = serde_json::json!({"drift": plan.drift, "notices": plan.notices});
            super::output::outln!("{}", serde_json::to_string_pretty(&value).expect("drift serialises"));
        }
        _ => {
            super::output::print_out(&kkp::plan::display::drift_section(plan));
            for notice in &plan.notices {
                super::output::outln!("note: {}", kkp::plan::display::notice_text(notice));
            }
            if plan.drift.is_empty() {
                super::output::outln!("No changes outside kkp. The seeds hold what kkp applied.");
            } else {
                super::output::outln!(
                    "Apply `kkp apply --refresh-only` to record this as the state, or `kkp apply --refresh` to restore what kkp applied."
                );
            }
        }
    }
    if plan.has_blocked() && plan.notices.iter().any(|n| matches!(n, kkp::plan::Notice::SeedUnreadable { .. })) {
        return ExitCode::from(1);
    }
    if args.detailed_exitcode && !plan.drift.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS }
}

/// Loads the topology, noting ignored fields.
pub fn load_topology(args: &TopologyArgs) -> anyhow::Result<kkp::topology::Topology> {
    let topology = kkp::topology::load(&args.files)?;
    if !topology.notes.is_empty() {
        eprintln!("note: {} fields or documents are ignored; `kkp validate` lists them", topology.notes.len());
    }
    Ok(topology)
}

/// The plan options the flags ask for.
pub fn plan_options(flags: &PlanFlags) -> anyhow::Result<Options> {
    Ok(Options {
        now: super::now(),
        targets: super::addresses(&flags.targets)?,
        excludes: super::addresses(&flags.excludes)?,
        allow_destroy: super::addresses(&flags.allow_destroy)?,
        allow_downgrade: flags.allow_downgrade.clone(),
        refresh: flags.refresh,
        accept: super::addresses(&flags.accept)?,
        without_bodies: false,
    })
}
