//! Performing one planned action against its seed's target and recording the result.

use super::{Event, Settings};
use crate::address::Address;
use crate::object::{Kind, ObjectRef};
use crate::pki::{self, Authority, CertRequest, Issued, KeyMaterial};
use crate::plan::{Action, Plan, PlannedAction, recorded_value};
use crate::render::Body;
use crate::state::recorder::Recorder;
use crate::state::{CertificateState, Change, NodeState};
use crate::target::{Target, Targets};
use base64::Engine;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Shared by every node of one apply.
pub struct Context {
    plan: Arc<Plan>,
    targets: Targets,
    recorder: Arc<Recorder>,
    settings: Settings,
    has_dependants: Vec<bool>,
    events: Arc<dyn Fn(Event) + Send + Sync>,
    /// Fingerprints of certificates issued in this run, for the workloads that carry them.
    fingerprints: Mutex<HashMap<Address, String>>,
    /// CAs issued or read in this run, parsed once, so leaves need not read them back.
    authorities: Mutex<HashMap<Address, Arc<Authority>>>,
    /// Namespaces (by seed) this run created from nothing: nothing else can be in them, so
    /// creates inside need no existence check. Saves a request per object of a new cluster.
    fresh_namespaces: Mutex<std::collections::HashSet<(String, String)>>,
    /// Per cluster of the plan: actions not yet applied. When the last one lands, the
    /// cluster's input digest is recorded at once, so an interrupted apply keeps it for
    /// every cluster it finished.
    pending: Mutex<HashMap<String, usize>>,
}

impl Context {
    pub fn new(
        plan: Arc<Plan>,
        targets: Targets,
        recorder: Arc<Recorder>,
        settings: Settings,
        has_dependants: Vec<bool>,
        events: Arc<dyn Fn(Event) + Send + Sync>,
    ) -> Self {
        let mut pending: HashMap<String, usize> = plan.clusters.keys().map(|c| (c.clone(), 0)).collect();
        for cluster in plan.actions.iter().filter_map(|a| a.cluster.as_ref()) {
            if let Some(count) = pending.get_mut(cluster) {
                *count += 1;
            }
        }
        Context {
            pending: Mutex::new(pending),
            plan,
            targets,
            recorder,
            settings,
            has_dependants,
            events,
            fingerprints: Mutex::default(),
            authorities: Mutex::default(),
            fresh_namespaces: Mutex::default(),
        }
    }

    /// Runs action `i`; the error is the message the summary shows. `permit` is its place in
    /// the concurrency budgets, given back once the target work is done: journaling is not
    /// target work.
    pub async fn execute(&self, i: usize, permit: super::walk::Permit) -> Result<(), String> {
        let action = &self.plan.actions[i];
        (self.events)(Event::Started { address: action.address.clone(), action: action.action });
        let started = Instant::now();
        let performed = self.perform(i, action).await;
        drop(permit);
        let recorded = match performed {
            Ok(performed) => {
                let (change, body) = performed.seal();
                let body = body.as_ref().map(|(digest, bytes)| (digest.as_str(), bytes.as_slice()));
                let recorded = self.recorder.record(change, body).await;
                match recorded {
                    Ok(()) => self.cluster_done(action).await,
                    Err(e) => Err(e),
                }
                .map_err(|e| format!("applied, but not recorded in the state: {e}"))
            }
            Err(e) => Err(e),
        };
        match recorded {
            Ok(()) => {
                (self.events)(Event::Finished { address: action.address.clone(), action: action.action, elapsed: started.elapsed() });
                Ok(())
            }
            Err(error) => {
                (self.events)(Event::Failed { address: action.address.clone(), action: action.action, error: error.clone() });
                Err(error)
            }
        }
    }

    /// Whether the action restores a node a refresh found changed outside kkp: then kkp takes
    /// its fields back from whoever changed them.
    fn restores(&self, action: &PlannedAction) -> bool {
        self.plan.drift.iter().any(|d| d.address == action.address)
    }

    /// Server-side applies `manifest`, with retries; taking kkp's fields back from whoever
    /// changed them when the action restores drift. Returns the object's version after it.
    async fn write(
        &self,
        target: &Arc<dyn Target>,
        action: &PlannedAction,
        manifest: &Value,
    ) -> Result<Option<crate::state::ObjectVersion>, String> {
        let restores = self.restores(action);
        super::retry::retry(&self.settings.retry, || async move {
            if restores { target.apply_taking_over(manifest).await } else { target.apply(manifest).await }
        })
        .await
        .map_err(|e| e.to_string())
    }

