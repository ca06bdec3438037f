//! `kkp plan -f PATH... [-o PLANFILE] [--json|--markdown] [--detailed-exitcode] [--target ADDR]...`

use super::output::{Format, FormatArgs};
use super::{StateArgs, TopologyArgs};
use kkp::plan::{Options, Plan};
use kkp::state::State;
use kkp::state::backend::Backend;
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
}

impl PlanFlags {
    /// True when no flag was given (a saved plan takes none).
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.excludes.is_empty() && self.allow_destroy.is_empty() && self.allow_downgrade.is_empty()
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
    /// Save the plan here, for `kkp apply PLANFILE`.
    #[arg(short = 'o', long = "out", value_name = "PLANFILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    format: FormatArgs,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    detailed_exitcode: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
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
    let plan = make_plan(&args.topology, &args.flags, backend.as_ref(), loaded.state.as_ref())?;
    let format = args.format.format();
    // The saved form (and its digest) costs a serialisation of every body in the plan: a
    // fleet's first plan holds hundreds of thousands. Only make it when it is used.
    let saved = (args.out.is_some() || format != Format::Human).then(|| kkp::plan::file::to_bytes(&plan));
    let digest = saved.as_ref().map(|(_, d)| d.as_str()).unwrap_or_default();
    match format {
        Format::Human => super::output::print_human(&kkp::plan::display::human(&plan)),
        Format::Json => super::output::outln!("{}", super::output::plan_json(&plan, digest)),
        Format::Markdown => super::output::print_out(&kkp::plan::display::markdown(&plan, Some(digest))),
    }
    if let (Some(out), Some((bytes, _))) = (&args.out, &saved) {
        kkp::state::file::write_atomic(out, bytes)?;
        eprintln!("Saved the plan to {} (digest {digest}). Apply exactly this plan with: kkp apply {}", out.display(), out.display());
    }
    Ok(if args.detailed_exitcode && !plan.summary.is_empty() { ExitCode::from(2) } else { ExitCode::SUCCESS })
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
    })
}

/// Loads the topology and plans it against `state`.
pub fn make_plan(topology: &TopologyArgs, flags: &PlanFlags, backend: &dyn Backend, state: Option<&State>) -> anyhow::Result<Plan> {
    let topology = load_topology(topology)?;
    let priors = |digest: &str| backend.objects().read_json(digest);
    Ok(kkp::plan::create(&topology, state, &priors, &plan_options(flags)?)?)
}
