//! Watches as kube-rs and kubectl use them: open until their timeout, events in order,
//! through selectors.

mod common;

use common::{Watch, send};
use kkp_test_apiserver::{ServerConfig, TestServer};
use serde_json::json;
use std::time::Duration;

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

async fn server_with_namespace() -> (TestServer, String) {
    let s = TestServer::start(ServerConfig::default()).await.unwrap();
    let url = s.url();
    send(&url, "POST", "/api/v1/namespaces", JSON, json!({"metadata": {"name": "ns"}})).await;
    (s, url)
}

async fn configmap(url: &str, name: &str, tier: &str) {
    let body = json!({"metadata": {"name": name, "labels": {"tier": tier}}, "data": {"k": "v"}});
    assert_eq!(send(url, "POST", "/api/v1/namespaces/ns/configmaps", JSON, body).await.0, 201);
}

#[tokio::test]
async fn a_watch_without_resource_version_starts_with_current_objects_then_follows_changes() {
    let (_s, url) = server_with_namespace().await;
    configmap(&url, "a", "web").await;
    configmap(&url, "b", "db").await;
    let mut w = Watch::start(&url, "/api/v1/namespaces/ns/configmaps?&watch=1&timeoutSeconds=10").await;
    assert_eq!(w.next().await.0, "ADDED");
    assert_eq!(w.next().await.0, "ADDED");

    send(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/a", MERGE, json!({"data": {"k": "w"}})).await;
    let (kind, name, object) = w.next().await;
    assert_eq!((kind.as_str(), name.as_str(), object["data"]["k"].as_str()), ("MODIFIED", "a", Some("w")));
    send(&url, "DELETE", "/api/v1/namespaces/ns/configmaps/b", JSON, json!({})).await;
    let (kind, name, _) = w.next().await;
    assert_eq!((kind.as_str(), name.as_str()), ("DELETED", "b"));
    assert_eq!(w.ended_within(Duration::from_millis(300)).await, None, "the watch stays open");
}

#[tokio::test]
async fn label_selectors_turn_objects_leaving_and_entering_the_selection_into_deletes_and_adds() {
    let (_s, url) = server_with_namespace().await;
    configmap(&url, "a", "web").await;
    let mut w = Watch::start(&url, "/api/v1/namespaces/ns/configmaps?watch=true&labelSelector=tier%3Dweb&timeoutSeconds=10").await;
    assert_eq!(w.next().await.1, "a");
    configmap(&url, "other", "db").await;
    send(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/a", MERGE, json!({"metadata": {"labels": {"tier": "db"}}})).await;
    let (kind, name, _) = w.next().await;
    assert_eq!((kind.as_str(), name.as_str()), ("DELETED", "a"), "a left the selection; the db object was never seen");
    send(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/other", MERGE, json!({"metadata": {"labels": {"tier": "web"}}})).await;
    let (kind, name, _) = w.next().await;
    assert_eq!((kind.as_str(), name.as_str()), ("ADDED", "other"));
}

#[tokio::test]
async fn a_watch_from_a_resource_version_replays_what_changed_since_and_ends_at_its_timeout() {
    let (_s, url) = server_with_namespace().await;
    configmap(&url, "a", "web").await;
    let (_, list) = common::get(&url, "/api/v1/namespaces/ns/configmaps").await;
    let version = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    // Changed between the list and the watch, as happens to every list-then-watch client.
    configmap(&url, "b", "web").await;
    let mut w =
        Watch::start(&url, &format!("/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion={version}&timeoutSeconds=1")).await;
    let (kind, name, _) = w.next().await;
    assert_eq!((kind.as_str(), name.as_str()), ("ADDED", "b"), "only the change after the list");
    let started = std::time::Instant::now();
    assert_eq!(w.ended_within(Duration::from_secs(3)).await, Some(true));
    assert!(started.elapsed() >= Duration::from_millis(500), "open until timeoutSeconds, not ended at once");
}

#[tokio::test]
async fn streaming_lists_end_their_initial_events_with_a_bookmark() {
    let (_s, url) = server_with_namespace().await;
    configmap(&url, "a", "web").await;
    let mut w = Watch::start(
        &url,
        "/api/v1/namespaces/ns/configmaps?&watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=10",
    )
    .await;
    assert_eq!(w.next().await.0, "ADDED");
    let (kind, _, bookmark) = w.next().await;
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"], "true");
    assert!(bookmark["metadata"]["resourceVersion"].as_str().unwrap().parse::<u64>().is_ok());
}

#[tokio::test]
async fn cluster_wide_watches_see_every_namespace() {
    let (_s, url) = server_with_namespace().await;
    send(&url, "POST", "/api/v1/namespaces", JSON, json!({"metadata": {"name": "other"}})).await;
    let mut w = Watch::start(&url, "/api/v1/configmaps?watch=true&resourceVersion=0&fieldSelector=metadata.namespace%3Dother").await;
    configmap(&url, "in-ns", "web").await;
    send(&url, "POST", "/api/v1/namespaces/other/configmaps", JSON, json!({"metadata": {"name": "in-other"}})).await;
    let (kind, name, object) = w.next().await;
    assert_eq!((kind.as_str(), name.as_str(), object["metadata"]["namespace"].as_str()), ("ADDED", "in-other", Some("other")));
}