    fn target(&self, seed: &str) -> Result<&Arc<dyn Target>, String> {
        self.targets.get(seed).ok_or_else(|| format!("no target for seed {seed}"))
    }

    /// Counts a successful action of its cluster; records the cluster's input digest when it
    /// was the last.
    async fn cluster_done(&self, action: &PlannedAction) -> crate::state::Result<()> {
        let Some(cluster) = &action.cluster else { return Ok(()) };
        let finished = {
            let mut pending = self.pending.lock().expect("lock");
            match pending.get_mut(cluster) {
                Some(count) => {
                    *count -= 1;
                    *count == 0
                }
                None => false,
            }
        };
        if !finished {
            return Ok(());
        }
        let record = self.plan.clusters.get(cluster).cloned().flatten();
        self.recorder.record(Change::Cluster { name: cluster.clone(), record }, None).await
    }

    /// Clusters of the plan whose actions did not all land (or that had none).
    pub fn unfinished_clusters(&self) -> Vec<(String, usize)> {
        self.pending.lock().expect("lock").iter().filter(|(_, n)| **n > 0).map(|(c, n)| (c.clone(), *n)).collect()
    }

    /// Does the target work of action `i`; returns what to record.
    async fn perform(&self, i: usize, action: &PlannedAction) -> Result<Recorded, String> {
        let retry = self.settings.retry;
        if action.action == Action::Import {
            return self.adopt(action).await;
        }
        if matches!(action.action, Action::Delete | Action::Replace)
            && let Some(object) = &action.object
        {
            let seed = action.prior_seed.as_deref().unwrap_or(&action.seed);
            // A re-issued certificate overwrites its Secret; only moves and object
            // replacements delete first.
            let is_reissue = action.role.is_issued() && action.prior_seed.is_none();
            if action.action == Action::Delete || !is_reissue {
                let target = self.target(seed)?;
                super::retry::retry(&retry, || target.delete(object)).await.map_err(|e| e.to_string())?;
            }
        }
        let Some(desired) = &action.desired else {
            return Ok(Recorded { change: Change::Remove { address: action.address.clone() }, body: None });
        };
        let body = desired.body();
        match body {
            Body::Logical { settings } => {
                let node = NodeState {
                    seed: action.seed.clone(),
                    role: action.role,
                    object: None,
                    digest: String::new(),
                    certificate: None,
                    version: None,
                };
                Ok(Recorded::put(action, node, settings))
            }
            Body::Object { mut manifest, fingerprints } => {
                let unknown = {
                    let issued = self.fingerprints.lock().expect("lock");
                    crate::render::fill_fingerprints(&mut manifest, &fingerprints, |secret| issued.get(secret).cloned())
                };
                if let Some(f) = unknown.first() {
                    return Err(format!("the fingerprint of {} is not known; it must be applied first", f.mounted));
                }
                let target = self.target(&action.seed)?;
                let object = ObjectRef::of(&manifest).ok_or("rendered manifest has no identity")?;
                let existing = self.existing_metadata(action, &object).await?;
                // Changed outside kkp, the plan said kkp's fields are restored; else only what
                // kkp owns is written.
                if !self.restores(action) {
                    self.check_ownership(action, existing.as_ref())?;
                }
                let version = self.write(target, action, &manifest).await?;
                let created_empty = action.action == Action::Create && existing.is_none() && target.namespaces_contain_everything();
                if object.kind == Kind::Namespace && created_empty {
                    self.fresh_namespaces.lock().expect("lock").insert((action.seed.clone(), object.name.clone()));
                }
                if self.has_dependants[i] && action.role.is_workload() {
                    target.wait_ready(&object, self.settings.ready_timeout).await.map_err(|e| e.to_string())?;
                }
                if object.kind.is_mounted() {
                    // As the plan does: a Secret or ConfigMap rendered whole is known by its
                    // manifest's digest.
                    self.fingerprints.lock().expect("lock").insert(action.address.clone(), crate::object::digest(&manifest));
                }
                let node = NodeState {
                    seed: action.seed.clone(),
                    role: action.role,
                    object: Some(object),
                    digest: String::new(),
                    certificate: None,
                    version,
                };
                Ok(Recorded::put(action, node, manifest))
            }
            Body::Secret { ref object, ref labels, ref request } => {
                let issued = self.certificate(action, object, request).await?;
                let manifest = secret_manifest(object, labels, &issued.data);
                let target = self.target(&action.seed)?;
                let version = self.write(target, action, &manifest).await?;
                self.fingerprints.lock().expect("lock").insert(action.address.clone(), issued.fingerprint.clone());
                if request.kind == pki::CertKind::Ca {
                    let authority = Authority::new(issued.material.clone()).map_err(|e| e.to_string())?;
                    self.authorities.lock().expect("lock").insert(action.address.clone(), Arc::new(authority));
                }
                let mut recorded = issued_record(&action.address, &action.seed, action.role, &body, issued);
                recorded.set_version(version);
                Ok(recorded)
            }
        }
    }

