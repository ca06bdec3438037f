//! Classification: the machine fields a reviewer or a CI gate decides on. Each action gets a
//! [`Class`] (what kind of change it is), a [`Risk`], whether it loses data, and which
//! workloads restart because of it.
//!
//! Pure and decided by role, action and reason codes only, never by object names: the same
//! plan always classifies the same way, and apply re-classifies a saved plan instead of
//! trusting the fields written in it.

use super::{Action, PlannedAction, Reason, data_loss};
use crate::address::Address;
use crate::role::Role;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What kind of change an action is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// Something new is made.
    #[default]
    Create,
    /// An existing object is taken into the state.
    Import,
    /// A workload (or its data store) changes because its cluster's `spec.version` changes.
    VersionUpgrade,
    /// Configuration changes in place (or a stateless node is replaced).
    ConfigChange,
    /// A certificate is renewed because it expires (same CA, same request).
    CertRenewal,
    /// A certificate is issued again (its request or its issuer changed).
    CertReissue,
    /// A certificate authority or signing key pair is replaced: what it signed is re-issued.
    CaChange,
    /// A node moves to another seed without losing data.
    SeedMove,
    /// A data store is replaced: its volumes are lost.
    DataReplace,
    /// Something is deleted.
    Destroy,
    /// What runs differs from what was applied and is put back.
    DriftRepair,
}

impl Class {
    /// Every class, for docs and policy validation.
    pub const ALL: [Class; 11] = [
        Class::Create,
        Class::Import,
        Class::VersionUpgrade,
        Class::ConfigChange,
        Class::CertRenewal,
        Class::CertReissue,
        Class::CaChange,
        Class::SeedMove,
        Class::DataReplace,
        Class::Destroy,
        Class::DriftRepair,
    ];

    /// The class as plans spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Create => "create",
            Class::Import => "import",
            Class::VersionUpgrade => "version-upgrade",
            Class::ConfigChange => "config-change",
            Class::CertRenewal => "cert-renewal",
            Class::CertReissue => "cert-reissue",
            Class::CaChange => "ca-change",
            Class::SeedMove => "seed-move",
            Class::DataReplace => "data-replace",
            Class::Destroy => "destroy",
            Class::DriftRepair => "drift-repair",
        }
    }

    /// Parses a class as plans spell it.
    pub fn parse(text: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// How much could go wrong, ordered from least to most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    /// Nothing running is disturbed.
    #[default]
    Low,
    /// Pods restart or configuration changes under running components.
    Medium,
    /// Something is deleted, moved or re-keyed; clients may be cut off.
    High,
    /// Data that cannot be made again is lost (etcd volumes, a CA, a signing key).
    DataLoss,
}

impl Risk {
    /// Every risk, least first.
    pub const ALL: [Risk; 4] = [Risk::Low, Risk::Medium, Risk::High, Risk::DataLoss];

    /// The risk as plans spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
            Risk::DataLoss => "data-loss",
        }
    }

    /// Parses a risk as plans spell it.
    pub fn parse(text: &str) -> Option<Risk> {
        Risk::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The review fields of one action (flattened into it in the plan JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// What kind of change it is.
    #[serde(default)]
    pub class: Class,
    /// How much could go wrong.
    #[serde(default)]
    pub risk: Risk,
    /// True when it destroys what cannot be made again.
    #[serde(default)]
    pub data_loss: bool,
    /// Workloads whose pods restart because of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolls: Vec<Address>,
    /// The cluster's `spec.humanReadableName`, if it has one.
    #[serde(default, rename = "humanReadableName", skip_serializing_if = "Option::is_none")]
    pub human_readable_name: Option<String>,
}

/// What classification needs to know beyond the actions.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Clusters whose `spec.version` differs from the version their control plane was applied at.
    pub upgraded: BTreeSet<String>,
    /// `spec.humanReadableName` by cluster.
    pub human_names: BTreeMap<String, String>,
}

/// A cluster's version change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upgrade {
    /// The version its control plane was applied at.
    pub from: String,
    /// The version the topology asks for.
    pub to: String,
}

