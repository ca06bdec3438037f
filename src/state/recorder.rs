//! The recorder an apply writes through: every applied node goes to the journal (durable
//! before the call returns) and into the in-memory state; the applied body goes to the
//! object store. `finish` compacts it all into a new state file.

use super::file::FileBackend;
use super::journal::Journal;
use super::{Change, Result, State};
use std::sync::Mutex;

/// Records one apply's progress.
pub struct Recorder {
    backend: FileBackend,
    journal: Journal,
    state: Mutex<State>,
}

impl Recorder {
    /// Starts recording on top of `base`, which must be what `backend` holds on disk (a
    /// recovered journal must be persisted first, or this would truncate it).
    pub fn start(backend: FileBackend, base: State) -> Result<Recorder> {
        let journal = backend.journal(&base)?;
        Ok(Recorder { backend, journal, state: Mutex::new(base) })
    }

    /// Records `change`, storing `body` (the applied body's canonical bytes) under its digest
    /// first. Returns once the change is durable.
    pub async fn record(&self, change: Change, body: Option<(&str, &[u8])>) -> Result<()> {
        if let Some((digest, bytes)) = body {
            self.backend.write_object(digest, bytes)?;
        }
        self.journal.record(std::slice::from_ref(&change)).await?;
        self.state.lock().expect("recorder lock").apply(change);
        Ok(())
    }

    /// A copy of the state as recorded so far.
    pub fn snapshot(&self) -> State {
        self.state.lock().expect("recorder lock").clone()
    }

    /// Compacts: persists the recorded state with the next serial and drops the journal.
    pub fn finish(self) -> Result<State> {
        self.journal.close();
        let mut state = self.state.into_inner().expect("recorder lock");
        state.serial += 1;
        self.backend.persist(&state)?;
        Ok(state)
    }
}
