//! operating-system-manager (OSM) and its webhook: Deployments `operating-system-manager` and
//! `operating-system-manager-webhook`, Service `operating-system-manager-webhook`, the
//! controller's ServiceAccount (KKP `pkg/resources/operatingsystemmanager`).

use super::DesiredNode;
use super::component::{self, CA_BUNDLE, CLOUD_CREDENTIALS, Component, env, nobody_pod_security, restricted_container};
use super::controller_manager::external_cloud_provider;
use super::meta::{self, configmap_volume, mount, secret_volume};
use crate::object::Kind;
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{Container, ContainerPort, EnvVar, PodSpec};
use std::collections::BTreeMap;

/// The controller's Deployment name and `app` label; both containers carry this name.
pub const NAME: &str = "operating-system-manager";
/// The webhook's Deployment and Service name and `app` label.
pub const WEBHOOK: &str = "operating-system-manager-webhook";
/// The controller's ServiceAccount (KKP gives the webhook none).
pub const SERVICE_ACCOUNT: &str = "kubermatic-operating-system-manager";
/// KKP's pinned OSM image.
pub const IMAGE: &str = "quay.io/kubermatic/operating-system-manager:v1.11.3";
const KUBECONFIG_SECRET: &str = "operatingsystemmanager-kubeconfig";
const WEBHOOK_KUBECONFIG_SECRET: &str = "operatingsystemmanager-webhook-kubeconfig";
const SERVING_CERT: &str = "operating-system-manager-webhook-serving-cert";
/// The link-local address of NodeLocal DNSCache on every node.
const NODE_LOCAL_DNS_CACHE: &str = "169.254.20.10";

/// All OSM nodes.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    vec![
        component::service_account(cluster, SERVICE_ACCOUNT),
        controller(cluster),
        component::cluster_ip_service(cluster, WEBHOOK, vec![component::service_port(Some("webhook-server"), 443, 9443)]),
        webhook(cluster),
    ]
}

