//! Repairs of a state by hand (`kkp state rm`, `kkp state mv`): pure edits of a loaded
//! [`State`]. The commands take the lock, persist atomically and keep `.backup`; nothing here
//! touches a seed.

use super::State;
use crate::address::Address;

/// Errors of an edit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address matches nothing.
    #[error("{0} matches nothing in the state\n  fix: list what it holds with `kkp state list`")]
    NoMatch(Address),
    /// The destination of a move is taken.
    #[error("{0} is already in the state\n  fix: remove it first with `kkp state rm {0}`, or move to a free address")]
    Taken(Address),
    /// A move between kinds of addresses.
    #[error("{from} and {to} are not the same kind of address (a cluster moves to a cluster, a node to a node)")]
    Mismatch {
        /// The source.
        from: Address,
        /// The destination.
        to: Address,
    },
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

/// Moves the nodes under `from` to the same paths under `to` (a cluster renamed, a node whose
/// address changed). Returns the moves.
pub fn rename(state: &mut State, from: &Address, to: &Address) -> Result<Vec<(Address, Address)>, Error> {
    if from.as_str().split('/').count() != to.as_str().split('/').count() || from.cluster().is_some() != to.cluster().is_some() {
        return Err(Error::Mismatch { from: from.clone(), to: to.clone() });
    }
    let moved: Vec<(Address, Address)> = state
        .nodes
        .keys()
        .filter(|a| a.starts_with(from))
        .map(|a| {
            let rest = &a.as_str()[from.as_str().len()..];
            (a.clone(), Address::parse(&format!("{}{rest}", to.as_str())).expect("a valid address with a valid prefix"))
        })
        .collect();
    if moved.is_empty() {
        return Err(Error::NoMatch(from.clone()));
    }
    if let Some((_, taken)) = moved.iter().find(|(_, new)| state.nodes.contains_key(new)) {
        return Err(Error::Taken(taken.clone()));
    }
    for (old, new) in &moved {
        let node = state.nodes.remove(old).expect("listed above");
        state.nodes.insert(new.clone(), node);
    }
    // A whole cluster moves with its record.
    if let (Some(a), Some(b)) = (from.cluster(), to.cluster())
        && from.as_str().split('/').count() == 2
        && let Some(record) = state.clusters.remove(a)
    {
        state.clusters.insert(b.to_string(), record);
    }
    Ok(moved)
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

    #[test]
    fn rename_moves_a_cluster_with_its_record_and_refuses_to_overwrite() {
        let mut s = state();
        let moves = rename(&mut s, &Address::parse("cluster/a").unwrap(), &Address::parse("cluster/c").unwrap()).unwrap();
        assert_eq!(moves.len(), 2);
        assert!(s.nodes.contains_key("cluster/c/configmap/y") && s.clusters.contains_key("c"));
        let err = rename(&mut s, &Address::parse("cluster/c").unwrap(), &Address::parse("cluster/b").unwrap()).unwrap_err();
        assert!(matches!(err, Error::Taken(_)));
        assert!(rename(&mut s, &Address::parse("cluster/c").unwrap(), &Address::parse("seed/c").unwrap()).is_err());
    }
}