impl Context {
    /// The context a saved plan carries (its upgrades and the readable names in its actions),
    /// so a plan classifies the same at apply as when it was made.
    pub fn of_plan(plan: &super::Plan) -> Context {
        Context {
            upgraded: plan.upgrades.keys().cloned().collect(),
            human_names: plan.actions.iter().filter_map(|a| Some((a.cluster.clone()?, a.review.human_readable_name.clone()?))).collect(),
        }
    }
}

/// Fills every action's [`Review`]. Actions that only mount re-issued Secrets take the class of
/// those Secrets' actions, so a renewal-only plan is all `cert-renewal`.
pub fn annotate(actions: &mut [PlannedAction], context: &Context) {
    let reviews = classify_all(actions, context);
    for (action, review) in actions.iter_mut().zip(reviews) {
        action.review = review;
    }
}

/// The reviews of `actions`, in order, without changing them.
pub fn classify_all(actions: &[PlannedAction], context: &Context) -> Vec<Review> {
    let index: HashMap<&Address, usize> = actions.iter().enumerate().map(|(i, a)| (&a.address, i)).collect();
    // Who depends on whom, for the workloads a Secret or ConfigMap change restarts.
    let mut dependants: HashMap<&Address, Vec<&Address>> = HashMap::new();
    for a in actions {
        for d in &a.deps {
            dependants.entry(d).or_default().push(&a.address);
        }
    }
    let own: Vec<Class> = actions.iter().map(|a| own_class(a, context)).collect();
    actions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let mut class = own[i];
            if let Some(mounted) = mounted_class(a, &index, &own)
                && class == Class::ConfigChange
            {
                class = mounted;
            }
            let rolls = rolls(a, &index, actions, &dependants);
            let data_loss = data_loss(a).is_some();
            Review {
                class,
                risk: risk(class, data_loss, !rolls.is_empty()),
                data_loss,
                rolls,
                human_readable_name: a.cluster.as_ref().and_then(|c| context.human_names.get(c)).cloned(),
            }
        })
        .collect()
}

/// The class an action has on its own (before inheriting from the Secrets it mounts).
fn own_class(a: &PlannedAction, context: &Context) -> Class {
    // Reason codes the state's refresh and import add: decided by code so a new reason of
    // those families classifies without a change here.
    let code_family = |prefix: &str| a.reasons.iter().any(|r| r.code().starts_with(prefix));
    if a.action == Action::Import || (a.action != Action::Delete && code_family("import")) {
        return Class::Import;
    }
    match a.action {
        Action::Import => return Class::Import,
        Action::Delete => return Class::Destroy,
        Action::Create => return Class::Create,
        Action::Update | Action::Replace => {}
    }
    if code_family("drift") {
        return Class::DriftRepair;
    }
    let moves = a.reasons.iter().any(|r| matches!(r, Reason::MovesSeed { .. }));
    if moves {
        return if data_loss(a).is_some() { Class::DataReplace } else { Class::SeedMove };
    }
    let upgraded = a.cluster.as_ref().is_some_and(|c| context.upgraded.contains(c));
    match (a.role, a.action) {
        (Role::CertificateAuthority | Role::KeyPair, Action::Replace) => Class::CaChange,
        (role, Action::Replace) if role.is_issued() => {
            let expiring = a.reasons.iter().any(|r| matches!(r, Reason::Expiring { .. } | Reason::Expired { .. }));
            if expiring { Class::CertRenewal } else { Class::CertReissue }
        }
        (Role::DataStore, Action::Replace) => Class::DataReplace,
        (role, _) if upgraded && (role.is_workload() || role == Role::Job) => Class::VersionUpgrade,
        _ => Class::ConfigChange,
    }
}

/// For an action that only mounts re-issued Secrets: the most severe class among those
/// Secrets' actions.
fn mounted_class(a: &PlannedAction, index: &HashMap<&Address, usize>, own: &[Class]) -> Option<Class> {
    let [Reason::MountsReissued { secrets }] = a.reasons.as_slice() else { return None };
    secrets
        .iter()
        .filter_map(|s| index.get(s).map(|&i| own[i]))
        .filter(|c| matches!(c, Class::CertRenewal | Class::CertReissue | Class::CaChange))
        .max()
}

