//! Roll-ups: the shapes a fleet-sized plan is reviewed in. Identical changes across clusters
//! fold into one entry listing the clusters, risky actions (data loss, replace, destroy) are
//! picked out to be shown first and complete, and a per-seed table counts what happens where.
//! The views in [`super::display`] put these into words.

use super::{Action, Plan, PlannedAction};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// True for actions a reviewer must always see one by one: they lose data, replace or destroy.
pub fn is_risky(action: &PlannedAction) -> bool {
    action.review.data_loss || matches!(action.action, Action::Replace | Action::Delete)
}

/// The address with its cluster's name replaced by `*` (`cluster/*/deployment/apiserver`), so
/// the same node of different clusters compares equal; seed-level addresses stay as they are.
pub fn generic_address(action: &PlannedAction) -> String {
    let address = action.address.as_str();
    match &action.cluster {
        Some(cluster) => {
            let prefix = format!("cluster/{cluster}");
            match address.strip_prefix(&prefix) {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("cluster/*{rest}"),
                _ => address.to_string(),
            }
        }
        None => address.to_string(),
    }
}

/// Replaces a cluster's name in `text` by `<cluster>`, so changes that differ only by the name
/// (namespaces, DNS names) fold. Very short names are left alone: they would match inside
/// other words.
pub fn without_cluster_name(text: &str, cluster: Option<&str>) -> String {
    match cluster {
        Some(name) if name.len() >= 4 => text.replace(name, "<cluster>"),
        _ => text.to_string(),
    }
}

/// Identical changes: the actions whose description (as the view renders it) is the same.
#[derive(Debug)]
pub struct Fold<'a> {
    /// The shared description.
    pub key: String,
    /// The actions, in plan order.
    pub members: Vec<&'a PlannedAction>,
}

impl Fold<'_> {
    /// The first action (they all look the same).
    pub fn sample(&self) -> &PlannedAction {
        self.members[0]
    }

    /// The distinct clusters of the members, in plan order (seed-level actions have none).
    pub fn clusters(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.members.iter().filter_map(|a| a.cluster.as_deref()).filter(|c| seen.insert(*c)).collect()
    }
}

/// Folds `actions` by `key` (the view's description of an action), keeping first-seen order,
/// then puts the riskiest folds first (stable within a risk).
pub fn fold<'a>(actions: impl IntoIterator<Item = &'a PlannedAction>, key: impl Fn(&PlannedAction) -> String + Sync) -> Vec<Fold<'a>> {
    let actions: Vec<&PlannedAction> = actions.into_iter().collect();
    // A fleet's plan has hundreds of thousands of actions to describe.
    let keys = super::parallel::map(&actions, |a| key(a));
    let mut folds: Vec<Fold<'a>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (action, k) in actions.into_iter().zip(keys) {
        match index.get(&k) {
            Some(&i) => folds[i].members.push(action),
            None => {
                index.insert(k.clone(), folds.len());
                folds.push(Fold { key: k, members: vec![action] });
            }
        }
    }
    folds.sort_by_key(|f| std::cmp::Reverse(f.sample().review.risk));
    folds
}

/// One row of the per-seed table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeedRow {
    /// The seed.
    pub seed: String,
    /// User clusters with at least one action on this seed.
    pub clusters: usize,
    /// Creates.
    pub add: usize,
    /// In-place updates.
    pub change: usize,
    /// Replacements.
    pub replace: usize,
    /// Deletes.
    pub destroy: usize,
    /// Imports.
    pub import: usize,
}

/// Counts per seed, in seed order.
pub fn seed_table(plan: &Plan) -> Vec<SeedRow> {
    let mut rows: BTreeMap<&str, (SeedRow, BTreeSet<&str>)> = BTreeMap::new();
    for (i, a) in plan.actions.iter().enumerate() {
        let (row, clusters) =
            rows.entry(a.seed.as_str()).or_insert_with(|| (SeedRow { seed: a.seed.clone(), ..SeedRow::default() }, BTreeSet::new()));
        // Actions come grouped by cluster: count a cluster at its group's first action.
        if i > 0 && plan.actions[i - 1].cluster == a.cluster && plan.actions[i - 1].seed == a.seed {
            row.add_action(a.action);
            continue;
        }
        clusters.extend(a.cluster.as_deref());
        row.add_action(a.action);
    }
    rows.into_values()
        .map(|(mut row, clusters)| {
            row.clusters = clusters.len();
            row
        })
        .collect()
}

impl SeedRow {
    fn add_action(&mut self, action: Action) {
        match action {
            Action::Create => self.add += 1,
            Action::Update => self.change += 1,
            Action::Replace => self.replace += 1,
            Action::Delete => self.destroy += 1,
            Action::Import => self.import += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Reason;
    use crate::plan::classify::{Review, Risk};
    use crate::role::Role;

    fn action(address: &str, action: Action, risk: Risk) -> PlannedAction {
        PlannedAction {
            reasons: vec![Reason::Missing],
            review: Review { risk, data_loss: risk == Risk::DataLoss, ..Review::default() },
            ..PlannedAction::example(address, Role::Workload, action)
        }
    }

    #[test]
    fn the_same_node_of_many_clusters_folds_and_the_riskiest_fold_comes_first() {
        let actions = [
            action("cluster/alpha1/deployment/apiserver", Action::Update, Risk::Medium),
            action("cluster/bravo2/deployment/apiserver", Action::Update, Risk::Medium),
            action("cluster/bravo2/statefulset/etcd", Action::Replace, Risk::DataLoss),
            action("seed/eu", Action::Update, Risk::Low),
        ];
        let folds = fold(&actions, |a| format!("{:?} {}", a.action, generic_address(a)));
        let keys: Vec<(&str, usize)> = folds.iter().map(|f| (f.key.as_str(), f.members.len())).collect();
        assert_eq!(
            keys,
            vec![("Replace cluster/*/statefulset/etcd", 1), ("Update cluster/*/deployment/apiserver", 2), ("Update seed/eu", 1)]
        );
        assert_eq!(folds[1].clusters(), vec!["alpha1", "bravo2"]);
        assert!(is_risky(&actions[2]) && !is_risky(&actions[0]));
    }

    #[test]
    fn names_are_only_generalised_where_they_cannot_hit_other_words() {
        assert_eq!(without_cluster_name("cluster-qs4k7x2mzp.eu", Some("qs4k7x2mzp")), "cluster-<cluster>.eu");
        assert_eq!(without_cluster_name("apiserver in a", Some("a")), "apiserver in a");
        let ns = action("cluster/alpha1", Action::Delete, Risk::DataLoss);
        assert_eq!(generic_address(&ns), "cluster/*");
    }
}
