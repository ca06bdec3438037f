//! Prometheus' `rules.yaml` for a user cluster's control plane: KKP's alerts (etcd,
//! machine-controller, file descriptors, nodes, absent components) and its recording rules,
//! which the seed's Prometheus federates (`kubermatic: federate`), plus those of the tunnel and
//! expose strategy in use (KKP `pkg/resources/prometheus/configmap-rules.go`).

use crate::topology::{Cluster, ExposeStrategy, Tunnel};
use serde::Serialize;
use std::collections::BTreeMap;

/// `rules.yaml`, in the shape Prometheus reads.
#[derive(Serialize, PartialEq)]
pub(super) struct Rules {
    groups: Vec<RuleGroup>,
}

#[derive(Serialize, PartialEq)]
struct RuleGroup {
    name: &'static str,
    rules: Vec<Rule>,
}

/// A recording rule (federated to the seed when labelled `kubermatic: federate`) or an alert.
#[derive(Serialize, PartialEq)]
#[serde(untagged)]
enum Rule {
    Record {
        record: &'static str,
        expr: String,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        labels: BTreeMap<&'static str, &'static str>,
    },
    Alert {
        alert: &'static str,
        annotations: BTreeMap<&'static str, &'static str>,
        expr: String,
        #[serde(rename = "for")]
        pending_for: &'static str,
        labels: BTreeMap<&'static str, &'static str>,
    },
}

#[derive(Clone, Copy)]
enum Severity {
    Warning,
    Critical,
}
use Severity::{Critical, Warning};

/// A recording rule the seed's Prometheus federates.
fn federate(record: &'static str, expr: &str) -> Rule {
    Rule::Record { record, expr: expr.into(), labels: BTreeMap::from([("kubermatic", "federate")]) }
}

fn alert(name: &'static str, severity: Severity, pending_for: &'static str, expr: impl Into<String>, message: &'static str) -> Rule {
    let severity = match severity {
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    };
    Rule::Alert {
        alert: name,
        annotations: BTreeMap::from([("message", message)]),
        expr: expr.into(),
        pending_for,
        labels: BTreeMap::from([("severity", severity)]),
    }
}

