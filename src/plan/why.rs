//! `kkp plan --why ADDR`: for each action under an address, the input that caused it, with
//! the file and line of the topology where it can be changed. Decided from the action's
//! reasons and the topology; [`super::display::why`] puts it into words.

use super::{Plan, PlannedAction, Reason};
use crate::address::Address;
use crate::topology::{Source, Topology, locate_in_file};

/// What caused one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The cluster's `spec.version` changed.
    Version {
        /// The cluster.
        cluster: String,
        /// The version applied.
        from: String,
        /// The version asked for.
        to: String,
        /// `spec.version`.
        at: Source,
    },
    /// The cluster's datacenter (`spec.cloud.dc`) is now served by another seed.
    Datacenter {
        /// The cluster.
        cluster: String,
        /// The seed it leaves.
        from: String,
        /// The seed it goes to.
        to: String,
        /// `spec.cloud.dc`.
        at: Source,
    },
    /// A certificate's time is up: no input changed, the clock did.
    Clock {
        /// When it expires (unix seconds).
        not_after: i64,
    },
    /// The node is new, or its rendering from the cluster's document changed.
    Cluster {
        /// The cluster.
        cluster: String,
        /// The Cluster document.
        at: Source,
    },
    /// The seed's document (or the configuration it inherits) changed.
    Seed {
        /// The seed.
        seed: String,
        /// The Seed document.
        at: Source,
    },
    /// A cluster or seed is no longer in the topology.
    Removed {
        /// `cluster NAME` or `seed NAME`.
        what: String,
    },
    /// The state's record differs from what kkp would render, with no input to point to.
    State,
}

/// One action and its causes.
#[derive(Debug, Clone)]
pub struct Explained<'a> {
    /// The action.
    pub action: &'a PlannedAction,
    /// Its causes, most specific first.
    pub causes: Vec<Cause>,
}

/// The actions at or under `address` and what caused them.
pub fn explain<'a>(plan: &'a Plan, topology: &Topology, address: &Address) -> Vec<Explained<'a>> {
    plan.actions
        .iter()
        .filter(|a| a.address.starts_with(address))
        .map(|a| Explained { action: a, causes: causes(plan, topology, a) })
        .collect()
}

fn causes(plan: &Plan, topology: &Topology, action: &PlannedAction) -> Vec<Cause> {
    let mut out = Vec::new();
    let cluster = action.cluster.as_ref().and_then(|c| topology.clusters.get(c));
    for reason in &action.reasons {
        match reason {
            Reason::MovesSeed { from, to } => {
                if let Some(c) = cluster {
                    out.push(Cause::Datacenter {
                        cluster: c.name.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        at: locate_in_file(&c.source, &["spec", "cloud", "dc"]),
                    });
                }
            }
            Reason::Expiring { not_after, .. } | Reason::Expired { not_after } => out.push(Cause::Clock { not_after: *not_after }),
            Reason::ClusterRemoved { cluster } => out.push(Cause::Removed { what: format!("cluster {cluster}") }),
            Reason::SeedRemoved { seed } => out.push(Cause::Removed { what: format!("seed {seed}") }),
            Reason::DiffersFromApplied { .. } => out.push(Cause::State),
            _ => {}
        }
    }
    if let Some(c) = cluster
        && let Some(upgrade) = plan.upgrades.get(&c.name)
        && action.review.class == super::classify::Class::VersionUpgrade
    {
        out.insert(
            0,
            Cause::Version {
                cluster: c.name.clone(),
                from: upgrade.from.clone(),
                to: upgrade.to.clone(),
                at: locate_in_file(&c.source, &["spec", "version"]),
            },
        );
    }
    let expired = out.iter().any(|c| matches!(c, Cause::Clock { .. }));
    if !expired {
        match (cluster, topology.seeds.get(&action.seed)) {
            (Some(c), _) => out.push(Cause::Cluster { cluster: c.name.clone(), at: c.source.clone() }),
            (None, Some(seed)) if action.cluster.is_none() => out.push(Cause::Seed { seed: seed.name.clone(), at: seed.source.clone() }),
            _ => {}
        }
    }
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Options, create};
    use std::path::PathBuf;

    #[test]
    fn an_upgrade_points_at_the_version_line_of_its_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/kkp.yaml");
        let text = std::fs::read_to_string(example).unwrap();
        let file = dir.path().join("kkp.yaml");
        std::fs::write(&file, &text).unwrap();
        let before = crate::topology::load(std::slice::from_ref(&file)).unwrap();
        let mut state = crate::state::State::new("l".into());
        let now = 1_790_000_000;
        crate::apply::simulate::record(
            &create(&before, None, &|_| None, &Options { now, ..Options::default() }).unwrap(),
            &mut state,
            now,
            &mut |_, _| {},
        );
        std::fs::write(&file, text.replace("version: 1.33.5", "version: 1.34.2")).unwrap();
        let after = crate::topology::load(std::slice::from_ref(&file)).unwrap();
        let plan = create(&after, Some(&state), &|_| None, &Options { now, ..Options::default() }).unwrap();
        let address = Address::parse("cluster/qs9d3vh6rt/deployment/apiserver").unwrap();
        let explained = explain(&plan, &after, &address);
        assert_eq!(explained.len(), 1);
        let version_line = text.lines().position(|l| l.trim() == "version: 1.33.5").unwrap() + 1;
        let Cause::Version { from, to, at, .. } = &explained[0].causes[0] else { panic!("{:?}", explained[0].causes) };
        assert_eq!((from.as_str(), to.as_str(), at.line), ("1.33.5", "1.34.2", version_line));
        assert!(
            explained[0]
                .causes
                .iter()
                .any(|c| matches!(c, Cause::Cluster { cluster, at } if cluster == "qs9d3vh6rt" && at.line < version_line))
        );
        let text = crate::plan::display::why(&explained);
        assert!(text.contains(&format!("kkp.yaml:{version_line}: cluster qs9d3vh6rt: spec.version 1.33.5 -> 1.34.2")), "{text}");
    }
}
