//! kube-state-metrics for the user cluster, run in the seed: Deployment `kube-state-metrics`
//! (KKP `pkg/resources/kubestatemetrics`), scraped by the cluster's Prometheus.

use super::DesiredNode;
use super::component::{self, Component, SAFE_TO_EVICT};
use super::meta::{mount, secret_volume};
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, PodSecurityContext, PodSpec, SeccompProfile, SecurityContext, Volume,
    VolumeMount,
};
use std::collections::BTreeMap;

/// Deployment name, `app` label and container name.
pub const NAME: &str = "kube-state-metrics";
/// KKP's pinned kube-state-metrics image.
pub const IMAGE: &str = "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.12.0";
const KUBECONFIG_SECRET: &str = "kube-state-metrics-kubeconfig";

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort { name: Some(name.into()), container_port: port, protocol: Some("TCP".into()), ..Default::default() }
}

/// The kube-state-metrics Deployment.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let container = Container {
        name: NAME.into(),
        image: Some(IMAGE.into()),
        command: Some(vec!["/kube-state-metrics".into()]),
        args: Some(
            ["--kubeconfig", "/etc/kubernetes/kubeconfig/kubeconfig", "--port", "8080", "--telemetry-port", "8081"]
                .map(String::from)
                .to_vec(),
        ),
        ports: Some(vec![port("metrics", 8080), port("telemetry", 8081)]),
        liveness_probe: Some(component::http_probe("/healthz", 8080, "HTTP", 3, 10, None)),
        readiness_probe: Some(component::http_probe("/", 8080, "HTTP", 3, 10, None)),
        resources: Some(component::resources("50m", "64Mi", "150m", "1Gi")),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            read_only_root_filesystem: Some(true),
            run_as_group: Some(65534),
            run_as_non_root: Some(true),
            run_as_user: Some(65534),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig"),
            VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() },
        ]),
        ..Default::default()
    };
    let annotations =
        BTreeMap::from([("prometheus.io/scrape".to_string(), "true".to_string()), (SAFE_TO_EVICT.to_string(), "tmp".to_string())]);
    vec![
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
                    Volume { name: "tmp".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
                ]),
                security_context: Some(PodSecurityContext { fs_group: Some(65534), ..Default::default() }),
                ..Default::default()
            },
            wrap: Some((NAME, Vec::new())),
            strategy: None,
            secrets: vec![KUBECONFIG_SECRET],
            configmaps: Vec::new(),
            image_pull_secret: true,
        }
        .into_node(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::render::component::tests::{assert_matches_golden, find, fixture_cluster, golden, golden_command, rendered_command};

    const GOLDEN: &str = "deployment-aws-1.33.0-kube-state-metrics.yaml";

    #[test]
    fn matches_kkps_golden_deployment() {
        let rendered = find(&render(&fixture_cluster()), Kind::Deployment, NAME).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        let annotations = &rendered["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations[SAFE_TO_EVICT], golden(GOLDEN)["spec"]["template"]["metadata"]["annotations"][SAFE_TO_EVICT]);
    }
}
