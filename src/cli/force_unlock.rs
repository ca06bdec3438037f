//! `kkp force-unlock ID`

use super::StateArgs;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lock ID printed by the command that found the state locked.
    id: String,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = kkp::state::file::FileBackend::new(&args.state.state);
    let info = backend.force_unlock(&args.id)?;
    println!(
        "Unlocked {} (held by {} pid {} since {} for `{}`).",
        args.state.state.display(),
        info.who,
        info.pid,
        info.created,
        info.operation
    );
    Ok(ExitCode::SUCCESS)
}
