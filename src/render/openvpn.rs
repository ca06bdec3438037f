//! OpenVPN (KKP's legacy node-access tunnel, for clusters with `konnectivityEnabled: false`):
//! Service `openvpn-server` on 1194, ConfigMap `openvpn-client-configs`, Deployment
//! `openvpn-server` (KKP `pkg/resources/openvpn`), and the apiserver's `openvpn-client` and
//! `dnat-controller` sidecars (KKP `pkg/resources/vpnsidecar`), which carry its traffic to
//! the nodes.

use super::meta::{self, fingerprint_annotations, mount, object_meta, selector, selector_labels};
use super::{Body, DesiredNode, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::{Cluster, ExposeStrategy, Tunnel};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, ContainerPort, PodSpec, PodTemplateSpec, SecurityContext, Service, ServicePort, ServiceSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

const MOUNTED_SECRETS: [&str; 2] = ["openvpn-ca", "openvpn-server-certificates"];
const IMAGE: &str = "quay.io/kubermatic/openvpn:v2.5.2-r0";
/// The Secrets the apiserver's sidecars mount.
pub const SIDECAR_SECRETS: [&str; 2] = ["openvpn-client-certificates", "kubeletdnatcontroller-kubeconfig"];
const DNAT_CONTROLLER_IMAGE: &str = "quay.io/kubermatic/kubeletdnat-controller:v2.31.0";

/// The IPv4 networks OpenVPN routes (pods, services, node access), as address and netmask.
fn routed_networks(cluster: &Cluster) -> Vec<(std::net::Ipv4Addr, std::net::Ipv4Addr)> {
    let all = cluster.network.pods.iter().chain(&cluster.network.services).chain(std::iter::once(&cluster.network.node_access_network));
    all.filter_map(|net| match net {
        ipnet::IpNet::V4(v4) => Some((v4.network(), v4.netmask())),
        ipnet::IpNet::V6(_) => None,
    })
    .collect()
}

/// The OpenVPN nodes; none with Konnectivity.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    if cluster.tunnel != Tunnel::OpenVpn {
        return Vec::new();
    }
    let mut service_meta = object_meta("openvpn-server", "openvpn-server", cluster);
    let (service_type, annotations) = match cluster.expose_strategy {
        ExposeStrategy::NodePort => ("NodePort", [("nodeport-proxy.k8s.io/expose", "true")]),
        ExposeStrategy::LoadBalancer => ("NodePort", [("nodeport-proxy.k8s.io/expose-namespaced", "true")]),
        ExposeStrategy::Tunneling => ("ClusterIP", [("nodeport-proxy.k8s.io/expose", "Tunneling")]),
    };
    service_meta.annotations = Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let service = Service {
        metadata: service_meta,
        spec: Some(ServiceSpec {
            type_: Some(service_type.into()),
            selector: Some(selector_labels("openvpn-server", cluster)),
            ports: Some(vec![ServicePort {
                name: Some("secure".into()),
                port: 1194,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(1194)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };

    // `iroute` lines let the server route the user cluster's networks back through the client.
    let networks = routed_networks(cluster);
    let iroutes: String = networks.iter().map(|(network, mask)| format!("iroute {network} {mask}\n")).collect();
    let configmap = ConfigMap {
        metadata: object_meta("openvpn-client-configs", "openvpn-server", cluster),
        data: Some(BTreeMap::from([("user-cluster-client".to_string(), iroutes)])),
        ..Default::default()
    };

    let (annotations, fingerprints) = fingerprint_annotations(cluster, &MOUNTED_SECRETS);
    let routes = networks.iter().map(|(network, mask)| format!("--push=route {network} {mask}"));
    let mut args = vec![
        "--proto".to_string(),
        "tcp".into(),
        "--dev".into(),
        "tun".into(),
        "--mode".into(),
        "server".into(),
        "--lport".into(),
        "1194".into(),
        "--server".into(),
        "10.20.0.0".into(),
        "255.255.255.0".into(),
        "--ca".into(),
        "/etc/kubernetes/pki/ca/ca.crt".into(),
        "--cert".into(),
        "/etc/openvpn/pki/server/server.crt".into(),
        "--key".into(),
        "/etc/openvpn/pki/server/server.key".into(),
        "--dh".into(),
        "none".into(),
        "--cipher".into(),
        "AES-256-GCM".into(),
        "--client-config-dir".into(),
        "/etc/openvpn/clients".into(),
    ];
    args.extend(routes);
    let deployment = Deployment {
        metadata: object_meta("openvpn-server", "openvpn-server", cluster),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: selector("openvpn-server", cluster),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector_labels("openvpn-server", cluster)),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "openvpn-server".into(),
                        image: Some(IMAGE.into()),
                        command: Some(vec!["/usr/sbin/openvpn".into()]),
                        args: Some(args),
                        ports: Some(vec![ContainerPort {
                            name: Some("secure".into()),
                            container_port: 1194,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        }]),
                        volume_mounts: Some(vec![
                            mount("openvpn-ca", "/etc/kubernetes/pki/ca"),
                            mount("openvpn-server-certificates", "/etc/openvpn/pki/server"),
                            mount("openvpn-client-configs", "/etc/openvpn/clients"),
                        ]),
                        ..Default::default()
                    }],
                    volumes: Some({
                        let mut volumes = meta::secret_volumes(&MOUNTED_SECRETS, &["openvpn-ca"]);
                        volumes.push(meta::configmap_volume("openvpn-client-configs"));
                        volumes
                    }),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let configmap_address = meta::object(cluster, Kind::ConfigMap, "openvpn-client-configs");
    let mut deps = vec![meta::object(cluster, Kind::Service, "openvpn-server"), configmap_address];
    deps.extend(MOUNTED_SECRETS.iter().map(|s| meta::secret(cluster, s)));
    vec![
        meta::cluster_node(
            cluster,
            Kind::Service,
            "openvpn-server",
            Role::Service,
            Vec::new(),
            Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
        ),
        meta::cluster_node(
            cluster,
            Kind::ConfigMap,
            "openvpn-client-configs",
            Role::Config,
            Vec::new(),
            Body::Object { manifest: manifest(&configmap), fingerprints: Vec::new() },
        ),
        meta::cluster_node(
            cluster,
            Kind::Deployment,
            "openvpn-server",
            Role::Workload,
            deps,
            Body::Object { manifest: manifest(&deployment), fingerprints },
        ),
    ]
}
/// The apiserver's sidecars: `openvpn-client` dials the openvpn-server and brings up the
/// `kube` interface; `dnat-controller` rewrites kubelet addresses onto it.
pub fn apiserver_sidecars(cluster: &Cluster) -> Vec<Container> {
    let net_admin = || SecurityContext {
        capabilities: Some(Capabilities { add: Some(vec!["NET_ADMIN".into()]), ..Default::default() }),
        ..Default::default()
    };
    let client_args = [
        "--client",
        "--proto",
        "tcp",
        "--dev",
        "kube",
        "--auth-nocache",
        "--nobind",
        "--connect-timeout",
        "5",
        "--persist-key",
        "--verb",
        "3",
        "--ca",
        "/etc/openvpn/pki/client/ca.crt",
        "--cert",
        "/etc/openvpn/pki/client/client.crt",
        "--key",
        "/etc/openvpn/pki/client/client.key",
        "--remote-cert-tls",
        "server",
        "--cipher",
        "AES-256-GCM",
        "--script-security",
        "2",
        "--status",
        "/run/openvpn/openvpn-status",
    ];
    let mut args: Vec<String> = client_args.iter().map(|a| a.to_string()).collect();
    args.extend(["--remote".into(), format!("openvpn-server.{}.svc.cluster.local", cluster.namespace()), "1194".into()]);
    vec![
        Container {
            name: "openvpn-client".into(),
            image: Some(IMAGE.into()),
            command: Some(vec!["/usr/sbin/openvpn".into()]),
            args: Some(args),
            security_context: Some(net_admin()),
            resources: Some(super::component::resources("5m", "5Mi", "100m", "32Mi")),
            volume_mounts: Some(vec![mount("openvpn-client-certificates", "/etc/openvpn/pki/client")]),
            ..Default::default()
        },
        Container {
            name: "dnat-controller".into(),
            image: Some(DNAT_CONTROLLER_IMAGE.into()),
            command: Some(vec!["/usr/local/bin/kubeletdnat-controller".into()]),
            args: Some(vec![
                "-kubeconfig".into(),
                "/etc/kubernetes/kubeconfig/kubeconfig".into(),
                "-node-access-network".into(),
                cluster.network.node_access_network.to_string(),
                "-vpn-interface".into(),
                "kube".into(),
            ]),
            security_context: Some(net_admin()),
            resources: Some(super::component::resources("5m", "16Mi", "100m", "64Mi")),
            volume_mounts: Some(vec![mount("kubeletdnatcontroller-kubeconfig", "/etc/kubernetes/kubeconfig")]),
            ..Default::default()
        },
    ]
}

/// The volumes of the sidecars' Secrets.
pub fn apiserver_volumes() -> Vec<Volume> {
    meta::secret_volumes(&SIDECAR_SECRETS, &[])
}
