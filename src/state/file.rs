//! The local-file state backend: `kkp.state.json` (the index), with beside it
//! `.backup` (the previous state), `.journal` (progress of a running apply), `.lock`
//! (the writer lock) and `.objects/` (content-addressed applied bodies).
//!
//! Writes are atomic: a temp file in the same directory, fsync, rename, fsync of the
//! directory. Every file is created 0600.

use super::backend::{Backend, Loaded, Lock, Recovery};
use super::journal::{self, Journal, Replay};
use super::lock::{self, LockGuard, LockInfo};
use super::objects::ObjectStore;
use super::{Error, Result, State, format};
use async_trait::async_trait;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A state kept in local files.
#[derive(Debug, Clone)]
pub struct FileBackend {
    path: PathBuf,
    objects: ObjectStore,
    recovery: Recovery,
}

impl FileBackend {
    /// The backend for the state file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let objects = ObjectStore::new(sibling(&path, ".objects"));
        FileBackend { path, objects, recovery: Recovery::default() }
    }

    /// The same backend, loading with `recovery`.
    pub fn with_recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = recovery;
        self
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn journal_path(&self) -> PathBuf {
        sibling(&self.path, ".journal")
    }

    fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }
}

/// `<path><suffix>`, beside the state file.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

#[async_trait]
impl super::backend::Lock for LockGuard {
    fn info(&self) -> &LockInfo {
        LockGuard::info(self)
    }

    // An OS file lock is held until released or its holder dies; it cannot be lost.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    // Released when the guard is dropped.
    async fn release(&self) {}
}

#[async_trait]
impl Backend for FileBackend {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    async fn load(&self) -> Result<Loaded> {
        let mut state = match std::fs::read(&self.path) {
            // An empty file is no state, like a missing one (and refused the same way below).
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => None,
            Ok(bytes) => Some(format::from_bytes(&self.path, &bytes)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(Error::Io { path: self.path.clone(), source }),
        };
        let Replay { applied, .. } = journal::replay(&self.journal_path(), &mut state, self.recovery.discard_journal_tail)?;
        if !self.recovery.new_state && state.as_ref().is_none_or(|s| s.nodes.is_empty()) {
            let backup = sibling(&self.path, ".backup");
            let evidence = if self.objects.has_packs() {
                Some(format!("{} holds applied bodies of an earlier state", self.objects.dir().display()))
            } else if state.is_none() && backup.exists() {
                Some(format!("{} exists", backup.display()))
            } else {
                None
            };
            if let Some(evidence) = evidence {
                return Err(Error::Missing { state: self.path.display().to_string(), evidence });
            }
        }
        Ok(Loaded { state, recovered: applied })
    }

    async fn lock(&self, operation: &str) -> Result<Box<dyn Lock>> {
        Ok(Box::new(LockGuard::acquire(&self.lock_path(), operation)?))
    }

    async fn holder(&self) -> Result<Option<lock::Holder>> {
        lock::holder(&self.lock_path())
    }

    async fn force_unlock(&self, id: &str) -> Result<LockInfo> {
        lock::force_unlock(&self.lock_path(), id)
    }

    async fn journal(&self, base: &State, _lock: Arc<dyn Lock>) -> Result<Box<dyn super::backend::Journal>> {
        Ok(Box::new(Journal::create(&self.journal_path(), base)?))
    }

    /// Keeps the previous state as `.backup`, writes atomically, drops the journal it
    /// supersedes and unreferenced objects.
    async fn persist(&self, state: &State, lock: &dyn Lock) -> Result<()> {
        lock.check()?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        if self.path.exists() {
            // A hard link keeps the old bytes without copying them, atomically.
            let backup = sibling(&self.path, ".backup");
            let staging = sibling(&self.path, ".backup.tmp");
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
        self.objects.collect_garbage(state);
        Ok(())
    }

    fn objects(&self) -> &ObjectStore {
        &self.objects
    }

    async fn tidy(&self, state: Option<&State>, lock: &dyn Lock) -> Result<()> {
        lock.check()?;
        let journal = self.journal_path();
        if journal.exists() && journal::replay(&journal, &mut state.cloned(), true)?.stale {
            remove_if_present(&journal)?;
        }
        remove_if_present(&sibling(&self.path, ".backup.tmp"))?;
        remove_if_present(&sibling(&self.path, ".tmp"))?;
        lock::remove_staging(&self.lock_path());
        self.objects.remove_leftovers();
        Ok(())
    }
}

/// Removes `path`; a file that is already gone is fine.
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io { path: path.to_path_buf(), source }),
    }
}

