//! What KKP's per-cluster control-plane components share: the Deployment frame (labels,
//! selector `app=<name>`, pod labels `app`+`cluster`, image pull secret, fingerprints of
//! mounted Secrets, dependencies), webhook Services, ServiceAccounts, and the environment KKP
//! gives components that talk to the cloud (credentials from Secret `cloud-credentials`) or
//! out of the seed (the seed's HTTP proxy).

use super::meta::{self, MANAGED_BY, fingerprint_annotations};
use super::{Body, DesiredNode, http_prober, manifest};
use crate::address::Address;
use crate::object::Kind;
use crate::role::Role;
use crate::topology::Cluster;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, EnvVar, EnvVarSource, HTTPGetAction, LocalObjectReference, ObjectFieldSelector, PodAffinityTerm,
    PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec, WeightedPodAffinityTerm,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role as RbacRole, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub use super::http_prober::SAFE_TO_EVICT_ANNOTATION as SAFE_TO_EVICT;

/// The Secret holding the cluster's cloud credentials (KKP `ClusterCloudCredentialsSecretName`).
pub const CLOUD_CREDENTIALS: &str = "cloud-credentials";
/// The ConfigMap with the CA bundle components trust (rendered by another module).
pub const CA_BUNDLE: &str = "ca-bundle";
/// KKP's image pull Secret, named by every control-plane pod.
pub const IMAGE_PULL_SECRET: &str = "dockercfg";
/// The pod annotation KKP's cluster restarts bump.
pub const LAST_RESTART_ANNOTATION: &str = "kubermatic.k8c.io/last-restart";
/// The KKP release whose images kkp runs for KKP's own components (user-cluster controller and
/// webhook); KKP tags them with its own version.
pub const KKP_VERSION: &str = "v2.31.0";

/// KKP's `app=<name>` label: the whole selector and the metadata label of every component.
pub fn app_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), name.to_string())])
}

/// Metadata labels: KKP's `app` plus kkp's managed-by.
pub fn metadata(name: &str, cluster: &Cluster) -> ObjectMeta {
    let mut labels = app_labels(name);
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    ObjectMeta { name: Some(name.into()), namespace: Some(cluster.namespace()), labels: Some(labels), ..Default::default() }
}

/// A control-plane component Deployment before it becomes a node.
pub struct Component<'a> {
    /// The cluster.
    pub cluster: &'a Cluster,
    /// Deployment name and `app` label.
    pub name: &'a str,
    /// Replicas.
    pub replicas: i32,
    /// Pod labels beyond `app` and `cluster` (KKP's version label).
    pub extra_pod_labels: BTreeMap<String, String>,
    /// Pod annotations (prometheus scraping ...).
    pub annotations: BTreeMap<String, String>,
    /// The pod, containers unwrapped.
    pub pod: PodSpec,
    /// The container KKP wraps with the http-prober, and the CRDs it waits for.
    pub wrap: Option<(&'a str, Vec<&'a str>)>,
    /// Deployment strategy, when KKP sets one.
    pub strategy: Option<DeploymentStrategy>,
    /// Secrets the pod mounts or reads env from: dependencies and fingerprints.
    pub secrets: Vec<&'a str>,
    /// ConfigMaps the pod mounts.
    pub configmaps: Vec<&'a str>,
    /// Whether KKP names the image pull Secret.
    pub image_pull_secret: bool,
}

