//! Opening the state backend named by `--state`.

use super::StateArgs;
use kkp::state::backend::Backend;
use kkp::state::file::FileBackend;
use kkp::state::kube::KubeBackend;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The backend for `--state`: a file path, or `k8s://CONTEXT/NAMESPACE/NAME`. The context is
/// looked up in `KKP_KUBECONFIG`, `KUBECONFIG` or `~/.kube/config`.
pub async fn open(args: &StateArgs) -> anyhow::Result<Arc<dyn Backend>> {
    let Some(rest) = args.state.strip_prefix("k8s://") else {
        return Ok(Arc::new(FileBackend::new(&args.state).with_recovery(args.recovery())));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [context, namespace, name] = parts[..] else {
        anyhow::bail!("--state {}: expected k8s://CONTEXT/NAMESPACE/NAME", args.state);
    };
    let kubeconfig = match std::env::var_os("KKP_KUBECONFIG") {
        Some(path) => kube::config::Kubeconfig::read_from(&path)
            .map_err(|e| anyhow::anyhow!("cannot read kubeconfig {}: {e}", PathBuf::from(&path).display()))?,
        None => kube::config::Kubeconfig::read()
            .map_err(|e| anyhow::anyhow!("--state {}: cannot read a kubeconfig (KUBECONFIG, ~/.kube/config): {e}", args.state))?,
    };
    let options = kube::config::KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| anyhow::anyhow!("--state {}: context {context}: {e}", args.state))?;
    let client = kube::Client::try_from(config)?;
    let objects = PathBuf::from(".kkp").join("objects").join(format!("{context}-{namespace}-{name}"));
    Ok(Arc::new(
        KubeBackend::new(client, args.state.clone(), namespace, name, Duration::from_secs(args.lock_duration.max(1)), objects)
            .with_recovery(args.recovery()),
    ))
}
