//! machine-controller and its admission webhook: Deployments `machine-controller` and
//! `machine-controller-webhook`, Service `machine-controller-webhook`, their ServiceAccounts
//! (KKP `pkg/resources/machinecontroller`). KKP runs none of it for `edge` clusters, whose
//! nodes are brought by the user.

use super::DesiredNode;
use super::component::{self, CA_BUNDLE, CLOUD_CREDENTIALS, Component, SAFE_TO_EVICT, env, nobody_pod_security, restricted_container};
use super::controller_manager::external_cloud_provider;
use super::meta::{self, configmap_volume, mount, secret_volume};
use crate::object::Kind;
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, PodSpec, Volume, VolumeMount};
use std::collections::BTreeMap;

/// The controller's Deployment name and `app` label; both containers carry this name.
pub const NAME: &str = "machine-controller";
/// The webhook's Deployment and Service name and `app` label.
pub const WEBHOOK: &str = "machine-controller-webhook";
/// The controller's ServiceAccount.
pub const SERVICE_ACCOUNT: &str = "kubermatic-machine-controller";
/// The webhook's ServiceAccount.
pub const WEBHOOK_SERVICE_ACCOUNT: &str = "kubermatic-machine-controller-webhook";
/// KKP's pinned machine-controller image.
pub const IMAGE: &str = "quay.io/kubermatic/machine-controller:v1.66.2";
const KUBECONFIG_SECRET: &str = "machinecontroller-kubeconfig";
const SERVING_CERT: &str = "machinecontroller-webhook-serving-cert";
const WEBHOOK_PORT: i32 = 9876;

/// Whether KKP runs machine-controller for the cluster's provider.
pub fn enabled(cluster: &Cluster) -> bool {
    cluster.provider != "edge"
}

/// All machine-controller nodes (none for `edge`).
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    if !enabled(cluster) {
        return Vec::new();
    }
    vec![
        component::service_account(cluster, SERVICE_ACCOUNT),
        component::service_account(cluster, WEBHOOK_SERVICE_ACCOUNT),
        controller(cluster),
        component::cluster_ip_service(cluster, WEBHOOK, vec![component::service_port(None, 443, WEBHOOK_PORT)]),
        webhook(cluster),
    ]
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
        "-ca-bundle",
        "/etc/kubernetes/pki/ca-bundle/ca-bundle.pem",
        "-node-csr-approver",
    ]
    .map(String::from)
    .to_vec();
    if external_cloud_provider(cluster) {
        flags.push("-node-external-cloud-provider".into());
    }
    flags
}

/// The webhook's arguments.
pub fn webhook_flags(cluster: &Cluster) -> Vec<String> {
    let mut flags = vec![
        "-worker-cluster-kubeconfig".to_string(),
        "/etc/kubernetes/worker-kubeconfig/kubeconfig".into(),
        "-listen-address".into(),
        format!("0.0.0.0:{WEBHOOK_PORT}"),
        "-namespace".into(),
        cluster.namespace(),
        "-ca-bundle".into(),
        "/etc/kubernetes/pki/ca-bundle/ca-bundle.pem".into(),
        "-tls-cert-path".into(),
        "/etc/kubernetes/pki/serving-cert/cert.pem".into(),
        "-tls-key-path".into(),
        "/etc/kubernetes/pki/serving-cert/key.pem".into(),
    ];
    if external_cloud_provider(cluster) {
        flags.push("-node-external-cloud-provider".into());
    }
    flags
}

fn controller(cluster: &Cluster) -> DesiredNode {
    let mut env_vars = component::cloud_env(cluster);
    let mut secrets = vec![KUBECONFIG_SECRET];
    if component::reads_credentials(&env_vars) {
        secrets.push(CLOUD_CREDENTIALS);
    }
    env_vars.push(env("PROBER_KUBECONFIG", "/etc/kubernetes/kubeconfig/kubeconfig"));
    let container = Container {
        name: NAME.into(),
        image: Some(IMAGE.into()),
        command: Some(vec!["/usr/local/bin/machine-controller".into()]),
        args: Some(controller_flags(cluster)),
        env: Some(env_vars),
        liveness_probe: Some(component::http_probe("/readyz", 8085, "HTTP", 3, 10, Some(15))),
        resources: Some(component::resources("25m", "32Mi", "2", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![
            mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig"),
            mount(CA_BUNDLE, "/etc/kubernetes/pki/ca-bundle"),
            VolumeMount { name: "temp".into(), mount_path: "/tmp".into(), ..Default::default() },
        ]),
        ..Default::default()
    };
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/path".into(), "/metrics".into()),
        ("prometheus.io/port".into(), "8080".into()),
        (SAFE_TO_EVICT.to_string(), "temp".into()),
    ]);
    Component {
        cluster,
        name: NAME,
        replicas: 1,
        extra_pod_labels: BTreeMap::new(),
        annotations,
        pod: PodSpec {
            containers: vec![container],
            volumes: Some(vec![
                secret_volume(KUBECONFIG_SECRET),
                configmap_volume(CA_BUNDLE),
                Volume { name: "temp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
            ]),
            security_context: Some(nobody_pod_security()),
            service_account_name: Some(SERVICE_ACCOUNT.into()),
            ..Default::default()
        },
        // The controller starts once the user cluster serves the Machine CRD.
        wrap: Some((NAME, vec!["cluster.k8s.io,v1alpha1,machines,kube-system"])),
        strategy: None,
        secrets,
        configmaps: vec![CA_BUNDLE],
        image_pull_secret: true,
    }
    .into_node()
}

