//! kube-apiserver: Service `apiserver-external`, Deployment `apiserver`, PodDisruptionBudget
//! (KKP `pkg/resources/apiserver`).

use super::meta::{self, fingerprint_annotations, mount, object_meta, selector, selector_labels};
use super::{Body, DesiredNode, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::{Cluster, ExposeStrategy};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, PodSpec, PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The port the apiserver listens on. KKP uses the allocated NodePort for NodePort and
/// LoadBalancer clusters; kkp cannot know it before apply and uses KKP's Tunneling port for all.
pub const SECURE_PORT: i32 = 6443;

/// Secrets the apiserver pods mount.
const MOUNTED_SECRETS: [&str; 8] = [
    "ca",
    "front-proxy-ca",
    "apiserver-tls",
    "apiserver-etcd-client-certificate",
    "kubelet-client-certificates",
    "apiserver-proxy-client-certificate",
    "service-account-key",
    "openvpn-client-certificates",
];
const CA_SECRETS: [&str; 2] = ["ca", "front-proxy-ca"];

/// The apiserver nodes.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let service_address = meta::object(cluster, Kind::Service, "apiserver-external");
    let deployment_address = meta::object(cluster, Kind::Deployment, "apiserver");
    let (annotations, fingerprints) = fingerprint_annotations(cluster, &MOUNTED_SECRETS);
    let mut pod_annotations = annotations;
    pod_annotations.insert("prometheus.io/scrape_with_kube_cert".into(), "true".into());
    pod_annotations.insert("prometheus.io/path".into(), "/metrics".into());
    pod_annotations.insert("prometheus.io/port".into(), SECURE_PORT.to_string());

    let mut pod_labels = selector_labels("apiserver", cluster);
    pod_labels.insert("app.kubernetes.io/version".into(), cluster.version.to_string());
    let deployment = Deployment {
        metadata: object_meta("apiserver", "apiserver", cluster),
        spec: Some(DeploymentSpec {
            replicas: Some(cluster.apiserver_replicas),
            selector: selector("apiserver", cluster),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), annotations: Some(pod_annotations), ..Default::default() }),
                spec: Some(PodSpec {
                    service_account_name: Some("etcd-launcher".into()),
                    containers: vec![container(cluster)],
                    volumes: Some(meta::secret_volumes(&MOUNTED_SECRETS, &CA_SECRETS)),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let pdb = PodDisruptionBudget {
        metadata: object_meta("apiserver", "apiserver", cluster),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector("apiserver", cluster)),
            ..Default::default()
        }),
        ..Default::default()
    };

    let mut deployment_deps = vec![service_address.clone(), meta::object(cluster, Kind::StatefulSet, "etcd")];
    deployment_deps.extend(MOUNTED_SECRETS.iter().map(|s| meta::secret(cluster, s)));
    vec![
        meta::cluster_node(
            cluster,
            Kind::Service,
            "apiserver-external",
            Role::Service,
            Vec::new(),
            Body::Object { manifest: manifest(&external_service(cluster)), fingerprints: Vec::new() },
        ),
        meta::cluster_node(
            cluster,
            Kind::Deployment,
            "apiserver",
            Role::Workload,
            deployment_deps,
            Body::Object { manifest: manifest(&deployment), fingerprints },
        ),
        meta::cluster_node(
            cluster,
            Kind::PodDisruptionBudget,
            "apiserver",
            Role::DisruptionBudget,
            vec![deployment_address],
            Body::Object { manifest: manifest(&pdb), fingerprints: Vec::new() },
        ),
    ]
}

