//! KKP's user-cluster controller manager and webhook: Deployments `usercluster-controller` and
//! `usercluster-webhook`, Service `usercluster-webhook`, their ServiceAccounts and the Role and
//! RoleBinding the controller gets in the cluster namespace (KKP `pkg/resources/usercluster`,
//! `pkg/resources/usercluster-webhook`).

use super::component::{
    self, CA_BUNDLE, CLOUD_CREDENTIALS, Component, KKP_VERSION, SAFE_TO_EVICT, namespace_env, nobody_pod_security, restricted_container,
    service_port,
};
use super::meta::{self, MANAGED_BY, configmap_volume, mount, secret_volume};
use super::{Body, DesiredNode, apiserver, manifest};
use crate::address::Address;
use crate::object::Kind;
use crate::role::Role as NodeRole;
use crate::topology::Seed;
use crate::topology::{Cluster, ExposeStrategy, Tunnel};
use k8s_openapi::api::apps::v1::{DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{Container, ContainerPort, EmptyDirVolumeSource, PodSpec, Probe, TCPSocketAction, Volume, VolumeMount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The controller's Deployment name and `app` label (its container has the same name).
pub const CONTROLLER: &str = "usercluster-controller";
/// The webhook's Deployment and Service name and `app` label.
pub const WEBHOOK: &str = "usercluster-webhook";
/// The controller's ServiceAccount.
pub const CONTROLLER_SERVICE_ACCOUNT: &str = "kubermatic-usercluster-controller-manager";
/// The webhook's ServiceAccount.
pub const WEBHOOK_SERVICE_ACCOUNT: &str = "usercluster-webhook";
/// Name of the controller's Role, RoleBinding and ClusterRole.
pub const CONTROLLER_ROLE: &str = "kubermatic:usercluster-controller-manager";
/// Name of the webhook's ClusterRole.
pub const WEBHOOK_ROLE: &str = "kubermatic:usercluster-webhook";
const ADMIN_KUBECONFIG: &str = "internal-admin-kubeconfig";
const WEBHOOK_SERVING_CERT: &str = "usercluster-webhook-serving-cert";
const IMAGE_REPOSITORY: &str = "quay.io/kubermatic/kubermatic";
const APPLICATION_CACHE: &str = "applications-cache";
/// KKP's Konnectivity Service (its agent port is what user-cluster nodes dial).
const KONNECTIVITY_SERVICE_PORT: i32 = 443;
/// KKP's OpenVPN server port.
const OPENVPN_PORT: i32 = 1194;
const SEED_WEBHOOK_PORT: i32 = 9443;
const USER_WEBHOOK_PORT: i32 = 19443;

/// All user-cluster controller and webhook nodes.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    vec![
        component::service_account(cluster, CONTROLLER_SERVICE_ACCOUNT),
        component::service_account(cluster, WEBHOOK_SERVICE_ACCOUNT),
        role(cluster),
        role_binding(cluster),
        cluster_role_binding(cluster, CONTROLLER_ROLE, CONTROLLER_SERVICE_ACCOUNT),
        cluster_role_binding(cluster, WEBHOOK_ROLE, WEBHOOK_SERVICE_ACCOUNT),
        controller(cluster),
        component::cluster_ip_service(
            cluster,
            WEBHOOK,
            vec![service_port(Some("seed"), 443, SEED_WEBHOOK_PORT), service_port(Some("user"), apiserver::SECURE_PORT, USER_WEBHOOK_PORT)],
        ),
        webhook(cluster),
    ]
}

fn managed_by() -> BTreeMap<String, String> {
    BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())])
}