fn webhook(cluster: &Cluster) -> DesiredNode {
    let mut env_vars = component::cloud_env(cluster);
    let mut secrets = vec![KUBECONFIG_SECRET, SERVING_CERT];
    if component::reads_credentials(&env_vars) {
        secrets.push(CLOUD_CREDENTIALS);
    }
    env_vars.push(env("PROBER_KUBECONFIG", "/etc/kubernetes/worker-kubeconfig/kubeconfig"));
    let container = Container {
        name: NAME.into(),
        image: Some(IMAGE.into()),
        command: Some(vec!["/usr/local/bin/webhook".into()]),
        args: Some(webhook_flags(cluster)),
        env: Some(env_vars),
        readiness_probe: Some(component::http_probe("/healthz", WEBHOOK_PORT, "HTTPS", 3, 10, None)),
        liveness_probe: Some(component::http_probe("/healthz", WEBHOOK_PORT, "HTTPS", 8, 10, Some(15))),
        resources: Some(component::resources("10m", "32Mi", "100m", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![
            mount(KUBECONFIG_SECRET, "/etc/kubernetes/worker-kubeconfig"),
            mount(SERVING_CERT, "/etc/kubernetes/pki/serving-cert"),
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
            volumes: Some(vec![secret_volume(KUBECONFIG_SECRET), secret_volume(SERVING_CERT), configmap_volume(CA_BUNDLE)]),
            security_context: Some(nobody_pod_security()),
            service_account_name: Some(WEBHOOK_SERVICE_ACCOUNT.into()),
            ..Default::default()
        },
        wrap: Some((NAME, vec!["Machine,cluster.k8s.io/v1alpha1"])),
        strategy: None,
        secrets,
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
        const GOLDEN: &str = "deployment-aws-1.33.0-machine-controller.yaml";
        let rendered = find(&render(&fixture_cluster()), Kind::Deployment, NAME).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        let args = |v: &serde_json::Value| v["spec"]["template"]["spec"]["containers"][0]["args"].as_array().unwrap().clone();
        let (r, g) = (args(&rendered), args(&golden(GOLDEN)));
        assert_eq!(r[r.len() - 2..], g[g.len() - 2..], "waits for the Machine CRD like KKP");
    }

    #[test]
    fn webhook_matches_kkps_golden_deployment_and_service() {
        const GOLDEN: &str = "deployment-aws-1.33.0-machine-controller-webhook.yaml";
        let nodes = render(&fixture_cluster());
        let rendered = find(&nodes, Kind::Deployment, WEBHOOK).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        let service = find(&nodes, Kind::Service, WEBHOOK).unwrap();
        let golden_service = golden("service-aws-1.33.0-machine-controller-webhook.yaml");
        assert_eq!(service["spec"]["ports"], golden_service["spec"]["ports"]);
        assert_eq!(service["spec"]["selector"], golden_service["spec"]["selector"]);
        assert!(find(&nodes, Kind::ServiceAccount, SERVICE_ACCOUNT).is_some());
        assert!(find(&nodes, Kind::ServiceAccount, WEBHOOK_SERVICE_ACCOUNT).is_some());
    }

    #[test]
    fn edge_clusters_have_no_machine_controller() {
        assert!(render(&cluster_with(|c| c.provider = "edge".into())).is_empty());
    }

    #[test]
    fn external_cloud_provider_reaches_new_nodes() {
        let external = cluster_with(|c| {
            c.features.insert("externalCloudProvider".into(), true);
        });
        assert!(controller_flags(&external).contains(&"-node-external-cloud-provider".to_string()));
        assert!(webhook_flags(&external).contains(&"-node-external-cloud-provider".to_string()));
        assert!(!controller_flags(&fixture_cluster()).contains(&"-node-external-cloud-provider".to_string()));
    }
}
