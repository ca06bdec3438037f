//! The saved-plan file: `{"format_version", "kkp_version", "digest", "plan"}`, where `digest`
//! is the sha256 of the exact bytes of `plan`. Reading verifies the digest against those
//! bytes, so any edit to the plan (or to the digest) is detected.

use super::Plan;
use crate::object::digest_bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};

/// The format this build writes and reads. Format 2 records node roles and reasons as codes
/// with data; format 1 plans cannot be applied safely by this build and are refused.
pub const FORMAT_VERSION: u32 = 2;

/// Errors reading a saved plan.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not a kkp plan.
    #[error("{}: not a kkp plan file: {message}", path.display())]
    NotAPlan {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Written by a newer kkp.
    #[error("{}: plan format {found} was written by a newer kkp (this kkp reads format {FORMAT_VERSION})\n  fix: apply it with the kkp that made it, or re-run kkp plan", path.display())]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// Written by an older kkp in a format this one does not apply.
    #[error("{}: plan format {found} was written by an older kkp (this kkp reads format {FORMAT_VERSION})\n  fix: re-run kkp plan with this kkp and review the new plan", path.display())]
    TooOld {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// The plan's bytes do not match its digest.
    #[error("{}: the plan was modified after it was saved (its digest is {recorded}, its content hashes to {actual})\n  fix: re-run kkp plan; never edit a saved plan", path.display())]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The digest written in the file.
        recorded: String,
        /// The digest of the content.
        actual: String,
    },
}

#[derive(Deserialize)]
struct Envelope<'a> {
    format_version: u32,
    digest: String,
    #[serde(borrow)]
    plan: &'a RawValue,
}

/// The file's bytes and the plan's digest.
pub fn to_bytes(plan: &Plan) -> (Vec<u8>, String) {
    // One buffer: the envelope's head with a stand-in digest of the same length, then the
    // plan, whose digest then replaces the stand-in. A fleet's plan is gigabytes; copying it
    // into an envelope would double the peak.
    let head = |digest: &str| {
        format!(
            "{{\"format_version\":{FORMAT_VERSION},\"kkp_version\":{},\"digest\":\"{digest}\",\"plan\":",
            serde_json::to_string(env!("CARGO_PKG_VERSION")).expect("string")
        )
    };
    let stand_in = digest_bytes(b"");
    let mut text = head(&stand_in).into_bytes();
    let start = text.len();
    serde_json::to_writer(&mut text, plan).expect("plans always serialise");
    let digest = digest_bytes(&text[start..]);
    let real = head(&digest);
    assert_eq!(real.len(), start, "digests have one length");
    text[..start].copy_from_slice(real.as_bytes());
    text.extend_from_slice(b"}\n");
    (text, digest)
}

/// Reads and verifies a saved plan; returns it with its digest.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<(Plan, String), Error> {
    let not_a_plan = |message: String| Error::NotAPlan { path: path.to_path_buf(), message };
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|e| not_a_plan(e.to_string()))?;
    if envelope.format_version > FORMAT_VERSION {
        return Err(Error::TooNew { path: path.to_path_buf(), found: envelope.format_version });
    }
    if envelope.format_version < FORMAT_VERSION {
        return Err(Error::TooOld { path: path.to_path_buf(), found: envelope.format_version });
    }
    let actual = digest_bytes(envelope.plan.get().as_bytes());
    if actual != envelope.digest {
        return Err(Error::Tampered { path: path.to_path_buf(), recorded: envelope.digest, actual });
    }
    let plan: Plan = serde_json::from_str(envelope.plan.get()).map_err(|e| not_a_plan(e.to_string()))?;
    Ok((plan, actual))
}
