//! Resource requests: get, list, watch, create, update, patch (merge, strategic-as-merge,
//! JSON, server-side apply) and delete, with resourceVersions, generations, field managers,
//! namespace lifecycle and simulated workload status.

use crate::Server;
use crate::fields::{self, Path};
use crate::resources::Resource;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::ApiError;
use crate::store::{self, Key, Manager, Stored};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// A parsed resource path.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource type.
    pub resource: Resource,
    /// Namespace from the URL ("" when none).
    pub namespace: String,
    /// Object name (None for a collection).
    pub name: Option<String>,
    /// `status` subresource.
    pub status: bool,
}

/// Parses `/api/v1/...` or `/apis/<g>/<v>/...`; None when it is not a resource path.
pub fn parse_path(resources: &[Resource], path: &str) -> Option<Result<Target, ApiError>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => ("", *v, rest),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => (*g, *v, rest),
        _ => return None,
    };
    let find = |plural: &str| resources.iter().find(|r| r.group == group && r.version == version && r.plural == plural).cloned();
    let missing = |plural: &str| Some(Err(ApiError::not_found(group, plural, "")));
    let (plural, namespace, name, status) = match rest {
        ["namespaces", ns, plural] => (*plural, *ns, None, false),
        ["namespaces", ns, plural, name] => (*plural, *ns, Some(*name), false),
        ["namespaces", ns, plural, name, "status"] => (*plural, *ns, Some(*name), true),
        [plural] => (*plural, "", None, false),
        [plural, name] => (*plural, "", Some(*name), false),
        [plural, name, "status"] => (*plural, "", Some(*name), true),
        _ => return missing(rest.first().copied().unwrap_or_default()),
    };
    let Some(resource) = find(plural) else { return missing(plural) };
    if !namespace.is_empty() && !resource.namespaced {
        return missing(plural);
    }
    Some(Ok(Target { resource, namespace: namespace.into(), name: name.map(str::to_string), status }))
}

/// What a handler answers.
pub enum Reply {
    /// A JSON body with this status.
    Json(u16, Value),
    /// A watch stream.
    Watch(tokio::sync::mpsc::Receiver<bytes::Bytes>),
    /// A JSON body already serialised, with its media type.
    Raw(u16, Vec<u8>, &'static str),
}

/// The verb name of a request, for faults and the log.
pub fn verb(method: &http::Method, target: &Target, query: &HashMap<String, String>) -> &'static str {
    let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
    match (method.as_str(), target.name.is_some()) {
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

/// Serves one resource request.
pub async fn serve(
    server: &Arc<Server>,
    method: &http::Method,
    target: Target,
    query: &HashMap<String, String>,
    content_type: &str,
    accept: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    match verb(method, &target, query) {
        "get" => get(server, &target),
        "list" => list(server, &target, query, accept),
        "watch" => watch(server, &target, query, crate::table::wanted(accept)),
        "create" => create(server, &target, query, body),
        "update" => update(server, &target, query, body),
        "patch" if content_type.starts_with("application/apply-patch") => apply(server, &target, query, body),
        "patch" => patch(server, &target, query, content_type, body),
        "delete" => delete(server, &target),
        "deletecollection" => delete_collection(server, &target, query),
        _ => Err(ApiError::method_not_allowed()),
    }
}

fn key_of(target: &Target, name: &str) -> Key {
    store::key(&target.resource, &target.namespace, name)
}

fn not_found(target: &Target, name: &str) -> ApiError {
    ApiError::not_found(&target.resource.group, &target.resource.plural, name)
}

fn get(server: &Server, target: &Target) -> Result<Reply, ApiError> {
    let name = target.name.as_deref().unwrap_or_default();
    let stored = server.store.get(&key_of(target, name)).ok_or_else(|| not_found(target, name))?;
    Ok(Reply::Json(200, stored.rendered()))
}

fn selectors(query: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default()).map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default()).map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// Whether `key` is in the collection `target` names (all namespaces when it names none).
fn in_scope(target: &Target) -> impl Fn(&Key) -> bool + Send + 'static {
    let resource_key = format!("{}/{}", target.resource.group, target.resource.plural);
    let namespace = target.namespace.clone();
    move |(r, ns, _): &Key| *r == resource_key && (namespace.is_empty() || *ns == namespace)
}

