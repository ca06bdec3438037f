//! kube-scheduler: Deployment `scheduler` (KKP `pkg/resources/scheduler`).

use super::DesiredNode;
use super::component::{self, CA_BUNDLE, Component, env};
use super::meta::{ca_cert_volume, configmap_volume, mount, secret_volume};
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use std::collections::BTreeMap;

/// Deployment name, `app` label and container name.
pub const NAME: &str = "scheduler";
const KUBECONFIG_SECRET: &str = "scheduler-kubeconfig";
const KUBECONFIG: &str = "/etc/kubernetes/kubeconfig/kubeconfig";
const PORT: i32 = 10259;

/// kube-scheduler's arguments.
pub fn flags() -> Vec<String> {
    [
        "--kubeconfig",
        KUBECONFIG,
        "--authentication-kubeconfig",
        KUBECONFIG,
        "--authorization-kubeconfig",
        KUBECONFIG,
        "--client-ca-file",
        "/etc/kubernetes/pki/ca/ca.crt",
        "--profiling=false",
    ]
    .map(String::from)
    .to_vec()
}

/// The scheduler Deployment.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let container = Container {
        name: NAME.into(),
        image: Some(format!("registry.k8s.io/kube-scheduler:v{}", cluster.version)),
        command: Some(vec!["/usr/local/bin/kube-scheduler".into()]),
        args: Some(flags()),
        env: Some(vec![env("SSL_CERT_FILE", "/etc/kubernetes/pki/ca-bundle/ca-bundle.pem")]),
        readiness_probe: Some(component::http_probe("/healthz", PORT, "HTTPS", 3, 10, None)),
        liveness_probe: Some(component::http_probe("/healthz", PORT, "HTTPS", 8, 10, Some(15))),
        resources: Some(component::resources("20m", "64Mi", "1", "512Mi")),
        volume_mounts: Some(vec![
            mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig"),
            mount("ca", "/etc/kubernetes/pki/ca"),
            mount(CA_BUNDLE, "/etc/kubernetes/pki/ca-bundle"),
        ]),
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
                // The scheduler verifies clients with the CA certificate only, never its key.
                volumes: Some(vec![ca_cert_volume("ca"), configmap_volume(CA_BUNDLE), secret_volume(KUBECONFIG_SECRET)]),
                dns_policy: Some("ClusterFirst".into()),
                ..Default::default()
            },
            wrap: Some((NAME, Vec::new())),
            strategy: None,
            secrets: vec!["ca", KUBECONFIG_SECRET],
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
    use crate::render::component::tests::{assert_matches_golden, find, fixture_cluster, flag_names, golden_command, rendered_command};

    const GOLDEN: &str = "deployment-aws-1.33.0-scheduler.yaml";

    #[test]
    fn matches_kkps_golden_deployment() {
        let cluster = fixture_cluster();
        let nodes = render(&cluster);
        let rendered = find(&nodes, Kind::Deployment, NAME).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        assert_eq!(flag_names(&rendered_command(&rendered)), flag_names(&golden_command(GOLDEN)));
        assert_eq!(rendered["spec"]["replicas"], 1);
        assert_eq!(rendered["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"], "1.33.0");
        assert!(nodes[0].deps.contains(&crate::render::meta::object(&cluster, Kind::ConfigMap, CA_BUNDLE)));
    }
}
