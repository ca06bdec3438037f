//! The object store: objects with their field managers, resourceVersions, and a feed of
//! changes for watches.

use crate::fields::FieldSet;
use crate::resources::Resource;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Which object: resource (group/plural), namespace ("" for cluster-scoped), name.
pub type Key = (String, String, String);

/// The key of `name` in `namespace` of `resource`.
pub fn key(resource: &Resource, namespace: &str, name: &str) -> Key {
    (format!("{}/{}", resource.group, resource.plural), namespace.to_string(), name.to_string())
}

/// The key of Namespace `name` (core group, so the group part is empty).
pub fn namespace_key(name: &str) -> Key {
    ("/namespaces".to_string(), String::new(), name.to_string())
}

/// What one field manager owns.
#[derive(Debug, Clone)]
pub struct Manager {
    /// `Apply` or `Update`.
    pub operation: &'static str,
    /// The apiVersion it wrote with.
    pub api_version: String,
    /// When it last wrote.
    pub time: String,
    /// Leaf paths it owns.
    pub fields: FieldSet,
}

/// One stored object, kept compact: a fleet holds hundreds of thousands. Its metadata, which
/// selectors, lists and preconditions read, stays a tree; the rest (spec, data, status) is
/// kept serialised, a third of the tree's size, and parsed only when the whole object is
/// served or written.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `{"metadata": ...}` without `managedFields` (rendered on the way out).
    head: Value,
    /// Every other top-level field, as a serialised JSON object.
    body: Box<str>,
    /// Its managers.
    pub managers: BTreeMap<String, Manager>,
}

impl Stored {
    /// Stores `value` (the object without `metadata.managedFields`) with its managers.
    pub fn new(mut value: Value, managers: BTreeMap<String, Manager>) -> Stored {
        let metadata = value.as_object_mut().and_then(|m| m.remove("metadata")).unwrap_or_else(|| json!({}));
        let body = serde_json::to_string(&value).expect("JSON").into_boxed_str();
        Stored { head: json!({ "metadata": metadata }), body, managers }
    }

    /// `{"metadata": ...}`: what selectors and preconditions look at, without parsing the rest.
    pub fn head(&self) -> &Value {
        &self.head
    }

    /// The object without `metadata.managedFields`.
    pub fn value(&self) -> Value {
        let mut value: Value = serde_json::from_str(&self.body).expect("stored as JSON");
        if let Some(map) = value.as_object_mut() {
            map.insert("metadata".into(), self.head["metadata"].clone());
        }
        value
    }

    /// The object as served, with `metadata.managedFields`.
    pub fn rendered(&self) -> Value {
        let mut value = self.value();
        self.add_managed_fields(&mut value);
        value
    }

    /// Only `metadata` (with `metadata.managedFields`), serialised, as a metadata-only list
    /// serves it: written straight from the object and the interned field sets, so a
    /// fleet-sized list copies bytes rather than building trees.
    pub fn metadata_json(&self) -> String {
        let empty = serde_json::Map::new();
        let metadata = self.head.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
        serde_json::to_string(&MetadataOut { metadata, managers: &self.managers }).expect("JSON")
    }

    fn add_managed_fields(&self, value: &mut Value) {
        let entries: Vec<Value> = self
            .managers
            .iter()
            .map(|(name, m)| {
                json!({"manager": name, "operation": m.operation, "apiVersion": m.api_version, "time": m.time, "fieldsType": "FieldsV1", "fieldsV1": m.fields.v1()})
            })
            .collect();
        if !entries.is_empty() {
            value["metadata"]["managedFields"] = Value::Array(entries);
        }
    }
}

/// An object's metadata with `managedFields` put in its (sorted) place, as serialising the
/// rendered object's metadata would write it.
struct MetadataOut<'a> {
    metadata: &'a serde_json::Map<String, Value>,
    managers: &'a BTreeMap<String, Manager>,
}

impl Serialize for MetadataOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut pending = !self.managers.is_empty();
        for (key, value) in self.metadata {
            if key == "managedFields" {
                continue;
            }
            if pending && key.as_str() > "managedFields" {
                map.serialize_entry("managedFields", &ManagedFieldsOut(self.managers))?;
                pending = false;
            }
            map.serialize_entry(key, value)?;
        }
        if pending {
            map.serialize_entry("managedFields", &ManagedFieldsOut(self.managers))?;
        }
        map.end()
    }
}

