//! The REST protocol as clients see it.

mod common;

use common::{call, get, send};
use kkp_test_apiserver::{FaultConfig, ServerConfig, TestServer};
use serde_json::json;
use std::time::Duration;

const JSON: &str = "application/json";
const APPLY: &str = "application/apply-patch+yaml";

async fn server() -> TestServer {
    TestServer::start(ServerConfig::default()).await.unwrap()
}

async fn namespace(url: &str, name: &str) {
    let (status, _) =
        send(url, "POST", "/api/v1/namespaces", JSON, json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn crud_with_resource_versions_and_standard_errors() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let (status, created) = send(&url, "POST", "/api/v1/namespaces/ns/configmaps", JSON, cm.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(created["metadata"]["namespace"], "ns", "the namespace comes from the URL");
    assert!(created["metadata"]["uid"].is_string() && created["metadata"]["creationTimestamp"].is_string());
    let (status, again) = send(&url, "POST", "/api/v1/namespaces/ns/configmaps", JSON, cm).await;
    assert_eq!((status, again["reason"].as_str()), (409, Some("AlreadyExists")));

    // A stale resourceVersion on update is a Conflict.
    let mut stale = created.clone();
    stale["data"]["a"] = json!("2");
    let (status, updated) = send(&url, "PUT", "/api/v1/namespaces/ns/configmaps/c", JSON, stale.clone()).await;
    assert_eq!(status, 200);
    assert_ne!(updated["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);
    let (status, conflict) = send(&url, "PUT", "/api/v1/namespaces/ns/configmaps/c", JSON, stale).await;
    assert_eq!((status, conflict["reason"].as_str()), (409, Some("Conflict")));

    let (status, patched) =
        send(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/c", "application/merge-patch+json", json!({"data": {"b": "x"}})).await;
    assert_eq!((status, patched["data"].clone()), (200, json!({"a": "2", "b": "x"})));
    let (status, patched) = send(
        &url,
        "PATCH",
        "/api/v1/namespaces/ns/configmaps/c",
        "application/json-patch+json",
        json!([{"op": "remove", "path": "/data/a"}]),
    )
    .await;
    assert_eq!((status, patched["data"].clone()), (200, json!({"b": "x"})));

    assert_eq!(send(&url, "DELETE", "/api/v1/namespaces/ns/configmaps/c", JSON, json!({})).await.0, 200);
    let (status, missing) = get(&url, "/api/v1/namespaces/ns/configmaps/c").await;
    assert_eq!(
        (status, missing["reason"].as_str(), missing["message"].as_str()),
        (404, Some("NotFound"), Some("configmaps \"c\" not found"))
    );
    let (status, invalid) = send(&url, "POST", "/api/v1/namespaces/ns/configmaps", JSON, json!({"metadata": {"name": "Bad_Name"}})).await;
    assert_eq!((status, invalid["reason"].as_str()), (422, Some("Invalid")));
    // RBAC names are path segments, as on a real server: colons are fine, slashes are not.
    let role = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
    assert_eq!(send(&url, "POST", role, JSON, json!({"metadata": {"name": "kubermatic:viewer"}})).await.0, 201);
    assert_eq!(send(&url, "POST", role, JSON, json!({"metadata": {"name": ".."}})).await.0, 422);
    let (status, _) = send(&url, "POST", "/api/v1/namespaces/nope/configmaps", JSON, json!({"metadata": {"name": "x"}})).await;
    assert_eq!(status, 404, "writes into a missing namespace fail");
}

#[tokio::test]
async fn server_side_apply_tracks_field_managers() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    let path = "/api/v1/namespaces/ns/configmaps/c?&fieldManager=kkp";
    let (status, _) = send(
        &url,
        "PATCH",
        path,
        APPLY,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "1"}}),
    )
    .await;
    assert_eq!(status, 201, "apply creates a missing object");

    // Another manager setting a field kkp owns to another value conflicts, naming kkp.
    let other = "/api/v1/namespaces/ns/configmaps/c?fieldManager=kubectl";
    let (status, conflict) =
        send(&url, "PATCH", other, APPLY, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}}))
            .await;
    assert_eq!(status, 409);
    assert_eq!(conflict["message"], "Apply failed with 1 conflict: conflict with \"kkp\" using v1: .data.a");
    // The same value is shared ownership, not a conflict; force takes a field over.
    assert_eq!(
        send(&url, "PATCH", other, APPLY, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "1"}}))
            .await
            .0,
        200
    );
    let (status, forced) = send(
        &url,
        "PATCH",
        &format!("{other}&force=true"),
        APPLY,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2", "b": "1"}}),
    )
    .await;
    assert_eq!((status, forced["data"]["a"].as_str()), (200, Some("2")));
    let managers: Vec<&str> =
        forced["metadata"]["managedFields"].as_array().unwrap().iter().map(|m| m["manager"].as_str().unwrap()).collect();
    assert_eq!(managers, ["kkp", "kubectl"]);

    // A field kkp stops applying is removed unless someone else owns it.
    let (_, after) =
        send(&url, "PATCH", path, APPLY, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"c": "3"}}))
            .await;
    assert_eq!(after["data"], json!({"a": "2", "b": "1", "c": "3"}), "a and b are kubectl's now");
    let (_, after) =
        send(&url, "PATCH", other, APPLY, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}}))
            .await;
    assert_eq!(after["data"], json!({"a": "2", "c": "3"}), "b had no other owner");
}

