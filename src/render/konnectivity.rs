//! Konnectivity, KKP's tunnel from the control plane to the nodes (KKP
//! `pkg/resources/konnectivity`): the `konnectivity-server` sidecar of the apiserver, which the
//! apiserver reaches through a Unix socket chosen by its egress selector (ConfigMap
//! `kube-apiserver-egress`), and Service `konnectivity-server`, where the nodes' agents connect.

use super::apiserver::{config_map, expose_annotations};
use super::component::{self, http_probe};
use super::meta::{self, mount};
use super::{Body, DesiredNode, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::{Cluster, Tunnel};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, SecretVolumeSource, Service, ServiceSpec, Volume, VolumeMount,
};

/// The proxy-server image KKP runs: the network-proxy release for the cluster's minor.
fn image(cluster: &Cluster) -> String {
    let release = match (cluster.version.major, cluster.version.minor) {
        (1, 32) => "v0.32.1",
        (1, 33) => "v0.33.1",
        (1, 34) | (1, 35) => "v0.34.0",
        _ => "v0.35.0",
    };
    format!("registry.k8s.io/kas-network-proxy/proxy-server:{release}")
}
/// Where agents connect.
pub const AGENT_PORT: i32 = 8132;
const ADMIN_PORT: i32 = 8133;
const HEALTH_PORT: i32 = 8134;
/// The emptyDir the apiserver and the sidecar share for the socket.
pub const UDS_VOLUME: &str = "konnectivity-uds";
const UDS_DIR: &str = "/etc/kubernetes/konnectivity-server";
/// The apiserver's egress selector configuration.
pub const EGRESS_CONFIGMAP: &str = "kube-apiserver-egress";
/// Where the apiserver reads it.
pub const EGRESS_CONFIG_PATH: &str = "/etc/kubernetes/konnectivity/egress-selector-configuration.yaml";
/// The Secrets the sidecar mounts.
pub const SIDECAR_SECRETS: [&str; 2] = ["konnectivity-kubeconfig", "konnectivityproxy-tls"];

/// Service `konnectivity-server` and ConfigMap `kube-apiserver-egress`; nothing for the
/// OpenVPN tunnel.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    if cluster.tunnel != Tunnel::Konnectivity {
        return Vec::new();
    }
    let egress = format!(
        "apiVersion: apiserver.k8s.io/v1beta1\negressSelections:\n- connection:\n    proxyProtocol: GRPC\n    transport:\n      uds:\n        udsName: {UDS_DIR}/konnectivity-server.socket\n  name: cluster\nkind: EgressSelectorConfiguration\n"
    );
    vec![service(cluster), config_map(cluster, EGRESS_CONFIGMAP, "egress-selector-configuration.yaml", egress)]
}

