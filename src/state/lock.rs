//! The one-writer lock: an OS file lock (released by the kernel when its holder dies, so a
//! killed apply never leaves a stale lock) on `<state>.lock`, whose content names the holder.

use super::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random ID, for `kkp force-unlock`.
    pub id: String,
    /// `user@host`.
    pub who: String,
    /// Process ID.
    pub pid: u32,
    /// RFC 3339 time it was taken.
    pub created: String,
    /// What the holder is doing (`apply`, ...).
    pub operation: String,
}

impl LockInfo {
    /// A new lock ID for this process doing `operation` now.
    pub fn new(operation: &str) -> Self {
        LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            who: who(),
            pid: std::process::id(),
            created: time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            operation: operation.into(),
        }
    }
}

/// The error when someone else holds the lock.
#[derive(Debug)]
pub struct Locked {
    /// The state's lock file.
    pub path: PathBuf,
    /// The holder, if the lock file could be read.
    pub holder: Option<LockInfo>,
}

impl std::fmt::Display for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.holder {
            Some(h) => write!(
                f,
                "the state is locked: {} (pid {}) has held it since {} for `{}` (lock ID {})\n  fix: wait for it to finish; if that process is gone, run `kkp force-unlock {}`",
                h.who, h.pid, h.created, h.operation, h.id, h.id
            ),
            None => write!(
                f,
                "the state is locked ({}), and its holder is unknown\n  fix: wait for the other kkp to finish",
                self.path.display()
            ),
        }
    }
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
    info: LockInfo,
}

impl LockGuard {
    /// Takes the lock at `path` for `operation`, or fails at once naming the holder.
    pub fn acquire(path: &Path, operation: &str) -> Result<LockGuard> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let mut file = open_private(path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = read_info(&mut file);
                return Err(Error::Locked(Box::new(Locked { path: path.to_path_buf(), holder })));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let info = LockInfo::new(operation);
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(&serde_json::to_vec_pretty(&info).expect("plain data")).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(LockGuard { file, path: path.to_path_buf(), info })
    }

    /// The holder information written into the lock file.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Remove the file only if it is still ours: after a force-unlock another holder may
        // have created a new one at the same path.
        if let Ok(mut current) = File::open(&self.path)
            && read_info(&mut current).is_some_and(|i| i.id == self.info.id)
        {
            let _ = std::fs::remove_file(&self.path);
        }
        let _ = self.file.unlock();
    }
}

/// Breaks the lock at `path` if its ID is `id` (the holder, if still alive, keeps running
/// but no longer excludes others: the Terraform semantics of force-unlock).
pub fn force_unlock(path: &Path, id: &str) -> Result<LockInfo> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::NotLocked { path: path.to_path_buf() }),
        Err(source) => return Err(Error::Io { path: path.to_path_buf(), source }),
    };
    let info = read_info(&mut file).ok_or_else(|| Error::NotLocked { path: path.to_path_buf() })?;
    if info.id != id {
        return Err(Error::LockMismatch { path: path.to_path_buf(), requested: id.into(), actual: info.id });
    }
    std::fs::remove_file(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(info)
}

fn read_info(file: &mut File) -> Option<LockInfo> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// Opens (creating with mode 0600) a file for reading and writing.
pub(crate) fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn who() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kkp.state.json.lock");
        let first = LockGuard::acquire(&path, "apply").unwrap();
        let err = LockGuard::acquire(&path, "apply").unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains(&first.info().id), "{err}");
        drop(first);
        assert!(!path.exists(), "released lock removes its file");
        LockGuard::acquire(&path, "apply").unwrap();
    }

    #[test]
    fn force_unlock_needs_the_right_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        let guard = LockGuard::acquire(&path, "apply").unwrap();
        assert!(matches!(force_unlock(&path, "wrong"), Err(Error::LockMismatch { .. })));
        force_unlock(&path, &guard.info().id.clone()).unwrap();
        // The old guard must not delete a lock someone else takes next.
        let next = LockGuard::acquire(&path, "plan").unwrap();
        drop(guard);
        assert!(path.exists());
        drop(next);
    }
}
