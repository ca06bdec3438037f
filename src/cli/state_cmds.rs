//! `kkp state list|show|rm|pull|push`: look into and repair a state. Writes take the state
//! lock and persist atomically (the file backend keeps the previous state as `.backup`);
//! nothing here touches a seed.

use super::StateArgs;
use kkp::address::Address;
use kkp::state::State;
use kkp::state::backend::Backend;
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// The state: a file, or `k8s://CONTEXT/NAMESPACE/NAME` for Secrets in a cluster.
    #[arg(
        long = "state",
        value_name = "FILE|k8s://CONTEXT/NAMESPACE/NAME",
        default_value = "kkp.state.json",
        env = "KKP_STATE",
        global = true
    )]
    state: String,
    /// Seconds a remote state's lock (a Lease) lives without renewal.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, global = true)]
    lock_duration: u64,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the addresses the state holds (under ADDR, a prefix, when given).
    List {
        /// Only addresses under this one.
        address: Option<String>,
    },
    /// Show what the state records of one node: role, seed and its target, object, digest,
    /// certificate fingerprint and not-after, and the applied body (Secret data redacted; the
    /// state never holds key material).
    Show {
        /// The node's address.
        address: String,
    },
    /// Forget nodes (address prefixes); the objects stay on their seeds. The next plan creates
    /// them again unless they leave the topology (or `kkp import` adopts them).
    Rm {
        /// Addresses (prefixes: `cluster/NAME` forgets a whole cluster).
        addresses: Vec<String>,
        /// Also forget every node on this seed and its recorded target (repeatable), e.g. to
        /// move the seed to another target.
        #[arg(long = "seed", value_name = "NAME")]
        seeds: Vec<String>,
    },
    /// Print the state (e.g. from a `k8s://` backend) to stdout.
    Pull,
    /// Replace the state with FILE (e.g. one pulled and repaired). Refused when its lineage is
    /// another, unless --force.
    Push {
        /// A state file.
        file: PathBuf,
        /// Push a state of another lineage.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let state_args = StateArgs { state: args.state, lock_duration: args.lock_duration, new_state: false, discard_journal_tail: false };
    let backend = super::state::open(&state_args).await?;
    match args.command {
        Command::List { address } => {
            let state = load(backend.as_ref()).await?;
            let prefix = address.as_deref().map(Address::parse).transpose().map_err(anyhow::Error::msg)?;
            let mut out = String::new();
            for address in state.nodes.keys().filter(|a| prefix.as_ref().is_none_or(|p| a.starts_with(p))) {
                out.push_str(address.as_str());
                out.push('\n');
            }
            if out.is_empty()
                && let Some(prefix) = prefix
            {
                anyhow::bail!("{prefix} matches nothing in the state\n  fix: run `kkp state list` to see what it holds");
            }
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { address } => {
            let state = load(backend.as_ref()).await?;
            let address = Address::parse(&address).map_err(anyhow::Error::msg)?;
            let node = state.nodes.get(&address).ok_or_else(|| {
                anyhow::anyhow!(
                    "{address} is not in the state\n  fix: run `kkp state list {}` to see what it holds",
                    address.as_str().split('/').take(2).collect::<Vec<_>>().join("/")
                )
            })?;
            print!("{}", show(&state, &address, node, backend.objects().read_json(&node.digest)));
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm { addresses, seeds } => {
            if addresses.is_empty() && seeds.is_empty() {
                anyhow::bail!("nothing to remove\n  fix: name addresses (e.g. cluster/NAME) or --seed NAME");
            }
            let prefixes = super::addresses(&addresses)?;
            edit(backend, "state rm", |state| {
                let removed = kkp::state::edit::remove(state, &prefixes, &seeds)?;
                Ok(format!("Removed {} nodes from the state; their objects were left on the seeds.", removed.len()))
            })
            .await
        }
        Command::Pull => {
            let state = load(backend.as_ref()).await?;
            use std::io::Write;
            std::io::stdout().write_all(&kkp::state::format::to_bytes(&state))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Push { file, force } => {
            let bytes = std::fs::read(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let pushed = kkp::state::format::from_bytes(&file, &bytes)?;
            edit(backend, "state push", move |state| {
                if state.lineage != pushed.lineage && !force {
                    anyhow::bail!(
                        "{} has lineage {}, but the state has lineage {}: it is another state\n  fix: check --state, or pass --force to replace it anyway",
                        file.display(),
                        pushed.lineage,
                        state.lineage
                    );
                }
                let serial = state.serial;
                *state = pushed.clone();
                // `edit` bumps it past both.
                state.serial = serial.max(pushed.serial);
                Ok(format!("Pushed {} ({} nodes).", file.display(), state.nodes.len()))
            })
            .await
        }
    }
}

async fn load(backend: &dyn Backend) -> anyhow::Result<State> {
    let loaded = backend.load().await?;
    loaded.state.ok_or_else(|| anyhow::anyhow!("{} holds no state yet (nothing was applied)", backend.describe()))
}

/// Loads the state under the lock, changes it and persists it with the next serial.
async fn edit(
    backend: Arc<dyn Backend>,
    operation: &str,
    change: impl FnOnce(&mut State) -> anyhow::Result<String>,
) -> anyhow::Result<ExitCode> {
    let lock = backend.lock(operation).await?;
    let result = async {
        let mut state = load(backend.as_ref()).await?;
        let message = change(&mut state)?;
        state.serial += 1;
        backend.persist(&state, lock.as_ref()).await?;
        Ok::<_, anyhow::Error>(format!("{message} State serial {}.", state.serial))
    }
    .await;
    lock.release().await;
    println!("{}", result?);
    Ok(ExitCode::SUCCESS)
}

/// The text of `kkp state show`.
fn show(state: &State, address: &Address, node: &kkp::state::NodeState, body: Option<Value>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "address:  {address}");
    let _ = writeln!(out, "role:     {}", node.role.as_str());
    let target = state.targets.get(&node.seed).map(ToString::to_string).unwrap_or_else(|| "not recorded".into());
    let _ = writeln!(out, "seed:     {} ({target})", node.seed);
    if let Some(object) = &node.object {
        let _ = writeln!(out, "object:   {object}");
    }
    let _ = writeln!(out, "digest:   {}", node.digest);
    if let Some(cert) = &node.certificate {
        let _ = writeln!(out, "certificate:");
        let _ = writeln!(out, "  fingerprint: {}", cert.fingerprint);
        if let Some(t) = cert.not_after {
            let when = time::OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| t.to_string());
            let _ = writeln!(out, "  not after:   {when}");
        }
        if let Some(issuer) = &cert.issuer_fingerprint {
            let _ = writeln!(out, "  issuer:      {issuer}");
        }
        let _ = writeln!(out, "  request:     {}", cert.request_digest);
    }
    match body {
        Some(mut body) => {
            redact(&mut body);
            let _ = writeln!(out, "applied body:");
            for line in serde_json::to_string_pretty(&body).expect("JSON").lines() {
                let _ = writeln!(out, "  {line}");
            }
        }
        None => {
            let _ = writeln!(out, "applied body: not in the object store (only the digest is authoritative)");
        }
    }
    out
}

/// Secret data in a body shows as `(sensitive)`; a Secret kkp issues has only its request.
fn redact(body: &mut Value) {
    if body.get("kind").and_then(Value::as_str) == Some("Secret") {
        for key in ["data", "stringData"] {
            if let Some(map) = body.get_mut(key).and_then(Value::as_object_mut) {
                for value in map.values_mut() {
                    *value = Value::String(kkp::plan::diff::SENSITIVE.into());
                }
            }
        }
    }
}