impl Component<'_> {
    /// The Deployment node.
    pub fn into_node(self) -> DesiredNode {
        let cluster = self.cluster;
        let (fingerprints_annotations, mut fingerprints) = fingerprint_annotations(cluster, &self.secrets);
        let (config_annotations, config_fingerprints) = meta::config_map_fingerprint_annotations(cluster, &self.configmaps);
        fingerprints.extend(config_fingerprints);
        let mut annotations = self.annotations;
        annotations.insert(LAST_RESTART_ANNOTATION.into(), String::new());
        annotations.extend(fingerprints_annotations);
        annotations.extend(config_annotations);
        let mut pod = self.pod;
        if self.image_pull_secret {
            pod.image_pull_secrets = Some(vec![LocalObjectReference { name: IMAGE_PULL_SECRET.into() }]);
        }
        if let Some((container, crds)) = &self.wrap {
            http_prober::wrap(cluster, &mut pod, &mut annotations, container, crds);
        }
        let mut pod_labels = app_labels(self.name);
        pod_labels.insert("cluster".into(), cluster.name.clone());
        pod_labels.extend(self.extra_pod_labels);

        let mut deps: Vec<Address> = self.secrets.iter().map(|s| meta::secret(cluster, s)).collect();
        deps.extend(self.configmaps.iter().map(|c| meta::object(cluster, Kind::ConfigMap, c)));
        if let Some(sa) = &pod.service_account_name {
            deps.push(meta::object(cluster, Kind::ServiceAccount, sa));
        }

        let deployment = Deployment {
            metadata: metadata(self.name, cluster),
            spec: Some(DeploymentSpec {
                replicas: Some(self.replicas),
                selector: LabelSelector { match_labels: Some(app_labels(self.name)), ..Default::default() },
                strategy: self.strategy,
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: Some(pod_labels), annotations: Some(annotations), ..Default::default() }),
                    spec: Some(pod),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        meta::cluster_node(
            cluster,
            Kind::Deployment,
            self.name,
            Role::Workload,
            deps,
            Body::Object { manifest: manifest(&deployment), fingerprints },
        )
    }
}

/// A ClusterIP Service selecting `app=<name>`.
pub fn cluster_ip_service(cluster: &Cluster, name: &str, ports: Vec<ServicePort>) -> DesiredNode {
    let service = Service {
        metadata: metadata(name, cluster),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(app_labels(name)),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    };
    meta::cluster_node(
        cluster,
        Kind::Service,
        name,
        Role::Service,
        Vec::new(),
        Body::Object { manifest: manifest(&service), fingerprints: Vec::new() },
    )
}

/// A TCP Service port.
pub fn service_port(name: Option<&str>, port: i32, target: i32) -> ServicePort {
    ServicePort {
        name: name.map(String::from),
        port,
        protocol: Some("TCP".into()),
        target_port: Some(IntOrString::Int(target)),
        ..Default::default()
    }
}

/// A ServiceAccount in the cluster's namespace (KKP gives these no labels).
pub fn service_account(cluster: &Cluster, name: &str) -> DesiredNode {
    service_account_labelled(cluster, name, meta::managed_meta(name, cluster))
}

/// As [`service_account`], with the metadata (labels) KKP gives it.
pub fn service_account_labelled(cluster: &Cluster, name: &str, metadata: ObjectMeta) -> DesiredNode {
    let sa = ServiceAccount { metadata, ..Default::default() };
    meta::cluster_node(
        cluster,
        Kind::ServiceAccount,
        name,
        Role::Identity,
        Vec::new(),
        Body::Object { manifest: manifest(&sa), fingerprints: Vec::new() },
    )
}

/// An RBAC rule.
pub fn rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> PolicyRule {
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        resource_names: (!names.is_empty()).then(|| strings(names)),
        verbs: strings(verbs),
        ..Default::default()
    }
}

/// Role `name` with `rules`, bound to ServiceAccount `name` in the cluster's namespace (KKP's
/// pattern for components that read their own namespace).
pub fn namespace_access(cluster: &Cluster, name: &str, rules: Vec<PolicyRule>) -> Vec<DesiredNode> {
    namespace_access_labelled(cluster, name, rules, meta::managed_meta(name, cluster))
}

/// As [`namespace_access`], with the metadata (labels) KKP gives both objects.
pub fn namespace_access_labelled(cluster: &Cluster, name: &str, rules: Vec<PolicyRule>, metadata: ObjectMeta) -> Vec<DesiredNode> {
    let role = RbacRole { metadata: metadata.clone(), rules: Some(rules) };
    let binding = RoleBinding {
        metadata,
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: name.into() },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(cluster.namespace()),
            ..Default::default()
        }]),
    };
    let deps = vec![meta::object(cluster, Kind::Role, name), meta::object(cluster, Kind::ServiceAccount, name)];
    vec![
        meta::cluster_node(
            cluster,
            Kind::Role,
            name,
            Role::Access,
            Vec::new(),
            Body::Object { manifest: manifest(&role), fingerprints: Vec::new() },
        ),
        meta::cluster_node(
            cluster,
            Kind::RoleBinding,
            name,
            Role::Access,
            deps,
            Body::Object { manifest: manifest(&binding), fingerprints: Vec::new() },
        ),
    ]
}

