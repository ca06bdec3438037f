//! `kkp import -f TOPOLOGY [--kube [--context SEED=CTX]...|--dir DIR] [--seed NAME]... [--accept ADDR]...`

use super::{StateArgs, TopologyArgs};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    seeds: super::targets::SeedArgs,
    /// Import only this seed's clusters (repeatable; default: every seed of the topology).
    #[arg(long = "seed", value_name = "NAME")]
    only: Vec<String>,
    /// Adopt this cluster (cluster/NAME) or node even though adopting it would change etcd,
    /// issue a CA or key anew, or replace an object.
    #[arg(long = "accept", value_name = "ADDR")]
    accept: Vec<String>,
    /// Record without asking for confirmation.
    #[arg(long)]
    auto_approve: bool,
    /// Requests in flight while reading seeds.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = super::state::open(&args.state).await?;
    let topology = super::plan::load_topology(&args.topology)?;
    for seed in &args.only {
        if !topology.seeds.contains_key(seed) {
            anyhow::bail!(
                "--seed {seed}: the topology has no such seed\n  fix: use one of {}",
                topology.seeds.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let factory = args.seeds.factory(&args.topology.files, false)?;
    let accept = super::addresses(&args.accept)?;
    let (json, auto_approve) = (args.json, args.auto_approve);
    let approve = move |adoption: &kkp::import::Adoption| {
        if json {
            println!("{}", serde_json::to_string_pretty(&adoption.verdicts).expect("verdicts serialise"));
        } else {
            print!("{}", kkp::import::report(adoption));
            println!("\nThe state will record the adopted objects; nothing is written to the seeds.");
        }
        if auto_approve { Ok(true) } else { super::apply::confirm() }
    };
    let outcome = kkp::import::run(backend, &factory, &topology, &args.only, &accept, args.parallelism, &approve).await?;
    Ok(match outcome {
        kkp::import::Outcome::Declined => {
            println!("Import cancelled.");
            ExitCode::from(1)
        }
        kkp::import::Outcome::Recorded { nodes, serial, refused } => {
            eprintln!("Imported {nodes} nodes into the state (serial {serial}); {refused} clusters not adopted.");
            if refused > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
    })
}