/// The ClusterRoles KKP gives the user-cluster controller and webhook on the seed. Every
/// cluster on the seed binds the same two, so they are seed nodes, not any one cluster's.
pub fn seed_cluster_roles(seed: &Seed) -> Vec<DesiredNode> {
    let read = ["get", "list", "watch"];
    let controller_rules = vec![
        component::rule(&["kubermatic.k8c.io"], &["clusters", "clusters/status"], &[], &["get", "list", "watch", "patch", "update"]),
        component::rule(&["kubermatic.k8c.io"], &["resourcequotas"], &[], &read),
        component::rule(&["apiextensions.k8s.io"], &["customresourcedefinitions"], &[], &read),
        component::rule(&["operatingsystemmanager.k8c.io"], &["operatingsystemprofiles", "operatingsystemconfigs"], &[], &["*"]),
        component::rule(&["apps.kubermatic.k8c.io"], &["applicationdefinitions"], &[], &read),
        component::rule(&["kubermatic.k8c.io"], &["policytemplates"], &[], &read),
        component::rule(&["kubermatic.k8c.io"], &["policybindings", "policybindings/status"], &[], &["*"]),
    ];
    let webhook_rules = vec![
        component::rule(&["apps.kubermatic.k8c.io"], &["applicationdefinitions", "applicationdefinitions/status"], &[], &read),
        component::rule(&["kubermatic.k8c.io"], &["resourcequotas", "resourcequotas/status"], &[], &read),
    ];
    [(CONTROLLER_ROLE, controller_rules), (WEBHOOK_ROLE, webhook_rules)]
        .into_iter()
        .map(|(name, rules)| {
            let role = ClusterRole {
                metadata: ObjectMeta { name: Some(name.into()), labels: Some(managed_by()), ..Default::default() },
                rules: Some(rules),
                ..Default::default()
            };
            DesiredNode {
                address: Address::seed_object(&seed.name, Kind::ClusterRole, name),
                seed: seed.name.clone(),
                cluster: None,
                role: NodeRole::Access,
                deps: vec![Address::seed(&seed.name)],
                body: Body::Object { manifest: manifest(&role), fingerprints: Vec::new() },
            }
        })
        .collect()
}

/// The cluster's binding of a seed ClusterRole to its ServiceAccount (KKP names it
/// `<role>-<namespace>`).
fn cluster_role_binding(cluster: &Cluster, role: &str, service_account: &str) -> DesiredNode {
    let name = format!("{role}-{}", cluster.namespace());
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta { name: Some(name.clone()), labels: Some(managed_by()), ..Default::default() },
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name: role.into() },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: service_account.into(),
            namespace: Some(cluster.namespace()),
            ..Default::default()
        }]),
    };
    let deps =
        vec![Address::seed_object(&cluster.seed, Kind::ClusterRole, role), meta::object(cluster, Kind::ServiceAccount, service_account)];
    meta::cluster_node(
        cluster,
        Kind::ClusterRoleBinding,
        &name,
        NodeRole::Access,
        deps,
        Body::Object { manifest: manifest(&binding), fingerprints: Vec::new() },
    )
}

/// The in-namespace rights KKP gives the controller: read Secrets and ConfigMaps, create
/// Secrets, update `admin-kubeconfig`, manage constraints and addons.
fn role(cluster: &Cluster) -> DesiredNode {
    let role = Role {
        metadata: rbac_meta(cluster),
        rules: Some(vec![
            component::rule(&[""], &["secrets"], &[], &["get", "list", "watch", "create"]),
            component::rule(&[""], &["configmaps"], &[], &["get", "list", "watch"]),
            component::rule(&[""], &["secrets"], &["admin-kubeconfig"], &["update"]),
            component::rule(&["kubermatic.k8c.io"], &["constraints"], &[], &["get", "list", "watch", "patch", "update"]),
            component::rule(&["kubermatic.k8c.io"], &["addons"], &[], &["get", "list", "watch", "delete"]),
        ]),
    };
    meta::cluster_node(
        cluster,
        Kind::Role,
        CONTROLLER_ROLE,
        NodeRole::Access,
        Vec::new(),
        Body::Object { manifest: manifest(&role), fingerprints: Vec::new() },
    )
}

fn role_binding(cluster: &Cluster) -> DesiredNode {
    let binding = RoleBinding {
        metadata: rbac_meta(cluster),
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: CONTROLLER_ROLE.into() },
        subjects: Some(vec![Subject { kind: "ServiceAccount".into(), name: CONTROLLER_SERVICE_ACCOUNT.into(), ..Default::default() }]),
    };
    let deps =
        vec![meta::object(cluster, Kind::Role, CONTROLLER_ROLE), meta::object(cluster, Kind::ServiceAccount, CONTROLLER_SERVICE_ACCOUNT)];
    meta::cluster_node(
        cluster,
        Kind::RoleBinding,
        CONTROLLER_ROLE,
        NodeRole::Access,
        deps,
        Body::Object { manifest: manifest(&binding), fingerprints: Vec::new() },
    )
}

fn rbac_meta(cluster: &Cluster) -> ObjectMeta {
    ObjectMeta {
        name: Some(CONTROLLER_ROLE.into()),
        namespace: Some(cluster.namespace()),
        labels: Some(managed_by()),
        ..Default::default()
    }
}

fn image() -> String {
    format!("{IMAGE_REPOSITORY}:{KKP_VERSION}")
}