/// Resource requests and limits (cpu, memory).
pub fn resources(request_cpu: &str, request_memory: &str, limit_cpu: &str, limit_memory: &str) -> ResourceRequirements {
    let list = |cpu: &str, memory: &str| {
        BTreeMap::from([("cpu".to_string(), Quantity(cpu.into())), ("memory".to_string(), Quantity(memory.into()))])
    };
    ResourceRequirements {
        requests: Some(list(request_cpu, request_memory)),
        limits: Some(list(limit_cpu, limit_memory)),
        ..Default::default()
    }
}

/// KKP's probe: `timeoutSeconds` 15 unless given, success threshold 1.
pub fn http_probe(path: &str, port: i32, scheme: &str, failure: i32, period: i32, initial_delay: Option<i32>) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::Int(port),
            scheme: Some(scheme.into()),
            ..Default::default()
        }),
        failure_threshold: Some(failure),
        period_seconds: Some(period),
        success_threshold: Some(1),
        timeout_seconds: Some(15),
        initial_delay_seconds: initial_delay,
        ..Default::default()
    }
}

/// The non-root pod security context KKP gives its own controllers (uid/gid 65534, seccomp).
pub fn nobody_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65534),
        run_as_group: Some(65534),
        fs_group: Some(65534),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
        ..Default::default()
    }
}

/// No privilege escalation, read-only root, all capabilities dropped.
pub fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
        ..Default::default()
    }
}

/// A plain env var.
pub fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

