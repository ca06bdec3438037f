//! Targets: where a seed's objects go. [`Target`] is the whole contract apply relies on:
//! get, list, server-side apply, delete and readiness waits, per seed.
//!
//! [`dir::DirTarget`] writes YAML files (the offline default). Refresh reads through the same
//! trait ([`Target::list`] with kkp's label, [`Target::dry_run_apply`]), and
//! [`Target::identity`] names the place the state records. Errors say which seed and
//! whether retrying may help ([`Error::is_transient`]).

pub mod dir;
pub mod kube;
pub mod version;

use crate::object::ObjectRef;
use crate::state::ObjectVersion;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Errors talking to a target.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the directory target.
    #[error("seed {seed}: {}: {source}", path.display())]
    Io {
        /// The seed.
        seed: String,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A stored object could not be read back.
    #[error("seed {seed}: {}: not a Kubernetes object: {message}", path.display())]
    Unreadable {
        /// The seed.
        seed: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The API answered with an error.
    #[error("seed {seed}: {object}: {message}")]
    Api {
        /// The seed.
        seed: String,
        /// The object.
        object: String,
        /// The API's message.
        message: String,
        /// HTTP status, if any.
        status: Option<u16>,
        /// Whether a retry may succeed (429, 5xx, timeouts, dropped connections).
        transient: bool,
        /// How long the server asked to wait before retrying (Retry-After).
        retry_after: Option<Duration>,
    },
    /// Another field manager owns fields kkp wants to set.
    #[error(
        "seed {seed}: {object}: field conflict with manager {manager:?}: {message}\n  fix: re-run with --force-conflicts to take the fields over, or stop {manager:?} from managing them"
    )]
    Conflict {
        /// The seed.
        seed: String,
        /// The object.
        object: String,
        /// The other manager.
        manager: String,
        /// The API's message.
        message: String,
    },
    /// The seed cannot be reached or its credentials are refused.
    #[error("seed {seed} ({context}): {message}")]
    Unreachable {
        /// The seed.
        seed: String,
        /// How it was reached: `context NAME`, `Secret NAMESPACE/NAME`, or `no connection`.
        context: String,
        /// What went wrong.
        message: String,
        /// Whether a retry may succeed.
        transient: bool,
    },
    /// A workload did not become ready in time.
    #[error("seed {seed}: {object} was not ready after {waited:?}")]
    NotReady {
        /// The seed.
        seed: String,
        /// The object.
        object: String,
        /// How long apply waited.
        waited: Duration,
    },
}

impl Error {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { transient, .. } | Error::Unreachable { transient, .. } => *transient,
            _ => false,
        }
    }

    /// How long the server asked to wait before the next attempt, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl Error {
    /// A request that could not be made at all (no retry will help).
    pub fn invalid(seed: &str, object: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Api { seed: seed.into(), object: object.into(), message: message.into(), status: None, transient: false, retry_after: None }
    }
}