/// Workloads whose pods restart because of `a`: the workload itself when its pod template
/// changes, or the workloads in the plan that depend on a Secret or ConfigMap that changes.
fn rolls(
    a: &PlannedAction,
    index: &HashMap<&Address, usize>,
    actions: &[PlannedAction],
    dependants: &HashMap<&Address, Vec<&Address>>,
) -> Vec<Address> {
    if !matches!(a.action, Action::Update | Action::Replace) {
        return Vec::new();
    }
    if a.role.is_workload() {
        let template = a.action == Action::Replace
            || a.changes.is_empty()
            || a.changes.iter().any(|c| c.path.starts_with("spec.template"))
            || a.reasons.iter().any(|r| matches!(r, Reason::MountsReissued { .. }));
        return if template { vec![a.address.clone()] } else { Vec::new() };
    }
    // Only what pods mount restarts them; a cluster's actions never mount a seed's, so a
    // cluster's actions classify the same alone as within the whole plan.
    if !a.object.as_ref().is_some_and(|o| o.kind.is_mounted()) {
        return Vec::new();
    }
    let mut out: Vec<Address> = dependants
        .get(&a.address)
        .into_iter()
        .flatten()
        .filter_map(|d| index.get(d).map(|&i| &actions[i]))
        .filter(|d| d.role.is_workload() && matches!(d.action, Action::Update | Action::Replace))
        .map(|d| d.address.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The risk of a change of `class`.
fn risk(class: Class, data_loss: bool, rolls: bool) -> Risk {
    if data_loss {
        return Risk::DataLoss;
    }
    match class {
        Class::Create | Class::Import | Class::CertRenewal => Risk::Low,
        Class::ConfigChange if !rolls => Risk::Low,
        Class::ConfigChange | Class::VersionUpgrade | Class::CertReissue | Class::DriftRepair => Risk::Medium,
        Class::CaChange | Class::SeedMove | Class::Destroy => Risk::High,
        Class::DataReplace => Risk::DataLoss,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{Kind, ObjectRef};
    use crate::plan::diff::FieldChange;

    fn action(address: &str, role: Role, action: Action, reasons: Vec<Reason>) -> PlannedAction {
        PlannedAction { reasons, ..PlannedAction::example(address, role, action) }
    }

    fn classes(actions: &[PlannedAction], context: &Context) -> Vec<(Class, Risk)> {
        classify_all(actions, context).into_iter().map(|r| (r.class, r.risk)).collect()
    }

    #[test]
    fn a_renewal_and_the_workloads_it_rolls_are_all_cert_renewal() {
        let secret = PlannedAction {
            object: Some(ObjectRef::namespaced(Kind::Secret, "cluster-a", "apiserver-tls")),
            ..action(
                "cluster/a/secret/apiserver-tls",
                Role::Certificate,
                Action::Replace,
                vec![Reason::Expiring { not_after: 1, window_days: 30 }],
            )
        };
        let mut apiserver = action(
            "cluster/a/deployment/apiserver",
            Role::Workload,
            Action::Update,
            vec![Reason::MountsReissued { secrets: vec![secret.address.clone()] }],
        );
        apiserver.deps = vec![secret.address.clone()];
        let actions = [secret, apiserver];
        let reviews = classify_all(&actions, &Context::default());
        assert_eq!(reviews[0].class, Class::CertRenewal);
        assert_eq!(reviews[1].class, Class::CertRenewal);
        assert_eq!(reviews[0].rolls, vec![actions[1].address.clone()]);
        assert_eq!(reviews[1].rolls, vec![actions[1].address.clone()]);
        assert!(reviews.iter().all(|r| r.risk == Risk::Low && !r.data_loss));
    }

    #[test]
    fn only_what_pods_mount_rolls_the_workloads_that_wait_for_it() {
        let account = action("cluster/a/serviceaccount/prometheus", Role::Identity, Action::Update, vec![]);
        let mut prometheus = action("cluster/a/statefulset/prometheus", Role::Workload, Action::Update, vec![]);
        prometheus.changes = vec![FieldChange { path: "spec.replicas".into(), before: Some(1.into()), after: Some(2.into()) }];
        prometheus.deps = vec![account.address.clone()];
        let reviews = classify_all(&[account, prometheus], &Context::default());
        assert!(reviews.iter().all(|r| r.rolls.is_empty()), "{reviews:?}");
    }

    #[test]
    fn classes_follow_roles_and_reasons_not_names() {
        // An etcd-like name on a plain workload is a config change; a data store with any name
        // replaced is a data replace.
        let context = Context { upgraded: ["up".to_string()].into(), ..Context::default() };
        let mut stateless = action(
            "cluster/a/statefulset/etcd",
            Role::Workload,
            Action::Update,
            vec![Reason::FieldsChange { paths: vec!["spec.replicas".into()] }],
        );
        stateless.changes = vec![FieldChange { path: "spec.replicas".into(), before: None, after: None }];
        let data = action(
            "cluster/a/statefulset/store",
            Role::DataStore,
            Action::Replace,
            vec![Reason::ImmutableField { path: "spec.volumeClaimTemplates".into() }],
        );
        let ca = action("cluster/a/secret/x", Role::CertificateAuthority, Action::Replace, vec![Reason::RequestChanged]);
        let leaf =
            action("cluster/a/secret/y", Role::Certificate, Action::Replace, vec![Reason::IssuerReissued { issuer: ca.address.clone() }]);
        let upgraded =
            action("cluster/up/deployment/scheduler", Role::Workload, Action::Update, vec![Reason::FieldsChange { paths: vec![] }]);
        let moved = action(
            "cluster/m/deployment/apiserver",
            Role::Workload,
            Action::Replace,
            vec![Reason::MovesSeed { from: "eu".into(), to: "us".into() }],
        );
        let moved_data = action(
            "cluster/m/statefulset/etcd",
            Role::DataStore,
            Action::Replace,
            vec![Reason::MovesSeed { from: "eu".into(), to: "us".into() }],
        );
        let gone = action("cluster/g", Role::Namespace, Action::Delete, vec![Reason::ClusterRemoved { cluster: "g".into() }]);
        let new = action("cluster/n/service/apiserver", Role::Service, Action::Create, vec![Reason::Missing]);
        let actions = [stateless, data, ca, leaf, upgraded, moved, moved_data, gone, new];
        assert_eq!(
            classes(&actions, &context),
            vec![
                (Class::ConfigChange, Risk::Low),
                (Class::DataReplace, Risk::DataLoss),
                (Class::CaChange, Risk::DataLoss),
                (Class::CertReissue, Risk::Medium),
                (Class::VersionUpgrade, Risk::Medium),
                (Class::SeedMove, Risk::High),
                (Class::DataReplace, Risk::DataLoss),
                (Class::Destroy, Risk::DataLoss),
                (Class::Create, Risk::Low),
            ]
        );
    }

    #[test]
    fn a_config_map_change_rolls_the_workloads_that_depend_on_it() {
        let mut config = action("cluster/a/configmap/audit", Role::Config, Action::Update, vec![Reason::FieldsChange { paths: vec![] }]);
        config.object = Some(ObjectRef::namespaced(Kind::ConfigMap, "cluster-a", "audit"));
        let mut apiserver = action(
            "cluster/a/deployment/apiserver",
            Role::Workload,
            Action::Update,
            vec![Reason::FieldsChange { paths: vec!["spec.template.metadata.annotations".into()] }],
        );
        apiserver.changes = vec![FieldChange { path: "spec.template.metadata.annotations.x".into(), before: None, after: None }];
        apiserver.deps = vec![config.address.clone()];
        let reviews = classify_all(&[config, apiserver], &Context::default());
        assert_eq!(reviews[0].rolls.len(), 1);
        assert_eq!((reviews[0].class, reviews[0].risk), (Class::ConfigChange, Risk::Medium));
    }

    #[test]
    fn names_round_trip() {
        for class in Class::ALL {
            assert_eq!(Class::parse(class.as_str()), Some(class));
            assert_eq!(serde_json::to_value(class).unwrap(), class.as_str());
        }
        for risk in Risk::ALL {
            assert_eq!(Risk::parse(risk.as_str()), Some(risk));
            assert_eq!(serde_json::to_value(risk).unwrap(), risk.as_str());
        }
        assert!(Risk::Low < Risk::Medium && Risk::High < Risk::DataLoss);
    }
}