/// An env var from a key of Secret `cloud-credentials`.
pub fn credential(name: &str, key: &str, optional: bool) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: CLOUD_CREDENTIALS.into(), key: key.into(), optional: optional.then_some(true) }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An env var from the pod's namespace; KKP writes the field's apiVersion for some.
pub fn namespace_env(name: &str, api_version: Option<&str>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "metadata.namespace".into(), api_version: api_version.map(String::from) }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A string setting of the cluster's cloud block (`spec.cloud.<provider>.<key>`), empty if unset.
pub fn cluster_setting(cluster: &Cluster, key: &str) -> String {
    cluster.cloud.cluster_settings.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

/// A string setting of the datacenter's provider block, empty if unset.
pub fn datacenter_setting(cluster: &Cluster, key: &str) -> String {
    cluster.cloud.datacenter_settings.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string()
}

fn datacenter_flag(cluster: &Cluster, key: &str) -> bool {
    cluster.cloud.datacenter_settings.get(key).and_then(|v| v.as_bool()).unwrap_or(false)
}

/// The cloud environment KKP's `TemplateData.GetEnvVars` gives the user-cluster controller,
/// its webhook and machine-controller: credentials per provider, the seed proxy, the pod's
/// namespace.
pub fn cloud_env(cluster: &Cluster) -> Vec<EnvVar> {
    let mut vars = Vec::new();
    match cluster.provider.as_str() {
        "aws" => {
            vars.push(credential("AWS_ACCESS_KEY_ID", "accessKeyId", false));
            vars.push(credential("AWS_SECRET_ACCESS_KEY", "secretAccessKey", false));
            vars.push(env("AWS_ASSUME_ROLE_ARN", &cluster_setting(cluster, "assumeRoleARN")));
            vars.push(env("AWS_ASSUME_ROLE_EXTERNAL_ID", &cluster_setting(cluster, "assumeRoleExternalID")));
        }
        "azure" => vars.extend(azure_env()),
        "openstack" => vars.extend(openstack_env(cluster)),
        "hetzner" => vars.push(credential("HZ_TOKEN", "token", false)),
        "digitalocean" => vars.push(credential("DO_TOKEN", "token", false)),
        "vsphere" => vars.extend(vsphere_env(cluster)),
        "baremetal" => vars.extend(tinkerbell_env(cluster)),
        "gcp" => vars.push(credential("GOOGLE_SERVICE_ACCOUNT", "serviceAccount", false)),
        "kubevirt" => {
            vars.push(credential("KUBEVIRT_KUBECONFIG", "kubeConfig", false));
            vars.push(env("PROJECT_ID", cluster.project_id.as_deref().unwrap_or_default()));
            vars.push(env("CLUSTER_ID", &cluster.name));
        }
        "alibaba" => {
            vars.push(credential("ALIBABA_ACCESS_KEY_ID", "accessKeyId", false));
            vars.push(credential("ALIBABA_ACCESS_KEY_SECRET", "accessKeySecret", false));
        }
        "anexia" => vars.push(credential("ANEXIA_TOKEN", "token", false)),
        "nutanix" => {
            vars.push(env("NUTANIX_CLUSTER_NAME", &cluster_setting(cluster, "clusterName")));
            vars.push(env("NUTANIX_ENDPOINT", &datacenter_setting(cluster, "endpoint")));
            if let Some(port) = cluster.cloud.datacenter_settings.get("port").and_then(|p| p.as_i64()) {
                vars.push(env("NUTANIX_PORT", &port.to_string()));
            }
            if datacenter_flag(cluster, "allowInsecure") {
                vars.push(env("NUTANIX_INSECURE", "true"));
            }
            vars.push(credential("NUTANIX_USERNAME", "username", false));
            vars.push(credential("NUTANIX_PASSWORD", "password", false));
            vars.push(credential("NUTANIX_PROXY_URL", "proxyURL", true));
        }
        "vmwareclouddirector" => {
            vars.push(env("VCD_URL", &datacenter_setting(cluster, "url")));
            vars.push(credential("VCD_USER", "username", false));
            vars.push(credential("VCD_PASSWORD", "password", false));
            vars.push(credential("VCD_ORG", "organization", false));
            vars.push(credential("VCD_VDC", "vdc", false));
            vars.push(credential("VCD_API_TOKEN", "apiToken", true));
            if datacenter_flag(cluster, "allowInsecure") {
                vars.push(env("VCD_ALLOW_UNVERIFIED_SSL", "true"));
            }
        }
        _ => {}
    }
    vars.extend(proxy_env(cluster));
    let namespace = match cluster.cloud.datacenter_settings.pointer("/namespacedMode") {
        Some(mode) if cluster.provider == "kubevirt" && mode.get("enabled").and_then(|e| e.as_bool()) == Some(true) => {
            env("POD_NAMESPACE", mode.get("namespace").and_then(|n| n.as_str()).unwrap_or_default())
        }
        _ => namespace_env("POD_NAMESPACE", None),
    };
    vars.push(namespace);
    vars
}

/// What the in-tree AWS provider of the apiserver and controller-manager reads: credentials,
/// VPC and the role to assume (nothing for other providers).
pub fn aws_in_tree_env(cluster: &Cluster) -> Vec<EnvVar> {
    if cluster.provider != "aws" {
        return Vec::new();
    }
    vec![
        credential("AWS_ACCESS_KEY_ID", "accessKeyId", false),
        credential("AWS_SECRET_ACCESS_KEY", "secretAccessKey", false),
        env("AWS_VPC_ID", &cluster_setting(cluster, "vpcID")),
        env("AWS_ASSUME_ROLE_ARN", &cluster_setting(cluster, "assumeRoleARN")),
        env("AWS_ASSUME_ROLE_EXTERNAL_ID", &cluster_setting(cluster, "assumeRoleExternalID")),
    ]
}

/// Azure's credentials (all four keys required).
pub fn azure_env() -> Vec<EnvVar> {
    vec![
        credential("AZURE_CLIENT_ID", "clientID", false),
        credential("AZURE_CLIENT_SECRET", "clientSecret", false),
        credential("AZURE_TENANT_ID", "tenantID", false),
        credential("AZURE_SUBSCRIPTION_ID", "subscriptionID", false),
    ]
}

/// OpenStack's endpoint and credentials (project and application credentials optional).
pub fn openstack_env(cluster: &Cluster) -> Vec<EnvVar> {
    vec![
        env("OS_AUTH_URL", &datacenter_setting(cluster, "authURL")),
        credential("OS_USER_NAME", "username", false),
        credential("OS_PASSWORD", "password", false),
        credential("OS_DOMAIN_NAME", "domain", false),
        credential("OS_PROJECT_NAME", "project", true),
        credential("OS_PROJECT_ID", "projectID", true),
        credential("OS_APPLICATION_CREDENTIAL_ID", "applicationCredentialID", true),
        credential("OS_APPLICATION_CREDENTIAL_SECRET", "applicationCredentialSecret", true),
    ]
}

/// vSphere's endpoint and credentials.
pub fn vsphere_env(cluster: &Cluster) -> Vec<EnvVar> {
    vec![
        env("VSPHERE_ADDRESS", &datacenter_setting(cluster, "endpoint")),
        credential("VSPHERE_USERNAME", "username", false),
        credential("VSPHERE_PASSWORD", "password", false),
    ]
}

/// Tinkerbell's kubeconfig, for bare-metal clusters using Tinkerbell.
pub fn tinkerbell_env(cluster: &Cluster) -> Vec<EnvVar> {
    if cluster.cloud.cluster_settings.get("tinkerbell").is_some_and(|t| !t.is_null()) {
        vec![credential("TINK_KUBECONFIG", "kubeConfig", false)]
    } else {
        Vec::new()
    }
}

/// Whether any env var reads Secret `cloud-credentials` (then the pod depends on it).
pub fn reads_credentials(vars: &[EnvVar]) -> bool {
    vars.iter().any(|v| v.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()).is_some_and(|s| s.name == CLOUD_CREDENTIALS))
}

