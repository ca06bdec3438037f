//! Per-cluster Prometheus as KKP's monitoring controller renders it (KKP
//! `pkg/resources/prometheus`): ConfigMap `prometheus` (scrape jobs for the control plane in the
//! seed and, through the apiserver's proxy, for the user cluster's nodes and pods; KKP's alerting
//! and recording rules), headless Service `prometheus` (federation from the seed), StatefulSet
//! `prometheus` (data in an emptyDir, kept one hour) and ServiceAccount, Role and RoleBinding
//! `prometheus` to discover the pods of the cluster's namespace.

use super::component::{self, IMAGE_PULL_SECRET, LAST_RESTART_ANNOTATION, SAFE_TO_EVICT};
use super::meta::{self, MANAGED_BY, fingerprint_annotations, object_meta, selector, selector_labels};
use super::{Body, DesiredNode, http_prober, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::{Cluster, ExposeStrategy, Tunnel};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec, StatefulSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, EmptyDirVolumeSource, HTTPGetAction, LocalObjectReference, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

mod rules;

/// Name of every object here and the `app` label.
const NAME: &str = "prometheus";
const IMAGE: &str = "quay.io/prometheus/prometheus:v2.51.1";
/// The Secret with the etcd client certificate (the apiserver's) and its mount.
const ETCD_CLIENT: &str = "apiserver-etcd-client-certificate";
const ETCD_CLIENT_DIR: &str = "/etc/etcd/pki/client";
/// The Secret with Prometheus' apiserver client certificate (and the CA) and its mount.
const APISERVER_CLIENT: &str = "prometheus-apiserver-certificate";
const APISERVER_CLIENT_DIR: &str = "/etc/kubernetes";
const MOUNTED_SECRETS: [&str; 2] = [ETCD_CLIENT, APISERVER_CLIENT];
/// The ConfigMap's volume and the disposable data volume.
const CONFIG_VOLUME: &str = "config";
const DATA_VOLUME: &str = "data";
/// Where the seed's Alertmanager answers.
const ALERTMANAGER: &str = "alertmanager.monitoring.svc.cluster.local";

/// The Prometheus nodes.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    let mut nodes = vec![component::service_account(cluster, NAME)];
    nodes.extend(access(cluster));
    nodes.extend([config_map(cluster), service(cluster), statefulset(cluster)]);
    nodes
}

/// Role `prometheus` (discover what runs in the namespace, read ConfigMaps) bound to the
/// ServiceAccount; KKP labels both `app: prometheus`.
fn access(cluster: &Cluster) -> Vec<DesiredNode> {
    let rules = vec![
        component::rule(&[""], &["nodes", "services", "endpoints", "pods"], &[], &["get", "list", "watch"]),
        component::rule(&[""], &["configmaps"], &[], &["get"]),
    ];
    component::namespace_access_labelled(cluster, NAME, rules, component::metadata(NAME, cluster))
}

/// The ConfigMap's data: `prometheus.yaml`, `rules.yaml` (unless KKP's rules are turned off) and
/// `rules-custom.yaml` (when given), each ending in one newline as KKP writes them.
fn config_data(cluster: &Cluster) -> BTreeMap<String, String> {
    let mut data = BTreeMap::from([("prometheus.yaml".to_string(), config_yaml(cluster))]);
    if !cluster.monitoring.disable_default_rules {
        data.insert("rules.yaml".into(), rules_yaml(cluster));
    }
    if !cluster.monitoring.custom_rules.is_empty() {
        data.insert("rules-custom.yaml".into(), format!("{}\n", cluster.monitoring.custom_rules.trim()));
    }
    data
}

/// `rules.yaml`. It depends on a few settings only (the tunnel, the expose strategy), so a
/// fleet's clusters share a handful of texts: each is written to YAML once per process, as
/// YAML is the costliest part of rendering a cluster.
fn rules_yaml(cluster: &Cluster) -> String {
    static WRITTEN: std::sync::Mutex<Vec<(rules::Rules, String)>> = std::sync::Mutex::new(Vec::new());
    let rules = rules::rules(cluster);
    let written = || WRITTEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, text)) = written().iter().find(|(known, _)| *known == rules) {
        return text.clone();
    }
    let text = to_yaml(&rules);
    let mut written = written();
    if written.len() < 16 && !written.iter().any(|(known, _)| *known == rules) {
        written.push((rules, text.clone()));
    }
    text
}

/// `prometheus.yaml`. Clusters with the same settings differ in it only by their names, so
/// each distinct text is written to YAML once per process with stand-ins of the same length
/// for the cluster's and the seed's names, which are put in after.
fn config_yaml(cluster: &Cluster) -> String {
    static WRITTEN: std::sync::Mutex<Vec<(Config, String)>> = std::sync::Mutex::new(Vec::new());
    let (name, seed) = (&cluster.name, &cluster.seed);
    // Custom jobs are the configuration's own text, where a stand-in could occur; and a name
    // is only put in where YAML writes it as it is (one that reads as a number is quoted).
    let (name_standin, seed_standin) = (standin('q', name.len()), standin('j', seed.len()));
    if !cluster.monitoring.custom_scraping_configs.trim().is_empty()
        || !writes_plain(name)
        || !writes_plain(seed)
        || name.contains(&seed_standin)
    {
        return to_yaml(&config(cluster));
    }
    let config = config(&Cluster { name: name_standin.clone(), seed: seed_standin.clone(), ..cluster.clone() });
    let written = || WRITTEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = written().iter().find(|(known, _)| *known == config).map(|(_, text)| text.clone());
    let text = known.unwrap_or_else(|| {
        let text = to_yaml(&config);
        let mut written = written();
        if written.len() < 16 {
            written.push((config, text.clone()));
        }
        text
    });
    text.replace(&name_standin, name).replace(&seed_standin, seed)
}

