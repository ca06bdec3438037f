//! The per-cluster nodeport-proxy of the LoadBalancer expose strategy (KKP
//! `pkg/resources/nodeportproxy`): Service `front-loadbalancer` (the cluster's own cloud load
//! balancer), Deployment `nodeport-proxy-envoy` behind it (envoy routing to the Services
//! annotated `nodeport-proxy.k8s.io/expose-namespaced`), Deployment `nodeport-proxy-lb-updater`
//! (keeps the load balancer's ports in step with those Services), their PodDisruptionBudget and
//! ServiceAccount `nodeport-proxy` with KKP's Role. Other expose strategies use the seed's
//! shared nodeport-proxy, so nothing is rendered for them.

use super::component::{self, Component, KKP_VERSION, SAFE_TO_EVICT};
use super::meta::{self, MANAGED_BY};
use super::{Body, DesiredNode, manifest};
use crate::object::Kind;
use crate::role::Role;
use crate::topology::{Cluster, ExposeStrategy};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, LocalObjectReference,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, Probe, Service, ServiceSpec, Volume, VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// ServiceAccount, Role and RoleBinding of both Deployments.
const SERVICE_ACCOUNT: &str = "nodeport-proxy";
/// The envoy Deployment, its `app` label and its PodDisruptionBudget's name.
const ENVOY: &str = "nodeport-proxy-envoy";
const LB_UPDATER: &str = "nodeport-proxy-lb-updater";
/// The cluster's load balancer (KKP `FrontLoadBalancerServiceName`).
pub const FRONT_LOAD_BALANCER: &str = "front-loadbalancer";
/// Which Services this proxy exposes: those the LoadBalancer strategy annotates.
const EXPOSE_ANNOTATION: &str = "nodeport-proxy.k8s.io/expose-namespaced";
/// KKP's nodeport-proxy image (envoy-manager, lb-updater, the envoy bootstrap config), tagged
/// with KKP's version.
const PROXY_IMAGE: &str = "quay.io/kubermatic/nodeport-proxy";
/// Envoy itself: the seed's default repository with KKP's envoy release.
const ENVOY_IMAGE: &str = "docker.io/envoyproxy/envoy:distroless-v1.37.0";
/// The emptyDir envoy's bootstrap config is copied into.
const ENVOY_CONFIG_VOLUME: &str = "envoy-config";
/// Envoy's admin port (the preStop hook fails its health check there) and stats port (probed).
const ENVOY_ADMIN_PORT: i32 = 9001;
const ENVOY_STATS_PORT: i32 = 8002;

/// The nodes, for clusters exposed through their own LoadBalancer; none otherwise.
pub fn render(cluster: &Cluster) -> Vec<DesiredNode> {
    if cluster.expose_strategy != ExposeStrategy::LoadBalancer {
        return Vec::new();
    }
    let mut nodes = vec![component::service_account(cluster, SERVICE_ACCOUNT)];
    nodes.extend(component::namespace_access(
        cluster,
        SERVICE_ACCOUNT,
        vec![
            component::rule(&[""], &["services"], &[], &["list", "get", "watch"]),
            component::rule(&["discovery.k8s.io"], &["endpointslices"], &[], &["list", "get", "watch"]),
            component::rule(&[""], &["services"], &[FRONT_LOAD_BALANCER], &["update"]),
        ],
    ));
    nodes.extend([front_load_balancer(cluster), envoy(cluster), lb_updater(cluster), disruption_budget(cluster)]);
    nodes
}

