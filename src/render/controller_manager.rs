//! kube-controller-manager: Deployment `controller-manager` (KKP
//! `pkg/resources/controllermanager`), with KKP's flags per CNI, provider and features.

use super::DesiredNode;
use super::component::{self, CA_BUNDLE, CLOUD_CREDENTIALS, Component, env};
use super::meta::{configmap_volume, mount, secret_volume};
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, Volume, VolumeMount};
use std::collections::BTreeMap;

/// Deployment name, `app` label and container name.
pub const NAME: &str = "controller-manager";
const KUBECONFIG_SECRET: &str = "controllermanager-kubeconfig";
const KUBECONFIG: &str = "/etc/kubernetes/kubeconfig/kubeconfig";
const PORT: i32 = 10257;
/// KKP's Secret with a GCP service account, mounted for the in-tree GCE provider.
const GOOGLE_SERVICE_ACCOUNT_SECRET: &str = super::cloud_config::GOOGLE_SERVICE_ACCOUNT;
const GOOGLE_SERVICE_ACCOUNT_VOLUME: &str = "google-service-account-volume";

/// Whether the cluster runs its cloud provider out of tree (`externalCloudProvider` feature).
pub fn external_cloud_provider(cluster: &Cluster) -> bool {
    cluster.features.get("externalCloudProvider").copied().unwrap_or(false)
}

/// The value of `--cloud-provider` KKP passes (`GetKubernetesCloudProviderName`): `external`
/// when the feature is on, the in-tree name for providers that have one, else none.
pub fn kubernetes_cloud_provider(cluster: &Cluster) -> Option<&'static str> {
    let in_tree = match cluster.provider.as_str() {
        "aws" => Some("aws"),
        "vsphere" => Some("vsphere"),
        "azure" => Some("azure"),
        "gcp" => Some("gce"),
        "openstack" => Some("openstack"),
        "digitalocean" => Some("digitalocean"),
        "hetzner" => None,
        _ => return None,
    };
    if external_cloud_provider(cluster) { Some("external") } else { in_tree }
}

/// `--configure-cloud-routes` per provider (`CloudRoutesFlagVal`).
fn configure_cloud_routes(cluster: &Cluster) -> Option<bool> {
    match cluster.provider.as_str() {
        "aws" | "openstack" | "vsphere" | "azure" => Some(false),
        "gcp" => Some(true),
        _ => None,
    }
}

fn join(nets: &[ipnet::IpNet]) -> String {
    nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// kube-controller-manager's arguments.
pub fn flags(cluster: &Cluster) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--kubeconfig",
        KUBECONFIG,
        "--service-account-private-key-file",
        "/etc/kubernetes/service-account-key/sa.key",
        "--root-ca-file",
        "/etc/kubernetes/pki/ca/ca.crt",
        "--cluster-signing-cert-file",
        "/etc/kubernetes/pki/ca/ca.crt",
        "--cluster-signing-key-file",
        "/etc/kubernetes/pki/ca/ca.key",
        "--controllers",
        "*,bootstrapsigner,tokencleaner",
        "--use-service-account-credentials",
        "--profiling=false",
    ]
    .map(String::from)
    .to_vec();

    // Cilium allocates node CIDRs itself.
    if cluster.cni.plugin != "cilium" {
        let network = &cluster.network;
        flags.extend(["--allocate-node-cidrs".to_string(), "--cluster-cidr".into(), join(&network.pods)]);
        flags.extend(["--service-cluster-ip-range".to_string(), join(&network.services)]);
        let v4 = network.pods.iter().any(|n| matches!(n, ipnet::IpNet::V4(_)));
        let v6 = network.pods.iter().any(|n| matches!(n, ipnet::IpNet::V6(_)));
        if v4 && v6 {
            flags.push(format!("--node-cidr-mask-size-ipv4={}", network.node_cidr_mask_size_ipv4));
        } else if v4 {
            flags.push(format!("--node-cidr-mask-size={}", network.node_cidr_mask_size_ipv4));
        }
        if let Some(routes) = configure_cloud_routes(cluster) {
            flags.push(format!("--configure-cloud-routes={routes}"));
        }
    }

    flags.extend(["--feature-gates".to_string(), "RotateKubeletServerCertificate=true".into()]);

    if let Some(provider) = kubernetes_cloud_provider(cluster).filter(|p| *p != "external") {
        flags.extend(["--cloud-provider".to_string(), provider.into(), "--cloud-config".into(), "/etc/kubernetes/cloud/config".into()]);
        // Clusters sharing an Azure resource group need distinct names for their public IPs.
        if provider == "azure" {
            flags.extend(["--cluster-name".to_string(), cluster.name.clone()]);
        }
    }
    flags.extend(
        [
            "--authentication-kubeconfig",
            KUBECONFIG,
            "--client-ca-file",
            "/etc/kubernetes/pki/ca/ca.crt",
            "--authentication-kubeconfig",
            KUBECONFIG,
            "--authorization-kubeconfig",
            KUBECONFIG,
        ]
        .map(String::from),
    );
    flags
}