    /// An import: writes kkp's ownership label if the plan says so (the only write) and records
    /// the plan's record. The workflow checked before that every adopted object is still what
    /// the plan recorded ([`crate::import::verify_live`]).
    async fn adopt(&self, action: &PlannedAction) -> Result<Recorded, String> {
        let (Some(record), Some(desired)) = (&action.import, &action.desired) else {
            return Err("an import action without what to record; run kkp import again".into());
        };
        if let Some(object) = &action.object {
            let target = self.target(&action.seed)?;
            let retry = self.settings.retry;
            if record.label {
                super::retry::retry(&retry, || target.add_managed_by_label(object)).await.map_err(|e| e.to_string())?;
            }
        }
        let node = NodeState {
            seed: action.seed.clone(),
            role: action.role,
            object: action.object.clone(),
            digest: String::new(),
            certificate: record.certificate.clone(),
            version: None,
        };
        Ok(Recorded::put(action, node, recorded_value(&desired.body())))
    }

    /// Keeps valid material already on the target (after a crash, or for an update of
    /// labels); issues new material for creates without it and for every replace.
    async fn certificate(&self, action: &PlannedAction, object: &ObjectRef, request: &CertRequest) -> Result<Issued, String> {
        let target = self.target(&action.seed)?;
        let issuer = match &request.issuer {
            Some(address) => Some(self.authority(&action.seed, address).await?),
            None => None,
        };
        let now = self.settings.now;
        if let Some(content) = &request.content {
            return self.content(action, object, request, content, issuer).await;
        }
        if action.action != Action::Replace {
            let existing = match action.action {
                Action::Create => self.existing(action, object).await?,
                _ => super::retry::retry(&self.settings.retry, || target.get(object)).await.map_err(|e| e.to_string())?,
            };
            if !self.restores(action) {
                self.check_ownership(action, existing.as_ref())?;
            }
            let accepted = self.restores(action) && crate::refresh::drift::needs_acceptance(action.role);
            if accepted
                && let Some(data) = existing.as_ref().map(secret_data)
                && let Some(adopted) = pki::accept_as_is(request, &data)
            {
                return Ok(adopted);
            }
            if let Some(data) = existing.as_ref().map(secret_data)
                && let Some(adopted) = pki::inspect(request, &data, issuer.as_deref(), now)
            {
                return Ok(adopted);
            }
            // An update keeps the material; a CA or key pair is never issued over one that is
            // there (a CA accepted with --accept must be usable as it is).
            if action.action == Action::Update && crate::refresh::drift::needs_acceptance(action.role) && existing.is_some() {
                return Err(format!(
                    "{object} on seed {} does not match kkp's request (common name, key, validity); kkp does not overwrite a CA or key pair\n  fix: restore the Secret kkp issued, or delete it and re-run with --refresh --accept {}",
                    action.seed, action.address
                ));
            }
        }
        let request = request.clone();
        tokio::task::spawn_blocking(move || pki::issue(&request, issuer.as_deref(), now))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Makes a Secret's [`pki::Content`]: reads what it is made from (the tokens, the
    /// credentials) and what is there now, which is kept when still valid (tokens always: they
    /// are never rotated).
    async fn content(
        &self,
        action: &PlannedAction,
        object: &ObjectRef,
        request: &CertRequest,
        content: &pki::Content,
        issuer: Option<Arc<Authority>>,
    ) -> Result<Issued, String> {
        let target = self.target(&action.seed)?;
        let keeps_on_replace = matches!(content, pki::Content::TokenUsers);
        let existing = if action.action == Action::Replace && !keeps_on_replace {
            None
        } else {
            let existing = match action.action {
                Action::Create => self.existing(action, object).await?,
                _ => super::retry::retry(&self.settings.retry, || target.get(object)).await.map_err(|e| e.to_string())?,
            };
            self.check_ownership(action, existing.as_ref())?;
            existing.as_ref().map(secret_data)
        };
        let source = match content {
            pki::Content::TokenKubeconfig { tokens, .. } | pki::Content::ViewerToken { tokens } => {
                let cluster = tokens.cluster().ok_or_else(|| format!("{tokens} is not a cluster Secret"))?;
                let name = tokens.as_str().rsplit('/').next().unwrap_or_default();
                let at = ObjectRef::namespaced(Kind::Secret, &crate::topology::namespace_of(cluster), name);
                let found = super::retry::retry(&self.settings.retry, || target.get(&at)).await.map_err(|e| e.to_string())?;
                Some(
                    found
                        .as_ref()
                        .map(secret_data)
                        .ok_or_else(|| format!("the tokens Secret {tokens} does not exist on seed {}", action.seed))?,
                )
            }
            pki::Content::Copy { namespace, name } | pki::Content::Cloud { namespace, name, .. } => {
                let at = ObjectRef::namespaced(Kind::Secret, namespace, name);
                let found = super::retry::retry(&self.settings.retry, || target.get(&at)).await.map_err(|e| e.to_string())?;
                // The seed's copy wins; the topology's documents are the fallback.
                let on_seed = found.as_ref().map(secret_data).filter(|d| !d.is_empty());
                let in_topology = || self.settings.topology_secrets.get(&(namespace.clone(), name.clone())).cloned();
                Some(on_seed.or_else(in_topology).ok_or_else(|| missing_credentials(&action.seed, namespace, name))?)
            }
            pki::Content::Kubeconfig { .. } | pki::Content::TokenUsers => None,
        };
        let request = request.clone();
        let now = self.settings.now;
        tokio::task::spawn_blocking(move || {
            let inputs = pki::Inputs { existing: existing.as_ref(), source: source.as_ref() };
            pki::make(&request, issuer.as_deref(), inputs, now)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("{object}: {e}"))
    }

    /// The CA at `address`: issued in this run, or read from the seed.
    async fn authority(&self, seed: &str, address: &Address) -> Result<Arc<Authority>, String> {
        if let Some(m) = self.authorities.lock().expect("lock").get(address) {
            return Ok(m.clone());
        }
        let secret_name = address.as_str().rsplit('/').next().unwrap_or_default();
        let cluster = address.cluster().ok_or_else(|| format!("{address} is not a cluster Secret"))?;
        let object = ObjectRef::namespaced(Kind::Secret, &crate::topology::namespace_of(cluster), secret_name);
        let target = self.target(seed)?;
        let secret = super::retry::retry(&self.settings.retry, || target.get(&object)).await.map_err(|e| e.to_string())?;
        let data = secret.as_ref().map(secret_data).ok_or_else(|| format!("the CA {address} does not exist on seed {seed}"))?;
        let text = |key: &str| data.get(key).and_then(|b| String::from_utf8(b.clone()).ok());
        let material = KeyMaterial {
            cert_pem: text("ca.crt").ok_or_else(|| format!("the CA {address} has no ca.crt"))?,
            key_pem: text("ca.key").ok_or_else(|| format!("the CA {address} has no ca.key"))?,
        };
        let authority = Arc::new(Authority::new(material).map_err(|e| format!("the CA {address}: {e}"))?);
        self.authorities.lock().expect("lock").insert(address.clone(), authority.clone());
        Ok(authority)
    }

    /// What a create finds on the target before writing: None without asking inside a
    /// namespace this run created from nothing; nothing to check for other actions.
    async fn existing(&self, action: &PlannedAction, object: &ObjectRef) -> Result<Option<Value>, String> {
        if !self.may_exist(action, object) {
            return Ok(None);
        }
        let target = self.target(&action.seed)?;
        super::retry::retry(&self.settings.retry, || target.get(object)).await.map_err(|e| e.to_string())
    }

    /// Like [`Self::existing`] for an object written whole: its metadata (who made it) is all
    /// a create needs to know, so no spec or Secret data is read.
    async fn existing_metadata(&self, action: &PlannedAction, object: &ObjectRef) -> Result<Option<Value>, String> {
        if !self.may_exist(action, object) {
            return Ok(None);
        }
        let target = self.target(&action.seed)?;
        super::retry::retry(&self.settings.retry, || target.get_metadata(object)).await.map_err(|e| e.to_string())
    }

    /// Whether a create must look before writing: not inside a namespace this run created.
    fn may_exist(&self, action: &PlannedAction, object: &ObjectRef) -> bool {
        action.action == Action::Create
            && !object
                .namespace
                .as_ref()
                .is_some_and(|ns| self.fresh_namespaces.lock().expect("lock").contains(&(action.seed.clone(), ns.clone())))
    }

    /// A create must not silently take over an object someone else made: it is reported,
    /// naming who manages it, unless `--force-conflicts` was given. Objects kkp wrote carry its
    /// label (an apply that crashed before recording them is simply resumed).
    fn check_ownership(&self, action: &PlannedAction, existing: Option<&Value>) -> Result<(), String> {
        let Some(existing) = existing else { return Ok(()) };
        let label = existing.pointer("/metadata/labels/app.kubernetes.io~1managed-by").and_then(Value::as_str);
        if label == Some(crate::render::MANAGED_BY.1) || self.settings.take_over {
            return Ok(());
        }
        let mut managers: Vec<&str> = existing
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|fields| fields.iter().filter_map(|f| f.get("manager").and_then(Value::as_str)).collect())
            .unwrap_or_default();
        managers.sort_unstable();
        managers.dedup();
        let by = if managers.is_empty() { String::new() } else { format!(" (managed by {})", managers.join(", ")) };
        Err(format!(
            "{} already exists on seed {} and was not created by kkp{by}\n  fix: remove it, or re-run with --force-conflicts to take it over",
            action.object.as_ref().map(ToString::to_string).unwrap_or_default(),
            action.seed
        ))
    }
}

/// What one action leaves to record: the state change and the applied body. The body is
/// serialised and digested only after the action gave its concurrency permit back.
struct Recorded {
    change: Change,
    body: Option<Value>,
}

impl Recorded {
    /// A put whose node digest is filled in by [`Recorded::seal`].
    fn put(action: &PlannedAction, node: NodeState, body: Value) -> Self {
        Recorded { change: Change::Put { address: action.address.clone(), node }, body: Some(body) }
    }

