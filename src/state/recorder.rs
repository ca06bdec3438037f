//! The recorder an apply writes through: every applied node goes to the journal (durable
//! before the call returns) and into the in-memory state; the applied body goes to the
//! object store from a background thread, off the apply's path (bodies are a cache for
//! diffs; the journal is what must be durable). `finish` compacts it all into a new state.

use super::backend::{Backend, Journal, Lock};
use super::{Change, Result, State};
use std::sync::{Arc, Mutex};

/// An applied body: its digest and canonical bytes.
type Body = (String, Vec<u8>);

/// Bodies per pack written while an apply runs.
const PACK_SIZE: usize = 4096;

/// Records one apply's progress.
pub struct Recorder {
    backend: Arc<dyn Backend>,
    lock: Arc<dyn Lock>,
    journal: Box<dyn Journal>,
    state: Mutex<State>,
    bodies: Mutex<Option<std::sync::mpsc::Sender<Body>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    /// Starts recording on top of `base`, which must be what `backend` holds (a recovered
    /// journal must be persisted first, or a new journal would replace it).
    pub async fn start(backend: Arc<dyn Backend>, lock: Arc<dyn Lock>, base: State) -> Result<Recorder> {
        let journal = backend.journal(&base, lock.clone()).await?;
        let (bodies, queued) = std::sync::mpsc::channel::<Body>();
        let objects = backend.objects().clone();
        let writer = std::thread::Builder::new()
            .name("kkp-objects".into())
            .spawn(move || {
                // A body that cannot be stored only makes a later diff less detailed.
                let mut batch = Vec::new();
                for body in queued {
                    batch.push(body);
                    if batch.len() >= PACK_SIZE {
                        let _ = objects.write_pack(&std::mem::take(&mut batch));
                    }
                }
                let _ = objects.write_pack(&batch);
            })
            .map_err(|source| super::Error::Io { path: "kkp-objects thread".into(), source })?;
        Ok(Recorder { backend, lock, journal, state: Mutex::new(base), bodies: Mutex::new(Some(bodies)), writer: Mutex::new(Some(writer)) })
    }

    /// Records `change`, storing `body` (the applied body's canonical bytes) under its digest
    /// first. Returns once the change is durable.
    pub async fn record(&self, change: Change, body: Option<(&str, &[u8])>) -> Result<()> {
        if let Some((digest, bytes)) = body
            && let Some(bodies) = self.bodies.lock().expect("recorder lock").as_ref()
        {
            let _ = bodies.send((digest.to_string(), bytes.to_vec()));
        }
        self.journal.record(std::slice::from_ref(&change)).await?;
        self.state.lock().expect("recorder lock").apply(change);
        Ok(())
    }

    /// Replaces the state's step timings. Not journaled: they are an estimate's input, kept
    /// with the compacted state; an apply killed before `finish` loses only its timings.
    pub fn set_timings(&self, timings: super::timings::Timings) {
        self.state.lock().expect("recorder lock").timings = timings;
    }

    /// The wave an unhealthy check stopped the last rollout at, as recorded.
    pub fn stopped_wave(&self) -> Option<super::rollout::StoppedWave> {
        self.state.lock().expect("recorder lock").stopped_wave.clone()
    }

    /// Records (Some) or clears (None) where a rollout stopped; like the timings, kept with
    /// the compacted state, not journaled.
    pub fn set_stopped_wave(&self, stopped: Option<super::rollout::StoppedWave>) {
        self.state.lock().expect("recorder lock").stopped_wave = stopped;
    }

    /// Compacts: persists the recorded state with the next serial and drops the journal.
    pub async fn finish(self) -> Result<State> {
        self.journal.close().await;
        drop(self.journal);
        // Stored bodies must be in place before garbage collection runs in persist.
        self.bodies.lock().expect("recorder lock").take();
        if let Some(writer) = self.writer.lock().expect("recorder lock").take() {
            let _ = writer.join();
        }
        let mut state = self.state.into_inner().expect("recorder lock");
        state.serial += 1;
        self.backend.persist(&state, self.lock.as_ref()).await?;
        Ok(state)
    }
}
