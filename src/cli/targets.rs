//! Choosing and building targets: the directory (default) or Kubernetes API servers.

use kkp::target::Targets;
use kkp::target::dir::DirTarget;
use kkp::target::kube::{KubeTarget, Sources};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    /// Write seeds' objects as YAML under DIR/<seed>/ (the offline target, the default).
    #[arg(long, value_name = "DIR", default_value = "kkp-seeds", conflicts_with = "kube")]
    dir: PathBuf,
    /// Apply to the seeds' Kubernetes API servers.
    #[arg(long)]
    kube: bool,
    /// Kubeconfig with the seeds' contexts (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Use CONTEXT of the kubeconfig for SEED (repeatable).
    #[arg(long = "context", value_name = "SEED=CONTEXT")]
    contexts: Vec<String>,
    /// Take over objects and fields that other field managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Seconds to wait for a workload others depend on (etcd) to become ready.
    #[arg(long, default_value_t = 600)]
    pub ready_timeout: u64,
}

impl TargetArgs {
    fn is_kube(&self) -> bool {
        self.kube || self.kubeconfig.is_some() || !self.contexts.is_empty()
    }

    /// For messages.
    pub fn describe(&self) -> String {
        if self.is_kube() { "the seeds' Kubernetes API servers".into() } else { format!("directory {}", self.dir.display()) }
    }

    /// An object file kkp wrote already under the directory target (None for the kube target).
    pub fn existing_object(&self) -> Option<PathBuf> {
        if self.is_kube() {
            return None;
        }
        let mut stack = vec![self.dir.clone()];
        while let Some(dir) = stack.pop() {
            for path in std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()) {
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml")
                    && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("app.kubernetes.io/managed-by: kkp"))
                {
                    // Only objects kkp wrote: foreign ones are reported object by object.
                    return Some(path);
                }
            }
        }
        None
    }

    /// The factory apply calls for the seeds a plan writes to. `files` may hold the Seeds'
    /// kubeconfig Secrets.
    pub fn factory(&self, files: &[PathBuf]) -> anyhow::Result<Factory> {
        let sources = if self.is_kube() { Some(self.sources(files)?) } else { None };
        Ok(Factory { dir: self.dir.clone(), sources, force_conflicts: self.force_conflicts, description: self.describe() })
    }

    /// Where connections come from (see `kkp::target::kube`).
    pub fn sources(&self, files: &[PathBuf]) -> anyhow::Result<Sources> {
        let mut contexts = BTreeMap::new();
        for pair in &self.contexts {
            let (seed, context) = pair.split_once('=').ok_or_else(|| anyhow::anyhow!("--context {pair}: expected SEED=CONTEXT"))?;
            contexts.insert(seed.to_string(), context.to_string());
        }
        let kubeconfig = match &self.kubeconfig {
            Some(path) => Some(
                kube::config::Kubeconfig::read_from(path).map_err(|e| anyhow::anyhow!("cannot read kubeconfig {}: {e}", path.display()))?,
            ),
            None => kube::config::Kubeconfig::read().ok(),
        };
        Ok(Sources { contexts, kubeconfig, seed_secrets: seed_secrets(files)? })
    }
}

/// Every Secret among the topology documents, by (namespace, name): the sources of Secrets
/// apply copies (cloud credentials).
pub fn topology_secrets(files: &[PathBuf]) -> anyhow::Result<kkp::apply::SecretSources> {
    if files.is_empty() {
        return Ok(Default::default());
    }
    let topology = kkp::topology::load(files)?;
    Ok(topology
        .kubeconfig_secrets
        .into_iter()
        .map(|(key, secret)| (key, secret.data.into_iter().map(|(k, v)| (k, v.into_bytes())).collect()))
        .collect())
}

/// The kubeconfigs of Seeds whose Secret is among the topology documents.
fn seed_secrets(files: &[PathBuf]) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    if files.is_empty() {
        return Ok(BTreeMap::new());
    }
    let topology = kkp::topology::load(files)?;
    let mut out = BTreeMap::new();
    for seed in topology.seeds.values() {
        let Some(reference) = &seed.kubeconfig else { continue };
        let key = (reference.namespace.clone(), reference.name.clone());
        if let Some(text) = topology.kubeconfig_secrets.get(&key).and_then(|s| s.data.get(&reference.key)) {
            out.insert(seed.name.clone(), (format!("Secret {}/{}", reference.namespace, reference.name), text.clone()));
        }
    }
    Ok(out)
}

/// Builds a seed's target: a directory, or a connection to its API server.
pub struct Factory {
    dir: PathBuf,
    /// None for the directory target.
    sources: Option<Sources>,
    force_conflicts: bool,
    description: String,
}

#[async_trait::async_trait]
impl kkp::apply::TargetFactory for Factory {
    async fn targets(&self, seeds: &std::collections::BTreeSet<String>) -> Result<Targets, kkp::target::Error> {
        let mut targets = Targets::new();
        for seed in seeds {
            let target: Arc<dyn kkp::target::Target> = match &self.sources {
                None => {
                    let target = DirTarget::new(&self.dir, seed);
                    target.remove_leftovers();
                    Arc::new(target)
                }
                Some(sources) => Arc::new(KubeTarget::new(sources.resolve(seed).await?, self.force_conflicts)?),
            };
            targets.insert(seed.clone(), target);
        }
        Ok(targets)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
