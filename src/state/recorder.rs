//! The recorder an apply writes through: every applied node goes to the journal (durable
//! before the call returns) and into the in-memory state; the applied body goes to the
//! object store. `finish` compacts it all into a new persisted state.

use super::backend::{Backend, Journal, Lock};
use super::{Change, Result, State};
use std::sync::{Arc, Mutex};

/// Records one apply's progress.
pub struct Recorder {
    backend: Arc<dyn Backend>,
    lock: Arc<dyn Lock>,
    journal: Box<dyn Journal>,
    state: Mutex<State>,
}

impl Recorder {
    /// Starts recording on top of `base`, which must be what `backend` holds (a recovered
    /// journal must be persisted first, or a new journal would replace it).
    pub async fn start(backend: Arc<dyn Backend>, lock: Arc<dyn Lock>, base: State) -> Result<Recorder> {
        let journal = backend.journal(&base, lock.clone()).await?;
        Ok(Recorder { backend, lock, journal, state: Mutex::new(base) })
    }

    /// Records `change`, storing `body` (the applied body's canonical bytes) under its digest
    /// first. Returns once the change is durable.
    pub async fn record(&self, change: Change, body: Option<(&str, &[u8])>) -> Result<()> {
        if let Some((digest, bytes)) = body {
            self.backend.objects().write(digest, bytes)?;
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
    pub async fn finish(self) -> Result<State> {
        self.journal.close().await;
        drop(self.journal);
        let mut state = self.state.into_inner().expect("recorder lock");
        state.serial += 1;
        self.backend.persist(&state, self.lock.as_ref()).await?;
        Ok(state)
    }
}