/// KKP's controller-manager environment: the CA bundle, AWS credentials and settings, the GCP
/// service account path, the seed proxy.
fn env_vars(cluster: &Cluster) -> Vec<EnvVar> {
    let mut vars = vec![env("SSL_CERT_FILE", "/etc/kubernetes/pki/ca-bundle/ca-bundle.pem")];
    vars.extend(component::aws_in_tree_env(cluster));
    if cluster.provider == "gcp" {
        vars.push(env("GOOGLE_APPLICATION_CREDENTIALS", "/etc/gcp/serviceAccount"));
    }
    vars.extend(component::proxy_env(cluster));
    vars
}

/// The controller-manager Deployment.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let mut volumes: Vec<Volume> = vec![secret_volume("ca"), configmap_volume(CA_BUNDLE), secret_volume("service-account-key")];
    let mut mounts: Vec<VolumeMount> = vec![
        mount("ca", "/etc/kubernetes/pki/ca"),
        mount(CA_BUNDLE, "/etc/kubernetes/pki/ca-bundle"),
        mount("service-account-key", "/etc/kubernetes/service-account-key"),
    ];
    let mut secrets = vec!["ca", "service-account-key"];
    if super::cloud_config::renders_cloud_config(cluster) {
        volumes.push(secret_volume("cloud-config"));
        mounts.push(mount("cloud-config", "/etc/kubernetes/cloud"));
        secrets.push("cloud-config");
    }
    volumes.push(secret_volume(KUBECONFIG_SECRET));
    mounts.push(mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig"));
    secrets.push(KUBECONFIG_SECRET);
    if super::cloud_config::renders_google_service_account(cluster) {
        let mut volume = secret_volume(GOOGLE_SERVICE_ACCOUNT_SECRET);
        volume.name = GOOGLE_SERVICE_ACCOUNT_VOLUME.into();
        volumes.push(volume);
        mounts.push(mount(GOOGLE_SERVICE_ACCOUNT_VOLUME, "/etc/gcp"));
        secrets.push(GOOGLE_SERVICE_ACCOUNT_SECRET);
    }
    if cluster.provider == "vsphere" && secrets.contains(&"cloud-config") {
        // kube-controller-manager reads the VM's serial from here (kubernetes/kubernetes#65145).
        let mut serial = mount("cloud-config", "/sys/class/dmi/id/product_serial");
        serial.sub_path = Some("fakeVmwareUUID".into());
        mounts.push(serial);
    }
    let env = env_vars(cluster);
    if component::reads_credentials(&env) {
        secrets.push(CLOUD_CREDENTIALS);
    }

    let container = Container {
        name: NAME.into(),
        image: Some(format!("registry.k8s.io/kube-controller-manager:v{}", cluster.version)),
        command: Some(vec!["/usr/local/bin/kube-controller-manager".into()]),
        args: Some(flags(cluster)),
        env: Some(env),
        readiness_probe: Some(component::http_probe("/healthz", PORT, "HTTPS", 3, 10, None)),
        liveness_probe: Some(component::http_probe("/healthz", PORT, "HTTPS", 8, 10, Some(15))),
        resources: Some(component::resources("100m", "100Mi", "2", "2Gi")),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let annotations = BTreeMap::from([
        ("prometheus.io/path".to_string(), "/metrics".to_string()),
        ("prometheus.io/scrape_with_kube_cert".into(), "true".into()),
        ("prometheus.io/port".into(), PORT.to_string()),
    ]);
    vec![
        Component {
            cluster,
            name: NAME,
            replicas: 1,
            extra_pod_labels: BTreeMap::from([("app.kubernetes.io/version".to_string(), cluster.version.to_string())]),
            annotations,
            pod: PodSpec {
                containers: vec![container],
                volumes: Some(volumes),
                dns_policy: Some("ClusterFirst".into()),
                ..Default::default()
            },
            wrap: Some((NAME, Vec::new())),
            strategy: None,
            secrets,
            configmaps: vec![CA_BUNDLE],
            image_pull_secret: true,
        }
        .into_node(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::render::component::tests::{assert_matches_golden, cluster_with, find, fixture_cluster, flag_names, rendered_command};

    const GOLDEN: &str = "deployment-aws-1.33.0-controller-manager.yaml";

    fn command(cluster: &Cluster) -> Vec<String> {
        rendered_command(&find(&render(cluster), Kind::Deployment, NAME).unwrap())
    }

    #[test]
    fn matches_kkps_golden_deployment() {
        let rendered = find(&render(&fixture_cluster()), Kind::Deployment, NAME).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        // KKP's fixture cluster has no node CIDR mask; a defaulted one (24) adds the flag.
        let mut golden_flags = flag_names(&crate::render::component::tests::golden_command(GOLDEN));
        golden_flags.insert("node-cidr-mask-size".into());
        assert_eq!(flag_names(&rendered_command(&rendered)), golden_flags);
    }

    #[test]
    fn cloud_provider_follows_provider_and_external_feature() {
        let aws = command(&fixture_cluster());
        assert!(aws.windows(2).any(|w| w == ["--cloud-provider", "aws"]));
        let gcp = command(&cluster_with(|c| c.provider = "gcp".into()));
        assert!(gcp.windows(2).any(|w| w == ["--cloud-provider", "gce"]));
        assert!(gcp.contains(&"--configure-cloud-routes=true".to_string()));
        let azure = command(&cluster_with(|c| c.provider = "azure".into()));
        assert!(azure.windows(2).any(|w| w == ["--cluster-name", "de-test-01"]));
        let external = command(&cluster_with(|c| {
            c.features.insert("externalCloudProvider".into(), true);
        }));
        assert!(!external.iter().any(|a| a == "--cloud-provider" || a == "--cloud-config"));
        let hetzner = command(&cluster_with(|c| c.provider = "hetzner".into()));
        assert!(!hetzner.iter().any(|a| a == "--cloud-provider"));
    }

    #[test]
    fn cilium_allocates_node_cidrs_itself() {
        let cilium = command(&cluster_with(|c| c.cni.plugin = "cilium".into()));
        assert!(!cilium.iter().any(|a| a == "--allocate-node-cidrs" || a == "--cluster-cidr"));
        let canal = command(&fixture_cluster());
        assert!(canal.windows(2).any(|w| w == ["--cluster-cidr", "172.25.0.0/16"]));
        assert!(canal.contains(&"--node-cidr-mask-size=24".to_string()));
    }

    #[test]
    fn feature_gates_and_aws_credentials() {
        let cluster = fixture_cluster();
        assert!(command(&cluster).windows(2).any(|w| w == ["--feature-gates", "RotateKubeletServerCertificate=true"]));
        let nodes = render(&cluster);
        assert!(nodes[0].deps.contains(&crate::render::meta::secret(&cluster, CLOUD_CREDENTIALS)));
        let edge = render(&cluster_with(|c| c.provider = "edge".into()));
        assert!(!edge[0].deps.contains(&crate::render::meta::secret(&cluster, CLOUD_CREDENTIALS)));
    }
}
