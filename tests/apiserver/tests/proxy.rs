//! The service proxy: what a client reaching an API server behind a Service gets.

mod common;

use common::{get, send};
use kkp_test_apiserver::{ServerConfig, TestServer};
use serde_json::json;

const APPLY: &str = "application/apply-patch+yaml";

async fn apply(url: &str, path: &str, body: serde_json::Value) {
    let (status, answer) = send(url, "PATCH", &format!("{path}?fieldManager=test"), APPLY, body).await;
    assert!(status == 200 || status == 201, "{status} {answer}");
}

#[tokio::test]
async fn readyz_through_the_service_proxy_needs_the_service_ready_pods_and_obeys_the_fault_switch() {
    let server = TestServer::start(ServerConfig::default()).await.unwrap();
    let url = server.url();
    let readyz = "/api/v1/namespaces/cluster-a/services/https:apiserver-external:secure/proxy/readyz";
    apply(&url, "/api/v1/namespaces/cluster-a", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cluster-a"}})).await;

    // No Service: 404, as the real proxy answers.
    let (status, answer) = get(&url, readyz).await;
    assert_eq!((status, answer["message"].as_str()), (404, Some("services \"apiserver-external\" not found")));

    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "apiserver-external", "namespace": "cluster-a"},
        "spec": {"selector": {"app": "apiserver"}, "ports": [{"name": "secure", "port": 443, "targetPort": 6443}]}});
    apply(&url, "/api/v1/namespaces/cluster-a/services/apiserver-external", service).await;
    // A Service without ready pods behind it, or without the port: 503 from the proxy itself.
    let (status, answer) = get(&url, readyz).await;
    assert_eq!((status, answer["message"].as_str()), (503, Some("no endpoints available for service \"apiserver-external\"")));
    let (status, answer) = get(&url, "/api/v1/namespaces/cluster-a/services/https:apiserver-external:8443/proxy/readyz").await;
    assert_eq!((status, answer["reason"].as_str()), (503, Some("ServiceUnavailable")));

    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "apiserver", "namespace": "cluster-a"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "apiserver"}},
            "template": {"metadata": {"labels": {"app": "apiserver"}}, "spec": {"containers": [{"name": "apiserver", "image": "x"}]}}}});
    apply(&url, "/apis/apps/v1/namespaces/cluster-a/deployments/apiserver", deployment).await;
    assert_eq!(get(&url, readyz).await.0, 200);
    assert_eq!(get(&url, "/api/v1/namespaces/cluster-a/services/https:apiserver-external:443/proxy/livez").await.0, 200);
    assert_eq!(get(&url, "/api/v1/namespaces/cluster-a/services/https:apiserver-external:secure/proxy/nothing").await.0, 404);

    // The fault switch: this namespace's apiserver answers, but is not ready.
    server.faults().update(|f| f.readyz_failing = vec!["cluster-a".into()]);
    assert_eq!(get(&url, readyz).await.0, 500);
    assert_eq!(get(&url, "/api/v1/namespaces/cluster-a/services/https:apiserver-external:secure/proxy/livez").await.0, 200);
    server.faults().update(|f| f.readyz_failing.clear());
    assert_eq!(get(&url, readyz).await.0, 200);
    assert!(server.requests().iter().any(|r| r.path == readyz && r.status == 500));
}