/// The controller's arguments, as KKP derives them from the cluster.
pub fn controller_flags(cluster: &Cluster) -> Vec<String> {
    let s = |v: &str| v.to_string();
    let dns_ip = component::dns_resolver_ip(cluster).map(|ip| ip.to_string()).unwrap_or_default();
    let mut args = vec![
        s("-kubeconfig"),
        s("/etc/kubernetes/kubeconfig/kubeconfig"),
        s("-metrics-listen-address"),
        s("0.0.0.0:8085"),
        s("-health-listen-address"),
        s("0.0.0.0:8086"),
        s("-namespace"),
        s("$(NAMESPACE)"),
        s("-cluster-url"),
        super::pki::external_url(cluster),
        s("-cluster-name"),
        cluster.name.clone(),
        s("-dns-cluster-ip"),
        dns_ip,
        s("-overwrite-registry"),
        String::new(),
        s("-version"),
        cluster.version.to_string(),
        s("-application-cache"),
        format!("/{APPLICATION_CACHE}"),
        s("-opa-integration=false"),
        s("-ca-bundle=/opt/ca-bundle/ca-bundle.pem"),
        format!("-node-local-dns-cache={}", cluster.network.node_local_dns_cache),
    ];
    // KKP's default for `enableUserSSHKeyAgent`.
    args.push(s("-enable-ssh-key-agent=true"));
    match cluster.tunnel {
        Tunnel::Konnectivity => {
            args.push(s("-konnectivity-enabled=true"));
            let (host, port) = if cluster.expose_strategy == ExposeStrategy::Tunneling {
                (format!("konnectivity-server.{}", cluster.external_name), apiserver::SECURE_PORT)
            } else {
                (cluster.external_name.clone(), KONNECTIVITY_SERVICE_PORT)
            };
            args.extend([s("-konnectivity-server-host"), host, s("-konnectivity-server-port"), port.to_string()]);
            args.extend([s("-konnectivity-keepalive-time"), s("1m")]);
        }
        Tunnel::OpenVpn => args.extend([s("-openvpn-server-port"), OPENVPN_PORT.to_string()]),
    }
    if cluster.features.get("kubeSystemNetworkPolicies").copied().unwrap_or(false) {
        args.push(s("-enable-network-policies"));
    }
    if cluster.expose_strategy == ExposeStrategy::Tunneling {
        let agent_ip = cluster.network.tunneling_agent_ip.map(|ip| ip.to_string()).unwrap_or_default();
        args.extend([s("-tunneling-agent-ip"), agent_ip, s("-kas-secure-port"), apiserver::SECURE_PORT.to_string()]);
    }
    args.extend([s("-cloud-provider-name"), cluster.provider.clone()]);
    if cluster.provider == "nutanix" && cluster.cloud.cluster_settings.get("csi").is_some_and(|c| !c.is_null()) {
        args.push(s("-nutanix-csi-enabled=true"));
    }
    if cluster.provider == "kubevirt" {
        args.extend([s("-kv-vmi-eviction-controller"), s("-kv-infra-kubeconfig"), s("/etc/kubernetes/kubevirt/infra-kubeconfig")]);
        if let Some(namespace) = kubevirt_namespaced_mode(cluster) {
            args.extend([s("-kv-infra-namespace"), namespace]);
        }
    }
    args
}

/// The infra namespace of a KubeVirt datacenter in namespaced mode.
fn kubevirt_namespaced_mode(cluster: &Cluster) -> Option<String> {
    let mode = cluster.cloud.datacenter_settings.get("namespacedMode")?;
    if mode.get("enabled").and_then(|e| e.as_bool()) != Some(true) {
        return None;
    }
    Some(mode.get("namespace").and_then(|n| n.as_str()).unwrap_or_default().to_string())
}

/// KubeVirt's infra-cluster kubeconfig Secret, mounted into the controller.
const KUBEVIRT_INFRA_SECRET: &str = super::cloud_config::KUBEVIRT_INFRA_KUBECONFIG;

