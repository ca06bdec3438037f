//! Kubernetes objects as plain data: identity ([`ObjectRef`]) and canonical digests.
//!
//! Manifests travel through the pipeline as `serde_json::Value`. serde_json keeps object keys
//! sorted (no `preserve_order`), so serialising a manifest gives canonical bytes, and their
//! sha256 is the manifest's digest.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Which object: apiVersion, kind, namespace (None for cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// e.g. `apps/v1`.
    pub api_version: String,
    /// e.g. `StatefulSet`.
    pub kind: String,
    /// None for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// Reads the identity of a manifest; None when apiVersion, kind or name is missing.
    pub fn of(manifest: &Value) -> Option<ObjectRef> {
        Some(ObjectRef {
            api_version: manifest.get("apiVersion")?.as_str()?.to_string(),
            kind: manifest.get("kind")?.as_str()?.to_string(),
            namespace: manifest.pointer("/metadata/namespace").and_then(Value::as_str).map(str::to_string),
            name: manifest.pointer("/metadata/name")?.as_str()?.to_string(),
        })
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
    let bytes = serde_json::to_vec(value).expect("plain data always serialises");
    digest_bytes(&bytes)
}

/// `sha256:<hex>` of raw bytes.
pub fn digest_bytes(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The placeholder a manifest carries where a value is known only after apply.
pub const KNOWN_AFTER_APPLY: &str = "(known after apply)";
