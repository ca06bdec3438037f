//! Secrets KKP makes from a cluster's cloud credentials: the `cloud-config` of the providers
//! whose config embeds them (Azure's JSON, GCP's, OpenStack's and vSphere's INI, VMware Cloud
//! Director's YAML), GCP's service account and KubeVirt's infra kubeconfig.
//!
//! [`CloudSecret`] holds the settings known at render time (the cluster's and datacenter's
//! provider fields), so it is part of the request and a settings change shows in the plan;
//! [`data`] makes the Secret's data at apply from it and the credentials Secret's data. Pure,
//! and credential values go only into the returned data: errors name keys, never values.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The Secret data key of every cloud config.
pub const CONFIG_KEY: &str = "config";
/// The key of the fake VMware UUID KKP writes beside every cloud config (kubernetes#65145).
pub const FAKE_VMWARE_UUID_KEY: &str = "fakeVmwareUUID";
/// Its value.
pub const FAKE_VMWARE_UUID: &str = "VMware-42 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00";

/// What a Secret made from the cloud credentials holds, with the settings it is made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum CloudSecret {
    /// Azure's cloud config (JSON).
    AzureConfig(Azure),
    /// GCP's cloud config (INI); its project comes from the service account.
    GcpConfig(Gcp),
    /// OpenStack's cloud config (INI).
    OpenstackConfig(Openstack),
    /// VMware Cloud Director's cloud config (YAML).
    VmwareCloudDirectorConfig(VmwareCloudDirector),
    /// vSphere's cloud config (INI).
    VsphereConfig(Vsphere),
    /// GCP's service account JSON (key `serviceAccount`, decoded from the credentials' base64).
    GoogleServiceAccount,
    /// KubeVirt's infra-cluster kubeconfig (key `infra-kubeconfig`).
    KubevirtInfraKubeconfig,
}

/// Azure settings (cluster `spec.cloud.azure`, datacenter `location`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Azure {
    /// Cluster `resourceGroup`.
    pub resource_group: String,
    /// Datacenter `location`.
    pub location: String,
    /// Cluster `vnet`.
    pub vnet: String,
    /// Cluster `subnet`.
    pub subnet: String,
    /// Cluster `routeTable`.
    pub route_table: String,
    /// Cluster `securityGroup`.
    pub security_group: String,
    /// Cluster `availabilitySet`.
    pub availability_set: String,
    /// Cluster `vnetResourceGroup`.
    pub vnet_resource_group: String,
    /// KKP's default is `standard`.
    pub load_balancer_sku: String,
}

/// GCP settings (cluster `network`, `subnetwork`; datacenter `region`, `zoneSuffixes`,
/// `regional`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gcp {
    /// The cluster's name (its node tag).
    pub cluster: String,
    /// Datacenter `region`.
    pub region: String,
    /// The datacenter's first zone suffix, which makes the local zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_suffix: Option<String>,
    /// Datacenter `regional`.
    pub regional: bool,
    /// Cluster `network` (empty or `global/networks/default` mean `default`).
    pub network: String,
    /// Cluster `subnetwork`.
    pub subnetwork: String,
}

/// OpenStack settings: the datacenter's, then the cluster's overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Openstack {
    /// Datacenter `authURL`.
    pub auth_url: String,
    /// Datacenter `region`.
    pub region: String,
    /// Unset means on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manage_security_groups: Option<bool>,
    /// Datacenter `loadBalancerProvider`.
    pub load_balancer_provider: String,
    /// Empty means `ROUND_ROBIN`.
    pub load_balancer_method: String,
    /// The cluster's, else the datacenter's; unset leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_octavia: Option<bool>,
    /// Datacenter `trustDevicePath`.
    pub trust_device_path: bool,
    /// Datacenter `ignoreVolumeAZ`.
    pub ignore_volume_az: bool,
    /// The cluster's, else the datacenter's; 0 leaves it out.
    pub node_volume_attach_limit: u64,
    /// Cluster `enableIngressHostname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ingress_hostname: Option<bool>,
    /// Cluster `ingressHostnameSuffix` (written only with the former).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_hostname_suffix: Option<String>,
    /// Load balancer classes by name: the datacenter's, overridden by the cluster's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub load_balancer_classes: BTreeMap<String, LoadBalancerClass>,
}