fn controller(cluster: &Cluster) -> DesiredNode {
    let mut env = component::cloud_env(cluster);
    let mut secrets = vec![ADMIN_KUBECONFIG];
    if component::reads_credentials(&env) {
        secrets.push(CLOUD_CREDENTIALS);
    }
    env.push(namespace_env("NAMESPACE", Some("v1")));
    let empty_dir = |name: &str, size: Option<&str>| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource { size_limit: size.map(|s| Quantity(s.into())), ..Default::default() }),
        ..Default::default()
    };
    let mut volumes = vec![
        secret_volume(ADMIN_KUBECONFIG),
        configmap_volume(CA_BUNDLE),
        empty_dir("temp", None),
        empty_dir(APPLICATION_CACHE, Some("300Mi")),
    ];
    let writable = |name: &str, path: &str| VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() };
    let mut mounts = vec![
        mount(ADMIN_KUBECONFIG, "/etc/kubernetes/kubeconfig"),
        mount(CA_BUNDLE, "/opt/ca-bundle/"),
        writable("temp", "/tmp/"),
        writable(APPLICATION_CACHE, &format!("/{APPLICATION_CACHE}")),
    ];
    if super::cloud_config::renders_kubevirt_infra_kubeconfig(cluster) {
        volumes.push(secret_volume(KUBEVIRT_INFRA_SECRET));
        mounts.push(mount(KUBEVIRT_INFRA_SECRET, "/etc/kubernetes/kubevirt"));
        secrets.push(KUBEVIRT_INFRA_SECRET);
    }
    let container = Container {
        name: CONTROLLER.into(),
        image: Some(image()),
        command: Some(vec!["/usr/local/bin/user-cluster-controller-manager".into()]),
        args: Some(controller_flags(cluster)),
        env: Some(env),
        readiness_probe: Some(component::http_probe("/readyz", 8086, "HTTP", 5, 5, None)),
        resources: Some(component::resources("25m", "32Mi", "500m", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/path".into(), "/metrics".into()),
        ("prometheus.io/port".into(), "8085".into()),
        (SAFE_TO_EVICT.to_string(), format!("{APPLICATION_CACHE},temp")),
    ]);
    Component {
        cluster,
        name: CONTROLLER,
        replicas: 1,
        extra_pod_labels: BTreeMap::new(),
        annotations,
        pod: PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            security_context: Some(nobody_pod_security()),
            service_account_name: Some(CONTROLLER_SERVICE_ACCOUNT.into()),
            ..Default::default()
        },
        wrap: Some((CONTROLLER, Vec::new())),
        strategy: Some(DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(1)),
            }),
        }),
        secrets,
        configmaps: vec![CA_BUNDLE],
        image_pull_secret: true,
    }
    .into_node()
}

/// The webhook's arguments.
pub fn webhook_flags(cluster: &Cluster) -> Vec<String> {
    let cert_dir = "/opt/webhook-serving-cert/";
    let mut args = vec![
        "-kubeconfig".to_string(),
        "/etc/kubernetes/kubeconfig/kubeconfig".into(),
        format!("-seed-webhook-listen-port={SEED_WEBHOOK_PORT}"),
        format!("-seed-webhook-cert-dir={cert_dir}"),
        "-seed-webhook-cert-name=serving.crt".into(),
        "-seed-webhook-key-name=serving.key".into(),
        format!("-user-webhook-listen-port={USER_WEBHOOK_PORT}"),
        format!("-user-webhook-cert-dir={cert_dir}"),
        "-user-webhook-cert-name=serving.crt".into(),
        "-user-webhook-key-name=serving.key".into(),
        "-ca-bundle=/opt/ca-bundle/ca-bundle.pem".into(),
        format!("-project-id={}", cluster.project_id.as_deref().unwrap_or_default()),
        format!("-cluster-name={}", cluster.name),
    ];
    if cluster.provider == "kubevirt" {
        let namespace = kubevirt_namespaced_mode(cluster).unwrap_or_else(|| cluster.namespace());
        args.push(format!("-kubevirt-infra-namespace={namespace}"));
    }
    args.push("-v=2".into());
    args
}

