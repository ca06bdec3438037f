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
    ///
    /// The lock file appears with its holder record already in it (written to a private temp
    /// file, locked, then hard-linked into place), so a loser never reads an empty record.
    pub fn acquire(path: &Path, operation: &str) -> Result<LockGuard> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let info = LockInfo::new(operation);
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{}.tmp", info.id));
        let staging = path.with_file_name(name);
        // A few rounds cover a holder that releases, or a stale file removed, while we look.
        for _ in 0..64 {
            let file = open_private(&staging).map_err(io)?;
            let written = (|| {
                file.try_lock().map_err(|e| std::io::Error::other(e.to_string()))?;
                (&file).write_all(&serde_json::to_vec_pretty(&info).expect("plain data"))?;
                file.sync_all()?;
                std::fs::hard_link(&staging, path)
            })();
            let _ = std::fs::remove_file(&staging);
            match written {
                Ok(()) => {
                    let _ = super::file::sync_parent(path);
                    return Ok(LockGuard { file, path: path.to_path_buf(), info });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                // The holder's clean-up removed our staging file before we linked it: retry.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            }
            drop(file);
            let mut existing = match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            match existing.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) => {
                    if !is_at(&existing, path) {
                        continue;
                    }
                    let holder = read_info(&mut existing);
                    return Err(Error::Locked(Box::new(Locked { path: path.to_path_buf(), holder })));
                }
                // Nobody holds it: its holder died. Remove it (if it is still the file at the
                // path) and take the lock afresh.
                Ok(()) => {
                    if is_at(&existing, path) {
                        let _ = std::fs::remove_file(path);
                    }
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        Err(Error::Locked(Box::new(Locked { path: path.to_path_buf(), holder: None })))
    }

    /// The holder information written into the lock file.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }
}

/// Removes staging files of lock takers that were killed before they linked theirs (safe at
/// any time: a live taker whose staging file vanishes simply tries again).
pub fn remove_staging(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else { return };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!("{name}.");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether `file` is still the file at `path` (not removed or replaced since it was opened).
fn is_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

/// Who holds a lock, and whether they look alive.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The holder record (None when it cannot be read).
    pub info: Option<LockInfo>,
    /// True when the holder still holds it (OS lock held, or Lease not expired).
    pub alive: bool,
    /// How that was found, for the person deciding.
    pub status: String,
}

/// The holder of the file lock at `path`; None when there is no lock file.
pub fn holder(path: &Path) -> Result<Option<Holder>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Io { path: path.to_path_buf(), source }),
    };
    let info = read_info(&mut file);
    let held = match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(std::fs::TryLockError::Error(source)) => return Err(Error::Io { path: path.to_path_buf(), source }),
    };
    let here = who();
    let on_this_host = info.as_ref().is_some_and(|i| i.who.rsplit('@').next() == here.rsplit('@').next());
    let running = info.as_ref().is_some_and(|i| std::path::Path::new(&format!("/proc/{}", i.pid)).exists());
    let pid = info.as_ref().map_or(0, |i| i.pid);
    let status = match (held, on_this_host, running) {
        (false, _, _) => "nobody holds its OS lock: the holder is gone".to_string(),
        (true, true, true) => format!("pid {pid} is running on this host and holds the lock"),
        (true, true, false) => format!("the lock is held, but pid {pid} is not running on this host (another process shares the lock)"),
        (true, false, _) => format!("the lock is held by a process on another host (pid {pid} cannot be checked from here)"),
    };
    Ok(Some(Holder { info, alive: held, status }))
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

    #[test]
    fn the_loser_of_a_race_always_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kkp.state.json.lock");
        for _ in 0..200 {
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let (barrier, path) = (barrier.clone(), path.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        LockGuard::acquire(&path, "apply")
                    })
                })
                .collect();
            let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
            let losers: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
            // Both may win in turn when one releases before the other looks; never both at once.
            for loser in losers {
                let Error::Locked(locked) = loser else { panic!("{loser}") };
                assert!(locked.holder.is_some(), "the loser could not name the holder: {loser}");
            }
        }
    }

    #[test]
    fn the_holder_is_reported_alive_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l");
        assert!(holder(&path).unwrap().is_none());
        let guard = LockGuard::acquire(&path, "apply").unwrap();
        let held = holder(&path).unwrap().unwrap();
        assert!(held.alive, "{}", held.status);
        assert_eq!(held.info.as_ref().unwrap().id, guard.info().id);
        assert!(held.status.contains("is running on this host"), "{}", held.status);
        drop(guard);
        assert!(holder(&path).unwrap().is_none());
    }
}
