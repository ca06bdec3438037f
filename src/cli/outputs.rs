//! `kkp output -f PATH... [CLUSTER] [--json]`: what a user of a cluster needs: its apiserver
//! URL, its CA certificate (public; read from the seed), and how to fetch the admin kubeconfig
//! from the seed (kkp never holds it).

use super::{StateArgs, TopologyArgs};
use kkp::apply::TargetFactory;
use kkp::object::{Kind, ObjectRef};
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    state: StateArgs,
    #[command(flatten)]
    seeds: super::targets::SeedArgs,
    /// Only this cluster.
    cluster: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let backend = super::state::open(&args.state).await?;
    let state = backend.load().await?.state;
    let topology = super::plan::load_topology(&args.topology)?;
    let clusters: Vec<_> = topology.clusters.values().filter(|c| args.cluster.as_ref().is_none_or(|n| *n == c.name)).collect();
    if let Some(name) = &args.cluster
        && clusters.is_empty()
    {
        anyhow::bail!(
            "cluster {name} is not in the topology\n  fix: use one of {}",
            topology.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let factory = args.seeds.factory_for(&args.topology.files, state.as_ref())?;
    let mut out = Vec::new();
    for cluster in clusters {
        let namespace = cluster.namespace();
        let ca = ObjectRef::namespaced(Kind::Secret, &namespace, "ca");
        let ca_pem = match factory.targets(&std::collections::BTreeSet::from([cluster.seed.clone()])).await {
            Ok(targets) => match targets[&cluster.seed].get(&ca).await {
                Ok(Some(secret)) => {
                    kkp::refresh::drift::secret_data(&secret).get("ca.crt").map(|b| String::from_utf8_lossy(b).into_owned())
                }
                Ok(None) => None,
                Err(e) => {
                    eprintln!("warning: cluster {}: cannot read its CA from seed {}: {e}", cluster.name, cluster.seed);
                    None
                }
            },
            Err(e) => {
                eprintln!("warning: cluster {}: {e}", cluster.name);
                None
            }
        };
        let address = kkp::address::Address::cluster_object(&cluster.name, Kind::Secret, "ca");
        let fingerprint =
            state.as_ref().and_then(|s| s.nodes.get(&address)).and_then(|n| n.certificate.as_ref()).map(|c| c.fingerprint.clone());
        let fetch = match state.as_ref().and_then(|s| s.targets.get(&cluster.seed)) {
            Some(kkp::state::SeedTarget::Dir { path }) => {
                format!("{path}/{}/{namespace}/secret-admin-kubeconfig.yaml (data.kubeconfig, base64)", cluster.seed)
            }
            _ => format!(
                "kubectl --context {} -n {namespace} get secret admin-kubeconfig -o jsonpath='{{.data.kubeconfig}}' | base64 -d > {}.kubeconfig",
                cluster.seed, cluster.name
            ),
        };
        out.push(json!({
            "cluster": cluster.name,
            "seed": cluster.seed,
            "apiserverUrl": kkp::render::external_url(cluster),
            "caFingerprint": fingerprint,
            "caCertificate": ca_pem,
            "adminKubeconfig": fetch,
        }));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for entry in &out {
            let text = |key: &str| entry[key].as_str().unwrap_or("unknown").to_string();
            println!("cluster {} (seed {})", text("cluster"), text("seed"));
            println!("  apiserver URL:    {}", text("apiserverUrl"));
            println!("  CA fingerprint:   {}", text("caFingerprint"));
            println!("  admin kubeconfig: {}", text("adminKubeconfig"));
            match entry["caCertificate"].as_str() {
                Some(pem) => print!("  CA certificate:\n{}", pem.lines().map(|l| format!("    {l}\n")).collect::<String>()),
                None => println!("  CA certificate:   not readable from the seed"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