/// Service `apiserver-external` with the nodeport-proxy annotations of the expose strategy.
fn external_service(cluster: &Cluster) -> Service {
    let mut metadata = object_meta("apiserver-external", "apiserver", cluster);
    let annotations = match cluster.expose_strategy {
        ExposeStrategy::NodePort => BTreeMap::from([("nodeport-proxy.k8s.io/expose".to_string(), "NodePort".to_string())]),
        ExposeStrategy::LoadBalancer => BTreeMap::from([("nodeport-proxy.k8s.io/expose-namespaced".to_string(), "true".to_string())]),
        ExposeStrategy::Tunneling => BTreeMap::from([
            ("nodeport-proxy.k8s.io/expose".to_string(), "SNI,Tunneling".to_string()),
            ("nodeport-proxy.k8s.io/port-mapping".to_string(), format!("{{\"secure\": \"{}\"}}", cluster.external_name)),
        ]),
    };
    metadata.annotations = Some(annotations);
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(cluster.apiserver_service_type.as_str().into()),
            selector: Some(selector_labels("apiserver", cluster)),
            ports: Some(vec![ServicePort {
                name: Some("secure".into()),
                port: 443,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(SECURE_PORT)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(cluster: &Cluster) -> Container {
    let services = cluster.network.services.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let mut args = vec![
        format!("--etcd-servers={}", meta::etcd_client_endpoints(cluster).join(",")),
        "--etcd-cafile=/etc/etcd/pki/client/ca.crt".to_string(),
        "--etcd-certfile=/etc/etcd/pki/client/apiserver-etcd-client.crt".into(),
        "--etcd-keyfile=/etc/etcd/pki/client/apiserver-etcd-client.key".into(),
        "--storage-backend=etcd3".into(),
        format!("--secure-port={SECURE_PORT}"),
        "--tls-cert-file=/etc/kubernetes/tls/apiserver-tls.crt".into(),
        "--tls-private-key-file=/etc/kubernetes/tls/apiserver-tls.key".into(),
        "--client-ca-file=/etc/kubernetes/pki/ca/ca.crt".into(),
        "--kubelet-client-certificate=/etc/kubernetes/kubelet/kubelet-client.crt".into(),
        "--kubelet-client-key=/etc/kubernetes/kubelet/kubelet-client.key".into(),
        "--proxy-client-cert-file=/etc/kubernetes/pki/front-proxy/client/apiserver-proxy-client.crt".into(),
        "--proxy-client-key-file=/etc/kubernetes/pki/front-proxy/client/apiserver-proxy-client.key".into(),
        "--requestheader-client-ca-file=/etc/kubernetes/pki/front-proxy/ca/ca.crt".into(),
        "--requestheader-allowed-names=apiserver-aggregator".into(),
        "--requestheader-extra-headers-prefix=X-Remote-Extra-".into(),
        "--requestheader-group-headers=X-Remote-Group".into(),
        "--requestheader-username-headers=X-Remote-User".into(),
        "--service-account-key-file=/etc/kubernetes/service-account-key/sa.pub".into(),
        "--service-account-signing-key-file=/etc/kubernetes/service-account-key/sa.key".into(),
        format!("--service-account-issuer=https://{}", cluster.external_name),
        format!("--external-hostname={}", cluster.external_name),
        format!("--service-cluster-ip-range={services}"),
        format!("--service-node-port-range={}", cluster.node_port_range),
        "--endpoint-reconciler-type=none".into(),
        "--allow-privileged".into(),
        "--enable-bootstrap-token-auth".into(),
        "--enable-admission-plugins=NamespaceLifecycle,NodeRestriction,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,Priority,ResourceQuota".into(),
    ];
    if let Some(ip) = cluster.network.tunneling_agent_ip {
        args.push(format!("--advertise-address={ip}"));
    }
    let mounts = [
        ("ca", "/etc/kubernetes/pki/ca"),
        ("front-proxy-ca", "/etc/kubernetes/pki/front-proxy/ca"),
        ("apiserver-tls", "/etc/kubernetes/tls"),
        ("apiserver-etcd-client-certificate", "/etc/etcd/pki/client"),
        ("kubelet-client-certificates", "/etc/kubernetes/kubelet"),
        ("apiserver-proxy-client-certificate", "/etc/kubernetes/pki/front-proxy/client"),
        ("service-account-key", "/etc/kubernetes/service-account-key"),
        ("openvpn-client-certificates", "/etc/openvpn/pki/client"),
    ];
    let probe = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(SECURE_PORT),
            scheme: Some("HTTPS".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Container {
        name: "apiserver".into(),
        image: Some(format!("registry.k8s.io/kube-apiserver:v{}", cluster.version)),
        command: Some(vec!["/usr/local/bin/kube-apiserver".into()]),
        args: Some(args),
        ports: Some(vec![ContainerPort {
            name: Some("secure".into()),
            container_port: SECURE_PORT,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        readiness_probe: Some(probe("/readyz")),
        liveness_probe: Some(probe("/livez")),
        volume_mounts: Some(mounts.iter().map(|(name, path)| mount(name, path)).collect()),
        ..Default::default()
    }
}
