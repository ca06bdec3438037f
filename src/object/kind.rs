//! The one table of Kubernetes kinds kkp writes: API group/version, kind, plural, scope and
//! apply order. Render, plan, apply and the targets look kinds up here; nothing else spells a
//! kind's name, plural or version.

use std::fmt;

/// A kind kkp renders and writes. A manifest or state entry of any other kind is not kkp's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `v1 Namespace`.
    Namespace,
    /// `v1 ServiceAccount`.
    ServiceAccount,
    /// `rbac.authorization.k8s.io/v1 Role`.
    Role,
    /// `rbac.authorization.k8s.io/v1 RoleBinding`.
    RoleBinding,
    /// `rbac.authorization.k8s.io/v1 ClusterRole`.
    ClusterRole,
    /// `rbac.authorization.k8s.io/v1 ClusterRoleBinding`.
    ClusterRoleBinding,
    /// `v1 Secret`.
    Secret,
    /// `v1 ConfigMap`.
    ConfigMap,
    /// `v1 Service`.
    Service,
    /// `apps/v1 StatefulSet`.
    StatefulSet,
    /// `apps/v1 Deployment`.
    Deployment,
    /// `batch/v1 CronJob`.
    CronJob,
    /// `policy/v1 PodDisruptionBudget`.
    PodDisruptionBudget,
    /// `networking.k8s.io/v1 NetworkPolicy`.
    NetworkPolicy,
    /// `kubermatic.k8c.io/v1 EtcdBackupConfig` (KKP's CRD).
    EtcdBackupConfig,
}

/// What the API and the apply order need to know of a kind.
#[derive(Debug)]
pub struct KindInfo {
    /// The kind.
    pub kind: Kind,
    /// API group ("" for core).
    pub group: &'static str,
    /// API version within the group.
    pub version: &'static str,
    /// `apiVersion` as manifests spell it.
    pub api_version: &'static str,
    /// The kind's name.
    pub name: &'static str,
    /// The resource in URLs.
    pub plural: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Lower applies first among nodes that do not depend on each other (identities and
    /// configuration before the workloads that use them); deletes run in reverse.
    pub apply_order: u8,
}

// A table row; positional so the table reads as one line per kind.
#[allow(clippy::too_many_arguments)]
const fn info(
    kind: Kind,
    group: &'static str,
    version: &'static str,
    api_version: &'static str,
    name: &'static str,
    plural: &'static str,
    namespaced: bool,
    apply_order: u8,
) -> KindInfo {
    KindInfo { kind, group, version, api_version, name, plural, namespaced, apply_order }
}

/// Every kind, in [`Kind`] order.
pub const KINDS: &[KindInfo] = &[
    info(Kind::Namespace, "", "v1", "v1", "Namespace", "namespaces", false, 0),
    info(Kind::ServiceAccount, "", "v1", "v1", "ServiceAccount", "serviceaccounts", true, 1),
    info(Kind::Role, "rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1", "Role", "roles", true, 1),
    info(Kind::RoleBinding, "rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", true, 2),
    info(Kind::ClusterRole, "rbac.authorization.k8s.io", "v1", "rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", false, 1),
    info(
        Kind::ClusterRoleBinding,
        "rbac.authorization.k8s.io",
        "v1",
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        2,
    ),
    info(Kind::Secret, "", "v1", "v1", "Secret", "secrets", true, 2),
    info(Kind::ConfigMap, "", "v1", "v1", "ConfigMap", "configmaps", true, 2),
    info(Kind::Service, "", "v1", "v1", "Service", "services", true, 3),
    info(Kind::StatefulSet, "apps", "v1", "apps/v1", "StatefulSet", "statefulsets", true, 4),
    info(Kind::Deployment, "apps", "v1", "apps/v1", "Deployment", "deployments", true, 4),
    info(Kind::CronJob, "batch", "v1", "batch/v1", "CronJob", "cronjobs", true, 5),
    info(Kind::PodDisruptionBudget, "policy", "v1", "policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", true, 5),
    info(Kind::NetworkPolicy, "networking.k8s.io", "v1", "networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", true, 5),
    info(Kind::EtcdBackupConfig, "kubermatic.k8c.io", "v1", "kubermatic.k8c.io/v1", "EtcdBackupConfig", "etcdbackupconfigs", true, 5),
];

impl Kind {
    /// The kind's row of [`KINDS`].
    pub fn info(self) -> &'static KindInfo {
        let row = &KINDS[self as usize];
        debug_assert_eq!(row.kind, self, "KINDS is in Kind order");
        row
    }

    /// The kind with this `apiVersion` and name, if kkp writes it.
    pub fn lookup(api_version: &str, name: &str) -> Option<Kind> {
        KINDS.iter().find(|k| k.api_version == api_version && k.name == name).map(|k| k.kind)
    }

    /// The kind's name, e.g. `StatefulSet`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// `apiVersion`, e.g. `apps/v1`.
    pub fn api_version(self) -> &'static str {
        self.info().api_version
    }

    /// The address segment: the name in lower case, e.g. `statefulset`.
    pub fn segment(self) -> String {
        self.name().to_ascii_lowercase()
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self.info().namespaced
    }

    /// Whether pods mount objects of this kind (Secrets, ConfigMaps): then the digest of one
    /// rendered whole is the fingerprint that rolls the pods mounting it.
    pub fn is_mounted(self) -> bool {
        matches!(self, Kind::Secret | Kind::ConfigMap)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_kind_order_and_round_trips() {
        for (i, row) in KINDS.iter().enumerate() {
            assert_eq!(row.kind as usize, i, "{} is out of order", row.name);
            assert_eq!(Kind::lookup(row.api_version, row.name), Some(row.kind));
            let expected = if row.group.is_empty() { row.version.to_string() } else { format!("{}/{}", row.group, row.version) };
            assert_eq!(row.api_version, expected);
        }
        assert_eq!(Kind::lookup("apps/v1", "Secret"), None);
        assert_eq!(Kind::lookup("v1", "Pod"), None);
    }

    #[test]
    fn plurals_are_the_api_servers() {
        assert_eq!(Kind::PodDisruptionBudget.info().plural, "poddisruptionbudgets");
        assert_eq!(Kind::NetworkPolicy.info().plural, "networkpolicies");
        assert_eq!(Kind::EtcdBackupConfig.info().plural, "etcdbackupconfigs");
        assert_eq!(Kind::StatefulSet.segment(), "statefulset");
    }
}
