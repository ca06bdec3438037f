//! The object store: objects with their field managers, resourceVersions, and a feed of
//! changes for watches.

use crate::fields::{self, Path};
use crate::resources::Resource;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Which object: resource (group/plural), namespace ("" for cluster-scoped), name.
pub type Key = (String, String, String);

/// The key of `name` in `namespace` of `resource`.
pub fn key(resource: &Resource, namespace: &str, name: &str) -> Key {
    (format!("{}/{}", resource.group, resource.plural), namespace.to_string(), name.to_string())
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
    pub fields: BTreeSet<Path>,
}

/// One stored object.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object without `metadata.managedFields` (rendered on the way out).
    pub value: Value,
    /// Its managers.
    pub managers: BTreeMap<String, Manager>,
}

impl Stored {
    /// The object as served, with `metadata.managedFields`.
    pub fn rendered(&self) -> Value {
        let mut value = self.value.clone();
        let entries: Vec<Value> = self
            .managers
            .iter()
            .map(|(name, m)| {
                json!({"manager": name, "operation": m.operation, "apiVersion": m.api_version, "time": m.time, "fieldsType": "FieldsV1", "fieldsV1": fields::fields_v1(&m.fields)})
            })
            .collect();
        if !entries.is_empty() {
            value["metadata"]["managedFields"] = Value::Array(entries);
        }
        value
    }
}

/// A change, for watches.
#[derive(Debug, Clone)]
pub struct Event {
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    /// The object's key.
    pub key: Key,
    /// resourceVersion of the change.
    pub version: u64,
    /// The object as served.
    pub object: Value,
}

struct Inner {
    version: u64,
    objects: BTreeMap<Key, Stored>,
    /// Recent changes, so a watch from a resourceVersion sees what happened since even if it
    /// subscribed a moment later (kubectl lists, then watches).
    history: std::collections::VecDeque<(&'static str, Key, u64, Stored)>,
}

/// Changes kept for late watchers.
const HISTORY: usize = 4096;

/// All objects of one server.
pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
}

impl Default for Store {
    fn default() -> Self {
        let inner = Inner { version: 1, objects: BTreeMap::new(), history: std::collections::VecDeque::new() };
        Store { inner: Mutex::new(inner), events: broadcast::channel(65_536).0 }
    }
}

/// RFC 3339 time now, as the API server writes it.
pub fn now() -> String {
    time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

impl Store {
    /// The current resourceVersion.
    pub fn version(&self) -> u64 {
        self.inner.lock().unwrap().version
    }

    /// A copy of one object.
    pub fn get(&self, key: &Key) -> Option<Stored> {
        self.inner.lock().unwrap().objects.get(key).cloned()
    }

    /// Copies of every object whose key passes `filter`, in key order.
    pub fn list(&self, filter: impl Fn(&Key) -> bool) -> Vec<Stored> {
        self.inner.lock().unwrap().objects.iter().filter(|(k, _)| filter(k)).map(|(_, v)| v.clone()).collect()
    }

    /// Subscribes to changes after resourceVersion `since`: the recent ones already made, and
    /// a receiver for the rest, taken under the store lock so nothing falls in between.
    pub fn watch_from(&self, since: u64) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let inner = self.inner.lock().unwrap();
        let receiver = self.events.subscribe();
        let past = inner
            .history
            .iter()
            .filter(|(_, _, version, _)| *version > since)
            .map(|(kind, key, version, stored)| {
                let mut object = stored.rendered();
                object["metadata"]["resourceVersion"] = json!(version.to_string());
                Event { kind, key: key.clone(), version: *version, object }
            })
            .collect();
        (past, receiver)
    }

    /// Runs `change` on the object at `key` under the store lock; it returns the new object
    /// (None deletes) or an error. Stamps resourceVersion and publishes the event.
    pub fn modify<E>(
        &self,
        key: &Key,
        change: impl FnOnce(Option<&Stored>, u64) -> Result<Option<Stored>, E>,
    ) -> Result<Option<Stored>, E> {
        let mut inner = self.inner.lock().unwrap();
        let next = inner.version + 1;
        let existing = inner.objects.get(key);
        let existed = existing.is_some();
        let outcome = change(existing, next)?;
        let mut existing_for_history: Option<Stored> = None;
        // Rendering managed fields for an event costs; without watchers nobody reads it.
        let watched = self.events.receiver_count() > 0;
        let (event, result) = match outcome {
            Some(mut stored) => {
                stored.value["metadata"]["resourceVersion"] = json!(next.to_string());
                let event = watched.then(|| Event {
                    kind: if existed { "MODIFIED" } else { "ADDED" },
                    key: key.clone(),
                    version: next,
                    object: stored.rendered(),
                });
                inner.objects.insert(key.clone(), stored.clone());
                (event, Some(stored))
            }
            None => {
                let Some(old) = inner.objects.remove(key) else { return Ok(None) };
                existing_for_history = Some(old.clone());
                let event = watched.then(|| {
                    let mut object = old.rendered();
                    object["metadata"]["resourceVersion"] = json!(next.to_string());
                    Event { kind: "DELETED", key: key.clone(), version: next, object }
                });
                (event, None)
            }
        };
        inner.version = next;
        let kept = match &result {
            Some(stored) => (if existed { "MODIFIED" } else { "ADDED" }, stored.clone()),
            None => ("DELETED", existing_for_history.expect("a delete removed an object")),
        };
        inner.history.push_back((kept.0, key.clone(), next, kept.1));
        if inner.history.len() > HISTORY {
            inner.history.pop_front();
        }
        if let Some(event) = event {
            let _ = self.events.send(event);
        }
        Ok(result)
    }
}
