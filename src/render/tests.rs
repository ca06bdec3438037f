use super::*;
use crate::object::Kind;
use crate::topology;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role as RbacRole, RoleBinding};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn example(name: &str) -> Topology {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    topology::load(&[dir]).unwrap_or_else(|e| panic!("example {name} must load: {e}"))
}

fn roundtrip<T: serde::de::DeserializeOwned + Serialize>(manifest: &Value) {
    let typed: T = serde_json::from_value(manifest.clone()).expect("manifest parses as its typed struct");
    assert_eq!(&serde_json::to_value(typed).unwrap(), manifest, "manifest survives a round trip through its typed struct");
}

#[test]
fn every_object_of_every_example_round_trips_through_its_typed_struct() {
    for name in ["quickstart", "multi-seed"] {
        for node in topology(&example(name)) {
            let Body::Object { manifest, .. } = &node.body else { continue };
            let object = ObjectRef::of(manifest).unwrap_or_else(|| panic!("{}: manifest of no kind kkp writes", node.address));
            match object.kind {
                Kind::Namespace => roundtrip::<Namespace>(manifest),
                Kind::ServiceAccount => roundtrip::<ServiceAccount>(manifest),
                Kind::Role => roundtrip::<RbacRole>(manifest),
                Kind::RoleBinding => roundtrip::<RoleBinding>(manifest),
                Kind::ClusterRole => roundtrip::<ClusterRole>(manifest),
                Kind::ClusterRoleBinding => roundtrip::<ClusterRoleBinding>(manifest),
                Kind::Secret => roundtrip::<Secret>(manifest),
                Kind::ConfigMap => roundtrip::<ConfigMap>(manifest),
                Kind::Service => roundtrip::<Service>(manifest),
                Kind::StatefulSet => roundtrip::<StatefulSet>(manifest),
                Kind::Deployment => roundtrip::<Deployment>(manifest),
                Kind::CronJob => roundtrip::<CronJob>(manifest),
                Kind::PodDisruptionBudget => roundtrip::<PodDisruptionBudget>(manifest),
                Kind::NetworkPolicy => roundtrip::<NetworkPolicy>(manifest),
                // KKP's CRD has no k8s-openapi type; tests/fixtures.rs checks its shape.
                Kind::EtcdBackupConfig => {}
            }
        }
    }
}

#[test]
fn a_cluster_gets_kkps_objects_in_its_namespace() {
    let topo = example("quickstart");
    let nodes = cluster(&topo.clusters["qs4k7x2mzp"]);
    let names: BTreeSet<String> = nodes.iter().map(|n| n.address.to_string()).collect();
    for expected in [
        "cluster/qs4k7x2mzp/namespace",
        "cluster/qs4k7x2mzp/secret/ca",
        "cluster/qs4k7x2mzp/secret/front-proxy-ca",
        "cluster/qs4k7x2mzp/secret/apiserver-tls",
        "cluster/qs4k7x2mzp/secret/etcd-tls-certificate",
        "cluster/qs4k7x2mzp/secret/apiserver-etcd-client-certificate",
        "cluster/qs4k7x2mzp/secret/kubelet-client-certificates",
        "cluster/qs4k7x2mzp/secret/apiserver-proxy-client-certificate",
        "cluster/qs4k7x2mzp/secret/service-account-key",
        "cluster/qs4k7x2mzp/secret/konnectivityproxy-tls",
        "cluster/qs4k7x2mzp/secret/konnectivity-kubeconfig",
        "cluster/qs4k7x2mzp/secret/tokens",
        "cluster/qs4k7x2mzp/secret/admin-kubeconfig",
        "cluster/qs4k7x2mzp/secret/internal-admin-kubeconfig",
        "cluster/qs4k7x2mzp/secret/prometheus-apiserver-certificate",
        "cluster/qs4k7x2mzp/serviceaccount/etcd-launcher",
        "cluster/qs4k7x2mzp/service/etcd",
        "cluster/qs4k7x2mzp/statefulset/etcd",
        "cluster/qs4k7x2mzp/poddisruptionbudget/etcd",
        "cluster/qs4k7x2mzp/service/apiserver-external",
        "cluster/qs4k7x2mzp/deployment/apiserver",
        "cluster/qs4k7x2mzp/poddisruptionbudget/apiserver",
        "cluster/qs4k7x2mzp/service/konnectivity-server",
        "cluster/qs4k7x2mzp/configmap/kube-apiserver-egress",
        "cluster/qs4k7x2mzp/deployment/controller-manager",
        "cluster/qs4k7x2mzp/deployment/scheduler",
        "cluster/qs4k7x2mzp/deployment/machine-controller",
        "cluster/qs4k7x2mzp/deployment/usercluster-controller",
        "cluster/qs4k7x2mzp/configmap/prometheus",
        "cluster/qs4k7x2mzp/service/prometheus",
        "cluster/qs4k7x2mzp/statefulset/prometheus",
    ] {
        assert!(names.contains(expected), "missing {expected}");
    }
    // Konnectivity is the default tunnel: nothing of OpenVPN.
    assert!(!names.iter().any(|n| n.contains("openvpn")), "{names:?}");
    for node in &nodes {
        if let Some(object) = node.body.object()
            && object.kind.namespaced()
        {
            assert_eq!(object.namespace.as_deref(), Some("cluster-qs4k7x2mzp"), "{}", node.address);
        }
    }
}

