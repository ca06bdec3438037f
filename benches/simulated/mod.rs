//! The state a complete apply of a topology would leave, written without applying anything:
//! the starting point of the benches that plan against an applied fleet.

use kkp::apply::simulate;
use kkp::plan::{Options, create};
use kkp::state::State;
use kkp::state::backend::Backend;
use kkp::state::file::FileBackend;
use std::path::Path;

/// Writes the state (and stored bodies) a complete apply of `topology` would leave; returns
/// the number of nodes. Planned in chunks of clusters to keep the setup's memory bounded.
pub fn build_state(topology: &Path, state_path: &Path, now: i64) -> usize {
    let full = kkp::topology::load(&[topology.to_path_buf()]).expect("generated topology loads");
    let backend = FileBackend::new(state_path);
    let mut state = State::new("bench".into());
    let names: Vec<String> = full.clusters.keys().cloned().collect();
    for (i, chunk) in names.chunks(500).enumerate() {
        let mut part = full.clone();
        part.clusters = chunk.iter().map(|n| (n.clone(), full.clusters[n].clone())).collect();
        if i > 0 {
            part.seeds.clear();
        }
        let plan = create(&part, None, &|_| None, &Options { now, ..Options::default() }).expect("plan");
        let mut chunk_state = State::new("bench".into());
        let mut bodies = Vec::new();
        simulate::record(&plan, &mut chunk_state, now, &mut |digest, body| {
            bodies.push((digest.to_string(), serde_json::to_vec(body).unwrap()))
        });
        backend.objects().write_pack(&bodies).unwrap();
        state.nodes.extend(chunk_state.nodes);
        state.clusters.extend(chunk_state.clusters);
    }
    state.serial = 1;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let lock = backend.lock("bench").await.expect("lock");
        backend.persist(&state, lock.as_ref()).await.expect("state is written");
    });
    state.nodes.len()
}