/// The seed's HTTP proxy as KKP passes it (`GetHTTPProxyEnvVarsFromSeed`): the proxy in both
/// spellings, and NO_PROXY always exempting the in-cluster apiserver.
pub fn proxy_env(cluster: &Cluster) -> Vec<EnvVar> {
    let Some(proxy) = &cluster.seed_proxy else { return Vec::new() };
    let http = proxy.http_proxy.as_deref().filter(|p| !p.is_empty());
    let no_proxy_extra = proxy.no_proxy.as_deref().filter(|p| !p.is_empty());
    if http.is_none() && no_proxy_extra.is_none() {
        return Vec::new();
    }
    let mut vars = Vec::new();
    if let Some(http) = http {
        vars.extend(["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"].map(|name| env(name, http)));
    }
    let mut no_proxy = http_prober::apiserver_internal_name(cluster);
    if let Some(extra) = no_proxy_extra {
        no_proxy = format!("{no_proxy},{extra}");
    }
    vars.push(env("NO_PROXY", &no_proxy));
    vars.push(env("no_proxy", &no_proxy));
    vars
}

/// The user cluster's DNS resolver IP: the tenth address of the first service network (KKP
/// `UserClusterDNSResolverIP`).
pub fn dns_resolver_ip(cluster: &Cluster) -> Option<IpAddr> {
    let net = cluster.network.services.first()?;
    Some(match net.network() {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) + 10).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) + 10).into()),
    })
}