/// The identity of a manifest about to be written to `seed`.
pub fn identity(seed: &str, manifest: &Value) -> Result<ObjectRef> {
    ObjectRef::of(manifest).ok_or_else(|| Error::invalid(seed, "object", "the manifest has no apiVersion, kind or name"))
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One seed's API (or stand-in).
#[async_trait]
pub trait Target: Send + Sync {
    /// Reads an object; `Ok(None)` when it does not exist.
    async fn get(&self, object: &ObjectRef) -> Result<Option<Value>>;
    /// Reads an object's apiVersion, kind and metadata only (an API server answers a
    /// `PartialObjectMetadata`): enough to learn whether it exists and who made it.
    async fn get_metadata(&self, object: &ObjectRef) -> Result<Option<Value>> {
        let found = self.get(object).await?;
        Ok(found.map(|o| serde_json::json!({"apiVersion": o.get("apiVersion"), "kind": o.get("kind"), "metadata": o.get("metadata")})))
    }
    /// Lists objects of `kind` in `namespace` (all when None) carrying all
    /// of `labels`.
    async fn list(&self, kind: crate::object::Kind, namespace: Option<&str>, labels: &BTreeMap<String, String>) -> Result<Vec<Value>>;
    /// Like [`Target::list`], but only apiVersion, kind and metadata of each object (an API
    /// server answers a `PartialObjectMetadataList`): for reads that only need to know what
    /// exists and who owns it, so no spec or Secret data is transferred or held.
    async fn list_metadata(
        &self,
        kind: crate::object::Kind,
        namespace: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Vec<Value>> {
        let full = self.list(kind, namespace, labels).await?;
        Ok(full
            .into_iter()
            .map(|o| serde_json::json!({"apiVersion": o.get("apiVersion"), "kind": o.get("kind"), "metadata": o.get("metadata")}))
            .collect())
    }
    /// Server-side applies `manifest` (field manager `kkp`); the object's version after it,
    /// when the target keeps versions ([`version`]).
    async fn apply(&self, manifest: &Value) -> Result<Option<ObjectVersion>>;
    /// For each of `recorded` (objects of `kind` with the version kkp recorded after applying
    /// each), whether the target holds it unchanged since, learnt from one metadata-only list
    /// of the objects carrying `labels` ([`version`]). None when the target keeps no versions
    /// (a directory): then every object is read and compared.
    async fn list_unchanged(
        &self,
        _kind: crate::object::Kind,
        _labels: &BTreeMap<String, String>,
        _recorded: &[(&ObjectRef, &ObjectVersion)],
    ) -> Result<Option<Vec<bool>>> {
        Ok(None)
    }
    /// Deletes an object; `Ok(false)` when it was already gone.
    async fn delete(&self, object: &ObjectRef) -> Result<bool>;
    /// Waits until a Deployment or StatefulSet reports all replicas ready.
    async fn wait_ready(&self, object: &ObjectRef, timeout: Duration) -> Result<()>;

    /// True when an object can only exist inside a namespace that exists, as on an API
    /// server: then a namespace apply created from nothing is known to be empty.
    fn namespaces_contain_everything(&self) -> bool {
        false
    }

    /// Where this target is, as the state records it: a directory, or an API server and the
    /// UID of its kube-system namespace.
    async fn identity(&self) -> Result<crate::state::SeedTarget>;

    /// What the object would be after kkp applied `manifest`, taking over fields other
    /// managers own, without changing anything (a server-side dry-run apply). A directory
    /// stores exactly the manifest.
    async fn dry_run_apply(&self, manifest: &Value) -> Result<Value> {
        Ok(manifest.clone())
    }

    /// The objects of a collection outside kkp's kind table (e.g.
    /// `/apis/kubermatic.k8c.io/v1/clusters`), in pages; none when the seed does not serve it.
    /// Import reads KKP's Seeds, Clusters and KubermaticConfiguration this way.
    async fn list_path(&self, _path: &str) -> Result<Vec<Value>> {
        Ok(Vec::new())
    }

    /// Puts kkp's ownership label on an object someone else made (import), changing nothing
    /// else. `Ok(false)` when the object is gone.
    async fn add_managed_by_label(&self, object: &ObjectRef) -> Result<bool> {
        let Some(mut found) = self.get(object).await? else { return Ok(false) };
        found["metadata"]["labels"][crate::render::MANAGED_BY.0] = Value::String(crate::render::MANAGED_BY.1.into());
        self.apply(&found).await?;
        Ok(true)
    }

    /// KKP's `Cluster` object named `name` (kubermatic.k8c.io/v1), if the seed has one: import
    /// refuses clusters KKP's controllers still manage.
    async fn kkp_cluster(&self, _name: &str) -> Result<Option<Value>> {
        Ok(None)
    }

    /// GETs `path` behind a Service through the API server's service proxy
    /// (`/api/v1/namespaces/NAMESPACE/services/SERVICE/proxy/PATH`, SERVICE as
    /// `[SCHEME:]NAME[:PORT]`): the status and body of the answer, whether the proxy or the
    /// Service's backend gave it. `Ok(None)`: the target has no API server to ask (a directory).
    async fn proxy_get(&self, _namespace: &str, _service: &str, _path: &str) -> Result<Option<(u16, String)>> {
        Ok(None)
    }

    /// Server-side applies `manifest`, taking over fields other managers own: restoring what
    /// someone changed outside kkp.
    async fn apply_taking_over(&self, manifest: &Value) -> Result<Option<ObjectVersion>> {
        self.apply(manifest).await
    }
}

/// The targets of all seeds, by seed name.
pub type Targets = BTreeMap<String, Arc<dyn Target>>;
