//! Topology: KKP documents in, a validated and fully defaulted [`Topology`] out.
//!
//! Input is multi-document YAML in KKP's own shape (`Seed`, `Cluster`,
//! `KubermaticConfiguration`, kubeconfig `Secret`s), from files or directories. Validation
//! follows KKP's webhooks and defaults follow KKP's defaulting code; every problem is reported
//! with `file:line`, the object it concerns and how to fix it. Nothing here renders objects or
//! touches a cluster.

mod documents;
mod features;
pub mod generate;
mod kkp;
mod resolve;
mod schema;
pub mod versions;

pub use documents::{Source, locate_in_file};
pub use versions::Versions;

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Errors while loading a topology.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not UTF-8.
    #[error("{}:{line}: byte {offset} is not UTF-8\n  fix: save the file as UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Offset of the first invalid byte.
        offset: usize,
        /// Its 1-based line.
        line: usize,
    },
    /// A directory entry named `*.yaml` is not a regular file.
    #[error("{}: named like a topology file, but it is {what}\n  fix: remove it, rename it, or point it at a file", path.display())]
    NotAFile {
        /// The entry.
        path: PathBuf,
        /// What it is.
        what: String,
    },
    /// A directory held no YAML files.
    #[error("{}: no *.yaml or *.yml files in this directory", path.display())]
    NoDocuments {
        /// The directory.
        path: PathBuf,
    },
    /// The documents were read but are not a valid topology.
    #[error("{}", Diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
}

/// `Result` with this module's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One validation problem: where, about what, what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where in the input.
    pub source: Source,
    /// The object concerned, e.g. `cluster "abc"`.
    pub subject: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}\n  fix: {}", self.source, self.subject, self.message, self.fix)
    }
}

struct Diagnostics<'a>(&'a [Diagnostic]);

impl fmt::Display for Diagnostics<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Something worth telling the user that does not stop the load (an unmodelled field, an
/// ignored document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Where in the input.
    pub source: Source,
    /// What was noticed.
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.message)
    }
}

/// The desired world, validated and defaulted. Maps are ordered, so iteration is
/// deterministic.
#[derive(Debug, Clone)]
pub struct Topology {
    /// `KubermaticConfiguration.spec.ingress.domain`.
    pub domain: String,
    /// Seeds by name.
    pub seeds: BTreeMap<String, Seed>,
    /// User clusters by name (cluster names are global in KKP).
    pub clusters: BTreeMap<String, Cluster>,
    /// The Kubernetes version rules (`KubermaticConfiguration.spec.versions`, KKP's defaults
    /// where empty): supported versions, default, allowed updates.
    pub versions: Versions,
    /// Kubeconfig Secrets found among the documents, by (namespace, name).
    pub kubeconfig_secrets: BTreeMap<(String, String), KubeconfigSecret>,
    /// Non-fatal observations, in input order.
    pub notes: Vec<Note>,
}

impl Topology {
    /// Whether a cluster's control plane may move from `from` to `to` under the configured
    /// update rules (see [`Versions::upgrade_allowed`]); a downgrade never may.
    pub fn upgrade_allowed(&self, from: &semver::Version, to: &semver::Version) -> std::result::Result<(), String> {
        self.versions.upgrade_allowed(from, to)
    }
}

/// A seed: a cluster hosting user-cluster control planes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    /// `metadata.name`.
    pub name: String,
    /// `spec.country`.
    pub country: Option<String>,
    /// `spec.location`.
    pub location: Option<String>,
    /// The expose strategy clusters inherit (seed, else configuration, else `NodePort`).
    pub expose_strategy: ExposeStrategy,
    /// The name used in user-cluster DNS names (`seedDNSOverwrite`, else the seed name).
    pub dns_name: String,
    /// Datacenters this seed serves.
    pub datacenters: BTreeMap<String, Datacenter>,
    /// `spec.kubeconfig`: the Secret holding the seed's kubeconfig.
    pub kubeconfig: Option<KubeconfigRef>,
    /// `spec.proxySettings`: the HTTP proxy worker nodes use.
    pub proxy: Option<Proxy>,
    /// `spec.etcdBackupRestore` with a default destination: every cluster's default backups.
    pub etcd_backups: Option<EtcdBackups>,
    /// Where the Seed document starts.
    #[serde(skip)]
    pub source: Source,
}

