//! Property tests over every parser of untrusted input: the topology, the state file, the
//! journal, the pack index and the plan file. Valid inputs are mutated (bytes flipped,
//! inserted, removed, the text cut short) or replaced by arbitrary bytes; whatever comes in,
//! the parser returns a value or an error, and never panics. The case counts keep each
//! property to a few seconds (raise PROPTEST_CASES for a longer run).

use kkp::apply::simulate;
use kkp::plan::{Options, Plan, create};
use kkp::state::State;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const NOW: i64 = 1_790_000_000;

/// Cases per property: 64 in the suite, more with PROPTEST_CASES for a longer campaign.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn quickstart_yaml() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/kkp.yaml")).unwrap())
}

/// A plan, the state applying it leaves, and the applied bodies (digest, bytes).
type Applied = (Plan, State, Vec<(String, Vec<u8>)>);

/// The plan of the quickstart against no state, and the state and bodies applying it leaves.
fn applied() -> &'static Applied {
    static APPLIED: OnceLock<Applied> = OnceLock::new();
    APPLIED.get_or_init(|| {
        let topology = kkp::topology::load_str(Path::new("kkp.yaml"), quickstart_yaml()).unwrap();
        let plan = create(&topology, None, &|_| None, &Options { now: NOW, ..Options::default() }).unwrap();
        let mut state = State::new("fuzz".into());
        let mut bodies = Vec::new();
        simulate::record(&plan, &mut state, NOW, &mut |digest, body| bodies.push((digest.to_string(), serde_json::to_vec(body).unwrap())));
        state.serial = 1;
        (plan, state, bodies)
    })
}

/// One mutation of a valid input.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
    /// Replaces a run of ASCII digits by another number (lengths, offsets, serials).
    Number(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(1 << 40), any::<u64>()])
            .prop_map(|(at, n)| Mutation::Number(at, n)),
    ]
}

fn mutate(input: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip(at, b) if !bytes.is_empty() => bytes[at % len] ^= b | 1,
            Mutation::Insert(at, b) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Remove(at, n) if !bytes.is_empty() => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Truncate(at) => bytes.truncate(at % (bytes.len() + 1)),
            Mutation::Number(at, n) => {
                let digits: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i].is_ascii_digit()).collect();
                if let Some(&start) = digits.get(at % digits.len().max(1)) {
                    let end = (start..bytes.len()).find(|&i| !bytes[i].is_ascii_digit()).unwrap_or(bytes.len());
                    bytes.splice(start..end, n.to_string().into_bytes());
                }
            }
            _ => {}
        }
    }
    bytes
}

/// A valid input mutated a few times, or arbitrary bytes.
fn input(valid: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(mutation(), 1..6).prop_map(move |ms| mutate(valid, &ms)),
        1 => proptest::collection::vec(any::<u8>(), 0..512),
    ]
}

fn leak(bytes: Vec<u8>) -> &'static [u8] {
    Box::leak(bytes.into_boxed_slice())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_topology_parser_never_panics(bytes in input(quickstart_yaml().as_bytes())) {
        let path = Path::new("kkp.yaml");
        if let Ok(topology) = kkp::topology::load_bytes(path, &bytes) {
            // What loads must render and plan too.
            let _ = create(&topology, None, &|_| None, &Options { now: NOW, ..Options::default() });
        }
    }

    #[test]
    fn the_state_parser_never_panics(bytes in input({
        static STATE: OnceLock<&'static [u8]> = OnceLock::new();
        STATE.get_or_init(|| leak(kkp::state::format::to_bytes(&applied().1)))
    })) {
        if let Ok(state) = kkp::state::format::from_bytes(Path::new("kkp.state.json"), &bytes) {
            // A state that loads is one every entry of which names its own object.
            for (address, node) in &state.nodes {
                prop_assert!(kkp::state::check_entry(address, node).is_ok());
            }
        }
    }

    #[test]
    fn the_journal_parser_never_panics(bytes in input({
        static JOURNAL: OnceLock<&'static [u8]> = OnceLock::new();
        JOURNAL.get_or_init(|| {
            let mut text = String::from("{\"journal\":1,\"lineage\":\"fuzz\",\"serial\":1}\n");
            for (address, node) in applied().1.nodes.iter().take(40) {
                let change = kkp::state::Change::Put { address: address.clone(), node: node.clone() };
                text.push_str(&serde_json::to_string(&change).unwrap());
                text.push('\n');
            }
            leak(text.into_bytes())
        })
    }), discard in any::<bool>()) {
        let mut state = Some(State { serial: 1, ..State::new("fuzz".into()) });
        let _ = kkp::state::journal::replay_bytes(Path::new("j"), &bytes, &mut state, discard);
    }

    #[test]
    fn the_pack_index_never_panics_nor_returns_a_body_that_is_not_its_digest(index in input({
        static INDEX: OnceLock<&'static [u8]> = OnceLock::new();
        INDEX.get_or_init(|| {
            let mut text = String::new();
            let mut offset = 0;
            for (digest, body) in applied().2.iter().take(40) {
                text.push_str(&format!("{digest} {offset} {}\n", body.len()));
                offset += body.len();
            }
            leak(text.into_bytes())
        })
    })) {
        let dir = tempfile::tempdir().unwrap();
        let store = kkp::state::objects::ObjectStore::new(dir.path().join("objects"));
        let bodies: Vec<(String, Vec<u8>)> = applied().2.iter().take(40).cloned().collect();
        store.write_pack(&bodies).unwrap();
        let idx = std::fs::read_dir(dir.path().join("objects")).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "idx")).unwrap();
        std::fs::write(&idx, &index).unwrap();
        let store = kkp::state::objects::ObjectStore::new(dir.path().join("objects"));
        for (digest, _) in &bodies {
            if let Some(body) = store.read(digest) {
                prop_assert_eq!(&kkp::object::digest_bytes(&body), digest);
            }
        }
        let mut state = State::new("fuzz".into());
        state.nodes = applied().1.nodes.iter().take(3).map(|(a, n)| (a.clone(), n.clone())).collect();
        store.collect_garbage(&state);
    }

    #[test]
    fn the_plan_file_parser_never_panics(bytes in input({
        static PLAN: OnceLock<&'static [u8]> = OnceLock::new();
        PLAN.get_or_init(|| leak(kkp::plan::file::to_bytes(&applied().0).0))
    })) {
        let _ = kkp::plan::file::from_bytes(Path::new("plan.json"), &bytes);
    }
}
