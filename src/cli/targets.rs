//! Choosing and building targets: the directory (default) or Kubernetes API servers.

use kkp::state::SeedTarget;
use kkp::target::Targets;
use kkp::target::dir::DirTarget;
use kkp::target::kube::{KubeTarget, Sources};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the seeds are: shared by plan (which reads them with --refresh) and apply.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    /// Write seeds' objects as YAML under DIR/<seed>/ (the offline target; apply's default is
    /// kkp-seeds, plan's the target the state recorded).
    #[arg(long, value_name = "DIR", conflicts_with = "kube")]
    dir: Option<PathBuf>,
    /// Apply to (or, with --refresh, read) the seeds' Kubernetes API servers.
    #[arg(long)]
    kube: bool,
    /// Kubeconfig with the seeds' contexts (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Use CONTEXT of the kubeconfig for SEED (repeatable).
    #[arg(long = "context", value_name = "SEED=CONTEXT")]
    contexts: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TargetArgs {
    #[command(flatten)]
    pub seeds: SeedArgs,
    /// Take over objects and fields that other field managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Seconds to wait for a workload others depend on (etcd) to become ready, and with
    /// --waves for a wave's apiservers to answer /readyz ready.
    #[arg(long, default_value_t = 600)]
    pub ready_timeout: u64,
}

/// The directory target when none is named.
const DEFAULT_DIR: &str = "kkp-seeds";

impl SeedArgs {
    /// True when the seeds are reached through their API servers.
    pub fn is_kube(&self) -> bool {
        self.kube || self.kubeconfig.is_some() || !self.contexts.is_empty()
    }

    /// True when a target was named on the command line.
    pub fn is_explicit(&self) -> bool {
        self.is_kube() || self.dir.is_some()
    }

    fn dir(&self) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
    }

    /// For messages.
    pub fn describe(&self) -> String {
        if self.is_kube() { "the seeds' Kubernetes API servers".into() } else { format!("directory {}", self.dir().display()) }
    }

    /// An object file kkp wrote already under the directory target (None for the kube target).
    pub fn existing_object(&self) -> Option<PathBuf> {
        if self.is_kube() {
            return None;
        }
        let mut stack = vec![self.dir()];
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

    /// The factory for the named target (the default directory when none is named). `files`
    /// may hold the Seeds' kubeconfig Secrets.
    pub fn factory(&self, files: &[PathBuf], force_conflicts: bool) -> anyhow::Result<Factory> {
        let mode = if self.is_kube() { Mode::Kube(self.sources(files)?) } else { Mode::Dir(self.dir()) };
        Ok(Factory { mode, force_conflicts, description: self.describe() })
    }

    /// The factory for reading seeds where the state says they were applied, unless a target
    /// is named (then it is checked against the state).
    pub fn factory_for(&self, files: &[PathBuf], state: Option<&kkp::state::State>) -> anyhow::Result<Factory> {
        if self.is_explicit() {
            return self.factory(files, false);
        }
        let recorded = state.map(|s| s.targets.clone()).unwrap_or_default();
        let sources =
            if recorded.values().any(|t| matches!(t, SeedTarget::Kube { .. })) { self.sources(files)? } else { Sources::default() };
        Ok(Factory {
            mode: Mode::Recorded { recorded, sources, default: self.dir() },
            force_conflicts: false,
            description: "the targets the state recorded".into(),
        })
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

impl TargetArgs {
    /// The factory apply calls for the seeds a plan writes to. `files` may hold the Seeds'
    /// kubeconfig Secrets.
    pub fn factory(&self, files: &[PathBuf]) -> anyhow::Result<Factory> {
        self.seeds.factory(files, self.force_conflicts)
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

/// How seeds are reached.
enum Mode {
    Dir(PathBuf),
    Kube(Sources),
    /// Each seed where the state says it was applied; unrecorded seeds in `default`.
    Recorded {
        recorded: BTreeMap<String, SeedTarget>,
        sources: Sources,
        default: PathBuf,
    },
}

/// Builds a seed's target: a directory, or a connection to its API server.
pub struct Factory {
    mode: Mode,
    force_conflicts: bool,
    description: String,
}

#[async_trait::async_trait]
impl kkp::apply::TargetFactory for Factory {
    async fn targets(&self, seeds: &std::collections::BTreeSet<String>) -> Result<Targets, kkp::target::Error> {
        let mut targets = Targets::new();
        for seed in seeds {
            let target: Arc<dyn kkp::target::Target> = match &self.mode {
                Mode::Dir(dir) => {
                    let target = DirTarget::new(dir, seed);
                    target.remove_leftovers();
                    Arc::new(target)
                }
                Mode::Kube(sources) => Arc::new(KubeTarget::new(sources.resolve(seed).await?, self.force_conflicts)?),
                Mode::Recorded { recorded, sources, default } => match recorded.get(seed) {
                    Some(SeedTarget::Dir { path }) => Arc::new(DirTarget::new(std::path::Path::new(path), seed)),
                    Some(SeedTarget::Kube { .. }) => Arc::new(KubeTarget::new(sources.resolve(seed).await?, self.force_conflicts)?),
                    None => Arc::new(DirTarget::new(default, seed)),
                },
            };
            targets.insert(seed.clone(), target);
        }
        Ok(targets)
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn reaches_api_server(&self, seed: &str) -> bool {
        match &self.mode {
            Mode::Dir(_) => false,
            Mode::Kube(_) => true,
            Mode::Recorded { recorded, .. } => matches!(recorded.get(seed), Some(SeedTarget::Kube { .. })),
        }
    }
}