/// Where a seed's kubeconfig lives (`Seed.spec.kubeconfig`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KubeconfigRef {
    /// Secret namespace (defaults to `kubermatic`).
    pub namespace: String,
    /// Secret name.
    pub name: String,
    /// Key in the Secret's data (defaults to `kubeconfig`).
    pub key: String,
}

/// A datacenter: a place user clusters can be created in; belongs to exactly one seed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Datacenter {
    /// The key in `Seed.spec.datacenters`.
    pub name: String,
    /// The seed that serves it.
    pub seed: String,
    /// The one provider block's name (`aws`, `gcp`, ...).
    pub provider: String,
    /// `country`.
    pub country: Option<String>,
    /// `location`.
    pub location: Option<String>,
    /// `spec.apiServerServiceType`, overriding the type of `apiserver-external`.
    pub apiserver_service_type: Option<ServiceType>,
    /// The provider block (`spec.<provider>`: region, images, ...), as written.
    pub provider_settings: serde_json::Value,
    /// Where the datacenter is declared.
    #[serde(skip)]
    pub source: Source,
}

/// A user cluster with every KKP default applied. Its serialised form is everything rendering
/// reads, which is what makes the per-cluster input digest sound.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// `metadata.name`; the control plane lives in namespace `cluster-<name>`.
    pub name: String,
    /// `spec.humanReadableName` (display only).
    pub human_readable_name: Option<String>,
    /// The seed hosting the control plane (from the datacenter).
    pub seed: String,
    /// `spec.cloud.dc`.
    pub datacenter: String,
    /// The datacenter's provider.
    pub provider: String,
    /// `spec.version`, a supported version (`Topology::versions`); the configured default when
    /// the cluster names none.
    pub version: semver::Version,
    /// `spec.exposeStrategy` (defaulted from the seed).
    pub expose_strategy: ExposeStrategy,
    /// The type of Service `apiserver-external`.
    pub apiserver_service_type: ServiceType,
    /// `<cluster>.<seed dns name>.<domain>`: the apiserver's external name.
    pub external_name: String,
    /// Cluster networking.
    pub network: Network,
    /// etcd settings.
    pub etcd: Etcd,
    /// `componentsOverride.apiserver.replicas`.
    pub apiserver_replicas: i32,
    /// `componentsOverride.prometheus.replicas`.
    pub prometheus_replicas: i32,
    /// The NodePort range passed to the apiserver.
    pub node_port_range: String,
    /// Key algorithm of the main PKI (KKP: RSA-2048; the KubermaticConfiguration annotation
    /// `kkp.k8c.io/key-algorithm: ECDSA-P256` selects ECDSA P-256).
    pub key_algorithm: crate::pki::KeyAlgorithm,
    /// How the control plane reaches the nodes (`clusterNetwork.konnectivityEnabled`).
    pub tunnel: Tunnel,
    /// `spec.pause`: kkp leaves the cluster alone.
    pub paused: bool,
    /// The cloud provider settings of the cluster and its datacenter.
    pub cloud: Cloud,
    /// `spec.cniPlugin` (KKP's default: cilium, canal on edge).
    pub cni: Cni,
    /// `spec.features`, as written.
    pub features: BTreeMap<String, bool>,
    /// `spec.kubernetesDashboard.enabled` (KKP's default: on).
    pub kubernetes_dashboard: bool,
    /// The seed's `proxySettings`, which KKP passes to the components that reach out.
    pub seed_proxy: Option<Proxy>,
    /// The PEM bundle control-plane components trust for outbound TLS, which KKP ships as
    /// ConfigMap `ca-bundle` (`KubermaticConfiguration.spec.caBundle`). Empty when the
    /// topology names none.
    pub ca_bundle: String,
    /// `spec.pauseReason`: why the cluster is paused, for display (rendering does not read it,
    /// so it stays out of the input digest).
    #[serde(skip)]
    pub pause_reason: Option<String>,
    /// The OIDC issuer the apiserver trusts, when KKP's `OpenIDAuthPlugin` feature gate is on
    /// (KubermaticConfiguration `spec.featureGates`; issuer and client from `spec.auth`).
    pub oidc: Option<Oidc>,
    /// Where the Cluster document starts.
    #[serde(skip)]
    pub source: Source,
    /// The `project-id` label: the KKP project the cluster belongs to (the user-cluster webhook
    /// checks project quotas with it).
    pub project_id: Option<String>,
    /// The per-cluster Prometheus' settings (KubermaticConfiguration `spec.userCluster.monitoring`).
    pub monitoring: Monitoring,
    /// The seed's default etcd backups, when it has a default destination.
    pub etcd_backups: Option<EtcdBackups>,
    /// `metadata.labels`, for policy rules and rollout selectors (rendering reads none, so they
    /// stay out of the input digest).
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
}