#[tokio::test]
async fn selectors_generation_and_workload_status() {
    let s = TestServer::start(ServerConfig { ready_delay: Duration::from_millis(50), ..Default::default() }).await.unwrap();
    let url = s.url();
    namespace(&url, "ns").await;
    let deploy = |replicas: i64, app: &str| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": {"app": app}}, "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}}, "template": {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    for app in ["web", "db"] {
        assert_eq!(
            send(&url, "PATCH", &format!("/apis/apps/v1/namespaces/ns/deployments/{app}?fieldManager=t"), APPLY, deploy(2, app)).await.0,
            201
        );
    }
    let (_, list) = get(&url, "/apis/apps/v1/namespaces/ns/deployments?labelSelector=app%20in%20(web)").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = get(&url, "/apis/apps/v1/deployments?fieldSelector=metadata.name%3Ddb").await;
    assert_eq!(list["items"][0]["metadata"]["name"], "db");

    let (_, web) = get(&url, "/apis/apps/v1/namespaces/ns/deployments/web").await;
    assert!(web["status"].is_null(), "not ready at once");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (_, web) = get(&url, "/apis/apps/v1/namespaces/ns/deployments/web").await;
    assert_eq!((web["status"]["readyReplicas"].as_i64(), web["status"]["observedGeneration"].as_i64()), (Some(2), Some(1)));
    let (_, web) = send(&url, "PATCH", "/apis/apps/v1/namespaces/ns/deployments/web?fieldManager=t", APPLY, deploy(3, "web")).await;
    assert_eq!(web["metadata"]["generation"], 2, "a spec change bumps the generation");
}

#[tokio::test]
async fn namespaces_terminate_with_their_contents() {
    // Long enough that the create below surely meets the namespace still terminating.
    let config = ServerConfig { namespace_cleanup_delay: Some(Duration::from_millis(500)), ..Default::default() };
    let s = TestServer::start(config).await.unwrap();
    let url = s.url();
    namespace(&url, "ns").await;
    send(&url, "POST", "/api/v1/namespaces/ns/secrets", JSON, json!({"metadata": {"name": "s"}})).await;
    let (status, terminating) = send(&url, "DELETE", "/api/v1/namespaces/ns", JSON, json!({})).await;
    assert_eq!((status, terminating["status"]["phase"].as_str()), (200, Some("Terminating")));
    let (status, refused) = send(&url, "POST", "/api/v1/namespaces/ns/secrets", JSON, json!({"metadata": {"name": "t"}})).await;
    assert_eq!((status, refused["reason"].as_str()), (403, Some("Forbidden")));
    // Termination finishes in the background; a loaded machine may take a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while get(&url, "/api/v1/namespaces/ns").await.0 != 404 {
        assert!(std::time::Instant::now() < deadline, "the namespace was never removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.objects().is_empty());
}

#[tokio::test]
async fn watches_stay_open_and_deliver_events() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    let watch_url = url.clone();
    let watcher = tokio::spawn(async move {
        call(&watch_url, "GET", "/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=2&timeoutSeconds=1", JSON, "").await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&url, "POST", "/api/v1/namespaces/ns/configmaps", JSON, json!({"metadata": {"name": "w"}})).await;
    let started = std::time::Instant::now();
    let result = watcher.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(700), "the watch stayed open until its timeout");
    // One event arrived: the stream is that line.
    let (status, _, event) = result.unwrap();
    assert_eq!((status, event["type"].as_str(), event["object"]["metadata"]["name"].as_str()), (200, Some("ADDED"), Some("w")));
}

