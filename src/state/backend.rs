//! What every state backend provides: load (with journal replay), a writer lock, a journal
//! for an apply's progress, atomic persistence, and an object store for applied bodies.

use super::lock::LockInfo;
use super::objects::ObjectStore;
use super::{Change, Result, State};
use async_trait::async_trait;

/// How loading treats what a crash or an accident may have left behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Start from an empty state although traces of an earlier one exist (`--new-state`).
    pub new_state: bool,
    /// Replay a journal only up to its first corrupt record (`--discard-journal-tail`).
    pub discard_journal_tail: bool,
}

/// A loaded state and what recovery did.
#[derive(Debug)]
pub struct Loaded {
    /// The state (None: nothing was ever applied).
    pub state: Option<State>,
    /// Journal records of an interrupted apply that were replayed.
    pub recovered: usize,
}

/// A held writer lock. `release` gives it up; a holder that dies without releasing loses it
/// with its process (file lock) or when it expires (lease).
#[async_trait]
pub trait Lock: Send + Sync {
    /// Who holds it: this process.
    fn info(&self) -> &LockInfo;
    /// Fails when the lock was lost (a lease that expired or was taken over); every state
    /// write checks it first.
    fn check(&self) -> Result<()>;
    /// Gives the lock up.
    async fn release(&self);
}

/// The progress log of one apply.
#[async_trait]
pub trait Journal: Send + Sync {
    /// Appends `changes`; returns once they are durable.
    async fn record(&self, changes: &[Change]) -> Result<()>;
    /// Stops accepting records after everything sent is durable.
    async fn close(&self);
}

/// A place states live.
#[async_trait]
pub trait Backend: Send + Sync {
    /// For messages: the path or `k8s://...` address.
    fn describe(&self) -> String;
    /// Loads the state, replaying the journal an interrupted apply left behind.
    async fn load(&self) -> Result<Loaded>;
    /// Takes the writer lock for `operation`, or fails at once naming the holder.
    async fn lock(&self, operation: &str) -> Result<Box<dyn Lock>>;
    /// Who holds the writer lock now and whether they look alive; None when it is free.
    async fn holder(&self) -> Result<Option<super::lock::Holder>>;
    /// Breaks the lock with this ID.
    async fn force_unlock(&self, id: &str) -> Result<LockInfo>;
    /// Opens a journal extending `base` (the state as last persisted), guarded by `lock`.
    async fn journal(&self, base: &State, lock: std::sync::Arc<dyn Lock>) -> Result<Box<dyn Journal>>;
    /// Removes what an interrupted write or clean-up left behind (a stale journal, temp files),
    /// given the state just loaded under `lock`. Idempotent: a clean-up killed halfway is
    /// finished by the next run.
    async fn tidy(&self, state: Option<&State>, lock: &dyn Lock) -> Result<()>;
    /// Writes `state` atomically and drops the journal it supersedes.
    async fn persist(&self, state: &State, lock: &dyn Lock) -> Result<()>;
    /// Where applied bodies are kept.
    fn objects(&self) -> &ObjectStore;
}
