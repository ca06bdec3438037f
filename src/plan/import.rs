//! What a saved import plan (`kkp import -o import.plan`) carries beyond its actions: for each
//! adopted node, what the state will record of the live object ([`ImportRecord`]: never key
//! material), and for each cluster the zero-diff verdict ([`Verdict`]) the reviewer decides on.
//! Applying the plan records exactly that and writes only kkp's ownership label.

use super::diff::FieldChange;
use crate::address::Address;
use crate::state::CertificateState;
use serde::{Deserialize, Serialize};

/// What the state records for one adopted node, besides its body (the action's `desired`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportRecord {
    /// For a Secret kkp issues: the live certificate's fingerprint, not-after and issuer. Apply
    /// refuses to record it if the live Secret holds another certificate by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateState>,
    /// kkp's ownership label is added to the object (someone else made it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub label: bool,
}

/// How one cluster (or a seed's own nodes) fared in an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Verdict {
    /// Every object exists and a plan right after changes nothing.
    AdoptedNoChanges,
    /// Adopted; the next plan makes these changes in place (or creates what is missing).
    AdoptedWithChanges {
        /// The changes, by node.
        changes: Vec<Pending>,
    },
    /// Not adopted: nothing of it enters the state.
    NotAdopted {
        /// Why.
        reasons: Vec<String>,
    },
}

/// A change the next plan makes to an adopted node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// The node.
    pub address: Address,
    /// What happens: created, updated, re-issued.
    pub what: String,
    /// Changed fields, for updates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}
