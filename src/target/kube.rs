//! The Kubernetes target: one kube-rs client per seed, server-side apply with field manager
//! `kkp`, readiness waits, and errors that name the seed and its context.
//!
//! Where a seed's connection comes from, first match wins:
//! 1. `--context SEED=CONTEXT`, a context of the kubeconfig;
//! 2. the kubeconfig Secret the Seed references (`spec.kubeconfig`), when it is among the
//!    topology documents, as in KKP's own examples;
//! 3. a context named like the seed in `--kubeconfig`, `KUBECONFIG` or `~/.kube/config`.

use super::{Error, Result, Target};
use crate::object::{Kind, ObjectRef};
use crate::state::ObjectVersion;
use async_trait::async_trait;
use bytes::Bytes;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The field manager kkp applies as.
pub const FIELD_MANAGER: &str = "kkp";

/// Objects per page of a list.
const LIST_PAGE: u32 = 500;

/// Where connections come from. Holds credentials: `Debug` shows only which seeds and contexts.
#[derive(Default, Clone)]
pub struct Sources {
    /// `--context SEED=CONTEXT` overrides.
    pub contexts: BTreeMap<String, String>,
    /// The kubeconfig from `--kubeconfig`, `KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<Kubeconfig>,
    /// Per seed: where its Secret came from (for messages) and the kubeconfig it holds.
    pub seed_secrets: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources")
            .field("contexts", &self.contexts)
            .field("kubeconfig", &self.kubeconfig.as_ref().map(|k| k.contexts.iter().map(|c| c.name.clone()).collect::<Vec<_>>()))
            .field("seed_secrets", &self.seed_secrets.iter().map(|(seed, (origin, _))| (seed, origin)).collect::<Vec<_>>())
            .finish()
    }
}

/// How a seed was reached. Holds credentials, so it has no `Debug`.
#[derive(Clone)]
pub struct Connection {
    /// The seed.
    pub seed: String,
    /// `context NAME` or `Secret kubermatic/NAME`.
    pub via: String,
    config: kube::Config,
}

impl Sources {
    /// Resolves the connection of `seed`.
    pub async fn resolve(&self, seed: &str) -> Result<Connection> {
        let unreachable =
            |via: &str, message: String| Error::Unreachable { seed: seed.into(), context: via.into(), message, transient: false };
        if let Some(context) = self.contexts.get(seed) {
            let kubeconfig = self.kubeconfig.clone().ok_or_else(|| {
                unreachable(
                    &format!("context {context}"),
                    "--context names a context, but no kubeconfig was found (--kubeconfig, KUBECONFIG, ~/.kube/config)".into(),
                )
            })?;
            return connection(seed, &format!("context {context}"), kubeconfig, Some(context.clone())).await;
        }
        if let Some((origin, text)) = self.seed_secrets.get(seed) {
            let kubeconfig =
                Kubeconfig::from_yaml(text).map_err(|e| unreachable(origin, format!("the kubeconfig in {origin} does not parse: {e}")))?;
            // A placeholder Secret beats a context named like the seed: say the context exists.
            let via = match &self.kubeconfig {
                Some(k) if k.contexts.iter().any(|c| c.name == seed) => {
                    format!("{origin}; your kubeconfig also has a context {seed}: pass --context {seed}={seed} to use it instead")
                }
                _ => origin.clone(),
            };
            return connection(seed, &via, kubeconfig, None).await;
        }
        if let Some(kubeconfig) = &self.kubeconfig
            && kubeconfig.contexts.iter().any(|c| c.name == seed)
        {
            return connection(seed, &format!("context {seed}"), kubeconfig.clone(), Some(seed.into())).await;
        }
        Err(unreachable(
            "no connection",
            format!(
                "no connection for seed {seed}\n  fix: add a context named {seed} to your kubeconfig, pass --context {seed}=CONTEXT, or include the Seed's kubeconfig Secret in the topology"
            ),
        ))
    }
}

