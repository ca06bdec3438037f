//! The apply journal: an append-only log of [`Change`]s next to the state, so the cost of
//! recording one applied node is O(node), not O(state), and a crash loses nothing that was
//! recorded.
//!
//! Records are made durable by one writer thread that batches whatever arrived within a
//! millisecond or while it was syncing (group commit): under parallel apply many nodes share
//! one fsync. The first line names the lineage and serial the journal extends; a journal for
//! another serial (left over after a crash between compaction and its removal) is stale and
//! ignored.

use super::{Change, Error, Result, State};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Header {
    journal: u32,
    lineage: String,
    serial: u64,
}

type Ack = tokio::sync::oneshot::Sender<std::io::Result<()>>;

/// An open journal. Dropping it stops the writer after the records already sent.
pub struct Journal {
    path: PathBuf,
    sender: Option<std::sync::mpsc::Sender<(Vec<u8>, Ack)>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    /// Starts a journal extending `base` (truncating any previous one).
    pub fn create(path: &Path, base: &State) -> Result<Journal> {
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        let _ = std::fs::remove_file(path);
        let mut file = super::lock::open_private(path).map_err(io)?;
        let header = Header { journal: 1, lineage: base.lineage.clone(), serial: base.serial };
        let mut line = serde_json::to_vec(&header).expect("plain data");
        line.push(b'\n');
        file.write_all(&line).map_err(io)?;
        file.sync_all().map_err(io)?;
        super::file::sync_parent(path).map_err(io)?;

        let (sender, receiver) = std::sync::mpsc::channel::<(Vec<u8>, Ack)>();
        let writer = std::thread::Builder::new().name("kkp-journal".into()).spawn(move || write_loop(file, receiver)).map_err(io)?;
        Ok(Journal { path: path.to_path_buf(), sender: Some(sender), writer: Some(writer) })
    }

    /// Appends `changes`; returns once they are on disk.
    pub async fn record(&self, changes: &[Change]) -> Result<()> {
        let mut bytes = Vec::new();
        for change in changes {
            serde_json::to_writer(&mut bytes, change).expect("plain data");
            bytes.push(b'\n');
        }
        let (ack, done) = tokio::sync::oneshot::channel();
        let closed = |message: String| Error::JournalClosed { path: self.path.clone(), message };
        self.sender
            .as_ref()
            .ok_or_else(|| closed("already closed".into()))?
            .send((bytes, ack))
            .map_err(|_| closed("the writer thread ended".into()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(closed(e.to_string())),
            Err(_) => Err(closed("the writer thread ended".into())),
        }
    }

    /// Stops the writer after everything sent so far is on disk.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.sender.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[async_trait::async_trait]
impl super::backend::Journal for Journal {
    async fn record(&self, changes: &[Change]) -> Result<()> {
        Journal::record(self, changes).await
    }

    async fn close(&self) {
        // The writer thread drains what was sent and ends when the channel closes; dropping
        // the journal joins it.
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long the writer lets records gather before it writes and syncs them: one fsync per
/// millisecond at most instead of one per record when a fleet applies hundreds of nodes a
/// second (PostgreSQL's `commit_delay` does the same). A lone record waits this long more.
const GATHER: Duration = Duration::from_millis(1);

fn write_loop(mut file: File, receiver: std::sync::mpsc::Receiver<(Vec<u8>, Ack)>) {
    while let Ok(first) = receiver.recv() {
        // Sleeping, not waiting on the channel: senders need not wake this thread per record.
        std::thread::sleep(GATHER);
        let mut batch = vec![first];
        batch.extend(receiver.try_iter());
        let bytes = batch.iter().map(|(record, _)| record.as_slice()).collect::<Vec<_>>().concat();
        let result = file.write_all(&bytes).and_then(|()| file.sync_data());
        for (_, ack) in batch {
            let _ = ack.send(result.as_ref().map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), e.to_string())));
        }
    }
}

/// What replaying a journal did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// Records applied to the state.
    pub applied: usize,
    /// The journal belonged to another lineage/serial and was ignored.
    pub stale: bool,
}

/// Replays the journal at `path` onto `state` (or onto a fresh state of the journal's lineage
/// when `state` is None and the journal extends serial 0). A torn last line, from a crash in
/// the middle of a write, is ignored. Any other record that does not parse (or is not an entry
/// kkp writes) stops the load with an error, since the records after it would be lost
/// silently; `discard_tail` drops it and everything after it instead.
pub fn replay(path: &Path, state: &mut Option<State>, discard_tail: bool) -> Result<Replay> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replay::default()),
        Err(e) => return Err(io(e)),
    };
    replay_bytes(path, &bytes, state, discard_tail)
}

