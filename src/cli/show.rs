//! `kkp show PLANFILE [--json | --markdown]`

use super::output::Format;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A plan saved with `kkp plan -o`.
    planfile: PathBuf,
    #[command(flatten)]
    format: super::output::FormatArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.planfile).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.planfile.display()))?;
    let (plan, digest) = kkp::plan::file::from_bytes(&args.planfile, &bytes)?;
    match args.format.format() {
        Format::Human => {
            super::output::print_human(&kkp::plan::display::human_view(&plan, args.format.detail()));
            super::output::outln!("Plan digest: {digest}");
        }
        Format::Json => super::output::outln!("{}", super::output::plan_json(&plan, &digest)),
        Format::Markdown => super::output::print_out(&kkp::plan::display::markdown_view(&plan, Some(&digest), args.format.detail())),
    }
    Ok(ExitCode::SUCCESS)
}
