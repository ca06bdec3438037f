//! The state file envelope: `format_version`, the writer's version, lineage, serial, and the
//! index. Readers accept every format up to [`FORMAT_VERSION`] and refuse newer ones; only
//! the current format is written. Keys are sorted, so the bytes are deterministic.

use super::{Error, Result, State};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The format this build writes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Envelope<'a> {
    format_version: u32,
    kkp_version: &'a str,
    #[serde(flatten)]
    state: &'a State,
}

#[derive(Deserialize)]
struct Version {
    format_version: Option<u32>,
}

/// Serialises a state in the current format.
pub fn to_bytes(state: &State) -> Vec<u8> {
    let envelope = Envelope { format_version: FORMAT_VERSION, kkp_version: env!("CARGO_PKG_VERSION"), state };
    let mut bytes = serde_json::to_vec_pretty(&envelope).expect("state always serialises");
    bytes.push(b'\n');
    bytes
}

/// Parses a state file's bytes; `path` is only for messages.
pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<State> {
    let corrupt = |message: String| Error::Corrupt { path: path.to_path_buf(), message };
    let version: Version = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    match version.format_version {
        None => Err(corrupt("it has no format_version".into())),
        Some(found) if found > FORMAT_VERSION => Err(Error::TooNew { path: path.to_path_buf(), found, supported: FORMAT_VERSION }),
        Some(0) => Err(corrupt("format_version 0 does not exist".into())),
        Some(_) => {
            let state: State = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
            if state.lineage.is_empty() {
                return Err(corrupt("it has no lineage".into()));
            }
            Ok(state)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::state::NodeState;

    #[test]
    fn round_trips_and_is_deterministic() {
        let mut state = State::new("l-1".into());
        state.serial = 7;
        for name in ["b", "a"] {
            state
                .nodes
                .insert(Address::seed(name), NodeState { seed: name.into(), object: None, digest: "sha256:00".into(), certificate: None });
        }
        let bytes = to_bytes(&state);
        assert_eq!(from_bytes(Path::new("s"), &bytes).unwrap(), state);
        assert_eq!(bytes, to_bytes(&from_bytes(Path::new("s"), &bytes).unwrap()));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.find("seed/a").unwrap() < text.find("seed/b").unwrap());
        assert!(text.contains("\"format_version\": 1"));
    }

    #[test]
    fn newer_formats_are_refused_with_the_fix() {
        let err = from_bytes(Path::new("kkp.state.json"), br#"{"format_version": 9, "lineage": "x", "serial": 1}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "kkp.state.json: state format 9 was written by a newer kkp (this kkp reads formats up to 1)\n  fix: upgrade kkp"
        );
    }

    #[test]
    fn garbage_is_reported_as_corrupt() {
        let err = from_bytes(Path::new("s.json"), b"{\"format_version\": 1, \"lineage\": ").unwrap_err();
        assert!(err.to_string().starts_with("s.json: not a kkp state file"), "{err}");
    }
}