async fn connection(seed: &str, via: &str, kubeconfig: Kubeconfig, context: Option<String>) -> Result<Connection> {
    let options = KubeConfigOptions { context, ..KubeConfigOptions::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(|e| Error::Unreachable {
        seed: seed.into(),
        context: via.into(),
        message: format!("unusable kubeconfig: {e}"),
        transient: false,
    })?;
    Ok(Connection { seed: seed.into(), via: via.into(), config })
}

/// One seed's API server.
pub struct KubeTarget {
    seed: String,
    via: String,
    /// The API server URL, as the state records it.
    server: String,
    client: kube::Client,
    force_conflicts: bool,
    poll: Duration,
}

impl KubeTarget {
    /// A target for `connection`. `force_conflicts` takes over fields other managers own.
    pub fn new(connection: Connection, force_conflicts: bool) -> Result<KubeTarget> {
        let Connection { seed, via, mut config } = connection;
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        // Apply retries with its own policy (and Retry-After); kube's would retry inside it.
        config.default_retry = false;
        let client = kube::Client::try_from(config).map_err(|e| Error::Unreachable {
            seed: seed.clone(),
            context: via.clone(),
            message: e.to_string(),
            transient: false,
        })?;
        Ok(KubeTarget { seed, via, server, client, force_conflicts, poll: Duration::from_millis(250) })
    }

    /// The collection URL of `object`'s kind (in its namespace, if any).
    fn collection(&self, object: &ObjectRef) -> kube::core::Request {
        let kind = object.kind.info();
        let base = if kind.group.is_empty() { format!("/api/{}", kind.version) } else { format!("/apis/{}/{}", kind.group, kind.version) };
        let path = match &object.namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", kind.plural),
            None => format!("{base}/{}", kind.plural),
        };
        kube::core::Request::new(path)
    }

    /// A LIST of `kind` in pages; `metadata_only` asks for `PartialObjectMetadataList` answers
    /// (no spec, no Secret data). Items get their apiVersion and kind back either way.
    async fn list_pages(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        labels: &BTreeMap<String, String>,
        metadata_only: bool,
    ) -> Result<Vec<Value>> {
        let probe = ObjectRef { kind, namespace: namespace.map(str::to_string), name: String::new() };
        let selector = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        // Pages keep each answer (and the server's work per request) bounded on big seeds.
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().labels(&selector).limit(LIST_PAGE);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let request =
                if metadata_only { self.collection(&probe).list_metadata(&params) } else { self.collection(&probe).list(&params) };
            let mut list = match self.send_json(&probe, request).await {
                Ok(list) => list,
                // A seed that does not serve the kind (a CRD not installed) holds none of it;
                // applying one is what fails, with the API's word for it.
                Err(Error::Api { status: Some(404), .. }) => return Ok(out),
                Err(e) => return Err(e),
            };
            if let Some(Value::Array(items)) = list.get_mut("items").map(Value::take) {
                // List items may omit their type (or be PartialObjectMetadata); put it back so
                // every item names its object.
                out.extend(items.into_iter().map(|mut item| {
                    item["apiVersion"] = Value::String(kind.api_version().into());
                    item["kind"] = Value::String(kind.name().into());
                    item
                }));
            }
            token = list.pointer("/metadata/continue").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Sends a request and returns the body of a successful answer. kube's `request` would
    /// drop the answer's headers; kkp reads them for Retry-After, which apply's retries honour.
    async fn send(
        &self,
        object: &ObjectRef,
        request: std::result::Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Bytes> {
        let request = request.map_err(|e| Error::invalid(&self.seed, object.to_string(), e.to_string()))?;
        let response = self.client.send(request.map(kube::client::Body::from)).await.map_err(|e| self.error(object, e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.into_body().collect_bytes().await.map_err(|e| self.error(object, e))?;
        if status.is_success() {
            return Ok(body);
        }
        Err(self.api_error(object, status.as_u16(), &body, retry_after))
    }

    /// Sends a request and decodes the JSON answer; kkp works on plain manifests, so there is
    /// no detour through typed objects.
    async fn send_json(
        &self,
        object: &ObjectRef,
        request: std::result::Result<http::Request<Vec<u8>>, kube::core::request::Error>,
    ) -> Result<Value> {
        let body = self.send(object, request).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Api {
            seed: self.seed.clone(),
            object: object.to_string(),
            message: format!("the answer is not JSON: {e}"),
            status: None,
            transient: false,
            retry_after: None,
        })
    }

    /// The error an unsuccessful answer stands for: a field conflict naming the other
    /// manager, or the API's Status (any body when it sent none, as proxies do).
    fn api_error(&self, object: &ObjectRef, code: u16, body: &[u8], retry_after: Option<Duration>) -> Error {
        let name = object.to_string();
        let status: Option<kube::core::Status> = serde_json::from_slice(body).ok();
        let (message, reason) = match &status {
            Some(s) if !s.message.is_empty() => (s.message.clone(), s.reason.clone()),
            _ => (String::from_utf8_lossy(body).trim().to_string(), String::new()),
        };
        if code == 409 && message.contains("conflict with") {
            let manager = message.split('"').nth(1).unwrap_or("unknown").to_string();
            return Error::Conflict { seed: self.seed.clone(), object: name, manager, message };
        }
        // A Status may carry the wait in its details instead of the header.
        let asked = status.and_then(|s| s.details).map(|d| d.retry_after_seconds).filter(|s| *s > 0);
        Error::Api {
            seed: self.seed.clone(),
            object: name,
            message: if reason.is_empty() { format!("{message} ({code})") } else { format!("{message} ({reason}, {code})") },
            status: Some(code),
            transient: code == 429 || code >= 500,
            retry_after: retry_after.or(asked.map(|s| Duration::from_secs(u64::from(s)))),
        }
    }

    /// The error a request that got no answer stands for.
    fn error(&self, object: &ObjectRef, error: kube::Error) -> Error {
        match error {
            kube::Error::Api(status) => self.api_error(object, status.code, &serde_json::to_vec(&status).unwrap_or_default(), None),
            kube::Error::Auth(e) => Error::Unreachable {
                seed: self.seed.clone(),
                context: self.via.clone(),
                message: format!("credentials refused: {e}"),
                transient: false,
            },
            other => Error::Unreachable { seed: self.seed.clone(), context: self.via.clone(), message: other.to_string(), transient: true },
        }
    }
}

#[async_trait]
impl Target for KubeTarget {
    async fn get(&self, object: &ObjectRef) -> Result<Option<Value>> {
        match self.send_json(object, self.collection(object).get(&object.name, &Default::default())).await {
            Ok(found) => Ok(Some(found)),
            Err(Error::Api { status: Some(404), .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_metadata(&self, object: &ObjectRef) -> Result<Option<Value>> {
        match self.send_json(object, self.collection(object).get_metadata(&object.name, &Default::default())).await {
            Ok(mut found) => {
                found["apiVersion"] = Value::String(object.api_version().into());
                found["kind"] = Value::String(object.kind.name().into());
                Ok(Some(found))
            }
            Err(Error::Api { status: Some(404), .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, kind: Kind, namespace: Option<&str>, labels: &BTreeMap<String, String>) -> Result<Vec<Value>> {
        self.list_pages(kind, namespace, labels, false).await
    }

    async fn list_metadata(&self, kind: Kind, namespace: Option<&str>, labels: &BTreeMap<String, String>) -> Result<Vec<Value>> {
        self.list_pages(kind, namespace, labels, true).await
    }

    async fn apply(&self, manifest: &Value) -> Result<Option<ObjectVersion>> {
        let object = super::identity(&self.seed, manifest)?;
        let mut params = PatchParams::apply(FIELD_MANAGER);
        params.force = self.force_conflicts;
        let answer = self.send(&object, self.collection(&object).patch(&object.name, &params, &Patch::Apply(manifest))).await?;
        Ok(answer_version(&answer))
    }

    async fn list_unchanged(
        &self,
        kind: Kind,
        labels: &BTreeMap<String, String>,
        recorded: &[(&ObjectRef, &ObjectVersion)],
    ) -> Result<Option<Vec<bool>>> {
        let probe = ObjectRef { kind, namespace: None, name: String::new() };
        let selector = labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        // By namespace and name, borrowed: a fleet's objects are looked up without a copy each.
        let index: HashMap<(Option<&str>, &str), usize> =
            recorded.iter().enumerate().map(|(i, (o, _))| ((o.namespace.as_deref(), o.name.as_str()), i)).collect();
        let mut unchanged = vec![false; recorded.len()];
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().labels(&selector).limit(LIST_PAGE);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let body = match self.send(&probe, self.collection(&probe).list_metadata(&params)).await {
                Ok(body) => body,
                Err(Error::Api { status: Some(404), .. }) => return Ok(Some(unchanged)),
                Err(e) => return Err(e),
            };
            // Only names, versions and (for changed versions) kkp's managed fields are decoded.
            let page: MetadataPage = serde_json::from_slice(&body).map_err(|e| Error::Api {
                seed: self.seed.clone(),
                object: probe.to_string(),
                message: format!("the answer is not a metadata list: {e}"),
                status: None,
                transient: false,
                retry_after: None,
            })?;
            for item in page.items {
                let meta = item.metadata;
                if let Some(&i) = index.get(&(meta.namespace.as_deref(), meta.name.as_ref())) {
                    unchanged[i] = meta.unchanged_since(recorded[i].1);
                }
            }
            token = page.metadata.continue_token.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(Some(unchanged));
            }
        }
    }

    async fn identity(&self) -> Result<crate::state::SeedTarget> {
        let kube_system = ObjectRef::cluster_scoped(Kind::Namespace, "kube-system");
        let found = self.get(&kube_system).await?;
        let cluster_uid = found.as_ref().and_then(|ns| ns.pointer("/metadata/uid")).and_then(Value::as_str).map(str::to_string);
        Ok(crate::state::SeedTarget::Kube { server: self.server.clone(), cluster_uid })
    }

    async fn dry_run_apply(&self, manifest: &Value) -> Result<Value> {
        let object = super::identity(&self.seed, manifest)?;
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = true;
        self.send_json(&object, self.collection(&object).patch(&object.name, &params, &Patch::Apply(manifest))).await
    }

    async fn list_path(&self, path: &str) -> Result<Vec<Value>> {
        let probe = ObjectRef::cluster_scoped(Kind::Namespace, path);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = ListParams::default().limit(LIST_PAGE);
            if let Some(t) = &token {
                params = params.continue_token(t);
            }
            let mut list = match self.send_json(&probe, kube::core::Request::new(path).list(&params)).await {
                Ok(list) => list,
                // A seed without the resource holds none of it.
                Err(Error::Api { status: Some(404), .. }) => return Ok(out),
                Err(e) => return Err(e),
            };
            if let Some(Value::Array(items)) = list.get_mut("items").map(Value::take) {
                out.extend(items);
            }
            token = list.pointer("/metadata/continue").and_then(Value::as_str).filter(|t| !t.is_empty()).map(str::to_string);
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn add_managed_by_label(&self, object: &ObjectRef) -> Result<bool> {
        // kkp owns nothing of the object yet, so an apply of just the label takes only that.
        let manifest = serde_json::json!({
            "apiVersion": object.api_version(),
            "kind": object.kind.name(),
            "metadata": {"name": object.name, "namespace": object.namespace, "labels": {crate::render::MANAGED_BY.0: crate::render::MANAGED_BY.1}},
        });
        let params = PatchParams::apply(FIELD_MANAGER);
        match self.send(object, self.collection(object).patch(&object.name, &params, &Patch::Apply(&manifest))).await {
            Ok(_) => Ok(true),
            Err(Error::Api { status: Some(404), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn kkp_cluster(&self, name: &str) -> Result<Option<Value>> {
        let probe = ObjectRef::cluster_scoped(Kind::Namespace, name);
        let request = kube::core::Request::new("/apis/kubermatic.k8c.io/v1/clusters").get(name, &Default::default());
        match self.send_json(&probe, request).await {
            Ok(found) => Ok(Some(found)),
            // No such object, or no such resource (a seed without KKP's CRDs).
            Err(Error::Api { status: Some(404), .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn proxy_get(&self, namespace: &str, service: &str, path: &str) -> Result<Option<(u16, String)>> {
        let object = ObjectRef::namespaced(Kind::Service, namespace, service);
        let uri = format!("/api/v1/namespaces/{namespace}/services/{service}/proxy/{path}");
        let request =
            http::Request::get(uri).body(Vec::new()).map_err(|e| Error::invalid(&self.seed, object.to_string(), e.to_string()))?;
        // Any answer is the caller's to judge; only no answer at all is an error.
        let response = self.client.send(request.map(kube::client::Body::from)).await.map_err(|e| self.error(&object, e))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect_bytes().await.map_err(|e| self.error(&object, e))?;
        Ok(Some((status, String::from_utf8_lossy(&body).into_owned())))
    }

    async fn apply_taking_over(&self, manifest: &Value) -> Result<Option<ObjectVersion>> {
        let object = super::identity(&self.seed, manifest)?;
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let answer = self.send(&object, self.collection(&object).patch(&object.name, &params, &Patch::Apply(manifest))).await?;
        Ok(answer_version(&answer))
    }

    async fn delete(&self, object: &ObjectRef) -> Result<bool> {
        match self.send_json(object, self.collection(object).delete(&object.name, &DeleteParams::background())).await {
            Ok(_) => Ok(true),
            Err(Error::Api { status: Some(404), .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn namespaces_contain_everything(&self) -> bool {
        true
    }

    async fn wait_ready(&self, object: &ObjectRef, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // A transient error while polling is one more poll, not a failure; a throttled
            // poll waits as long as the server asked.
            let pause = match self.get(object).await {
                Ok(Some(current)) if is_ready(&current) => return Ok(()),
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e.retry_after().unwrap_or_default().max(self.poll),
                Ok(_) => self.poll,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::NotReady { seed: self.seed.clone(), object: object.to_string(), waited: timeout });
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// The version an apply's answer (the whole object) tells; None when it tells none.
fn answer_version(answer: &[u8]) -> Option<ObjectVersion> {
    serde_json::from_slice::<super::version::Object>(answer).ok()?.metadata.version()
}

/// One page of a metadata-only list, decoded only as far as refresh needs.
#[derive(serde::Deserialize)]
struct MetadataPage<'a> {
    #[serde(borrow)]
    items: Vec<super::version::Object<'a>>,
    #[serde(default)]
    metadata: ListMetadata,
}

/// A list's own metadata.
#[derive(Default, serde::Deserialize)]
struct ListMetadata {
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

/// A Deployment or StatefulSet is ready when the controller saw its latest spec and all
/// replicas are ready.
fn is_ready(object: &Value) -> bool {
    let want = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let generation = object.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
    let observed = object.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
    let ready = object.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0);
    observed >= generation && ready >= want
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn readiness_needs_the_latest_generation_and_all_replicas() {
        assert!(is_ready(
            &json!({"spec": {"replicas": 3}, "metadata": {"generation": 2}, "status": {"observedGeneration": 2, "readyReplicas": 3}})
        ));
        assert!(!is_ready(
            &json!({"spec": {"replicas": 3}, "metadata": {"generation": 2}, "status": {"observedGeneration": 1, "readyReplicas": 3}})
        ));
        assert!(!is_ready(
            &json!({"spec": {"replicas": 3}, "metadata": {"generation": 2}, "status": {"observedGeneration": 2, "readyReplicas": 2}})
        ));
    }
}
