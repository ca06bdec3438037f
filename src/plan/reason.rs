//! Why an action is planned, as data. The plan records reasons as codes with their data (so
//! a CI gate can match on them and a saved plan's digest does not change from day to day);
//! English is produced only by the views ([`super::display`]).

use crate::address::Address;
use serde::{Deserialize, Serialize};

/// One reason for an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Reason {
    /// The object does not exist yet.
    Missing,
    /// A CA is made for the first time.
    NewCertificateAuthority {
        /// Its common name.
        common_name: String,
    },
    /// A certificate is issued for the first time.
    NewCertificate {
        /// Its common name.
        common_name: String,
    },
    /// A key pair is made for the first time.
    NewKeyPair,
    /// Secret content (tokens, a kubeconfig) is made for the first time.
    NewSecret,
    /// The state records no certificate for a Secret kkp issues.
    NoCertificateRecorded,
    /// The certificate request (subject, names, usages, key) changed.
    RequestChanged,
    /// The issuer is re-issued in the same plan, so everything it signed is too.
    IssuerReissued {
        /// The issuer.
        issuer: Address,
    },
    /// The certificate was signed by another instance of its issuer.
    SignedByOtherIssuer {
        /// The issuer.
        issuer: Address,
    },
    /// The certificate expires inside the renewal window.
    Expiring {
        /// When it expires (unix seconds).
        not_after: i64,
        /// The renewal window in days.
        window_days: i64,
    },
    /// The certificate has expired.
    Expired {
        /// When it expired (unix seconds).
        not_after: i64,
    },
    /// Only the Secret's labels change; the certificate is kept.
    LabelsChangeCertificateKept,
    /// The workload mounts Secrets re-issued by this plan; their fingerprints (and so its pod
    /// template) are known after apply.
    MountsReissued {
        /// The Secrets.
        secrets: Vec<Address>,
    },
    /// The node moves to another seed.
    MovesSeed {
        /// Where it is now.
        from: String,
        /// Where it goes.
        to: String,
    },
    /// A field that Kubernetes does not change in place changes.
    ImmutableField {
        /// The field's path.
        path: String,
    },
    /// Fields change (each listed in the action's changes).
    FieldsChange {
        /// Paths of the changed fields.
        paths: Vec<String>,
    },
    /// The body differs from what was applied; the applied body is not at hand to diff.
    DiffersFromApplied {
        /// Digest of what was applied.
        applied: String,
    },
    /// The cluster is no longer in the topology.
    ClusterRemoved {
        /// Its name.
        cluster: String,
    },
    /// The seed is no longer in the topology.
    SeedRemoved {
        /// Its name.
        seed: String,
    },
    /// The node is no longer rendered for its cluster or seed.
    NoLongerRendered,
    /// The object was deleted outside kkp.
    DeletedOutsideKkp,
    /// Fields kkp applied were changed outside kkp; applying restores them.
    ChangedOutsideKkp {
        /// The field managers that changed them (empty: unknown).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        managers: Vec<String>,
    },
    /// The Secret holds a certificate (or content) kkp did not issue.
    CertificateReplacedOutsideKkp,
    /// `kkp import`: the object exists on the seed and is recorded as it is.
    ImportExisting {
        /// kkp's ownership label is added (someone else made the object).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        adds_label: bool,
    },
}

impl Reason {
    /// The stable code, as the plan JSON spells it.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Missing => "missing",
            Reason::NewCertificateAuthority { .. } => "new-certificate-authority",
            Reason::NewCertificate { .. } => "new-certificate",
            Reason::NewKeyPair => "new-key-pair",
            Reason::NewSecret => "new-secret",
            Reason::NoCertificateRecorded => "no-certificate-recorded",
            Reason::RequestChanged => "request-changed",
            Reason::IssuerReissued { .. } => "issuer-reissued",
            Reason::SignedByOtherIssuer { .. } => "signed-by-other-issuer",
            Reason::Expiring { .. } => "expiring",
            Reason::Expired { .. } => "expired",
            Reason::LabelsChangeCertificateKept => "labels-change-certificate-kept",
            Reason::MountsReissued { .. } => "mounts-reissued",
            Reason::MovesSeed { .. } => "moves-seed",
            Reason::ImmutableField { .. } => "immutable-field",
            Reason::FieldsChange { .. } => "fields-change",
            Reason::DiffersFromApplied { .. } => "differs-from-applied",
            Reason::ClusterRemoved { .. } => "cluster-removed",
            Reason::SeedRemoved { .. } => "seed-removed",
            Reason::NoLongerRendered => "no-longer-rendered",
            Reason::DeletedOutsideKkp => "deleted-outside-kkp",
            Reason::ChangedOutsideKkp { .. } => "changed-outside-kkp",
            Reason::CertificateReplacedOutsideKkp => "certificate-replaced-outside-kkp",
            Reason::ImportExisting { .. } => "import-existing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_serialised_tags() {
        let reasons = [
            Reason::Missing,
            Reason::Expiring { not_after: 1, window_days: 30 },
            Reason::MovesSeed { from: "a".into(), to: "b".into() },
            Reason::LabelsChangeCertificateKept,
        ];
        for reason in reasons {
            let value = serde_json::to_value(&reason).unwrap();
            assert_eq!(value["code"], reason.code());
            assert_eq!(serde_json::from_value::<Reason>(value).unwrap(), reason);
        }
    }
}