#[tokio::test]
async fn faults_are_injected_as_configured() {
    let s = server().await;
    let url = s.url();
    s.faults().set(FaultConfig { throttle_rate: 1.0, retry_after_secs: 2, ..Default::default() });
    let (status, retry_after, body) = call(&url, "GET", "/api/v1/namespaces", JSON, "").await.unwrap();
    assert_eq!((status, retry_after.as_deref(), body["details"]["retryAfterSeconds"].as_u64()), (429, Some("2"), Some(2)));
    s.faults().set(FaultConfig { error_rate: 1.0, error_code: 504, error_verbs: vec!["create".into()], ..Default::default() });
    assert_eq!(get(&url, "/api/v1/namespaces").await.0, 200, "only creates fail");
    assert_eq!(send(&url, "POST", "/api/v1/namespaces", JSON, json!({"metadata": {"name": "x"}})).await.0, 504);
    s.faults().set(FaultConfig { drop_rate: 1.0, ..Default::default() });
    assert!(call(&url, "GET", "/api/v1/namespaces", JSON, "").await.is_err(), "dropped without an answer");
    s.faults().clear();
    let n = s.requests().len() as u64;
    s.faults().set(FaultConfig { fail_nth: Some(n + 2), ..Default::default() });
    assert_eq!(get(&url, "/version").await.0, 200);
    assert_eq!(get(&url, "/version").await.0, 500);
    s.faults().clear();
    s.faults().set(FaultConfig { latency: Duration::from_millis(30), ..Default::default() });
    let start = std::time::Instant::now();
    get(&url, "/version").await;
    assert!(start.elapsed() >= Duration::from_millis(30));
    s.faults().refuse_connections(true);
    assert!(call(&url, "GET", "/version", JSON, "").await.is_err());
    s.faults().refuse_connections(false);
    assert_eq!(get(&url, "/version").await.0, 200);
}

#[tokio::test]
async fn bodies_that_do_not_fit_the_url_are_rejected_as_the_real_server_does() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    let post = |body| send(&url, "POST", "/api/v1/namespaces/ns/configmaps", JSON, body);
    let (status, wrong_kind) = post(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})).await;
    assert_eq!((status, wrong_kind["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(wrong_kind["message"], "ConfigMap \"x\" is invalid: kind: Invalid value: \"Secret\": must be ConfigMap");
    let (status, wrong_version) = post(json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}})).await;
    assert_eq!((status, wrong_version["reason"].as_str()), (400, Some("BadRequest")));
    assert_eq!(wrong_version["message"], "the API version in the data (apps/v1) does not match the expected API version (v1)");
    let (status, nameless) = post(json!({"metadata": {}})).await;
    assert_eq!((status, nameless["reason"].as_str()), (422, Some("Invalid")));
    let (status, elsewhere) = post(json!({"metadata": {"name": "x", "namespace": "other"}})).await;
    assert_eq!((status, elsewhere["reason"].as_str()), (400, Some("BadRequest")));
    let (status, generated) = post(json!({"metadata": {"generateName": "gen-"}})).await;
    assert_eq!(status, 201);
    assert!(generated["metadata"]["name"].as_str().unwrap().starts_with("gen-"));
}