/// `metadata.managedFields`, each entry's keys in the order a serialised `Value` has them.
struct ManagedFieldsOut<'a>(&'a BTreeMap<String, Manager>);

impl Serialize for ManagedFieldsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|(name, m)| ManagerOut(name, m)))
    }
}

struct ManagerOut<'a>(&'a str, &'a Manager);

impl Serialize for ManagerOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let ManagerOut(name, m) = self;
        let mut map = serializer.serialize_map(Some(6))?;
        map.serialize_entry("apiVersion", &m.api_version)?;
        map.serialize_entry("fieldsType", "FieldsV1")?;
        map.serialize_entry("fieldsV1", m.fields.v1_json())?;
        map.serialize_entry("manager", name)?;
        map.serialize_entry("operation", m.operation)?;
        map.serialize_entry("time", &m.time)?;
        map.end()
    }
}

/// One committed change, kept for watches: they render and filter it themselves, off the
/// store lock.
#[derive(Debug, Clone)]
pub struct Change {
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    /// The object's key.
    pub key: Key,
    /// resourceVersion of the change.
    pub version: u64,
    /// The object after the change (for DELETED: as it was removed), shared with the store.
    pub current: Arc<Stored>,
    /// The object before a MODIFIED change, so watches with selectors can tell an object that
    /// stopped matching (DELETED for them) from one that started to (ADDED).
    pub previous: Option<Arc<Stored>>,
}

impl Change {
    /// `stored` as served at this change's resourceVersion.
    pub fn render(&self, stored: &Stored) -> Value {
        let mut object = stored.rendered();
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        object
    }
}

/// What a new watch starts from, taken under the store lock so nothing falls in between.
pub struct Subscription {
    /// The resourceVersion of the snapshot.
    pub version: u64,
    /// Objects in scope now.
    pub objects: Vec<Stored>,
    /// Recent changes after the requested resourceVersion, in order.
    pub past: Vec<Arc<Change>>,
    /// Changes from now on (those up to `version` are already in `objects`/`past`).
    pub receiver: broadcast::Receiver<Arc<Change>>,
}

struct Inner {
    version: u64,
    /// Shared with the change history, which so costs no copies of objects.
    objects: BTreeMap<Key, Arc<Stored>>,
    /// Recent changes, so a watch from a resourceVersion sees what happened since even if it
    /// subscribed a moment later (kubectl lists, then watches).
    history: VecDeque<Arc<Change>>,
}

/// Changes kept for late watchers.
const HISTORY: usize = 4096;

/// All objects of one server.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Change>>,
}

impl Default for Store {
    fn default() -> Self {
        let inner = Inner { version: 1, objects: BTreeMap::new(), history: VecDeque::new() };
        Store { inner: Mutex::new(inner), events: broadcast::channel(65_536).0 }
    }
}

