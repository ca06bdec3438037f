//! What a refreshed plan says changed outside kkp: one entry per node, carried in the plan
//! (its own section, and the fields apply takes back). Found by [`crate::refresh::drift`].

use super::diff::FieldChange;
use crate::address::Address;
use crate::object::ObjectRef;
use crate::role::Role;
use serde::{Deserialize, Serialize};

/// What changed outside kkp on one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Drift {
    /// The object is gone.
    Deleted,
    /// Fields kkp applied hold other values (before: kkp's, after: live).
    #[serde(rename_all = "camelCase")]
    Changed {
        /// The fields.
        changes: Vec<FieldChange>,
        /// Field managers other than kkp that own them (empty: unknown, e.g. a file edited by
        /// hand).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        managers: Vec<String>,
    },
    /// The Secret holds another certificate (or key, or content) than kkp recorded.
    #[serde(rename_all = "camelCase")]
    CertificateReplaced {
        /// What kkp recorded.
        recorded: String,
        /// What is there now (None: nothing kkp can read).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live: Option<String>,
        /// Its not-after, for certificates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_after: Option<i64>,
    },
}

/// One node that changed outside kkp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftEntry {
    /// The node.
    pub address: Address,
    /// Its seed.
    pub seed: String,
    /// What it is for.
    pub role: Role,
    /// The object.
    pub object: ObjectRef,
    /// What changed.
    pub drift: Drift,
    /// True when the cluster waits for `--accept` (a CA or key pair changed and was not
    /// accepted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocks: bool,
}
