//! `kkp validate -f PATH...`

use super::TopologyArgs;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match kkp::topology::load(&args.topology.files) {
        Ok(topology) => {
            for note in &topology.notes {
                super::output::outln!("note: {note}");
            }
            let datacenters: usize = topology.seeds.values().map(|s| s.datacenters.len()).sum();
            super::output::outln!(
                "valid: {} seeds, {} datacenters, {} clusters ({} notes)",
                topology.seeds.len(),
                datacenters,
                topology.clusters.len(),
                topology.notes.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
    }
}
