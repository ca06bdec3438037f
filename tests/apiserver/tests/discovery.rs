//! Discovery and OpenAPI, in the forms kubectl and kube-rs ask for, including kinds a test
//! registers.

mod common;

use common::{get_with, send};
use kkp_test_apiserver::{Resource, ServerConfig, TestServer};
use serde_json::{Value, json};

const AGGREGATED_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

async fn kubermatic() -> TestServer {
    TestServer::start(ServerConfig {
        extra_resources: vec![
            Resource::new("kubermatic.k8c.io", "v1", "clusters", "Cluster", false, &[]),
            Resource::new("kubermatic.k8c.io", "v1", "seeds", "Seed", true, &[]),
        ],
        ..Default::default()
    })
    .await
    .unwrap()
}

fn names(list: &Value, field: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|v| v[field].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test]
async fn aggregated_discovery_when_asked_for_and_legacy_otherwise() {
    let s = kubermatic().await;
    let url = s.url();
    let (status, content_type, apis) = get_with(&url, "/apis", AGGREGATED_ACCEPT).await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    let groups: Vec<String> =
        apis["items"].as_array().unwrap().iter().map(|g| g["metadata"]["name"].as_str().unwrap().to_string()).collect();
    for group in ["apps", "coordination.k8s.io", "kubermatic.k8c.io", "policy", "rbac.authorization.k8s.io"] {
        assert!(groups.contains(&group.to_string()), "{group} in {groups:?}");
    }
    let kubermatic = apis["items"].as_array().unwrap().iter().find(|g| g["metadata"]["name"] == "kubermatic.k8c.io").unwrap();
    let scopes: Vec<(String, String)> = kubermatic["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_string(), r["scope"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(scopes, [("clusters".to_string(), "Cluster".to_string()), ("seeds".to_string(), "Namespaced".to_string())]);

    let (_, content_type, core) = get_with(&url, "/api", "application/json").await;
    assert_eq!(
        (content_type.as_str(), core["kind"].as_str(), core["versions"].clone()),
        ("application/json", Some("APIVersions"), json!(["v1"]))
    );
    let (_, _, legacy) = get_with(&url, "/apis", "application/json").await;
    assert_eq!(legacy["kind"], "APIGroupList");
    let (_, _, v1) = get_with(&url, "/api/v1", "application/json").await;
    let resources = names(&v1["resources"], "name");
    for plural in ["namespaces", "configmaps", "secrets", "services", "serviceaccounts", "pods", "persistentvolumeclaims", "events"] {
        assert!(resources.contains(&plural.to_string()), "{plural}");
    }
    let (status, _, _) = get_with(&url, "/apis/kubermatic.k8c.io/v2", "application/json").await;
    assert_eq!(status, 404, "an unknown group version");
    let (_, _, version) = get_with(&url, "/version", "application/json").await;
    assert_eq!((version["major"].as_str(), version["minor"].as_str()), (Some("1"), Some("32")));
}

#[tokio::test]
async fn openapi_documents_carry_what_kubectl_validation_reads() {
    let s = kubermatic().await;
    let (_, _, root) = get_with(&s.url(), "/openapi/v3", "application/json").await;
    let relative = root["paths"]["apis/apps/v1"]["serverRelativeURL"].as_str().unwrap();
    let (status, _, apps) = get_with(&s.url(), relative, "application/json").await;
    assert_eq!(status, 200);
    let patch = &apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(patch["x-kubernetes-group-version-kind"], json!({"group": "apps", "version": "v1", "kind": "Deployment"}));
    assert!(names(&patch["parameters"], "name").contains(&"fieldValidation".to_string()));
    let (_, _, kkp) = get_with(&s.url(), "/openapi/v3/apis/kubermatic.k8c.io/v1", "application/json").await;
    assert!(kkp["paths"]["/apis/kubermatic.k8c.io/v1/clusters/{name}"]["patch"].is_object(), "cluster-scoped path: {kkp}");
}

#[tokio::test]
async fn registered_kinds_are_served_with_their_scope() {
    let s = kubermatic().await;
    let url = s.url();
    let cluster =
        json!({"apiVersion": "kubermatic.k8c.io/v1", "kind": "Cluster", "metadata": {"name": "abc"}, "spec": {"version": "1.31.2"}});
    let (status, created) = send(&url, "POST", "/apis/kubermatic.k8c.io/v1/clusters", "application/json", cluster).await;
    assert_eq!(status, 201);
    assert!(created["metadata"].get("namespace").is_none(), "cluster-scoped");
    let seed = json!({"apiVersion": "kubermatic.k8c.io/v1", "kind": "Seed", "metadata": {"name": "eu"}});
    let (status, missing) =
        send(&url, "POST", "/apis/kubermatic.k8c.io/v1/namespaces/kubermatic/seeds", "application/json", seed.clone()).await;
    assert_eq!((status, missing["message"].as_str()), (404, Some("namespaces \"kubermatic\" not found")));
    send(&url, "POST", "/api/v1/namespaces", "application/json", json!({"metadata": {"name": "kubermatic"}})).await;
    assert_eq!(send(&url, "POST", "/apis/kubermatic.k8c.io/v1/namespaces/kubermatic/seeds", "application/json", seed).await.0, 201);
    assert_eq!(s.object("kubermatic.k8c.io/v1", "Cluster", None, "abc").unwrap()["spec"]["version"], "1.31.2");
    assert!(s.object("kubermatic.k8c.io/v1", "Seed", Some("kubermatic"), "eu").is_some());
    let (status, _) = common::get(&url, "/apis/kubermatic.k8c.io/v1/namespaces/kubermatic/clusters").await;
    assert_eq!(status, 404, "a cluster-scoped kind has no namespaced path");
}
