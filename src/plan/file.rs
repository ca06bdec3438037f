//! The saved-plan file: `{"format_version", "kkp_version", "digest", "plan"}`, where `digest`
//! is the sha256 of the exact bytes of `plan`. Reading verifies the digest against those
//! bytes, so any edit to the plan (or to the digest) is detected.

use super::Plan;
use crate::object::{DigestWriter, digest_bytes};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::io::{BufWriter, Seek, SeekFrom, Write};
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

/// Writes the plan file to `out` and returns the plan's digest. The plan is written once,
/// front to back, hashed as it goes; the digest then replaces a stand-in of the same length in
/// the file's head. A fleet's plan is gigabytes: it is never held in memory whole.
pub fn write(plan: &Plan, out: impl Write + Seek) -> std::io::Result<String> {
    let mut out = BufWriter::new(out);
    let head = |digest: &str| {
        format!(
            "{{\"format_version\":{FORMAT_VERSION},\"kkp_version\":{},\"digest\":\"{digest}\",\"plan\":",
            serde_json::to_string(env!("CARGO_PKG_VERSION")).expect("string")
        )
    };
    let start = out.stream_position()?;
    out.write_all(head(&digest_bytes(b"")).as_bytes())?;
    let mut hashing = DigestWriter::new(out);
    serde_json::to_writer(&mut hashing, plan)?;
    let (mut out, digest) = hashing.finish();
    out.write_all(b"}\n")?;
    let end = out.stream_position()?;
    out.seek(SeekFrom::Start(start))?;
    out.write_all(head(&digest).as_bytes())?;
    out.seek(SeekFrom::Start(end))?;
    out.flush()?;
    Ok(digest)
}

/// The plan's digest, as [`write`] records it, without keeping the file.
pub fn digest(plan: &Plan) -> String {
    crate::object::digest(plan)
}

/// The file's bytes and the plan's digest (for plans small enough to hold twice).
pub fn to_bytes(plan: &Plan) -> (Vec<u8>, String) {
    let mut bytes = std::io::Cursor::new(Vec::new());
    let digest = write(plan, &mut bytes).expect("plans always serialise into memory");
    (bytes.into_inner(), digest)
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