/// [`replay`] of a journal's bytes; `path` is only for messages.
pub fn replay_bytes(path: &Path, bytes: &[u8], state: &mut Option<State>, discard_tail: bool) -> Result<Replay> {
    let mut lines = bytes.split_inclusive(|b| *b == b'\n');
    let header: Option<Header> = lines.next().and_then(|line| serde_json::from_slice(line).ok());
    let Some(header) = header else { return Ok(Replay { applied: 0, stale: true }) };
    let matches = match state {
        Some(s) => s.lineage == header.lineage && s.serial == header.serial,
        None => header.serial == 0,
    };
    if !matches {
        return Ok(Replay { applied: 0, stale: true });
    }
    let mut changes = Vec::new();
    let lines: Vec<&[u8]> = lines.collect();
    for (i, line) in lines.iter().enumerate() {
        match parse_record(line) {
            Ok(change) => changes.push(change),
            // Only the last line can be torn, and a torn line has no newline.
            Err(_) if i + 1 == lines.len() && !line.ends_with(b"\n") => break,
            Err(_) if discard_tail => break,
            Err(why) => {
                return Err(Error::JournalCorrupt { path: path.to_path_buf(), line: i + 2, message: why, after: lines.len() - i - 1 });
            }
        }
    }
    let target = state.get_or_insert_with(|| State::new(header.lineage.clone()));
    let applied = changes.len();
    for change in changes {
        target.apply(change);
    }
    Ok(Replay { applied, stale: false })
}

/// One journal line as a change kkp could have recorded.
fn parse_record(line: &[u8]) -> std::result::Result<Change, String> {
    let change: Change = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if let Change::Put { address, node } = &change {
        super::check_entry(address, node)?;
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::state::NodeState;

    fn put(name: &str) -> Change {
        Change::Put {
            address: Address::seed(name),
            node: NodeState {
                seed: name.into(),
                role: crate::role::Role::Seed,
                object: None,
                digest: format!("sha256:{name}"),
                certificate: None,
                version: None,
            },
        }
    }

    #[tokio::test]
    async fn recorded_changes_replay_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let base = State::new("lin".into());
        let journal = Journal::create(&path, &base).unwrap();
        journal.record(&[put("a")]).await.unwrap();
        journal.record(&[put("b"), Change::Remove { address: Address::seed("a") }]).await.unwrap();
        journal.close();
        // A crash in the middle of the next write leaves half a line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"op":"put","addr"#).unwrap();

        let mut state = None;
        let replay = replay(&path, &mut state, false).unwrap();
        assert_eq!(replay, Replay { applied: 3, stale: false });
        let state = state.unwrap();
        assert_eq!(state.lineage, "lin");
        assert_eq!(state.nodes.keys().map(Address::as_str).collect::<Vec<_>>(), ["seed/b"]);
    }

    #[tokio::test]
    async fn a_journal_for_another_serial_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let journal = Journal::create(&path, &State::new("lin".into())).unwrap();
        journal.record(&[put("a")]).await.unwrap();
        drop(journal);
        let mut newer = Some(State { serial: 1, ..State::new("lin".into()) });
        assert!(replay(&path, &mut newer, false).unwrap().stale);
        assert!(newer.unwrap().nodes.is_empty());
    }

    #[tokio::test]
    async fn parallel_records_share_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let journal = std::sync::Arc::new(Journal::create(&path, &State::new("lin".into())).unwrap());
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let j = journal.clone();
                tokio::spawn(async move { j.record(&[put(&format!("n{i}"))]).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut state = None;
        assert_eq!(replay(&path, &mut state, false).unwrap().applied, 200);
    }

    #[tokio::test]
    async fn a_bad_record_in_the_middle_stops_the_load_unless_the_tail_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let journal = Journal::create(&path, &State::new("lin".into())).unwrap();
        journal.record(&[put("a"), put("b"), put("c")]).await.unwrap();
        journal.close();
        let text = std::fs::read_to_string(&path).unwrap();
        let damaged = text.replacen("\"op\":\"put\",\"address\":\"seed/b\"", "\"op\":\"put\",\"adress\":\"seed/b\"", 1);
        assert_ne!(text, damaged);
        std::fs::write(&path, damaged).unwrap();

        let err = replay(&path, &mut None, false).unwrap_err().to_string();
        assert!(err.contains(&format!("{}: line 3", path.display())), "{err}");
        assert!(err.contains("1 record after it"), "{err}");
        assert!(err.contains("--discard-journal-tail"), "{err}");

        let mut state = None;
        assert_eq!(replay(&path, &mut state, true).unwrap().applied, 1);
        assert_eq!(state.unwrap().nodes.keys().map(Address::as_str).collect::<Vec<_>>(), ["seed/a"]);
    }
}