#[tokio::test]
async fn patches_lists_and_deletes() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "a").await;
    namespace(&url, "b").await;
    for ns in ["a", "b"] {
        let body = json!({"metadata": {"name": "c", "labels": {"ns": ns}}, "data": {"k": "v"}});
        send(&url, "POST", &format!("/api/v1/namespaces/{ns}/configmaps?fieldManager=kkp"), JSON, body).await;
    }
    // Cluster-wide, with kube-rs's leading `&`.
    let (_, all) = get(&url, "/api/v1/configmaps?&limit=500").await;
    assert_eq!(all["kind"], "ConfigMapList");
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, only_b) = get(&url, "/api/v1/configmaps?&labelSelector=ns%20notin%20(a)").await;
    assert_eq!(only_b["items"][0]["metadata"]["namespace"], "b");
    let (_, none) = get(&url, "/api/v1/configmaps?labelSelector=!ns").await;
    assert_eq!(none["items"], json!([]));

    let (status, patched) = send(
        &url,
        "PATCH",
        "/api/v1/namespaces/a/configmaps/c",
        "application/strategic-merge-patch+json",
        json!({"data": {"k": null, "n": "1"}}),
    )
    .await;
    assert_eq!((status, patched["data"].clone()), (200, json!({"n": "1"})), "null deletes, as in a merge patch");
    assert_eq!(patched["metadata"]["generation"], 2, "data is outside metadata and status");
    let (status, _) = send(
        &url,
        "PATCH",
        "/api/v1/namespaces/a/configmaps/c",
        "application/json-patch+json",
        json!([{"op": "test", "path": "/data/n", "value": "2"}, {"op": "remove", "path": "/data/n"}]),
    )
    .await;
    assert_eq!(status, 422, "a failing JSON patch test changes nothing");
    assert_eq!(s.object("v1", "ConfigMap", Some("a"), "c").unwrap()["data"]["n"], "1");
    let (status, _) = send(&url, "PATCH", "/api/v1/namespaces/a/configmaps/missing", "application/merge-patch+json", json!({})).await;
    assert_eq!(status, 404);

    let (status, deleted) =
        send(&url, "DELETE", "/api/v1/namespaces/a/configmaps/c", JSON, json!({"propagationPolicy": "Background"})).await;
    assert_eq!((status, deleted["metadata"]["name"].as_str()), (200, Some("c")), "the deleted object comes back");
    let (status, again) = send(&url, "DELETE", "/api/v1/namespaces/a/configmaps/c", JSON, json!({})).await;
    assert_eq!((status, again["reason"].as_str()), (404, Some("NotFound")));
}

