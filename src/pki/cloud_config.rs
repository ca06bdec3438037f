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
    /// VMware Cloud Director's CSI login (`vcloud-basic-auth`): key `refreshToken` with an API
    /// token, else `username` and `password`.
    VmwareCloudDirectorBasicAuth,
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
        "the cloud credentials Secret {namespace}/{name} has no key {key:?}, which {provider} needs ({needs})\n  \
         fix: add it to the Secret on the seed (kubectl -n {namespace} patch secret {name} --type merge -p '{{\"stringData\":{{\"{key}\":\"<value>\"}}}}') \
         or to its document in the topology, then apply again"
    )]
    MissingKey {
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
            None => Err(Error::MissingKey { namespace: self.namespace.into(), name: self.name.into(), key: key.into(), provider, needs }),
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
        CloudSecret::VmwareCloudDirectorBasicAuth => return vmware_cloud_director_basic_auth(credentials),
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

/// Azure's config as KKP marshals it: its struct's field order, Go's escaping.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AzureConfig<'a> {
    cloud: &'a str,
    tenant_id: String,
    subscription_id: String,
    aad_client_id: String,
    aad_client_secret: String,
    resource_group: &'a str,
    location: &'a str,
    vnet_name: &'a str,
    subnet_name: &'a str,
    route_table_name: &'a str,
    security_group_name: &'a str,
    primary_availability_set_name: &'a str,
    vnet_resource_group: &'a str,
    use_instance_metadata: bool,
    load_balancer_sku: &'a str,
}

