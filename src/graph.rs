//! The dependency graph: nodes are addresses, an edge runs from a dependency to its dependant.
//!
//! Generic over what a node means: callers keep their payload in a vector indexed like the
//! graph. Offers topological order, levels (longest distance from a root), the critical path
//! (the longest dependency chain) and DOT output. Pure: no I/O.

use crate::address::Address;
use petgraph::Direction;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use std::collections::HashMap;
use std::fmt::Write;

/// Errors building a graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A node names a dependency that is not in the graph.
    #[error("{node} depends on {dependency}, which is not part of the graph")]
    UnknownDependency {
        /// The node.
        node: Address,
        /// The missing dependency.
        dependency: Address,
    },
    /// Two nodes share an address.
    #[error("address {0} is defined twice")]
    Duplicate(Address),
    /// The dependencies form a cycle.
    #[error("dependency cycle through: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(" -> "))]
    Cycle(Vec<Address>),
}

/// A validated DAG with its topological order.
#[derive(Debug, Clone)]
pub struct Dag {
    addresses: Vec<Address>,
    graph: DiGraph<(), ()>,
    order: Vec<usize>,
}

impl Dag {
    /// Builds the graph from `(address, dependencies)` pairs; node `i` is the `i`-th pair.
    pub fn new<'a, I>(nodes: I) -> Result<Dag, Error>
    where
        I: IntoIterator<Item = (&'a Address, &'a [Address])>,
    {
        let nodes: Vec<(&Address, &[Address])> = nodes.into_iter().collect();
        let mut graph = DiGraph::with_capacity(nodes.len(), nodes.len() * 3);
        let mut index = HashMap::with_capacity(nodes.len());
        for (address, _) in &nodes {
            let i = graph.add_node(());
            if index.insert(*address, i).is_some() {
                return Err(Error::Duplicate((*address).clone()));
            }
        }
        for (i, (address, deps)) in nodes.iter().enumerate() {
            for dep in *deps {
                let from = *index.get(dep).ok_or_else(|| Error::UnknownDependency { node: (*address).clone(), dependency: dep.clone() })?;
                graph.add_edge(from, NodeIndex::new(i), ());
            }
        }
        let addresses: Vec<Address> = nodes.iter().map(|(a, _)| (*a).clone()).collect();
        let order = match toposort(&graph, None) {
            Ok(order) => order.into_iter().map(NodeIndex::index).collect(),
            Err(_) => return Err(Error::Cycle(cycle(&graph, &addresses))),
        };
        Ok(Dag { addresses, graph, order })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.addresses.len()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty()
    }

    /// The address of node `i`.
    pub fn address(&self, i: usize) -> &Address {
        &self.addresses[i]
    }

    /// Node indices, every node after all of its dependencies.
    pub fn topological_order(&self) -> &[usize] {
        &self.order
    }

    /// Direct dependencies of node `i`.
    pub fn dependencies(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.edges_directed(NodeIndex::new(i), Direction::Incoming).map(|e| e.source().index())
    }

    /// Direct dependants of node `i`.
    pub fn dependants(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.edges_directed(NodeIndex::new(i), Direction::Outgoing).map(|e| e.target().index())
    }

    /// Level of every node: 0 for nodes without dependencies, else 1 + the highest level of
    /// its dependencies. Nodes of one level can run at the same time.
    pub fn levels(&self) -> Vec<usize> {
        self.levels_from(|_| None)
    }

    /// Levels as [`Dag::levels`], except that a node `fixed` gives a level keeps it (a node
    /// standing for one of another graph, whose level is known there).
    pub fn levels_from(&self, fixed: impl Fn(usize) -> Option<usize>) -> Vec<usize> {
        let mut level = vec![0; self.len()];
        for &i in &self.order {
            level[i] = fixed(i).unwrap_or_else(|| self.dependencies(i).map(|d| level[d] + 1).max().unwrap_or(0));
        }
        level
    }

    /// The longest dependency chain, from a root to a leaf: the lower bound of any apply's
    /// wall time in steps.
    pub fn critical_path(&self) -> Vec<usize> {
        self.critical_path_to(|_| true)
    }

    /// The longest dependency chain ending at a node `end` accepts (a cluster's own critical
    /// path, with the seed nodes it waits for).
    pub fn critical_path_to(&self, end: impl Fn(&Address) -> bool) -> Vec<usize> {
        let levels = self.levels();
        let Some(mut at) = (0..self.len()).filter(|&i| end(&self.addresses[i])).max_by_key(|&i| (levels[i], std::cmp::Reverse(i))) else {
            return Vec::new();
        };
        let mut path = vec![at];
        while let Some(prev) = self.dependencies(at).filter(|&d| levels[d] + 1 == levels[at]).min() {
            path.push(prev);
            at = prev;
        }
        path.reverse();
        path
    }

