//! The external cloud-controller-manager (KKP `pkg/resources/cloudcontroller`): with the
//! cluster feature `externalCloudProvider` on, one Deployment per provider that has one (AWS,
//! Azure, DigitalOcean, GCP, Hetzner, KubeVirt, OpenStack, vSphere, Anexia), running against
//! the user cluster with kubeconfig `cloud-controller-manager-kubeconfig` (rendered in pki.rs),
//! wrapped by KKP's http-prober, with KKP's OpenVPN client sidecar when the cluster tunnels
//! over OpenVPN.

use super::DesiredNode;
use super::cloud_config::{KUBEVIRT_INFRA_KUBECONFIG, renders_cloud_config, renders_kubevirt_infra_kubeconfig};
use super::component::{self, CA_BUNDLE, CLOUD_CREDENTIALS, Component, credential, env};
use super::controller_manager::external_cloud_provider;
use super::meta::{configmap_volume, mount, secret_volume};
use crate::topology::{Cluster, Tunnel};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction, PodSecurityContext, PodSpec, Probe, ProjectedVolumeSource,
    ResourceRequirements, SeccompProfile, SecretProjection, SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The kubeconfig Secret every cloud-controller-manager uses (KKP
/// `CloudControllerManagerKubeconfigSecretName`, user `system:cloud-controller-manager`).
pub const KUBECONFIG_SECRET: &str = "cloud-controller-manager-kubeconfig";
/// KKP's name of the container running the cloud-controller-manager.
pub const CONTAINER: &str = "cloud-controller-manager";
const CLOUD_CONFIG: &str = "cloud-config";
const OPENVPN_CLIENT: &str = "openvpn-client";
const OPENVPN_CLIENT_SECRET: &str = "openvpn-client-certificates";
const KUBECONFIG_FLAG: &str = "--kubeconfig=/etc/kubernetes/kubeconfig/kubeconfig";
const CLOUD_CONFIG_FLAG: &str = "--cloud-config=/etc/kubernetes/cloud/config";

/// The Deployment name of the provider's cloud-controller-manager; None for providers KKP runs
/// none for.
pub fn deployment_name(provider: &str) -> Option<&'static str> {
    Some(match provider {
        "aws" => "aws-cloud-controller-manager",
        "azure" => "azure-cloud-controller-manager",
        "openstack" => "openstack-cloud-controller-manager",
        "hetzner" => "hcloud-cloud-controller-manager",
        "gcp" => "gcp-cloud-controller-manager",
        "anexia" => "anx-cloud-controller-manager",
        "vsphere" => "vsphere-cloud-controller-manager",
        "kubevirt" => "kubevirt-cloud-controller-manager",
        "digitalocean" => "digitalocean-cloud-controller-manager",
        _ => return None,
    })
}

/// Image tags per Kubernetes minor (KKP's `*CCMVersion`); minors past KKP's table get its
/// newest (KKP's default arm; OpenStack's errors there instead).
fn tag(provider: &str, minor: u64) -> &'static str {
    match (provider, minor) {
        ("aws", 33) => "v1.33.2",
        ("aws", 34) => "v1.34.0",
        ("aws", _) => "v1.35.2",
        ("azure", 33) => "v1.33.16",
        ("azure", 34) => "v1.34.13",
        ("azure", 35) => "v1.35.8",
        ("azure", _) => "v1.36.4",
        ("gcp", ..=35) => "v35.0.8",
        ("gcp", _) => "v36.0.7",
        ("openstack", ..=33) => "v1.33.1",
        ("openstack", 34) => "v1.34.1",
        ("openstack", 35) => "v1.35.0",
        ("openstack", _) => "v1.36.0",
        ("vsphere", ..=33) => "v1.33.1",
        ("vsphere", 34) => "v1.34.0",
        ("vsphere", 35) => "v1.35.1",
        ("vsphere", _) => "v1.36.0",
        ("digitalocean", _) => "v0.1.67",
        ("hetzner", _) => "v1.34.0",
        ("kubevirt", _) => "v0.5.1",
        ("anexia", _) => "1.5.9",
        _ => "",
    }
}