fn object<'a>(nodes: &'a [DesiredNode], address: &str) -> &'a Value {
    match &nodes.iter().find(|n| n.address.as_str() == address).unwrap().body {
        Body::Object { manifest, .. } => manifest,
        other => panic!("{address} is not an object: {other:?}"),
    }
}

#[test]
fn apiserver_points_at_every_etcd_member_and_its_mounted_certificates() {
    let topo = example("quickstart");
    // qs9d3vh6rt runs five etcd members and three apiservers.
    let nodes = cluster(&topo.clusters["qs9d3vh6rt"]);
    let deployment = object(&nodes, "cluster/qs9d3vh6rt/deployment/apiserver");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let containers = deployment["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    let apiserver = containers.iter().find(|c| c["name"] == "apiserver").unwrap();
    let args: Vec<&str> = apiserver["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let value = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    let etcd = value("--etcd-servers");
    assert_eq!(etcd.matches("https://etcd-").count(), 5);
    assert!(etcd.contains("https://etcd-4.etcd.cluster-qs9d3vh6rt.svc.cluster.local.:2379"));
    assert_eq!(value("--tls-cert-file"), "/etc/kubernetes/tls/apiserver-tls.crt");
    let sts = object(&nodes, "cluster/qs9d3vh6rt/statefulset/etcd");
    assert_eq!(sts["spec"]["replicas"], 5);
    assert_eq!(sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"], "10Gi");
    assert_eq!(sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"], "kubermatic-fast");
    let pdb = object(&nodes, "cluster/qs9d3vh6rt/poddisruptionbudget/etcd");
    assert_eq!(pdb["spec"]["minAvailable"], 3);
    // Tunneling exposes the apiserver through SNI on a ClusterIP Service.
    let svc = object(&nodes, "cluster/qs9d3vh6rt/service/apiserver-external");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["metadata"]["annotations"]["nodeport-proxy.k8s.io/expose"], "SNI,Tunneling");
}

#[test]
fn certificate_subjects_follow_kkp() {
    let topo = example("quickstart");
    let nodes = cluster(&topo.clusters["qs4k7x2mzp"]);
    let request = |name: &str| match &nodes.iter().find(|n| n.address.as_str() == format!("cluster/qs4k7x2mzp/secret/{name}")).unwrap().body
    {
        Body::Secret { request, .. } => request.clone(),
        _ => unreachable!(),
    };
    assert_eq!(request("ca").common_name, "root-ca.qs4k7x2mzp.europe.kkp.example.com");
    let tls = request("apiserver-tls");
    assert_eq!(tls.common_name, "kube-apiserver");
    assert!(tls.dns_names.contains(&"qs4k7x2mzp.europe.kkp.example.com".to_string()));
    assert!(tls.ip_addresses.contains(&"10.240.16.1".parse().unwrap()));
    assert_eq!(tls.issuer.as_ref().unwrap().as_str(), "cluster/qs4k7x2mzp/secret/ca");
    assert_eq!(request("kubelet-client-certificates").organizations, vec!["system:masters"]);
    assert_eq!(request("apiserver-proxy-client-certificate").issuer.unwrap().as_str(), "cluster/qs4k7x2mzp/secret/front-proxy-ca");
    assert_eq!(request("konnectivityproxy-tls").issuer.unwrap().as_str(), "cluster/qs4k7x2mzp/secret/ca");
}

#[test]
fn every_dependency_is_a_rendered_node_and_rendering_is_deterministic() {
    for name in ["quickstart", "multi-seed"] {
        let topo = example(name);
        let nodes = topology(&topo);
        let addresses: BTreeSet<&Address> = nodes.iter().map(|n| &n.address).collect();
        assert_eq!(addresses.len(), nodes.len(), "addresses are unique");
        for node in &nodes {
            for dep in &node.deps {
                assert!(addresses.contains(dep), "{} depends on unknown {dep}", node.address);
            }
            if let Body::Object { manifest, fingerprints } = &node.body {
                for f in fingerprints {
                    assert_eq!(manifest.pointer(&f.pointer).and_then(Value::as_str), Some(crate::object::KNOWN_AFTER_APPLY));
                    assert!(node.deps.contains(&f.mounted), "{} carries {} but does not depend on it", node.address, f.mounted);
                }
            }
        }
        let again = topology(&topo);
        let bodies = |nodes: &[DesiredNode]| nodes.iter().map(|n| serde_json::to_string(&n.body).unwrap()).collect::<Vec<_>>();
        assert_eq!(bodies(&nodes), bodies(&again));
    }
}

#[test]
fn the_configuration_can_choose_ecdsa_for_the_main_pki() {
    let text = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart/kkp.yaml")).unwrap();
    let text = text.replacen(
        "  name: kubermatic\n  namespace: kubermatic\n",
        "  name: kubermatic\n  namespace: kubermatic\n  annotations:\n    kkp.k8c.io/key-algorithm: ECDSA-P256\n",
        1,
    );
    let topo = topology::load_str(std::path::Path::new("kkp.yaml"), &text).unwrap();
    for node in cluster(&topo.clusters["qs4k7x2mzp"]) {
        if let Body::Secret { request, .. } = node.body {
            assert_eq!(request.key, crate::pki::KeyAlgorithm::EcdsaP256, "{}", node.address);
        }
    }
    let bad = text.replace("ECDSA-P256", "DSA");
    let err = topology::load_str(std::path::Path::new("kkp.yaml"), &bad).unwrap_err().to_string();
    assert!(err.contains("annotation kkp.k8c.io/key-algorithm is \"DSA\""), "{err}");
}

#[test]
fn an_outline_is_the_rendering_with_manifests_cut_to_their_identity() {
    let generated = crate::topology::generate::generate(&crate::topology::generate::Spec { seeds: 2, clusters: 8, ..Default::default() });
    let generated = topology::load_str(std::path::Path::new("generated.yaml"), &generated).unwrap();
    let mut clusters = 0;
    for topology in [example("quickstart"), example("multi-seed"), generated] {
        for cluster in topology.clusters.values() {
            let outline = cluster_outline(cluster);
            // Rendered after the outline, on the same thread: the outline must not leak into it.
            let full = self::cluster(cluster);
            assert_eq!(outline.len(), full.len(), "{}: the outline has every node", cluster.name);
            for (o, f) in outline.iter().zip(&full) {
                assert_eq!((&o.address, &o.seed, &o.cluster, o.role, &o.deps), (&f.address, &f.seed, &f.cluster, f.role, &f.deps));
                match (&o.body, &f.body) {
                    (Body::Object { manifest: cut, fingerprints: cut_refs }, Body::Object { manifest, fingerprints }) => {
                        assert_eq!(ObjectRef::of(cut), ObjectRef::of(manifest), "{}", f.address);
                        assert!(ObjectRef::of(cut).is_some(), "{}: the outline names its object", f.address);
                        assert_eq!(cut.as_object().map(|m| m.len()), Some(3), "{}: only apiVersion, kind, metadata: {cut}", f.address);
                        assert_ne!(cut, manifest, "{}: the full rendering says more than the identity", f.address);
                        assert_eq!(cut_refs, fingerprints, "{}", f.address);
                    }
                    (cut, body) => assert_eq!(cut, body, "{}: bodies without manifests are the same", f.address),
                }
            }
            clusters += 1;
        }
    }
    assert!(clusters >= 10);
}
