//! Certificates: what each Secret must hold ([`CertRequest`], pure), and issuing it with rcgen
//! ([`issue`], used only by apply).
//!
//! State and plans carry a request's digest, the certificate's fingerprint (sha256 of its DER)
//! and its not-after time; private keys exist only in the Secrets on the target.

mod issue;
mod request;

pub use issue::{Authority, Error, Issued, KeyMaterial, inspect, issue};
pub use request::{CertKind, CertRequest, KeyAlgorithm, RENEWAL_WINDOW_DAYS, Renewal, SecretLayout, Usage};