/// Writes `bytes` to `path` atomically and durably (temp, fsync, rename, fsync directory).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// As [`write_atomic`], with `write` writing the content into the new file (so a large file
/// need not be held in memory first); returns what `write` returns.
pub fn write_atomic_with<T>(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<T>) -> Result<T> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    // One writer holds the lock, so a fixed name is safe and a crash leaves no litter behind.
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = lock::open_private(&tmp).map_err(io)?;
    let written = match write(&mut file).and_then(|written| file.sync_all().map(|()| written)) {
        Ok(written) => written,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&tmp);
            return Err(io(e));
        }
    };
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_parent(path).map_err(io)?;
    Ok(written)
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
        NodeState { seed: "s".into(), role: crate::role::Role::Seed, object: None, digest: digest.into(), certificate: None, version: None }
    }

    #[test]
    fn a_write_that_fails_midway_leaves_the_old_file_and_no_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("first.plan");
        write_atomic(&path, b"old").unwrap();
        let error = write_atomic_with(&path, |file| {
            file.write_all(b"half of a new")?;
            Err::<(), _>(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(error.to_string().contains("first.plan"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no first.plan.tmp left");
    }

    #[tokio::test]
    async fn persist_keeps_a_backup_and_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("kkp.state.json"));
        let lock = backend.lock("test").await.unwrap();
        assert!(backend.load().await.unwrap().state.is_none());
        let mut state = State::new("lin".into());
        state.serial = 1;
        backend.persist(&state, lock.as_ref()).await.unwrap();
        state.serial = 2;
        backend.persist(&state, lock.as_ref()).await.unwrap();
        let backup = format::from_bytes(Path::new("b"), &std::fs::read(dir.path().join("kkp.state.json.backup")).unwrap()).unwrap();
        assert_eq!(backup.serial, 1);
        assert_eq!(backend.load().await.unwrap().state.unwrap().serial, 2);
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
        let lock: Arc<dyn Lock> = Arc::from(backend.lock("test").await.unwrap());
        let base = State::new("lin".into());
        let journal = backend.journal(&base, lock.clone()).await.unwrap();
        journal.record(&[Change::Put { address: Address::seed("s"), node: node("sha256:aa") }]).await.unwrap();
        drop(journal); // the process dies here: no persist
        let loaded = backend.load().await.unwrap();
        assert_eq!(loaded.recovered, 1);
        let state = loaded.state.unwrap();
        assert_eq!(state.nodes.len(), 1);
        // Compaction folds the journal into the state and removes it.
        let next = State { serial: 1, ..state };
        backend.persist(&next, lock.as_ref()).await.unwrap();
        assert!(!dir.path().join("s.json.journal").exists());
        assert_eq!(backend.load().await.unwrap().recovered, 0);
    }

    #[tokio::test]
    async fn objects_are_content_addressed_and_collected() {
        let dir = tempfile::tempdir().unwrap();
        let backend = FileBackend::new(dir.path().join("s.json"));
        let lock = backend.lock("test").await.unwrap();
        let (live, dead) = (crate::object::digest_bytes(b"{}"), crate::object::digest_bytes(b"[]"));
        backend.objects().write_pack(&[(live.clone(), b"{}".to_vec())]).unwrap();
        backend.objects().write_pack(&[(dead.clone(), b"[]".to_vec())]).unwrap();
        assert_eq!(backend.objects().read(&live).unwrap(), b"{}");
        let mut state = State::new("l".into());
        state.nodes.insert(Address::seed("s"), node(&live));
        backend.persist(&state, lock.as_ref()).await.unwrap();
        assert!(backend.objects().read(&live).is_some());
        assert!(backend.objects().read(&dead).is_none());
    }
}