#[tokio::test]
async fn the_status_subresource_changes_only_the_status() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    let pvc =
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}, "spec": {"storageClassName": "ssd"}});
    send(&url, "POST", "/api/v1/namespaces/ns/persistentvolumeclaims", JSON, pvc).await;
    let (status, bound) = send(
        &url,
        "PATCH",
        "/api/v1/namespaces/ns/persistentvolumeclaims/data/status",
        "application/merge-patch+json",
        json!({"spec": {"storageClassName": "hdd"}, "status": {"phase": "Bound"}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!((bound["spec"]["storageClassName"].as_str(), bound["status"]["phase"].as_str()), (Some("ssd"), Some("Bound")));
    let (_, written) = send(
        &url,
        "PATCH",
        "/api/v1/namespaces/ns/persistentvolumeclaims/data",
        "application/merge-patch+json",
        json!({"status": {"phase": "Lost"}, "metadata": {"labels": {"x": "y"}}}),
    )
    .await;
    assert_eq!(written["status"]["phase"], "Bound", "the main resource ignores status changes");
}

#[tokio::test]
async fn the_request_log_records_what_tests_assert_on() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    s.clear_requests();
    send(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/c?&fieldManager=kkp&force=true", APPLY, json!({"metadata": {"name": "c"}})).await;
    get(&url, "/api/v1/namespaces/ns/configmaps/nope").await;
    let log = s.requests();
    assert_eq!(log.len(), 2);
    let apply = &log[0];
    assert_eq!(
        (
            apply.method.as_str(),
            apply.path.as_str(),
            apply.query.as_str(),
            apply.content_type.as_str(),
            apply.field_manager.as_deref(),
            apply.status
        ),
        ("PATCH", "/api/v1/namespaces/ns/configmaps/c", "&fieldManager=kkp&force=true", APPLY, Some("kkp"), 201)
    );
    assert_eq!((log[1].method.as_str(), log[1].status, log[1].field_manager.as_deref()), ("GET", 404, None));
    assert!(log[1].at >= apply.at);
}

#[tokio::test]
async fn a_refusing_server_also_fails_kept_alive_connections() {
    use http_body_util::{BodyExt, Full};
    let s = server().await;
    let client: hyper_util::client::legacy::Client<_, Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("{}/version", s.url()).parse().unwrap();
    let first = client.get(uri.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    first.into_body().collect().await.unwrap();
    s.faults().refuse_connections(true);
    assert!(client.get(uri.clone()).await.is_err(), "the pooled connection is no way around a dead seed");
    s.faults().refuse_connections(false);
    assert_eq!(client.get(uri).await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_same_seed_injects_the_same_faults() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let s = TestServer::start(ServerConfig {
            seed,
            faults: FaultConfig { error_rate: 0.5, error_code: 500, ..Default::default() },
            ..Default::default()
        })
        .await
        .unwrap();
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(get(&s.url(), "/api/v1/namespaces").await.0);
        }
        out
    }
    let (a, b, c) = (statuses(7).await, statuses(7).await, statuses(8).await);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.contains(&500) && a.contains(&200), "{a:?}");
}

#[tokio::test]
async fn lists_come_in_pages_and_an_expired_continue_is_gone() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    for i in 0..5 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}"), "labels": {"l": "x"}}});
        assert_eq!(send(&url, "POST", "/api/v1/namespaces/ns/configmaps", JSON, cm).await.0, 201);
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let (status, page) = get(&url, &format!("/api/v1/configmaps?labelSelector=l%3Dx&limit=2&continue={token}")).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        assert!(page["items"].as_array().unwrap().len() <= 2);
        names.extend(page["items"].as_array().unwrap().iter().map(|i| i["metadata"]["name"].as_str().unwrap().to_string()));
        match page["metadata"]["continue"].as_str() {
            Some(next) => {
                // As the real server: with a selector the rest is not counted.
                assert!(page["metadata"].get("remainingItemCount").is_none(), "{page}");
                token = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    // Without selectors the rest is counted.
    let (_, all) = get(&url, "/api/v1/configmaps?limit=2").await;
    assert_eq!(all["metadata"]["remainingItemCount"], 3, "{all}");
    let (status, bad) = get(&url, "/api/v1/configmaps?limit=2&continue=zz").await;
    assert_eq!(status, 400, "{bad}");

    // A token from before the change history's start has expired, as after etcd compaction.
    let (_, first) = get(&url, "/api/v1/configmaps?limit=1").await;
    let old = first["metadata"]["continue"].as_str().unwrap().to_string();
    for i in 0..4200 {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "churn"}, "data": {"i": i.to_string()}});
        let path = "/api/v1/namespaces/ns/configmaps/churn?fieldManager=t";
        assert!(send(&url, "PATCH", path, APPLY, cm).await.0 < 300);
    }
    let (status, gone) = get(&url, &format!("/api/v1/configmaps?limit=1&continue={old}")).await;
    assert_eq!(status, 410, "{gone}");
    assert_eq!(gone["reason"], "Expired");
}

#[tokio::test]
async fn a_dry_run_apply_answers_the_result_and_stores_nothing() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    let path = "/api/v1/namespaces/ns/configmaps/c?fieldManager=kkp";
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    assert_eq!(send(&url, "PATCH", path, APPLY, cm).await.0, 201);
    let other = "/api/v1/namespaces/ns/configmaps/c?fieldManager=kubectl-edit";
    let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
    assert_eq!(send(&url, "PATCH", &format!("{other}&force=true"), APPLY, changed).await.0, 200);
    let (_, live) = get(&url, "/api/v1/namespaces/ns/configmaps/c").await;

    let restore = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let (status, answer) = send(&url, "PATCH", &format!("{path}&dryRun=All&force=true"), APPLY, restore.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["a"], "1", "the answer is the object as it would be");
    assert_eq!(answer["metadata"]["resourceVersion"], live["metadata"]["resourceVersion"]);
    let (_, after) = get(&url, "/api/v1/namespaces/ns/configmaps/c").await;
    assert_eq!(after, live, "nothing was stored");
    // Without force the dry run reports the conflict like a real apply.
    let (status, conflict) = send(&url, "PATCH", &format!("{path}&dryRun=All"), APPLY, restore).await;
    assert_eq!(status, 409, "{conflict}");
    // A dry-run create creates nothing.
    let new = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}});
    let (status, _) = send(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/n?fieldManager=kkp&dryRun=All", APPLY, new).await;
    assert_eq!(status, 201);
    assert_eq!(get(&url, "/api/v1/namespaces/ns/configmaps/n").await.0, 404);
}

