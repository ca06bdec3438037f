//! The cloud provider's Secrets of a user cluster's control plane: `cloud-config` (KKP
//! `cloudconfig.SecretReconciler`), GCP's `google-service-account`, KubeVirt's
//! `cloud-controller-manager-infra-kubeconfig` and VMware Cloud Director's CSI Secrets
//! `cloud-config-csi` and `vcloud-basic-auth`. Configs without credentials (AWS, KubeVirt, the
//! empty one of providers without a config) are rendered whole; the rest are requests naming
//! the credentials Secret and the settings, made at apply by [`crate::pki::cloud_config`].

use super::meta::{self, MANAGED_BY};
use super::pki::plain_secret;
use super::{Body, DesiredNode};
use crate::object::{Kind, ObjectRef};
use crate::pki::cloud_config::{self, Azure, CloudSecret, Gcp, LoadBalancerClass, Openstack, VmwareCloudDirector, Vsphere};
use crate::pki::{CertRequest, Content};
use crate::role::Role;
use crate::topology::Cluster;
use serde_json::Value;
use std::collections::BTreeMap;

/// KKP's name of the GCP service account Secret the controller-manager mounts.
pub const GOOGLE_SERVICE_ACCOUNT: &str = "google-service-account";
/// KKP's name of the KubeVirt infra-cluster kubeconfig Secret.
pub const KUBEVIRT_INFRA_KUBECONFIG: &str = "cloud-controller-manager-infra-kubeconfig";

/// KKP's cloud config Secret of the CSI driver (`CSICloudConfigSecretName`).
pub const VCD_CSI_CLOUD_CONFIG: &str = "cloud-config-csi";
/// KKP's VMware Cloud Director CSI login Secret (`VMwareCloudDirectorCSISecretName`).
pub const VCD_CSI_BASIC_AUTH: &str = "vcloud-basic-auth";

/// Whether VMware Cloud Director's CSI Secrets are rendered (clusters with credentials).
pub fn renders_vcd_csi_secrets(cluster: &Cluster) -> bool {
    cluster.provider == "vmwareclouddirector" && cluster.cloud.credentials.is_some()
}

/// Providers whose config embeds credentials, so it is made at apply.
fn config_needs_credentials(cluster: &Cluster) -> bool {
    matches!(cluster.provider.as_str(), "azure" | "gcp" | "openstack" | "vmwareclouddirector" | "vsphere")
}

/// Whether Secret `cloud-config` is rendered: always, except where it is made from
/// credentials the cluster does not reference (KKP cannot make it either).
pub fn renders_cloud_config(cluster: &Cluster) -> bool {
    !config_needs_credentials(cluster) || cluster.cloud.credentials.is_some()
}

/// Whether GCP's `google-service-account` is rendered (GCP clusters with credentials).
pub fn renders_google_service_account(cluster: &Cluster) -> bool {
    cluster.provider == "gcp" && cluster.cloud.credentials.is_some()
}

/// Whether KubeVirt's infra kubeconfig is rendered (KubeVirt clusters with credentials).
pub fn renders_kubevirt_infra_kubeconfig(cluster: &Cluster) -> bool {
    cluster.provider == "kubevirt" && cluster.cloud.credentials.is_some()
}

/// The cluster's cloud provider Secrets.
pub fn secrets(cluster: &Cluster) -> Vec<DesiredNode> {
    let mut nodes = Vec::new();
    if renders_cloud_config(cluster) {
        let labels = BTreeMap::from([("app".to_string(), "cloud-config".to_string())]);
        nodes.push(match provider_config(cluster) {
            Some(secret) => made_from_credentials(cluster, "cloud-config", labels, secret),
            None => plain_cloud_config(cluster, labels),
        });
    }
    if renders_google_service_account(cluster) {
        nodes.push(made_from_credentials(cluster, GOOGLE_SERVICE_ACCOUNT, BTreeMap::new(), CloudSecret::GoogleServiceAccount));
    }
    if renders_kubevirt_infra_kubeconfig(cluster) {
        nodes.push(made_from_credentials(cluster, KUBEVIRT_INFRA_KUBECONFIG, BTreeMap::new(), CloudSecret::KubevirtInfraKubeconfig));
    }
    if renders_vcd_csi_secrets(cluster) {
        // KKP's CSI Secrets (`csi/vmwareclouddirector`): the cloud config again, and the login.
        if let Some(config) = provider_config(cluster) {
            let labels = BTreeMap::from([("app".to_string(), VCD_CSI_CLOUD_CONFIG.to_string())]);
            nodes.push(made_from_credentials(cluster, VCD_CSI_CLOUD_CONFIG, labels, config));
        }
        let labels = BTreeMap::from([("app".to_string(), VCD_CSI_BASIC_AUTH.to_string())]);
        nodes.push(made_from_credentials(cluster, VCD_CSI_BASIC_AUTH, labels, CloudSecret::VmwareCloudDirectorBasicAuth));
    }
    nodes
}

