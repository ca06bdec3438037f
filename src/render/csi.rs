//! VMware Cloud Director's CSI controller (KKP `pkg/resources/csi/vmwareclouddirector`):
//! Deployment `csi-controller` (attacher, provisioner, resizer and the named-disk driver) with
//! ServiceAccount `vcloud-csi`, for every VMware Cloud Director cluster. Its Secrets
//! (`cloud-config-csi`, `vcloud-basic-auth`) are in cloud_config.rs, its kubeconfig
//! `vcloud-csi-kubeconfig` in pki.rs.

use super::DesiredNode;
use super::cloud_config::{VCD_CSI_BASIC_AUTH, VCD_CSI_CLOUD_CONFIG, renders_vcd_csi_secrets};
use super::component::{self, Component, env};
use super::meta::{mount, secret_volume};
use crate::topology::Cluster;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HostPathVolumeSource, ObjectFieldSelector, PodSpec, Volume, VolumeMount,
};
use std::collections::BTreeMap;

/// Deployment name and `app` label (KKP `VMwareCloudDirectorCSIControllerName`).
pub const NAME: &str = "csi-controller";
/// KKP's ServiceAccount of the controller.
pub const SERVICE_ACCOUNT: &str = "vcloud-csi";
const KUBECONFIG_SECRET: &str = "vcloud-csi-kubeconfig";
const BASIC_AUTH_VOLUME: &str = "vcloud-basic-auth-volume";
const SOCKET_DIR: &str = "/var/lib/csi/sockets/pluginproxy/";
const SOCKET: &str = "unix:///var/lib/csi/sockets/pluginproxy/csi.sock";
const KUBECONFIG_FLAG: &str = "--kubeconfig=/etc/kubernetes/kubeconfig/kubeconfig";
const DRIVER_VERSION: &str = "1.6.0";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn host_path(name: &str, path: &str) -> Volume {
    Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource { path: path.into(), type_: Some("DirectoryOrCreate".into()) }),
        ..Default::default()
    }
}

fn plain_mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() }
}

fn propagated(name: &str, path: &str) -> VolumeMount {
    VolumeMount { mount_propagation: Some("HostToContainer".into()), ..plain_mount(name, path) }
}

/// A CSI sidecar: talks to the driver's socket and to the user cluster.
fn sidecar(name: &str, image: &str, args: &[&str], address: &str) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(strings(args)),
        env: Some(vec![env("ADDRESS", address)]),
        volume_mounts: Some(vec![plain_mount("socket-dir", SOCKET_DIR), mount(KUBECONFIG_SECRET, "/etc/kubernetes/kubeconfig")]),
        resources: Some(component::resources("10m", "24Mi", "100m", "64Mi")),
        ..Default::default()
    }
}

