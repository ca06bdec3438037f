//! `kkp graph -f PATH [--cluster NAME]`

use super::TopologyArgs;
use kkp::address::Address;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArgs,
    /// Only this cluster's nodes.
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let topology = kkp::topology::load(&args.topology.files)?;
    if let Some(name) = &args.cluster
        && !topology.clusters.contains_key(name)
    {
        anyhow::bail!(
            "cluster {name:?} is not in the topology\n  fix: use one of: {}",
            topology.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let nodes = kkp::render::topology(&topology);
    let dag = kkp::graph::Dag::new(nodes.iter().map(|n| (&n.address, n.deps.as_slice())))?;
    let keep = |a: &Address| args.cluster.as_deref().is_none_or(|c| a.cluster() == Some(c));
    super::output::print_out(&dag.to_dot(keep));
    let levels = dag.levels();
    let path: Vec<String> = dag.critical_path_to(keep).into_iter().map(|i| dag.address(i).to_string()).collect();
    let kept: Vec<usize> = (0..dag.len()).filter(|&i| keep(dag.address(i))).collect();
    eprintln!(
        "{} nodes, {} levels; critical path ({} steps): {}",
        kept.len(),
        kept.iter().map(|&i| levels[i]).max().map_or(0, |l| l + 1),
        path.len(),
        path.join(" -> ")
    );
    Ok(ExitCode::SUCCESS)
}