/// KKP's preferred spread of an app's pods over hosts and zones (`HostnameAntiAffinity` merged
/// with `FailureDomainZoneAntiAffinity`). KKP adds the zone term when the seed's nodes carry
/// zone labels; a preferred term is harmless where they do not, so kkp always adds it.
pub fn spread_over_hosts_and_zones(app: &str) -> Affinity {
    let term = |topology_key: &str| WeightedPodAffinityTerm {
        weight: 100,
        pod_affinity_term: PodAffinityTerm {
            label_selector: Some(LabelSelector { match_labels: Some(app_labels(app)), ..Default::default() }),
            topology_key: topology_key.into(),
            ..Default::default()
        },
    };
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                term("kubernetes.io/hostname"),
                term("topology.kubernetes.io/zone"),
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::topology::Topology;
    use std::path::{Path, PathBuf};

    /// The topology of KKP's golden rendering.
    pub fn fixture_topology() -> Topology {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/topology.yaml");
        crate::topology::load(&[path]).expect("the fixture topology loads")
    }

    /// The golden cluster `de-test-01`.
    pub fn fixture_cluster() -> Cluster {
        fixture_topology().clusters.remove("de-test-01").expect("the fixture has de-test-01")
    }

    /// The fixture cluster edited by `edit` (provider, version, ...).
    pub fn cluster_with(edit: impl FnOnce(&mut Cluster)) -> Cluster {
        let mut cluster = fixture_cluster();
        edit(&mut cluster);
        cluster
    }

    /// A golden file as JSON.
    pub fn golden(name: &str) -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/kkp-fixtures/golden").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_saphyr::from_str(&text).expect("golden files are YAML")
    }

    /// The manifest of the node of `kind` named `name`.
    pub fn find(nodes: &[DesiredNode], kind: Kind, name: &str) -> Option<serde_json::Value> {
        let node = nodes.iter().find(|n| n.address == Address::cluster_object(n.cluster.as_deref().unwrap_or_default(), kind, name))?;
        match &node.body {
            Body::Object { manifest, .. } => Some(manifest.clone()),
            _ => None,
        }
    }

    /// Asserts a rendered Deployment matches its golden file in what the fixture check compares:
    /// selector, container names, ports, flag names, env names, mounts, volumes, probes, resources.
    pub fn assert_matches_golden(rendered: &serde_json::Value, golden_file: &str) {
        let golden = golden(golden_file);
        assert_eq!(rendered["spec"]["selector"], golden["spec"]["selector"], "selector");
        let pod = |v: &serde_json::Value| v["spec"]["template"]["spec"].clone();
        let (r, g) = (pod(rendered), pod(&golden));
        let names = |p: &serde_json::Value, key: &str| -> Vec<String> {
            p[key].as_array().into_iter().flatten().map(|c| c["name"].as_str().unwrap_or_default().to_string()).collect()
        };
        assert_eq!(names(&r, "containers"), names(&g, "containers"), "containers");
        assert_eq!(names(&r, "initContainers"), names(&g, "initContainers"), "init containers");
        assert_eq!(names(&r, "volumes"), names(&g, "volumes"), "volumes");
        assert_eq!(r["serviceAccountName"], g["serviceAccountName"], "service account");
        for (rc, gc) in r["containers"].as_array().unwrap().iter().zip(g["containers"].as_array().unwrap()) {
            for key in ["ports", "readinessProbe", "livenessProbe", "resources", "image", "command"] {
                if key == "image" && gc[key].as_str().is_some_and(|i| i.contains("v0.0.0-test")) {
                    continue;
                }
                assert_eq!(rc[key], gc[key], "{key} of {}", gc["name"]);
            }
            let env_names = |c: &serde_json::Value| -> Vec<String> {
                c["env"].as_array().into_iter().flatten().map(|e| e["name"].as_str().unwrap().to_string()).collect()
            };
            assert_eq!(env_names(rc), env_names(gc), "env of {}", gc["name"]);
            let mounts = |c: &serde_json::Value| -> Vec<(String, String)> {
                c["volumeMounts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| (m["name"].as_str().unwrap().to_string(), m["mountPath"].as_str().unwrap().to_string()))
                    .collect()
            };
            assert_eq!(mounts(rc), mounts(gc), "mounts of {}", gc["name"]);
        }
    }

    /// Flag names of a JSON-wrapped command line (`--a=b` and `-a b` both give `a`).
    pub fn flag_names(command: &[String]) -> std::collections::BTreeSet<String> {
        command
            .iter()
            .skip(1)
            .filter(|a| a.starts_with('-'))
            .map(|a| a.trim_start_matches('-').split('=').next().unwrap().to_string())
            .collect()
    }

    /// The original command of the golden file's first container.
    pub fn golden_command(golden_file: &str) -> Vec<String> {
        let golden = golden(golden_file);
        let container: k8s_openapi::api::core::v1::Container =
            serde_json::from_value(golden["spec"]["template"]["spec"]["containers"][0].clone()).unwrap();
        http_prober::unwrapped_command(&container)
    }

    /// The original command of a rendered Deployment's first container.
    pub fn rendered_command(deployment: &serde_json::Value) -> Vec<String> {
        let container: k8s_openapi::api::core::v1::Container =
            serde_json::from_value(deployment["spec"]["template"]["spec"]["containers"][0].clone()).unwrap();
        http_prober::unwrapped_command(&container)
    }

    #[test]
    fn proxy_env_exempts_the_in_cluster_apiserver() {
        let cluster = fixture_cluster();
        let vars = proxy_env(&cluster);
        let names: Vec<_> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"]);
        assert_eq!(vars[4].value.as_deref(), Some("apiserver-external.cluster-de-test-01.svc.cluster.local."));
        let without = cluster_with(|c| c.seed_proxy = None);
        assert!(proxy_env(&without).is_empty());
    }

    #[test]
    fn credentials_follow_the_provider() {
        let aws = cloud_env(&fixture_cluster());
        assert!(reads_credentials(&aws));
        let hetzner = cloud_env(&cluster_with(|c| c.provider = "hetzner".into()));
        assert_eq!(hetzner[0].name, "HZ_TOKEN");
        let edge = cloud_env(&cluster_with(|c| c.provider = "edge".into()));
        assert!(!reads_credentials(&edge));
        assert_eq!(edge.last().unwrap().name, "POD_NAMESPACE");
    }

    #[test]
    fn dns_resolver_is_the_tenth_service_address() {
        assert_eq!(dns_resolver_ip(&fixture_cluster()).unwrap().to_string(), "10.240.16.10");
    }
}