/// The provider's image.
fn image(cluster: &Cluster) -> String {
    let tag = tag(&cluster.provider, cluster.version.minor);
    match cluster.provider.as_str() {
        "aws" => format!("registry.k8s.io/provider-aws/cloud-controller-manager:{tag}"),
        "azure" => format!("mcr.microsoft.com/oss/v2/kubernetes/azure-cloud-controller-manager:{tag}"),
        "gcp" => format!("registry.k8s.io/cloud-provider-gcp/cloud-controller-manager:{tag}"),
        "openstack" => format!("registry.k8s.io/provider-os/openstack-cloud-controller-manager:{tag}"),
        "vsphere" => format!("registry.k8s.io/cloud-pv-vsphere/cloud-provider-vsphere:{tag}"),
        "digitalocean" => format!("docker.io/digitalocean/digitalocean-cloud-controller-manager:{tag}"),
        "hetzner" => format!("docker.io/hetznercloud/hcloud-cloud-controller-manager:{tag}"),
        "kubevirt" => format!("quay.io/kubevirt/kubevirt-cloud-controller-manager:{tag}"),
        "anexia" => format!("anx-cr.io/anexia/anx-cloud-controller-manager:{tag}"),
        _ => String::new(),
    }
}

/// The first IPv4 pod network (KKP `Pods.GetIPv4CIDR`), empty if none.
fn ipv4_pods(cluster: &Cluster) -> String {
    cluster.network.pods.iter().find(|n| n.addr().is_ipv4()).map(ToString::to_string).unwrap_or_default()
}

fn dual_stack(cluster: &Cluster) -> bool {
    cluster.network.pods.iter().any(|n| n.addr().is_ipv4()) && cluster.network.pods.iter().any(|n| n.addr().is_ipv6())
}

