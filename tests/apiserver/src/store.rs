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

/// One stored object, kept compact: a fleet holds hundreds of thousands, and small JSON trees
/// cost a B-tree node (about 600 bytes) per map. So the object is kept serialised: its
/// metadata in two halves, the keys sorting before `managedFields` and those after, so the
/// served metadata is those halves with the managed fields written between them; the rest
/// (spec, data, status) as one JSON object; and its labels, for selectors. All of that is one
/// allocation: many small ones would leave the allocator's pages half full of the garbage
/// the writes made. Whole objects are parsed only when they are served or written.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The metadata keys before `managedFields` and those after, serialised without the
    /// braces; every other top-level field, as a serialised JSON object; then
    /// `metadata.labels` as netstrings (`LEN:KEYLEN:VALUE`...), by key.
    text: Box<str>,
    /// Where the first three parts of `text` end.
    ends: [u32; 3],
    /// Its managers, by name.
    managers: Box<[(Box<str>, Manager)]>,
}

/// A JSON map's entries `keep` passes, serialised without the braces.
fn entries_json(map: &serde_json::Map<String, Value>, keep: impl Fn(&str) -> bool) -> Box<str> {
    struct Entries<'a, F>(&'a serde_json::Map<String, Value>, F);
    impl<F: Fn(&str) -> bool> Serialize for Entries<'_, F> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().filter(|(k, _)| (self.1)(k)))
        }
    }
    let text = serde_json::to_string(&Entries(map, keep)).expect("JSON");
    text[1..text.len() - 1].into()
}

