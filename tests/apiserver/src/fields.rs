//! Field ownership for server-side apply: objects as sets of leaf paths, merging, pruning,
//! and the `fieldsV1` format of `metadata.managedFields`.
//!
//! Lists of objects that carry a `name` (containers, ports, volumes, env) are keyed by it;
//! other lists are atomic, owned as a whole, as the real server treats them by default.

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, Weak};

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

/// The leaf paths one field manager owns, interned: objects of the same shape (every
/// cluster's Deployment of the same kind, say) share one copy, with its `fieldsV1` tree and
/// that tree serialised, so a stored manager costs a pointer and serving its entry costs no
/// walk. Reads go through `Deref` to the set; changes build a new set and intern it.
#[derive(Clone)]
pub struct FieldSet(Arc<Interned>);

struct Interned {
    paths: BTreeSet<Path>,
    /// `fields_v1(&paths)`.
    v1: Value,
    /// `v1` serialised.
    v1_json: Box<RawValue>,
}

/// Every set in use, by a hash of its paths. Entries whose sets are gone are swept when the
/// table has doubled since the last sweep, so churn does not grow it without bound.
struct Table {
    sets: HashMap<u64, Vec<Weak<Interned>>>,
    len: usize,
    swept_at: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

impl FieldSet {
    /// The interned set of `paths`.
    pub fn new(paths: BTreeSet<Path>) -> FieldSet {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        paths.hash(&mut hasher);
        let hash = hasher.finish();
        let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
        let table = table.get_or_insert_with(|| Table { sets: HashMap::new(), len: 0, swept_at: 1024 });
        let bucket = table.sets.entry(hash).or_default();
        if let Some(found) = bucket.iter().filter_map(Weak::upgrade).find(|s| s.paths == paths) {
            return FieldSet(found);
        }
        let v1 = fields_v1(&paths);
        let v1_json = RawValue::from_string(serde_json::to_string(&v1).expect("JSON")).expect("valid JSON");
        let set = Arc::new(Interned { paths, v1, v1_json });
        bucket.retain(|w| w.strong_count() > 0);
        bucket.push(Arc::downgrade(&set));
        table.len += 1;
        if table.len >= 2 * table.swept_at {
            table.sets.retain(|_, bucket| {
                bucket.retain(|w| w.strong_count() > 0);
                !bucket.is_empty()
            });
            table.len = table.sets.values().map(Vec::len).sum();
            table.swept_at = table.len.max(1024);
        }
        FieldSet(set)
    }

    /// Keeps the paths `keep` passes.
    pub fn retain(&mut self, keep: impl FnMut(&Path) -> bool) {
        let mut keep = keep;
        if self.0.paths.iter().all(&mut keep) {
            return;
        }
        *self = FieldSet::new(self.0.paths.iter().filter(|p| keep(p)).cloned().collect());
    }

    /// Adds `paths`.
    pub fn extend(&mut self, paths: impl IntoIterator<Item = Path>) {
        let mut all = self.0.paths.clone();
        let before = all.len();
        all.extend(paths);
        if all.len() != before {
            *self = FieldSet::new(all);
        }
    }

    /// The `fieldsV1` tree.
    pub fn v1(&self) -> &Value {
        &self.0.v1
    }

    /// The `fieldsV1` tree, serialised.
    pub fn v1_json(&self) -> &RawValue {
        &self.0.v1_json
    }
}

impl Default for FieldSet {
    fn default() -> Self {
        FieldSet::new(BTreeSet::new())
    }
}

impl std::ops::Deref for FieldSet {
    type Target = BTreeSet<Path>;

    fn deref(&self) -> &BTreeSet<Path> {
        &self.0.paths
    }
}

impl std::fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.paths.iter().map(|p| display(p))).finish()
    }
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

    #[test]
    fn equal_field_sets_are_one_copy_and_changes_make_a_new_one() {
        let path = |f: &str| vec![Seg::Field("data".into()), Seg::Field(f.into())];
        let a = FieldSet::new([path("a"), path("b")].into());
        let mut b = FieldSet::new([path("b"), path("a")].into());
        assert!(Arc::ptr_eq(&a.0, &b.0));
        b.retain(|p| *p != path("b"));
        assert_eq!(b.iter().map(|p| display(p)).collect::<Vec<_>>(), [".data.a"]);
        assert_eq!(a.len(), 2, "the shared copy is untouched");
        b.extend([path("c")]);
        assert_eq!(b.v1(), &json!({"f:data": {"f:a": {}, "f:c": {}}}));
        assert_eq!(b.v1_json().get(), r#"{"f:data":{"f:a":{},"f:c":{}}}"#);
    }
}
