//! Kubernetes objects as plain data: identity ([`ObjectRef`]), the kinds kkp writes
//! ([`kind`]) and canonical digests.
//!
//! Manifests travel through the pipeline as `serde_json::Value`. serde_json keeps object keys
//! sorted (no `preserve_order`), so serialising a manifest gives canonical bytes, and their
//! sha256 is the manifest's digest.

pub mod kind;

pub use kind::Kind;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Which object: kind, namespace (None for cluster-scoped) and name. Serialised with the
/// kind's `apiVersion` and name, as manifests spell them; a kind kkp does not write does not
/// parse.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "WireRef", try_from = "WireRef")]
pub struct ObjectRef {
    /// The kind.
    pub kind: Kind,
    /// None for cluster-scoped objects.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// An object in `namespace`.
    pub fn namespaced(kind: Kind, namespace: &str, name: &str) -> Self {
        ObjectRef { kind, namespace: Some(namespace.into()), name: name.into() }
    }

    /// A cluster-scoped object.
    pub fn cluster_scoped(kind: Kind, name: &str) -> Self {
        ObjectRef { kind, namespace: None, name: name.into() }
    }

    /// Reads the identity of a manifest; None when apiVersion, kind or name is missing, or
    /// the kind is not one kkp writes.
    pub fn of(manifest: &Value) -> Option<ObjectRef> {
        let api_version = manifest.get("apiVersion")?.as_str()?;
        let kind = Kind::lookup(api_version, manifest.get("kind")?.as_str()?)?;
        Some(ObjectRef {
            kind,
            namespace: manifest.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
            name: manifest.pointer("/metadata/name")?.as_str()?.to_string(),
        })
    }

    /// `apiVersion` of the object's kind.
    pub fn api_version(&self) -> &'static str {
        self.kind.api_version()
    }
}

/// [`ObjectRef`] as stored in state and plan files.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireRef {
    api_version: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
}

impl From<ObjectRef> for WireRef {
    fn from(o: ObjectRef) -> Self {
        WireRef { api_version: o.kind.api_version().into(), kind: o.kind.name().into(), namespace: o.namespace, name: o.name }
    }
}

impl TryFrom<WireRef> for ObjectRef {
    type Error = String;

    fn try_from(w: WireRef) -> Result<Self, String> {
        let kind = Kind::lookup(&w.api_version, &w.kind).ok_or_else(|| format!("{} {} is not a kind kkp writes", w.api_version, w.kind))?;
        if kind.namespaced() != w.namespace.is_some() {
            let scope = if kind.namespaced() { "needs a namespace" } else { "is cluster-scoped" };
            return Err(format!("{kind} {} {scope}", w.name));
        }
        Ok(ObjectRef { kind, namespace: w.namespace, name: w.name })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// `sha256:<hex>` of a value's canonical JSON bytes.
pub fn digest<T: Serialize + ?Sized>(value: &T) -> String {
    let mut hashing = DigestWriter::new(std::io::sink());
    serde_json::to_writer(&mut hashing, value).expect("plain data always serialises");
    hashing.finish().1
}

/// `sha256:<hex>` of raw bytes.
pub fn digest_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Passes bytes on to a writer and digests them on the way, so what is written need not be
/// held to be digested.
pub struct DigestWriter<W> {
    out: W,
    hasher: Sha256,
}

impl<W> DigestWriter<W> {
    /// Writes to `out`.
    pub fn new(out: W) -> DigestWriter<W> {
        DigestWriter { out, hasher: Sha256::new() }
    }

    /// The writer back, and `sha256:<hex>` of everything written through.
    pub fn finish(self) -> (W, String) {
        (self.out, format!("sha256:{}", hex::encode(self.hasher.finalize())))
    }
}

impl<W: std::io::Write> std::io::Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(buf)?;
        self.hasher.update(&buf[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The placeholder a manifest carries where a value is known only after apply.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";