fn webhook(cluster: &Cluster) -> DesiredNode {
    let env = component::cloud_env(cluster);
    let mut secrets = vec![WEBHOOK_SERVING_CERT, ADMIN_KUBECONFIG];
    if component::reads_credentials(&env) {
        secrets.push(CLOUD_CREDENTIALS);
    }
    let port = |name: &str, port: i32| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let mut serving_cert = secret_volume(WEBHOOK_SERVING_CERT);
    serving_cert.name = "webhook-serving-cert".into();
    let container = Container {
        // KKP names the webhook's container after the controller.
        name: CONTROLLER.into(),
        image: Some(image()),
        command: Some(vec!["user-cluster-webhook".into()]),
        args: Some(webhook_flags(cluster)),
        env: Some(env),
        ports: Some(vec![port("admission", SEED_WEBHOOK_PORT), port("metrics", 8080)]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::String("metrics".into()), ..Default::default() }),
            failure_threshold: Some(3),
            initial_delay_seconds: Some(3),
            period_seconds: Some(10),
            success_threshold: Some(1),
            timeout_seconds: Some(2),
            ..Default::default()
        }),
        resources: Some(component::resources("25m", "32Mi", "500m", "512Mi")),
        security_context: Some(restricted_container()),
        volume_mounts: Some(vec![
            mount("webhook-serving-cert", "/opt/webhook-serving-cert/"),
            mount(ADMIN_KUBECONFIG, "/etc/kubernetes/kubeconfig"),
            mount(CA_BUNDLE, "/opt/ca-bundle/"),
        ]),
        ..Default::default()
    };
    let annotations = BTreeMap::from([
        ("prometheus.io/scrape".to_string(), "true".to_string()),
        ("prometheus.io/port".into(), "8080".into()),
        ("fluentbit.io/parser".into(), "json_iso".into()),
    ]);
    let mut node = Component {
        cluster,
        name: WEBHOOK,
        replicas: 1,
        extra_pod_labels: BTreeMap::new(),
        annotations,
        pod: PodSpec {
            containers: vec![container],
            volumes: Some(vec![serving_cert, secret_volume(ADMIN_KUBECONFIG), configmap_volume(CA_BUNDLE)]),
            security_context: Some(nobody_pod_security()),
            service_account_name: Some(WEBHOOK_SERVICE_ACCOUNT.into()),
            ..Default::default()
        },
        wrap: Some((CONTROLLER, Vec::new())),
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
        assert_matches_golden, cluster_with, find, fixture_cluster, flag_names, golden, golden_command, rendered_command,
    };

    #[test]
    fn controller_matches_kkps_golden_deployment() {
        const GOLDEN: &str = "deployment-aws-1.33.0-usercluster-controller.yaml";
        let rendered = find(&render(&fixture_cluster()), Kind::Deployment, CONTROLLER).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered["spec"]["strategy"], golden(GOLDEN)["spec"]["strategy"]);
        // KKP's fixture has MLA, machine networks, cluster labels and a backup location, which a
        // kkp topology does not state; every other flag is KKP's.
        let mut expected = flag_names(&golden_command(GOLDEN));
        for unmodelled in [
            "ipam-controller-network",
            "cluster-backup-storage-location",
            "cluster-backup-credential-secret",
            "user-cluster-monitoring",
            "user-cluster-logging",
            "mla-gateway-url",
            "node-labels",
        ] {
            assert!(expected.remove(unmodelled), "{unmodelled} is in the golden file");
        }
        let command = rendered_command(&rendered);
        assert_eq!(flag_names(&command), expected);
        assert!(command.windows(2).any(|w| w == ["-dns-cluster-ip", "10.240.16.10"]));
        assert!(command.windows(2).any(|w| w == ["-konnectivity-server-host", "de-test-01.test-seed.dev.kubermatic.io"]));
    }

    #[test]
    fn tunneling_and_openvpn_flags() {
        let tunneling = cluster_with(|c| {
            c.expose_strategy = ExposeStrategy::Tunneling;
            c.network.tunneling_agent_ip = Some("100.64.30.10".parse().unwrap());
        });
        let flags = controller_flags(&tunneling);
        assert!(flags.windows(2).any(|w| w == ["-tunneling-agent-ip", "100.64.30.10"]));
        assert!(flags.windows(2).any(|w| w[0] == "-konnectivity-server-host" && w[1].starts_with("konnectivity-server.")));
        let openvpn = controller_flags(&cluster_with(|c| c.tunnel = Tunnel::OpenVpn));
        assert!(openvpn.contains(&"-openvpn-server-port".to_string()));
        assert!(!openvpn.iter().any(|f| f.starts_with("-konnectivity")));
    }

    #[test]
    fn webhook_matches_kkps_golden_deployment_and_service() {
        const GOLDEN: &str = "deployment-aws-1.33.0-usercluster-webhook.yaml";
        let nodes = render(&cluster_with(|c| c.project_id = Some("my-project".into())));
        let rendered = find(&nodes, Kind::Deployment, WEBHOOK).unwrap();
        assert_matches_golden(&rendered, GOLDEN);
        assert_eq!(rendered_command(&rendered), golden_command(GOLDEN));
        let service = find(&nodes, Kind::Service, WEBHOOK).unwrap();
        let golden_service = golden("service-aws-1.33.0-usercluster-webhook.yaml");
        assert_eq!(service["spec"]["ports"], golden_service["spec"]["ports"]);
        assert_eq!(service["spec"]["selector"], golden_service["spec"]["selector"]);
    }

    #[test]
    fn service_accounts_and_rbac_are_rendered() {
        let nodes = render(&fixture_cluster());
        assert!(find(&nodes, Kind::ServiceAccount, CONTROLLER_SERVICE_ACCOUNT).is_some());
        assert!(find(&nodes, Kind::ServiceAccount, WEBHOOK_SERVICE_ACCOUNT).is_some());
        let binding = find(&nodes, Kind::RoleBinding, CONTROLLER_ROLE).unwrap();
        assert_eq!(binding["subjects"][0]["name"], CONTROLLER_SERVICE_ACCOUNT);
        assert_eq!(binding["roleRef"]["name"], CONTROLLER_ROLE);
        let role = nodes.iter().find(|n| n.address == meta::object(&fixture_cluster(), Kind::Role, CONTROLLER_ROLE)).unwrap();
        assert_eq!(role.role, NodeRole::Access);
    }

    #[test]
    fn the_webhook_names_the_project_from_the_clusters_label() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/topology.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("    project-id: my-project\n"), "the fixture cluster carries KKP's project label");
        let topology = crate::topology::load_str(&path, &text).unwrap();
        assert!(webhook_flags(&topology.clusters["de-test-01"]).contains(&"-project-id=my-project".to_string()));
        let unlabelled = crate::topology::load_str(&path, &text.replace("    project-id: my-project\n", "    team: payments\n")).unwrap();
        assert!(webhook_flags(&unlabelled.clusters["de-test-01"]).contains(&"-project-id=".to_string()));
    }

    #[test]
    fn cluster_roles_are_the_seeds_and_bindings_the_clusters() {
        let topology = crate::render::component::tests::fixture_topology();
        let roles = seed_cluster_roles(&topology.seeds["test-seed"]);
        assert_eq!(roles.len(), 2);
        assert!(roles.iter().all(|n| n.cluster.is_none() && n.role == NodeRole::Access));
        let cluster = fixture_cluster();
        let nodes = render(&cluster);
        let name = "kubermatic:usercluster-webhook-cluster-de-test-01";
        let binding = find(&nodes, Kind::ClusterRoleBinding, name).unwrap();
        assert_eq!(binding["roleRef"]["name"], WEBHOOK_ROLE);
        assert_eq!(binding["subjects"][0]["namespace"], "cluster-de-test-01");
        assert!(binding["metadata"].get("namespace").is_none());
        let node = nodes.iter().find(|n| n.address == meta::object(&cluster, Kind::ClusterRoleBinding, name)).unwrap();
        assert!(node.deps.contains(&roles[1].address));
    }

    #[test]
    fn rbac_objects_survive_a_round_trip_through_their_typed_structs() {
        fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(manifest: &serde_json::Value) {
            let typed: T = serde_json::from_value(manifest.clone()).expect("parses as its typed struct");
            assert_eq!(&serde_json::to_value(typed).unwrap(), manifest);
        }
        let nodes = render(&fixture_cluster());
        roundtrip::<k8s_openapi::api::core::v1::ServiceAccount>(&find(&nodes, Kind::ServiceAccount, WEBHOOK_SERVICE_ACCOUNT).unwrap());
        roundtrip::<Role>(&find(&nodes, Kind::Role, CONTROLLER_ROLE).unwrap());
        roundtrip::<RoleBinding>(&find(&nodes, Kind::RoleBinding, CONTROLLER_ROLE).unwrap());
        roundtrip::<k8s_openapi::api::apps::v1::Deployment>(&find(&nodes, Kind::Deployment, CONTROLLER).unwrap());
        roundtrip::<k8s_openapi::api::core::v1::Service>(&find(&nodes, Kind::Service, WEBHOOK).unwrap());
        let binding = find(&nodes, Kind::ClusterRoleBinding, "kubermatic:usercluster-controller-manager-cluster-de-test-01").unwrap();
        roundtrip::<ClusterRoleBinding>(&binding);
        let topology = crate::render::component::tests::fixture_topology();
        for role in seed_cluster_roles(&topology.seeds["test-seed"]) {
            let Body::Object { manifest, .. } = &role.body else { panic!("ClusterRoles are objects") };
            roundtrip::<ClusterRole>(manifest);
        }
    }
}