/// KKP's default etcd backups of every cluster on a seed (EtcdBackupConfig `default-backups`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackups {
    /// The seed's `defaultDestination`.
    pub destination: String,
    /// Minutes between backups (seed `backupInterval`, else the configuration's, else 20).
    pub interval_minutes: u64,
    /// Backups kept (seed `backupCount`, else the configuration's; none: the controller's 20).
    pub keep: Option<i32>,
}

/// What KKP's per-cluster Prometheus scrapes and alerts on beyond (or instead of) its defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Monitoring {
    /// The pod annotation prefix that marks user-cluster pods for scraping (KKP's default
    /// `monitoring.kubermatic.io`).
    pub scrape_annotation_prefix: String,
    /// Scrape jobs appended to KKP's (a YAML list), empty for none.
    pub custom_scraping_configs: String,
    /// Rule groups for `rules-custom.yaml` (YAML with `groups`), empty for none.
    pub custom_rules: String,
    /// Whether KKP's own rules are left out.
    pub disable_default_rules: bool,
    /// Whether KKP's own scrape jobs are left out.
    pub disable_default_scraping_configs: bool,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            scrape_annotation_prefix: "monitoring.kubermatic.io".into(),
            custom_scraping_configs: String::new(),
            custom_rules: String::new(),
            disable_default_rules: false,
            disable_default_scraping_configs: false,
        }
    }
}

impl Cluster {
    /// The control-plane namespace on the seed.
    pub fn namespace(&self) -> String {
        namespace_of(&self.name)
    }
}

/// The control-plane namespace of the cluster named `cluster` (KKP's `cluster-NAME`), for
/// callers that have only the name.
pub fn namespace_of(cluster: &str) -> String {
    format!("cluster-{cluster}")
}

/// How the control plane reaches the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Tunnel {
    /// Konnectivity (KKP's only tunnel since 2.26): a proxy-server sidecar in the apiserver.
    Konnectivity,
    /// OpenVPN (legacy; `konnectivityEnabled: false`): an openvpn-server Deployment and an
    /// OpenVPN client sidecar in the apiserver.
    OpenVpn,
}

/// An OIDC issuer (KubermaticConfiguration `spec.auth`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Oidc {
    /// `spec.auth.tokenIssuer` (KKP's default: `https://<ingress domain>/dex`).
    pub issuer_url: String,
    /// `spec.auth.issuerClientID` (KKP's default: `kubermaticIssuer`).
    pub client_id: String,
}

/// A Secret reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// Cloud provider settings of a user cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cloud {
    /// The cluster's `spec.cloud.<provider>` block, as written.
    pub cluster_settings: serde_json::Value,
    /// The datacenter's `spec.<provider>` block (region, ...), as written.
    pub datacenter_settings: serde_json::Value,
    /// `spec.cloud.<provider>.credentialsReference`.
    pub credentials: Option<SecretRef>,
}

/// The CNI plugin of a user cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cni {
    /// `canal`, `cilium` or `none`.
    pub plugin: String,
    /// Its version, if pinned.
    pub version: Option<String>,
}

/// HTTP proxy settings.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    /// `httpProxy`.
    pub http_proxy: Option<String>,
    /// `noProxy`.
    pub no_proxy: Option<String>,
}