impl Stored {
    /// Stores `value` (the object without `metadata.managedFields`) with its managers.
    pub fn new(mut value: Value, managers: BTreeMap<String, Manager>) -> Stored {
        let metadata = match value.as_object_mut().and_then(|m| m.remove("metadata")) {
            Some(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        let body = serde_json::to_string(&value).expect("JSON");
        let managers = managers.into_iter().map(|(name, m)| (name.into_boxed_str(), m)).collect();
        Stored::pack(&metadata, &body, managers)
    }

    fn pack(metadata: &serde_json::Map<String, Value>, body: &str, managers: Box<[(Box<str>, Manager)]>) -> Stored {
        let before = entries_json(metadata, |k| k < "managedFields");
        let after = entries_json(metadata, |k| k > "managedFields");
        let mut text = String::with_capacity(before.len() + after.len() + body.len() + 64);
        text.push_str(&before);
        text.push_str(&after);
        text.push_str(body);
        let ends = [before.len(), before.len() + after.len(), text.len()].map(|e| u32::try_from(e).expect("an object under 4 GiB"));
        for (key, value) in metadata.get("labels").and_then(Value::as_object).into_iter().flatten() {
            if let Some(value) = value.as_str() {
                for part in [key.as_str(), value] {
                    text.push_str(&part.len().to_string());
                    text.push(':');
                    text.push_str(part);
                }
            }
        }
        Stored { text: text.into_boxed_str(), ends, managers }
    }

    fn metadata_before(&self) -> &str {
        &self.text[..self.ends[0] as usize]
    }

    fn metadata_after(&self) -> &str {
        &self.text[self.ends[0] as usize..self.ends[1] as usize]
    }

    fn body(&self) -> &str {
        &self.text[self.ends[1] as usize..self.ends[2] as usize]
    }

    /// The label `key`'s value.
    pub fn label(&self, key: &str) -> Option<&str> {
        let mut rest = &self.text[self.ends[2] as usize..];
        let mut next = || {
            let (len, tail) = rest.split_once(':')?;
            let (part, tail) = tail.split_at(len.parse().ok()?);
            rest = tail;
            Some(part)
        };
        while let (Some(k), Some(v)) = (next(), next()) {
            if k == key {
                return Some(v);
            }
        }
        None
    }

    /// `metadata` without `managedFields`.
    pub fn metadata(&self) -> Value {
        serde_json::from_str(&self.metadata_text(None)).expect("stored as JSON")
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(&self) -> Option<String> {
        self.metadata().get("resourceVersion").and_then(Value::as_str).map(str::to_string)
    }

    /// Sets `metadata.resourceVersion` (the store stamps it on each write).
    fn set_resource_version(&mut self, version: u64) {
        let Value::Object(mut metadata) = self.metadata() else { return };
        metadata.insert("resourceVersion".into(), json!(version.to_string()));
        let managers = std::mem::take(&mut self.managers);
        *self = Stored::pack(&metadata, self.body(), managers);
    }

    /// Its managers, by name.
    pub fn managers(&self) -> BTreeMap<String, Manager> {
        self.managers.iter().map(|(name, m)| (name.to_string(), m.clone())).collect()
    }

    /// The object without `metadata.managedFields`.
    pub fn value(&self) -> Value {
        let mut value: Value = serde_json::from_str(self.body()).expect("stored as JSON");
        if let Some(map) = value.as_object_mut() {
            map.insert("metadata".into(), self.metadata());
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
    /// serves it: the stored halves with the managed fields (each distinct field set
    /// serialised once) between them, so a fleet-sized list builds no trees.
    pub fn metadata_json(&self) -> String {
        let managed = (!self.managers.is_empty()).then(|| serde_json::to_string(&ManagedFieldsOut(&self.managers)).expect("JSON"));
        self.metadata_text(managed.as_deref())
    }

    /// The metadata object's text, with `managed_fields` (a JSON array) in its place.
    fn metadata_text(&self, managed_fields: Option<&str>) -> String {
        let mut out = String::with_capacity(self.ends[1] as usize + managed_fields.map_or(0, str::len) + 20);
        out.push('{');
        out.push_str(self.metadata_before());
        if let Some(managed) = managed_fields {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str("\"managedFields\":");
            out.push_str(managed);
        }
        if !self.metadata_after().is_empty() {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(self.metadata_after());
        }
        out.push('}');
        out
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

/// `metadata.managedFields`, each entry's keys in the order a serialised `Value` has them.
struct ManagedFieldsOut<'a>(&'a [(Box<str>, Manager)]);

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
                stored.set_resource_version(next);
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
    use super::*;

    fn config_map(metadata: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "b", "n": "1"}})
    }

    #[test]
    fn a_stored_object_serves_what_it_was_given_with_its_managed_fields_in_place() {
        let value = config_map(
            json!({"name": "a", "namespace": "n", "labels": {"x": "1", "y": "2"}, "annotations": {"z": "\"q\""}, "uid": "u", "resourceVersion": "3", "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 1}),
        );
        let fields = FieldSet::new(crate::fields::leaves(&value).into_keys().collect());
        let manager = Manager { operation: "Apply", api_version: "v1".into(), time: "2026-01-01T00:00:00Z".into(), fields };
        let stored = Stored::new(value.clone(), [("kkp".to_string(), manager.clone()), ("kubectl".to_string(), manager)].into());
        let rendered = stored.rendered();
        let mut expected = value.clone();
        expected["metadata"]["managedFields"] = json!([
            {"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:n": {}}, "f:metadata": {"f:annotations": {"f:z": {}}, "f:labels": {"f:x": {}, "f:y": {}}}}, "manager": "kkp", "operation": "Apply", "time": "2026-01-01T00:00:00Z"},
            {"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:n": {}}, "f:metadata": {"f:annotations": {"f:z": {}}, "f:labels": {"f:x": {}, "f:y": {}}}}, "manager": "kubectl", "operation": "Apply", "time": "2026-01-01T00:00:00Z"},
        ]);
        assert_eq!(rendered, expected);
        assert_eq!(
            stored.metadata_json(),
            serde_json::to_string(&rendered["metadata"]).unwrap(),
            "byte for byte what serialising the served metadata gives"
        );
        assert_eq!(stored.value(), value);
        assert_eq!((stored.label("x"), stored.label("y"), stored.label("z")), (Some("1"), Some("2"), None));
        let odd = Stored::new(config_map(json!({"labels": {"a:1": "2:b", "": "", "c": "12345678901"}})), BTreeMap::new());
        assert_eq!((odd.label("a:1"), odd.label(""), odd.label("c"), odd.label("1")), (Some("2:b"), Some(""), Some("12345678901"), None));
        assert_eq!(stored.resource_version().as_deref(), Some("3"));
    }

    #[test]
    fn metadata_without_managers_or_with_keys_on_one_side_only_serves_as_given() {
        for metadata in [json!({"name": "a"}), json!({"annotations": {"k": "v"}}), json!({})] {
            let stored = Stored::new(config_map(metadata.clone()), BTreeMap::new());
            assert_eq!(stored.metadata_json(), serde_json::to_string(&metadata).unwrap());
            let fields = FieldSet::new([vec![crate::fields::Seg::Field("data".into())]].into());
            let manager = Manager { operation: "Update", api_version: "v1".into(), time: "t".into(), fields };
            let stored = Stored::new(config_map(metadata.clone()), [("m".to_string(), manager)].into());
            assert_eq!(stored.metadata_json(), serde_json::to_string(&stored.rendered()["metadata"]).unwrap());
            let mut stamped = stored.clone();
            stamped.set_resource_version(7);
            assert_eq!(stamped.metadata()["resourceVersion"], "7");
            assert_eq!(stamped.value()["data"], json!({"a": "b", "n": "1"}));
        }
    }

    #[test]
    fn the_namespace_key_is_the_key_of_the_builtin_namespaces_resource() {
        let namespaces = crate::resources::builtin().into_iter().find(|r| r.plural == "namespaces").unwrap();
        assert_eq!(super::namespace_key("cluster-a"), super::key(&namespaces, "", "cluster-a"));
    }
}
