//! Server-side apply as kkp relies on it: ownership per field manager, keyed lists,
//! conflicts naming the owner, pruning, and managedFields in the real format.

mod common;

use common::{call, send};
use kkp_test_apiserver::{ServerConfig, TestServer};
use serde_json::{Value, json};

const APPLY: &str = "application/apply-patch+yaml";
const PATH: &str = "/apis/apps/v1/namespaces/ns/deployments/web";

async fn server() -> (TestServer, String) {
    let s = TestServer::start(ServerConfig::default()).await.unwrap();
    let url = s.url();
    send(&url, "POST", "/api/v1/namespaces", "application/json", json!({"metadata": {"name": "ns"}})).await;
    (s, url)
}

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"}, "spec": spec})
}

fn containers(c: Value) -> Value {
    json!({"template": {"spec": {"containers": c}}})
}

fn manager<'a>(object: &'a Value, name: &str) -> &'a Value {
    object["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == name)
        .unwrap_or_else(|| panic!("{name} in {object}"))
}

#[tokio::test]
async fn containers_are_keyed_by_name_so_two_managers_share_a_pod_template() {
    let (_s, url) = server().await;
    let kkp = format!("{PATH}?fieldManager=kkp");
    let injector = format!("{PATH}?fieldManager=injector");
    let mut app = deployment(containers(json!([{"name": "app", "image": "app:1", "args": ["--a"]}])));
    app["spec"]["replicas"] = json!(2);
    assert_eq!(send(&url, "PATCH", &kkp, APPLY, app).await.0, 201);
    let (status, both) = send(&url, "PATCH", &injector, APPLY, deployment(containers(json!([{"name": "sidecar", "image": "s:1"}])))).await;
    assert_eq!(status, 200);
    let names: Vec<&str> =
        both["spec"]["template"]["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "sidecar"]);

    // The managedFields entry is what `kubectl get -o yaml --show-managed-fields` prints.
    let entry = manager(&both, "kkp");
    assert_eq!(
        (entry["operation"].as_str(), entry["apiVersion"].as_str(), entry["fieldsType"].as_str()),
        (Some("Apply"), Some("apps/v1"), Some("FieldsV1"))
    );
    let app_fields = &entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"];
    assert_eq!(app_fields, &json!({".": {}, "f:args": {}, "f:image": {}, "f:name": {}}));
    assert_eq!(entry["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

    // Changing kkp's container is a conflict naming kkp and the keyed path.
    let (status, conflict) =
        send(&url, "PATCH", &injector, APPLY, deployment(containers(json!([{"name": "app", "image": "app:2"}])))).await;
    assert_eq!(status, 409);
    assert_eq!(conflict["reason"], "Conflict");
    assert_eq!(
        conflict["message"],
        "Apply failed with 1 conflict: conflict with \"kkp\" using apps/v1: .spec.template.spec.containers[name=\"app\"].image"
    );

    // Lists of scalars are atomic: kkp applying without args removes them, and the sidecar
    // (someone else's) stays.
    let (_, pruned) = send(&url, "PATCH", &kkp, APPLY, deployment(containers(json!([{"name": "app", "image": "app:1"}])))).await;
    let listed = &pruned["spec"]["template"]["spec"]["containers"];
    assert_eq!(listed, &json!([{"name": "app", "image": "app:1"}, {"name": "sidecar", "image": "s:1"}]));
    assert!(pruned["spec"].get("replicas").is_none(), "replicas were kkp's alone, and it stopped applying them");
}

#[tokio::test]
async fn an_update_takes_ownership_and_a_later_apply_conflicts_with_it() {
    let (_s, url) = server().await;
    let kkp = format!("{PATH}?fieldManager=kkp");
    assert_eq!(send(&url, "PATCH", &kkp, APPLY, deployment(json!({"replicas": 2}))).await.0, 201);
    let (status, scaled) = send(
        &url,
        "PATCH",
        &format!("{PATH}?fieldManager=kubectl-scale"),
        "application/merge-patch+json",
        json!({"spec": {"replicas": 5}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(manager(&scaled, "kubectl-scale")["operation"], "Update");
    let (status, conflict) = send(&url, "PATCH", &kkp, APPLY, deployment(json!({"replicas": 2}))).await;
    assert_eq!(
        (status, conflict["message"].as_str()),
        (409, Some("Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"))
    );
    let (status, forced) = send(&url, "PATCH", &format!("{kkp}&force=true"), APPLY, deployment(json!({"replicas": 2}))).await;
    assert_eq!((status, forced["spec"]["replicas"].as_i64()), (200, Some(2)));
    let managers: Vec<&str> =
        forced["metadata"]["managedFields"].as_array().unwrap().iter().map(|m| m["manager"].as_str().unwrap()).collect();
    assert_eq!(managers, ["kkp"], "forcing took the only field kubectl-scale had");
}

#[tokio::test]
async fn apply_accepts_yaml_bodies_and_requires_a_field_manager() {
    let (s, url) = server().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  mode: \"0755\"\n";
    let (status, _, created) = call(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/c?fieldManager=kkp", APPLY, yaml).await.unwrap();
    assert_eq!((status, created["data"]["mode"].as_str()), (201, Some("0755")));
    let (status, _, again) = call(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/c?fieldManager=kkp", APPLY, yaml).await.unwrap();
    assert_eq!(status, 200);
    assert!(again["metadata"]["resourceVersion"].is_string());
    assert_eq!(again["metadata"]["generation"], created["metadata"]["generation"], "an identical apply changes nothing that counts");
    let (status, _, missing) = call(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/c", APPLY, yaml).await.unwrap();
    assert_eq!((status, missing["reason"].as_str()), (400, Some("BadRequest")));
    let stale = yaml.replace("name: c\n", "name: c\n  resourceVersion: \"1\"\n");
    let (status, _, conflict) = call(&url, "PATCH", "/api/v1/namespaces/ns/configmaps/c?fieldManager=kkp", APPLY, &stale).await.unwrap();
    assert_eq!((status, conflict["reason"].as_str()), (409, Some("Conflict")), "a resourceVersion is a precondition");
    assert_eq!(s.object("v1", "ConfigMap", Some("ns"), "c").unwrap()["data"]["mode"], "0755");
}
