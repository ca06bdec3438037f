//! Per-cluster Prometheus: ConfigMap `prometheus` scraping etcd and the apiserver, headless
//! Service, StatefulSet (KKP `pkg/resources/prometheus`).

use super::meta::{self, fingerprint_annotations, mount, object_meta, selector, selector_labels};
use super::{Body, DesiredNode, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::Cluster;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Service, ServicePort,
    ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;
use std::collections::BTreeMap;

const MOUNTED_SECRETS: [&str; 2] = ["apiserver-etcd-client-certificate", "prometheus-apiserver-certificate"];
const IMAGE: &str = "quay.io/prometheus/prometheus:v2.51.1";

/// The Prometheus nodes.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let configmap = ConfigMap {
        metadata: object_meta("prometheus", "prometheus", cluster),
        data: Some(BTreeMap::from([("prometheus.yaml".to_string(), config(cluster)), ("rules.yaml".to_string(), rules())])),
        ..Default::default()
    };
    let mut service_meta = object_meta("prometheus", "prometheus", cluster);
    service_meta.labels.get_or_insert_default().insert("cluster".into(), "user".into());
    let service = Service {
        metadata: service_meta,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels("prometheus", cluster)),
            ports: Some(vec![ServicePort {
                name: Some("web".into()),
                port: 9090,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::Int(9090)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let (annotations, fingerprints) = fingerprint_annotations(cluster, &MOUNTED_SECRETS);
    let statefulset = StatefulSet {
        metadata: object_meta("prometheus", "prometheus", cluster),
        spec: Some(StatefulSetSpec {
            replicas: Some(cluster.prometheus_replicas),
            service_name: Some("prometheus".into()),
            selector: selector("prometheus", cluster),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector_labels("prometheus", cluster)),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some("prometheus".into()),
                    security_context: Some(PodSecurityContext {
                        run_as_user: Some(1000),
                        fs_group: Some(2000),
                        run_as_non_root: Some(true),
                        ..Default::default()
                    }),
                    containers: vec![Container {
                        name: "prometheus".into(),
                        image: Some(IMAGE.into()),
                        args: Some(vec![
                            "--config.file=/etc/prometheus/config/prometheus.yaml".into(),
                            "--storage.tsdb.path=/var/prometheus/data".into(),
                            "--storage.tsdb.retention.time=1h".into(),
                            "--web.enable-lifecycle".into(),
                        ]),
                        ports: Some(vec![ContainerPort {
                            name: Some("web".into()),
                            container_port: 9090,
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        }]),
                        volume_mounts: Some(vec![
                            mount("prometheus", "/etc/prometheus/config"),
                            VolumeMount { name: "data".into(), mount_path: "/var/prometheus/data".into(), ..Default::default() },
                            mount("apiserver-etcd-client-certificate", "/etc/etcd/pki/client"),
                            mount("prometheus-apiserver-certificate", "/etc/kubernetes/pki/prometheus"),
                        ]),
                        ..Default::default()
                    }],
                    volumes: Some({
                        let mut volumes = vec![
                            meta::configmap_volume("prometheus"),
                            Volume { name: "data".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
                        ];
                        volumes.extend(meta::secret_volumes(&MOUNTED_SECRETS, &[]));
                        volumes
                    }),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut deps = vec![
        meta::object(cluster, Kind::ConfigMap, "prometheus"),
        meta::object(cluster, Kind::Service, "prometheus"),
        meta::object(cluster, Kind::Deployment, "apiserver"),
    ];
    deps.extend(MOUNTED_SECRETS.iter().map(|s| meta::secret(cluster, s)));
    deps.push(meta::object(cluster, Kind::ServiceAccount, "prometheus"));
    let mut nodes = vec![super::component::service_account(cluster, "prometheus")];
    // KKP's Role for Prometheus: discover and scrape what runs in the namespace.
    nodes.extend(super::component::namespace_access(
        cluster,
        "prometheus",
        vec![
            super::component::rule(&[""], &["nodes", "services", "endpoints", "pods"], &[], &["get", "list", "watch"]),
            super::component::rule(&[""], &["configmaps"], &[], &["get"]),
        ],
    ));
    nodes.extend([
        meta::cluster_node(
            cluster,
            Kind::ConfigMap,
            "prometheus",
            Role::Config,
            Vec::new(),
            Body::Object { manifest: manifest(&configmap), fingerprints: Vec::new() },
        ),
        meta::cluster_node(
            cluster,
            Kind::Service,
            "prometheus",
            Role::Service,
            Vec::new(),
            Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
        ),
        meta::cluster_node(
            cluster,
            Kind::StatefulSet,
            "prometheus",
            Role::Workload,
            deps,
            Body::Object { manifest: manifest(&statefulset), fingerprints },
        ),
    ]);
    nodes
}

/// `prometheus.yaml`: etcd members over mTLS, and the apiserver with Prometheus' client cert.
fn config(cluster: &Cluster) -> String {
    let ns = cluster.namespace();
    let etcd_targets: Vec<String> = (0..cluster.etcd.cluster_size).map(|i| format!("etcd-{i}.etcd.{ns}.svc.cluster.local:2379")).collect();
    let config = json!({
        "global": {
            "evaluation_interval": "30s",
            "scrape_interval": "30s",
            "external_labels": {"cluster": cluster.name, "seed_cluster": cluster.seed},
        },
        "rule_files": ["/etc/prometheus/config/rules*.yaml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": ["alertmanager.monitoring.svc.cluster.local:9093"]}]}]},
        "scrape_configs": [
            {
                "job_name": "etcd",
                "scheme": "https",
                "tls_config": {
                    "ca_file": "/etc/etcd/pki/client/ca.crt",
                    "cert_file": "/etc/etcd/pki/client/apiserver-etcd-client.crt",
                    "key_file": "/etc/etcd/pki/client/apiserver-etcd-client.key",
                },
                "static_configs": [{"targets": etcd_targets}],
            },
            {
                "job_name": "apiserver",
                "scheme": "https",
                "tls_config": {
                    "ca_file": "/etc/kubernetes/pki/prometheus/ca.crt",
                    "cert_file": "/etc/kubernetes/pki/prometheus/prometheus-client.crt",
                    "key_file": "/etc/kubernetes/pki/prometheus/prometheus-client.key",
                },
                "static_configs": [{"targets": [format!("apiserver-external.{ns}.svc.cluster.local:443")]}],
            },
            {
                "job_name": "control-plane-pods",
                "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [ns]}}],
                "relabel_configs": [
                    {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep", "regex": "true"},
                ],
            },
        ],
    });
    serde_saphyr::to_string(&config).expect("plain data serialises to YAML")
}

/// `rules.yaml`: the alerts a control plane without etcd or apiserver must raise.
fn rules() -> String {
    let rules = json!({
        "groups": [{
            "name": "control-plane",
            "rules": [
                {"alert": "EtcdDown", "expr": "absent(up{job=\"etcd\"} == 1)", "for": "5m", "labels": {"severity": "critical"},
                 "annotations": {"message": "No etcd member of this cluster is reachable."}},
                {"alert": "KubernetesApiserverDown", "expr": "absent(up{job=\"apiserver\"} == 1)", "for": "5m", "labels": {"severity": "critical"},
                 "annotations": {"message": "The apiserver of this cluster is unreachable."}},
            ],
        }],
    });
    serde_saphyr::to_string(&rules).expect("plain data serialises to YAML")
}