/// A Secret made at apply from the cluster's credentials Secret (which must be referenced).
fn made_from_credentials(cluster: &Cluster, name: &str, mut labels: BTreeMap<String, String>, secret: CloudSecret) -> DesiredNode {
    let credentials = cluster.cloud.credentials.as_ref().expect("rendered only with a credentials reference");
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    let request =
        CertRequest::generated(Content::Cloud { namespace: credentials.namespace.clone(), name: credentials.name.clone(), secret }, None);
    let object = ObjectRef::namespaced(Kind::Secret, &cluster.namespace(), name);
    meta::cluster_node(cluster, Kind::Secret, name, Role::Credentials, Vec::new(), Body::Secret { object, labels, request })
}

/// `cloud-config` rendered whole: the config holds no credentials.
fn plain_cloud_config(cluster: &Cluster, labels: BTreeMap<String, String>) -> DesiredNode {
    let config = match cluster.provider.as_str() {
        "aws" => aws_cloud_config(cluster),
        "kubevirt" => kubevirt_cloud_config(cluster),
        // KKP writes an empty config for providers without one.
        _ => String::new(),
    };
    let data = BTreeMap::from([
        (cloud_config::CONFIG_KEY.to_string(), config.into_bytes()),
        (cloud_config::FAKE_VMWARE_UUID_KEY.to_string(), cloud_config::FAKE_VMWARE_UUID.as_bytes().to_vec()),
    ]);
    plain_secret(cluster, "cloud-config", labels, data)
}