/// One OpenStack load balancer class (empty fields are left out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerClass {
    /// `floatingNetworkID`.
    pub floating_network_id: String,
    /// `floatingSubnetID`.
    pub floating_subnet_id: String,
    /// `floatingSubnet`.
    pub floating_subnet: String,
    /// `floatingSubnetTags`.
    pub floating_subnet_tags: String,
    /// `networkID`.
    pub network_id: String,
    /// `subnetID`.
    pub subnet_id: String,
    /// `memberSubnetID`.
    pub member_subnet_id: String,
}

/// VMware Cloud Director settings (datacenter `url`, cluster `vapp`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmwareCloudDirector {
    /// The cluster's name (its cluster ID).
    pub cluster: String,
    /// Datacenter `url` (a trailing `/api` is dropped).
    pub url: String,
    /// Empty means `kubernetes-<cluster>`.
    pub vapp: String,
}

/// vSphere settings (datacenter `endpoint`, `allowInsecure`, `datacenter`, `datastore`,
/// `cluster`; cluster `datastore`, `datastoreCluster`, `folder`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vsphere {
    /// The cluster's name (its working directory).
    pub cluster: String,
    /// Datacenter `endpoint`: the vCenter's URL.
    pub endpoint: String,
    /// Datacenter `allowInsecure`.
    pub allow_insecure: bool,
    /// Datacenter `datacenter`.
    pub datacenter: String,
    /// The datastore: the cluster's `datastore`, else its `datastoreCluster`, else the
    /// datacenter's default.
    pub datastore: String,
    /// Cluster `folder`.
    pub folder: String,
    /// The cluster name with the `vsphereCSIClusterID` feature, else the datacenter's cluster.
    pub cluster_id: String,
    /// Both address families, with an external cloud provider.
    pub dual_stack: bool,
}

/// Why a Secret could not be made. Never carries a credential value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A key the provider needs is not in the credentials Secret.
    #[error(
        "the cloud credentials Secret {secret} has no key {key:?}, which {provider} needs ({needs})\n  \
         fix: add it to the Secret on the seed (kubectl -n {namespace} patch secret {name} --type merge -p '{{\"stringData\":{{\"{key}\":\"<value>\"}}}}') \
         or to its document in the topology, then apply again"
    )]
    MissingKey {
        /// `namespace/name`.
        secret: String,
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The missing key.
        key: String,
        /// The provider that reads it.
        provider: &'static str,
        /// The keys the provider reads.
        needs: &'static str,
    },
    /// A credential or setting is there but unusable.
    #[error("{0}")]
    Invalid(String),
}

/// The credentials Secret's data, with where it came from for errors.
pub struct Credentials<'a> {
    /// The Secret's namespace.
    pub namespace: &'a str,
    /// The Secret's name.
    pub name: &'a str,
    /// Its data.
    pub data: &'a BTreeMap<String, Vec<u8>>,
}

impl Credentials<'_> {
    /// The value of `key`; a missing key is an error (KKP's secret key selector), an empty one
    /// is not.
    fn get(&self, key: &str, provider: &'static str, needs: &'static str) -> Result<String, Error> {
        match self.data.get(key) {
            Some(value) => Ok(String::from_utf8_lossy(value).into_owned()),
            None => Err(Error::MissingKey {
                secret: format!("{}/{}", self.namespace, self.name),
                namespace: self.namespace.into(),
                name: self.name.into(),
                key: key.into(),
                provider,
                needs,
            }),
        }
    }

    /// The first present of `keys` (KKP's fallbacks, e.g. `project` then `tenant`).
    fn first(&self, keys: &[&str], provider: &'static str, needs: &'static str) -> Result<String, Error> {
        keys.iter().find_map(|k| self.get(k, provider, needs).ok()).map_or_else(|| self.get(keys[0], provider, needs), Ok)
    }
}

