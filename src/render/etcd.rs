//! etcd: headless Service, StatefulSet with a data volume claim template, PodDisruptionBudget
//! (KKP `pkg/resources/etcd`).

use super::meta::{self, fingerprint_annotations, mount, object_meta, selector, selector_labels};
use super::{Body, DesiredNode, component, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::Cluster;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, LocalObjectReference,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Service,
    ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Secrets the etcd pods mount (and whose fingerprints roll them).
const MOUNTED_SECRETS: [&str; 3] = ["etcd-tls-certificate", "ca", "apiserver-etcd-client-certificate"];

/// The image KKP pins for the cluster's Kubernetes version.
pub fn image(cluster: &Cluster) -> String {
    let tag = if (cluster.version.major, cluster.version.minor) >= (1, 36) { "3.6.12-0" } else { "3.5.21-0" };
    format!("registry.k8s.io/etcd:{tag}")
}

/// The ServiceAccount KKP runs etcd (and the apiserver) as.
pub const SERVICE_ACCOUNT: &str = "etcd-launcher";

/// The etcd nodes.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let service = Service {
        metadata: object_meta("etcd", "etcd", cluster),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels("etcd", cluster)),
            ports: Some(vec![port("client", 2379), port("peer", 2380), port("peer-tls", 2381)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (mut annotations, fingerprints) = fingerprint_annotations(cluster, &MOUNTED_SECRETS);
    annotations.insert(component::SAFE_TO_EVICT.into(), LAUNCHER_VOLUME.into());
    let mut volumes = meta::secret_volumes(&MOUNTED_SECRETS, &["ca"]);
    volumes.push(Volume { name: LAUNCHER_VOLUME.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() });
    let statefulset = StatefulSet {
        metadata: object_meta("etcd", "etcd", cluster),
        spec: Some(StatefulSetSpec {
            replicas: Some(cluster.etcd.cluster_size),
            service_name: Some("etcd".into()),
            pod_management_policy: Some("Parallel".into()),
            selector: selector("etcd", cluster),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("RollingUpdate".into()), ..Default::default() }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    name: Some("etcd".into()),
                    labels: Some(selector_labels("etcd", cluster)),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    affinity: Some(component::spread_over_hosts_and_zones("etcd")),
                    containers: vec![container(cluster)],
                    image_pull_secrets: Some(vec![LocalObjectReference { name: component::IMAGE_PULL_SECRET.into() }]),
                    service_account_name: Some(SERVICE_ACCOUNT.into()),
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta { name: Some("data".into()), ..Default::default() },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".into()]),
                    storage_class_name: Some(cluster.etcd.storage_class.clone()),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([("storage".to_string(), Quantity(cluster.etcd.disk_size.clone()))])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pdb = PodDisruptionBudget {
        metadata: object_meta("etcd", "etcd", cluster),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(cluster.etcd.cluster_size / 2 + 1)),
            selector: Some(selector("etcd", cluster)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let service_address = meta::object(cluster, Kind::Service, "etcd");
    let statefulset_address = meta::object(cluster, Kind::StatefulSet, "etcd");
    let mut sts_deps = vec![service_address];
    sts_deps.extend(MOUNTED_SECRETS.iter().map(|s| meta::secret(cluster, s)));
    sts_deps.push(meta::object(cluster, Kind::ServiceAccount, SERVICE_ACCOUNT));
    let mut nodes = vec![super::component::service_account(cluster, SERVICE_ACCOUNT)];
    nodes.extend([
        meta::cluster_node(
            cluster,
            Kind::Service,
            "etcd",
            Role::Service,
            Vec::new(),
            Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
        ),
        meta::cluster_node(
            cluster,
            Kind::StatefulSet,
            "etcd",
            Role::DataStore,
            sts_deps,
            Body::Object { manifest: manifest(&statefulset), fingerprints },
        ),
        meta::cluster_node(
            cluster,
            Kind::PodDisruptionBudget,
            "etcd",
            Role::DisruptionBudget,
            vec![statefulset_address],
            Body::Object { manifest: manifest(&pdb), fingerprints: Vec::new() },
        ),
    ]);
    nodes.push(defragger(cluster));
    nodes
}

/// CronJob `etcd-defragger`: every three hours, KKP defragments every etcd member. KKP runs
/// `etcd-launcher defrag`, which reads KKP's Cluster object; kkp creates none on seeds, so the
/// job runs etcdctl's own `defrag` against every member (docs/architecture.md).
fn defragger(cluster: &Cluster) -> DesiredNode {
    let mut command = etcdctl(cluster);
    command.push("defrag".into());
    let pod = PodSpec {
        containers: vec![Container {
            name: "defragger".into(),
            image: Some(image(cluster)),
            command: Some(command),
            volume_mounts: Some(vec![mount(CLIENT_CERTIFICATE, "/etc/etcd/pki/client")]),
            ..Default::default()
        }],
        image_pull_secrets: Some(vec![LocalObjectReference { name: component::IMAGE_PULL_SECRET.into() }]),
        restart_policy: Some("OnFailure".into()),
        service_account_name: Some(SERVICE_ACCOUNT.into()),
        volumes: Some(vec![meta::secret_volume(CLIENT_CERTIFICATE)]),
        ..Default::default()
    };
    let cron_job = CronJob {
        metadata: meta::managed_meta("etcd-defragger", cluster),
        spec: Some(CronJobSpec {
            concurrency_policy: Some("Forbid".into()),
            schedule: "@every 3h".into(),
            successful_jobs_history_limit: Some(1),
            job_template: JobTemplateSpec {
                spec: Some(JobSpec { template: PodTemplateSpec { spec: Some(pod), ..Default::default() }, ..Default::default() }),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let deps = vec![meta::secret(cluster, CLIENT_CERTIFICATE), meta::object(cluster, Kind::ServiceAccount, SERVICE_ACCOUNT)];
    meta::cluster_node(
        cluster,
        Kind::CronJob,
        "etcd-defragger",
        Role::Job,
        deps,
        Body::Object { manifest: manifest(&cron_job), fingerprints: Vec::new() },
    )
}

/// The client certificate etcd's clients (the apiserver, the defragger) use.
const CLIENT_CERTIFICATE: &str = "apiserver-etcd-client-certificate";

/// `etcdctl` pointed at every member with the client certificate, as the apiserver's
/// `etcd-running` init container and the defragger use it.
pub fn etcdctl(cluster: &Cluster) -> Vec<String> {
    vec![
        "/usr/local/bin/etcdctl".into(),
        format!("--endpoints={}", meta::etcd_client_endpoints(cluster).join(",")),
        "--cacert=/etc/etcd/pki/client/ca.crt".into(),
        "--cert=/etc/etcd/pki/client/apiserver-etcd-client.crt".into(),
        "--key=/etc/etcd/pki/client/apiserver-etcd-client.key".into(),
        "--command-timeout=10s".into(),
    ]
}

fn port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: number,
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(number)),
        ..Default::default()
    }
}

/// Where etcd keeps its data, per member, on the claimed volume.
const DATA_DIR: &str = "/var/run/etcd/pod_$(POD_NAME)/";

/// KKP's container for etcd without etcd-launcher (`getEtcdCommand`'s plain branch): the member
/// list comes in through `INITIAL_CLUSTER`, and etcdctl (the readiness probe, `kubectl exec`)
/// finds its certificates through the `ETCDCTL_*` variables.
fn container(cluster: &Cluster) -> Container {
    let ns = cluster.namespace();
    let members = (0..cluster.etcd.cluster_size)
        .map(|i| format!("etcd-{i}=http://etcd-{i}.etcd.{ns}.svc.cluster.local:2380"))
        .collect::<Vec<_>>()
        .join(",");
    let mut command: Vec<String> = [
        "/usr/local/bin/etcd",
        "--name",
        "$(POD_NAME)",
        "--data-dir",
        DATA_DIR,
        "--initial-cluster",
        "$(INITIAL_CLUSTER)",
        "--initial-cluster-token",
        &cluster.name,
        "--initial-cluster-state",
        "new",
        "--advertise-client-urls",
        &format!("https://$(POD_NAME).etcd.{ns}.svc.cluster.local:2379,https://$(POD_IP):2379"),
        "--listen-client-urls",
        "https://$(POD_IP):2379,https://127.0.0.1:2379",
        "--listen-peer-urls",
        "http://$(POD_IP):2380",
        "--listen-metrics-urls",
        "http://$(POD_IP):2378,http://127.0.0.1:2378",
        "--initial-advertise-peer-urls",
        &format!("http://$(POD_NAME).etcd.{ns}.svc.cluster.local:2380"),
        "--trusted-ca-file",
        "/etc/etcd/pki/ca/ca.crt",
        "--client-cert-auth",
        "--cert-file",
        "/etc/etcd/pki/tls/etcd-tls.crt",
        "--key-file",
        "/etc/etcd/pki/tls/etcd-tls.key",
        "--auto-compaction-retention",
        "8",
        // Every etcd KKP pins (3.5, 3.6) gets the corruption checks etcd's maintainers advise.
        "--experimental-initial-corrupt-check",
        "--experimental-corrupt-check-time",
        "240m",
    ]
    .map(String::from)
    .to_vec();
    if let Some(bytes) = quota_backend_bytes(cluster) {
        command.extend(["--quota-backend-bytes".to_string(), bytes.to_string()]);
    }
    let field_env = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: Some("v1".into()), field_path: path.into() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let value_env = |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() };
    let health = |path: &str, initial_delay: i32, period: i32, timeout: i32, failures: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(2378),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        success_threshold: Some(1),
        failure_threshold: Some(failures),
        ..Default::default()
    };
    Container {
        name: "etcd".into(),
        image: Some(image(cluster)),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(command),
        env: Some(vec![
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_IP", "status.podIP"),
            field_env("NAMESPACE", "metadata.namespace"),
            value_env("TOKEN", &cluster.name),
            value_env("ENABLE_CORRUPTION_CHECK", "true"),
            value_env("ETCDCTL_API", "3"),
            value_env("ETCDCTL_CACERT", "/etc/etcd/pki/ca/ca.crt"),
            value_env("ETCDCTL_CERT", "/etc/etcd/pki/client/apiserver-etcd-client.crt"),
            value_env("ETCDCTL_KEY", "/etc/etcd/pki/client/apiserver-etcd-client.key"),
            value_env("MASTER_ENDPOINT", &format!("https://etcd-0.etcd.{ns}.svc.cluster.local:2379")),
            value_env("INITIAL_CLUSTER", &members),
        ]),
        ports: Some(vec![
            ContainerPort { name: Some("client".into()), container_port: 2379, protocol: Some("TCP".into()), ..Default::default() },
            ContainerPort { name: Some("peer".into()), container_port: 2380, protocol: Some("TCP".into()), ..Default::default() },
        ]),
        readiness_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(["/usr/local/bin/etcdctl", "--command-timeout", "10s", "endpoint", "health"].map(String::from).to_vec()),
            }),
            initial_delay_seconds: Some(5),
            period_seconds: Some(15),
            timeout_seconds: Some(10),
            success_threshold: Some(1),
            failure_threshold: Some(3),
            ..Default::default()
        }),
        liveness_probe: Some(health("/health?exclude=NOSPACE&serializable=true", 5, 30, 10, 3)),
        // kubeadm's timings for etcd's static pod, as KKP takes them.
        startup_probe: Some(health("/health?serializable=false", 10, 10, 15, 16)),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".to_string(), Quantity("50m".into())), ("memory".to_string(), Quantity("256Mi".into()))])),
            limits: Some(BTreeMap::from([("cpu".to_string(), Quantity("2".into())), ("memory".to_string(), Quantity("2Gi".into()))])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            writable_mount("data", "/var/run/etcd"),
            writable_mount("etcd-tls-certificate", "/etc/etcd/pki/tls"),
            writable_mount("ca", "/etc/etcd/pki/ca"),
            mount(CLIENT_CERTIFICATE, "/etc/etcd/pki/client"),
            writable_mount(LAUNCHER_VOLUME, "/opt/bin/"),
        ]),
        ..Default::default()
    }
}