/// Service `front-loadbalancer`: type LoadBalancer onto envoy. KKP creates it with one port
/// (`secure` 443, a Service needs one); lb-updater then owns the port list.
fn front_load_balancer(cluster: &Cluster) -> DesiredNode {
    let mut annotations = BTreeMap::new();
    if cluster.provider == "aws" {
        // A network load balancer with fixed IPs, idle connections (kubectl logs -f) kept an
        // hour, and nodes in every zone behind it.
        for (key, value) in [
            ("service.beta.kubernetes.io/aws-load-balancer-type", "nlb"),
            ("service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout", "3600"),
            ("service.beta.kubernetes.io/aws-load-balancer-cross-zone-load-balancing-enabled", "true"),
        ] {
            annotations.insert(key.to_string(), value.to_string());
        }
    }
    let service = Service {
        metadata: ObjectMeta {
            name: Some(FRONT_LOAD_BALANCER.into()),
            namespace: Some(cluster.namespace()),
            labels: Some(BTreeMap::from([(MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string())])),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            selector: Some(component::app_labels(ENVOY)),
            ports: Some(vec![component::service_port(Some("secure"), 443, 443)]),
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::Service,
        FRONT_LOAD_BALANCER,
        Role::Service,
        Vec::new(),
        Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
    )
}

/// An env var from a field of the pod (`metadata.name`, `metadata.namespace`).
fn pod_field_env(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: field.into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn proxy_image() -> String {
    format!("{PROXY_IMAGE}:{KKP_VERSION}")
}

fn envoy_config_mount() -> VolumeMount {
    VolumeMount { name: ENVOY_CONFIG_VOLUME.into(), mount_path: "/etc/envoy".into(), ..Default::default() }
}

/// Deployment `nodeport-proxy-envoy`: envoy-manager serves envoy's config (xDS) from the
/// exposed Services; envoy, bootstrapped from the config the init container copies, forwards.
fn envoy(cluster: &Cluster) -> DesiredNode {
    let copy_config = Container {
        name: "copy-envoy-config".into(),
        image: Some(proxy_image()),
        command: Some(["/bin/cp", "/envoy.yaml", "/etc/envoy/envoy.yaml"].map(String::from).to_vec()),
        volume_mounts: Some(vec![envoy_config_mount()]),
        ..Default::default()
    };
    let manager = Container {
        name: "envoy-manager".into(),
        image: Some(proxy_image()),
        command: Some(vec![
            "/envoy-manager".into(),
            "-listen-address=:8001".into(),
            "-envoy-node-name=$(PODNAME)".into(),
            format!("-envoy-admin-port={ENVOY_ADMIN_PORT}"),
            format!("-envoy-stats-port={ENVOY_STATS_PORT}"),
            format!("-expose-annotation-key={EXPOSE_ANNOTATION}"),
            "-namespace=$(PODNAMESPACE)".into(),
        ]),
        env: Some(vec![pod_field_env("PODNAMESPACE", "metadata.namespace"), pod_field_env("PODNAME", "metadata.name")]),
        resources: Some(component::resources("10m", "32Mi", "50m", "48Mi")),
        ..Default::default()
    };
    let envoy = Container {
        name: "envoy".into(),
        image: Some(ENVOY_IMAGE.into()),
        command: Some(
            ["/usr/local/bin/envoy", "-c", "/etc/envoy/envoy.yaml", "--service-cluster", "kube-cluster", "--service-node", "$(PODNAME)"]
                .map(String::from)
                .to_vec(),
        ),
        env: Some(vec![pod_field_env("PODNAME", "metadata.name")]),
        // Fail envoy's health check first so the load balancer drains the pod before it stops.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(vec!["wget".into(), "-q0".into(), format!("http://127.0.0.1:{ENVOY_ADMIN_PORT}/healthcheck/fail")]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("healthz".into()),
                port: IntOrString::Int(ENVOY_STATS_PORT),
                scheme: Some("HTTP".into()),
                ..Default::default()
            }),
            failure_threshold: Some(3),
            period_seconds: Some(3),
            success_threshold: Some(1),
            timeout_seconds: Some(1),
            ..Default::default()
        }),
        resources: Some(component::resources("50m", "32Mi", "100m", "64Mi")),
        volume_mounts: Some(vec![envoy_config_mount()]),
        ..Default::default()
    };
    Component {
        cluster,
        name: ENVOY,
        replicas: 2,
        extra_pod_labels: BTreeMap::new(),
        // The copied config is disposable: it must not keep the autoscaler from evicting.
        annotations: BTreeMap::from([(SAFE_TO_EVICT.to_string(), ENVOY_CONFIG_VOLUME.to_string())]),
        pod: PodSpec {
            init_containers: Some(vec![copy_config]),
            containers: vec![manager, envoy],
            affinity: Some(component::spread_over_hosts_and_zones(ENVOY)),
            volumes: Some(vec![Volume {
                name: ENVOY_CONFIG_VOLUME.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            }]),
            service_account_name: Some(SERVICE_ACCOUNT.into()),
            ..Default::default()
        },
        wrap: None,
        strategy: None,
        secrets: Vec::new(),
        configmaps: Vec::new(),
        image_pull_secret: true,
    }
    .into_node()
}

