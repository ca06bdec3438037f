//! The Kubernetes state backend, addressed `k8s://CONTEXT/NAMESPACE/NAME`:
//!
//! - the state: Secret `NAME`, gzip'd JSON in `data["state.json.gz"]`; a state larger than one
//!   object holds is split into Secrets `NAME-<serial>-part-<i>` that `NAME` lists. Writes
//!   check resourceVersion, so a concurrent writer fails instead of being overwritten.
//! - the journal: one Secret per batch of records, `NAME-journal-<serial>-<seq>`, labelled
//!   `kkp.k8c.io/journal-of=NAME`; each record costs one small write, never a rewrite.
//! - the lock: Lease `NAME-lock` (coordination.k8s.io/v1) with a duration, renewed while the
//!   holder lives; a crashed holder's lease expires. Every state and journal write checks the
//!   lease is still held.

use super::backend::{Backend, Journal, Loaded, Lock, Recovery};
use super::lock::{LockInfo, Locked};
use super::objects::ObjectStore;
use super::{Change, Error, Result, State, format};
use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest gzip'd payload per Secret (the API server refuses objects over ~1 MiB).
const PART_BYTES: usize = 768 * 1024;
const STATE_KEY: &str = "state.json.gz";
const JOURNAL_LABEL: &str = "kkp.k8c.io/journal-of";
const LOCK_INFO: &str = "kkp.k8c.io/lock-info";

/// A state kept in Secrets of a Kubernetes namespace.
pub struct KubeBackend {
    address: String,
    name: String,
    secrets: Api<Secret>,
    leases: Api<Lease>,
    lease_duration: Duration,
    objects: ObjectStore,
    /// resourceVersion of Secret NAME as last read or written (None: it does not exist).
    version: Mutex<Option<String>>,
    recovery: Recovery,
}

impl KubeBackend {
    /// The backend for Secret `name` in `namespace`, reached through `client`.
    /// `address` is for messages; bodies for diffs are cached under `objects_dir`.
    pub fn new(client: kube::Client, address: String, namespace: &str, name: &str, lease_duration: Duration, objects_dir: PathBuf) -> Self {
        KubeBackend {
            address,
            name: name.into(),
            secrets: Api::namespaced(client.clone(), namespace),
            leases: Api::namespaced(client, namespace),
            lease_duration,
            objects: ObjectStore::new(objects_dir),
            version: Mutex::new(None),
            recovery: Recovery::default(),
        }
    }