/// A mount as KKP writes etcd's: Secrets are read-only anyway, KKP marks only the client
/// certificate so.
fn writable_mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount { name: volume.into(), mount_path: path.into(), ..Default::default() }
}

/// KKP's scratch volume for the etcd-launcher binary. Plain etcd leaves it empty, but KKP
/// mounts it in either mode, and the autoscaler is told it may evict pods that use it.
const LAUNCHER_VOLUME: &str = "launcher";

/// `--quota-backend-bytes` for `quotaBackendGb` (GiB, as KKP converts it); none for 0 or a
/// size that does not fit in bytes.
fn quota_backend_bytes(cluster: &Cluster) -> Option<u64> {
    let gib = u64::try_from(cluster.etcd.quota_backend_gb).ok().filter(|g| *g > 0)?;
    gib.checked_mul(1 << 30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::component::tests::{cluster_with, find, golden};

    #[test]
    fn the_defragger_runs_like_kkps_on_every_member() {
        let cluster = cluster_with(|c| c.etcd.cluster_size = 5);
        let ours = find(&render(&cluster), Kind::CronJob, "etcd-defragger").unwrap();
        let theirs = golden("cronjob-aws-1.33.0-etcd-defragger.yaml");
        for field in ["schedule", "concurrencyPolicy", "successfulJobsHistoryLimit"] {
            assert_eq!(ours["spec"][field], theirs["spec"][field], "{field}");
        }
        let pod = &ours["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "etcd-launcher");
        assert_eq!(pod["restartPolicy"], "OnFailure");
        let command = pod["containers"][0]["command"].to_string();
        assert_eq!(command.matches("https://etcd-").count(), 5, "{command}");
        assert!(command.ends_with(",\"defrag\"]"), "{command}");
    }

    #[test]
    fn the_statefulset_is_kkps_plain_etcd() {
        let cluster = cluster_with(|_| {});
        let ours = find(&render(&cluster), Kind::StatefulSet, "etcd").unwrap();
        let theirs = golden("statefulset-aws-1.33.0-etcd.yaml");
        let (pod, kkp_pod) = (&ours["spec"]["template"]["spec"], &theirs["spec"]["template"]["spec"]);
        assert_eq!(pod["containers"], kkp_pod["containers"]);
        for field in ["volumes", "affinity", "imagePullSecrets", "serviceAccountName"] {
            assert_eq!(pod[field], kkp_pod[field], "{field}");
        }
        for field in ["replicas", "selector", "serviceName", "podManagementPolicy", "updateStrategy"] {
            assert_eq!(ours["spec"][field], theirs["spec"][field], "{field}");
        }
        // k8s-openapi adds the claim's apiVersion and kind; what it asks for is KKP's.
        for field in ["metadata", "spec"] {
            assert_eq!(ours["spec"]["volumeClaimTemplates"][0][field], theirs["spec"]["volumeClaimTemplates"][0][field], "{field}");
        }
    }

    #[test]
    fn members_and_backend_quota_follow_the_cluster() {
        let cluster = cluster_with(|c| {
            c.etcd.cluster_size = 5;
            c.etcd.quota_backend_gb = 8;
        });
        let set = find(&render(&cluster), Kind::StatefulSet, "etcd").unwrap();
        assert_eq!(set["spec"]["replicas"], 5);
        let container = &set["spec"]["template"]["spec"]["containers"][0];
        let members = container["env"].as_array().unwrap().iter().find(|e| e["name"] == "INITIAL_CLUSTER").unwrap();
        assert_eq!(members["value"].as_str().unwrap().split(',').count(), 5);
        let command: Vec<&str> = container["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let quota = command.iter().position(|a| *a == "--quota-backend-bytes").expect("quota flag");
        assert_eq!(command[quota + 1], (8u64 << 30).to_string());
    }
}