    /// Graphviz DOT of the nodes `keep` accepts, with edges between kept nodes.
    pub fn to_dot(&self, keep: impl Fn(&Address) -> bool) -> String {
        let mut out = String::from("digraph kkp {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        let kept: Vec<bool> = self.addresses.iter().map(&keep).collect();
        for &i in &self.order {
            if kept[i] {
                let _ = writeln!(out, "  \"{}\";", self.addresses[i]);
            }
        }
        for &i in &self.order {
            if !kept[i] {
                continue;
            }
            let mut deps: Vec<usize> = self.dependencies(i).filter(|&d| kept[d]).collect();
            deps.sort_unstable();
            for d in deps {
                let _ = writeln!(out, "  \"{}\" -> \"{}\";", self.addresses[d], self.addresses[i]);
            }
        }
        out.push_str("}\n");
        out
    }
}

/// The nodes of one cycle, in edge order, for the error message.
fn cycle(graph: &DiGraph<(), ()>, addresses: &[Address]) -> Vec<Address> {
    let scc = tarjan_scc(graph).into_iter().find(|c| c.len() > 1 || graph.contains_edge(c[0], c[0])).unwrap_or_default();
    let Some(&start) = scc.iter().min() else { return Vec::new() };
    // Follow edges inside the component from its smallest node until we return to it.
    let mut path = vec![start];
    let mut at = start;
    loop {
        let next = graph
            .neighbors_directed(at, Direction::Outgoing)
            .filter(|n| scc.contains(n))
            .min_by_key(|n| if *n == start { 0 } else { n.index() + 1 })
            .expect("a strongly connected component has an edge out of every node");
        if next == start || path.contains(&next) {
            break;
        }
        path.push(next);
        at = next;
    }
    path.push(start);
    path.into_iter().map(|i| addresses[i.index()].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(name: &str) -> Address {
        Address::cluster_object("c", crate::object::Kind::Secret, name)
    }

    #[test]
    fn reports_the_nodes_on_a_cycle() {
        let nodes = [(a("x"), vec![a("z")]), (a("y"), vec![a("x")]), (a("z"), vec![a("y")]), (a("free"), vec![])];
        let err = Dag::new(nodes.iter().map(|(n, d)| (n, d.as_slice()))).unwrap_err();
        match err {
            Error::Cycle(path) => {
                assert_eq!(path.first(), path.last());
                assert_eq!(path.len(), 4, "{path:?}");
                assert!(!path.contains(&a("free")));
            }
            other => panic!("expected a cycle, got {other}"),
        }
    }

    #[test]
    fn unknown_dependencies_are_named() {
        let nodes = [(a("x"), vec![a("missing")])];
        let err = Dag::new(nodes.iter().map(|(n, d)| (n, d.as_slice()))).unwrap_err();
        assert_eq!(err.to_string(), "cluster/c/secret/x depends on cluster/c/secret/missing, which is not part of the graph");
    }

    #[test]
    fn critical_path_follows_the_longest_chain() {
        let nodes = [
            (a("ns"), vec![]),
            (a("ca"), vec![a("ns")]),
            (a("tls"), vec![a("ca")]),
            (a("svc"), vec![a("ns")]),
            (a("deploy"), vec![a("tls"), a("svc")]),
        ];
        let dag = Dag::new(nodes.iter().map(|(n, d)| (n, d.as_slice()))).unwrap();
        let path: Vec<&str> = dag.critical_path().into_iter().map(|i| dag.address(i).as_str()).collect();
        assert_eq!(path, ["cluster/c/secret/ns", "cluster/c/secret/ca", "cluster/c/secret/tls", "cluster/c/secret/deploy"]);
        assert_eq!(dag.levels(), vec![0, 1, 2, 1, 3]);
        assert!(dag.to_dot(|_| true).contains("\"cluster/c/secret/ca\" -> \"cluster/c/secret/tls\";"));
    }

    proptest! {
        /// Any DAG (edges only from lower to higher index) orders every node after its
        /// dependencies, and levels grow along every edge.
        #[test]
        fn order_and_levels_respect_every_edge(edges in proptest::collection::vec((0usize..30, 0usize..30), 0..120)) {
            let names: Vec<Address> = (0..30).map(|i| a(&format!("n{i:02}"))).collect();
            let mut deps: Vec<Vec<Address>> = vec![Vec::new(); 30];
            for (x, y) in edges {
                if x < y && !deps[y].contains(&names[x]) {
                    deps[y].push(names[x].clone());
                }
            }
            let dag = Dag::new(names.iter().zip(&deps).map(|(n, d)| (n, d.as_slice()))).unwrap();
            let mut position = vec![0; 30];
            for (p, &i) in dag.topological_order().iter().enumerate() {
                position[i] = p;
            }
            let levels = dag.levels();
            for i in 0..30 {
                for d in dag.dependencies(i) {
                    prop_assert!(position[d] < position[i]);
                    prop_assert!(levels[d] < levels[i]);
                }
            }
            prop_assert_eq!(dag.critical_path().len(), levels.iter().max().unwrap() + 1);
        }
    }
}
