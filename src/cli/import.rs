//! `kkp import (-f TOPOLOGY [-o PLANFILE] | --master-context CTX -o DIR) [--kube [--context SEED=CTX]...|--dir DIR]
//! [--seed NAME]... [--accept ADDR]...`
//!
//! Without `-o` it reports, asks and records at once. With `-o` it records nothing: it saves
//! the import as a plan (PLANFILE, or DIR/import.plan beside DIR/topology.yaml) to review and
//! apply with `kkp apply PLANFILE --expect-digest DIGEST`.

use super::{StateArgs, TopologyArgs};
use kkp::apply::TargetFactory;
use kkp::target::Target;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The topology the live objects are compared with (KKP YAML). Without it, --master-context
    /// and -o write one from the live Seeds, Clusters and KubermaticConfiguration.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required_unless_present = "master_context")]
    files: Vec<PathBuf>,
    /// The kubeconfig context of KKP's master cluster, where the KubermaticConfiguration and
    /// the Seeds live (namespace kubermatic). Needs -o DIR.
    #[arg(long, value_name = "CONTEXT", requires = "out", conflicts_with = "files")]
    master_context: Option<String>,
    /// Save the import as a plan instead of recording it: with -f, the plan file to write;
    /// with --master-context, a directory that gets topology.yaml (clean KKP YAML read from the
    /// master and the seeds: no status, no server metadata, no Secrets) and import.plan.
    /// Review it (`kkp show`), then `kkp apply PLANFILE --expect-digest DIGEST` records it and
    /// writes only kkp's ownership label.
    #[arg(short = 'o', long = "out", value_name = "PLANFILE|DIR")]
    out: Option<PathBuf>,
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
    /// Record without asking for confirmation (without -o).
    #[arg(long)]
    auto_approve: bool,
    /// Requests in flight while reading seeds.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Print the report as JSON (with -o: the plan and its digest, as `kkp plan --json`).
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = super::state::open(&args.state).await?;
    let (files, plan_file) = match (&args.out, &args.master_context) {
        (Some(dir), Some(context)) => (vec![export(&args, dir, context).await?], Some(dir.join("import.plan"))),
        (out, _) => (args.files.clone(), out.clone()),
    };
    let topology = super::plan::load_topology(&TopologyArgs { files: files.clone() })?;
    for seed in &args.only {
        if !topology.seeds.contains_key(seed) {
            anyhow::bail!(
                "--seed {seed}: the topology has no such seed\n  fix: use one of {}",
                topology.seeds.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    let factory = args.seeds.factory(&files, false)?;
    let accept = super::addresses(&args.accept)?;
    if let Some(path) = plan_file {
        return save_plan(&args, backend, &factory, &topology, &accept, &path).await;
    }
    let (json, auto_approve) = (args.json, args.auto_approve);
    let approve = move |adoption: &kkp::import::Adoption| {
        if json {
            println!("{}", serde_json::to_string_pretty(&adoption.verdicts).expect("verdicts serialise"));
        } else {
            print!("{}", kkp::import::report(adoption));
            println!(
                "\nThe state will record the adopted objects; of the seeds, only kkp's ownership label is written to adopted objects kkp did not make."
            );
        }
        if auto_approve { Ok(true) } else { super::apply::confirm() }
    };
    let outcome = kkp::import::run(backend, &factory, &topology, &args.only, &accept, args.parallelism, &approve).await?;
    Ok(match outcome {
        kkp::import::Outcome::Declined => {
            println!("Import cancelled.");
            ExitCode::from(1)
        }
        kkp::import::Outcome::Recorded { nodes, labelled, unlabelled, serial, refused } => {
            eprintln!(
                "Imported {nodes} nodes into the state (serial {serial}); {refused} clusters not adopted; {labelled} objects given kkp's ownership label."
            );
            for (object, error) in &unlabelled {
                eprintln!(
                    "warning: {object}: kkp's label could not be written ({error}); the state holds it, and a refresh reads it with a GET"
                );
            }
            if refused > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
    })
}

/// `kkp import -o`: reads the state (without locking it: applying the plan checks it is
/// unchanged) and the seeds, and saves the import as a plan; records and writes nothing.
async fn save_plan(
    args: &Args,
    backend: std::sync::Arc<dyn kkp::state::backend::Backend>,
    factory: &super::targets::Factory,
    topology: &kkp::topology::Topology,
    accept: &[kkp::address::Address],
    path: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let loaded = backend.load().await?;
    if loaded.recovered > 0 {
        anyhow::bail!(
            "{}: an interrupted apply left a journal; its records are not in the state yet\n  fix: run `kkp apply --refresh-only` (or any apply) to fold it in, then import again",
            backend.describe()
        );
    }
    let read = kkp::import::read(loaded.state, factory, topology, &args.only, accept, args.parallelism).await?;
    let plan = kkp::import::to_plan(&read.adoption, read.state.as_ref());
    let digest = kkp::state::file::write_atomic_with(path, |file| kkp::plan::file::write(&plan, file))?;
    if args.json {
        // As `kkp plan --json`: the plan (verdicts among its notices) with its digest.
        super::output::outln!("{}", super::output::plan_json(&plan, &digest));
    } else {
        super::output::print_human(&kkp::plan::display::human(&plan));
    }
    let refused = read.adoption.verdicts.values().filter(|v| matches!(v, kkp::import::Verdict::NotAdopted { .. })).count();
    eprintln!(
        "Saved the import plan to {} (digest {digest}): {} nodes to import, {refused} clusters not adopted. Nothing was recorded or written.\nApply exactly this plan with: kkp apply {} --expect-digest {digest}",
        path.display(),
        plan.summary.import,
        path.display()
    );
    Ok(if refused > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Reads KKP's KubermaticConfiguration and Seeds from the master and the Clusters from each
/// seed, and writes them as DIR/topology.yaml.
async fn export(args: &Args, dir: &std::path::Path, context: &str) -> anyhow::Result<PathBuf> {
    let mut sources = args.seeds.sources(&[])?;
    const MASTER: &str = "(master)";
    sources.contexts.insert(MASTER.into(), context.to_string());
    let master = kkp::target::kube::KubeTarget::new(sources.resolve(MASTER).await?, false)?;
    let mut configurations = Vec::new();
    for path in kkp::import::CONFIGURATION_PATHS {
        configurations = master.list_path(path).await?;
        if !configurations.is_empty() {
            break;
        }
    }
    let configurations: Vec<_> =
        configurations.iter().map(|c| kkp::import::clean(c, "operator.kubermatic.io/v1", "KubermaticConfiguration")).collect();
    let seeds: Vec<_> = master
        .list_path(kkp::import::SEEDS_PATH)
        .await?
        .iter()
        .map(|s| kkp::import::clean(s, "kubermatic.k8c.io/v1", "Seed"))
        .filter(|s| {
            args.only.is_empty() || s.pointer("/metadata/name").and_then(|n| n.as_str()).is_some_and(|n| args.only.iter().any(|o| o == n))
        })
        .collect();
    if seeds.is_empty() {
        anyhow::bail!(
            "context {context}: no Seeds in namespace kubermatic\n  fix: pass the context of KKP's master cluster as --master-context"
        );
    }
    let factory = args.seeds.factory(&[], false)?;
    let mut clusters = Vec::new();
    for seed in &seeds {
        let name = seed.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        let targets = factory.targets(&std::collections::BTreeSet::from([name.clone()])).await?;
        for cluster in targets[&name].list_path(kkp::import::CLUSTERS_PATH).await? {
            clusters.push(kkp::import::clean(&cluster, "kubermatic.k8c.io/v1", "Cluster"));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("topology.yaml");
    kkp::state::file::write_atomic(&path, kkp::import::topology_yaml(&configurations, &seeds, &clusters).as_bytes())?;
    eprintln!("Wrote {} ({} configuration, {} seeds, {} clusters).", path.display(), configurations.len(), seeds.len(), clusters.len());
    Ok(path)
}
