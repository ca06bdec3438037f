//! Repairs of a state by hand (`kkp state rm`): pure edits of a loaded [`State`]. The commands take the lock, persist atomically and keep `.backup`; nothing here
//! touches a seed.

use super::State;
use crate::address::Address;

/// Errors of an edit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address matches nothing.
    #[error("{0} matches nothing in the state\n  fix: list what it holds with `kkp state list`")]
    NoMatch(Address),
}

/// Forgets the nodes under `prefixes` (and, for each seed in `seeds`, every node on it and its
/// recorded target). A whole cluster's record goes with its nodes. Returns what was removed.
pub fn remove(state: &mut State, prefixes: &[Address], seeds: &[String]) -> Result<Vec<Address>, Error> {
    for prefix in prefixes {
        if !state.nodes.keys().any(|a| a.starts_with(prefix)) {
            return Err(Error::NoMatch(prefix.clone()));
        }
    }
    let doomed: Vec<Address> = state
        .nodes
        .iter()
        .filter(|(a, n)| prefixes.iter().any(|p| a.starts_with(p)) || seeds.contains(&n.seed))
        .map(|(a, _)| a.clone())
        .collect();
    for address in &doomed {
        state.nodes.remove(address);
        // A cluster's record says "all of its nodes applied"; with one gone that is no longer true.
        if let Some(cluster) = address.cluster() {
            state.clusters.remove(cluster);
        }
    }
    for seed in seeds {
        state.targets.remove(seed);
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::state::{ClusterState, NodeState};

    fn state() -> State {
        let mut state = State::new("l".into());
        let node = |seed: &str| NodeState {
            seed: seed.into(),
            role: crate::role::Role::Config,
            object: None,
            digest: "d".into(),
            certificate: None,
            version: None,
        };
        state.nodes.insert(Address::cluster_object("a", Kind::ConfigMap, "x"), node("eu"));
        state.nodes.insert(Address::cluster_object("a", Kind::ConfigMap, "y"), node("eu"));
        state.nodes.insert(Address::cluster_object("b", Kind::ConfigMap, "x"), node("us"));
        state.clusters.insert("a".into(), ClusterState { input_digest: "i".into(), version: None, etcd_members: None });
        state.targets.insert("us".into(), crate::state::SeedTarget::Dir { path: "/x".into() });
        state
    }

    #[test]
    fn remove_forgets_nodes_and_the_cluster_record() {
        let mut s = state();
        let removed = remove(&mut s, &[Address::parse("cluster/a/configmap/x").unwrap()], &[]).unwrap();
        assert_eq!(removed.len(), 1);
        assert!(!s.clusters.contains_key("a"), "cluster a is no longer completely applied");
        let removed = remove(&mut s, &[], &["us".into()]).unwrap();
        assert_eq!(removed, [Address::cluster_object("b", Kind::ConfigMap, "x")]);
        assert!(s.targets.is_empty());
        let err = remove(&mut s, &[Address::parse("cluster/zzz").unwrap()], &[]).unwrap_err();
        assert!(err.to_string().starts_with("cluster/zzz matches nothing in the state"), "{err}");
    }
}
