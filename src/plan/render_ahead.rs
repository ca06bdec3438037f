//! Rendering clusters ahead of the planner on other threads. Rendering is pure and costs
//! about as much as planning, so a fleet's plan renders on every core while the planner works
//! through the clusters in order. A few clusters per thread are rendered ahead, never more, so
//! memory stays bounded whatever the fleet's size.

use crate::render::{self, DesiredNode};
use crate::topology::Cluster;
use std::sync::mpsc::sync_channel;

/// Clusters a render thread may have ready before the planner takes them.
const AHEAD: usize = 4;

/// Calls `each` with every cluster of `clusters` and its rendered nodes, each passed through
/// `prepare` on the rendering thread, in the order given.
pub(super) fn each_rendered<'a, T: Send>(
    clusters: &[&'a Cluster],
    prepare: impl Fn(DesiredNode) -> T + Sync,
    mut each: impl FnMut(&'a Cluster, Vec<T>),
) {
    let render = |cluster: &Cluster| render::cluster(cluster).into_iter().map(&prepare).collect::<Vec<T>>();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8).min(clusters.len() / 2);
    if threads <= 1 {
        for cluster in clusters {
            each(cluster, render(cluster));
        }
        return;
    }
    std::thread::scope(|scope| {
        // Thread t renders clusters t, t + threads, ...; taking from the threads in turn gives
        // the clusters back in order.
        let rendered: Vec<_> = (0..threads)
            .map(|t| {
                let (send, receive) = sync_channel::<Vec<T>>(AHEAD);
                let render = &render;
                scope.spawn(move || {
                    for cluster in clusters.iter().skip(t).step_by(threads) {
                        if send.send(render(cluster)).is_err() {
                            return; // The planner stopped.
                        }
                    }
                });
                receive
            })
            .collect();
        for (i, cluster) in clusters.iter().enumerate() {
            // A render thread that panicked has hung up; the scope re-raises its panic.
            let Ok(nodes) = rendered[i % threads].recv() else { break };
            each(cluster, nodes);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_come_back_in_order_with_their_own_nodes() {
        let spec = crate::topology::generate::Spec { seeds: 2, clusters: 25, ..Default::default() };
        let text = crate::topology::generate::generate(&spec);
        let topology = crate::topology::load_str(std::path::Path::new("fleet.yaml"), &text).unwrap();
        let clusters: Vec<&Cluster> = topology.clusters.values().collect();
        let mut seen = Vec::new();
        each_rendered(
            &clusters,
            |node| node,
            |cluster, nodes| {
                let again = render::cluster(cluster);
                let summary = |nodes: &[DesiredNode]| nodes.iter().map(|n| (n.address.clone(), n.body.clone())).collect::<Vec<_>>();
                assert_eq!(summary(&nodes), summary(&again), "{}", cluster.name);
                seen.push(cluster.name.clone());
            },
        );
        assert_eq!(seen, clusters.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
    }
}
