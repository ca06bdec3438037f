//! Object versions: what an API server says of an object that tells, without its body, that
//! nobody changed what kkp applied since kkp applied it.
//!
//! Right after an apply kkp records the object's `resourceVersion` and a fingerprint of its uid
//! and kkp's own managed-fields entry ([`ObjectVersion`]). A refresh lists metadata only and
//! treats an object as unchanged when its resourceVersion is the recorded one (no write at all
//! since), or else when the fingerprint is (writes happened, but none to kkp's fields: a
//! controller's status, labels or fields others own). Server-side apply makes the second sound:
//! whoever changes or removes a field kkp applied takes it out of kkp's entry, and kkp's own
//! applies restamp the entry's time; a deleted and re-made object has another uid.

use crate::state::ObjectVersion;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// The metadata of one object, as an answer or a metadata-only list serves it, borrowed from
/// the answer's bytes; the fields kkp needs and nothing else is decoded.
#[derive(Debug, Deserialize)]
pub struct Metadata<'a> {
    /// Object name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Namespace, for namespaced objects.
    #[serde(default, borrow)]
    pub namespace: Option<Cow<'a, str>>,
    /// `metadata.resourceVersion`.
    #[serde(default, borrow, rename = "resourceVersion")]
    pub resource_version: Option<Cow<'a, str>>,
    /// `metadata.uid`.
    #[serde(default, borrow)]
    pub uid: Option<Cow<'a, str>>,
    /// `metadata.managedFields`, decoded only when the resourceVersion changed.
    #[serde(default, borrow, rename = "managedFields")]
    pub managed_fields: Option<&'a RawValue>,
}

/// An object (an apply's answer, or an item of a metadata-only list) reduced to its metadata.
#[derive(Debug, Deserialize)]
pub struct Object<'a> {
    /// Its metadata.
    #[serde(borrow)]
    pub metadata: Metadata<'a>,
}

impl Metadata<'_> {
    /// The version kkp records: None when the server gave no resourceVersion or there is no
    /// managed-fields entry of kkp's apply (nothing to tell changes by).
    pub fn version(&self) -> Option<ObjectVersion> {
        Some(ObjectVersion { resource_version: self.resource_version.as_deref()?.to_string(), fields: self.fields()? })
    }

    /// Whether this is the object as kkp recorded it after applying it.
    pub fn unchanged_since(&self, recorded: &ObjectVersion) -> bool {
        self.resource_version.as_deref() == Some(recorded.resource_version.as_str()) || self.fields().as_deref() == Some(&recorded.fields)
    }

    /// Fingerprint of the uid and kkp's managed-fields entry (operation Apply, no
    /// subresource), as canonical JSON so it does not depend on how the server spelled it.
    fn fields(&self) -> Option<String> {
        let entries: Vec<Value> = serde_json::from_str(self.managed_fields?.get()).ok()?;
        let ours = entries.iter().find(|e| {
            e.get("manager").and_then(Value::as_str) == Some(super::kube::FIELD_MANAGER)
                && e.get("operation").and_then(Value::as_str) == Some("Apply")
                && e.get("subresource").and_then(Value::as_str).unwrap_or_default().is_empty()
        })?;
        let mut hash = Sha256::new();
        hash.update(self.uid.as_deref().unwrap_or_default().as_bytes());
        hash.update([0]);
        hash.update(serde_json::to_vec(ours).expect("plain data"));
        // 128 bits tell versions of one object apart; the state holds one per object.
        Some(hex::encode(&hash.finalize()[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(object: &Value) -> ObjectVersion {
        let text = object.to_string();
        serde_json::from_str::<Object>(&text).unwrap().metadata.version().unwrap()
    }

    fn object(version: &str, uid: &str, kkp_fields: Value, others: Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "n", "resourceVersion": version, "uid": uid, "managedFields": [
            {"manager": "kkp", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": kkp_fields},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "apiVersion": "v1", "time": "2026-01-02T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": others},
        ]}})
    }

    #[test]
    fn a_write_that_leaves_kkps_fields_alone_keeps_the_fingerprint() {
        let applied = parsed(&object("5", "u1", json!({"f:data": {"f:a": {}}}), json!({})));
        let status_written = object("9", "u1", json!({"f:data": {"f:a": {}}}), json!({"f:status": {}}));
        let text = status_written.to_string();
        let live: Object = serde_json::from_str(&text).unwrap();
        assert_ne!(live.metadata.resource_version.as_deref(), Some("5"));
        assert!(live.metadata.unchanged_since(&applied));
    }

    #[test]
    fn a_field_taken_from_kkp_or_a_new_object_changes_the_fingerprint() {
        let applied = parsed(&object("5", "u1", json!({"f:data": {"f:a": {}, "f:b": {}}}), json!({})));
        for live in [
            object("9", "u1", json!({"f:data": {"f:a": {}}}), json!({})),
            object("9", "u2", json!({"f:data": {"f:a": {}, "f:b": {}}}), json!({})),
        ] {
            let text = live.to_string();
            assert!(!serde_json::from_str::<Object>(&text).unwrap().metadata.unchanged_since(&applied), "{live}");
        }
        // Without managed fields only the resourceVersion can tell.
        let bare = json!({"metadata": {"name": "a", "resourceVersion": "5"}}).to_string();
        let bare: Object = serde_json::from_str(&bare).unwrap();
        assert!(bare.metadata.unchanged_since(&applied) && bare.metadata.version().is_none());
    }
}