fn text(block: &Value, key: &str) -> String {
    block.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn flag(block: &Value, key: &str) -> Option<bool> {
    block.get(key).and_then(Value::as_bool)
}

fn number(block: &Value, key: &str) -> Option<u64> {
    block.get(key).and_then(Value::as_u64)
}

/// Both address families among the pod networks.
fn dual_stack(cluster: &Cluster) -> bool {
    cluster.network.pods.iter().any(|n| n.addr().is_ipv4()) && cluster.network.pods.iter().any(|n| n.addr().is_ipv6())
}

/// The settings of a provider config made from credentials, as KKP's `ForCluster` reads them
/// from the cluster and datacenter (credential fields are never read here); None for the
/// other providers.
fn provider_config(cluster: &Cluster) -> Option<CloudSecret> {
    let spec = &cluster.cloud.cluster_settings;
    let dc = &cluster.cloud.datacenter_settings;
    Some(match cluster.provider.as_str() {
        "azure" => CloudSecret::AzureConfig(Azure {
            resource_group: text(spec, "resourceGroup"),
            location: text(dc, "location"),
            vnet: text(spec, "vnet"),
            subnet: text(spec, "subnet"),
            route_table: text(spec, "routeTable"),
            security_group: text(spec, "securityGroup"),
            availability_set: text(spec, "availabilitySet"),
            vnet_resource_group: text(spec, "vnetResourceGroup"),
            // KKP's cloud-spec defaulting.
            load_balancer_sku: Some(text(spec, "loadBalancerSKU")).filter(|s| !s.is_empty()).unwrap_or_else(|| "standard".into()),
        }),
        "gcp" => CloudSecret::GcpConfig(Gcp {
            cluster: cluster.name.clone(),
            region: text(dc, "region"),
            zone_suffix: dc.pointer("/zoneSuffixes/0").and_then(Value::as_str).map(str::to_string),
            regional: flag(dc, "regional").unwrap_or(false),
            network: text(spec, "network"),
            subnetwork: text(spec, "subnetwork"),
        }),
        "openstack" => {
            // The datacenter's classes first, so the cluster's override them by name.
            let mut classes = BTreeMap::new();
            for block in [dc, spec] {
                for class in block.get("loadBalancerClasses").and_then(Value::as_array).into_iter().flatten() {
                    let config = class.get("config").unwrap_or(&Value::Null);
                    classes.insert(
                        text(class, "name"),
                        LoadBalancerClass {
                            floating_network_id: text(config, "floatingNetworkID"),
                            floating_subnet_id: text(config, "floatingSubnetID"),
                            floating_subnet: text(config, "floatingSubnet"),
                            floating_subnet_tags: text(config, "floatingSubnetTags"),
                            network_id: text(config, "networkID"),
                            subnet_id: text(config, "subnetID"),
                            member_subnet_id: text(config, "memberSubnetID"),
                        },
                    );
                }
            }
            CloudSecret::OpenstackConfig(Openstack {
                auth_url: text(dc, "authURL"),
                region: text(dc, "region"),
                manage_security_groups: flag(dc, "manageSecurityGroups"),
                load_balancer_provider: text(dc, "loadBalancerProvider"),
                load_balancer_method: text(dc, "loadBalancerMethod"),
                use_octavia: flag(spec, "useOctavia").or(flag(dc, "useOctavia")),
                trust_device_path: flag(dc, "trustDevicePath").unwrap_or(false),
                ignore_volume_az: flag(dc, "ignoreVolumeAZ").unwrap_or(false),
                node_volume_attach_limit: number(spec, "nodeVolumeAttachLimit").or(number(dc, "nodeVolumeAttachLimit")).unwrap_or(0),
                enable_ingress_hostname: flag(spec, "enableIngressHostname"),
                ingress_hostname_suffix: spec.get("ingressHostnameSuffix").and_then(Value::as_str).map(str::to_string),
                load_balancer_classes: classes,
            })
        }
        "vmwareclouddirector" => CloudSecret::VmwareCloudDirectorConfig(VmwareCloudDirector {
            cluster: cluster.name.clone(),
            url: text(dc, "url"),
            vapp: text(spec, "vapp"),
        }),
        "vsphere" => {
            let datastore = [text(spec, "datastore"), text(spec, "datastoreCluster"), text(dc, "datastore")]
                .into_iter()
                .find(|d| !d.is_empty())
                .unwrap_or_default();
            let cluster_id = if cluster.features.get("vsphereCSIClusterID").copied().unwrap_or(false) {
                cluster.name.clone()
            } else {
                text(dc, "cluster")
            };
            CloudSecret::VsphereConfig(Vsphere {
                cluster: cluster.name.clone(),
                endpoint: text(dc, "endpoint"),
                allow_insecure: flag(dc, "allowInsecure").unwrap_or(false),
                datacenter: text(dc, "datacenter"),
                datastore,
                folder: text(spec, "folder"),
                cluster_id,
                dual_stack: dual_stack(cluster) && super::controller_manager::external_cloud_provider(cluster),
            })
        }
        _ => return None,
    })
}

/// KKP's KubeVirt cloud config (YAML as yaml.v3 writes it): the infra kubeconfig path, the
/// namespace VMs live in (the datacenter's namespaced mode, else the cluster namespace), and
/// the CCM switches the datacenter may turn off.
fn kubevirt_cloud_config(cluster: &Cluster) -> String {
    let dc = &cluster.cloud.datacenter_settings;
    let namespaced = dc.pointer("/namespacedMode/enabled").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let namespace = if namespaced {
        dc.pointer("/namespacedMode/name").and_then(serde_json::Value::as_str).unwrap_or("kubevirt-workload").to_string()
    } else {
        cluster.namespace()
    };
    let enabled = |key: &str| dc.get(key).and_then(serde_json::Value::as_bool).unwrap_or(true);
    format!(
        "kubeconfig: /etc/kubernetes/cloud/infra-kubeconfig\nnamespace: {namespace}\ninstancesV2:\n    zoneAndRegionEnabled: {}\nloadBalancer:\n    enabled: {}\n",
        enabled("ccmZoneAndRegionEnabled"),
        enabled("ccmLoadBalancerEnabled")
    )
}

/// KKP's AWS cloud config: an INI `[global]` section, strings quoted.
fn aws_cloud_config(cluster: &Cluster) -> String {
    let setting = |from: &serde_json::Value, key: &str| from.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
    let region = setting(&cluster.cloud.datacenter_settings, "region");
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut lines = vec![
        "[global]".to_string(),
        format!("Zone = {}", quote(&format!("{region}x"))),
        format!("VPC = {}", quote(&setting(&cluster.cloud.cluster_settings, "vpcID"))),
        format!("SubnetID = {}", quote("")),
        format!("RouteTableID = {}", quote(&setting(&cluster.cloud.cluster_settings, "routeTableID"))),
        format!("RoleARN = {}", quote(&setting(&cluster.cloud.cluster_settings, "roleARN"))),
        format!("KubernetesClusterID = {}", quote(&cluster.name)),
        "DisableSecurityGroupIngress = false".to_string(),
        format!("ElbSecurityGroup = {}", quote("")),
    ];
    if dual_stack(cluster) {
        lines.extend(["ipv4", "ipv6"].map(|family| format!("NodeIPFamilies = {}", quote(family))));
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture() -> Cluster {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/topology.yaml");
        crate::topology::load(&[path]).expect("the KKP fixture loads").clusters.into_values().next().expect("one cluster")
    }

    #[test]
    fn the_aws_cloud_config_is_kkps_ini() {
        let mut cluster = fixture();
        assert_eq!(
            aws_cloud_config(&cluster),
            "[global]\nZone = \"us-central1x\"\nVPC = \"aws-vpn-id\"\nSubnetID = \"\"\nRouteTableID = \"aws-route-table-id\"\n\
             RoleARN = \"aws-role-arn\"\nKubernetesClusterID = \"de-test-01\"\nDisableSecurityGroupIngress = false\nElbSecurityGroup = \"\"\n"
        );
        cluster.cloud.cluster_settings = serde_json::json!({"vpcID": "vpc-1", "routeTableID": "rt\"1", "roleARN": "arn"});
        cluster.network.pods.push("fd01::/48".parse().unwrap());
        let config = aws_cloud_config(&cluster);
        assert!(config.contains("VPC = \"vpc-1\"\n") && config.contains("RouteTableID = \"rt\\\"1\"\n"));
        assert!(config.ends_with("NodeIPFamilies = \"ipv4\"\nNodeIPFamilies = \"ipv6\"\n"));
        let node = cloud_config_node(&cluster);
        assert_eq!(node.role, Role::Config);
        cluster.provider = "hetzner".into();
        let Body::Object { manifest, .. } = cloud_config_node(&cluster).body else { unreachable!() };
        assert_eq!(manifest["data"]["config"], "", "KKP writes an empty config for providers without one");
    }

    /// The one `cloud-config` node of `cluster`.
    fn cloud_config_node(cluster: &Cluster) -> DesiredNode {
        secrets(cluster).into_iter().find(|n| n.address.as_str().ends_with("/secret/cloud-config")).expect("cloud-config is rendered")
    }

    /// The request of Secret `name` of `cluster`, which must be made from credentials.
    fn made(cluster: &Cluster, name: &str) -> (Role, BTreeMap<String, String>, Content) {
        let node = secrets(cluster).into_iter().find(|n| n.address.as_str().ends_with(&format!("/secret/{name}"))).expect("rendered");
        let Body::Secret { labels, request, .. } = node.body else { panic!("{name} is made at apply") };
        (node.role, labels, request.content.expect("content"))
    }

    fn with_provider(provider: &str, cluster_settings: Value, datacenter_settings: Value) -> Cluster {
        let mut cluster = fixture();
        cluster.provider = provider.into();
        cluster.cloud.cluster_settings = cluster_settings;
        cluster.cloud.datacenter_settings = datacenter_settings;
        cluster.cloud.credentials =
            Some(crate::topology::SecretRef { namespace: "kubermatic".into(), name: format!("credential-{provider}-de-test-01") });
        cluster
    }

    #[test]
    fn configs_with_credentials_are_requests_naming_the_secret_and_kkps_settings() {
        let cluster = with_provider(
            "openstack",
            serde_json::json!({"password": "inline-secret", "useOctavia": false, "nodeVolumeAttachLimit": 12,
                "loadBalancerClasses": [{"name": "public", "config": {"floatingNetworkID": "cluster-net"}}]}),
            serde_json::json!({"authURL": "https://keystone:5000/v3", "region": "RegionOne", "useOctavia": true, "nodeVolumeAttachLimit": 5,
                "loadBalancerClasses": [{"name": "public", "config": {"floatingNetworkID": "dc-net"}}, {"name": "internal", "config": {"subnetID": "s"}}]}),
        );
        let (role, labels, content) = made(&cluster, "cloud-config");
        assert_eq!(role, Role::Credentials);
        assert_eq!(labels.get("app").map(String::as_str), Some("cloud-config"));
        let Content::Cloud { namespace, name, secret: CloudSecret::OpenstackConfig(settings) } = &content else { panic!("{content:?}") };
        assert_eq!((namespace.as_str(), name.as_str()), ("kubermatic", "credential-openstack-de-test-01"));
        assert_eq!((settings.auth_url.as_str(), settings.region.as_str()), ("https://keystone:5000/v3", "RegionOne"));
        assert_eq!(settings.use_octavia, Some(false), "the cluster's setting wins");
        assert_eq!(settings.node_volume_attach_limit, 12);
        assert_eq!(settings.load_balancer_classes["public"].floating_network_id, "cluster-net", "the cluster's class overrides");
        assert_eq!(settings.load_balancer_classes["internal"].subnet_id, "s");
        let request = serde_json::to_string(&content).unwrap();
        assert!(!request.contains("inline-secret"), "credential fields are never read into the request");

        // The workloads mount it; without a credentials reference nothing is rendered or mounted.
        let mut orphan = cluster.clone();
        orphan.cloud.credentials = None;
        assert!(secrets(&orphan).is_empty());
        assert!(!renders_cloud_config(&orphan) && renders_cloud_config(&cluster));
    }

    #[test]
    fn vsphere_settings_follow_kkps_overrides() {
        let dc =
            serde_json::json!({"endpoint": "https://vc.example.com:9443", "datastore": "less-cool", "cluster": "cl-1", "datacenter": "dc"});
        let settings = |cluster: &Cluster| match made(cluster, "cloud-config").2 {
            Content::Cloud { secret: CloudSecret::VsphereConfig(v), .. } => v,
            other => panic!("{other:?}"),
        };
        let plain = settings(&with_provider("vsphere", serde_json::json!({}), dc.clone()));
        assert_eq!((plain.datastore.as_str(), plain.cluster_id.as_str()), ("less-cool", "cl-1"));
        let mut cluster = with_provider("vsphere", serde_json::json!({"datastoreCluster": "dsc", "folder": "/f"}), dc.clone());
        assert_eq!(settings(&cluster).datastore, "dsc");
        cluster.cloud.cluster_settings = serde_json::json!({"datastore": "super-cool", "datastoreCluster": "dsc"});
        cluster.features.insert("vsphereCSIClusterID".into(), true);
        let overridden = settings(&cluster);
        assert_eq!((overridden.datastore.as_str(), overridden.cluster_id.as_str()), ("super-cool", "de-test-01"));
        assert!(!overridden.dual_stack);
        cluster.network.pods.push("fd01::/48".parse().unwrap());
        cluster.features.insert("externalCloudProvider".into(), true);
        assert!(settings(&cluster).dual_stack, "dual-stack with an external cloud provider");
    }

    #[test]
    fn gcp_gets_its_service_account_and_kubevirt_its_infra_kubeconfig() {
        let gcp = with_provider(
            "gcp",
            serde_json::json!({"network": "global/networks/default"}),
            serde_json::json!({"region": "europe-west3", "zoneSuffixes": ["c", "a"]}),
        );
        let (role, _, content) = made(&gcp, GOOGLE_SERVICE_ACCOUNT);
        assert_eq!(role, Role::Credentials);
        assert!(matches!(content, Content::Cloud { secret: CloudSecret::GoogleServiceAccount, .. }));
        let Content::Cloud { secret: CloudSecret::GcpConfig(settings), .. } = made(&gcp, "cloud-config").2 else { panic!() };
        assert_eq!((settings.region.as_str(), settings.zone_suffix.as_deref()), ("europe-west3", Some("c")));
        let manager = super::super::controller_manager::render(&gcp);
        assert!(manager.iter().any(|n| n.deps.iter().any(|d| d.as_str().ends_with("/secret/google-service-account"))));

        let kubevirt = with_provider("kubevirt", serde_json::json!({}), serde_json::json!({}));
        let (_, _, content) = made(&kubevirt, KUBEVIRT_INFRA_KUBECONFIG);
        assert!(matches!(content, Content::Cloud { secret: CloudSecret::KubevirtInfraKubeconfig, .. }));
        let Body::Object { .. } = cloud_config_node(&kubevirt).body else { panic!("KubeVirt's config holds no credentials") };
        assert!(secrets(&with_provider("aws", serde_json::json!({}), serde_json::json!({}))).len() == 1, "AWS: cloud-config alone");
    }

    #[test]
    fn the_kubevirt_cloud_config_follows_the_datacenter() {
        let mut cluster = fixture();
        cluster.provider = "kubevirt".into();
        cluster.cloud.datacenter_settings = serde_json::json!({});
        assert_eq!(
            kubevirt_cloud_config(&cluster),
            "kubeconfig: /etc/kubernetes/cloud/infra-kubeconfig\nnamespace: cluster-de-test-01\ninstancesV2:\n    \
             zoneAndRegionEnabled: true\nloadBalancer:\n    enabled: true\n"
        );
        cluster.cloud.datacenter_settings = serde_json::json!({"namespacedMode": {"enabled": true}, "ccmLoadBalancerEnabled": false});
        let config = kubevirt_cloud_config(&cluster);
        assert!(config.contains("namespace: kubevirt-workload\n") && config.ends_with("enabled: false\n"));
    }
}
