//! The kinds the server serves: group, version, plural, kind and scope.

/// One resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural name in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced (else cluster-scoped).
    pub namespaced: bool,
    /// kubectl short names.
    pub short_names: Vec<String>,
}

impl Resource {
    /// A resource; the singular is the lowercased kind.
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool, short_names: &[&str]) -> Self {
        Resource {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced,
            short_names: short_names.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Discovery categories: the kinds `kubectl get all` lists.
    pub fn categories(&self) -> Vec<&'static str> {
        let all = matches!((self.group.as_str(), self.kind.as_str()), ("", "Pod" | "Service") | ("apps", _));
        if all { vec!["all"] } else { vec![] }
    }

    /// Whether the workload gets a simulated status.
    pub fn is_workload(&self) -> bool {
        self.group == "apps" && matches!(self.kind.as_str(), "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet")
    }
}

/// The built-in kinds.
pub fn builtin() -> Vec<Resource> {
    vec![
        Resource::new("", "v1", "namespaces", "Namespace", false, &["ns"]),
        Resource::new("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
        Resource::new("", "v1", "secrets", "Secret", true, &[]),
        Resource::new("", "v1", "services", "Service", true, &["svc"]),
        Resource::new("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
        Resource::new("", "v1", "pods", "Pod", true, &["po"]),
        Resource::new("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, &["pvc"]),
        Resource::new("", "v1", "events", "Event", true, &["ev"]),
        Resource::new("apps", "v1", "deployments", "Deployment", true, &["deploy"]),
        Resource::new("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"]),
        Resource::new("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"]),
        Resource::new("apps", "v1", "replicasets", "ReplicaSet", true, &["rs"]),
        Resource::new("batch", "v1", "cronjobs", "CronJob", true, &["cj"]),
        Resource::new("batch", "v1", "jobs", "Job", true, &[]),
        Resource::new("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, &["pdb"]),
        Resource::new("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", true, &["netpol"]),
        Resource::new("rbac.authorization.k8s.io", "v1", "roles", "Role", true, &[]),
        Resource::new("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, &[]),
        Resource::new("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, &[]),
        Resource::new("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, &[]),
        Resource::new("coordination.k8s.io", "v1", "leases", "Lease", true, &[]),
    ]
}
