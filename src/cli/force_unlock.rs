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

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = super::state::open(&args.state).await?;
    let info = backend.force_unlock(&args.id).await?;
    println!("Unlocked {} (held by {} pid {} since {} for `{}`).", backend.describe(), info.who, info.pid, info.created, info.operation);
    Ok(ExitCode::SUCCESS)
}