#[tokio::test]
async fn metadata_only_lists_and_gets_answer_partial_object_metadata() {
    use common::get_with;
    const LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    const ONE: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    for i in 0..3 {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("s{i}"), "labels": {"l": "x"}},
            "data": {"tls.key": "c2VjcmV0LWtleS1ieXRlcw=="}});
        assert_eq!(send(&url, "POST", "/api/v1/namespaces/ns/secrets?fieldManager=kubectl-create", JSON, secret).await.0, 201);
    }
    s.clear_requests();
    let (status, content_type, page) = get_with(&url, "/api/v1/namespaces/ns/secrets?labelSelector=l%3Dx&limit=2", LIST).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(content_type, LIST);
    assert_eq!((page["kind"].as_str(), page["apiVersion"].as_str()), (Some("PartialObjectMetadataList"), Some("meta.k8s.io/v1")));
    assert!(page["metadata"]["resourceVersion"].is_string() && page["metadata"]["continue"].is_string(), "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!((item["kind"].as_str(), item["apiVersion"].as_str()), (Some("PartialObjectMetadata"), Some("meta.k8s.io/v1")));
        assert_eq!(item["metadata"]["labels"]["l"], "x");
        assert_eq!(item["metadata"]["managedFields"][0]["manager"], "kubectl-create", "metadata is whole: {item}");
        assert_eq!(item.as_object().unwrap().len(), 3, "kind, apiVersion and metadata only: {item}");
    }
    assert!(!page.to_string().contains("c2VjcmV0"), "no Secret data in a metadata list");
    let token = page["metadata"]["continue"].as_str().unwrap();
    let (_, _, rest) = get_with(&url, &format!("/api/v1/namespaces/ns/secrets?labelSelector=l%3Dx&limit=2&continue={token}"), LIST).await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);

    let (status, content_type, one) = get_with(&url, "/api/v1/namespaces/ns/secrets/s0", ONE).await;
    assert_eq!((status, content_type.as_str(), one["kind"].as_str()), (200, ONE, Some("PartialObjectMetadata")));
    assert!(one.get("data").is_none());
    // A list asked for as one object is not a representation the server gives.
    assert_eq!(get_with(&url, "/api/v1/namespaces/ns/secrets", ONE).await.0, 406);
    // Without the metadata media type, everything as before.
    let (_, _, full) = get_with(&url, "/api/v1/namespaces/ns/secrets", "application/json").await;
    assert_eq!(full["kind"], "SecretList");
    assert_eq!(full["items"][0]["data"]["tls.key"], "c2VjcmV0LWtleS1ieXRlcw==");
    // The log keeps the representation asked for, so tests can count metadata-only reads.
    let log = s.requests();
    assert_eq!(log.iter().filter(|r| r.accept == LIST).count(), 2);
    assert_eq!(log.iter().filter(|r| r.accept == ONE).count(), 2);
}

#[tokio::test]
async fn protobuf_bodies_are_refused_with_415_so_clients_fall_back_to_json() {
    let s = server().await;
    let url = s.url();
    namespace(&url, "ns").await;
    let (status, _, answer) =
        call(&url, "POST", "/api/v1/namespaces/ns/configmaps", "application/vnd.kubernetes.protobuf", "k8s\u{0}binary").await.unwrap();
    assert_eq!(status, 415, "{answer}");
    assert_eq!((answer["kind"].as_str(), answer["reason"].as_str()), (Some("Status"), Some("UnsupportedMediaType")));
    assert!(answer["message"].as_str().unwrap().contains("application/json"), "{answer}");
    assert_eq!(get(&url, "/api/v1/namespaces/ns/configmaps").await.1["items"].as_array().unwrap().len(), 0, "nothing was stored");
    assert!(s.requests().iter().any(|r| r.method == "POST" && r.status == 415 && r.content_type.contains("protobuf")));
}
