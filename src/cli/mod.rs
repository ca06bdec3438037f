//! The command line: argument parsing, wiring, output and exit codes. Each command lives in
//! its own file with its clap arguments and a `run` that calls into the library.

mod apply;
mod force_unlock;
mod graph;
mod import;
mod output;
mod outputs;
mod plan;
mod policy;
mod progress;
mod show;
mod state;
mod state_cmds;
mod targets;
mod validate;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// kkp plans and applies KKP-style Kubernetes control planes the way Terraform plans and
/// applies infrastructure.
#[derive(Debug, Parser)]
#[command(name = "kkp", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No colours, even on a terminal (so does a non-empty NO_COLOR).
    #[arg(long, global = true)]
    no_color: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check topology files against KKP's rules; list fields kkp ignores.
    Validate(validate::Args),
    /// Show what apply would change, and optionally save it for apply.
    Plan(plan::Args),
    /// Apply a saved plan, or plan and apply after confirmation.
    ///
    /// Before the confirmation (or, for a saved plan, before it starts) apply prints the
    /// expected duration: the plan's critical path and its work over --parallelism, from the
    /// step timings earlier applies to the same kind of target recorded in the state; "unknown"
    /// until one has (docs/cli.md, "Expected duration").
    Apply(apply::Args),
    /// Render a saved plan.
    Show(show::Args),
    /// Print the dependency graph as Graphviz DOT.
    Graph(graph::Args),
    /// Break the state lock held by a process that is gone.
    ForceUnlock(force_unlock::Args),
    /// Adopt control planes that already run on the seeds into the state (zero-diff report).
    Import(import::Args),
    /// A cluster's apiserver URL, CA certificate, and how to fetch its admin kubeconfig.
    Output(outputs::Args),
    /// Look into and repair the state: list, show, rm, pull, push.
    State(state_cmds::Args),
}

/// Where the topology comes from.
#[derive(Debug, Clone, Args)]
pub struct TopologyArgs {
    /// Topology files or directories (KKP YAML: Seed, Cluster, KubermaticConfiguration); `-`
    /// reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
}

/// Where the state lives.
#[derive(Debug, Clone, Args)]
pub struct StateArgs {
    /// The state: a file, or `k8s://CONTEXT/NAMESPACE/NAME` for Secrets in a cluster.
    #[arg(long = "state", value_name = "FILE|k8s://CONTEXT/NAMESPACE/NAME", default_value = "kkp.state.json", env = "KKP_STATE")]
    pub state: String,
    /// Seconds a remote state's lock (a Lease) lives without renewal.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub lock_duration: u64,
    /// Start a new, empty state although an earlier one left traces (applied bodies, a
    /// backup, journal Secrets, objects in --dir); without it kkp refuses, since a plan from
    /// nothing would create every object again over the existing ones.
    #[arg(long)]
    pub new_state: bool,
    /// Recover an interrupted apply's journal up to its first corrupt record and drop the
    /// rest (the next apply re-applies what those records covered).
    #[arg(long)]
    pub discard_journal_tail: bool,
}

impl StateArgs {
    /// How loading may recover.
    pub fn recovery(&self) -> kkp::state::backend::Recovery {
        kkp::state::backend::Recovery { new_state: self.new_state, discard_journal_tail: self.discard_journal_tail }
    }
}

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    // Usage errors exit 1 like every other error: clap's own 2 would read as "changes pending"
    // to a CI gate using --detailed-exitcode.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    output::set_no_color(cli.no_color);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Validate(args) => validate::run(args),
            Command::Plan(args) => plan::run(args).await,
            Command::Apply(args) => apply::run(args).await,
            Command::Show(args) => show::run(args),
            Command::Graph(args) => graph::run(args),
            Command::ForceUnlock(args) => force_unlock::run(args).await,
            Command::State(args) => state_cmds::run(args).await,
            Command::Import(args) => import::run(args).await,
            Command::Output(args) => outputs::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", error_report(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

/// `error: ...` and each cause once: a cause whose text the message already holds (most
/// errors name their source) is not printed again.
fn error_report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut report = format!("error: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !report.contains(&text) {
            report.push_str(&format!("\n  caused by: {text}"));
        }
        source = cause.source();
    }
    report
}

/// The current time in unix seconds.
fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Parses `--target`-style addresses.
fn addresses(list: &[String]) -> anyhow::Result<Vec<kkp::address::Address>> {
    list.iter().map(|a| kkp::address::Address::parse(a).map_err(anyhow::Error::msg)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn an_error_that_names_its_cause_does_not_print_it_again() {
        let io = std::io::Error::new(std::io::ErrorKind::IsADirectory, "Is a directory (os error 21)");
        let error = anyhow::Error::from(kkp::state::Error::Io { path: "kkp.state.json".into(), source: io });
        let report = error_report(error.as_ref());
        assert_eq!(report, "error: kkp.state.json: Is a directory (os error 21)");
        let wrapped = error.context("cannot plan");
        assert_eq!(error_report(wrapped.as_ref()), "error: cannot plan\n  caused by: kkp.state.json: Is a directory (os error 21)");
    }

    #[test]
    fn every_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
