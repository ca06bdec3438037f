//! Certificates: what each Secret must hold ([`CertRequest`], pure), and issuing it with rcgen
//! ([`issue`], used only by apply), and the content made around or instead of certificates
//! (kubeconfigs, tokens, copied credentials, cloud configs: [`make`], [`cloud_config`]).
//!
//! State and plans carry a request's digest, the certificate's fingerprint (sha256 of its DER)
//! and its not-after time; private keys exist only in the Secrets on the target.

pub mod cloud_config;
mod content;
mod issue;
mod request;

pub use content::{Inputs, KUBECONFIG_KEY, TOKENS_KEY, Tokens, VIEWER_TOKEN_KEY, data_fingerprint, kubeconfig, make};
pub use issue::{Authority, Error, Issued, KeyMaterial, accept_as_is, inspect, issue};
pub use request::{CertKind, CertRequest, Content, KeyAlgorithm, RENEWAL_WINDOW_DAYS, Renewal, SecretLayout, TokenUser, Usage};