    /// The same backend, loading with `recovery`.
    pub fn with_recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = recovery;
        self
    }

    /// Deletes journal batches that do not extend `state` (left by a clean-up that was
    /// interrupted, or by an apply that persisted but was killed before removing them).
    async fn delete_stale_journal(&self, state: Option<&State>) -> Result<()> {
        for entry in self.journal_entries().await? {
            let (lineage, serial) = journal_basis(&entry);
            let extends = state.map_or(serial == 0, |s| s.lineage == lineage && s.serial == serial);
            if !extends && let Some(name) = entry.metadata.name {
                self.delete_secret(&name).await?;
            }
        }
        Ok(())
    }

    /// Deletes a Secret; one already gone is fine.
    async fn delete_secret(&self, name: &str) -> Result<()> {
        match self.secrets.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(self.api_error(&format!("deleting {name}"), e)),
        }
    }

    fn api_error(&self, what: &str, e: kube::Error) -> Error {
        Error::Remote { address: self.address.clone(), message: format!("{what}: {e}") }
    }

    fn lock_name(&self) -> String {
        format!("{}-lock", self.name)
    }

    async fn journal_entries(&self) -> Result<Vec<Secret>> {
        let params = ListParams::default().labels(&format!("{JOURNAL_LABEL}={}", self.name));
        let mut items = self.secrets.list(&params).await.map_err(|e| self.api_error("listing the journal", e))?.items;
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        Ok(items)
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn gunzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

fn secret(
    name: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    data: BTreeMap<String, ByteString>,
) -> Secret {
    Secret {
        metadata: ObjectMeta { name: Some(name.into()), labels: Some(labels), annotations: Some(annotations), ..Default::default() },
        type_: Some("Opaque".into()),
        data: Some(data),
        ..Default::default()
    }
}

/// The lineage and serial a journal batch extends.
fn journal_basis(entry: &Secret) -> (String, u64) {
    let annotations = entry.metadata.annotations.clone().unwrap_or_default();
    let lineage = annotations.get("kkp.k8c.io/lineage").cloned().unwrap_or_default();
    let serial = annotations.get("kkp.k8c.io/serial").and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    (lineage, serial)
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

#[async_trait]
impl Backend for KubeBackend {
    fn describe(&self) -> String {
        self.address.clone()
    }

    async fn load(&self) -> Result<Loaded> {
        let path = PathBuf::from(&self.address);
        let main = self.secrets.get_opt(&self.name).await.map_err(|e| self.api_error("reading the state", e))?;
        *self.version.lock().expect("lock") = main.as_ref().and_then(|s| s.metadata.resource_version.clone());
        let mut state = match &main {
            None => None,
            Some(secret) => {
                let data = secret.data.clone().unwrap_or_default();
                let mut compressed = data.get(STATE_KEY).map(|b| b.0.clone()).unwrap_or_default();
                let parts: Vec<String> = secret
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kkp.k8c.io/parts"))
                    .map(|p| p.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect())
                    .unwrap_or_default();
                for part in parts {
                    let piece = self.secrets.get(&part).await.map_err(|e| self.api_error(&format!("reading state part {part}"), e))?;
                    compressed.extend(piece.data.unwrap_or_default().get(STATE_KEY).map(|b| b.0.clone()).unwrap_or_default());
                }
                let bytes = gunzip(&compressed).map_err(|e| Error::Corrupt { path: path.clone(), message: format!("not gzip: {e}") })?;
                Some(format::from_bytes(&path, &bytes)?)
            }
        };
        // Replay journal batches that extend exactly this state.
        let mut recovered = 0;
        let entries = self.journal_entries().await?;
        let had_traces = !entries.is_empty() || self.objects.has_packs();
        'replay: for entry in entries {
            let (lineage, serial) = journal_basis(&entry);
            let extends = match &state {
                Some(s) => s.lineage == lineage && s.serial == serial,
                None => serial == 0,
            };
            if !extends {
                continue;
            }
            let name = entry.metadata.name.clone().unwrap_or_default();
            let target = state.get_or_insert_with(|| State::new(lineage.clone()));
            let records = entry.data.unwrap_or_default().get("records").map(|b| b.0.clone()).unwrap_or_default();
            for (i, line) in records.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
                let change = serde_json::from_slice::<Change>(line).map_err(|e| e.to_string()).and_then(|change| match &change {
                    Change::Put { address, node } => super::check_entry(address, node).map(|()| change),
                    _ => Ok(change),
                });
                match change {
                    Ok(change) => {
                        target.apply(change);
                        recovered += 1;
                    }
                    Err(_) if self.recovery.discard_journal_tail => break 'replay,
                    Err(why) => {
                        return Err(Error::JournalCorrupt {
                            path: PathBuf::from(format!("{} (Secret {name})", self.address)),
                            line: i + 1,
                            message: why,
                            after: 0,
                        });
                    }
                }
            }
        }
        if !self.recovery.new_state && had_traces && state.as_ref().is_none_or(|s| s.nodes.is_empty()) {
            return Err(Error::Missing {
                state: self.address.clone(),
                evidence: "journal Secrets or applied bodies of an earlier state exist".into(),
            });
        }
        Ok(Loaded { state, recovered })
    }

    async fn lock(&self, operation: &str) -> Result<Box<dyn Lock>> {
        let info = LockInfo::new(operation);
        let name = self.lock_name();
        let seconds = self.lease_duration.as_secs().max(1) as i32;
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                annotations: Some(BTreeMap::from([(LOCK_INFO.to_string(), serde_json::to_string(&info).expect("plain data"))])),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(info.id.clone()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                ..Default::default()
            }),
        };
        let locked = |current: &Lease| {
            let holder = current.metadata.annotations.as_ref().and_then(|a| a.get(LOCK_INFO)).and_then(|t| serde_json::from_str(t).ok());
            Error::Locked(Box::new(Locked { path: PathBuf::from(format!("{} (Lease {name})", self.address)), holder }))
        };
        match self.leases.get_opt(&name).await.map_err(|e| self.api_error("reading the lock", e))? {
            None => {
                self.leases.create(&PostParams::default(), &lease).await.map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => Error::Remote {
                        address: self.address.clone(),
                        message: "another kkp took the lock at the same moment; try again".into(),
                    },
                    e => self.api_error("taking the lock", e),
                })?;
            }
            Some(current) => {
                if !expired(&current) {
                    return Err(locked(&current));
                }
                // The holder died: take the lease over, guarded by its resourceVersion.
                lease.metadata.resource_version = current.metadata.resource_version.clone();
                self.leases.replace(&name, &PostParams::default(), &lease).await.map_err(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => locked(&current),
                    e => self.api_error("taking over an expired lock", e),
                })?;
            }
        }
        Ok(Box::new(LeaseLock::start(self.leases.clone(), name, info, self.lease_duration, self.address.clone())))
    }

    async fn holder(&self) -> Result<Option<super::lock::Holder>> {
        let Some(current) = self.leases.get_opt(&self.lock_name()).await.map_err(|e| self.api_error("reading the lock", e))? else {
            return Ok(None);
        };
        let info: Option<LockInfo> =
            current.metadata.annotations.as_ref().and_then(|a| a.get(LOCK_INFO)).and_then(|t| serde_json::from_str(t).ok());
        let alive = !expired(&current);
        let status = match current.spec.as_ref().and_then(|s| s.renew_time.as_ref()) {
            Some(renewed) if alive => format!("its Lease {} was renewed at {} and has not expired", self.lock_name(), renewed.0),
            Some(renewed) => format!("its Lease {} expired (last renewed at {}): the holder is gone", self.lock_name(), renewed.0),
            None => format!("its Lease {} has no renew time", self.lock_name()),
        };
        Ok(Some(super::lock::Holder { info, alive, status }))
    }

    async fn force_unlock(&self, id: &str) -> Result<LockInfo> {
        let name = self.lock_name();
        let current = self.leases.get_opt(&name).await.map_err(|e| self.api_error("reading the lock", e))?;
        let Some(current) = current else { return Err(Error::NotLocked { path: PathBuf::from(&self.address) }) };
        let holder = current.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
        if holder != id {
            return Err(Error::LockMismatch { path: PathBuf::from(&self.address), requested: id.into(), actual: holder });
        }
        let info = current.metadata.annotations.as_ref().and_then(|a| a.get(LOCK_INFO)).and_then(|t| serde_json::from_str(t).ok());
        self.leases.delete(&name, &DeleteParams::default()).await.map_err(|e| self.api_error("removing the lock", e))?;
        info.ok_or_else(|| Error::NotLocked { path: PathBuf::from(&self.address) })
    }

    async fn journal(&self, base: &State, lock: Arc<dyn Lock>) -> Result<Box<dyn Journal>> {
        // Batches left by an earlier, compacted apply would be replayed onto the wrong state.
        for entry in self.journal_entries().await? {
            if let Some(name) = entry.metadata.name {
                self.delete_secret(&name).await?;
            }
        }
        Ok(Box::new(SecretJournal {
            secrets: self.secrets.clone(),
            of: self.name.clone(),
            lineage: base.lineage.clone(),
            serial: base.serial,
            sequence: Mutex::new(0),
            lock,
            address: self.address.clone(),
        }))
    }

    async fn persist(&self, state: &State, lock: &dyn Lock) -> Result<()> {
        lock.check()?;
        let compressed = gzip(&format::to_bytes(state));
        let mut chunks = compressed.chunks(PART_BYTES);
        let head = chunks.next().unwrap_or_default().to_vec();
        let mut parts = Vec::new();
        for (i, chunk) in chunks.enumerate() {
            let name = format!("{}-{}-part-{}", self.name, state.serial, i + 1);
            let part = secret(
                &name,
                BTreeMap::from([("kkp.k8c.io/state-part-of".to_string(), self.name.clone())]),
                BTreeMap::new(),
                BTreeMap::from([(STATE_KEY.to_string(), ByteString(chunk.to_vec()))]),
            );
            let _ = self.secrets.delete(&name, &DeleteParams::default()).await;
            self.secrets.create(&PostParams::default(), &part).await.map_err(|e| self.api_error("writing a state part", e))?;
            parts.push(name);
        }
        let annotations = BTreeMap::from([
            ("kkp.k8c.io/lineage".to_string(), state.lineage.clone()),
            ("kkp.k8c.io/serial".to_string(), state.serial.to_string()),
            ("kkp.k8c.io/parts".to_string(), parts.join(",")),
        ]);
        let mut main = secret(
            &self.name,
            BTreeMap::from([("app.kubernetes.io/managed-by".to_string(), "kkp".to_string())]),
            annotations,
            BTreeMap::from([(STATE_KEY.to_string(), ByteString(head))]),
        );
        let version = self.version.lock().expect("lock").clone();
        lock.check()?;
        let written = match version {
            None => self.secrets.create(&PostParams::default(), &main).await,
            Some(v) => {
                main.metadata.resource_version = Some(v);
                self.secrets.replace(&self.name, &PostParams::default(), &main).await
            }
        }
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => Error::Remote {
                address: self.address.clone(),
                message: "the state was changed by someone else since it was read; nothing was overwritten".into(),
            },
            e => self.api_error("writing the state", e),
        })?;
        *self.version.lock().expect("lock") = written.metadata.resource_version;
        // The new state is in place: drop the journal and parts of older serials.
        for entry in self.journal_entries().await? {
            if let Some(name) = entry.metadata.name {
                let _ = self.secrets.delete(&name, &DeleteParams::default()).await;
            }
        }
        let stale = ListParams::default().labels(&format!("kkp.k8c.io/state-part-of={}", self.name));
        // Only the names are needed: a metadata-only list reads no part's data.
        if let Ok(list) = self.secrets.list_metadata(&stale).await {
            for part in list.items.into_iter().filter_map(|s| s.metadata.name).filter(|n| !parts.contains(n)) {
                let _ = self.secrets.delete(&part, &DeleteParams::default()).await;
            }
        }
        self.objects.collect_garbage(state);
        Ok(())
    }

    fn objects(&self) -> &ObjectStore {
        &self.objects
    }

    async fn tidy(&self, state: Option<&State>, lock: &dyn Lock) -> Result<()> {
        lock.check()?;
        self.delete_stale_journal(state).await?;
        self.objects.remove_leftovers();
        Ok(())
    }
}