/// Deployment `nodeport-proxy-lb-updater`. KKP gives its pods no annotations (not even the
/// restart one), unlike its other components, so it is not built as a [`Component`].
fn lb_updater(cluster: &Cluster) -> DesiredNode {
    let container = Container {
        name: "lb-updater".into(),
        image: Some(proxy_image()),
        command: Some(vec![
            "/lb-updater".into(),
            "-lb-namespace=$(MY_NAMESPACE)".into(),
            format!("-lb-name={FRONT_LOAD_BALANCER}"),
            format!("-expose-annotation-key={EXPOSE_ANNOTATION}"),
            "-namespaced=true".into(),
        ]),
        env: Some(vec![pod_field_env("MY_NAMESPACE", "metadata.namespace")]),
        resources: Some(component::resources("10m", "32Mi", "50m", "32Mi")),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: component::metadata(LB_UPDATER, cluster),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(component::app_labels(LB_UPDATER)), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(meta::selector_labels(LB_UPDATER, cluster)), ..Default::default() }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    image_pull_secrets: Some(vec![LocalObjectReference { name: component::IMAGE_PULL_SECRET.into() }]),
                    service_account_name: Some(SERVICE_ACCOUNT.into()),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::Deployment,
        LB_UPDATER,
        Role::Workload,
        vec![meta::object(cluster, Kind::ServiceAccount, SERVICE_ACCOUNT)],
        Body::Object { manifest: manifest(&deployment), fingerprints: Vec::new() },
    )
}

