//! KKP's documents as they appear in YAML (`kubermatic.k8c.io/v1` `Seed`, `Cluster`,
//! `KubermaticConfiguration`, and a `v1` `Secret` holding a seed kubeconfig).
//!
//! Only the fields kkp uses are modelled. Other KKP fields are tolerated: the loader collects
//! the paths serde skipped and reports them as notes, except `status` and server-side
//! metadata, which are ignored silently. Keys KKP itself does not have are errors (see
//! `schema`).

use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// `apiVersion` and `kind`, read first to pick the document type.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
}

/// Object metadata. Labels, annotations and server-side fields (`uid`, `resourceVersion`,
/// `managedFields`, ...) are not modelled and not reported.
#[derive(Debug, Default, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub name: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Metadata keys ignored without a note: labels and annotations steer nothing kkp renders, and
/// the rest is written by the API server.
pub const SILENT_METADATA: &[&str] = &[
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "finalizers",
    "ownerReferences",
    "generateName",
];

/// `Seed`.
#[derive(Debug, Deserialize)]
pub struct SeedDoc {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: SeedSpec,
}

/// `Seed.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedSpec {
    pub country: Option<String>,
    pub location: Option<String>,
    pub kubeconfig: Option<ObjectReference>,
    #[serde(default)]
    pub datacenters: BTreeMap<String, DatacenterDoc>,
    #[serde(rename = "seedDNSOverwrite")]
    pub seed_dns_overwrite: Option<String>,
    pub expose_strategy: Option<String>,
    pub default_component_settings: Option<ComponentSettings>,
    pub proxy_settings: Option<ProxySettings>,
    pub etcd_backup_restore: Option<EtcdBackupRestore>,
}

/// `Seed.spec.etcdBackupRestore`: where KKP's backup controller stores etcd snapshots.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdBackupRestore {
    /// Destination name -> bucket settings (not read: KKP's backup controller reads them).
    #[serde(default)]
    pub destinations: BTreeMap<String, serde_json::Value>,
    pub default_destination: Option<String>,
    pub backup_interval: Option<String>,
    pub backup_count: Option<i32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxySettings {
    pub http_proxy: Option<String>,
    pub no_proxy: Option<String>,
}

/// A reference to another object (`Seed.spec.kubeconfig`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default)]
    pub name: String,
    pub namespace: Option<String>,
    pub field_path: Option<String>,
}

/// `Seed.spec.datacenters.<name>`.
#[derive(Debug, Default, Deserialize)]
pub struct DatacenterDoc {
    pub country: Option<String>,
    pub location: Option<String>,
    /// Provider blocks and common options; classified by the resolver, which reports keys it
    /// does not know.
    #[serde(default)]
    pub spec: BTreeMap<String, Value>,
}

/// `Cluster`.
#[derive(Debug, Deserialize)]
pub struct ClusterDoc {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ClusterSpec,
}

/// `Cluster.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    pub human_readable_name: Option<String>,
    pub version: Option<String>,
    /// `dc`, `providerName` and one provider block.
    #[serde(default)]
    pub cloud: BTreeMap<String, Value>,
    pub expose_strategy: Option<String>,
    pub cluster_network: Option<ClusterNetwork>,
    pub components_override: Option<ComponentSettings>,
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
    pub pause: Option<bool>,
    pub pause_reason: Option<String>,
    pub kubernetes_dashboard: Option<Enabled>,
    pub cni_plugin: Option<CniPlugin>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Enabled {
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CniPlugin {
    #[serde(rename = "type")]
    pub plugin: Option<String>,
    pub version: Option<String>,
}

/// `Cluster.spec.clusterNetwork`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterNetwork {
    pub pods: Option<NetworkRanges>,
    pub services: Option<NetworkRanges>,
    #[serde(rename = "nodeCidrMaskSizeIPv4")]
    pub node_cidr_mask_size_ipv4: Option<u8>,
    pub dns_domain: Option<String>,
    pub proxy_mode: Option<String>,
    #[serde(rename = "tunnelingAgentIP")]
    pub tunneling_agent_ip: Option<String>,
    pub konnectivity_enabled: Option<bool>,
    #[serde(rename = "nodeLocalDNSCacheEnabled")]
    pub node_local_dns_cache_enabled: Option<bool>,
}

/// `pods` / `services` in `clusterNetwork`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRanges {
    #[serde(default)]
    pub cidr_blocks: Vec<String>,
}