/// A stand-in name of `len` characters that KKP's configuration text never holds.
fn standin(first: char, len: usize) -> String {
    std::iter::once(first).chain(std::iter::repeat_n('0', len.saturating_sub(1))).collect()
}

/// Whether YAML writes `name` as it is, and it is long enough not to be found inside other
/// words.
fn writes_plain(name: &str) -> bool {
    name.len() >= 4
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && serde_saphyr::to_string(&name).is_ok_and(|text| text.trim_end() == name)
}

fn to_yaml(value: &impl Serialize) -> String {
    let text = serde_saphyr::to_string(value).expect("plain data serialises to YAML");
    format!("{}\n", text.trim_end())
}

/// ConfigMap `prometheus`.
fn config_map(cluster: &Cluster) -> DesiredNode {
    let configmap = ConfigMap { metadata: component::metadata(NAME, cluster), data: Some(config_data(cluster)), ..Default::default() };
    meta::cluster_node(
        cluster,
        Kind::ConfigMap,
        NAME,
        Role::Config,
        Vec::new(),
        Body::Object { manifest: manifest(&configmap), fingerprints: Vec::new() },
    )
}

/// Headless Service `prometheus`, labelled `cluster: user` for the seed's ServiceMonitor that
/// federates from it.
fn service(cluster: &Cluster) -> DesiredNode {
    let mut labels = BTreeMap::from([("app".to_string(), NAME.to_string()), ("cluster".to_string(), "user".to_string())]);
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    let service = Service {
        metadata: ObjectMeta { name: Some(NAME.into()), namespace: Some(cluster.namespace()), labels: Some(labels), ..Default::default() },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(selector_labels(NAME, cluster)),
            ports: Some(vec![ServicePort {
                name: Some("web".into()),
                port: 9090,
                protocol: Some("TCP".into()),
                target_port: Some(IntOrString::String("web".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::Service,
        NAME,
        Role::Service,
        Vec::new(),
        Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
    )
}

/// KKP's probe of Prometheus' web port.
fn web_probe(path: &str, failure: i32, initial_delay: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("web".into()),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        failure_threshold: Some(failure),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(5),
        success_threshold: Some(1),
        timeout_seconds: Some(3),
        ..Default::default()
    }
}

/// StatefulSet `prometheus`. It keeps nothing worth keeping (an hour of metrics in an
/// emptyDir), so it restarts without grace. The pods carry the fingerprints of the Secrets they
/// mount and the digest of the ConfigMap, so a new certificate or configuration rolls them (KKP
/// labels them with the objects' revisions instead).
fn statefulset(cluster: &Cluster) -> DesiredNode {
    let (mut annotations, mut fingerprints) = fingerprint_annotations(cluster, &MOUNTED_SECRETS);
    let (config_annotations, config_fingerprints) = meta::config_map_fingerprint_annotations(cluster, &[NAME]);
    annotations.extend(config_annotations);
    fingerprints.extend(config_fingerprints);
    annotations.insert(LAST_RESTART_ANNOTATION.into(), String::new());
    annotations.insert(SAFE_TO_EVICT.into(), DATA_VOLUME.into());
    let read_only = |name: &str, path: &str| meta::mount(name, path);
    let container = Container {
        name: NAME.into(),
        image: Some(IMAGE.into()),
        args: Some(
            [
                "--config.file=/etc/prometheus/config/prometheus.yaml",
                "--storage.tsdb.path=/var/prometheus/data",
                "--storage.tsdb.min-block-duration=15m",
                "--storage.tsdb.max-block-duration=30m",
                "--storage.tsdb.retention.time=1h",
                "--web.enable-lifecycle",
                "--storage.tsdb.no-lockfile",
                "--web.route-prefix=/",
            ]
            .map(String::from)
            .to_vec(),
        ),
        ports: Some(vec![ContainerPort {
            name: Some("web".into()),
            container_port: 9090,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        volume_mounts: Some(vec![
            read_only(CONFIG_VOLUME, "/etc/prometheus/config"),
            VolumeMount { name: DATA_VOLUME.into(), mount_path: "/var/prometheus/data".into(), ..Default::default() },
            read_only(ETCD_CLIENT, ETCD_CLIENT_DIR),
            read_only(APISERVER_CLIENT, APISERVER_CLIENT_DIR),
        ]),
        liveness_probe: Some(web_probe("/-/healthy", 10, 30)),
        readiness_probe: Some(web_probe("/-/ready", 6, 5)),
        resources: Some(component::resources("100m", "256Mi", "500m", "1Gi")),
        ..Default::default()
    };
    let mut volumes = vec![
        Volume { name: CONFIG_VOLUME.into(), config_map: meta::configmap_volume(NAME).config_map, ..Default::default() },
        Volume { name: DATA_VOLUME.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() },
    ];
    volumes.extend(meta::secret_volumes(&MOUNTED_SECRETS, &[]));
    let statefulset = StatefulSet {
        metadata: object_meta(NAME, NAME, cluster),
        spec: Some(StatefulSetSpec {
            replicas: Some(cluster.prometheus_replicas),
            selector: selector(NAME, cluster),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("RollingUpdate".into()), ..Default::default() }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector_labels(NAME, cluster)),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    // More than one replica: spread them as KKP does.
                    affinity: (cluster.prometheus_replicas > 1).then(|| component::spread_over_hosts_and_zones(NAME)),
                    image_pull_secrets: Some(vec![LocalObjectReference { name: IMAGE_PULL_SECRET.into() }]),
                    restart_policy: Some("Always".into()),
                    security_context: Some(PodSecurityContext {
                        fs_group: Some(2000),
                        run_as_non_root: Some(true),
                        run_as_user: Some(1000),
                        ..Default::default()
                    }),
                    service_account_name: Some(NAME.into()),
                    termination_grace_period_seconds: Some(0),
                    volumes: Some(volumes),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut deps = vec![meta::object(cluster, Kind::ConfigMap, NAME)];
    deps.extend(MOUNTED_SECRETS.iter().map(|s| meta::secret(cluster, s)));
    deps.push(meta::object(cluster, Kind::ServiceAccount, NAME));
    meta::cluster_node(
        cluster,
        Kind::StatefulSet,
        NAME,
        Role::Workload,
        deps,
        Body::Object { manifest: manifest(&statefulset), fingerprints },
    )
}

/// `prometheus.yaml`, in the shape Prometheus reads.
#[derive(Serialize, PartialEq)]
struct Config {
    global: Global,
    rule_files: Vec<&'static str>,
    alerting: Alerting,
    scrape_configs: Vec<Job>,
}

/// A scrape job: one of KKP's, or one of the configuration's custom jobs as written.
#[derive(Serialize, PartialEq)]
#[serde(untagged)]
enum Job {
    Kkp(ScrapeConfig),
    Custom(Value),
}

#[derive(Serialize, PartialEq)]
struct Global {
    evaluation_interval: &'static str,
    scrape_interval: &'static str,
    external_labels: BTreeMap<&'static str, String>,
}

#[derive(Serialize, PartialEq)]
struct Alerting {
    alertmanagers: Vec<Alertmanager>,
}

#[derive(Serialize, PartialEq)]
struct Alertmanager {
    dns_sd_configs: Vec<DnsSd>,
}

#[derive(Serialize, PartialEq)]
struct DnsSd {
    names: Vec<&'static str>,
    #[serde(rename = "type")]
    record_type: &'static str,
    port: u16,
}

#[derive(Serialize, Default, PartialEq)]
struct ScrapeConfig {
    job_name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheme: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<Tls>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    static_configs: Vec<StaticConfig>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    kubernetes_sd_configs: Vec<KubernetesSd>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relabel_configs: Vec<Relabel>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    metric_relabel_configs: Vec<Relabel>,
}

#[derive(Serialize, Clone, PartialEq)]
struct Tls {
    ca_file: String,
    cert_file: String,
    key_file: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure_skip_verify: bool,
}

impl Tls {
    /// `ca.crt` and a client certificate and key of a mounted Secret.
    fn client(dir: &str, name: &str) -> Self {
        Tls {
            ca_file: format!("{dir}/ca.crt"),
            cert_file: format!("{dir}/{name}.crt"),
            key_file: format!("{dir}/{name}.key"),
            insecure_skip_verify: false,
        }
    }
}

#[derive(Serialize, PartialEq)]
struct StaticConfig {
    targets: Vec<String>,
}

#[derive(Serialize, PartialEq)]
struct KubernetesSd {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_config: Option<Tls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespaces: Option<Namespaces>,
}

#[derive(Serialize, PartialEq)]
struct Namespaces {
    names: Vec<String>,
}

/// A relabelling step. `regex` is a [`Value`] because KKP writes `regex: true` (a YAML boolean,
/// which Prometheus reads as the text `true`) and kkp keeps the YAML equal to KKP's.
#[derive(Serialize, Default, PartialEq)]
struct Relabel {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    separator: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replacement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<&'static str>,
}

impl Relabel {
    /// `action` on `source_labels` matching `regex`.
    fn filter(action: &'static str, source_labels: &[&str], regex: Value) -> Self {
        Relabel { source_labels: strings(source_labels), regex: Some(regex), action: Some(action), ..Default::default() }
    }

    /// `target_label` set to the value of `source_labels` (joined by `;`).
    fn copy(source_labels: &[&str], target_label: &'static str) -> Self {
        Relabel { source_labels: strings(source_labels), action: Some("replace"), target_label: Some(target_label), ..Default::default() }
    }

    /// `target_label` set to `replacement` (Prometheus' default action is replace).
    fn set(target_label: &'static str, replacement: impl Into<String>) -> Self {
        Relabel { target_label: Some(target_label), replacement: Some(replacement.into()), ..Default::default() }
    }

    /// Metrics named by `regex` dropped or kept.
    fn metrics(action: &'static str, regex: &str) -> Self {
        Self::filter(action, &["__name__"], json!(regex))
    }

    /// The `instance` label dropped (redundant with `pod` where a pod is one instance).
    fn drop_instance() -> Self {
        Relabel { regex: Some(json!("instance")), action: Some("labeldrop"), ..Default::default() }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The pods of the cluster's namespace on the seed.
fn namespace_pods(cluster: &Cluster) -> Vec<KubernetesSd> {
    vec![KubernetesSd {
        role: "pod",
        api_server: None,
        tls_config: None,
        namespaces: Some(Namespaces { names: vec![cluster.namespace()] }),
    }]
}

/// Nodes or pods of the user cluster, discovered through its apiserver.
fn user_cluster(role: &'static str, apiserver: &str, tls: &Tls) -> Vec<KubernetesSd> {
    vec![KubernetesSd { role, api_server: Some(format!("https://{apiserver}")), tls_config: Some(tls.clone()), namespaces: None }]
}

/// Only pods whose annotation `<prefix>/scrape` is `true`.
fn keep_annotated(annotation: &str) -> Relabel {
    Relabel::filter("keep", &[&format!("__meta_kubernetes_pod_annotation_{annotation}")], json!(true))
}

/// The metrics path from a pod's `prometheus.io/path` annotation, when it has one.
fn path_from_annotation() -> Relabel {
    Relabel { regex: Some(json!("(.+)")), ..Relabel::copy(&["__meta_kubernetes_pod_annotation_prometheus_io_path"], "__metrics_path__") }
}

/// The port from a pod's `prometheus.io/port` annotation.
fn port_from_annotation() -> Relabel {
    Relabel {
        regex: Some(json!(r"([^:]+)(?::\d+)?;(\d+)")),
        replacement: Some("$1:$2".into()),
        ..Relabel::copy(&["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"], "__address__")
    }
}

/// `namespace` and `pod` labels from the target's pod.
fn pod_labels() -> [Relabel; 2] {
    [Relabel::copy(&["__meta_kubernetes_namespace"], "namespace"), Relabel::copy(&["__meta_kubernetes_pod_name"], "pod")]
}

/// `job` from the pod's `role` and `app` labels.
fn job_from_role_and_app() -> Relabel {
    Relabel { separator: Some(""), ..Relabel::copy(&["__meta_kubernetes_pod_label_role", "__meta_kubernetes_pod_label_app"], "job") }
}

/// Node labels kept, the request sent to the apiserver, which proxies it to the node's `path`.
fn through_node_proxy(apiserver: &str, path: &str) -> Vec<Relabel> {
    vec![
        Relabel { regex: Some(json!("__meta_kubernetes_node_label_(.+)")), action: Some("labelmap"), ..Default::default() },
        Relabel::set("__address__", apiserver),
        Relabel {
            regex: Some(json!("(.+)")),
            replacement: Some(format!("/api/v1/nodes/${{1}}/proxy{path}")),
            action: None,
            ..Relabel::copy(&["__meta_kubernetes_node_name"], "__metrics_path__")
        },
    ]
}

/// `prometheus.yaml`: the alerting setup, KKP's jobs (unless turned off) and the custom ones.
fn config(cluster: &Cluster) -> Config {
    let mut jobs = Vec::new();
    if !cluster.monitoring.disable_default_scraping_configs {
        jobs.extend(kkp_jobs(cluster).into_iter().map(Job::Kkp));
    }
    // The topology checked that they are a list of jobs.
    let custom: Vec<Value> = serde_saphyr::from_str(&cluster.monitoring.custom_scraping_configs).unwrap_or_default();
    jobs.extend(custom.into_iter().map(Job::Custom));
    Config {
        global: Global {
            evaluation_interval: "30s",
            scrape_interval: "30s",
            external_labels: BTreeMap::from([("cluster", cluster.name.clone()), ("seed_cluster", cluster.seed.clone())]),
        },
        rule_files: vec!["/etc/prometheus/config/rules*.yaml"],
        alerting: Alerting {
            alertmanagers: vec![Alertmanager { dns_sd_configs: vec![DnsSd { names: vec![ALERTMANAGER], record_type: "A", port: 9093 }] }],
        },
        scrape_configs: jobs,
    }
}

/// KKP's jobs: the control plane in the seed (etcd over mTLS, the Kubernetes components with
/// Prometheus' client certificate, annotated pods, kube-state-metrics, Konnectivity), then the
/// user cluster's nodes and pods through the apiserver's proxy.
fn kkp_jobs(cluster: &Cluster) -> Vec<ScrapeConfig> {
    let etcd_tls = Tls::client(ETCD_CLIENT_DIR, "apiserver-etcd-client");
    let apiserver_tls = Tls::client(APISERVER_CLIENT_DIR, "prometheus-client");
    let apiserver = http_prober::apiserver_internal_name(cluster);
    let namespace = cluster.namespace();
    let etcd_members = (0..cluster.etcd.cluster_size).map(|i| format!("etcd-{i}.etcd.{namespace}.svc.cluster.local:2379")).collect();

    let mut jobs = vec![
        ScrapeConfig {
            job_name: "etcd",
            scheme: Some("https"),
            tls_config: Some(etcd_tls),
            static_configs: vec![StaticConfig { targets: etcd_members }],
            relabel_configs: vec![Relabel {
                regex: Some(json!(r"(etcd-\d+).+")),
                replacement: Some("$1".into()),
                ..Relabel::copy(&["__address__"], "instance")
            }],
            // Not read by any rule, and many.
            metric_relabel_configs: vec![Relabel::metrics("drop", "grpc_server_.*")],
            ..Default::default()
        },
        ScrapeConfig {
            job_name: "kubernetes-control-plane",
            scheme: Some("https"),
            // Pods are scraped by IP, which the serving certificates do not name.
            tls_config: Some(Tls { insecure_skip_verify: true, ..apiserver_tls.clone() }),
            kubernetes_sd_configs: namespace_pods(cluster),
            relabel_configs: [keep_annotated("prometheus_io_scrape_with_kube_cert"), path_from_annotation(), port_from_annotation()]
                .into_iter()
                .chain(pod_labels())
                .chain([Relabel::copy(&["__meta_kubernetes_pod_label_app"], "job")])
                .collect(),
            // The apiserver's most expensive series.
            metric_relabel_configs: [
                "apiserver_request_(duration|latencies|body|filter|sli)_.*",
                "apiserver_response_sizes_.*",
                "apiserver_watch.*",
                "aggregator_.*",
                "(apiextensions|rest_client)_.*",
                "etcd_request_duration_.*",
                "(apiserver_request_total|scheduler_plugin_execution_duration_seconds_bucket|etcd_requests_total)",
                "workqueue_.*",
            ]
            .into_iter()
            .map(|regex| Relabel::metrics("drop", regex))
            .chain([Relabel::drop_instance()])
            .collect(),
            ..Default::default()
        },
        ScrapeConfig {
            job_name: "control-plane-pods",
            kubernetes_sd_configs: namespace_pods(cluster),
            // kube-state-metrics has its own job below.
            relabel_configs: [
                Relabel::filter("drop", &["__meta_kubernetes_pod_label_app"], json!("kube-state-metrics")),
                keep_annotated("prometheus_io_scrape"),
                path_from_annotation(),
                port_from_annotation(),
                job_from_role_and_app(),
            ]
            .into_iter()
            .chain(pod_labels())
            .collect(),
            metric_relabel_configs: vec![Relabel::drop_instance()],
            ..Default::default()
        },
        ScrapeConfig {
            job_name: "kube-state-metrics",
            kubernetes_sd_configs: namespace_pods(cluster),
            relabel_configs: [
                Relabel::filter(
                    "drop",
                    &["__meta_kubernetes_pod_label_app", "__meta_kubernetes_pod_container_init"],
                    json!("kube-state-metrics;true"),
                ),
                Relabel::filter("keep", &["__meta_kubernetes_pod_label_app"], json!("kube-state-metrics")),
                keep_annotated("prometheus_io_scrape"),
                path_from_annotation(),
                port_from_annotation(),
                Relabel::set("job", "kube-state-metrics"),
            ]
            .into_iter()
            .chain(pod_labels())
            .collect(),
            // Only what the node alerts and federation read.
            metric_relabel_configs: vec![Relabel::metrics("keep", "^(up|kube_node_info|kube_node_status_condition)$")],
            ..Default::default()
        },
    ];
    if cluster.tunnel == Tunnel::Konnectivity {
        // The konnectivity-server sidecar of the apiserver pods serves metrics on 8133.
        jobs.push(ScrapeConfig {
            job_name: "konnectivity-server",
            scheme: Some("http"),
            kubernetes_sd_configs: namespace_pods(cluster),
            relabel_configs: [
                Relabel::filter("keep", &["__meta_kubernetes_pod_label_app"], json!("apiserver")),
                Relabel::filter("keep", &["__meta_kubernetes_pod_container_name"], json!("konnectivity-server")),
                Relabel {
                    regex: Some(json!(r"([^:]+)(?::\d+)?")),
                    replacement: Some("$1:8133".into()),
                    ..Relabel::copy(&["__address__"], "__address__")
                },
                Relabel::set("__metrics_path__", "/metrics"),
            ]
            .into_iter()
            .chain(pod_labels())
            .chain([Relabel::set("job", "konnectivity-server")])
            .collect(),
            metric_relabel_configs: vec![Relabel::drop_instance()],
            ..Default::default()
        });
    }

    // The user cluster, through its apiserver.
    let user_job = |job_name, role, relabel_configs, metric_relabel_configs| ScrapeConfig {
        job_name,
        scheme: Some("https"),
        tls_config: Some(apiserver_tls.clone()),
        kubernetes_sd_configs: user_cluster(role, &apiserver, &apiserver_tls),
        relabel_configs,
        metric_relabel_configs,
        ..Default::default()
    };
    // The prefix as Prometheus spells annotations in label names.
    let prefix = cluster.monitoring.scrape_annotation_prefix.replace('.', "_").replace('/', "");
    let user_annotation = |suffix: &str| format!("__meta_kubernetes_pod_annotation_{prefix}_{suffix}");
    jobs.extend([
        // Kept for metering: health, machine size and what containers use (with their image).
        user_job(
            "cadvisor",
            "node",
            through_node_proxy(&apiserver, "/metrics/cadvisor"),
            vec![Relabel::metrics(
                "keep",
                "^(up|machine_cpu_cores|machine_memory_bytes|container_cpu_usage_seconds_total|container_memory_working_set_bytes)$",
            )],
        ),
        // Pods of the user cluster annotated with the scrape prefix's port (and path).
        user_job(
            "user-cluster-pods",
            "pod",
            vec![
                Relabel::filter("keep", &[&user_annotation("port")], json!(r"\d+")),
                Relabel { regex: Some(json!("(.+)")), ..Relabel::copy(&[&user_annotation("path")], "__metrics_path__") },
                Relabel {
                    regex: Some(json!("(.*);(.*);(.*);(.*)")),
                    replacement: Some("/api/v1/namespaces/${1}/pods/${2}:${3}/proxy${4}".into()),
                    ..Relabel::copy(
                        &["__meta_kubernetes_namespace", "__meta_kubernetes_pod_name", &user_annotation("port"), "__metrics_path__"],
                        "__metrics_path__",
                    )
                },
                Relabel::set("__address__", apiserver.clone()),
            ]
            .into_iter()
            .chain(pod_labels())
            .collect(),
            Vec::new(),
        ),
        // Volume usage, for metering.
        user_job(
            "kubelet",
            "node",
            through_node_proxy(&apiserver, "/metrics"),
            vec![Relabel::metrics("keep", "kubelet_volume_stats_(capacity_bytes|used_bytes)")],
        ),
        // What cadvisor already has, without the image label metering needs.
        user_job(
            "resources",
            "node",
            through_node_proxy(&apiserver, "/metrics/resource"),
            vec![Relabel::metrics("drop", "^(container_cpu_usage_seconds_total|container_memory_working_set_bytes)$")],
        ),
    ]);
    if cluster.expose_strategy == ExposeStrategy::Tunneling {
        // The envoy-agent on the user cluster's nodes, through the apiserver's pod proxy.
        jobs.push(user_job(
            "envoy-agent",
            "pod",
            vec![
                Relabel::filter("keep", &["__meta_kubernetes_pod_label_app"], json!("envoy-agent")),
                keep_annotated("prometheus_io_scrape"),
                path_from_annotation(),
                Relabel {
                    regex: Some(json!("(.*);(.*);(.*);(.*)")),
                    replacement: Some("/api/v1/namespaces/${1}/pods/${2}:${3}/proxy${4}".into()),
                    ..Relabel::copy(
                        &[
                            "__meta_kubernetes_namespace",
                            "__meta_kubernetes_pod_name",
                            "__meta_kubernetes_pod_annotation_prometheus_io_port",
                            "__metrics_path__",
                        ],
                        "__metrics_path__",
                    )
                },
                Relabel { action: Some("replace"), ..Relabel::set("__address__", apiserver.clone()) },
                job_from_role_and_app(),
            ]
            .into_iter()
            .chain(pod_labels())
            .collect(),
            vec![Relabel::drop_instance()],
        ));
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::component::tests::{assert_matches_golden, cluster_with, find, fixture_cluster, golden};
    use crate::render::meta::FINGERPRINT_ANNOTATION_PREFIX;

    const STATEFULSET_GOLDEN: &str = "statefulset-aws-1.33.0-prometheus.yaml";

    /// A key of the golden ConfigMap, parsed.
    fn golden_data(key: &str) -> Value {
        let text = golden("configmap-aws-1.33.0-prometheus.yaml")["data"][key].as_str().unwrap().to_string();
        serde_saphyr::from_str(&text).unwrap()
    }

    /// A key of the rendered ConfigMap, parsed.
    fn rendered_data(cluster: &Cluster, key: &str) -> Value {
        let configmap = find(&render(cluster), Kind::ConfigMap, NAME).unwrap();
        serde_saphyr::from_str(configmap["data"][key].as_str().unwrap()).unwrap()
    }

    fn job_names(config: &Value) -> Vec<String> {
        config["scrape_configs"].as_array().unwrap().iter().map(|j| j["job_name"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn scrape_config_equals_kkps() {
        let rendered = rendered_data(&fixture_cluster(), "prometheus.yaml");
        let golden = golden_data("prometheus.yaml");
        assert_eq!(job_names(&rendered), job_names(&golden));
        for key in ["global", "rule_files", "alerting"] {
            assert_eq!(rendered[key], golden[key], "{key}");
        }
        for (r, g) in rendered["scrape_configs"].as_array().unwrap().iter().zip(golden["scrape_configs"].as_array().unwrap()) {
            assert_eq!(r, g, "job {}", g["job_name"]);
        }
        assert_eq!(rendered, golden);
    }

    #[test]
    fn custom_jobs_follow_kkps_and_can_replace_them() {
        let fixture = job_names(&rendered_data(&fixture_cluster(), "prometheus.yaml"));
        assert_eq!(fixture.last().unwrap(), "custom-test-config");
        let only_custom = cluster_with(|c| c.monitoring.disable_default_scraping_configs = true);
        assert_eq!(job_names(&rendered_data(&only_custom, "prometheus.yaml")), ["custom-test-config"]);
        let none = cluster_with(|c| c.monitoring = Default::default());
        assert_eq!(job_names(&rendered_data(&none, "prometheus.yaml")), fixture[..fixture.len() - 1]);
    }

    #[test]
    fn user_pods_are_found_by_the_configured_annotation_prefix() {
        let cluster = cluster_with(|c| c.monitoring.scrape_annotation_prefix = "metrics.example.com/team".into());
        let config = rendered_data(&cluster, "prometheus.yaml");
        let job = config["scrape_configs"].as_array().unwrap().iter().find(|j| j["job_name"] == "user-cluster-pods").unwrap().clone();
        assert_eq!(job["relabel_configs"][0]["source_labels"], json!(["__meta_kubernetes_pod_annotation_metrics_example_comteam_port"]));
    }

    #[test]
    fn custom_rules_get_their_own_file_and_kkps_can_be_turned_off() {
        let cluster = cluster_with(|c| {
            c.monitoring.custom_rules = "groups:\n- name: mine\n  rules: []".into();
            c.monitoring.disable_default_rules = true;
        });
        let configmap = find(&render(&cluster), Kind::ConfigMap, NAME).unwrap();
        let keys: Vec<_> = configmap["data"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["prometheus.yaml", "rules-custom.yaml"]);
        assert_eq!(configmap["data"]["rules-custom.yaml"], "groups:\n- name: mine\n  rules: []\n");
    }

    #[test]
    fn rules_equal_kkps() {
        assert_eq!(rendered_data(&fixture_cluster(), "rules.yaml"), golden_data("rules.yaml"));
    }

    #[test]
    fn the_config_written_once_per_settings_equals_the_config_written_for_each_cluster() {
        let spec = crate::topology::generate::Spec { seeds: 3, clusters: 24, ..Default::default() };
        let text = crate::topology::generate::generate(&spec);
        let topology = crate::topology::load_str(std::path::Path::new("fleet.yaml"), &text).unwrap();
        let mut clusters: Vec<Cluster> = topology.clusters.values().cloned().collect();
        // Names of other lengths and names YAML would quote (those are written whole).
        for (i, name) in ["abcd", "a-much-longer-cluster-name", "1234567890", "true", "q000", "j0000000"].into_iter().enumerate() {
            let mut c = clusters[i].clone();
            c.name = name.into();
            clusters.push(c);
        }
        for _ in 0..2 {
            for cluster in &clusters {
                assert_eq!(config_yaml(cluster), to_yaml(&config(cluster)), "{}", cluster.name);
            }
        }
    }

    #[test]
    fn config_files_end_in_one_newline() {
        let configmap = find(&render(&fixture_cluster()), Kind::ConfigMap, NAME).unwrap();
        for (key, text) in configmap["data"].as_object().unwrap() {
            let text = text.as_str().unwrap();
            assert!(text.ends_with('\n') && !text.ends_with("\n\n"), "{key}");
        }
        assert_eq!(configmap["metadata"]["labels"]["app"], NAME);
    }

    #[test]
    fn etcd_targets_follow_the_cluster_size() {
        for size in [1, 3, 5] {
            let cluster = cluster_with(|c| c.etcd.cluster_size = size);
            let config = rendered_data(&cluster, "prometheus.yaml");
            let targets = config["scrape_configs"][0]["static_configs"][0]["targets"].as_array().unwrap().clone();
            assert_eq!(targets.len(), size as usize);
            assert_eq!(targets.last().unwrap(), &json!(format!("etcd-{}.etcd.cluster-de-test-01.svc.cluster.local:2379", size - 1)));
        }
    }

    #[test]
    fn tunnel_and_expose_strategy_choose_jobs_and_rules() {
        let group_names = |cluster: &Cluster| -> Vec<String> {
            rendered_data(cluster, "rules.yaml")["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap().into()).collect()
        };
        let absent_alerts = |cluster: &Cluster| -> Vec<String> {
            let rules = rendered_data(cluster, "rules.yaml");
            let group = rules["groups"].as_array().unwrap().iter().find(|g| g["name"] == "kubernetes-absent").unwrap().clone();
            group["rules"].as_array().unwrap().iter().map(|r| r["alert"].as_str().unwrap().into()).collect()
        };

        let konnectivity = fixture_cluster();
        assert!(job_names(&rendered_data(&konnectivity, "prometheus.yaml")).contains(&"konnectivity-server".into()));
        assert!(group_names(&konnectivity).contains(&"kubermatic.konnectivity".into()));
        assert!(!absent_alerts(&konnectivity).contains(&"DNSResolverDown".into()));

        let openvpn = cluster_with(|c| c.tunnel = Tunnel::OpenVpn);
        assert!(!job_names(&rendered_data(&openvpn, "prometheus.yaml")).contains(&"konnectivity-server".into()));
        assert!(!group_names(&openvpn).contains(&"kubermatic.konnectivity".into()));
        assert_eq!(absent_alerts(&openvpn).last().unwrap(), "DNSResolverDown");

        let tunneling = cluster_with(|c| {
            c.expose_strategy = ExposeStrategy::Tunneling;
            c.monitoring = Default::default();
        });
        assert_eq!(job_names(&rendered_data(&tunneling, "prometheus.yaml")).last().unwrap(), "envoy-agent");
        assert_eq!(group_names(&tunneling).last().unwrap(), "kubermatic.envoy");
        assert!(!job_names(&rendered_data(&konnectivity, "prometheus.yaml")).contains(&"envoy-agent".into()));
    }

    #[test]
    fn user_cluster_jobs_go_through_the_apiserver() {
        let config = rendered_data(&fixture_cluster(), "prometheus.yaml");
        let job = config["scrape_configs"].as_array().unwrap().iter().find(|j| j["job_name"] == "kubelet").unwrap().clone();
        assert_eq!(job["kubernetes_sd_configs"][0]["api_server"], "https://apiserver-external.cluster-de-test-01.svc.cluster.local.");
        assert_eq!(job["tls_config"]["cert_file"], "/etc/kubernetes/prometheus-client.crt");
    }

    #[test]
    fn statefulset_matches_kkp() {
        let nodes = render(&fixture_cluster());
        let rendered = find(&nodes, Kind::StatefulSet, NAME).unwrap();
        assert_matches_golden(&rendered, STATEFULSET_GOLDEN);
        let golden = golden(STATEFULSET_GOLDEN);
        let pod = |v: &Value| v["spec"]["template"]["spec"].clone();
        for key in ["securityContext", "volumes", "imagePullSecrets", "restartPolicy", "terminationGracePeriodSeconds", "affinity"] {
            assert_eq!(pod(&rendered)[key], pod(&golden)[key], "{key}");
        }
        assert_eq!(pod(&rendered)["containers"][0]["args"], pod(&golden)["containers"][0]["args"]);
        assert_eq!(rendered["spec"]["updateStrategy"], golden["spec"]["updateStrategy"]);
        assert_eq!(rendered["spec"]["replicas"], golden["spec"]["replicas"]);
        let annotations = &rendered["spec"]["template"]["metadata"]["annotations"];
        for (key, value) in golden["spec"]["template"]["metadata"]["annotations"].as_object().unwrap() {
            assert_eq!(&annotations[key], value, "{key}");
        }
        // KKP's revision labels are kkp's fingerprint annotations.
        let labels = &rendered["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels, &rendered["spec"]["selector"]["matchLabels"]);
        for mounted in ["configmap-prometheus", APISERVER_CLIENT] {
            assert!(annotations[format!("{FINGERPRINT_ANNOTATION_PREFIX}{mounted}")].is_string(), "{mounted}");
        }
    }

    #[test]
    fn the_pods_carry_the_fingerprint_of_their_configuration() {
        let nodes = render(&fixture_cluster());
        let set = nodes.iter().find(|n| n.address.as_str().ends_with("/statefulset/prometheus")).unwrap();
        let Body::Object { fingerprints, .. } = &set.body else { panic!("not an object") };
        let config_map = meta::object(&fixture_cluster(), Kind::ConfigMap, NAME);
        assert!(fingerprints.iter().any(|f| f.mounted == config_map), "{fingerprints:?}");
        assert!(set.deps.contains(&config_map));
    }

    #[test]
    fn replicas_spread_over_hosts_and_zones() {
        let set = find(&render(&cluster_with(|c| c.prometheus_replicas = 2)), Kind::StatefulSet, NAME).unwrap();
        let terms = &set["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(terms[0]["podAffinityTerm"]["labelSelector"]["matchLabels"], json!({"app": NAME}));
        assert_eq!(terms[1]["podAffinityTerm"]["topologyKey"], "topology.kubernetes.io/zone");
    }

    #[test]
    fn service_selects_the_pods_and_is_labelled_for_federation() {
        let nodes = render(&fixture_cluster());
        let service = find(&nodes, Kind::Service, NAME).unwrap();
        let set = find(&nodes, Kind::StatefulSet, NAME).unwrap();
        assert_eq!(service["spec"]["selector"], set["spec"]["selector"]["matchLabels"]);
        assert_eq!(service["spec"]["selector"], json!({"app": NAME, "cluster": "de-test-01"}));
        assert_eq!(service["spec"]["clusterIP"], "None");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], "web");
        assert_eq!(service["metadata"]["labels"]["cluster"], "user");
    }

    #[test]
    fn runs_as_its_own_service_account_with_kkps_role() {
        let nodes = render(&fixture_cluster());
        let role_of = |kind: Kind| nodes.iter().find(|n| n.address == meta::object(&fixture_cluster(), kind, NAME)).unwrap().role;
        assert_eq!(role_of(Kind::ServiceAccount), Role::Identity);
        assert_eq!(role_of(Kind::Role), Role::Access);
        assert_eq!(role_of(Kind::RoleBinding), Role::Access);
        assert_eq!(role_of(Kind::StatefulSet), Role::Workload);
        let role = find(&nodes, Kind::Role, NAME).unwrap();
        assert_eq!(role["rules"][0]["resources"], json!(["nodes", "services", "endpoints", "pods"]));
        assert_eq!(role["metadata"]["labels"]["app"], NAME);
        let set = nodes.iter().find(|n| n.address == meta::object(&fixture_cluster(), Kind::StatefulSet, NAME)).unwrap();
        for dep in [
            meta::object(&fixture_cluster(), Kind::ServiceAccount, NAME),
            meta::object(&fixture_cluster(), Kind::ConfigMap, NAME),
            meta::secret(&fixture_cluster(), ETCD_CLIENT),
            meta::secret(&fixture_cluster(), APISERVER_CLIENT),
        ] {
            assert!(set.deps.contains(&dep), "{dep}");
        }
    }
}