/// Whether `stored` passes both selectors (labels from the kept labels; a field selector,
/// rare, reads the metadata).
fn selected(labels: &LabelSelector, fields: &FieldSelector, stored: &Stored) -> bool {
    labels.matches_labels(|k| stored.label(k)) && (fields.is_empty() || fields.matches(&json!({"metadata": stored.metadata()})))
}

/// The resourceVersion and the objects of the collection that pass the selectors.
fn matching(server: &Server, target: &Target, labels: &LabelSelector, fields: &FieldSelector) -> (u64, Vec<Value>) {
    let (version, objects) = server.store.snapshot(in_scope(target));
    let items = objects.into_iter().filter(|s| selected(labels, fields, s)).map(|s| s.rendered()).collect();
    (version, items)
}

/// A list, in pages when the client sets `limit`: `metadata.continue` then names the
/// snapshot's resourceVersion and the last key served. A token whose resourceVersion fell out
/// of the change history is expired (410 Gone, as after etcd compaction). A metadata-only list
/// (`as=PartialObjectMetadataList`) renders only its items' metadata.
fn list(server: &Server, target: &Target, query: &HashMap<String, String>, accept: &str) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(query)?;
    let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let token = query.get("continue").filter(|t| !t.is_empty());
    let mut after = None;
    let mut at = None;
    if let Some(token) = token {
        let (version, last) = decode_continue(token).ok_or_else(|| ApiError::bad_request(format!("continue key is not valid: {token}")))?;
        if !server.store.remembers(version) {
            return Err(ApiError {
                code: 410,
                reason: "Expired",
                message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(),
                details: Value::Null,
            });
        }
        at = Some(version);
        after = Some(last);
    }
    let resource = format!("{}/{}", target.resource.group, target.resource.plural);
    let keep = |s: &store::Stored| selected(&labels, &fields, s);
    // As the real server: the rest is counted only for a list without selectors.
    let count = [query.get("labelSelector"), query.get("fieldSelector")].iter().all(|s| s.is_none_or(|s| s.is_empty()));
    let list_metadata = |items_last: Option<(String, String)>, current: u64, rest: usize| {
        let version = at.unwrap_or(current);
        let mut metadata = json!({"resourceVersion": version.to_string()});
        if rest > 0 {
            metadata["continue"] = json!(encode_continue(version, &items_last.unwrap_or_default()));
            if count {
                metadata["remainingItemCount"] = json!(rest);
            }
        }
        metadata
    };
    if crate::metadata::wanted(accept) == crate::metadata::Wanted::List && !crate::table::wanted(accept) {
        // Metadata only: each item's metadata written straight to JSON (its managed fields
        // serialised once per distinct field set), so a fleet-sized list builds no trees.
        let (current, items, rest) = server.store.page(&resource, &target.namespace, after, keep, limit, count, |key, stored| {
            (key.1.clone(), key.2.clone(), stored.metadata_json())
        });
        let metadata = list_metadata(items.last().map(|(ns, name, _)| (ns.clone(), name.clone())), current, rest);
        let mut body = format!(r#"{{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{metadata},"items":["#);
        for (i, (_, _, item)) in items.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(r#"{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":"#);
            body.push_str(item);
            body.push('}');
        }
        body.push_str("]}");
        return Ok(Reply::Raw(200, body.into_bytes(), crate::metadata::content_type(crate::metadata::Wanted::List)));
    }
    let (current, items, rest) = server.store.page(&resource, &target.namespace, after, keep, limit, count, |_, s| s.rendered());
    let metadata = list_metadata(items.last().map(item_key), current, rest);
    Ok(Reply::Json(
        200,
        json!({"kind": format!("{}List", target.resource.kind), "apiVersion": target.resource.api_version(), "metadata": metadata, "items": items}),
    ))
}

/// Namespace and name, the order lists are served in.
fn item_key(item: &Value) -> (String, String) {
    let part = |p: &str| item.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    (part("/metadata/namespace"), part("/metadata/name"))
}

/// An opaque token (hex, so it needs no escaping in a URL).
fn encode_continue(version: u64, (namespace, name): &(String, String)) -> String {
    format!("{version}\n{namespace}\n{name}").bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    let text = String::from_utf8(bytes?).ok()?;
    let mut parts = text.splitn(3, '\n');
    let version = parts.next()?.parse().ok()?;
    Some((version, (parts.next()?.to_string(), parts.next()?.to_string())))
}

