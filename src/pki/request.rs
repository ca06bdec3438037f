//! Certificate requests: pure descriptions of the keys and certificates a Secret holds.

use crate::address::Address;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// KKP regenerates a leaf when fewer than this many days remain.
pub const RENEWAL_WINDOW_DAYS: i64 = 30;

/// Why a leaf must be renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// It has expired.
    Expired,
    /// It expires inside the renewal window.
    Expiring,
}

/// What a Secret holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertRequest {
    /// CA, leaf certificate, or a bare key pair.
    pub kind: CertKind,
    /// Key algorithm.
    pub key: KeyAlgorithm,
    /// Subject CN (empty for a bare key pair).
    pub common_name: String,
    /// Subject O.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizations: Vec<String>,
    /// DNS SANs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
    /// IP SANs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddr>,
    /// Extended key usages of a leaf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usages: Vec<Usage>,
    /// Validity in days from issuance.
    pub validity_days: u32,
    /// The CA Secret that signs it (None: self-signed CA or key pair).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Address>,
    /// Which Secret data keys hold what.
    pub layout: SecretLayout,
    /// What the Secret holds instead of the bare certificate and key (None: just those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
}

/// Secret content made at apply around (or instead of) a certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Content {
    /// A kubeconfig (key `kubeconfig`) carrying the leaf's client certificate and key, its
    /// cluster and context named `cluster`, its user `default` (KKP's internal kubeconfigs).
    #[serde(rename_all = "camelCase")]
    Kubeconfig {
        /// The apiserver URL.
        server: String,
        /// Cluster and context name.
        cluster: String,
    },
    /// A kubeconfig (key `kubeconfig`) authenticating with a token of the [`Content::TokenUsers`]
    /// Secret `tokens`; the issuer is the CA it trusts.
    #[serde(rename_all = "camelCase")]
    TokenKubeconfig {
        /// The apiserver URL.
        server: String,
        /// Cluster and context name.
        cluster: String,
        /// The Secret holding the tokens.
        tokens: Address,
        /// Whose token.
        user: TokenUser,
    },
    /// The apiserver's static token users (key `tokens.csv`): a random admin and viewer token,
    /// made once and kept.
    TokenUsers,
    /// The viewer token alone (key `viewerToken`), read from the [`Content::TokenUsers`] Secret.
    #[serde(rename_all = "camelCase")]
    ViewerToken {
        /// The Secret holding the tokens.
        tokens: Address,
    },
    /// A copy of another Secret's data on the same seed (the cloud credentials).
    #[serde(rename_all = "camelCase")]
    Copy {
        /// The source Secret's namespace.
        namespace: String,
        /// The source Secret's name.
        name: String,
    },
    /// Data made from the cloud credentials Secret `namespace/name` (looked up as for
    /// [`Content::Copy`]) and the settings in `secret`: a provider's `cloud-config`, GCP's
    /// service account, KubeVirt's infra kubeconfig.
    #[serde(rename_all = "camelCase")]
    Cloud {
        /// The credentials Secret's namespace.
        namespace: String,
        /// The credentials Secret's name.
        name: String,
        /// What is made, with the settings known at render time.
        secret: super::cloud_config::CloudSecret,
    },
}

/// A static token user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TokenUser {
    /// `admin` in group `system:masters`.
    Admin,
    /// `viewer` in group `viewers`.
    Viewer,
}

/// The kind of material in a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CertKind {
    /// A self-signed certificate authority.
    Ca,
    /// A certificate signed by `issuer`.
    Leaf,
    /// A key pair without a certificate (the service-account signing key).
    KeyPair,
    /// No key of its own: content made at apply from random tokens, other Secrets or a CA's
    /// certificate (see [`Content`]); never renewed for age.
    Generated,
}

impl CertKind {
    /// Whether material of this kind has a not-after time.
    pub fn expires(self) -> bool {
        matches!(self, CertKind::Ca | CertKind::Leaf)
    }
}

/// Key algorithms KKP uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// RSA 2048 (KKP's main CAs and leaves).
    #[serde(rename = "RSA-2048")]
    Rsa2048,
    /// ECDSA P-256 (KKP's OpenVPN PKI).
    #[serde(rename = "ECDSA-P256")]
    EcdsaP256,
}

/// Extended key usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Usage {
    /// TLS server.
    ServerAuth,
    /// TLS client.
    ClientAuth,
}

