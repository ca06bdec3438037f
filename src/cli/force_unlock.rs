//! `kkp force-unlock ID [--force]`: shows who holds the lock and whether they look alive, and
//! asks before breaking it.

use super::StateArgs;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The lock ID printed by the command that found the state locked.
    id: String,
    #[command(flatten)]
    state: StateArgs,
    /// Break the lock without asking, even if its holder looks alive.
    #[arg(long, short = 'f')]
    force: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = super::state::open(&args.state).await?;
    let Some(holder) = backend.holder().await? else {
        anyhow::bail!("{} is not locked", backend.describe());
    };
    if let Some(info) = &holder.info {
        eprintln!(
            "The lock on {} is held by {} (pid {}) since {} for `{}` (lock ID {}).",
            backend.describe(),
            info.who,
            info.pid,
            info.created,
            info.operation,
            info.id
        );
    }
    eprintln!("Holder: {}.", holder.status);
    if !args.force {
        if holder.alive {
            eprintln!("Breaking a live holder's lock lets two writers change the state at once.");
        }
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("force-unlock needs confirmation, but stdin is not a terminal\n  fix: check the holder above, then pass --force");
        }
        eprint!("Break this lock? Only 'yes' will be accepted: ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            eprintln!("Lock kept.");
            return Ok(ExitCode::from(1));
        }
    }
    let info = backend.force_unlock(&args.id).await?;
    super::output::outln!(
        "Unlocked {} (held by {} pid {} since {} for `{}`).",
        backend.describe(),
        info.who,
        info.pid,
        info.created,
        info.operation
    );
    Ok(ExitCode::SUCCESS)
}