/// The CSI controller's containers, as KKP lists them.
pub fn containers() -> Vec<Container> {
    let node_id = EnvVar {
        name: "NODE_ID".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "spec.nodeName".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![
        sidecar(
            "csi-attacher",
            "registry.k8s.io/sig-storage/csi-attacher:v4.3.0",
            &["--csi-address=$(ADDRESS)", KUBECONFIG_FLAG, "--timeout=180s", "--v=5"],
            SOCKET,
        ),
        sidecar(
            "csi-provisioner",
            "registry.k8s.io/sig-storage/csi-provisioner:v2.2.2",
            &["--csi-address=$(ADDRESS)", KUBECONFIG_FLAG, "--default-fstype=ext4", "--timeout=300s", "--v=5"],
            SOCKET,
        ),
        // KKP gives the resizer the socket's path without the scheme.
        sidecar(
            "csi-resizer",
            "registry.k8s.io/sig-storage/csi-resizer:v1.4.0",
            &["--csi-address=$(ADDRESS)", "--timeout=30s", KUBECONFIG_FLAG, "--v=5"],
            "/var/lib/csi/sockets/pluginproxy/csi.sock",
        ),
        Container {
            name: "vcd-csi-plugin".into(),
            image: Some(format!(
                "projects.registry.vmware.com/vmware-cloud-director/cloud-director-named-disk-csi-driver:{DRIVER_VERSION}"
            )),
            image_pull_policy: Some("IfNotPresent".into()),
            command: Some(vec!["/opt/vcloud/bin/cloud-director-named-disk-csi-driver".into()]),
            args: Some(strings(&["--endpoint=$(CSI_ENDPOINT)", "--cloud-config=/etc/kubernetes/vcloud/config"])),
            env: Some(vec![env("CSI_ENDPOINT", SOCKET), node_id]),
            volume_mounts: Some(vec![
                plain_mount("socket-dir", SOCKET_DIR),
                propagated("pods-probe-dir", "/dev"),
                propagated("pv-dir", "/var/lib/kubelet/plugins/kubernetes.io/csi"),
                plain_mount(VCD_CSI_CLOUD_CONFIG, "/etc/kubernetes/vcloud"),
                plain_mount(BASIC_AUTH_VOLUME, "/etc/kubernetes/vcloud/basic-auth"),
            ]),
            resources: Some(component::resources("10m", "24Mi", "200m", "128Mi")),
            ..Default::default()
        },
    ]
}

/// The CSI controller and its ServiceAccount, for VMware Cloud Director clusters whose
/// credentials make its Secrets.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    if !renders_vcd_csi_secrets(cluster) {
        return Vec::new();
    }
    let mut basic_auth = secret_volume(VCD_CSI_BASIC_AUTH);
    basic_auth.name = BASIC_AUTH_VOLUME.into();
    let volumes = vec![
        Volume { name: "socket-dir".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
        host_path("pods-probe-dir", "/dev"),
        host_path("pv-dir", "/var/lib/kubelet/plugins/kubernetes.io/csi"),
        secret_volume(VCD_CSI_CLOUD_CONFIG),
        basic_auth,
        secret_volume(KUBECONFIG_SECRET),
    ];
    let annotations = BTreeMap::from([(component::SAFE_TO_EVICT.to_string(), "socket-dir".to_string())]);
    vec![
        component::service_account_labelled(cluster, SERVICE_ACCOUNT, component::metadata(SERVICE_ACCOUNT, cluster)),
        Component {
            cluster,
            name: NAME,
            replicas: 1,
            extra_pod_labels: BTreeMap::new(),
            annotations,
            pod: PodSpec {
                containers: containers(),
                volumes: Some(volumes),
                service_account_name: Some(SERVICE_ACCOUNT.into()),
                dns_policy: Some("ClusterFirst".into()),
                ..Default::default()
            },
            wrap: None,
            strategy: None,
            secrets: vec![VCD_CSI_CLOUD_CONFIG, VCD_CSI_BASIC_AUTH, KUBECONFIG_SECRET],
            configmaps: Vec::new(),
            image_pull_secret: false,
        }
        .into_node(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Kind;
    use crate::render::component::tests::{cluster_with, find};
    use crate::render::meta;

    fn vcd(edit: impl FnOnce(&mut Cluster)) -> Cluster {
        cluster_with(|c| {
            c.provider = "vmwareclouddirector".into();
            edit(c);
        })
    }

    #[test]
    fn only_vmware_cloud_director_clusters_with_credentials_get_it() {
        assert!(render(&cluster_with(|_| {})).is_empty());
        assert!(render(&vcd(|c| c.cloud.credentials = None)).is_empty(), "its Secrets are made from the credentials");
        let cluster = vcd(|_| {});
        let nodes = render(&cluster);
        assert!(find(&nodes, Kind::ServiceAccount, SERVICE_ACCOUNT).is_some());
        let deployment = nodes.iter().find(|n| n.address == meta::object(&cluster, Kind::Deployment, NAME)).unwrap();
        for secret in [VCD_CSI_CLOUD_CONFIG, VCD_CSI_BASIC_AUTH, KUBECONFIG_SECRET] {
            assert!(deployment.deps.contains(&meta::secret(&cluster, secret)), "depends on {secret}");
        }
        assert!(deployment.deps.contains(&meta::object(&cluster, Kind::ServiceAccount, SERVICE_ACCOUNT)));
        // The cloud config and login Secrets are rendered beside it.
        let secrets = crate::render::cloud_config::secrets(&cluster);
        for name in [VCD_CSI_CLOUD_CONFIG, VCD_CSI_BASIC_AUTH] {
            assert!(secrets.iter().any(|n| n.address == meta::secret(&cluster, name)), "{name} rendered");
        }
    }

    #[test]
    fn pods_match_their_selector_and_mount_kkps_paths() {
        let cluster = vcd(|_| {});
        let manifest = find(&render(&cluster), Kind::Deployment, NAME).unwrap();
        let selector = &manifest["spec"]["selector"]["matchLabels"];
        assert_eq!(selector, &serde_json::json!({"app": NAME}));
        assert_eq!(manifest["spec"]["template"]["metadata"]["labels"]["app"], NAME, "KKP's pods would not match");
        let pod: PodSpec = serde_json::from_value(manifest["spec"]["template"]["spec"].clone()).unwrap();
        let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["csi-attacher", "csi-provisioner", "csi-resizer", "vcd-csi-plugin"]);
        let driver = &pod.containers[3];
        let mounts: Vec<_> = driver.volume_mounts.iter().flatten().map(|m| (m.name.as_str(), m.mount_path.as_str())).collect();
        assert!(mounts.contains(&(BASIC_AUTH_VOLUME, "/etc/kubernetes/vcloud/basic-auth")));
        assert_eq!(driver.volume_mounts.as_ref().unwrap()[1].mount_propagation.as_deref(), Some("HostToContainer"));
        let basic_auth = pod.volumes.unwrap().into_iter().find(|v| v.name == BASIC_AUTH_VOLUME).unwrap();
        assert_eq!(basic_auth.secret.unwrap().secret_name.as_deref(), Some(VCD_CSI_BASIC_AUTH));
        assert_eq!(pod.service_account_name.as_deref(), Some(SERVICE_ACCOUNT));
    }
}
