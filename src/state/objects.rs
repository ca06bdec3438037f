//! The object store: applied bodies by digest (`<dir>/<xx>/<sha256>.json`), so a plan can show
//! field-level diffs for the few nodes that change without the state holding every manifest.
//! A cache for display: the state's digests are authoritative, and a missing body only makes a
//! diff less detailed.

use super::{Error, Result, State};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

/// A directory of content-addressed bodies.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    dir: PathBuf,
}

impl ObjectStore {
    /// The store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ObjectStore { dir: dir.into() }
    }

    fn path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join(&hex[..2.min(hex.len())]).join(format!("{hex}.json"))
    }

    /// Stores `bytes` under `digest` (`sha256:<hex>`); a body already stored is kept.
    pub fn write(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(digest);
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().expect("object paths have a parent");
        let io = |path: &std::path::Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        // Unique per writer: two nodes may store the same body at the same time.
        let tmp = dir.join(format!(".{}.{}", uuid::Uuid::new_v4(), std::process::id()));
        let mut file = super::lock::open_private(&tmp).map_err(io(&tmp))?;
        file.write_all(bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Reads a body; None when it was never stored (or was lost).
    pub fn read(&self, digest: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(digest)).ok()
    }

    /// Removes bodies no node of `state` refers to (and temp files of writers that died).
    pub fn collect_garbage(&self, state: &State) {
        let referenced: BTreeSet<&str> = state.nodes.values().map(|n| n.digest.trim_start_matches("sha256:")).collect();
        let Ok(shards) = std::fs::read_dir(&self.dir) else { return };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                if !referenced.contains(name.trim_end_matches(".json")) {
                    let _ = std::fs::remove_file(file.path());
                }
            }
        }
    }
}