/// RFC 3339 time now, as the API server writes it.
pub fn now() -> String {
    time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

impl Store {
    /// A copy of one object.
    pub fn get(&self, key: &Key) -> Option<Stored> {
        self.inner.lock().unwrap().objects.get(key).map(|s| (**s).clone())
    }

    /// Copies of every object whose key passes `filter`, in key order.
    pub fn list(&self, filter: impl Fn(&Key) -> bool) -> Vec<Stored> {
        self.snapshot(filter).1
    }

    /// The current resourceVersion and the objects whose key passes `filter`, consistently.
    pub fn snapshot(&self, filter: impl Fn(&Key) -> bool) -> (u64, Vec<Stored>) {
        let inner = self.inner.lock().unwrap();
        (inner.version, inner.objects.iter().filter(|(k, _)| filter(k)).map(|(_, v)| (**v).clone()).collect())
    }

    /// One page of a list: the current resourceVersion, the first `limit` objects (all when 0)
    /// of `resource` (group/plural) in `namespace` ("" for every namespace) after key
    /// `(namespace, name)` `after` that `keep` passes, each as `render` makes it, and how many
    /// more pass: with `count` all of them, else at most 1 (a real server counts the rest only
    /// for lists without selectors). Only the page is rendered, and only keys of
    /// the resource are visited, so a list of a big store in pages costs what its pages hold,
    /// as on a real server. `render` also gets the object's key.
    #[allow(clippy::too_many_arguments)]
    pub fn page<T>(
        &self,
        resource: &str,
        namespace: &str,
        after: Option<(String, String)>,
        keep: impl Fn(&Stored) -> bool,
        limit: usize,
        count: bool,
        render: impl Fn(&Key, &Stored) -> T,
    ) -> (u64, Vec<T>, usize) {
        use std::ops::Bound;
        let inner = self.inner.lock().unwrap();
        let start = match after {
            Some((ns, name)) => Bound::Excluded((resource.to_string(), ns, name)),
            None => Bound::Included((resource.to_string(), namespace.to_string(), String::new())),
        };
        let mut items = Vec::new();
        let mut rest = 0;
        let in_scope = inner
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|((r, ns, _), _)| r == resource && (namespace.is_empty() || ns == namespace))
            .filter(|(_, stored)| keep(stored));
        for (key, stored) in in_scope {
            if limit == 0 || items.len() < limit {
                items.push(render(key, stored));
            } else {
                rest += 1;
                if !count {
                    break;
                }
            }
        }
        (inner.version, items, rest)
    }

    /// Whether the change history still reaches back to resourceVersion `version` (a list
    /// continued from it is consistent enough; older ones are expired).
    pub fn remembers(&self, version: u64) -> bool {
        let inner = self.inner.lock().unwrap();
        version <= inner.version
            && inner.history.front().is_none_or(|oldest| oldest.version <= version + 1 || inner.history.len() < HISTORY)
    }

    /// Starts a watch: the objects whose key passes `filter`, the recent changes after
    /// resourceVersion `since`, and a receiver for the rest.
    pub fn subscribe(&self, filter: impl Fn(&Key) -> bool, since: u64) -> Subscription {
        let inner = self.inner.lock().unwrap();
        Subscription {
            version: inner.version,
            objects: inner.objects.iter().filter(|(k, _)| filter(k)).map(|(_, v)| (**v).clone()).collect(),
            past: inner.history.iter().filter(|c| c.version > since && filter(&c.key)).cloned().collect(),
            receiver: self.events.subscribe(),
        }
    }

    /// Runs `change` on the object at `key` under the store lock; it returns the new object
    /// (None deletes) or an error. Stamps resourceVersion and publishes the change.
    pub fn modify<E>(
        &self,
        key: &Key,
        change: impl FnOnce(Option<&Stored>, u64) -> Result<Option<Stored>, E>,
    ) -> Result<Option<Stored>, E> {
        let mut inner = self.inner.lock().unwrap();
        let next = inner.version + 1;
        let outcome = change(inner.objects.get(key).map(|s| &**s), next)?;
        let (committed, result) = match outcome {
            Some(mut stored) => {
                stored.head["metadata"]["resourceVersion"] = json!(next.to_string());
                let shared = Arc::new(stored);
                let previous = inner.objects.insert(key.clone(), shared.clone());
                let kind = if previous.is_some() { "MODIFIED" } else { "ADDED" };
                (Change { kind, key: key.clone(), version: next, current: shared.clone(), previous }, Some((*shared).clone()))
            }
            None => {
                let Some(old) = inner.objects.remove(key) else { return Ok(None) };
                (Change { kind: "DELETED", key: key.clone(), version: next, current: old, previous: None }, None)
            }
        };
        inner.version = next;
        let committed = Arc::new(committed);
        inner.history.push_back(committed.clone());
        if inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        // Sent under the lock, so every watcher sees changes in resourceVersion order.
        let _ = self.events.send(committed);
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_namespace_key_is_the_key_of_the_builtin_namespaces_resource() {
        let namespaces = crate::resources::builtin().into_iter().find(|r| r.plural == "namespaces").unwrap();
        assert_eq!(super::namespace_key("cluster-a"), super::key(&namespaces, "", "cluster-a"));
    }
}