/// `--cluster-name <name>` when the `ccmClusterName` feature is on.
fn cluster_name_flag(cluster: &Cluster) -> Vec<String> {
    if cluster.features.get("ccmClusterName").copied().unwrap_or(false) {
        vec!["--cluster-name".into(), cluster.name.clone()]
    } else {
        Vec::new()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The cloud-controller-manager's command line: command and arguments as KKP splits them.
pub fn command_line(cluster: &Cluster) -> (Option<Vec<String>>, Option<Vec<String>>) {
    match cluster.provider.as_str() {
        "aws" => {
            let mut command = strings(&[
                "/bin/aws-cloud-controller-manager",
                "--v=2",
                "--cloud-provider=aws",
                "--use-service-account-credentials=false",
                "--configure-cloud-routes=false",
                KUBECONFIG_FLAG,
                CLOUD_CONFIG_FLAG,
            ]);
            command.push(format!("--cluster-cidr={}", ipv4_pods(cluster)));
            command.push("--leader-elect=true".into());
            command.extend(cluster_name_flag(cluster));
            (Some(command), None)
        }
        "azure" => {
            let mut args = strings(&[
                "--allocate-node-cidrs=false",
                "--configure-cloud-routes=false",
                KUBECONFIG_FLAG,
                "--v=4",
                CLOUD_CONFIG_FLAG,
                "--cloud-provider=azure",
                "--leader-elect=true",
                "--route-reconciliation-period=10s",
                "--secure-port=10258",
                "--controllers=*,-cloud-node",
            ]);
            args.extend(cluster_name_flag(cluster));
            (Some(vec!["cloud-controller-manager".into()]), Some(args))
        }
        "digitalocean" => {
            (Some(vec!["/bin/digitalocean-cloud-controller-manager".into()]), Some(strings(&[KUBECONFIG_FLAG, "--leader-elect=false"])))
        }
        "gcp" => {
            let mut args = strings(&[
                "/go-runner",
                "--redirect-stderr=true",
                "/cloud-controller-manager",
                "--v=2",
                CLOUD_CONFIG_FLAG,
                "--secure-port=10258",
                "--use-service-account-credentials",
                "--cloud-provider=gce",
                KUBECONFIG_FLAG,
                "--authorization-kubeconfig=/etc/kubernetes/kubeconfig/kubeconfig",
                "--authentication-kubeconfig=/etc/kubernetes/kubeconfig/kubeconfig",
                "--allocate-node-cidrs",
            ]);
            args.push(format!("--cluster-name={}", cluster.name));
            args.push(format!("--cluster-cidr={}", ipv4_pods(cluster)));
            (None, Some(args))
        }
        "hetzner" => (
            Some(strings(&[
                "/bin/hcloud-cloud-controller-manager",
                KUBECONFIG_FLAG,
                "--cloud-provider=hcloud",
                "--allow-untagged-cloud",
                "--allocate-node-cidrs=false",
                "--configure-cloud-routes=false",
            ])),
            None,
        ),
        "kubevirt" => {
            let mut args = strings(&[KUBECONFIG_FLAG, CLOUD_CONFIG_FLAG, "--cloud-provider=kubevirt"]);
            args.extend(cluster_name_flag(cluster));
            (Some(vec!["/bin/kubevirt-cloud-controller-manager".into()]), Some(args))
        }
        "openstack" => {
            let mut args = strings(&[KUBECONFIG_FLAG, "--v=1", CLOUD_CONFIG_FLAG, "--cloud-provider=openstack"]);
            args.extend(cluster_name_flag(cluster));
            (Some(vec!["/bin/openstack-cloud-controller-manager".into()]), Some(args))
        }
        "vsphere" => {
            let mut args = strings(&["--v=2", "--cloud-provider=vsphere", CLOUD_CONFIG_FLAG, KUBECONFIG_FLAG]);
            args.extend(cluster_name_flag(cluster));
            (Some(vec!["/bin/vsphere-cloud-controller-manager".into()]), Some(args))
        }
        "anexia" => {
            let human = cluster.human_readable_name.clone().unwrap_or_default();
            let command = vec![
                "/app/ccm".into(),
                "--cloud-provider=anexia".into(),
                CLOUD_CONFIG_FLAG.into(),
                format!("--cluster-name={human}"),
                KUBECONFIG_FLAG.into(),
            ];
            (Some(command), None)
        }
        _ => (None, None),
    }
}

/// KKP's `getEnvVars` plus each provider's own.
fn env_vars(cluster: &Cluster) -> Vec<EnvVar> {
    let mut vars = vec![env("SSL_CERT_FILE", "/etc/kubermatic/certs/ca-bundle.pem")];
    match cluster.provider.as_str() {
        "aws" => {
            vars.push(credential("AWS_ACCESS_KEY_ID", "accessKeyId", false));
            vars.push(credential("AWS_SECRET_ACCESS_KEY", "secretAccessKey", false));
        }
        // KKP gives DigitalOcean's its own two variables only.
        "digitalocean" => {
            vars = vec![credential("DO_ACCESS_TOKEN", "token", false), env("REGION", &component::datacenter_setting(cluster, "region"))];
        }
        "gcp" => vars.push(env("GOOGLE_APPLICATION_CREDENTIALS", "/etc/kubermatic/cloud-credentials/serviceAccount.json")),
        "hetzner" => {
            let mut network = component::cluster_setting(cluster, "network");
            if network.is_empty() {
                network = component::datacenter_setting(cluster, "network");
            }
            vars.push(credential("HCLOUD_TOKEN", "token", false));
            vars.push(env("HCLOUD_NETWORK", &network));
            vars.push(env("HCLOUD_NETWORK_DISABLE_ATTACHED_CHECK", "true"));
            if dual_stack(cluster) {
                vars.push(env("HCLOUD_INSTANCES_ADDRESS_FAMILY", "dualstack"));
            }
        }
        "vsphere" if dual_stack(cluster) => vars.push(env("ENABLE_ALPHA_DUAL_STACK", "true")),
        "anexia" => {
            vars.push(credential("ANEXIA_TOKEN", "token", false));
            vars.push(env("ANEXIA_AUTO_DISCOVER_LOAD_BALANCER", "true"));
        }
        _ => {}
    }
    vars
}

fn quantities(entries: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    entries.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
}

/// KKP's resources per provider (request cpu, memory; limit cpu, memory).
fn resources(provider: &str) -> ResourceRequirements {
    let (requests, limits) = match provider {
        "aws" => (("200m", "300Mi"), Some(("1", "512Mi"))),
        "azure" => (("100m", "128Mi"), Some(("4", "2Gi"))),
        "digitalocean" => (("100m", "50Mi"), Some(("1", "512Mi"))),
        "gcp" => (("50m", "256Mi"), Some(("1", "512Mi"))),
        "hetzner" => (("100m", "50Mi"), None),
        "openstack" | "kubevirt" => (("100m", "100Mi"), Some(("500m", "512Mi"))),
        "vsphere" => (("200m", "100Mi"), Some(("500m", "512Mi"))),
        // Anexia's runs without requests or limits in KKP.
        _ => return ResourceRequirements::default(),
    };
    ResourceRequirements {
        requests: Some(quantities(&[("cpu", requests.0), ("memory", requests.1)])),
        limits: limits.map(|(cpu, memory)| quantities(&[("cpu", cpu), ("memory", memory)])),
        ..Default::default()
    }
}

fn probe(port: IntOrString, initial_delay: i32, timeout: i32, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction { path: Some("/healthz".into()), port, scheme: Some("HTTPS".into()), ..Default::default() }),
        initial_delay_seconds: Some(initial_delay),
        timeout_seconds: Some(timeout),
        period_seconds: Some(period),
        success_threshold: Some(1),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// Whether the provider's pod mounts `cloud-config` (all but Hetzner's; KubeVirt's projects it
/// with the infra kubeconfig).
fn mounts_cloud_config(provider: &str) -> bool {
    provider != "hetzner"
}

/// Whether every Secret the pod needs is rendered: all of them read the cloud credentials
/// (directly or through a config made from them), so none runs without a credentials reference.
fn has_its_secrets(cluster: &Cluster) -> bool {
    cluster.cloud.credentials.is_some()
        && (!mounts_cloud_config(&cluster.provider) || renders_cloud_config(cluster))
        && (cluster.provider != "kubevirt" || renders_kubevirt_infra_kubeconfig(cluster))
}

/// The cloud-controller-manager Deployment, when the feature is on and KKP runs one for the
/// provider.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let Some(name) = deployment_name(&cluster.provider) else { return Vec::new() };
    if !external_cloud_provider(cluster) || !has_its_secrets(cluster) {
        return Vec::new();
    }
    let provider = cluster.provider.as_str();
    let openvpn = cluster.tunnel == Tunnel::OpenVpn;

    // KKP's getVolumes: kubeconfig, CA bundle, cloud-config, OpenVPN client certificates.
    let mut volumes = vec![secret_volume(KUBECONFIG_SECRET), configmap_volume(CA_BUNDLE)];
    let mut secrets = vec![KUBECONFIG_SECRET];
    if provider != "hetzner" && provider != "kubevirt" {
        volumes.push(secret_volume(CLOUD_CONFIG));
        secrets.push(CLOUD_CONFIG);
    }
    if openvpn {
        volumes.push(secret_volume(OPENVPN_CLIENT_SECRET));
        secrets.push(OPENVPN_CLIENT_SECRET);
    }
    let mut mounts = vec![mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig"), mount(CA_BUNDLE, "/etc/kubermatic/certs")];
    if mounts_cloud_config(provider) {
        mounts.push(mount(CLOUD_CONFIG, "/etc/kubernetes/cloud"));
    }

    let mut annotations = BTreeMap::new();
    let mut init_containers = Vec::new();
    let mut security_context = None;
    match provider {
        "kubevirt" => {
            // The infra cluster's kubeconfig and the cloud config, side by side in one directory.
            let project = |secret: &str| VolumeProjection {
                secret: Some(SecretProjection { name: secret.into(), ..Default::default() }),
                ..Default::default()
            };
            volumes.push(Volume {
                name: CLOUD_CONFIG.into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![project(KUBEVIRT_INFRA_KUBECONFIG), project(CLOUD_CONFIG)]),
                    default_mode: Some(420),
                }),
                ..Default::default()
            });
            secrets.extend([KUBEVIRT_INFRA_KUBECONFIG, CLOUD_CONFIG]);
        }
        "gcp" => {
            // The init container decodes the base64 service account into a memory scratch volume.
            volumes.push(secret_volume(CLOUD_CREDENTIALS));
            volumes.push(Volume {
                name: "scratch".into(),
                empty_dir: Some(EmptyDirVolumeSource { medium: Some("Memory".into()), ..Default::default() }),
                ..Default::default()
            });
            secrets.push(CLOUD_CREDENTIALS);
            annotations.insert(component::SAFE_TO_EVICT.to_string(), "scratch".to_string());
            security_context = Some(PodSecurityContext {
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                ..Default::default()
            });
            let mut init_mounts = mounts.clone();
            init_mounts.push(VolumeMount { name: CLOUD_CREDENTIALS.into(), mount_path: "/input".into(), ..Default::default() });
            init_mounts.push(VolumeMount { name: "scratch".into(), mount_path: "/scratch".into(), ..Default::default() });
            init_containers.push(Container {
                name: "decode-sa".into(),
                image: Some("quay.io/kubermatic/util:2.9.0".into()),
                command: Some(vec!["/bin/sh".into()]),
                args: Some(strings(&["-c", "base64 -d /input/serviceAccount > /scratch/serviceAccount.json"])),
                volume_mounts: Some(init_mounts),
                ..Default::default()
            });
            mounts.push(VolumeMount {
                name: "scratch".into(),
                mount_path: "/etc/kubermatic/cloud-credentials".into(),
                ..Default::default()
            });
        }
        _ => {}
    }

    let env = env_vars(cluster);
    if component::reads_credentials(&env) && !secrets.contains(&CLOUD_CREDENTIALS) {
        secrets.push(CLOUD_CREDENTIALS);
    }
    let (command, args) = command_line(cluster);
    let mut container = Container {
        name: CONTAINER.into(),
        image: Some(image(cluster)),
        command,
        args,
        env: Some(env),
        volume_mounts: Some(mounts),
        resources: Some(resources(provider)),
        ..Default::default()
    };
    match provider {
        "azure" => container.liveness_probe = Some(probe(IntOrString::Int(10258), 20, 5, 10)),
        "gcp" => container.liveness_probe = Some(probe(IntOrString::Int(10258), 15, 15, 10)),
        "openstack" | "vsphere" => {
            container.security_context = Some(SecurityContext { run_as_user: Some(1001), ..Default::default() });
        }
        "anexia" => {
            container.ports = Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]);
            container.liveness_probe = Some(probe(IntOrString::String("http".into()), 5, 10, 20));
            container.readiness_probe = container.liveness_probe.clone();
        }
        _ => {}
    }

    let mut containers = vec![container];
    let mut pod_labels = BTreeMap::new();
    if provider == "vsphere" {
        pod_labels.extend([("component".to_string(), "cloud-controller-manager".to_string()), ("tier".into(), "control-plane".into())]);
    }
    let mut pod = PodSpec {
        automount_service_account_token: Some(false),
        // KKP sets no DNS policy for Anexia's.
        dns_policy: (provider != "anexia").then(|| "ClusterFirst".into()),
        security_context,
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        ..Default::default()
    };
    if openvpn {
        // KKP's OpenVPN client sidecar carries the traffic to the nodes; it waits for the apiserver too.
        let sidecar = super::openvpn::apiserver_sidecars(cluster).into_iter().find(|c| c.name == OPENVPN_CLIENT);
        containers.extend(sidecar);
    }
    pod.containers = containers;
    pod.volumes = Some(volumes);
    if openvpn {
        super::http_prober::wrap(cluster, &mut pod, &mut annotations, OPENVPN_CLIENT, &[]);
    }
    vec![
        Component {
            cluster,
            name,
            replicas: 1,
            extra_pod_labels: pod_labels,
            annotations,
            pod,
            wrap: Some((CONTAINER, Vec::new())),
            strategy: None,
            secrets,
            configmaps: vec![CA_BUNDLE],
            image_pull_secret: false,
        }
        .into_node(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::render::component::tests::{cluster_with, find, rendered_command};
    use crate::render::meta;

    fn external(provider: &str, edit: impl FnOnce(&mut Cluster)) -> Cluster {
        cluster_with(|c| {
            c.provider = provider.into();
            c.features.insert("externalCloudProvider".into(), true);
            edit(c);
        })
    }

    fn deployment(cluster: &Cluster) -> serde_json::Value {
        let name = deployment_name(&cluster.provider).unwrap();
        find(&render(cluster), Kind::Deployment, name).unwrap_or_else(|| panic!("{name} rendered"))
    }

    fn pod(cluster: &Cluster) -> PodSpec {
        serde_json::from_value(deployment(cluster)["spec"]["template"]["spec"].clone()).unwrap()
    }

    #[test]
    fn rendered_only_with_the_external_cloud_provider_feature() {
        assert!(render(&cluster_with(|_| {})).is_empty(), "the fixture cluster runs the in-tree provider");
        assert!(render(&external("nutanix", |_| {})).is_empty(), "KKP runs no CCM for Nutanix");
        assert!(render(&external("aws", |c| c.cloud.credentials = None)).is_empty(), "no credentials, no CCM");
        let aws = external("aws", |_| {});
        let nodes = render(&aws);
        assert_eq!(nodes.len(), 1);
        let rendered = deployment(&aws);
        assert_eq!(rendered["spec"]["selector"]["matchLabels"], serde_json::json!({"app": "aws-cloud-controller-manager"}));
        for secret in [KUBECONFIG_SECRET, CLOUD_CONFIG, CLOUD_CREDENTIALS] {
            assert!(nodes[0].deps.contains(&meta::secret(&aws, secret)), "depends on {secret}");
        }
        assert!(nodes[0].deps.contains(&meta::object(&aws, Kind::ConfigMap, CA_BUNDLE)));
    }

    #[test]
    fn aws_flags_and_image_follow_kkp_per_minor() {
        let aws = external("aws", |_| {});
        let command = rendered_command(&deployment(&aws));
        assert_eq!(command[0], "/bin/aws-cloud-controller-manager");
        assert!(command.contains(&"--cluster-cidr=172.25.0.0/16".to_string()));
        assert!(!command.contains(&"--cluster-name".to_string()));
        let image = |minor| pod(&external("aws", |c| c.version.minor = minor)).containers[0].image.clone().unwrap();
        assert_eq!(image(33), "registry.k8s.io/provider-aws/cloud-controller-manager:v1.33.2");
        assert_eq!(image(34), "registry.k8s.io/provider-aws/cloud-controller-manager:v1.34.0");
        // No AWS release for 1.36 yet: KKP runs 1.35's.
        assert_eq!(image(36), "registry.k8s.io/provider-aws/cloud-controller-manager:v1.35.2");
        let named = rendered_command(&deployment(&external("aws", |c| {
            c.features.insert("ccmClusterName".into(), true);
        })));
        assert!(named.windows(2).any(|w| w == ["--cluster-name", "de-test-01"]));
    }

    #[test]
    fn gcp_decodes_its_service_account_before_starting() {
        let gcp = external("gcp", |_| {});
        let pod = pod(&gcp);
        let init: Vec<_> = pod.init_containers.iter().flatten().map(|c| c.name.as_str()).collect();
        assert_eq!(init, ["copy-http-prober", "decode-sa"]);
        let volumes: Vec<_> = pod.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, [KUBECONFIG_SECRET, CA_BUNDLE, CLOUD_CONFIG, CLOUD_CREDENTIALS, "scratch", "http-prober-bin"]);
        let annotations = &deployment(&gcp)["spec"]["template"]["metadata"]["annotations"];
        assert_eq!(annotations[component::SAFE_TO_EVICT], "http-prober-bin,scratch");
        let command = rendered_command(&deployment(&gcp));
        assert_eq!(&command[..3], ["/go-runner", "--redirect-stderr=true", "/cloud-controller-manager"]);
        let tag = |minor| pod_image(&external("gcp", |c| c.version.minor = minor));
        assert_eq!(tag(35), "registry.k8s.io/cloud-provider-gcp/cloud-controller-manager:v35.0.8");
        assert_eq!(tag(36), "registry.k8s.io/cloud-provider-gcp/cloud-controller-manager:v36.0.7");
    }

    fn pod_image(cluster: &Cluster) -> String {
        pod(cluster).containers[0].image.clone().unwrap()
    }

    #[test]
    fn hetzner_and_kubevirt_mount_what_kkp_mounts() {
        let hetzner = pod(&external("hetzner", |c| c.cloud.cluster_settings = serde_json::json!({"network": "net-1"})));
        let container = &hetzner.containers[0];
        assert!(!container.volume_mounts.iter().flatten().any(|m| m.name == CLOUD_CONFIG), "hcloud reads no cloud config");
        let env = container.env.as_ref().unwrap();
        assert_eq!(env.iter().find(|e| e.name == "HCLOUD_NETWORK").unwrap().value.as_deref(), Some("net-1"));
        assert!(container.resources.as_ref().unwrap().limits.is_none(), "KKP sets requests only");

        let kubevirt = external("kubevirt", |_| {});
        if !renders_kubevirt_infra_kubeconfig(&kubevirt) {
            assert!(render(&kubevirt).is_empty());
            return;
        }
        let projected = pod(&kubevirt).volumes.unwrap().into_iter().find(|v| v.name == CLOUD_CONFIG).unwrap().projected.unwrap();
        let sources: Vec<_> = projected.sources.unwrap().into_iter().map(|s| s.secret.unwrap().name).collect();
        assert_eq!(sources, [KUBEVIRT_INFRA_KUBECONFIG, CLOUD_CONFIG]);
    }

    #[test]
    fn openvpn_clusters_get_the_client_sidecar_wrapped_too() {
        let cluster = external("openstack", |c| c.tunnel = Tunnel::OpenVpn);
        let nodes = render(&cluster);
        let pod = pod(&cluster);
        let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, [CONTAINER, OPENVPN_CLIENT]);
        for container in &pod.containers {
            assert_eq!(
                container.command.as_deref().unwrap(),
                ["/http-prober-bin/http-prober"],
                "{} waits for the apiserver",
                container.name
            );
        }
        assert_eq!(pod.init_containers.unwrap().len(), 1, "one prober copy for both");
        assert!(nodes[0].deps.contains(&meta::secret(&cluster, OPENVPN_CLIENT_SECRET)));
        assert_eq!(pod.containers[0].security_context.as_ref().unwrap().run_as_user, Some(1001));
    }

    #[test]
    fn vsphere_labels_and_azure_probe() {
        let vsphere = deployment(&external("vsphere", |_| {}));
        assert_eq!(vsphere["spec"]["template"]["metadata"]["labels"]["tier"], "control-plane");
        let azure = pod(&external("azure", |_| {}));
        let probe = azure.containers[0].liveness_probe.as_ref().unwrap();
        assert_eq!((probe.initial_delay_seconds, probe.timeout_seconds), (Some(20), Some(5)));
        assert_eq!(
            azure.containers[0].image.as_deref(),
            Some("mcr.microsoft.com/oss/v2/kubernetes/azure-cloud-controller-manager:v1.33.16")
        );
    }
}
