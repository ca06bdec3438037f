//! Roles: what a node is for. Render sets a role on every node and the state records it;
//! plan and apply decide by role (destroy protection, re-issue cascades, readiness waits,
//! what Secret content is made at apply time), never by matching names or addresses.

use crate::object::Kind;
use serde::{Deserialize, Serialize};

/// What a node is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A seed (logical: no object, recorded so changes to its settings show).
    Seed,
    /// A datacenter of a seed (logical).
    Datacenter,
    /// A namespace: `kubermatic` on a seed, or a user cluster's control-plane namespace,
    /// which holds everything of that control plane.
    Namespace,
    /// A certificate authority Secret: every certificate of its cluster chains to it.
    CertificateAuthority,
    /// A leaf certificate Secret signed by a CA in the same cluster.
    Certificate,
    /// A bare key pair Secret (the service-account signing key): tokens it signed die with it.
    KeyPair,
    /// A Secret of random tokens (static token users), made once at apply.
    Tokens,
    /// A kubeconfig Secret: a client certificate signed by a CA (or a token) and the server
    /// to reach, made at apply.
    Kubeconfig,
    /// A copy of credentials kept elsewhere on the seed (the cloud provider's credentials
    /// Secret), or a Secret made from them (a cloud config), made at apply: plans and state hold
    /// where it comes from, never its content.
    Credentials,
    /// Configuration a workload reads (ConfigMap).
    Config,
    /// A Service.
    Service,
    /// A workload that holds data on its volumes (etcd): replacing it loses that data.
    DataStore,
    /// A workload that holds no data worth keeping (Deployments, Prometheus on an emptyDir).
    Workload,
    /// A scheduled job (CronJob).
    Job,
    /// A PodDisruptionBudget.
    DisruptionBudget,
    /// An identity pods run as (ServiceAccount).
    Identity,
    /// Permissions (Role, RoleBinding, ClusterRole, ClusterRoleBinding, NetworkPolicy).
    Access,
    /// Backup settings (KKP's EtcdBackupConfig).
    BackupConfig,
}

impl Role {
    /// True for Secrets whose content kkp makes at apply time (keys, certificates, tokens,
    /// kubeconfigs, copied credentials); their bodies in plans and state are requests, never
    /// the content.
    pub fn is_issued(self) -> bool {
        matches!(self, Role::CertificateAuthority | Role::Certificate | Role::KeyPair | Role::Tokens | Role::Kubeconfig | Role::Credentials)
    }

    /// True for workloads that run pods; the ones others depend on are waited for.
    pub fn is_workload(self) -> bool {
        matches!(self, Role::DataStore | Role::Workload)
    }

    /// Why replacing a node of this role destroys something that cannot be made again, if it
    /// does.
    pub fn replace_loses(self) -> Option<&'static str> {
        match self {
            Role::DataStore => Some("it holds the cluster's data; replacing it loses its volumes"),
            Role::CertificateAuthority => Some("every certificate of the cluster chains to it; replacing it invalidates them all"),
            Role::KeyPair => Some("it signed every service-account token of the cluster; replacing it invalidates them all"),
            _ => None,
        }
    }

    /// Why deleting a node of this role (in a user cluster) destroys something that cannot be
    /// made again, if it does.
    pub fn delete_loses(self) -> Option<&'static str> {
        match self {
            Role::Namespace => Some("deleting the namespace deletes the whole control plane, etcd volumes included"),
            other => other.replace_loses(),
        }
    }

    /// Deletion rank within a cluster or seed: higher is deleted first. Follows the kinds'
    /// apply order in reverse, with trust anchors (CAs, key pairs) after what they signed.
    pub fn delete_rank(self, kind: Option<Kind>) -> u8 {
        let Some(kind) = kind else { return 0 };
        let anchor = matches!(self, Role::CertificateAuthority | Role::KeyPair);
        // apply_order is at most 5; doubled so anchors fit between their kind and the one below.
        let rank = 2 * (kind.info().apply_order + 1);
        if anchor { rank - 1 } else { rank }
    }

    /// The role's name as plans and state spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Seed => "seed",
            Role::Datacenter => "datacenter",
            Role::Namespace => "namespace",
            Role::CertificateAuthority => "certificate-authority",
            Role::Certificate => "certificate",
            Role::KeyPair => "key-pair",
            Role::Tokens => "tokens",
            Role::Kubeconfig => "kubeconfig",
            Role::Credentials => "credentials",
            Role::Config => "config",
            Role::Service => "service",
            Role::DataStore => "data-store",
            Role::Workload => "workload",
            Role::Job => "job",
            Role::DisruptionBudget => "disruption-budget",
            Role::Identity => "identity",
            Role::Access => "access",
            Role::BackupConfig => "backup-config",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_go_before_what_they_mount_and_anchors_after_what_they_signed() {
        let rank = |role: Role, kind: Kind| role.delete_rank(Some(kind));
        assert!(rank(Role::DisruptionBudget, Kind::PodDisruptionBudget) > rank(Role::Workload, Kind::Deployment));
        assert!(rank(Role::Workload, Kind::Deployment) > rank(Role::Service, Kind::Service));
        assert!(rank(Role::Service, Kind::Service) > rank(Role::Certificate, Kind::Secret));
        assert!(rank(Role::Certificate, Kind::Secret) > rank(Role::CertificateAuthority, Kind::Secret));
        assert!(rank(Role::CertificateAuthority, Kind::Secret) > rank(Role::Identity, Kind::ServiceAccount));
        assert!(rank(Role::Identity, Kind::ServiceAccount) > rank(Role::Namespace, Kind::Namespace));
        assert!(rank(Role::Namespace, Kind::Namespace) > Role::Datacenter.delete_rank(None));
    }

    #[test]
    fn serialised_names_match_as_str() {
        for role in [Role::CertificateAuthority, Role::DataStore, Role::DisruptionBudget, Role::KeyPair] {
            assert_eq!(serde_json::to_value(role).unwrap(), serde_json::Value::String(role.as_str().into()));
        }
    }
}