const AZURE_KEYS: &str = "tenantID, subscriptionID, clientID, clientSecret";
const GCP_KEYS: &str = "serviceAccount, the base64 of the service account JSON";
const OPENSTACK_KEYS: &str = "domain, then applicationCredentialID and applicationCredentialSecret, or username, password, project (or tenant) and projectID (or tenantID)";
const VCD_KEYS: &str = "organization, vdc, then apiToken, or username and password";
const VSPHERE_KEYS: &str = "username and password, falling back to infraManagementUserUsername and infraManagementUserPassword when empty";
const KUBEVIRT_KEYS: &str = "kubeConfig";

/// The Secret data for `secret` made from `credentials`.
pub fn data(secret: &CloudSecret, credentials: &Credentials<'_>) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let single = |key: &str, value: Vec<u8>| Ok(BTreeMap::from([(key.to_string(), value)]));
    let config = match secret {
        CloudSecret::GoogleServiceAccount => return single("serviceAccount", gcp_service_account(credentials)?),
        CloudSecret::KubevirtInfraKubeconfig => {
            return single("infra-kubeconfig", credentials.get("kubeConfig", "KubeVirt", KUBEVIRT_KEYS)?.into_bytes());
        }
        CloudSecret::AzureConfig(settings) => azure(settings, credentials)?,
        CloudSecret::GcpConfig(settings) => gcp(settings, credentials)?,
        CloudSecret::OpenstackConfig(settings) => openstack(settings, credentials)?,
        CloudSecret::VmwareCloudDirectorConfig(settings) => vmware_cloud_director(settings, credentials)?,
        CloudSecret::VsphereConfig(settings) => vsphere(settings, credentials)?,
    };
    Ok(BTreeMap::from([
        (CONFIG_KEY.to_string(), config.into_bytes()),
        (FAKE_VMWARE_UUID_KEY.to_string(), FAKE_VMWARE_UUID.as_bytes().to_vec()),
    ]))
}

/// An INI file as KKP writes it for gcfg readers: `[Section]` or `[Section "sub"]`, `key = "value"`
/// with `\` and `"` escaped, booleans bare, a blank line between sections.
#[derive(Default)]
struct Ini {
    text: String,
}

impl Ini {
    fn section(&mut self, name: &str, subsection: Option<&str>) -> &mut Self {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        match subsection {
            Some(sub) => writeln!(self.text, "[{name} {}]", quote(sub)),
            None => writeln!(self.text, "[{name}]"),
        }
        .expect("writing to a String");
        self
    }

    fn string(&mut self, key: &str, value: &str) -> &mut Self {
        writeln!(self.text, "{key} = {}", quote(value)).expect("writing to a String");
        self
    }

    fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        writeln!(self.text, "{key} = {value}").expect("writing to a String");
        self
    }
}

/// A gcfg string value.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn azure(settings: &Azure, credentials: &Credentials<'_>) -> Result<String, Error> {
    let key = |k: &str| credentials.get(k, "Azure", AZURE_KEYS);
    // Field order is KKP's struct order; values are JSON strings, so serde_json escapes them as
    // Go's encoding/json does for the characters that occur in them.
    let config = serde_json::json!({
        "cloud": "AZUREPUBLICCLOUD",
        "tenantId": key("tenantID")?,
        "subscriptionId": key("subscriptionID")?,
        "aadClientId": key("clientID")?,
        "aadClientSecret": key("clientSecret")?,
        "resourceGroup": settings.resource_group,
        "location": settings.location,
        "vnetName": settings.vnet,
        "subnetName": settings.subnet,
        "routeTableName": settings.route_table,
        "securityGroupName": settings.security_group,
        "primaryAvailabilitySetName": settings.availability_set,
        "vnetResourceGroup": settings.vnet_resource_group,
        "useInstanceMetadata": false,
        "loadBalancerSku": settings.load_balancer_sku,
    });
    Ok(serde_json::to_string(&config).expect("JSON values serialise"))
}

fn gcp_service_account(credentials: &Credentials<'_>) -> Result<Vec<u8>, Error> {
    let encoded = credentials.get("serviceAccount", "GCP", GCP_KEYS)?;
    base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| {
        Error::Invalid(format!(
            "the cloud credentials Secret {}/{}: serviceAccount is not base64\n  fix: store the service account JSON base64-encoded under serviceAccount",
            credentials.namespace, credentials.name
        ))
    })
}

