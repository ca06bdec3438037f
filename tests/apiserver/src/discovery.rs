//! Discovery (`/api`, `/apis`, aggregated and legacy), `/version`, and the minimal
//! `/openapi/v3` documents kubectl's default validation needs.

use crate::resources::Resource;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const VERBS: [&str; 8] = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Content type of aggregated discovery documents.
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `/version`: minor 32, so kubectl's version dispatcher picks its 1.32 client.
pub fn version() -> Value {
    json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-kkp-test", "gitCommit": "0000000", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc", "platform": "linux/amd64"})
}

fn groups(resources: &[Resource]) -> BTreeMap<(String, String), Vec<&Resource>> {
    let mut out: BTreeMap<(String, String), Vec<&Resource>> = BTreeMap::new();
    for r in resources {
        out.entry((r.group.clone(), r.version.clone())).or_default().push(r);
    }
    out
}

/// Aggregated discovery of the core group (`core = true`) or of the named groups.
pub fn aggregated(resources: &[Resource], core: bool) -> Value {
    let items: Vec<Value> = groups(resources)
        .into_iter()
        .filter(|((group, _), _)| group.is_empty() == core)
        .map(|((group, version), rs)| {
            let resources: Vec<Value> = rs
                .iter()
                .map(|r| {
                    json!({"resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                           "scope": if r.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": r.singular,
                           "shortNames": r.short_names, "categories": r.categories(), "verbs": VERBS})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !core {
                metadata["name"] = json!(group);
            }
            json!({"metadata": metadata, "versions": [{"version": version, "freshness": "Current", "resources": resources}]})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// Legacy `/api`.
pub fn legacy_core(address: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]})
}

/// Legacy `/apis`.
pub fn legacy_groups(resources: &[Resource]) -> Value {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        let versions = groups.entry(r.group.clone()).or_default();
        if !versions.contains(&r.version) {
            versions.push(r.version.clone());
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, versions)| {
            let list: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v})).collect();
            json!({"name": name, "versions": list, "preferredVersion": list[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/v1` or `/apis/<group>/<version>`; None if no such group version.
pub fn resource_list(resources: &[Resource], group: &str, version: &str) -> Option<Value> {
    let list: Vec<Value> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .map(|r| json!({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind, "verbs": VERBS, "shortNames": r.short_names, "categories": r.categories()}))
        .collect();
    if list.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}))
}

/// `/openapi/v3`: one entry per group version.
pub fn openapi_root(resources: &[Resource]) -> Value {
    let mut paths = serde_json::Map::new();
    for (group, version) in groups(resources).keys() {
        let path = if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") };
        paths.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash=kkp")}));
    }
    json!({"paths": paths})
}

/// `/openapi/v3/<gv path>`: a PATCH operation per kind carrying its group-version-kind and the
/// `fieldValidation` parameter, which is all kubectl's validation asks of it.
pub fn openapi_group(resources: &[Resource], group: &str, version: &str) -> Option<Value> {
    let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
    let mut paths = serde_json::Map::new();
    for r in resources.iter().filter(|r| r.group == group && r.version == version) {
        let path = if r.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
        } else {
            format!("{prefix}/{}/{{name}}", r.plural)
        };
        let operation = |verb: &str| {
            json!({"operationId": format!("{verb}{}", r.kind), "x-kubernetes-action": verb,
                   "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
                   "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                   "responses": {"200": {"description": "OK"}}})
        };
        paths.insert(path, json!({"patch": operation("patch"), "put": operation("put")}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths, "components": {"schemas": {}}}))
}