fn expired(lease: &Lease) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else { return true };
    let until = renewed.0 + jiff::SignedDuration::from_secs(i64::from(seconds));
    jiff::Timestamp::now() >= until
}

/// A held Lease, renewed in the background at a third of its duration.
struct LeaseLock {
    info: LockInfo,
    lost: Arc<AtomicBool>,
    renewed: Arc<Mutex<std::time::Instant>>,
    duration: Duration,
    renewer: tokio::task::JoinHandle<()>,
    leases: Api<Lease>,
    name: String,
    address: String,
}

impl LeaseLock {
    fn start(leases: Api<Lease>, name: String, info: LockInfo, duration: Duration, address: String) -> Self {
        let lost = Arc::new(AtomicBool::new(false));
        let renewed = Arc::new(Mutex::new(std::time::Instant::now()));
        let (l, r, api, n, id) = (lost.clone(), renewed.clone(), leases.clone(), name.clone(), info.id.clone());
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(duration / 3).await;
                match renew(&api, &n, &id).await {
                    Ok(()) => *r.lock().expect("lock") = std::time::Instant::now(),
                    Err(Lost) => {
                        l.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        });
        LeaseLock { info, lost, renewed, duration, renewer, leases, name, address }
    }
}

struct Lost;

/// Renews the lease if it is still ours; transient failures are retried at the next tick
/// (the lease stays valid for its whole duration).
async fn renew(api: &Api<Lease>, name: &str, id: &str) -> std::result::Result<(), Lost> {
    let Ok(current) = api.get_opt(name).await else { return Ok(()) };
    let Some(mut lease) = current else { return Err(Lost) };
    let spec = lease.spec.get_or_insert_default();
    if spec.holder_identity.as_deref() != Some(id) {
        return Err(Lost);
    }
    spec.renew_time = Some(now_micro());
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => Err(Lost),
        Err(_) => Ok(()),
    }
}