/// An expression over lines, each ending in a newline (KKP writes these as YAML blocks).
fn block(lines: &[&str]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// `rules.yaml`: KKP's alerts on etcd, machine-controller, file descriptors, nodes and absent
/// components, its recording rules federated to the seed, and those of the tunnel in use
/// (Konnectivity's, or the DNS resolver's absence alert with OpenVPN) and of envoy-agent for
/// Tunneling.
pub(super) fn rules(cluster: &Cluster) -> Rules {
    let mut absent = vec![
        alert(
            "KubernetesApiserverDown",
            Critical,
            "15m",
            r#"absent(up{job="apiserver"} == 1)"#,
            "Kubernetes apiserver has disappeared from Prometheus target discovery.",
        ),
        alert(
            "MachineControllerDown",
            Critical,
            "15m",
            r#"absent(up{job="machine-controller"} == 1)"#,
            "Machine controller has disappeared from Prometheus target discovery.",
        ),
        alert(
            "UserClusterControllerDown",
            Critical,
            "15m",
            r#"absent(up{job="usercluster-controller"} == 1)"#,
            "User Cluster Controller has disappeared from Prometheus target discovery.",
        ),
        alert(
            "KubeStateMetricsDown",
            Warning,
            "15m",
            r#"absent(up{job="kube-state-metrics"} == 1)"#,
            "Kube-state-metrics has disappeared from Prometheus target discovery.",
        ),
        alert("EtcdDown", Critical, "15m", r#"absent(up{job="etcd"} == 1)"#, "Etcd has disappeared from Prometheus target discovery."),
        alert(
            "CAdvisorDown",
            Warning,
            "15m",
            r#"up{job="cadvisor"} == 0"#,
            "cAdvisor on {{ $labels.kubernetes_io_hostname }} could not be scraped.",
        ),
        alert(
            "KubernetesNodeDown",
            Warning,
            "15m",
            r#"up{job="kubernetes-nodes"} == 0"#,
            "The kubelet on {{ $labels.kubernetes_io_hostname }} could not be scraped.",
        ),
    ];
    if cluster.tunnel == Tunnel::OpenVpn {
        // With OpenVPN the control plane runs its own DNS resolver for the user cluster.
        absent.push(alert(
            "DNSResolverDown",
            Warning,
            "15m",
            r#"absent(up{job="dns-resolver"} == 1)"#,
            "DNS resolver has disappeared from Prometheus target discovery.",
        ));
    }
    let mut groups = vec![
        RuleGroup {
            name: "kubermatic.goprocess",
            rules: vec![
                federate("job:process_resident_memory_bytes:clone", "process_resident_memory_bytes"),
                federate("job:process_cpu_seconds_total:rate5m", "rate(process_cpu_seconds_total[5m])"),
                federate("job:process_open_fds:clone", "process_open_fds"),
            ],
        },
        RuleGroup {
            name: "kubermatic.etcd",
            rules: vec![
                alert(
                    "EtcdInsufficientMembers",
                    Critical,
                    "15m",
                    block(&[r#"sum(up{job="etcd"} == bool 1) by (job) < ((count(up{job="etcd"}) by (job) + 1) / 2)"#]),
                    r#"Etcd cluster "{{ $labels.job }}": insufficient members ({{ $value }})."#,
                ),
                alert(
                    "EtcdNoLeader",
                    Critical,
                    "15m",
                    block(&[r#"etcd_server_has_leader{job="etcd"} == 0"#]),
                    r#"Etcd cluster "{{ $labels.job }}": member {{ $labels.instance }} has no leader."#,
                ),
                alert(
                    "EtcdHighNumberOfLeaderChanges",
                    Warning,
                    "15m",
                    block(&[r#"rate(etcd_server_leader_changes_seen_total{job="etcd"}[15m]) > 3"#]),
                    r#"Etcd cluster "{{ $labels.job }}": instance {{ $labels.instance }} has seen {{ $value }} leader changes within the last hour."#,
                ),
                alert(
                    "EtcdGRPCRequestsSlow",
                    Critical,
                    "10m",
                    block(&[
                        r#"histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{job="etcd", grpc_type="unary"}[5m])) by (job, instance, grpc_service, grpc_method, le))"#,
                        "> 0.15",
                    ]),
                    r#"Etcd cluster "{{ $labels.job }}": gRPC requests to {{ $labels.grpc_method }} are taking {{ $value }}s on etcd instance {{ $labels.instance }}."#,
                ),
                alert(
                    "EtcdMemberCommunicationSlow",
                    Warning,
                    "10m",
                    block(&[
                        r#"histogram_quantile(0.99, rate(etcd_network_peer_round_trip_time_seconds_bucket{job="etcd"}[5m]))"#,
                        "> 0.15",
                    ]),
                    r#"Etcd cluster "{{ $labels.job }}": member communication with {{ $labels.To }} is taking {{ $value }}s on etcd instance {{ $labels.instance }}."#,
                ),
                alert(
                    "EtcdHighNumberOfFailedProposals",
                    Warning,
                    "15m",
                    block(&[r#"rate(etcd_server_proposals_failed_total{job="etcd"}[15m]) > 5"#]),
                    r#"Etcd cluster "{{ $labels.job }}": {{ $value }} proposal failures within the last hour on etcd instance {{ $labels.instance }}."#,
                ),
                alert(
                    "EtcdHighFsyncDurations",
                    Warning,
                    "10m",
                    block(&[r#"histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job="etcd"}[5m]))"#, "> 0.5"]),
                    r#"Etcd cluster "{{ $labels.job }}": 99th percentile fync durations are {{ $value }}s on etcd instance {{ $labels.instance }}."#,
                ),
                alert(
                    "EtcdHighCommitDurations",
                    Warning,
                    "10m",
                    block(&[
                        r#"histogram_quantile(0.99, rate(etcd_disk_backend_commit_duration_seconds_bucket{job="etcd"}[5m]))"#,
                        "> 0.25",
                    ]),
                    r#"Etcd cluster "{{ $labels.job }}": 99th percentile commit durations {{ $value }}s on etcd instance {{ $labels.instance }}."#,
                ),
                alert(
                    "EtcdDatabaseQuotaLowSpace",
                    Critical,
                    "10m",
                    block(&[
                        "(last_over_time(etcd_mvcc_db_total_size_in_bytes[5m]) / last_over_time(etcd_server_quota_backend_bytes[5m]))*100 > 95",
                    ]),
                    r#"Etcd cluster "{{ $labels.job }}": database size exceeds the defined quota on etcd instance {{ $labels.instance }}, please defrag or increase the quota as the writes to etcd will be disabled when it is full."#,
                ),
                alert(
                    "EtcdExcessiveDatabaseGrowth",
                    Warning,
                    "10m",
                    block(&["predict_linear(etcd_mvcc_db_total_size_in_bytes[4h], 4*60*60) > etcd_server_quota_backend_bytes"]),
                    r#"Etcd cluster "{{ $labels.job }}": Predicting running out of disk space in the next four hours, based on write observations within the past four hours on etcd instance {{ $labels.instance }}, please check as it might be disruptive."#,
                ),
                alert(
                    "EtcdDatabaseHighFragmentationRatio",
                    Warning,
                    "10m",
                    block(&[
                        "(last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes[5m])) < 0.5 and etcd_mvcc_db_total_size_in_use_in_bytes > 104857600",
                    ]),
                    r#"Etcd cluster "{{ $labels.job }}": database size in use on instance {{ $labels.instance }} is {{ $value | humanizePercentage }} of the actual allocated disk space, please run defragmentation (e.g. etcdctl defrag) to retrieve the unused fragmented disk space."#,
                ),
                federate("job:etcd_server_has_leader:sum", "sum(etcd_server_has_leader)"),
                federate(
                    "job:etcd_disk_wal_fsync_duration_seconds_bucket:99percentile",
                    "histogram_quantile(0.99, sum(rate(etcd_disk_wal_fsync_duration_seconds_bucket[5m])) by (instance, le))",
                ),
                federate(
                    "job:etcd_disk_backend_commit_duration_seconds_bucket:99percentile",
                    "histogram_quantile(0.99, sum(rate(etcd_disk_backend_commit_duration_seconds_bucket[5m])) by (instance, le))",
                ),
                federate("job:etcd_mvcc_db_total_size_in_bytes:clone", "etcd_mvcc_db_total_size_in_bytes"),
                federate(
                    "job:etcd_network_client_grpc_received_bytes_total:rate5m",
                    "rate(etcd_network_client_grpc_received_bytes_total[5m])",
                ),
                federate("job:etcd_network_client_grpc_sent_bytes_total:rate5m", "rate(etcd_network_client_grpc_sent_bytes_total[5m])"),
                federate(
                    "job:etcd_network_peer_received_bytes_total:rate5msum",
                    "sum(rate(etcd_network_peer_received_bytes_total[5m])) by (instance)",
                ),
                federate(
                    "job:etcd_network_peer_sent_bytes_total:rate5msum",
                    "sum(rate(etcd_network_peer_sent_bytes_total[5m])) by (instance)",
                ),
                federate("job:etcd_server_proposals_failed_total:rate5msum", "sum(rate(etcd_server_proposals_failed_total[5m]))"),
                federate("job:etcd_server_proposals_pending:sum", "sum(etcd_server_proposals_pending)"),
                federate("job:etcd_server_proposals_committed_total:rate5msum", "sum(rate(etcd_server_proposals_committed_total[5m]))"),
                federate("job:etcd_server_proposals_applied_total:rate5msum", "sum(rate(etcd_server_proposals_applied_total[5m]))"),
                federate("job:etcd_server_leader_changes_seen_total:changes1d", "changes(etcd_server_leader_changes_seen_total[1d])"),
                federate("job:etcd_mvcc_delete_total:rate5m", "rate(etcd_mvcc_delete_total[5m])"),
                federate("job:etcd_mvcc_put_total:rate5m", "rate(etcd_mvcc_put_total[5m])"),
                federate("job:etcd_mvcc_range_total:rate5m", "rate(etcd_mvcc_range_total[5m])"),
                federate("job:etcd_debugging_mvcc_watcher_total:rate5m", "rate(etcd_debugging_mvcc_watcher_total[5m])"),
                federate("job:etcd_mvcc_txn_total:rate5m", "rate(etcd_mvcc_txn_total[5m])"),
                federate("job:etcd_debugging_mvcc_keys_total:clone", "etcd_debugging_mvcc_keys_total"),
                federate("job:etcd_debugging_store_reads_total:rate5m", "rate(etcd_debugging_store_reads_total[5m])"),
                federate("job:etcd_debugging_store_writes_total:rate5m", "rate(etcd_debugging_store_writes_total[5m])"),
                federate("job:etcd_debugging_store_expires_total:rate5m", "rate(etcd_debugging_store_expires_total[5m])"),
                federate("job:apiserver_storage_size_bytes:sum", "sum(apiserver_storage_size_bytes)"),
            ],
        },
        RuleGroup {
            name: "machine-controller",
            rules: vec![
                alert(
                    "MachineControllerTooManyErrors",
                    Warning,
                    "20m",
                    block(&["sum(rate(machine_controller_errors_total[5m])) by (namespace) > 0.01"]),
                    "Machine Controller in {{ $labels.namespace }} has too many errors in its loop.",
                ),
                alert(
                    "MachineControllerMachineDeletionTakesTooLong",
                    Warning,
                    "0m",
                    "(time() - machine_controller_machine_deleted) > 30*60",
                    "Machine {{ $labels.machine }} of cluster {{ $labels.cluster }} is stuck in deletion for more than 30min.",
                ),
                alert(
                    "AWSInstanceCountTooHigh",
                    Warning,
                    "30m",
                    "machine_controller_aws_instances_for_machine > 1",
                    "{{ $labels.machine }} has more than one instance at AWS",
                ),
                alert(
                    "KubernetesAdmissionWebhookHighRejectionRate",
                    Warning,
                    "5m",
                    r#"rate(apiserver_admission_webhook_admission_latencies_seconds_count{name="machine-controller.kubermatic.io-machines",rejected="true"}[5m]) > 0.01"#,
                    "{{ $labels.operation }} requests for Machine objects are failing (Admission) with a high rate. Consider checking the affected objects",
                ),
                federate("job:machine_controller_errors_total:rate5m", "rate(machine_controller_errors_total[5m])"),
                federate("job:machine_controller_workers:sum", "sum(machine_controller_workers)"),
                federate(
                    "job:machine_controller_machines_total:sum",
                    "sum(machine_controller_machines_total) by (kubelet_version, os, provider, size)",
                ),
                federate(
                    "job:machine_deployment_available_replicas:user:sum",
                    "sum(machine_deployment_available_replicas) by (name, namespace)",
                ),
                federate("job:machine_deployment_ready_replicas:user:sum", "sum(machine_deployment_ready_replicas) by (name, namespace)"),
                federate("job:machine_deployment_replicas:user:sum", "sum(machine_deployment_replicas) by (name, namespace)"),
                federate(
                    "job:machine_deployment_updated_replicas:user:sum",
                    "sum(machine_deployment_updated_replicas) by (name, namespace)",
                ),
            ],
        },
        RuleGroup {
            name: "process.filedescriptors",
            rules: vec![
                Rule::Record {
                    record: "instance:fd_utilization",
                    expr: "process_open_fds / process_max_fds".into(),
                    labels: BTreeMap::new(),
                },
                alert(
                    "FdExhaustionClose",
                    Warning,
                    "10m",
                    block(&["predict_linear(instance:fd_utilization[1h], 3600 * 4) > 1"]),
                    "{{ $labels.job }} instance {{ $labels.instance }} will exhaust its file descriptors soon",
                ),
                alert(
                    "FdExhaustionClose",
                    Critical,
                    "10m",
                    block(&["predict_linear(instance:fd_utilization[10m], 3600) > 1"]),
                    "{{ $labels.job }} instance {{ $labels.instance }} will exhaust its file descriptors soon",
                ),
            ],
        },
        RuleGroup {
            name: "kubernetes-nodes",
            rules: vec![
                alert(
                    "KubernetesNodeNotReady",
                    Warning,
                    "30m",
                    r#"kube_node_status_condition{condition="Ready",status="true"} == 0"#,
                    "{{ $labels.node }} has been unready for more than an hour.",
                ),
                federate("job:kube_node_info:count", "count(kube_node_info)"),
            ],
        },
        RuleGroup { name: "kubernetes-absent", rules: absent },
    ];
    if cluster.tunnel == Tunnel::Konnectivity {
        groups.push(RuleGroup {
            name: "kubermatic.konnectivity",
            rules: vec![
federate("job:konnectivity_ready_backend_connections:count", "konnectivity_network_proxy_server_ready_backend_connections"),
federate("job:konnectivity_dial_failure_rate:by_reason", "sum(rate(konnectivity_network_proxy_server_dial_failure_count[5m])) by (reason)"),
federate("job:konnectivity_network_proxy_server_full_receive_channels:sum", "sum(konnectivity_network_proxy_server_full_receive_channels)"),
alert(
    "KonnectivityNoAgents",
    Critical,
    "2m",
    block(&["job:konnectivity_ready_backend_connections:count == 0"]),
    "Cluster {{ $labels.cluster }} has no Konnectivity agents connected. New tunnels cannot be established.",
),
alert(
    "KonnectivityAgentsUnhealthy",
    Warning,
    "3m",
    block(&["job:konnectivity_ready_backend_connections:count < 2"]),
    "Cluster {{ $labels.cluster }} has only {{ $value }} Konnectivity agent(s) connected (expected: 2).",
),
alert(
    "KonnectivityHighDialFailureRate",
    Warning,
    "10m",
    block(&["job:konnectivity_dial_failure_rate:by_reason > 0.1"]),
    "Cluster {{ $labels.cluster }} has {{ $value | humanize }} dial failures/sec (reason: {{ $labels.reason }}). Check agent and node health.",
),
            ],
        });
    }
    if cluster.expose_strategy == ExposeStrategy::Tunneling {
        groups.push(RuleGroup {
            name: "kubermatic.envoy",
            rules: vec![
                federate("job:envoy_cluster_upstream_cx_active:sum", "sum(envoy_cluster_upstream_cx_active)"),
                federate(
                    "job:envoy_cluster_upstream_rq_total:irate1msum",
                    "sum(irate(envoy_cluster_upstream_rq_total[1m])) by (envoy_cluster_name)",
                ),
                federate(
                    "job:envoy_cluster_upstream_cx_rx_bytes_total:irate1msum",
                    "sum(irate(envoy_cluster_upstream_cx_rx_bytes_total[1m])) by (envoy_cluster_name)",
                ),
                federate(
                    "job:envoy_cluster_upstream_cx_tx_bytes_total:irate1msum",
                    "sum(irate(envoy_cluster_upstream_cx_tx_bytes_total[1m])) by (envoy_cluster_name)",
                ),
                federate(
                    "job:envoy_cluster_upstream_rq_time_bucket:rate1msum",
                    "sum(rate(envoy_cluster_upstream_rq_time_bucket[1m])) by (le, envoy_cluster_name)",
                ),
            ],
        });
    }
    Rules { groups }
}
