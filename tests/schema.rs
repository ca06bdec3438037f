//! Every object kkp renders is one Kubernetes accepts as written: it round-trips through its
//! k8s-openapi type unchanged (no unknown or misplaced field), validates against the upstream
//! v1.33 strict JSON schema (testdata/schemas, `additionalProperties: false`), and the KKP
//! custom resource EtcdBackupConfig has KKP's CRD shape. A reference test checks that every
//! ServiceAccount, Secret and ConfigMap a pod template names is rendered for its cluster.

use k8s_openapi::api::{
    apps::v1 as apps, batch::v1 as batch, core::v1 as core, networking::v1 as net, policy::v1 as policy, rbac::v1 as rbac,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Rendered manifests (Object nodes) and identities (kind, name) of every node, per topology.
struct Rendering {
    manifests: Vec<Value>,
    identities: BTreeSet<(String, String, String)>,
}

fn render_text(text: &str) -> Rendering {
    let topology = kkp::topology::load_str(Path::new("topology.yaml"), text).unwrap();
    render(&topology)
}

fn render_paths(path: &str) -> Rendering {
    render(&kkp::topology::load(&[repo().join(path)]).unwrap())
}

fn render(topology: &kkp::topology::Topology) -> Rendering {
    let mut manifests = Vec::new();
    let mut identities = BTreeSet::new();
    for node in kkp::render::topology(topology) {
        if let kkp::render::Body::Object { manifest, .. } = &node.body {
            manifests.push(manifest.clone());
        }
        if let Some(id) = node.body.object() {
            identities.insert((id.kind.name().to_string(), id.namespace.clone().unwrap_or_default(), id.name.clone()));
        }
    }
    Rendering { manifests, identities }
}

fn fixture_topology() -> String {
    std::fs::read_to_string(repo().join("testdata/kkp-fixtures/topology.yaml")).unwrap()
}

/// The fixture cluster as every provider KKP runs an external cloud-controller-manager for,
/// with the feature on; every other one over OpenVPN (which adds the CCM's VPN sidecar).
fn external_cloud_provider_rendering() -> Rendering {
    let mut topology = kkp::topology::load_str(Path::new("topology.yaml"), &fixture_topology()).unwrap();
    let base = topology.clusters.values().next().unwrap().clone();
    topology.clusters.clear();
    let providers = ["aws", "azure", "digitalocean", "gcp", "hetzner", "kubevirt", "openstack", "vsphere", "anexia", "vmwareclouddirector"];
    for (i, provider) in providers.into_iter().enumerate() {
        let mut cluster = base.clone();
        cluster.name = format!("ccm{i}");
        cluster.provider = provider.into();
        cluster.features.insert("externalCloudProvider".into(), true);
        cluster.features.insert("ccmClusterName".into(), true);
        if i % 2 == 1 {
            cluster.tunnel = kkp::topology::Tunnel::OpenVpn;
        }
        topology.clusters.insert(cluster.name.clone(), cluster);
    }
    let rendering = render(&topology);
    let ccms =
        rendering.manifests.iter().filter(|m| kind_of(m) == "Deployment" && name_of(m).ends_with("cloud-controller-manager")).count();
    assert_eq!(ccms, 9, "one cloud-controller-manager per provider but VMware Cloud Director");
    rendering
}

fn all_renderings() -> Vec<(&'static str, Rendering)> {
    vec![
        ("kkp-fixtures", render_text(&fixture_topology())),
        ("external-cloud-provider", external_cloud_provider_rendering()),
        ("quickstart", render_paths("examples/quickstart")),
        ("multi-seed", render_paths("examples/multi-seed")),
    ]
}

fn kind_of(manifest: &Value) -> &str {
    manifest["kind"].as_str().unwrap_or("")
}

fn name_of(manifest: &Value) -> String {
    format!("{}/{}", kind_of(manifest), manifest["metadata"]["name"].as_str().unwrap_or(""))
}

/// The manifest after a trip through `T`; differences mean fields `T` does not know.
fn round_trip<T: DeserializeOwned + Serialize>(manifest: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(manifest.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

fn round_trip_kind(manifest: &Value) -> Option<Result<Value, String>> {
    Some(match kind_of(manifest) {
        "Namespace" => round_trip::<core::Namespace>(manifest),
        "Secret" => round_trip::<core::Secret>(manifest),
        "ConfigMap" => round_trip::<core::ConfigMap>(manifest),
        "Service" => round_trip::<core::Service>(manifest),
        "ServiceAccount" => round_trip::<core::ServiceAccount>(manifest),
        "Role" => round_trip::<rbac::Role>(manifest),
        "RoleBinding" => round_trip::<rbac::RoleBinding>(manifest),
        "ClusterRole" => round_trip::<rbac::ClusterRole>(manifest),
        "ClusterRoleBinding" => round_trip::<rbac::ClusterRoleBinding>(manifest),
        "Deployment" => round_trip::<apps::Deployment>(manifest),
        "StatefulSet" => round_trip::<apps::StatefulSet>(manifest),
        "CronJob" => round_trip::<batch::CronJob>(manifest),
        "PodDisruptionBudget" => round_trip::<policy::PodDisruptionBudget>(manifest),
        "NetworkPolicy" => round_trip::<net::NetworkPolicy>(manifest),
        _ => return None,
    })
}

#[test]
fn every_object_round_trips_through_its_kubernetes_type() {
    let mut problems = Vec::new();
    for (source, rendering) in all_renderings() {
        for manifest in &rendering.manifests {
            match round_trip_kind(manifest) {
                None if kind_of(manifest) == "EtcdBackupConfig" => {}
                None => problems.push(format!("{source} {}: no k8s-openapi type", name_of(manifest))),
                Some(Err(e)) => problems.push(format!("{source} {}: {e}", name_of(manifest))),
                Some(Ok(back)) if &back != manifest => problems.push(format!(
                    "{source} {}: changed by the round trip:\n  rendered: {manifest}\n  typed:    {back}",
                    name_of(manifest)
                )),
                Some(Ok(_)) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The vendored schema file of a kind, if the kind has one.
fn schema_file(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Namespace" => "namespace-v1.json",
        "Secret" => "secret-v1.json",
        "ConfigMap" => "configmap-v1.json",
        "Service" => "service-v1.json",
        "ServiceAccount" => "serviceaccount-v1.json",
        "Role" => "role-rbac-v1.json",
        "RoleBinding" => "rolebinding-rbac-v1.json",
        "Deployment" => "deployment-apps-v1.json",
        "StatefulSet" => "statefulset-apps-v1.json",
        "CronJob" => "cronjob-batch-v1.json",
        "PodDisruptionBudget" => "poddisruptionbudget-policy-v1.json",
        "NetworkPolicy" => "networkpolicy-networking-v1.json",
        _ => return None,
    })
}

fn read_schema(file: &str) -> Value {
    let path = repo().join("testdata/schemas/v1.33").join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Serves `_definitions.json`, the one document the schemas' `$ref`s point to; nothing is fetched.
struct Definitions;

impl jsonschema::Retrieve for Definitions {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        match uri.path().as_str() {
            "/api/_definitions.json" => Ok(read_schema("_definitions.json")),
            other => Err(format!("{other}: not vendored").into()),
        }
    }
}

fn validator(file: &str) -> jsonschema::Validator {
    jsonschema::options().with_retriever(Definitions).build(&read_schema(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn every_object_validates_against_the_strict_kubernetes_schema() {
    let mut validators = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for (source, rendering) in all_renderings() {
        for manifest in &rendering.manifests {
            let Some(file) = schema_file(kind_of(manifest)) else { continue };
            let validator = validators.entry(file).or_insert_with(|| validator(file));
            for error in validator.iter_errors(manifest) {
                problems.push(format!("{source} {} at {}: {error}", name_of(manifest), error.instance_path()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_strict_schema_rejects_an_unknown_field() {
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
        "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "x", "image": "x", "mountPath": "/misplaced"}]}}}
    });
    assert!(!validator("deployment-apps-v1.json").is_valid(&deployment));
}

/// EtcdBackupConfig (kubermatic.k8c.io/v1) has no upstream schema: KKP's CRD spec fields.
#[test]
fn etcd_backup_configs_have_kkps_crd_shape() {
    const SPEC_FIELDS: &[&str] = &["name", "cluster", "schedule", "keep", "destination"];
    for (source, rendering) in all_renderings() {
        for manifest in rendering.manifests.iter().filter(|m| kind_of(m) == "EtcdBackupConfig") {
            assert_eq!(manifest["apiVersion"], "kubermatic.k8c.io/v1", "{source}");
            let spec = manifest["spec"].as_object().unwrap_or_else(|| panic!("{source}: no spec"));
            for field in spec.keys() {
                assert!(SPEC_FIELDS.contains(&field.as_str()), "{source} {}: unknown spec field {field}", name_of(manifest));
            }
            assert!(spec["name"].is_string() && spec["cluster"].is_object(), "{source}: name and cluster are required");
            for field in ["kind", "name", "apiVersion"] {
                assert!(spec["cluster"][field].is_string(), "{source}: spec.cluster.{field} (an ObjectReference)");
            }
            assert!(spec.get("keep").is_none_or(|k| k.is_u64()), "{source}: keep is an integer");
        }
    }
}

/// What a pod spec names: (kind, name) of ServiceAccounts, Secrets and ConfigMaps.
fn pod_references(pod: &Value, out: &mut BTreeSet<(&'static str, String)>) {
    let mut add = |kind: &'static str, name: &Value| {
        if let Some(name) = name.as_str() {
            out.insert((kind, name.to_string()));
        }
    };
    add("ServiceAccount", &pod["serviceAccountName"]);
    for volume in pod["volumes"].as_array().into_iter().flatten() {
        add("Secret", &volume["secret"]["secretName"]);
        add("ConfigMap", &volume["configMap"]["name"]);
        for source in volume["projected"]["sources"].as_array().into_iter().flatten() {
            add("Secret", &source["secret"]["name"]);
            add("ConfigMap", &source["configMap"]["name"]);
        }
    }
    for secret in pod["imagePullSecrets"].as_array().into_iter().flatten() {
        add("Secret", &secret["name"]);
    }
    for container in ["initContainers", "containers"].iter().flat_map(|l| pod[*l].as_array().cloned().unwrap_or_default()) {
        for env in container["env"].as_array().into_iter().flatten() {
            if env["valueFrom"]["secretKeyRef"]["optional"] != true {
                add("Secret", &env["valueFrom"]["secretKeyRef"]["name"]);
            }
            if env["valueFrom"]["configMapKeyRef"]["optional"] != true {
                add("ConfigMap", &env["valueFrom"]["configMapKeyRef"]["name"]);
            }
        }
        for from in container["envFrom"].as_array().into_iter().flatten() {
            add("Secret", &from["secretRef"]["name"]);
            add("ConfigMap", &from["configMapRef"]["name"]);
        }
    }
}

fn pod_spec(manifest: &Value) -> Option<&Value> {
    match kind_of(manifest) {
        "Deployment" | "StatefulSet" => Some(&manifest["spec"]["template"]["spec"]),
        "CronJob" => Some(&manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

/// References from pod templates to objects not rendered in the pod's namespace.
fn missing_references(rendering: &Rendering) -> Vec<String> {
    let mut missing = Vec::new();
    for manifest in &rendering.manifests {
        let Some(pod) = pod_spec(manifest) else { continue };
        let namespace = manifest["metadata"]["namespace"].as_str().unwrap_or("").to_string();
        let mut refs = BTreeSet::new();
        pod_references(pod, &mut refs);
        for (kind, name) in refs {
            if !rendering.identities.contains(&(kind.to_string(), namespace.clone(), name.clone())) {
                missing.push(format!("{namespace} {}: {kind} {name} is not rendered", name_of(manifest)));
            }
        }
    }
    missing
}

#[test]
fn every_object_a_pod_references_is_rendered() {
    let without_konnectivity = fixture_topology().replace("konnectivityEnabled: true", "konnectivityEnabled: false");
    let mut missing = Vec::new();
    for (source, text) in [("kkp-fixtures", fixture_topology()), ("kkp-fixtures without konnectivity", without_konnectivity)] {
        missing.extend(missing_references(&render_text(&text)).into_iter().map(|m| format!("{source}: {m}")));
    }
    assert!(missing.is_empty(), "{} references not rendered:\n{}", missing.len(), missing.join("\n"));
}