    /// Records the object's version after the apply (refresh skips it while it holds).
    fn set_version(&mut self, version: Option<crate::state::ObjectVersion>) {
        if let Change::Put { node, .. } = &mut self.change {
            node.version = version;
        }
    }

    /// The change with its digest, and the body's canonical bytes under that digest.
    fn seal(self) -> (Change, Option<(String, Vec<u8>)>) {
        let Some(body) = self.body else { return (self.change, None) };
        let bytes = serde_json::to_vec(&body).expect("plain data");
        let digest = crate::object::digest_bytes(&bytes);
        let mut change = self.change;
        if let Change::Put { node, .. } = &mut change {
            node.digest = digest.clone();
        }
        (change, Some((digest, bytes)))
    }
}

/// What state records of an issued Secret: the request (never the content) and the
/// certificate's digests. `body` must be a [`Body::Secret`].
fn issued_record(address: &Address, seed: &str, role: crate::role::Role, body: &Body, issued: Issued) -> Recorded {
    let Body::Secret { object, request, .. } = body else { unreachable!("issued_record is called for Secret bodies") };
    let node = NodeState {
        seed: seed.to_string(),
        role,
        object: Some(object.clone()),
        digest: String::new(),
        certificate: Some(CertificateState {
            request_digest: request.digest(),
            fingerprint: issued.fingerprint,
            not_after: issued.not_after,
            issuer_fingerprint: issued.issuer_fingerprint,
        }),
        version: None,
    };
    Recorded { change: Change::Put { address: address.clone(), node }, body: Some(recorded_value(body)) }
}

/// The Secret written to the target: the request's labels and the issued data.
fn secret_manifest(object: &ObjectRef, labels: &BTreeMap<String, String>, data: &BTreeMap<String, Vec<u8>>) -> Value {
    let encoded: BTreeMap<&String, String> = data.iter().map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v))).collect();
    json!({
        "apiVersion": object.api_version(),
        "kind": object.kind.name(),
        "metadata": {"name": object.name, "namespace": object.namespace, "labels": labels},
        "type": "Opaque",
        "data": encoded,
    })
}

