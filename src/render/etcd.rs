//! etcd: headless Service, StatefulSet with a data volume claim template, PodDisruptionBudget
//! (KKP `pkg/resources/etcd`).

use super::meta::{self, fingerprint_annotations, mount, object_meta, selector, selector_labels};
use super::{Body, DesiredNode, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::Cluster;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, Service, ServicePort, ServiceSpec, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Secrets the etcd pods mount (and whose fingerprints roll them).
const MOUNTED_SECRETS: [&str; 3] = ["ca", "etcd-tls-certificate", "apiserver-etcd-client-certificate"];

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
    let (annotations, fingerprints) = fingerprint_annotations(cluster, &MOUNTED_SECRETS);
    let statefulset = StatefulSet {
        metadata: object_meta("etcd", "etcd", cluster),
        spec: Some(StatefulSetSpec {
            replicas: Some(cluster.etcd.cluster_size),
            service_name: Some("etcd".into()),
            pod_management_policy: Some("Parallel".into()),
            selector: selector("etcd", cluster),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector_labels("etcd", cluster)),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(SERVICE_ACCOUNT.into()),
                    containers: vec![container(cluster)],
                    volumes: Some(meta::secret_volumes(&MOUNTED_SECRETS, &["ca"])),
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
        image_pull_secrets: Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
            name: super::component::IMAGE_PULL_SECRET.into(),
        }]),
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

/// The etcd container: KKP's command line without etcd-launcher (see docs/architecture.md).
fn container(cluster: &Cluster) -> Container {
    let ns = cluster.namespace();
    let initial_cluster = (0..cluster.etcd.cluster_size)
        .map(|i| format!("etcd-{i}=http://etcd-{i}.etcd.{ns}.svc.cluster.local:2380"))
        .collect::<Vec<_>>()
        .join(",");
    let command = vec![
        "/usr/local/bin/etcd".to_string(),
        "--name=$(POD_NAME)".into(),
        "--data-dir=/var/run/etcd/pod_$(POD_NAME)/".into(),
        format!("--initial-cluster={initial_cluster}"),
        format!("--initial-cluster-token={}", cluster.name),
        "--initial-cluster-state=new".into(),
        format!("--advertise-client-urls=https://$(POD_NAME).etcd.{ns}.svc.cluster.local:2379,https://$(POD_IP):2379"),
        "--listen-client-urls=https://$(POD_IP):2379,https://127.0.0.1:2379".into(),
        "--listen-metrics-urls=http://$(POD_IP):2378,http://127.0.0.1:2378".into(),
        "--listen-peer-urls=http://$(POD_IP):2380".into(),
        format!("--initial-advertise-peer-urls=http://$(POD_NAME).etcd.{ns}.svc.cluster.local:2380"),
        "--trusted-ca-file=/etc/etcd/pki/ca/ca.crt".into(),
        "--client-cert-auth".into(),
        "--cert-file=/etc/etcd/pki/tls/etcd-tls.crt".into(),
        "--key-file=/etc/etcd/pki/tls/etcd-tls.key".into(),
        "--auto-compaction-retention=8".into(),
    ];
    let field_env = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let health = |path: &str| Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(2378),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    Container {
        name: "etcd".into(),
        image: Some(image(cluster)),
        command: Some(command),
        env: Some(vec![field_env("POD_NAME", "metadata.name"), field_env("POD_IP", "status.podIP")]),
        ports: Some(vec![
            ContainerPort { name: Some("client".into()), container_port: 2379, protocol: Some("TCP".into()), ..Default::default() },
            ContainerPort { name: Some("peer".into()), container_port: 2380, protocol: Some("TCP".into()), ..Default::default() },
            ContainerPort { name: Some("metrics".into()), container_port: 2378, protocol: Some("TCP".into()), ..Default::default() },
        ]),
        readiness_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec![
                    "/usr/local/bin/etcdctl".into(),
                    "--endpoints=https://127.0.0.1:2379".into(),
                    "--cacert=/etc/etcd/pki/ca/ca.crt".into(),
                    "--cert=/etc/etcd/pki/client/apiserver-etcd-client.crt".into(),
                    "--key=/etc/etcd/pki/client/apiserver-etcd-client.key".into(),
                    "endpoint".into(),
                    "health".into(),
                ]),
            }),
            ..Default::default()
        }),
        liveness_probe: Some(health("/health?exclude=NOSPACE&serializable=true")),
        startup_probe: Some(health("/health?serializable=false")),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([("cpu".to_string(), Quantity("50m".into())), ("memory".to_string(), Quantity("256Mi".into()))])),
            limits: Some(BTreeMap::from([("cpu".to_string(), Quantity("2".into())), ("memory".to_string(), Quantity("2Gi".into()))])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount { name: "data".into(), mount_path: "/var/run/etcd".into(), ..Default::default() },
            mount("etcd-tls-certificate", "/etc/etcd/pki/tls"),
            mount("ca", "/etc/etcd/pki/ca"),
            mount("apiserver-etcd-client-certificate", "/etc/etcd/pki/client"),
        ]),
        ..Default::default()
    }
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
}
