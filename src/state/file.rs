//! The local-file state backend: `kkp.state.json` (the index), with beside it
//! `.backup` (the previous state), `.journal` (progress of a running apply), `.lock`
//! (the writer lock) and `.objects/` (content-addressed applied bodies).
//!
//! Writes are atomic: a temp file in the same directory, fsync, rename, fsync of the
//! directory. Every file is created 0600.

use super::journal::{self, Journal, Replay};
use super::lock::{self, LockGuard, LockInfo};
use super::{Error, Result, State, format};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A state kept in local files.
#[derive(Debug, Clone)]
pub struct FileBackend {
    path: PathBuf,
}

/// A loaded state and what recovery did.
#[derive(Debug)]
pub struct Loaded {
    /// The state (None: nothing was ever applied).
    pub state: Option<State>,
    /// Journal records of an interrupted apply that were replayed.
    pub recovered: usize,
}

impl FileBackend {
    /// The backend for the state file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileBackend { path: path.into() }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    fn journal_path(&self) -> PathBuf {
        self.sibling(".journal")
    }

    fn lock_path(&self) -> PathBuf {
        self.sibling(".lock")
    }

    fn objects_dir(&self) -> PathBuf {
        self.sibling(".objects")
    }

    /// Loads the state, replaying the journal an interrupted apply left behind.
    pub fn load(&self) -> Result<Loaded> {
        let mut state = match std::fs::read(&self.path) {
            Ok(bytes) => Some(format::from_bytes(&self.path, &bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::Io { path: self.path.clone(), source }),
        };
        let Replay { applied, .. } = journal::replay(&self.journal_path(), &mut state)?;
        Ok(Loaded { state, recovered: applied })
    }

    /// Takes the writer lock for `operation`.
    pub fn lock(&self, operation: &str) -> Result<LockGuard> {
        LockGuard::acquire(&self.lock_path(), operation)
    }

    /// Breaks the lock with ID `id`.
    pub fn force_unlock(&self, id: &str) -> Result<LockInfo> {
        lock::force_unlock(&self.lock_path(), id)
    }

    /// Opens a journal extending `base`, the state as last persisted.
    pub fn journal(&self, base: &State) -> Result<Journal> {
        Journal::create(&self.journal_path(), base)
    }

    /// Writes `state` atomically, keeping the previous one as `.backup`, then drops the
    /// journal it supersedes and unreferenced objects.
    pub fn persist(&self, state: &State) -> Result<()> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if self.path.exists() {
            // A hard link keeps the old bytes without copying them, atomically.
            let backup = self.sibling(".backup");
            let staging = self.sibling(".backup.tmp");
            let _ = std::fs::remove_file(&staging);
            std::fs::hard_link(&self.path, &staging).or_else(|_| std::fs::copy(&self.path, &staging).map(|_| ())).map_err(io(&staging))?;
            std::fs::rename(&staging, &backup).map_err(io(&backup))?;
        }
        write_atomic(&self.path, &format::to_bytes(state))?;
        match std::fs::remove_file(self.journal_path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Io { path: self.journal_path(), source }),
        }
        self.collect_garbage(state);
        Ok(())
    }

    /// Stores an applied body under its digest (`sha256:<hex>`).
    pub fn write_object(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let path = self.object_path(digest);
        if path.exists() {
            return Ok(());
        }
        let dir = path.parent().expect("object paths have a parent");
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
        // Objects are a cache for diffs; the index is authoritative, so no fsync here.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut file = lock::open_private(&tmp).map_err(|source| Error::Io { path: tmp.clone(), source })?;
        file.write_all(bytes).map_err(|source| Error::Io { path: tmp.clone(), source })?;
        std::fs::rename(&tmp, &path).map_err(|source| Error::Io { path: path.clone(), source })
    }

    /// Reads an applied body; None when it was never stored (or was lost).
    pub fn read_object(&self, digest: &str) -> Option<Vec<u8>> {
        std::fs::read(self.object_path(digest)).ok()
    }

    fn object_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.objects_dir().join(&hex[..2.min(hex.len())]).join(format!("{hex}.json"))
    }

    /// Removes stored bodies no node refers to.
    fn collect_garbage(&self, state: &State) {
        let referenced: BTreeSet<&str> = state.nodes.values().map(|n| n.digest.trim_start_matches("sha256:")).collect();
        let Ok(shards) = std::fs::read_dir(self.objects_dir()) else { return };
        for shard in shards.flatten() {
            let Ok(files) = std::fs::read_dir(shard.path()) else { continue };
            for file in files.flatten() {
                let name = file.file_name();
                let hex = name.to_string_lossy();
                let hex = hex.trim_end_matches(".json");
                if !referenced.contains(hex) {
                    let _ = std::fs::remove_file(file.path());
                }
            }
        }
    }
}

/// Writes `bytes` to `path` atomically and durably (temp, fsync, rename, fsync directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    // One writer holds the lock, so a fixed name is safe and a crash leaves no litter behind.
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = lock::open_private(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_parent(path).map_err(io)
}

/// fsyncs the directory holding `path`, making a rename or create in it durable.
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::state::{Change, NodeState};

    fn node(digest: &str) -> NodeState {
        NodeState { seed: "s".into(), object: None, digest: digest.into(), certificate: None }
    }

    #[tokio::test]
    async fn persist_keeps_a_backup_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("kkp.state.json"));
        assert!(backend.load().unwrap().state.is_none());
        let mut state = State::new("lin".into());
        state.serial = 1;
        backend.persist(&state).unwrap();
        state.serial = 2;
        backend.persist(&state).unwrap();
        let backup = format::from_bytes(Path::new("b"), &std::fs::read(dir.path().join("kkp.state.json.backup")).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
        assert_eq!(backend.load().unwrap().state.unwrap().serial, 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(backend.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn an_interrupted_apply_is_recovered_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("s.json"));
        let base = State::new("lin".into());
        let journal = backend.journal(&base).unwrap();
        journal.record(&[Change::Put { address: Address::seed("x"), node: node("sha256:aa") }]).await.unwrap();
        drop(journal); // the process dies here: no persist
        let loaded = backend.load().unwrap();
        assert_eq!(loaded.recovered, 1);
        let state = loaded.state.unwrap();
        assert_eq!(state.nodes.len(), 1);
        // Compaction folds the journal into the state and removes it.
        let next = State { serial: 1, ..state };
        backend.persist(&next).unwrap();
        assert!(!dir.path().join("s.json.journal").exists());
        assert_eq!(backend.load().unwrap().recovered, 0);
    }

    #[test]
    fn objects_are_content_addressed_and_collected() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("s.json"));
        backend.write_object("sha256:abcd", b"{}").unwrap();
        backend.write_object("sha256:ef01", b"[]").unwrap();
        assert_eq!(backend.read_object("sha256:abcd").unwrap(), b"{}");
        let mut state = State::new("l".into());
        state.nodes.insert(Address::seed("a"), node("sha256:abcd"));
        backend.persist(&state).unwrap();
        assert!(backend.read_object("sha256:abcd").is_some());
        assert!(backend.read_object("sha256:ef01").is_none());
    }
}