/// `componentsOverride` and `Seed.spec.defaultComponentSettings`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSettings {
    pub apiserver: Option<ReplicaSettings>,
    pub etcd: Option<EtcdSettings>,
    pub prometheus: Option<ReplicaSettings>,
}

/// A component whose only modelled setting is its replica count.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ReplicaSettings {
    pub replicas: Option<i32>,
}

/// `componentsOverride.etcd`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdSettings {
    pub cluster_size: Option<i32>,
    pub storage_class: Option<String>,
    pub disk_size: Option<String>,
    #[serde(rename = "quotaBackendGb")]
    pub quota_backend_gb: Option<i64>,
}

/// `KubermaticConfiguration`.
#[derive(Debug, Deserialize)]
pub struct ConfigurationDoc {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: ConfigurationSpec,
}

/// `KubermaticConfiguration.spec`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationSpec {
    pub ingress: Option<Ingress>,
    pub expose_strategy: Option<String>,
    pub user_cluster: Option<UserClusterDefaults>,
    #[serde(default)]
    pub feature_gates: BTreeMap<String, bool>,
    pub versions: Option<Versioning>,
    pub ca_bundle: Option<TypedLocalObjectReference>,
    pub auth: Option<Auth>,
    pub seed_controller: Option<SeedController>,
}

/// `KubermaticConfiguration.spec.seedController`: the backup defaults seeds inherit.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedController {
    pub backup_interval: Option<String>,
    pub backup_count: Option<i32>,
}

/// `KubermaticConfiguration.spec.versions`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Versioning {
    #[serde(default)]
    pub versions: Vec<String>,
    pub default: Option<String>,
    #[serde(default)]
    pub updates: Vec<UpdateRule>,
    #[serde(default)]
    pub provider_incompatibilities: Vec<Incompatibility>,
}

/// `spec.versions.updates[]`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateRule {
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    pub automatic: Option<bool>,
    pub automatic_node_update: Option<bool>,
}

/// `spec.versions.providerIncompatibilities[]`.
#[derive(Debug, Default, Deserialize)]
pub struct Incompatibility {
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub condition: String,
    #[serde(default)]
    pub operation: String,
}

/// `spec.caBundle`: a ConfigMap in the configuration's namespace (KKP ignores `apiGroup` and `kind`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypedLocalObjectReference {
    #[serde(default)]
    pub name: String,
    /// Read so that it is not reported as unmodelled: KKP ignores it too.
    #[serde(rename = "apiGroup")]
    _api_group: Option<serde::de::IgnoredAny>,
    #[serde(rename = "kind")]
    _kind: Option<serde::de::IgnoredAny>,
}

/// `KubermaticConfiguration.spec.auth`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    pub token_issuer: Option<String>,
    #[serde(rename = "issuerClientID")]
    pub issuer_client_id: Option<String>,
}

/// `KubermaticConfiguration.spec.ingress`.
#[derive(Debug, Default, Deserialize)]
pub struct Ingress {
    pub domain: Option<String>,
}

/// `KubermaticConfiguration.spec.userCluster`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserClusterDefaults {
    pub apiserver_replicas: Option<i32>,
    pub etcd_volume_size: Option<String>,
    pub node_port_range: Option<String>,
    pub monitoring: Option<UserClusterMonitoring>,
}

/// `KubermaticConfiguration.spec.userCluster.monitoring`: the per-cluster Prometheus.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserClusterMonitoring {
    pub disable_default_rules: Option<bool>,
    pub disable_default_scraping_configs: Option<bool>,
    pub custom_rules: Option<String>,
    pub custom_scraping_configs: Option<String>,
    pub scrape_annotation_prefix: Option<String>,
}

/// A `v1` `Secret`, as KKP's examples ship a seed's kubeconfig beside its `Seed`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretDoc {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    #[serde(default)]
    pub string_data: BTreeMap<String, String>,
}

/// A `v1` `ConfigMap`: the CA bundle (`KubermaticConfiguration.spec.caBundle`) ships as one.
#[derive(Debug, Deserialize)]
pub struct ConfigMapDoc {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
}

/// Provider block names a datacenter (and a cluster's `spec.cloud`) may carry; exactly one is set.
pub const PROVIDERS: &[&str] = &[
    "alibaba",
    "anexia",
    "aws",
    "azure",
    "baremetal",
    "bringyourown",
    "digitalocean",
    "edge",
    "fake",
    "gcp",
    "hetzner",
    "kubevirt",
    "nutanix",
    "openstack",
    "vmwareclouddirector",
    "vsphere",
];