fn gcp(settings: &Gcp, credentials: &Credentials<'_>) -> Result<String, Error> {
    let account = gcp_service_account(credentials)?;
    let invalid = |what: &str| {
        Error::Invalid(format!(
            "the cloud credentials Secret {}/{}: the service account {what}\n  fix: store a GCP service account key (JSON with project_id), base64-encoded, under serviceAccount",
            credentials.namespace, credentials.name
        ))
    };
    let parsed: serde_json::Value = serde_json::from_slice(&account).map_err(|_| invalid("is not JSON"))?;
    let project = parsed
        .get("project_id")
        .and_then(serde_json::Value::as_str)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("has no project_id"))?;
    let suffix = settings.zone_suffix.as_deref().ok_or_else(|| {
        Error::Invalid(format!(
            "the GCP datacenter of cluster {} has no zoneSuffixes, which make its local zone\n  fix: set spec.gcp.zoneSuffixes in the datacenter (e.g. [a, b])",
            settings.cluster
        ))
    })?;
    // A network name with a slash is taken for a URL, so KKP's default path becomes `default`.
    let network = match settings.network.as_str() {
        "" | "global/networks/default" => "default",
        other => other,
    };
    let mut ini = Ini::default();
    ini.section("global", None)
        .string("project-id", project)
        .string("local-zone", &format!("{}-{suffix}", settings.region))
        .string("network-name", network)
        .string("subnetwork-name", &settings.subnetwork)
        .string("token-url", "nil")
        .bool("multizone", true)
        .bool("regional", settings.regional)
        .string("node-tags", &format!("kubernetes-cluster-{}", settings.cluster));
    Ok(ini.text)
}

fn openstack(settings: &Openstack, credentials: &Credentials<'_>) -> Result<String, Error> {
    let key = |k: &str| credentials.get(k, "OpenStack", OPENSTACK_KEYS);
    let domain = key("domain")?;
    let application_credential = credentials.data.get("applicationCredentialID").filter(|id| !id.is_empty()).is_some();
    let mut ini = Ini::default();
    let global = ini.section("Global", None).string("auth-url", &settings.auth_url).string("region", &settings.region);
    if application_credential {
        global
            .string("application-credential-id", &key("applicationCredentialID")?)
            .string("application-credential-secret", &key("applicationCredentialSecret")?);
    } else {
        let username = key("username")?;
        let password = key("password")?;
        let project = credentials.first(&["project", "tenant"], "OpenStack", OPENSTACK_KEYS)?;
        let project_id = credentials.first(&["projectID", "tenantID"], "OpenStack", OPENSTACK_KEYS)?;
        global
            .string("username", &username)
            .string("password", &password)
            .string("tenant-name", &project)
            .string("tenant-id", &project_id)
            .string("domain-name", &domain);
    }

    let method = if settings.load_balancer_method.is_empty() { "ROUND_ROBIN" } else { &settings.load_balancer_method };
    let lb = ini
        .section("LoadBalancer", None)
        .bool("manage-security-groups", settings.manage_security_groups.unwrap_or(true))
        .string("lb-version", "v2")
        .string("lb-provider", &settings.load_balancer_provider)
        .string("subnet-id", "")
        // KKP takes it from annotations its OpenStack provider sets; kkp runs no provider.
        .string("floating-network-id", "")
        .string("lb-method", method);
    if let Some(octavia) = settings.use_octavia {
        lb.bool("use-octavia", octavia);
    }
    if let Some(enable) = settings.enable_ingress_hostname {
        lb.bool("enable-ingress-hostname", enable);
        if let Some(suffix) = &settings.ingress_hostname_suffix {
            lb.string("ingress-hostname-suffix", suffix);
        }
    }

    let bs = ini
        .section("BlockStorage", None)
        .bool("ignore-volume-az", settings.ignore_volume_az)
        .bool("trust-device-path", settings.trust_device_path)
        .string("bs-version", "auto");
    if settings.node_volume_attach_limit != 0 {
        bs.string("node-volume-attach-limit", &settings.node_volume_attach_limit.to_string());
    }

    for (name, class) in settings.load_balancer_classes.iter().filter(|(name, _)| !name.is_empty()) {
        let section = ini.section("LoadBalancerClass", Some(name));
        for (k, v) in [
            ("floating-network-id", &class.floating_network_id),
            ("floating-subnet-id", &class.floating_subnet_id),
            ("floating-subnet", &class.floating_subnet),
            ("floating-subnet-tags", &class.floating_subnet_tags),
            ("network-id", &class.network_id),
            ("subnet-id", &class.subnet_id),
            ("member-subnet-id", &class.member_subnet_id),
        ] {
            if !v.is_empty() {
                section.string(k, v);
            }
        }
    }
    Ok(ini.text)
}

