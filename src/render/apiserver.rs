//! kube-apiserver (KKP `pkg/resources/apiserver`): Deployment `apiserver` with the
//! `etcd-running` init container and the tunnel's sidecar, Service `apiserver-external`, PDB,
//! and the ConfigMaps it reads (`adm-control`, `audit-config`, `ca-bundle`). The tunnel's own
//! objects are rendered by [`super::konnectivity`] and [`super::openvpn`].

use super::component::{self, Component, http_probe};
use super::konnectivity;
use super::meta::{self, mount, secret_volume};
use super::{Body, DesiredNode, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::{Cluster, ExposeStrategy, Tunnel};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, KeyToPath, PodSpec, SecretVolumeSource, Service,
    ServiceSpec, Volume,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The port the apiserver listens on. KKP uses the allocated NodePort for NodePort and
/// LoadBalancer clusters; kkp cannot know it before apply and uses KKP's Tunneling port for all.
pub const SECURE_PORT: i32 = 6443;

const NAME: &str = "apiserver";
const AUTHENTICATION_SECRET: &str = "apiserver-authentication-configuration";
const AUDIT_LOG: &str = "audit-log";

/// KKP's TLS cipher suites for the apiserver (`--tls-cipher-suites`).
const CIPHER_SUITES: &str = "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,\
TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,\
TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305";

/// KKP's default admission plugins, sorted as KKP passes them.
const ADMISSION_PLUGINS: &str = "DefaultStorageClass,DefaultTolerationSeconds,LimitRanger,MutatingAdmissionWebhook,NamespaceLifecycle,\
NodeRestriction,Priority,ResourceQuota,ServiceAccount,ValidatingAdmissionWebhook";

/// The apiserver nodes.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let mut nodes = vec![external_service(cluster), deployment(cluster), pdb(cluster)];
    nodes.extend(config_maps(cluster));
    nodes
}

/// The Secrets the apiserver mounts or reads env from.
fn secrets(cluster: &Cluster) -> Vec<&'static str> {
    let mut secrets = vec![
        "apiserver-tls",
        "tokens",
        "kubelet-client-certificates",
        "ca",
        "service-account-key",
        "apiserver-etcd-client-certificate",
        "apiserver-proxy-client-certificate",
        "front-proxy-ca",
    ];
    if super::cloud_config::renders_cloud_config(cluster) {
        secrets.push("cloud-config");
    }
    if cluster.oidc.is_some() {
        secrets.push(AUTHENTICATION_SECRET);
    }
    secrets.extend(match cluster.tunnel {
        Tunnel::Konnectivity => konnectivity::SIDECAR_SECRETS.as_slice(),
        Tunnel::OpenVpn => super::openvpn::SIDECAR_SECRETS.as_slice(),
    });
    secrets
}