/// Where the nodes' agents connect: 443 to the sidecar's agent port, exposed like the apiserver.
fn service(cluster: &Cluster) -> DesiredNode {
    let mut metadata = component::metadata("konnectivity-server", cluster);
    metadata.annotations = Some(expose_annotations(cluster, "secure", &format!("konnectivity-server.{}", cluster.external_name)));
    let service = Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(cluster.apiserver_service_type.as_str().into()),
            selector: Some(component::app_labels("apiserver")),
            ports: Some(vec![component::service_port(Some("secure"), 443, AGENT_PORT)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::Service,
        "konnectivity-server",
        Role::Service,
        Vec::new(),
        Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
    )
}

/// The `konnectivity-server` container of the apiserver pod.
pub fn sidecar(cluster: &Cluster) -> Container {
    let args = [
        "--logtostderr=true".to_string(),
        "-v=3".into(),
        "--cluster-key=/etc/kubernetes/pki/konnectivityproxy-tls.key".into(),
        "--cluster-cert=/etc/kubernetes/pki/konnectivityproxy-tls.crt".into(),
        format!("--uds-name={UDS_DIR}/konnectivity-server.socket"),
        "--kubeconfig=/etc/kubernetes/kubeconfig/kubeconfig".into(),
        format!("--server-count={}", cluster.apiserver_replicas),
        "--mode=grpc".into(),
        "--server-port=0".into(),
        format!("--agent-port={AGENT_PORT}"),
        format!("--admin-port={ADMIN_PORT}"),
        "--admin-bind-address=0.0.0.0".into(),
        format!("--health-port={HEALTH_PORT}"),
        "--agent-namespace=kube-system".into(),
        "--agent-service-account=system-konnectivity-agent".into(),
        "--delete-existing-uds-file=true".into(),
        "--authentication-audience=system:konnectivity-server".into(),
        "--proxy-strategies=default".into(),
        "--keepalive-time=1m".into(),
        "--xfr-channel-size=150".into(),
    ];
    let port = |name: &str, port: i32| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    Container {
        name: "konnectivity-server".into(),
        image: Some(image(cluster)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(vec!["/proxy-server".into()]),
        args: Some(args.to_vec()),
        ports: Some(vec![port("agentport", AGENT_PORT), port("adminport", ADMIN_PORT), port("healthport", HEALTH_PORT)]),
        liveness_probe: Some(http_probe("/healthz", HEALTH_PORT, "HTTP", 3, 10, Some(15))),
        resources: Some(component::resources("10m", "10Mi", "2", "200Mi")),
        volume_mounts: Some(vec![
            uds_mount(),
            mount("konnectivity-kubeconfig", "/etc/kubernetes/kubeconfig"),
            mount("konnectivityproxy-tls", "/etc/kubernetes/pki/"),
        ]),
        ..Default::default()
    }
}

/// The volumes the sidecar and the apiserver's egress need.
pub fn apiserver_volumes() -> Vec<Volume> {
    let secret = |name: &str| Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource { secret_name: Some(name.into()), default_mode: Some(420), ..Default::default() }),
        ..Default::default()
    };
    vec![
        secret("konnectivity-kubeconfig"),
        secret("konnectivityproxy-tls"),
        Volume { name: UDS_VOLUME.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
        Volume {
            name: EGRESS_CONFIGMAP.into(),
            config_map: Some(ConfigMapVolumeSource { name: EGRESS_CONFIGMAP.into(), default_mode: Some(420), ..Default::default() }),
            ..Default::default()
        },
    ]
}

/// The apiserver container's mounts for the socket and its egress selector.
pub fn apiserver_mounts() -> Vec<VolumeMount> {
    vec![uds_mount(), mount(EGRESS_CONFIGMAP, "/etc/kubernetes/konnectivity")]
}

fn uds_mount() -> VolumeMount {
    VolumeMount { name: UDS_VOLUME.into(), mount_path: UDS_DIR.into(), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::component::tests::{cluster_with, find, fixture_cluster, golden};

    #[test]
    fn service_and_egress_match_kkps_golden() {
        let nodes = render(&fixture_cluster());
        let service = find(&nodes, Kind::Service, "konnectivity-server").unwrap();
        let theirs = golden("service-aws-1.33.0-konnectivity-server.yaml");
        assert_eq!(service["spec"], theirs["spec"]);
        assert_eq!(service["metadata"]["annotations"], theirs["metadata"]["annotations"]);
        let egress = find(&nodes, Kind::ConfigMap, EGRESS_CONFIGMAP).unwrap();
        assert_eq!(egress["data"], golden("configmap-aws-1.33.0-kube-apiserver-egress.yaml")["data"]);
    }

    #[test]
    fn nothing_for_the_openvpn_tunnel() {
        assert!(render(&cluster_with(|c| c.tunnel = Tunnel::OpenVpn)).is_empty());
    }

    #[test]
    fn the_proxy_server_release_follows_the_kubernetes_minor() {
        let image = |minor| sidecar(&cluster_with(|c| c.version = semver::Version::new(1, minor, 2))).image.unwrap();
        assert!(image(33).ends_with(":v0.33.1"));
        assert!(image(35).ends_with(":v0.34.0"));
        assert!(image(36).ends_with(":v0.35.0"));
    }

    #[test]
    fn the_server_count_follows_the_apiserver_replicas() {
        let args = sidecar(&cluster_with(|c| c.apiserver_replicas = 3)).args.unwrap();
        assert!(args.contains(&"--server-count=3".to_string()));
    }
}
