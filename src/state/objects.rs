//! The object store: applied bodies by digest, so a plan can show field-level diffs for the
//! few nodes that change without the state holding every manifest. A cache for display: the
//! state's digests are authoritative, and a missing body only makes a diff less detailed.
//!
//! Bodies are written in packs, one file of concatenated bodies plus an index of
//! `digest offset length` lines, because creating a file per body costs more than applying
//! the object did. A pack without its index (a crash while writing) is ignored.

use super::{Error, Result, State};
use std::collections::{BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Mutex;

/// Where one body is.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    pack: PathBuf,
    offset: u64,
    length: u64,
}

/// A directory of packs.
#[derive(Debug)]
pub struct ObjectStore {
    dir: PathBuf,
    /// Loaded on first read.
    index: Mutex<Option<HashMap<String, Location>>>,
    /// Packs opened by reads, with their sizes: a refresh reads a body per applied object,
    /// and opening the pack each time cost more than reading the body.
    open: Mutex<HashMap<PathBuf, OpenPack>>,
}

/// An open pack and its size, shared by the reads of its bodies.
type OpenPack = std::sync::Arc<Mutex<(std::fs::File, u64)>>;

impl Clone for ObjectStore {
    fn clone(&self) -> Self {
        ObjectStore::new(self.dir.clone())
    }
}