#[async_trait]
impl Lock for LeaseLock {
    fn info(&self) -> &LockInfo {
        &self.info
    }

    fn check(&self) -> Result<()> {
        let age = self.renewed.lock().expect("lock").elapsed();
        if self.lost.load(Ordering::SeqCst) || age >= self.duration {
            return Err(Error::Remote {
                address: self.address.clone(),
                message: format!(
                    "the lock (Lease {}) was lost: it was not renewed for {age:?}, or someone else took it; nothing more is written",
                    self.name
                ),
            });
        }
        Ok(())
    }

    /// Deletes the lease if it is still ours; if that fails it simply expires.
    async fn release(&self) {
        self.renewer.abort();
        if let Ok(Some(lease)) = self.leases.get_opt(&self.name).await
            && lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(self.info.id.as_str())
        {
            let _ = self.leases.delete(&self.name, &DeleteParams::default()).await;
        }
    }
}

impl Drop for LeaseLock {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// The journal as Secrets, one per recorded batch.
struct SecretJournal {
    secrets: Api<Secret>,
    of: String,
    lineage: String,
    serial: u64,
    sequence: Mutex<u64>,
    lock: Arc<dyn Lock>,
    address: String,
}

#[async_trait]
impl Journal for SecretJournal {
    async fn record(&self, changes: &[Change]) -> Result<()> {
        self.lock.check()?;
        let mut records = Vec::new();
        for change in changes {
            serde_json::to_writer(&mut records, change).expect("plain data");
            records.push(b'\n');
        }
        let sequence = {
            let mut s = self.sequence.lock().expect("lock");
            *s += 1;
            *s
        };
        let name = format!("{}-journal-{}-{sequence:08}", self.of, self.serial);
        let entry = secret(
            &name,
            BTreeMap::from([(JOURNAL_LABEL.to_string(), self.of.clone())]),
            BTreeMap::from([
                ("kkp.k8c.io/lineage".to_string(), self.lineage.clone()),
                ("kkp.k8c.io/serial".to_string(), self.serial.to_string()),
            ]),
            BTreeMap::from([("records".to_string(), ByteString(records))]),
        );
        self.secrets
            .create(&PostParams::default(), &entry)
            .await
            .map_err(|e| Error::Remote { address: self.address.clone(), message: format!("writing journal record {name}: {e}") })?;
        Ok(())
    }

    async fn close(&self) {}
}