fn vmware_cloud_director(settings: &VmwareCloudDirector, credentials: &Credentials<'_>) -> Result<String, Error> {
    let key = |k: &str| credentials.get(k, "VMware Cloud Director", VCD_KEYS);
    let organization = key("organization")?;
    let vdc = key("vdc")?;
    // KKP reads the login too, though the config does not hold it: fail as it does.
    let token = credentials.data.get("apiToken").filter(|t| !t.is_empty());
    if token.is_none() {
        key("username")?;
        key("password")?;
    }
    let vapp = if settings.vapp.is_empty() { format!("kubernetes-{}", settings.cluster) } else { settings.vapp.clone() };
    let host = settings.url.strip_suffix("/api").unwrap_or(&settings.url);
    // yaml.v3's layout: four-space indent, keys in KKP's struct order, scalars quoted only
    // where YAML would read them as something else.
    let scalar = |v: &str| serde_saphyr::to_string(&v).expect("strings serialise").trim_end().to_string();
    Ok(format!(
        "vcd:\n    host: {}\n    org: {}\n    vdc: {}\n    vAppName: {}\nclusterid: {}\n",
        scalar(host),
        scalar(&organization),
        scalar(&vdc),
        scalar(&vapp),
        scalar(&settings.cluster)
    ))
}

/// The vCenter's host name (without brackets) and port (443 unless the URL names one).
fn vcenter(endpoint: &str) -> Option<(String, String)> {
    let uri: http::Uri = endpoint.parse().ok()?;
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().map_or_else(|| "443".to_string(), |p| p.to_string());
    Some((host, port))
}

fn vsphere(settings: &Vsphere, credentials: &Credentials<'_>) -> Result<String, Error> {
    let key = |k: &str| credentials.get(k, "vSphere", VSPHERE_KEYS);
    let mut user = key("username")?;
    if user.is_empty() {
        user = key("infraManagementUserUsername")?;
    }
    let mut password = key("password")?;
    if password.is_empty() {
        password = key("infraManagementUserPassword")?;
    }
    let (host, port) = vcenter(&settings.endpoint).ok_or_else(|| {
        Error::Invalid(format!(
            "the vSphere datacenter of cluster {} has endpoint {:?}, which is not a URL\n  fix: set spec.vsphere.endpoint in the datacenter to the vCenter's URL, e.g. https://vcenter.example.com",
            settings.cluster, settings.endpoint
        ))
    })?;
    let mut ini = Ini::default();
    let global = ini
        .section("Global", None)
        .string("user", &user)
        .string("password", &password)
        .string("port", &port)
        .bool("insecure-flag", settings.allow_insecure)
        .string("working-dir", &settings.cluster)
        .string("datacenter", &settings.datacenter)
        .string("datastore", &settings.datastore)
        .string("server", &host)
        .string("cluster-id", &settings.cluster_id);
    if settings.dual_stack {
        global.string("ip-family", "ipv4,ipv6");
    }
    ini.section("Disk", None).string("scsicontrollertype", "pvscsi");
    ini.section("Workspace", None)
        .string("server", &host)
        .string("datacenter", &settings.datacenter)
        .string("folder", &settings.folder)
        .string("default-datastore", &settings.datastore)
        .string("resourcepool-path", "");
    ini.section("VirtualCenter", Some(&host))
        .string("user", &user)
        .string("password", &password)
        .string("port", &port)
        .string("datacenters", &settings.datacenter);
    Ok(ini.text)
}