/// Default watch length when the client gives no `timeoutSeconds`.
const WATCH_TIMEOUT: u64 = 300;

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Streams changes as newline-delimited events until `timeoutSeconds`; a watch that ended at
/// once would make clients spin. Without a resourceVersion (or "0"), or with
/// `sendInitialEvents=true`, it starts with the current objects as ADDED; from a
/// resourceVersion it replays the recent changes after it.
fn watch(server: &Arc<Server>, target: &Target, query: &HashMap<String, String>, as_table: bool) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(query)?;
    let flag = |name: &str| matches!(query.get(name).map(String::as_str), Some("true" | "1"));
    let since: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    let send_initial = flag("sendInitialEvents");
    let initial_list = since == 0 || send_initial;
    let bookmarks = flag("allowWatchBookmarks");
    let timeout = std::time::Duration::from_secs(query.get("timeoutSeconds").and_then(|v| v.parse().ok()).unwrap_or(WATCH_TIMEOUT));
    let api_version = target.resource.api_version();
    let kind = target.resource.kind.clone();
    let resource = target.resource.clone();
    let include = query.get("includeObject").cloned();
    let scope = in_scope(target);
    let subscription = server.store.subscribe(&scope, since);
    let (sender, receiver) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move {
        let store::Subscription { version: snapshot, objects, past, mut receiver } = subscription;
        let passes = |s: &Stored| selected(&labels, &fields, s);
        // `kubectl get -w` asks for Tables: each event then carries a one-row Table.
        let line = |kind: &str, object: &Value| {
            let object =
                if as_table && kind != "BOOKMARK" { crate::table::table(&resource, object, include.as_deref()) } else { object.clone() };
            bytes::Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
        };
        let bookmark = |version: u64, initial_end: bool| {
            let mut metadata = json!({"resourceVersion": version.to_string()});
            if initial_end {
                metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            line("BOOKMARK", &json!({"kind": kind, "apiVersion": api_version, "metadata": metadata}))
        };
        let mut last = snapshot;
        let mut opening: Vec<bytes::Bytes> = Vec::new();
        if initial_list {
            opening.extend(objects.iter().filter(|s| passes(s)).map(|s| line("ADDED", &s.rendered())));
            if send_initial && bookmarks {
                // kube-rs's streaming lists wait for this to know the initial list is complete.
                opening.push(bookmark(snapshot, true));
            }
        } else {
            opening.extend(past.iter().filter_map(|c| seen_as(c, &passes)).map(|(kind, object)| line(kind, &object)));
        }
        for event in opening {
            if sender.send(event).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
        loop {
            let event = tokio::select! {
                _ = &mut deadline => return,
                _ = ticks.tick(), if bookmarks => bookmark(last, false),
                change = receiver.recv() => {
                    // A watcher that fell behind is ended; clients list and watch again.
                    let Ok(change) = change else { return };
                    if change.version <= snapshot || !scope(&change.key) {
                        continue;
                    }
                    last = change.version;
                    let Some((kind, object)) = seen_as(&change, &passes) else { continue };
                    line(kind, &object)
                }
            };
            if sender.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(Reply::Watch(receiver))
}

/// How a change looks through a watch's selectors: an object that stops matching is DELETED
/// for it, one that starts to is ADDED, as on a real server; None if it never matched.
fn seen_as(change: &store::Change, passes: &impl Fn(&Stored) -> bool) -> Option<(&'static str, Value)> {
    let now = passes(&change.current);
    let before = change.previous.as_ref().is_some_and(|p| passes(p));
    match (change.kind, before, now) {
        ("MODIFIED", true, false) => Some(("DELETED", change.render(change.previous.as_ref().expect("matched before")))),
        ("MODIFIED", false, true) => Some(("ADDED", change.render(&change.current))),
        (kind, _, true) => Some((kind, change.render(&change.current))),
        _ => None,
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the request body is not UTF-8".into()))?;
    serde_json::from_str(text)
        .or_else(|_| serde_saphyr::from_str(text))
        .map_err(|e| ApiError::bad_request(format!("the request body does not parse: {e}")))
}

fn manager_of(query: &HashMap<String, String>, fallback: &str) -> String {
    query.get("fieldManager").filter(|m| !m.is_empty()).cloned().unwrap_or_else(|| fallback.to_string())
}

/// Kubernetes' `ValidatePathSegmentName`, what RBAC names must be.
fn is_path_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Checks kind, apiVersion, name and namespace of a written object against the URL, filling in
/// what the URL implies.
fn check_identity(target: &Target, object: &mut Value, url_name: Option<&str>) -> Result<String, ApiError> {
    let r = &target.resource;
    if !object.is_object() {
        return Err(ApiError::bad_request("the request body is not an object".into()));
    }
    // Worded as the real server words them: a foreign apiVersion is a bad request, a foreign
    // kind an invalid object.
    let expected = r.api_version();
    match object.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => object["apiVersion"] = json!(expected),
        Some(actual) if actual == expected => {}
        Some(actual) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({actual}) does not match the expected API version ({expected})"
            )));
        }
    }
    match object.get("kind").and_then(Value::as_str) {
        None | Some("") => object["kind"] = json!(r.kind),
        Some(actual) if actual == r.kind => {}
        Some(actual) => {
            let name = url_name.or_else(|| object.pointer("/metadata/name").and_then(Value::as_str)).unwrap_or_default();
            return Err(ApiError::invalid(&r.kind, name, format!("kind: Invalid value: \"{actual}\": must be {}", r.kind)));
        }
    }
    if object.get("metadata").is_none_or(|m| !m.is_object()) {
        object["metadata"] = json!({});
    }
    let body_name = object.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string);
    let name = match (url_name, body_name) {
        (Some(u), Some(b)) if u != b => {
            return Err(ApiError::bad_request(format!("the name of the object ({b}) does not match the name on the URL ({u})")));
        }
        (Some(u), _) => u.to_string(),
        (None, Some(b)) => b,
        (None, None) => match object.pointer("/metadata/generateName").and_then(Value::as_str) {
            Some(prefix) => format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..5]),
            None => return Err(ApiError::invalid(&r.kind, "", "metadata.name: Required value: name or generateName is required".into())),
        },
    };
    // RBAC objects only need a valid path segment (`system:controller:...`), as in Kubernetes.
    let rbac = r.group == "rbac.authorization.k8s.io";
    if rbac && !is_path_segment(&name) {
        return Err(ApiError::invalid(
            &r.kind,
            &name,
            format!("metadata.name: Invalid value: \"{name}\": may not be '.' or '..' and may not contain '/' or '%'"),
        ));
    }
    if !rbac && !is_dns_subdomain(&name) {
        return Err(ApiError::invalid(
            &r.kind,
            &name,
            format!(
                "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"
            ),
        ));
    }
    object["metadata"]["name"] = json!(name);
    if r.namespaced {
        match object.pointer("/metadata/namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != target.namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            _ => object["metadata"]["namespace"] = json!(target.namespace),
        }
    } else if let Some(m) = object["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Ok(name)
}