fn azure(settings: &Azure, credentials: &Credentials<'_>) -> Result<String, Error> {
    let key = |k: &str| credentials.get(k, "Azure", AZURE_KEYS);
    let config = AzureConfig {
        cloud: "AZUREPUBLICCLOUD",
        tenant_id: key("tenantID")?,
        subscription_id: key("subscriptionID")?,
        aad_client_id: key("clientID")?,
        aad_client_secret: key("clientSecret")?,
        resource_group: &settings.resource_group,
        location: &settings.location,
        vnet_name: &settings.vnet,
        subnet_name: &settings.subnet,
        route_table_name: &settings.route_table,
        security_group_name: &settings.security_group,
        primary_availability_set_name: &settings.availability_set,
        vnet_resource_group: &settings.vnet_resource_group,
        use_instance_metadata: false,
        load_balancer_sku: &settings.load_balancer_sku,
    };
    let json = serde_json::to_string(&config).expect("plain strings serialise");
    // encoding/json also escapes HTML characters and the JavaScript line separators; they can
    // only occur inside strings, so replacing them keeps the JSON valid and equal in value.
    Ok(json
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029"))
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

/// KKP's `basicAuthSecretNameReconciler`: the API token as `refreshToken` when set, else the login.
fn vmware_cloud_director_basic_auth(credentials: &Credentials<'_>) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    if let Some(token) = credentials.data.get("apiToken").filter(|t| !t.is_empty()) {
        return Ok(BTreeMap::from([("refreshToken".to_string(), token.clone())]));
    }
    let key = |k: &str| credentials.get(k, "VMware Cloud Director", VCD_KEYS);
    Ok(BTreeMap::from([("username".to_string(), key("username")?.into_bytes()), ("password".to_string(), key("password")?.into_bytes())]))
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

#[cfg(test)]
mod tests {
    use super::*;

    const NAMESPACE: &str = "kubermatic";
    const NAME: &str = "credential-x";

    fn credentials(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect()
    }

    fn made(secret: &CloudSecret, pairs: &[(&str, &str)]) -> Result<BTreeMap<String, Vec<u8>>, Error> {
        super::data(secret, &Credentials { namespace: NAMESPACE, name: NAME, data: &credentials(pairs) })
    }

    fn config(secret: &CloudSecret, pairs: &[(&str, &str)]) -> String {
        let data = made(secret, pairs).unwrap();
        assert_eq!(data[FAKE_VMWARE_UUID_KEY], FAKE_VMWARE_UUID.as_bytes(), "KKP writes the fake UUID beside every config");
        String::from_utf8(data[CONFIG_KEY].clone()).unwrap()
    }

    /// A missing key names the Secret, the key and the fix, and no credential value.
    fn assert_missing(result: Result<BTreeMap<String, Vec<u8>>, Error>, key: &str, values: &[&str]) {
        let error = result.expect_err("a key is missing").to_string();
        assert!(error.contains(&format!("{NAMESPACE}/{NAME}")) && error.contains(&format!("{key:?}")), "{error}");
        assert!(error.contains("fix: add it"), "{error}");
        for value in values {
            assert!(!error.contains(value), "the error shows a credential: {error}");
        }
    }

    #[test]
    fn vmware_cloud_director_basic_auth_prefers_the_api_token() {
        let secret = CloudSecret::VmwareCloudDirectorBasicAuth;
        let token = made(&secret, &[("apiToken", "tok"), ("username", "u"), ("password", "p")]).unwrap();
        assert_eq!(token, BTreeMap::from([("refreshToken".to_string(), b"tok".to_vec())]));
        let login = made(&secret, &[("apiToken", ""), ("username", "u"), ("password", "p")]).unwrap();
        assert_eq!(login.keys().collect::<Vec<_>>(), ["password", "username"]);
        assert_eq!(login["username"], b"u");
        assert_missing(made(&secret, &[("username", "vcd-login-x1")]), "password", &["vcd-login-x1"]);
    }

    #[test]
    fn ini_values_are_quoted_as_gcfg_reads_them() {
        // KKP's quote test strings.
        assert_eq!(quote("test"), r#""test""#);
        assert_eq!(quote(r#"foo"bar""#), r#""foo\"bar\"""#);
        assert_eq!(quote("foo`bar"), r#""foo`bar""#);
        assert_eq!(quote(r"\hello\world\"), r#""\\hello\\world\\""#);
        assert_eq!(quote("another 'test' `string`"), r#""another 'test' `string`""#);
    }

    /// A service account as GCP writes it, with a key made now (none is kept in the source).
    fn gcp_account(project: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("a key is generated").serialize_pem();
        let json = serde_json::json!({"type": "service_account", "project_id": project, "private_key": key});
        base64::engine::general_purpose::STANDARD.encode(json.to_string())
    }

    fn gcp_settings() -> Gcp {
        Gcp {
            cluster: "abc".into(),
            region: "my".into(),
            zone_suffix: Some("zone".into()),
            regional: true,
            network: "my-cool-network".into(),
            subnetwork: "my-cool-subnetwork".into(),
        }
    }

    #[test]
    fn gcp_config_is_kkps_ini_with_the_project_of_the_service_account() {
        let account = gcp_account("my-project-id");
        let secret = CloudSecret::GcpConfig(gcp_settings());
        // KKP's expected layout (its test has two node tags; ForCluster writes the cluster's one).
        assert_eq!(
            config(&secret, &[("serviceAccount", &account)]),
            "[global]\nproject-id = \"my-project-id\"\nlocal-zone = \"my-zone\"\nnetwork-name = \"my-cool-network\"\n\
             subnetwork-name = \"my-cool-subnetwork\"\ntoken-url = \"nil\"\nmultizone = true\nregional = true\n\
             node-tags = \"kubernetes-cluster-abc\"\n"
        );
        for network in ["", "global/networks/default"] {
            let secret = CloudSecret::GcpConfig(Gcp { network: network.into(), ..gcp_settings() });
            assert!(config(&secret, &[("serviceAccount", &account)]).contains("network-name = \"default\"\n"), "{network:?}");
        }
        let no_zone = CloudSecret::GcpConfig(Gcp { zone_suffix: None, ..gcp_settings() });
        let error = made(&no_zone, &[("serviceAccount", &account)]).unwrap_err().to_string();
        assert!(error.contains("zoneSuffixes") && error.contains("cluster abc"), "{error}");
        let error = made(&secret, &[("serviceAccount", &gcp_account(""))]).unwrap_err().to_string();
        assert!(error.contains("no project_id") && !error.contains("PRIVATE"), "{error}");
        assert!(made(&secret, &[("serviceAccount", "not base64!")]).unwrap_err().to_string().contains("not base64"));
        assert_missing(made(&secret, &[]), "serviceAccount", &[]);
    }

    #[test]
    fn the_google_service_account_is_the_decoded_json_and_kubevirts_kubeconfig_is_copied() {
        let account = gcp_account("p");
        let data = made(&CloudSecret::GoogleServiceAccount, &[("serviceAccount", &account)]).unwrap();
        assert_eq!(data.keys().collect::<Vec<_>>(), ["serviceAccount"]);
        assert_eq!(data["serviceAccount"], base64::engine::general_purpose::STANDARD.decode(&account).unwrap());
        // KKP's infra-secret test: the value is copied as it is.
        let data = made(&CloudSecret::KubevirtInfraKubeconfig, &[("kubeConfig", "ZmFrZWt1YmVjb25maWcK")]).unwrap();
        assert_eq!(data, credentials(&[("infra-kubeconfig", "ZmFrZWt1YmVjb25maWcK")]));
        assert_missing(made(&CloudSecret::KubevirtInfraKubeconfig, &[("kubeconfig", "x")]), "kubeConfig", &[]);
    }

    fn vsphere_settings() -> Vsphere {
        Vsphere {
            cluster: "test-cluster".into(),
            endpoint: "https://vc.example.com:8443".into(),
            allow_insecure: true,
            datacenter: "Datacenter".into(),
            datastore: "Datastore".into(),
            folder: "some-folder".into(),
            cluster_id: "cl-1".into(),
            dual_stack: false,
        }
    }

    #[test]
    fn vsphere_config_is_kkps_ini_with_one_virtual_center() {
        let secret = CloudSecret::VsphereConfig(vsphere_settings());
        let password = r#"foo"bar"#;
        assert_eq!(
            config(&secret, &[("username", "admin"), ("password", password)]),
            r#"[Global]
user = "admin"
password = "foo\"bar"
port = "8443"
insecure-flag = true
working-dir = "test-cluster"
datacenter = "Datacenter"
datastore = "Datastore"
server = "vc.example.com"
cluster-id = "cl-1"

[Disk]
scsicontrollertype = "pvscsi"

[Workspace]
server = "vc.example.com"
datacenter = "Datacenter"
folder = "some-folder"
default-datastore = "Datastore"
resourcepool-path = ""

[VirtualCenter "vc.example.com"]
user = "admin"
password = "foo\"bar"
port = "8443"
datacenters = "Datacenter"
"#
        );
        // KKP's "port gets defaulted to 443"; dual-stack sets the Global ip-family only.
        let secret = CloudSecret::VsphereConfig(Vsphere { endpoint: "https://vsphere.com".into(), dual_stack: true, ..vsphere_settings() });
        let text = config(&secret, &[("username", "admin"), ("password", "p")]);
        assert!(text.contains("port = \"443\"\n") && text.contains("[VirtualCenter \"vsphere.com\"]\n"), "{text}");
        assert!(text.contains("cluster-id = \"cl-1\"\nip-family = \"ipv4,ipv6\"\n\n[Disk]") && text.matches("ip-family").count() == 1);
        // Empty keys fall back to the infra-management user's.
        let text = config(
            &secret,
            &[("username", ""), ("password", ""), ("infraManagementUserUsername", "infra"), ("infraManagementUserPassword", "infra-pw")],
        );
        assert!(text.contains("user = \"infra\"\npassword = \"infra-pw\"\n"), "{text}");
        assert_missing(made(&secret, &[("username", "admin")]), "password", &["admin"]);
        let bad = CloudSecret::VsphereConfig(Vsphere { endpoint: "::not a url".into(), ..vsphere_settings() });
        assert!(made(&bad, &[("username", "a"), ("password", "b")]).unwrap_err().to_string().contains("spec.vsphere.endpoint"));
    }

    fn openstack_settings() -> Openstack {
        Openstack {
            auth_url: "https://keystone.example.com:5000/v3".into(),
            region: "RegionOne".into(),
            use_octavia: Some(true),
            node_volume_attach_limit: 12,
            load_balancer_classes: BTreeMap::from([
                ("public".to_string(), LoadBalancerClass { floating_network_id: "net".into(), ..Default::default() }),
                ("internal".to_string(), LoadBalancerClass { subnet_id: "s".into(), member_subnet_id: "m".into(), ..Default::default() }),
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn openstack_config_is_kkps_ini() {
        let secret = CloudSecret::OpenstackConfig(openstack_settings());
        let keys = [("domain", "Default"), ("username", "user"), ("password", r"pa\ss"), ("project", "proj"), ("projectID", "pid")];
        assert_eq!(
            config(&secret, &keys),
            r#"[Global]
auth-url = "https://keystone.example.com:5000/v3"
region = "RegionOne"
username = "user"
password = "pa\\ss"
tenant-name = "proj"
tenant-id = "pid"
domain-name = "Default"

[LoadBalancer]
manage-security-groups = true
lb-version = "v2"
lb-provider = ""
subnet-id = ""
floating-network-id = ""
lb-method = "ROUND_ROBIN"
use-octavia = true

[BlockStorage]
ignore-volume-az = false
trust-device-path = false
bs-version = "auto"
node-volume-attach-limit = "12"

[LoadBalancerClass "internal"]
subnet-id = "s"
member-subnet-id = "m"

[LoadBalancerClass "public"]
floating-network-id = "net"
"#
        );
        // Settings KKP writes only when set, and the datacenter's load balancer choices.
        let tuned = CloudSecret::OpenstackConfig(Openstack {
            manage_security_groups: Some(false),
            load_balancer_method: "LEAST_CONNECTIONS".into(),
            use_octavia: None,
            node_volume_attach_limit: 0,
            enable_ingress_hostname: Some(true),
            ingress_hostname_suffix: Some("nip.io".into()),
            load_balancer_classes: BTreeMap::new(),
            ..openstack_settings()
        });
        let text = config(&tuned, &keys);
        assert!(text.contains("manage-security-groups = false\n") && text.contains("lb-method = \"LEAST_CONNECTIONS\"\n"), "{text}");
        assert!(text.contains("\nenable-ingress-hostname = true\ningress-hostname-suffix = \"nip.io\"\n\n[BlockStorage]"), "{text}");
        assert!(!text.contains("use-octavia") && !text.contains("node-volume-attach-limit") && !text.contains("LoadBalancerClass"));

        // The tenant keys stand in for the project keys.
        let text = config(&secret, &[("domain", "D"), ("username", "u"), ("password", "p"), ("tenant", "t"), ("tenantID", "tid")]);
        assert!(text.contains("tenant-name = \"t\"\ntenant-id = \"tid\"\n"), "{text}");
        // An application credential replaces the user login.
        let text =
            config(&secret, &[("domain", "D"), ("applicationCredentialID", "app-id"), ("applicationCredentialSecret", "app-secret")]);
        assert!(
            text.starts_with(
                "[Global]\nauth-url = \"https://keystone.example.com:5000/v3\"\nregion = \"RegionOne\"\n\
                 application-credential-id = \"app-id\"\napplication-credential-secret = \"app-secret\"\n\n[LoadBalancer]"
            ),
            "{text}"
        );
        assert_missing(
            made(&secret, &[("domain", "D"), ("applicationCredentialID", "app-id")]),
            "applicationCredentialSecret",
            &["app-id"],
        );
        assert_missing(made(&secret, &[("domain", "D"), ("username", "u"), ("project", "x"), ("projectID", "y")]), "password", &["\"u\""]);
        assert_missing(made(&secret, &[("domain", "D"), ("username", "u"), ("password", "pw"), ("projectID", "y")]), "project", &["pw"]);
        assert_missing(made(&secret, &[("username", "u"), ("password", "pw")]), "domain", &["pw"]);
    }

    #[test]
    fn vmware_cloud_director_config_is_kkps_yaml() {
        let secret = CloudSecret::VmwareCloudDirectorConfig(VmwareCloudDirector {
            cluster: "test".into(),
            url: "https://example.com/api".into(),
            vapp: "TEST_VAPP".into(),
        });
        let keys = [("organization", "TEST_ORG"), ("vdc", "TEST_VDC"), ("username", "u"), ("password", "p")];
        // KKP's expected output.
        assert_eq!(
            config(&secret, &keys),
            "vcd:\n    host: https://example.com\n    org: TEST_ORG\n    vdc: TEST_VDC\n    vAppName: TEST_VAPP\nclusterid: test\n"
        );
        let unnamed = CloudSecret::VmwareCloudDirectorConfig(VmwareCloudDirector {
            cluster: "abc".into(),
            url: "https://vcd.example.com".into(),
            vapp: String::new(),
        });
        assert!(config(&unnamed, &[("organization", "o"), ("vdc", "v"), ("apiToken", "t")]).contains("    vAppName: kubernetes-abc\n"));
        assert_missing(made(&unnamed, &[("organization", "o"), ("vdc", "v")]), "username", &[]);
        assert_missing(made(&unnamed, &[("vdc", "v"), ("apiToken", "t")]), "organization", &["\"t\""]);
    }

    #[test]
    fn azure_config_is_kkps_json() {
        let secret = CloudSecret::AzureConfig(Azure {
            resource_group: "rg".into(),
            location: "westeurope".into(),
            vnet: "vnet".into(),
            subnet: "subnet".into(),
            route_table: "rt".into(),
            security_group: "sg".into(),
            availability_set: "as".into(),
            vnet_resource_group: "vrg".into(),
            load_balancer_sku: "standard".into(),
        });
        let keys = [("tenantID", "t"), ("subscriptionID", "s"), ("clientID", "c"), ("clientSecret", "a<b>&c")];
        assert_eq!(
            config(&secret, &keys),
            r#"{"cloud":"AZUREPUBLICCLOUD","tenantId":"t","subscriptionId":"s","aadClientId":"c","aadClientSecret":"a\u003cb\u003e\u0026c","resourceGroup":"rg","location":"westeurope","vnetName":"vnet","subnetName":"subnet","routeTableName":"rt","securityGroupName":"sg","primaryAvailabilitySetName":"as","vnetResourceGroup":"vrg","useInstanceMetadata":false,"loadBalancerSku":"standard"}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&config(&secret, &keys)).unwrap();
        assert_eq!(parsed["aadClientSecret"], "a<b>&c", "Go's escapes read back as the value");
        assert_missing(made(&secret, &keys[..3]), "clientSecret", &[]);
    }

    #[test]
    fn requests_serialise_with_their_kind_and_round_trip() {
        let secret = CloudSecret::OpenstackConfig(openstack_settings());
        let json = serde_json::to_value(&secret).unwrap();
        assert_eq!(json["kind"], "openstackConfig");
        assert_eq!(json["authUrl"], "https://keystone.example.com:5000/v3");
        assert_eq!(serde_json::from_value::<CloudSecret>(json).unwrap(), secret);
        assert_eq!(serde_json::to_value(CloudSecret::GoogleServiceAccount).unwrap(), serde_json::json!({"kind": "googleServiceAccount"}));
    }
}