/// The DNS server OSM writes into node configs: NodeLocal DNSCache when on, else the cluster's
/// DNS resolver.
pub fn cluster_dns(cluster: &Cluster) -> String {
    if cluster.network.node_local_dns_cache {
        NODE_LOCAL_DNS_CACHE.into()
    } else {
        component::dns_resolver_ip(cluster).map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// The controller's arguments.
pub fn controller_flags(cluster: &Cluster) -> Vec<String> {
    let mut flags: Vec<String> = [
        "-kubeconfig",
        "/etc/kubernetes/kubeconfig/kubeconfig",
        "-health-probe-address",
        "0.0.0.0:8085",
        "-metrics-address",
        "0.0.0.0:8080",
        "-namespace",
        "kube-system",
        "-cluster-dns",
    ]
    .map(String::from)
    .to_vec();
    flags.push(cluster_dns(cluster));
    if external_cloud_provider(cluster) {
        flags.push("-external-cloud-provider".into());
    }
    flags
}

/// OSM's cloud environment: credentials of the providers whose images OSM resolves.
fn env_vars(cluster: &Cluster) -> Vec<EnvVar> {
    match cluster.provider.as_str() {
        "azure" => component::azure_env(),
        "baremetal" => component::tinkerbell_env(cluster),
        "openstack" => component::openstack_env(cluster),
        "vsphere" => component::vsphere_env(cluster),
        "gcp" => vec![component::credential("GOOGLE_SERVICE_ACCOUNT", "serviceAccount", false)],
        "kubevirt" => vec![component::credential("KUBEVIRT_KUBECONFIG", "kubeConfig", false)],
        _ => Vec::new(),
    }
}

fn controller(cluster: &Cluster) -> DesiredNode {
    let env_vars = env_vars(cluster);
    let mut secrets = vec![KUBECONFIG_SECRET];
    if component::reads_credentials(&env_vars) {
        secrets.push(CLOUD_CREDENTIALS);
    }
    let container = Container {
        name: NAME.into(),
        image: Some(IMAGE.into()),
        command: Some(vec!["/usr/local/bin/osm-controller".into()]),
        args: Some(controller_flags(cluster)),
        env: (!env_vars.is_empty()).then_some(env_vars),
        liveness_probe: Some(component::http_probe("/healthz", 8085, "HTTP", 3, 10, Some(15))),
        readiness_probe: Some(component::http_probe("/readyz", 8085, "HTTP", 3, 10, Some(15))),
        resources: Some(component::resources("50m", "128Mi", "1", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig")]),
        ..Default::default()
    };
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/path".into(), "/metrics".into()),
        ("prometheus.io/port".into(), "8080".into()),
    ]);
    Component {
        cluster,
        name: NAME,
        replicas: 1,
        extra_pod_labels: BTreeMap::new(),
        annotations,
        pod: PodSpec {
            containers: vec![container],
            volumes: Some(vec![secret_volume(KUBECONFIG_SECRET)]),
            security_context: Some(nobody_pod_security()),
            service_account_name: Some(SERVICE_ACCOUNT.into()),
            ..Default::default()
        },
        wrap: Some((NAME, Vec::new())),
        strategy: None,
        secrets,
        configmaps: Vec::new(),
        // KKP names no pull secret for the OSM controller (its webhook has one).
        image_pull_secret: false,
    }
    .into_node()
}

fn webhook(cluster: &Cluster) -> DesiredNode {
    let container = Container {
        name: NAME.into(),
        image: Some(IMAGE.into()),
        command: Some(vec!["/usr/local/bin/webhook".into()]),
        args: Some(["-log-debug=false", "-log-format", "json", "-namespace", "kube-system"].map(String::from).to_vec()),
        env: Some(vec![env("KUBECONFIG", "/etc/kubernetes/worker-kubeconfig/kubeconfig")]),
        ports: Some(vec![ContainerPort {
            name: Some("webhook-server".into()),
            container_port: 9443,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        liveness_probe: Some(component::http_probe("/healthz", 8081, "HTTP", 8, 10, Some(15))),
        readiness_probe: Some(component::http_probe("/readyz", 8081, "HTTP", 3, 10, None)),
        resources: Some(component::resources("10m", "32Mi", "100m", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![
            mount(WEBHOOK_KUBECONFIG_SECRET, "/etc/kubernetes/worker-kubeconfig"),
            mount(SERVING_CERT, "/tmp/k8s-webhook-server/serving-certs"),
            mount(CA_BUNDLE, "/etc/kubernetes/pki/ca-bundle"),
        ]),
        ..Default::default()
    };
    let mut node = Component {
        cluster,
        name: WEBHOOK,
        replicas: 1,
        extra_pod_labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        pod: PodSpec {
            containers: vec![container],
            volumes: Some(vec![secret_volume(WEBHOOK_KUBECONFIG_SECRET), secret_volume(SERVING_CERT), configmap_volume(CA_BUNDLE)]),
            security_context: Some(nobody_pod_security()),
            ..Default::default()
        },
        wrap: Some((NAME, Vec::new())),
        strategy: None,
        secrets: vec![WEBHOOK_KUBECONFIG_SECRET, SERVING_CERT],
        configmaps: vec![CA_BUNDLE],
        image_pull_secret: true,
    }
    .into_node();
    // The serving certificate names the webhook Service.
    node.deps.push(meta::object(cluster, Kind::Service, WEBHOOK));
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::component::tests::{
        assert_matches_golden, cluster_with, find, fixture_cluster, golden, golden_command, rendered_command,
    };

    #[test]
    fn controller_matches_kkps_golden_deployment() {
        const GOLDEN: &str = "deployment-aws-1.33.0-operating-system-manager.yaml";
        let rendered = find(&render(&fixture_cluster()), Kind::Deployment, NAME).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        assert!(rendered["spec"]["template"]["spec"].get("imagePullSecrets").is_none());
    }

    #[test]
    fn webhook_matches_kkps_golden_deployment_and_service() {
        const GOLDEN: &str = "deployment-aws-1.33.0-operating-system-manager-webhook.yaml";
        let nodes = render(&fixture_cluster());
        let rendered = find(&nodes, Kind::Deployment, WEBHOOK).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        let service = find(&nodes, Kind::Service, WEBHOOK).unwrap();
        let golden_service = golden("service-aws-1.33.0-operating-system-manager-webhook.yaml");
        assert_eq!(service["spec"]["ports"], golden_service["spec"]["ports"]);
        assert_eq!(service["spec"]["selector"], golden_service["spec"]["selector"]);
        assert!(find(&nodes, Kind::ServiceAccount, SERVICE_ACCOUNT).is_some());
    }

    #[test]
    fn cluster_dns_follows_node_local_dns_cache() {
        assert_eq!(cluster_dns(&fixture_cluster()), "169.254.20.10");
        assert_eq!(cluster_dns(&cluster_with(|c| c.network.node_local_dns_cache = false)), "10.240.16.10");
    }

    #[test]
    fn credentials_only_for_providers_osm_reads() {
        let aws = render(&fixture_cluster());
        assert!(!aws[1].deps.contains(&meta::secret(&fixture_cluster(), CLOUD_CREDENTIALS)));
        let openstack = cluster_with(|c| c.provider = "openstack".into());
        assert!(render(&openstack)[1].deps.contains(&meta::secret(&openstack, CLOUD_CREDENTIALS)));
    }
}