/// The decoded `data` of a Secret, with `stringData` on top as the API server would merge it
/// (a hand-written Secret in a directory target may use either; undecodable entries are left
/// out).
fn secret_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = secret
        .get("data")
        .and_then(Value::as_object)
        .map(|data| {
            data.iter()
                .filter_map(|(k, v)| Some((k.clone(), base64::engine::general_purpose::STANDARD.decode(v.as_str()?).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    if let Some(strings) = secret.get("stringData").and_then(Value::as_object) {
        out.extend(strings.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.as_bytes().to_vec()))));
    }
    out
}

/// The error for cloud credentials that are not on the seed, with how to provide them.
fn missing_credentials(seed: &str, namespace: &str, name: &str) -> String {
    format!(
        "the cloud credentials Secret {namespace}/{name} (the cluster's credentialsReference) does not exist on seed {seed} or holds no data\n  \
         fix: create it on the seed (kubectl -n {namespace} create secret generic {name} --from-literal=<key>=<value> ..., with the \
         provider's keys, e.g. accessKeyId and secretAccessKey for AWS), or put it among the topology documents \
         (a v1 Secret {namespace}/{name}); for a directory target it may also be written as \
         <dir>/{seed}/{namespace}/secret-{name}.yaml"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::DesiredNode;
    use std::path::PathBuf;

    const NOW: i64 = 1_790_000_000;

    fn fixture_secrets() -> Vec<DesiredNode> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/topology.yaml");
        let topology = crate::topology::load(&[path]).expect("the KKP fixture loads");
        let cluster = topology.clusters.values().next().expect("one cluster");
        crate::render::cluster(cluster).into_iter().filter(|n| matches!(n.body, Body::Secret { .. })).collect()
    }

    /// Issues every Secret of the KKP fixture the way apply does (CAs first, tokens before what
    /// reads them, the credentials from a source Secret) and checks that nothing recorded holds
    /// key, certificate, token or credential bytes.
    #[test]
    fn recorded_changes_hold_no_secret_bytes() {
        let credentials = BTreeMap::from([
            ("accessKeyId".to_string(), b"AKIAFIXTUREKEYID".to_vec()),
            ("secretAccessKey".to_string(), b"fixture/secret+access-key".to_vec()),
        ]);
        let mut authorities: HashMap<Address, Authority> = HashMap::new();
        let mut tokens: Option<BTreeMap<String, Vec<u8>>> = None;
        let mut secrets_written: Vec<String> = Vec::new();
        let mut recorded_text = String::new();
        let nodes = fixture_secrets();
        // Render lists CAs and tokens before the Secrets made from them.
        for node in &nodes {
            let Body::Secret { request, .. } = &node.body else { continue };
            let issuer = request.issuer.as_ref().map(|a| authorities.get(a).expect("issuer issued first"));
            let issued = match &request.content {
                None => pki::issue(request, issuer, NOW).unwrap(),
                Some(content) => {
                    let source = match content {
                        pki::Content::Copy { .. } => Some(&credentials),
                        pki::Content::TokenKubeconfig { .. } | pki::Content::ViewerToken { .. } => tokens.as_ref(),
                        _ => None,
                    };
                    pki::make(request, issuer, pki::Inputs { existing: None, source }, NOW).unwrap()
                }
            };
            if request.kind == pki::CertKind::Ca {
                authorities.insert(node.address.clone(), Authority::new(issued.material.clone()).unwrap());
            }
            if request.content == Some(pki::Content::TokenUsers) {
                tokens = Some(issued.data.clone());
            }
            for value in issued.data.values() {
                secrets_written.push(String::from_utf8_lossy(value).into_owned());
            }
            let (change, body) = issued_record(&node.address, &node.seed, node.role, &node.body, issued).seal();
            recorded_text.push_str(&serde_json::to_string(&change).unwrap());
            recorded_text.push_str(&String::from_utf8(body.unwrap().1).unwrap());
        }
        assert!(tokens.is_some() && authorities.contains_key(&Address::cluster_object("de-test-01", Kind::Secret, "ca")));
        for marker in ["-----BEGIN", "PRIVATE KEY", "AKIAFIXTUREKEYID", "fixture/secret+access-key", "client-key-data", "token:"] {
            assert!(!recorded_text.contains(marker), "state records {marker:?}");
        }
        let csv = String::from_utf8(tokens.unwrap()["tokens.csv"].clone()).unwrap();
        for token in csv.lines().filter_map(|line| line.split(',').next()) {
            assert!(!recorded_text.contains(token), "state records a token");
        }
        // Nor any line of what was written, raw or base64-encoded (as Secret data would be).
        for written in &secrets_written {
            for line in written.lines().filter(|l| l.len() >= 24 && !l.starts_with("-----")) {
                assert!(!recorded_text.contains(line), "state records written content: {line}");
            }
            let encoded = base64::engine::general_purpose::STANDARD.encode(written.as_bytes());
            assert!(encoded.len() < 24 || !recorded_text.contains(&encoded[..24]), "state records base64 content");
        }
    }
}
