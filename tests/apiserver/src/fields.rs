//! Field ownership for server-side apply: objects as sets of leaf paths, merging, pruning,
//! and the `fieldsV1` format of `metadata.managedFields`.
//!
//! Lists of objects that carry a `name` (containers, ports, volumes, env) are keyed by it;
//! other lists are atomic, owned as a whole, as the real server treats them by default.

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    /// An object field.
    Field(String),
    /// The list element whose `name` is this.
    Key(String),
}

/// A path to a leaf.
pub type Path = Vec<Seg>;

/// Server-owned or identifying fields nobody "manages".
fn ignored(path: &[Seg]) -> bool {
    match path {
        [Seg::Field(f)] if f == "apiVersion" || f == "kind" => true,
        [Seg::Field(f), ..] if f == "status" => true,
        [Seg::Field(m), Seg::Field(f), ..] if m == "metadata" => {
            matches!(
                f.as_str(),
                "name"
                    | "namespace"
                    | "uid"
                    | "resourceVersion"
                    | "generation"
                    | "creationTimestamp"
                    | "managedFields"
                    | "deletionTimestamp"
                    | "selfLink"
            )
        }
        _ => false,
    }
}

fn named(list: &[Value]) -> bool {
    !list.is_empty() && list.iter().all(|v| v.get("name").and_then(Value::as_str).is_some())
}

/// Every managed leaf of `value` with its value.
pub fn leaves(value: &Value) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn walk(value: &Value, path: &mut Path, out: &mut BTreeMap<Path, Value>) {
    if !path.is_empty() && ignored(path) {
        return;
    }
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(Seg::Field(k.clone()));
                walk(v, path, out);
                path.pop();
            }
        }
        Value::Array(list) if named(list) => {
            for item in list {
                path.push(Seg::Key(item["name"].as_str().unwrap_or_default().to_string()));
                walk(item, path, out);
                path.pop();
            }
        }
        _ if !path.is_empty() => {
            out.insert(path.clone(), value.clone());
        }
        _ => {}
    }
}

/// The value at `path`.
pub fn get<'a>(value: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    let mut at = value;
    for seg in path {
        at = match seg {
            Seg::Field(f) => at.get(f)?,
            Seg::Key(k) => at.as_array()?.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(k))?,
        };
    }
    Some(at)
}

/// Sets `path` to `leaf`, creating objects and keyed list elements on the way.
pub fn set(value: &mut Value, path: &[Seg], leaf: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut at = value;
    for seg in parents {
        at = match seg {
            Seg::Field(f) => {
                if !at.is_object() {
                    *at = Value::Object(Map::new());
                }
                at.as_object_mut().unwrap().entry(f.clone()).or_insert(Value::Null)
            }
            Seg::Key(k) => {
                if !at.is_array() {
                    *at = Value::Array(Vec::new());
                }
                let list = at.as_array_mut().unwrap();
                let i = match list.iter().position(|v| v.get("name").and_then(Value::as_str) == Some(k)) {
                    Some(i) => i,
                    None => {
                        list.push(json!({"name": k}));
                        list.len() - 1
                    }
                };
                &mut list[i]
            }
        };
    }
    match last {
        Seg::Field(f) => {
            if !at.is_object() {
                *at = Value::Object(Map::new());
            }
            at.as_object_mut().unwrap().insert(f.clone(), leaf);
        }
        Seg::Key(k) => {
            if !at.is_array() {
                *at = Value::Array(Vec::new());
            }
            let list = at.as_array_mut().unwrap();
            match list.iter().position(|v| v.get("name").and_then(Value::as_str) == Some(k)) {
                Some(i) => list[i] = leaf,
                None => list.push(leaf),
            }
        }
    }
}

/// Removes the leaf at `path`, then parents it leaves empty.
pub fn remove(value: &mut Value, path: &[Seg]) {
    fn go(at: &mut Value, path: &[Seg]) -> bool {
        let Some((first, rest)) = path.split_first() else { return false };
        match first {
            Seg::Field(f) => {
                let Some(map) = at.as_object_mut() else { return false };
                if rest.is_empty() {
                    map.remove(f);
                } else if let Some(child) = map.get_mut(f)
                    && go(child, rest)
                {
                    map.remove(f);
                }
                map.is_empty()
            }
            Seg::Key(k) => {
                let Some(list) = at.as_array_mut() else { return false };
                let Some(i) = list.iter().position(|v| v.get("name").and_then(Value::as_str) == Some(k)) else { return false };
                if rest.is_empty() || (go(&mut list[i], rest) || only_name(&list[i])) {
                    list.remove(i);
                }
                list.is_empty()
            }
        }
    }
    fn only_name(v: &Value) -> bool {
        v.as_object().is_some_and(|m| m.keys().all(|k| k == "name"))
    }
    go(value, path);
}

/// `.spec.containers[name="apiserver"].image`, as the real server prints paths.
pub fn display(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Field(f) => format!(".{f}"),
            Seg::Key(k) => format!("[name=\"{k}\"]"),
        })
        .collect()
}

/// The `fieldsV1` tree of a set of paths.
pub fn fields_v1(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in paths {
        let mut at = &mut root;
        for seg in path {
            let key = match seg {
                Seg::Field(f) => format!("f:{f}"),
                Seg::Key(k) => format!("k:{{\"name\":\"{k}\"}}"),
            };
            let child = at.entry(key).or_insert_with(|| Value::Object(Map::new()));
            if matches!(seg, Seg::Key(_)) {
                child.as_object_mut().unwrap().entry(".").or_insert_with(|| Value::Object(Map::new()));
            }
            at = child.as_object_mut().unwrap();
        }
    }
    Value::Object(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_key_named_lists_and_skip_server_fields() {
        let v = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}], "args": ["a", "b"]}, "status": {"r": 1}});
        let paths: Vec<String> = leaves(&v).keys().map(|p| display(p)).collect();
        assert_eq!(paths, [".metadata.labels.x", ".spec.args", ".spec.containers[name=\"c\"].image", ".spec.containers[name=\"c\"].name"]);
    }

    #[test]
    fn set_and_remove_round_trip() {
        let mut v = json!({});
        let p = vec![Seg::Field("spec".into()), Seg::Field("containers".into()), Seg::Key("c".into()), Seg::Field("image".into())];
        set(&mut v, &p, json!("i"));
        assert_eq!(v, json!({"spec": {"containers": [{"name": "c", "image": "i"}]}}));
        remove(&mut v, &p);
        assert_eq!(v, json!({}));
    }
}