/// Networking of a user cluster (`spec.clusterNetwork`, defaulted).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Network {
    /// Pod CIDRs.
    pub pods: Vec<ipnet::IpNet>,
    /// Service CIDRs.
    pub services: Vec<ipnet::IpNet>,
    /// `dnsDomain`.
    pub dns_domain: String,
    /// `proxyMode`.
    pub proxy_mode: String,
    /// `nodeCidrMaskSizeIPv4`.
    pub node_cidr_mask_size_ipv4: u8,
    /// The legacy node-access network OpenVPN routes.
    pub node_access_network: ipnet::IpNet,
    /// `tunnelingAgentIP` (Tunneling only).
    pub tunneling_agent_ip: Option<IpAddr>,
    /// `nodeLocalDNSCacheEnabled` (KKP's default: on).
    pub node_local_dns_cache: bool,
}

impl Network {
    /// The in-cluster apiserver IP: the first address of the first service CIDR.
    pub fn apiserver_ip(&self) -> Option<IpAddr> {
        self.services.first().and_then(|net| net.hosts().next())
    }
}

/// etcd settings of a user cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Etcd {
    /// Members (3..9).
    pub cluster_size: i32,
    /// StorageClass of the data volume.
    pub storage_class: String,
    /// Size of the data volume (a Kubernetes quantity).
    pub disk_size: String,
    /// Whether KKP's etcd-launcher feature is on (default), which widens the TLS SANs to 9 members.
    pub launcher: bool,
    /// The backend quota in GiB (`quotaBackendGb`); 0 keeps etcd's default.
    pub quota_backend_gb: i64,
}

/// How a user cluster's apiserver is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExposeStrategy {
    /// Through the seed's nodeport-proxy, one NodePort per cluster.
    NodePort,
    /// Through a per-cluster LoadBalancer.
    LoadBalancer,
    /// Through SNI tunneling on the nodeport-proxy.
    Tunneling,
}

impl ExposeStrategy {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "NodePort" => Some(Self::NodePort),
            "LoadBalancer" => Some(Self::LoadBalancer),
            "Tunneling" => Some(Self::Tunneling),
            _ => None,
        }
    }
}

/// A Kubernetes Service type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ServiceType {
    /// `ClusterIP`.
    ClusterIP,
    /// `NodePort`.
    NodePort,
    /// `LoadBalancer`.
    LoadBalancer,
}

impl ServiceType {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "ClusterIP" => Some(Self::ClusterIP),
            "NodePort" => Some(Self::NodePort),
            "LoadBalancer" => Some(Self::LoadBalancer),
            _ => None,
        }
    }

    /// The name Kubernetes uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClusterIP => "ClusterIP",
            Self::NodePort => "NodePort",
            Self::LoadBalancer => "LoadBalancer",
        }
    }
}

/// A kubeconfig Secret from the topology. Its content is never printed or stored by kkp.
#[derive(Clone)]
pub struct KubeconfigSecret {
    /// Decoded `data` and `stringData`, by key.
    pub data: BTreeMap<String, String>,
}

impl fmt::Debug for KubeconfigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeconfigSecret").field("keys", &self.data.keys().collect::<Vec<_>>()).finish()
    }
}

/// Loads and validates the documents under `paths`.
pub fn load(paths: &[PathBuf]) -> Result<Topology> {
    let files = documents::expand(paths)?;
    let mut docs = Vec::new();
    for file in &files {
        docs.extend(documents::read(file)?);
    }
    resolve::resolve(&docs)
}

/// Loads documents from in-memory bytes, as if read from `name`: bytes that are not UTF-8
/// are refused with their offset (for tests and fuzzing).
pub fn load_bytes(name: &Path, bytes: &[u8]) -> Result<Topology> {
    load_str(name, &documents::decode(name, bytes)?)
}

/// Loads documents from one in-memory text, as if read from `name` (for tests and fuzzing).
pub fn load_str(name: &Path, text: &str) -> Result<Topology> {
    resolve::resolve(&documents::split(name, text))
}
