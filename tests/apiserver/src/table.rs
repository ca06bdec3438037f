//! `meta.k8s.io/v1` Table answers for clients that ask for them (`kubectl get` does), with the
//! columns the real server prints for the common kinds, so `kubectl get ns` shows STATUS and
//! `kubectl get deploy` shows READY.

use crate::resources::Resource;
use serde_json::{Value, json};

/// Whether the Accept header asks for a Table first.
pub fn wanted(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| first.contains("as=Table"))
}

/// A column: name, type, and how to fill it from an object.
type Column = (&'static str, &'static str, fn(&Value) -> Value);

fn text(object: &Value, pointer: &str) -> String {
    object.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn number(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn count(object: &Value, field: &str) -> Value {
    json!(object.get(field).and_then(Value::as_object).map_or(0, |m| m.len()))
}

/// Columns after NAME and before AGE, as the real server's printers have them.
fn columns(kind: &str) -> Vec<Column> {
    match kind {
        "Namespace" => vec![("Status", "string", |o| json!(text(o, "/status/phase")))],
        "ConfigMap" => vec![("Data", "integer", |o| count(o, "data"))],
        "Secret" => vec![("Type", "string", |o| json!(text(o, "/type"))), ("Data", "integer", |o| count(o, "data"))],
        "Deployment" => vec![
            ("Ready", "string", |o| json!(format!("{}/{}", number(o, "/status/readyReplicas"), number(o, "/spec/replicas")))),
            ("Up-to-date", "integer", |o| json!(number(o, "/status/updatedReplicas"))),
            ("Available", "integer", |o| json!(number(o, "/status/availableReplicas"))),
        ],
        "StatefulSet" => {
            vec![("Ready", "string", |o| json!(format!("{}/{}", number(o, "/status/readyReplicas"), number(o, "/spec/replicas"))))]
        }
        "Pod" => vec![("Status", "string", |o| json!(o.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending")))],
        _ => vec![],
    }
}

/// `5s`, `3m`, `2h`, `4d`: the age as kubectl prints it.
fn age(object: &Value) -> String {
    let created = text(object, "/metadata/creationTimestamp");
    let Ok(at) = time::OffsetDateTime::parse(&created, &time::format_description::well_known::Rfc3339) else { return "<unknown>".into() };
    let seconds = (time::OffsetDateTime::now_utc() - at).whole_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 2 * 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The Table for a get (one object) or list answer; `include` is the `includeObject` query
/// parameter (`None`, `Object`, default `PartialObjectMetadata`).
pub fn table(resource: &Resource, answer: &Value, include: Option<&str>) -> Value {
    let objects: Vec<&Value> = match answer.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![answer],
    };
    let extra = columns(&resource.kind);
    let mut definitions = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    definitions
        .extend(extra.iter().map(|(name, kind, _)| json!({"name": name, "type": kind, "format": "", "description": "", "priority": 0})));
    definitions.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation.", "priority": 0}));
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let mut cells = vec![json!(text(object, "/metadata/name"))];
            cells.extend(extra.iter().map(|(_, _, cell)| cell(object)));
            cells.push(json!(age(object)));
            let mut row = json!({"cells": cells});
            match include {
                Some("None") => {}
                Some("Object") => row["object"] = (*object).clone(),
                _ => {
                    let mut metadata = object["metadata"].clone();
                    if let Some(m) = metadata.as_object_mut() {
                        m.remove("managedFields");
                    }
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata});
                }
            }
            row
        })
        .collect();
    let version = answer.pointer("/metadata/resourceVersion").cloned().unwrap_or(json!(""));
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": version}, "columnDefinitions": definitions, "rows": rows})
}