fn deployment(cluster: &Cluster) -> DesiredNode {
    let mut secrets = secrets(cluster);
    let env = {
        let mut env = vec![component::env("SSL_CERT_FILE", "/etc/kubernetes/pki/ca-bundle/ca-bundle.pem")];
        env.extend(component::aws_in_tree_env(cluster));
        env.extend(component::proxy_env(cluster));
        env
    };
    if component::reads_credentials(&env) {
        secrets.push(component::CLOUD_CREDENTIALS);
    }
    let mut mounts = vec![
        mount("apiserver-tls", "/etc/kubernetes/tls"),
        mount("tokens", "/etc/kubernetes/tokens"),
        mount("kubelet-client-certificates", "/etc/kubernetes/kubelet"),
        mount("ca", "/etc/kubernetes/pki/ca"),
        mount(component::CA_BUNDLE, "/etc/kubernetes/pki/ca-bundle"),
        mount("service-account-key", "/etc/kubernetes/service-account-key"),
    ];
    if secrets.contains(&"cloud-config") {
        mounts.push(mount("cloud-config", "/etc/kubernetes/cloud"));
    }
    mounts.extend([
        mount("apiserver-etcd-client-certificate", "/etc/etcd/pki/client"),
        mount("apiserver-proxy-client-certificate", "/etc/kubernetes/pki/front-proxy/client"),
        mount("front-proxy-ca", "/etc/kubernetes/pki/front-proxy/ca"),
        mount("audit-config", "/etc/kubernetes/audit"),
        writable_mount(AUDIT_LOG, "/var/log/kubernetes/audit"),
        mount("adm-control", "/etc/kubernetes/adm-control"),
    ]);
    let mut volumes = vec![
        secret_volume("apiserver-tls"),
        secret_volume("tokens"),
        secret_volume("kubelet-client-certificates"),
        meta::ca_cert_volume("ca"),
        meta::configmap_volume(component::CA_BUNDLE),
        secret_volume("service-account-key"),
    ];
    if secrets.contains(&"cloud-config") {
        volumes.push(secret_volume("cloud-config"));
    }
    volumes.extend([
        secret_volume("apiserver-etcd-client-certificate"),
        secret_volume("apiserver-proxy-client-certificate"),
        secret_volume("front-proxy-ca"),
        Volume {
            name: "audit-config".into(),
            config_map: Some(ConfigMapVolumeSource { name: "audit-config".into(), optional: Some(false), ..Default::default() }),
            ..Default::default()
        },
        empty_dir(AUDIT_LOG),
        meta::configmap_volume("adm-control"),
    ]);
    let mut configmaps = vec![component::CA_BUNDLE, "audit-config", "adm-control"];
    let mut evictable = vec![AUDIT_LOG];
    let mut containers = Vec::new();
    match cluster.tunnel {
        Tunnel::Konnectivity => {
            containers.push(konnectivity::sidecar(cluster));
            volumes.extend(konnectivity::apiserver_volumes());
            mounts.extend(konnectivity::apiserver_mounts());
            configmaps.push(konnectivity::EGRESS_CONFIGMAP);
            evictable.push(konnectivity::UDS_VOLUME);
        }
        Tunnel::OpenVpn => {
            containers.extend(super::openvpn::apiserver_sidecars(cluster));
            volumes.extend(super::openvpn::apiserver_volumes());
        }
    }
    if cluster.oidc.is_some() {
        mounts.push(mount("authentication-configuration", "/etc/kubernetes/authentication-config"));
        volumes.push(Volume {
            name: "authentication-configuration".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(AUTHENTICATION_SECRET.into()),
                items: Some(vec![KeyToPath {
                    key: "authentication-configuration.yaml".into(),
                    path: "authentication-configuration.yaml".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    containers.push(Container {
        name: NAME.into(),
        image: Some(format!("registry.k8s.io/kube-apiserver:v{}", cluster.version)),
        command: Some(vec!["/usr/local/bin/kube-apiserver".into()]),
        args: Some(flags(cluster)),
        env: Some(env),
        ports: Some(vec![ContainerPort { container_port: SECURE_PORT, protocol: Some("TCP".into()), ..Default::default() }]),
        liveness_probe: Some(http_probe("/healthz", SECURE_PORT, "HTTPS", 8, 10, Some(15))),
        readiness_probe: Some(http_probe("/healthz", SECURE_PORT, "HTTPS", 3, 5, None)),
        resources: Some(component::resources("100m", "256Mi", "2", "4Gi")),
        volume_mounts: Some(mounts),
        ..Default::default()
    });

    let annotations = BTreeMap::from([
        (component::SAFE_TO_EVICT.to_string(), evictable.join(",")),
        ("prometheus.io/path".to_string(), "/metrics".to_string()),
        ("prometheus.io/port".to_string(), SECURE_PORT.to_string()),
        ("prometheus.io/scrape_with_kube_cert".to_string(), "true".to_string()),
    ]);
    let pod = PodSpec {
        automount_service_account_token: Some(true),
        containers,
        init_containers: Some(vec![etcd_running(cluster)]),
        dns_policy: Some("ClusterFirst".into()),
        service_account_name: Some(super::etcd::SERVICE_ACCOUNT.into()),
        volumes: Some(volumes),
        ..Default::default()
    };
    let mut node = Component {
        cluster,
        name: NAME,
        replicas: cluster.apiserver_replicas,
        extra_pod_labels: BTreeMap::from([("app.kubernetes.io/version".to_string(), cluster.version.to_string())]),
        annotations,
        pod,
        wrap: None,
        strategy: None,
        secrets,
        configmaps,
        image_pull_secret: true,
    }
    .into_node();
    // The apiserver starts only on a running etcd (its init container waits for it too).
    node.deps.push(meta::object(cluster, Kind::StatefulSet, "etcd"));
    node.deps.push(meta::object(cluster, Kind::Service, "apiserver-external"));
    node
}

/// KKP's apiserver flags for the cluster's version, provider, tunnel and authentication.
fn flags(cluster: &Cluster) -> Vec<String> {
    let services = cluster.network.services.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    let issuer = super::pki::external_url(cluster);
    let mut audiences = vec![issuer.clone()];
    if cluster.tunnel == Tunnel::Konnectivity {
        audiences.push("system:konnectivity-server".into());
    }
    let mut flags = Flags::default();
    if let Some(ip) = advertise_address(cluster) {
        flags.set("--advertise-address", &ip);
    }
    flags.set("--secure-port", &SECURE_PORT.to_string());
    flags.set("--etcd-servers", &meta::etcd_client_endpoints(cluster).join(","));
    flags.set("--etcd-cafile", "/etc/etcd/pki/client/ca.crt");
    flags.set("--etcd-certfile", "/etc/etcd/pki/client/apiserver-etcd-client.crt");
    flags.set("--etcd-keyfile", "/etc/etcd/pki/client/apiserver-etcd-client.key");
    flags.set("--storage-backend", "etcd3");
    flags.set("--enable-admission-plugins", ADMISSION_PLUGINS);
    flags.set("--admission-control-config-file", "/etc/kubernetes/adm-control/admission-control.yaml");
    flags.set("--external-hostname", &cluster.external_name);
    flags.set("--token-auth-file", "/etc/kubernetes/tokens/tokens.csv");
    flags.switch("--enable-bootstrap-token-auth");
    flags.set("--service-account-key-file", "/etc/kubernetes/service-account-key/sa.key");
    flags.set("--service-cluster-ip-range", &services);
    flags.set("--service-node-port-range", &cluster.node_port_range);
    flags.switch("--allow-privileged");
    flags.set("--audit-log-maxage", "30");
    flags.set("--audit-log-maxbackup", "3");
    flags.set("--audit-log-maxsize", "100");
    flags.set("--audit-log-path", "/var/log/kubernetes/audit/audit.log");
    flags.set("--tls-cert-file", "/etc/kubernetes/tls/apiserver-tls.crt");
    flags.set("--tls-cipher-suites", CIPHER_SUITES);
    flags.set("--tls-private-key-file", "/etc/kubernetes/tls/apiserver-tls.key");
    flags.set("--proxy-client-cert-file", "/etc/kubernetes/pki/front-proxy/client/apiserver-proxy-client.crt");
    flags.set("--proxy-client-key-file", "/etc/kubernetes/pki/front-proxy/client/apiserver-proxy-client.key");
    flags.set("--client-ca-file", "/etc/kubernetes/pki/ca/ca.crt");
    flags.set("--kubelet-client-certificate", "/etc/kubernetes/kubelet/kubelet-client.crt");
    flags.set("--kubelet-client-key", "/etc/kubernetes/kubelet/kubelet-client.key");
    flags.set("--authorization-mode", "Node,RBAC");
    // Kubelets of bring-your-own and edge nodes do not rotate their serving certificates, so
    // KKP does not verify them there (they would stop validating once expired).
    if !matches!(cluster.provider.as_str(), "bringyourown" | "edge") {
        flags.set("--kubelet-certificate-authority", "/etc/kubernetes/pki/ca/ca.crt");
    }
    flags.set("--requestheader-client-ca-file", "/etc/kubernetes/pki/front-proxy/ca/ca.crt");
    flags.set("--requestheader-allowed-names", "apiserver-aggregator");
    flags.set("--requestheader-extra-headers-prefix", "X-Remote-Extra-");
    flags.set("--requestheader-group-headers", "X-Remote-Group");
    flags.set("--requestheader-username-headers", "X-Remote-User");
    flags.set("--endpoint-reconciler-type", "none");
    flags.switch("--profiling=false");
    flags.set("--service-account-issuer", &issuer);
    flags.set("--service-account-signing-key-file", "/etc/kubernetes/service-account-key/sa.key");
    flags.set("--api-audiences", &audiences.join(","));
    flags.set("--kubelet-preferred-address-types", "InternalIP,ExternalIP");
    // Out of tree, the cloud-controller-manager talks to the cloud; the apiserver needs no flag.
    if let Some(provider) = super::controller_manager::kubernetes_cloud_provider(cluster).filter(|p| *p != "external") {
        flags.set("--cloud-provider", provider);
        if super::cloud_config::renders_cloud_config(cluster) {
            flags.set("--cloud-config", "/etc/kubernetes/cloud/config");
        }
    }
    let mut gates = Vec::new();
    if cluster.oidc.is_some() {
        flags.set("--authentication-config", "/etc/kubernetes/authentication-config/authentication-configuration.yaml");
        // Structured authentication is GA from 1.34 on; before, the gate turns it on.
        if (cluster.version.major, cluster.version.minor) < (1, 34) {
            gates.push("StructuredAuthenticationConfiguration=true");
        }
    }
    // KKP enforces CEL cost limits of admission policies and webhooks (gates GA in 1.32+ but
    // still accepted, as KKP passes them).
    gates.extend(["StrictCostEnforcementForVAP=true", "StrictCostEnforcementForWebhooks=true"]);
    flags.set("--feature-gates", &gates.join(","));
    if cluster.tunnel == Tunnel::Konnectivity {
        flags.set("--egress-selector-config-file", konnectivity::EGRESS_CONFIG_PATH);
    }
    flags.0
}

/// A command line in KKP's `--flag value` form.
#[derive(Default)]
struct Flags(Vec<String>);

impl Flags {
    fn set(&mut self, name: &str, value: &str) {
        self.0.extend([name.to_string(), value.to_string()]);
    }

    fn switch(&mut self, flag: &str) {
        self.0.push(flag.to_string());
    }
}

/// `--advertise-address`: the tunneling agent's IP for Tunneling clusters; for the others
/// KKP advertises the IP it learns from DNS after apply, which kkp cannot know (the apiserver
/// then advertises its pod IP).
fn advertise_address(cluster: &Cluster) -> Option<String> {
    (cluster.expose_strategy == ExposeStrategy::Tunneling).then(|| cluster.network.tunneling_agent_ip.map(|ip| ip.to_string())).flatten()
}

/// KKP's `etcd-running` init container: the apiserver starts once etcd answers. KKP runs
/// `etcd-launcher is-running`, which reads KKP's Cluster object; kkp creates no Cluster objects
/// on seeds, so it asks etcd's own health endpoint with etcdctl (a failed check is retried by
/// the kubelet until etcd is up).
fn etcd_running(cluster: &Cluster) -> Container {
    Container {
        name: "etcd-running".into(),
        image: Some(super::etcd::image(cluster)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some({
            let mut command = super::etcd::etcdctl(cluster);
            command.extend(["endpoint".to_string(), "health".to_string()]);
            command
        }),
        volume_mounts: Some(vec![mount("apiserver-etcd-client-certificate", "/etc/etcd/pki/client")]),
        ..Default::default()
    }
}

/// Service `apiserver-external` with the nodeport-proxy annotations of the expose strategy.
fn external_service(cluster: &Cluster) -> DesiredNode {
    let mut metadata = component::metadata("apiserver-external", cluster);
    metadata.annotations = Some(expose_annotations(cluster, "secure", &cluster.external_name));
    let service = Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(cluster.apiserver_service_type.as_str().into()),
            selector: Some(component::app_labels(NAME)),
            ports: Some(vec![component::service_port(Some("secure"), 443, SECURE_PORT)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::Service,
        "apiserver-external",
        Role::Service,
        Vec::new(),
        Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
    )
}

/// The nodeport-proxy annotations KKP puts on a Service the seed exposes, by expose strategy.
/// `port` names the Service port Tunneling maps to the SNI `host`.
pub fn expose_annotations(cluster: &Cluster, port: &str, host: &str) -> BTreeMap<String, String> {
    match cluster.expose_strategy {
        ExposeStrategy::NodePort => BTreeMap::from([("nodeport-proxy.k8s.io/expose".to_string(), "NodePort".to_string())]),
        ExposeStrategy::LoadBalancer => BTreeMap::from([("nodeport-proxy.k8s.io/expose-namespaced".to_string(), "true".to_string())]),
        ExposeStrategy::Tunneling => BTreeMap::from([
            ("nodeport-proxy.k8s.io/expose".to_string(), "SNI,Tunneling".to_string()),
            ("nodeport-proxy.k8s.io/port-mapping".to_string(), format!("{{\"{port}\": \"{host}\"}}")),
        ]),
    }
}

fn pdb(cluster: &Cluster) -> DesiredNode {
    let pdb = PodDisruptionBudget {
        metadata: component::metadata(NAME, cluster),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(component::app_labels(NAME)), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::PodDisruptionBudget,
        NAME,
        Role::DisruptionBudget,
        vec![meta::object(cluster, Kind::Deployment, NAME)],
        Body::Object { manifest: manifest(&pdb), fingerprints: Vec::new() },
    )
}

/// `adm-control` (KKP's admission configuration, no plugin configured), `audit-config` (KKP's
/// `metadata` audit preset) and `ca-bundle` (the bundle components trust).
fn config_maps(cluster: &Cluster) -> Vec<DesiredNode> {
    let admission = "kind: AdmissionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n";
    let audit = "# policyPreset: metadata\napiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n";
    [
        ("adm-control", "admission-control.yaml", admission.to_string()),
        ("audit-config", "policy.yaml", audit.to_string()),
        (component::CA_BUNDLE, "ca-bundle.pem", cluster.ca_bundle.clone()),
    ]
    .into_iter()
    .map(|(name, key, text)| config_map(cluster, name, key, text))
    .collect()
}

/// A ConfigMap with one key, labelled only with kkp's managed-by (KKP gives these none).
pub fn config_map(cluster: &Cluster, name: &str, key: &str, text: String) -> DesiredNode {
    let config_map = ConfigMap {
        metadata: meta::managed_meta(name, cluster),
        data: Some(BTreeMap::from([(key.to_string(), text)])),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::ConfigMap,
        name,
        Role::Config,
        Vec::new(),
        Body::Object { manifest: manifest(&config_map), fingerprints: Vec::new() },
    )
}

fn empty_dir(name: &str) -> Volume {
    Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }
}

fn writable_mount(name: &str, path: &str) -> k8s_openapi::api::core::v1::VolumeMount {
    k8s_openapi::api::core::v1::VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::component::tests::{cluster_with, find, fixture_cluster, golden};

    fn container<'a>(deployment: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
        deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap()
    }

    fn flag_names(args: &serde_json::Value) -> Vec<String> {
        let mut names: Vec<String> = args
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .filter(|a| a.starts_with('-'))
            .map(|a| a.split('=').next().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn flags_volumes_and_selector_match_kkps_golden() {
        let nodes = render(&fixture_cluster());
        let ours = find(&nodes, Kind::Deployment, "apiserver").unwrap();
        let theirs = golden("deployment-aws-1.33.0-apiserver.yaml");
        // KKP advertises the IP it resolves for the external name after apply (docs/architecture.md).
        let mut expected = flag_names(&container(&theirs, "apiserver")["args"]);
        expected.retain(|f| f != "--advertise-address");
        assert_eq!(flag_names(&container(&ours, "apiserver")["args"]), expected);
        assert_eq!(ours["spec"]["selector"], theirs["spec"]["selector"]);
        let volumes = |d: &serde_json::Value| {
            let mut v: Vec<String> = d["spec"]["template"]["spec"]["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["name"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        assert_eq!(volumes(&ours), volumes(&theirs));
        assert_eq!(container(&ours, "konnectivity-server")["args"], container(&theirs, "konnectivity-server")["args"]);
    }

    #[test]
    fn the_legacy_tunnel_swaps_the_konnectivity_sidecar_for_openvpn() {
        let legacy = cluster_with(|c| c.tunnel = Tunnel::OpenVpn);
        let nodes = render(&legacy);
        let deployment = find(&nodes, Kind::Deployment, "apiserver").unwrap();
        let names: Vec<&str> =
            deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["openvpn-client", "dnat-controller", "apiserver"]);
        let args = container(&deployment, "apiserver")["args"].to_string();
        assert!(!args.contains("--egress-selector-config-file") && !args.contains("system:konnectivity-server"), "{args}");
    }

    #[test]
    fn structured_authentication_needs_its_gate_before_1_34_only() {
        let gates = |minor: u64| {
            let cluster = cluster_with(|c| c.version = semver::Version::new(1, minor, 2));
            let args = container(&find(&render(&cluster), Kind::Deployment, "apiserver").unwrap(), "apiserver")["args"].clone();
            let list: Vec<String> = args.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            list[list.iter().position(|a| a == "--feature-gates").unwrap() + 1].clone()
        };
        assert!(gates(33).starts_with("StructuredAuthenticationConfiguration=true,"));
        assert!(!gates(34).contains("StructuredAuthenticationConfiguration"));
    }

    #[test]
    fn kubelets_are_verified_except_on_bring_your_own_and_edge_nodes() {
        let verifies = |provider: &str| {
            let cluster = cluster_with(|c| c.provider = provider.into());
            let args = container(&find(&render(&cluster), Kind::Deployment, "apiserver").unwrap(), "apiserver")["args"].clone();
            args.as_array().unwrap().iter().any(|a| a == "--kubelet-certificate-authority")
        };
        assert!(verifies("aws") && verifies("hetzner"));
        assert!(!verifies("bringyourown") && !verifies("edge"));
    }

    #[test]
    fn only_in_tree_providers_give_the_apiserver_a_cloud_provider() {
        let cloud_provider = |external: bool| {
            let cluster = cluster_with(|c| {
                c.features.insert("externalCloudProvider".into(), external);
            });
            let args = container(&find(&render(&cluster), Kind::Deployment, "apiserver").unwrap(), "apiserver")["args"].clone();
            let list: Vec<String> = args.as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
            list.iter().position(|a| a == "--cloud-provider").map(|i| list[i + 1].clone())
        };
        assert_eq!(cloud_provider(false).as_deref(), Some("aws"));
        assert_eq!(cloud_provider(true), None);
    }

    #[test]
    fn config_maps_carry_kkps_content() {
        let nodes = render(&fixture_cluster());
        for (name, file) in
            [("adm-control", "configmap-aws-1.33.0-adm-control.yaml"), ("audit-config", "configmap-aws-1.33.0-audit-config.yaml")]
        {
            assert_eq!(find(&nodes, Kind::ConfigMap, name).unwrap()["data"], golden(file)["data"], "{name}");
        }
        let bundle = find(&nodes, Kind::ConfigMap, "ca-bundle").unwrap();
        assert!(bundle["data"]["ca-bundle.pem"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