/// The Secret data keys a request's material is stored under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretLayout {
    /// Key of the PEM certificate (or of the public key for a key pair).
    pub cert: String,
    /// Key of the PEM private key.
    pub key: String,
    /// Key under which the issuing CA's certificate is copied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Also store the certificate and key as `tls.crt`/`tls.key` (KKP's generic serving certs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tls_copy: bool,
}

impl SecretLayout {
    /// `<base>.crt` / `<base>.key`, optionally with `ca.crt`.
    pub fn named(base: &str, with_ca: bool) -> Self {
        SecretLayout { cert: format!("{base}.crt"), key: format!("{base}.key"), ca: with_ca.then(|| "ca.crt".into()), tls_copy: false }
    }
}

impl CertRequest {
    /// A self-signed CA valid for 10 years, stored as `ca.crt`/`ca.key`.
    pub fn ca(common_name: &str, key: KeyAlgorithm) -> Self {
        CertRequest {
            kind: CertKind::Ca,
            key,
            common_name: common_name.into(),
            organizations: Vec::new(),
            // client-go's self-signed CA helper adds the CN as a DNS SAN.
            dns_names: vec![common_name.into()],
            ip_addresses: Vec::new(),
            usages: Vec::new(),
            validity_days: 3650,
            issuer: None,
            layout: SecretLayout::named("ca", false),
            content: None,
        }
    }

    /// A leaf valid for one year, signed by `issuer`.
    pub fn leaf(common_name: &str, issuer: Address, usages: Vec<Usage>, layout: SecretLayout) -> Self {
        CertRequest {
            kind: CertKind::Leaf,
            key: KeyAlgorithm::Rsa2048,
            common_name: common_name.into(),
            organizations: Vec::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            usages,
            validity_days: 365,
            issuer: Some(issuer),
            layout,
            content: None,
        }
    }

    /// Content made at apply without a key of its own (tokens, copies, token kubeconfigs).
    pub fn generated(content: Content, issuer: Option<Address>) -> Self {
        let layout = SecretLayout { cert: String::new(), key: String::new(), ca: None, tls_copy: false };
        CertRequest { kind: CertKind::Generated, issuer, content: Some(content), ..Self::bare(layout) }
    }

    /// A bare RSA-2048 key pair (no certificate): the public key under `public`, the private
    /// key under `private`.
    pub fn key_pair(public: &str, private: &str) -> Self {
        Self::bare(SecretLayout { cert: public.into(), key: private.into(), ca: None, tls_copy: false })
    }

    /// A key pair with no subject, issuer or content, the base of the two above.
    fn bare(layout: SecretLayout) -> Self {
        CertRequest {
            kind: CertKind::KeyPair,
            key: KeyAlgorithm::Rsa2048,
            common_name: String::new(),
            organizations: Vec::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            usages: Vec::new(),
            validity_days: 0,
            issuer: None,
            layout,
            content: None,
        }
    }

    /// Digest of the request: what decides "same certificate wanted" between runs.
    pub fn digest(&self) -> String {
        crate::object::digest(self)
    }

    /// Whether a leaf issued until `not_after` must be renewed at `now` (CAs and key pairs
    /// are never renewed for age, as in KKP).
    pub fn renewal(&self, not_after: i64, now: i64) -> Option<Renewal> {
        if self.kind != CertKind::Leaf {
            None
        } else if not_after <= now {
            Some(Renewal::Expired)
        } else if not_after - now < RENEWAL_WINDOW_DAYS * 86_400 {
            Some(Renewal::Expiring)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf() -> CertRequest {
        CertRequest::leaf(
            "apiserver",
            Address::cluster_object("a", crate::object::Kind::Secret, "ca"),
            vec![Usage::ClientAuth],
            SecretLayout::named("x", true),
        )
    }

    #[test]
    fn leaves_renew_inside_the_window_cas_never() {
        let now = 1_700_000_000;
        assert_eq!(leaf().renewal(now + 40 * 86_400, now), None);
        assert_eq!(leaf().renewal(now + 30 * 86_400, now), None);
        assert_eq!(leaf().renewal(now + 12 * 86_400 + 5, now), Some(Renewal::Expiring));
        assert_eq!(leaf().renewal(now - 1, now), Some(Renewal::Expired));
        assert_eq!(CertRequest::ca("ca", KeyAlgorithm::Rsa2048).renewal(now - 1, now), None);
    }

    #[test]
    fn digest_changes_with_the_subject() {
        let mut other = leaf();
        other.dns_names.push("extra".into());
        assert_ne!(leaf().digest(), other.digest());
        assert_eq!(leaf().digest(), leaf().digest());
    }
}