impl ObjectStore {
    /// The store in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ObjectStore { dir: dir.into(), index: Mutex::new(None), open: Mutex::new(HashMap::new()) }
    }

    fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    }

    /// Writes `bodies` (digest, bytes) as one pack.
    pub fn write_pack(&self, bodies: &[(String, Vec<u8>)]) -> Result<()> {
        if bodies.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let name = format!("pack-{}", uuid::Uuid::new_v4().simple());
        let pack = self.dir.join(format!("{name}.pack"));
        let mut data = Vec::with_capacity(bodies.iter().map(|(_, b)| b.len()).sum());
        let mut index = String::new();
        for (digest, bytes) in bodies {
            index.push_str(&format!("{digest} {} {}\n", data.len(), bytes.len()));
            data.extend_from_slice(bytes);
        }
        let mut file = super::lock::open_private(&pack).map_err(Self::io(&pack))?;
        file.write_all(&data).map_err(Self::io(&pack))?;
        // Durable before the index names it: after a power loss an index never points into
        // a pack whose bytes were not written.
        file.sync_all().map_err(Self::io(&pack))?;
        // The index goes last, so a pack is visible only once complete.
        let idx = self.dir.join(format!("{name}.idx"));
        let tmp = self.dir.join(format!(".{name}.idx.tmp"));
        let mut file = super::lock::open_private(&tmp).map_err(Self::io(&tmp))?;
        file.write_all(index.as_bytes()).map_err(Self::io(&tmp))?;
        file.sync_all().map_err(Self::io(&tmp))?;
        std::fs::rename(&tmp, &idx).map_err(Self::io(&idx))?;
        super::file::sync_parent(&idx).map_err(Self::io(&self.dir))?;
        if let Some(loaded) = self.index.lock().expect("index lock").as_mut() {
            for (digest, location) in parse_index(&pack, &index) {
                loaded.insert(digest, location);
            }
        }
        Ok(())
    }

    /// Reads a body; None when it was never stored, was lost, or its bytes no longer match
    /// its digest (a damaged pack must not pass for the applied body).
    pub fn read(&self, digest: &str) -> Option<Vec<u8>> {
        let location = {
            let mut guard = self.index.lock().expect("index lock");
            let index = guard.get_or_insert_with(|| self.load_index());
            index.get(digest)?.clone()
        };
        let pack = self.open_pack(&location.pack)?;
        let mut pack = pack.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (file, size) = &mut *pack;
        // The index is untrusted: never allocate more than the pack holds.
        if location.offset.checked_add(location.length)? > *size {
            return None;
        }
        file.seek(SeekFrom::Start(location.offset)).ok()?;
        let mut bytes = vec![0; usize::try_from(location.length).ok()?];
        file.read_exact(&mut bytes).ok()?;
        (crate::object::digest_bytes(&bytes) == digest).then_some(bytes)
    }

    /// A pack, opened on its first read (packs are never changed once their index exists).
    fn open_pack(&self, path: &std::path::Path) -> Option<OpenPack> {
        let mut open = self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pack) = open.get(path) {
            return Some(pack.clone());
        }
        let file = std::fs::File::open(path).ok()?;
        let size = file.metadata().ok()?.len();
        let pack = std::sync::Arc::new(Mutex::new((file, size)));
        open.insert(path.to_path_buf(), pack.clone());
        Some(pack)
    }

    /// Reads a body as JSON; None when it is missing or does not parse.
    pub fn read_json(&self, digest: &str) -> Option<serde_json::Value> {
        self.read(digest).and_then(|bytes| serde_json::from_slice(&bytes).ok())
    }

    /// Removes index temp files and packs without an index, which a crash while writing a
    /// pack leaves (a pack is only visible once its index is in place).
    pub fn remove_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for path in entries.flatten().map(|e| e.path()) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let orphan_pack = name.ends_with(".pack") && !path.with_extension("idx").exists();
            if name.ends_with(".tmp") || orphan_pack {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// True when the store holds at least one pack (bodies of an earlier apply).
    pub fn has_packs(&self) -> bool {
        !self.indexes().is_empty()
    }

    /// The store's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    fn indexes(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut out: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "idx")).collect();
        out.sort();
        out
    }

    fn load_index(&self) -> HashMap<String, Location> {
        let mut out = HashMap::new();
        for idx in self.indexes() {
            if let Ok(text) = std::fs::read_to_string(&idx) {
                out.extend(parse_index(&idx.with_extension("pack"), &text));
            }
        }
        out
    }

    /// Drops packs none of whose bodies `state` refers to, and rewrites packs that are mostly
    /// dead, keeping the live bodies.
    pub fn collect_garbage(&self, state: &State) {
        let referenced: BTreeSet<&str> = state.nodes.values().map(|n| n.digest.as_str()).collect();
        let mut keep: Vec<(String, Vec<u8>)> = Vec::new();
        let mut doomed = Vec::new();
        for idx in self.indexes() {
            let pack = idx.with_extension("pack");
            let Ok(text) = std::fs::read_to_string(&idx) else { continue };
            let entries = parse_index(&pack, &text);
            let live: Vec<&(String, Location)> = entries.iter().filter(|(d, _)| referenced.contains(d.as_str())).collect();
            if live.len() * 2 >= entries.len() && !live.is_empty() {
                continue;
            }
            if let Ok(bytes) = std::fs::read(&pack) {
                for (digest, l) in live {
                    let range = usize::try_from(l.offset).ok().zip(usize::try_from(l.length).ok());
                    let body = range.and_then(|(start, length)| bytes.get(start..start.checked_add(length)?));
                    // Only bodies that still match their digest are worth keeping.
                    if let Some(body) = body.filter(|b| crate::object::digest_bytes(b) == *digest) {
                        keep.push((digest.clone(), body.to_vec()));
                    }
                }
            }
            doomed.push((idx, pack));
        }
        if self.write_pack(&keep).is_ok() {
            for (idx, pack) in doomed {
                let _ = std::fs::remove_file(idx);
                let _ = std::fs::remove_file(pack);
            }
        }
        *self.index.lock().expect("index lock") = None;
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// Parses an index's `digest offset length` lines. Lines that do not parse, or whose range
/// overflows, are left out: the store is a cache, and a lost body only makes a diff coarser.
pub(crate) fn parse_index(pack: &std::path::Path, text: &str) -> Vec<(String, Location)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let digest = parts.next()?.to_string();
            let offset: u64 = parts.next()?.parse().ok()?;
            let length: u64 = parts.next()?.parse().ok()?;
            if parts.next().is_some() || offset.checked_add(length).is_none() {
                return None;
            }
            Some((digest, Location { pack: pack.to_path_buf(), offset, length }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::state::NodeState;

    fn body(bytes: &[u8]) -> (String, Vec<u8>) {
        (crate::object::digest_bytes(bytes), bytes.to_vec())
    }

    #[test]
    fn packs_are_read_back_by_digest_and_collected() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path().join("objects"));
        let (aa, bb, cc) = (body(b"{\"a\":1}"), body(b"[2]"), body(b"\"c\""));
        store.write_pack(&[aa.clone(), bb.clone(), body(b"4")]).unwrap();
        store.write_pack(std::slice::from_ref(&cc)).unwrap();
        assert_eq!(store.read(&bb.0).unwrap(), b"[2]");
        assert_eq!(ObjectStore::new(dir.path().join("objects")).read(&cc.0).unwrap(), b"\"c\"");
        assert!(store.read("sha256:zz").is_none());

        // Only aa stays referenced: cc's pack goes, and aa's mostly dead pack is rewritten.
        let mut state = State::new("l".into());
        state.nodes.insert(
            Address::seed("a"),
            NodeState {
                seed: "a".into(),
                role: crate::role::Role::Seed,
                object: None,
                digest: aa.0.clone(),
                certificate: None,
                version: None,
            },
        );
        store.collect_garbage(&state);
        assert_eq!(store.read(&aa.0).unwrap(), b"{\"a\":1}");
        assert!(store.read(&bb.0).is_none() && store.read(&cc.0).is_none());
        assert_eq!(std::fs::read_dir(dir.path().join("objects")).unwrap().count(), 2, "one pack and its index");
    }

    /// Writes one pack of `bodies` and replaces its index with `index`.
    fn damaged(index: &str, bodies: &[(String, Vec<u8>)]) -> (tempfile::TempDir, ObjectStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::new(dir.path().join("objects"));
        store.write_pack(bodies).unwrap();
        let idx = store.indexes().pop().unwrap();
        std::fs::write(idx, index).unwrap();
        let fresh = ObjectStore::new(dir.path().join("objects"));
        (dir, fresh)
    }

    #[test]
    fn a_corrupt_index_line_neither_panics_nor_allocates_what_it_claims() {
        let good = body(b"{}");
        for index in [
            format!("{} 0 18446744073709551615\n", good.0),
            format!("{} 18446744073709551615 2\n", good.0),
            format!("{} 0 4294967296000\n", good.0),
            format!("{} 1 2 3\n", good.0),
        ] {
            let (_dir, store) = damaged(&index, std::slice::from_ref(&good));
            assert_eq!(store.read(&good.0), None, "{index}");
            // Garbage collection of a pack with such an entry must not panic either.
            let mut state = State::new("l".into());
            state.nodes.insert(
                Address::seed("a"),
                NodeState {
                    seed: "a".into(),
                    role: crate::role::Role::Seed,
                    object: None,
                    digest: good.0.clone(),
                    certificate: None,
                    version: None,
                },
            );
            store.collect_garbage(&state);
        }
    }

    #[test]
    fn a_body_that_does_not_match_its_digest_is_not_returned() {
        let good = body(b"{\"replicas\":1}");
        let (dir, store) = damaged(&format!("{} 0 {}\n", good.0, good.1.len()), std::slice::from_ref(&good));
        let pack = store.indexes().pop().unwrap().with_extension("pack");
        std::fs::write(&pack, b"{\"replicas\":7}").unwrap();
        assert_eq!(store.read(&good.0), None);
        drop(dir);
    }
}