/// New objects need a namespace that exists and is not terminating.
fn check_namespace(server: &Server, target: &Target) -> Result<(), ApiError> {
    if !target.resource.namespaced {
        return Ok(());
    }
    match server.store.get(&store::namespace_key(&target.namespace)) {
        None => Err(ApiError::not_found("", "namespaces", &target.namespace)),
        Some(ns) if ns.metadata().get("deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
            "{} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
            target.resource.plural,
            target.name.as_deref().unwrap_or_default(),
            target.namespace
        ))),
        Some(_) => Ok(()),
    }
}

fn spec_of(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// Stamps server fields on a written object: uid, creationTimestamp, generation (bumped when
/// anything outside metadata and status changed), Namespace phase, and workload status.
fn finish_object(server: &Server, target: &Target, object: &mut Value, old: Option<&Value>) {
    let metadata = object["metadata"].as_object_mut().expect("checked");
    metadata.remove("managedFields");
    metadata.remove("resourceVersion");
    match old {
        None => {
            metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            metadata.insert("creationTimestamp".into(), json!(store::now()));
            metadata.insert("generation".into(), json!(1));
        }
        Some(old) => {
            for field in ["uid", "creationTimestamp", "deletionTimestamp"] {
                match old.pointer(&format!("/metadata/{field}")) {
                    Some(v) => metadata.insert(field.into(), v.clone()),
                    None => metadata.remove(field),
                };
            }
            let generation = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
            let bumped = if spec_of(old) != spec_of(object) { generation + 1 } else { generation };
            object["metadata"]["generation"] = json!(bumped);
            if !target.status
                && let Some(status) = old.get("status")
            {
                object["status"] = status.clone();
            }
        }
    }
    if target.resource.kind == "Namespace" && object.pointer("/status/phase").is_none() {
        object["status"] = json!({"phase": "Active"});
    }
    let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default().to_string();
    let never = server.faults.config().never_ready.contains(&namespace);
    if target.resource.is_workload() && server.ready_delay.is_zero() && !never {
        set_ready(object);
    }
}

/// Reports every replica of a workload ready for its current generation.
pub fn set_ready(object: &mut Value) {
    let replicas = object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    let generation = object.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
    object["status"] = json!({"observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas, "currentReplicas": replicas});
}

/// After a write with a ready delay, the workload becomes ready later, if unchanged since.
fn schedule_ready(server: &Arc<Server>, target: &Target, key: Key) {
    if !target.resource.is_workload() || server.ready_delay.is_zero() {
        return;
    }
    let server = server.clone();
    tokio::spawn(async move {
        tokio::time::sleep(server.ready_delay).await;
        let _ = server.store.modify(&key, |existing, _| -> Result<Option<Stored>, ()> {
            let Some(existing) = existing else { return Ok(None) };
            let mut value = existing.value();
            set_ready(&mut value);
            Ok(Some(Stored::new(value, existing.managers())))
        });
    });
}

/// Ownership after a non-apply write by `manager`: it owns what it set or changed; fields that
/// disappeared are nobody's.
fn record_update(
    managers: &mut std::collections::BTreeMap<String, Manager>,
    manager: &str,
    api_version: &str,
    old: Option<&Value>,
    new: &Value,
) {
    let before = old.map(fields::leaves).unwrap_or_default();
    let after = fields::leaves(new);
    let changed: BTreeSet<Path> = after.iter().filter(|(p, v)| before.get(*p) != Some(*v)).map(|(p, _)| p.clone()).collect();
    for m in managers.values_mut() {
        m.fields.retain(|p| after.contains_key(p) && !changed.contains(p));
    }
    let entry = managers.entry(manager.to_string()).or_insert_with(|| Manager {
        operation: "Update",
        api_version: api_version.into(),
        time: store::now(),
        fields: fields::FieldSet::default(),
    });
    entry.fields.extend(changed);
    entry.time = store::now();
    // The writer keeps its entry even when it owns no field (a bare Namespace), as on a real
    // server; others that lost every field drop out.
    managers.retain(|name, m| name == manager || !m.fields.is_empty());
}

/// A non-apply write of `object` by `manager` over `existing`: server fields stamped,
/// ownership recorded as an Update.
fn written(server: &Server, target: &Target, mut object: Value, existing: Option<&Stored>, manager: &str) -> Stored {
    let old = existing.map(Stored::value);
    finish_object(server, target, &mut object, old.as_ref());
    let mut managers = existing.map(|e| e.managers()).unwrap_or_default();
    record_update(&mut managers, manager, &target.resource.api_version(), old.as_ref(), &object);
    Stored::new(object, managers)
}

fn create(server: &Arc<Server>, target: &Target, query: &HashMap<String, String>, body: &[u8]) -> Result<Reply, ApiError> {
    let mut object = parse_body(body)?;
    let name = check_identity(target, &mut object, None)?;
    check_namespace(server, target)?;
    let manager = manager_of(query, "unknown");
    let key = key_of(target, &name);
    let stored = server.store.modify(&key, |existing, _| {
        if existing.is_some() {
            return Err(ApiError::already_exists(&target.resource.group, &target.resource.plural, &name));
        }
        Ok(Some(written(server, target, object, None, &manager)))
    })?;
    schedule_ready(server, target, key);
    Ok(Reply::Json(201, stored.expect("created").rendered()))
}

fn update(server: &Arc<Server>, target: &Target, query: &HashMap<String, String>, body: &[u8]) -> Result<Reply, ApiError> {
    let mut object = parse_body(body)?;
    let name = check_identity(target, &mut object, target.name.as_deref())?;
    let manager = manager_of(query, "unknown");
    let key = key_of(target, &name);
    let stored = server.store.modify(&key, |existing, _| {
        let existing = existing.ok_or_else(|| not_found(target, &name))?;
        let sent = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(str::to_string);
        let current = existing.resource_version().unwrap_or_default();
        if sent.as_deref().is_some_and(|v| v != current) {
            return Err(ApiError::stale(&target.resource.group, &target.resource.plural, &name));
        }
        if target.status {
            let mut value = existing.value();
            value["status"] = object.get("status").cloned().unwrap_or(Value::Null);
            return Ok(Some(Stored::new(value, existing.managers())));
        }
        Ok(Some(written(server, target, object, Some(existing), &manager)))
    })?;
    schedule_ready(server, target, key);
    Ok(Reply::Json(200, stored.expect("updated").rendered()))
}

fn patch(
    server: &Arc<Server>,
    target: &Target,
    query: &HashMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let name = target.name.clone().unwrap_or_default();
    let manager = manager_of(query, "unknown");
    let key = key_of(target, &name);
    let stored = server.store.modify(&key, |existing, _| {
        let existing = existing.ok_or_else(|| not_found(target, &name))?;
        let mut object = existing.value();
        if content_type.starts_with("application/json-patch+json") {
            let operations: json_patch::Patch = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut object, &operations).map_err(|e| ApiError::invalid(&target.resource.kind, &name, format!("the JSON patch does not apply: {e}")))?;
        } else if content_type.starts_with("application/merge-patch+json") || content_type.starts_with("application/strategic-merge-patch+json") {
            let merge = parse_body(body)?;
            json_patch::merge(&mut object, &merge);
        } else {
            return Err(ApiError { code: 415, reason: "UnsupportedMediaType", message: format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type})"), details: Value::Null });
        }
        check_identity(target, &mut object, Some(&name))?;
        if target.status {
            // The status subresource changes the status and nothing else.
            let mut value = existing.value();
            value["status"] = object.get("status").cloned().unwrap_or(Value::Null);
            return Ok(Some(Stored::new(value, existing.managers())));
        }
        Ok(Some(written(server, target, object, Some(existing), &manager)))
    })?;
    schedule_ready(server, target, key);
    Ok(Reply::Json(200, stored.expect("patched").rendered()))
}

/// Server-side apply: the manager owns exactly the fields it sends; a field another manager
/// owns with a different value is a conflict unless `force`; fields the manager applied
/// before and omits now are removed when nobody else owns them.
fn apply(server: &Arc<Server>, target: &Target, query: &HashMap<String, String>, body: &[u8]) -> Result<Reply, ApiError> {
    let mut applied = parse_body(body)?;
    let name = check_identity(target, &mut applied, target.name.as_deref())?;
    let manager = query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::bad_request("PATCH, fieldManager is required for apply requests".into()))?;
    let force = matches!(query.get("force").map(String::as_str), Some("true" | "1"));
    let api_version = target.resource.api_version();
    let key = key_of(target, &name);
    let exists = server.store.get(&key).is_some();
    if !exists {
        check_namespace(server, target)?;
    }
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let mut created = false;
    let compute = |existing: Option<&Stored>, created: &mut bool| -> Result<Option<Stored>, ApiError> {
        // A resourceVersion in an apply is a precondition, as in an update.
        let sent = applied.pointer("/metadata/resourceVersion").and_then(Value::as_str);
        let current = existing.and_then(Stored::resource_version);
        if sent.is_some_and(|v| Some(v) != current.as_deref()) {
            return Err(match existing {
                Some(_) => ApiError::stale(&target.resource.group, &target.resource.plural, &name),
                None => not_found(target, &name),
            });
        }
        let wanted = fields::leaves(&applied);
        let mut managers = existing.map(|e| e.managers()).unwrap_or_default();
        let mut object = existing.map(Stored::value).unwrap_or_else(|| {
            *created = true;
            json!({"apiVersion": applied["apiVersion"], "kind": applied["kind"], "metadata": {"name": name}})
        });
        if target.resource.namespaced {
            object["metadata"]["namespace"] = json!(target.namespace);
        }
        let mut conflicts = Vec::new();
        for (path, value) in &wanted {
            for (other, owned) in managers.iter().filter(|(m, _)| **m != manager) {
                if owned.fields.contains(path) && fields::get(&object, path) != Some(value) {
                    conflicts.push((other.clone(), fields::display(path)));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(ApiError::field_conflicts(&conflicts, &api_version));
        }
        if force {
            for (_, owned) in managers.iter_mut().filter(|(m, _)| **m != manager) {
                owned.fields.retain(|p| !wanted.contains_key(p) || fields::get(&object, p) == wanted.get(p));
            }
        }
        let previous = managers.get(&manager).map(|m| m.fields.clone()).unwrap_or_default();
        for path in previous.iter().filter(|p| !wanted.contains_key(*p)) {
            let owned_elsewhere = managers.iter().any(|(m, o)| *m != manager && o.fields.contains(path));
            if !owned_elsewhere {
                fields::remove(&mut object, path);
            }
        }
        for (path, value) in &wanted {
            fields::set(&mut object, path, value.clone());
        }
        let old = existing.map(Stored::value);
        finish_object(server, target, &mut object, old.as_ref());
        managers.insert(
            manager.clone(),
            Manager {
                operation: "Apply",
                api_version: api_version.clone(),
                time: store::now(),
                fields: fields::FieldSet::new(wanted.keys().cloned().collect()),
            },
        );
        managers.retain(|_, m| !m.fields.is_empty());
        Ok(Some(Stored::new(object, managers)))
    };
    if dry_run {
        // Everything a real apply checks and computes, nothing stored (dryRun=All).
        let existing = server.store.get(&key);
        let stored = compute(existing.as_ref(), &mut created)?.expect("applied");
        let mut value = stored.rendered();
        if let Some(current) = existing.as_ref().and_then(Stored::resource_version).map(Value::from) {
            value["metadata"]["resourceVersion"] = current;
        }
        return Ok(Reply::Json(if created { 201 } else { 200 }, value));
    }
    let stored = server.store.modify(&key, |existing, _| compute(existing, &mut created))?;
    schedule_ready(server, target, key);
    Ok(Reply::Json(if created { 201 } else { 200 }, stored.expect("applied").rendered()))
}

fn delete(server: &Arc<Server>, target: &Target) -> Result<Reply, ApiError> {
    let name = target.name.clone().unwrap_or_default();
    let key = key_of(target, &name);
    if target.resource.kind == "Namespace" {
        // Terminating first; the contents and then the namespace go shortly after.
        let stored = server.store.modify(&key, |existing, _| {
            let existing = existing.ok_or_else(|| not_found(target, &name))?;
            let mut value = existing.value();
            if value.pointer("/metadata/deletionTimestamp").is_none() {
                value["metadata"]["deletionTimestamp"] = json!(store::now());
            }
            value["status"] = json!({"phase": "Terminating"});
            Ok(Some(Stored::new(value, existing.managers())))
        })?;
        let server = server.clone();
        tokio::spawn(async move {
            tokio::time::sleep(server.namespace_cleanup_delay).await;
            for item in server.store.list(|(_, ns, _)| *ns == name) {
                let value = item.value();
                let kind = value["kind"].as_str().unwrap_or_default().to_string();
                if let Some(resource) = server.resources.iter().find(|r| r.kind == kind && r.namespaced) {
                    let object_name = value.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
                    let _ = server.store.modify(&store::key(resource, &name, object_name), |_, _| Ok::<_, ()>(None));
                }
            }
            let _ = server.store.modify(&key, |_, _| Ok::<_, ()>(None));
        });
        return Ok(Reply::Json(200, stored.expect("terminating").rendered()));
    }
    let existing = server.store.get(&key).ok_or_else(|| not_found(target, &name))?;
    server.store.modify(&key, |_, _| Ok::<_, ApiError>(None))?;
    Ok(Reply::Json(200, existing.rendered()))
}

fn delete_collection(server: &Arc<Server>, target: &Target, query: &HashMap<String, String>) -> Result<Reply, ApiError> {
    let (labels, fields) = selectors(query)?;
    let (_, doomed) = matching(server, target, &labels, &fields);
    for object in &doomed {
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or_default();
        let _ = server.store.modify(&store::key(&target.resource, namespace, name), |_, _| Ok::<_, ()>(None));
    }
    Ok(Reply::Json(
        200,
        json!({"kind": format!("{}List", target.resource.kind), "apiVersion": target.resource.api_version(), "metadata": {}, "items": doomed}),
    ))
}