/// PodDisruptionBudget `nodeport-proxy-envoy`: one envoy at a time.
fn disruption_budget(cluster: &Cluster) -> DesiredNode {
    let pdb = PodDisruptionBudget {
        metadata: meta::managed_meta(ENVOY, cluster),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector { match_labels: Some(component::app_labels(ENVOY)), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::PodDisruptionBudget,
        ENVOY,
        Role::DisruptionBudget,
        vec![meta::object(cluster, Kind::Deployment, ENVOY)],
        Body::Object { manifest: manifest(&pdb), fingerprints: Vec::new() },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::component::tests::{assert_matches_golden, cluster_with, find, fixture_cluster, golden};

    const ENVOY_GOLDEN: &str = "deployment-aws-1.33.0-nodeport-proxy-envoy.yaml";
    const LB_UPDATER_GOLDEN: &str = "deployment-aws-1.33.0-nodeport-proxy-lb-updater.yaml";

    #[test]
    fn only_the_load_balancer_strategy_has_its_own_proxy() {
        assert_eq!(fixture_cluster().expose_strategy, ExposeStrategy::LoadBalancer);
        let nodes = render(&fixture_cluster());
        let kinds: Vec<_> = nodes.iter().map(|n| n.address.to_string()).collect();
        assert_eq!(nodes.len(), 7, "{kinds:?}");
        for (kind, name) in [
            (Kind::ServiceAccount, SERVICE_ACCOUNT),
            (Kind::Role, SERVICE_ACCOUNT),
            (Kind::RoleBinding, SERVICE_ACCOUNT),
            (Kind::Service, FRONT_LOAD_BALANCER),
            (Kind::Deployment, ENVOY),
            (Kind::Deployment, LB_UPDATER),
            (Kind::PodDisruptionBudget, ENVOY),
        ] {
            assert!(find(&nodes, kind, name).is_some(), "{kind:?} {name}");
        }
        for strategy in [ExposeStrategy::NodePort, ExposeStrategy::Tunneling] {
            assert!(render(&cluster_with(|c| c.expose_strategy = strategy)).is_empty(), "{strategy:?}");
        }
    }

    #[test]
    fn roles_follow_what_each_node_is() {
        let nodes = render(&fixture_cluster());
        let role = |kind: Kind, name: &str| {
            nodes.iter().find(|n| n.address == meta::object(&fixture_cluster(), kind, name)).map(|n| n.role).unwrap()
        };
        assert_eq!(role(Kind::ServiceAccount, SERVICE_ACCOUNT), Role::Identity);
        assert_eq!(role(Kind::Role, SERVICE_ACCOUNT), Role::Access);
        assert_eq!(role(Kind::RoleBinding, SERVICE_ACCOUNT), Role::Access);
        assert_eq!(role(Kind::Deployment, ENVOY), Role::Workload);
        assert_eq!(role(Kind::Deployment, LB_UPDATER), Role::Workload);
        assert_eq!(role(Kind::Service, FRONT_LOAD_BALANCER), Role::Service);
        assert_eq!(role(Kind::PodDisruptionBudget, ENVOY), Role::DisruptionBudget);
    }

    #[test]
    fn deployments_match_kkp() {
        let nodes = render(&fixture_cluster());
        for (name, file) in [(ENVOY, ENVOY_GOLDEN), (LB_UPDATER, LB_UPDATER_GOLDEN)] {
            let rendered = find(&nodes, Kind::Deployment, name).unwrap();
            assert_matches_golden(&rendered, file);
            let golden = golden(file);
            let pod = |v: &serde_json::Value, key: &str| v["spec"]["template"][key].clone();
            assert_eq!(pod(&rendered, "metadata")["labels"], pod(&golden, "metadata")["labels"], "pod labels of {name}");
            assert_eq!(pod(&rendered, "metadata")["annotations"], pod(&golden, "metadata")["annotations"], "annotations of {name}");
            assert_eq!(rendered["spec"]["replicas"], golden["spec"]["replicas"], "replicas of {name}");
            let spec = |v: &serde_json::Value| pod(v, "spec");
            for key in ["affinity", "volumes", "initContainers", "imagePullSecrets", "serviceAccountName"] {
                let (mut r, mut g) = (spec(&rendered)[key].clone(), spec(&golden)[key].clone());
                // The golden images carry KKP's test tag; kkp tags with KKP's release.
                for c in r.as_array_mut().into_iter().chain(g.as_array_mut()).flatten() {
                    c.as_object_mut().map(|c| c.remove("image"));
                    c.as_object_mut().filter(|c| c.get("resources") == Some(&serde_json::json!({}))).map(|c| c.remove("resources"));
                }
                assert_eq!(r, g, "{key} of {name}");
            }
            let containers = |v: &serde_json::Value| spec(v)["containers"].as_array().unwrap().clone();
            for (r, g) in containers(&rendered).iter().zip(containers(&golden).iter()) {
                for key in ["command", "env", "lifecycle", "readinessProbe"] {
                    assert_eq!(r[key], g[key], "{key} of {}", g["name"]);
                }
            }
        }
    }

    #[test]
    fn envoy_runs_kkp_releases() {
        let envoy = find(&render(&fixture_cluster()), Kind::Deployment, ENVOY).unwrap();
        let containers = &envoy["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], format!("quay.io/kubermatic/nodeport-proxy:{KKP_VERSION}"));
        assert_eq!(containers[1]["image"], golden(ENVOY_GOLDEN)["spec"]["template"]["spec"]["containers"][1]["image"]);
    }

    #[test]
    fn front_load_balancer_and_budget_match_kkp() {
        let nodes = render(&fixture_cluster());
        let service = find(&nodes, Kind::Service, FRONT_LOAD_BALANCER).unwrap();
        let golden_service = golden("service-aws-1.33.0-front-loadbalancer.yaml");
        assert_eq!(service["spec"], golden_service["spec"]);
        assert_eq!(service["metadata"]["annotations"], golden_service["metadata"]["annotations"]);
        let pdb = find(&nodes, Kind::PodDisruptionBudget, ENVOY).unwrap();
        assert_eq!(pdb["spec"], golden("poddisruptionbudget-aws-1.33.0-nodeport-proxy-envoy.yaml")["spec"]);
    }

    #[test]
    fn load_balancer_annotations_only_on_aws() {
        let cluster = cluster_with(|c| c.provider = "hetzner".into());
        let service = find(&render(&cluster), Kind::Service, FRONT_LOAD_BALANCER).unwrap();
        assert!(service["metadata"].get("annotations").is_none());
    }

    #[test]
    fn the_role_lets_lb_updater_change_only_the_front_load_balancer() {
        let role = find(&render(&fixture_cluster()), Kind::Role, SERVICE_ACCOUNT).unwrap();
        let rules = role["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!(rules[1]["resources"], serde_json::json!(["endpointslices"]));
        assert_eq!(rules[2]["resourceNames"], serde_json::json!([FRONT_LOAD_BALANCER]));
        assert_eq!(rules[2]["verbs"], serde_json::json!(["update"]));
    }
}
