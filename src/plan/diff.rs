//! Field-level differences between two JSON bodies, for reasons and display.
//!
//! Lists of objects that carry a `name` (containers, ports, volumes) are matched by name, so
//! inserting a volume shows one added entry rather than every later index changing.

use crate::object::Kind;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One changed field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `spec.template.spec.containers[apiserver].image`.
    pub path: String,
    /// The value before (None: the field is new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after (None: the field is removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Value shown in place of Secret data.
pub const SENSITIVE: &str = "(sensitive)";

/// The differences from `before` to `after`, in path order.
pub fn diff(before: &Value, after: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(String::new(), before, after, &mut out);
    let is_secret = after.get("kind").and_then(Value::as_str) == Some("Secret");
    if is_secret {
        for change in &mut out {
            if change.path.starts_with("data") || change.path.starts_with("stringData") {
                change.before = change.before.as_ref().map(|_| Value::String(SENSITIVE.into()));
                change.after = change.after.as_ref().map(|_| Value::String(SENSITIVE.into()));
            }
        }
    }
    out
}

fn join(path: &str, key: &str) -> String {
    let simple = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (path.is_empty(), simple) {
        (true, true) => key.to_string(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{key:?}]"),
    }
}

fn walk(path: String, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    if before == after {
        return;
    }
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let p = join(&path, key);
                match (b.get(key), a.get(key)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (Some(x), None) => out.push(FieldChange { path: p, before: Some(x.clone()), after: None }),
                    (None, Some(y)) => out.push(FieldChange { path: p, before: None, after: Some(y.clone()) }),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(b), Value::Array(a)) => match (named(b), named(a)) {
            (Some(bn), Some(an)) => {
                let mut names: Vec<&str> = bn.iter().chain(an.iter()).map(|(n, _)| *n).collect();
                names.sort_unstable();
                names.dedup();
                for name in names {
                    let p = format!("{path}[{name}]");
                    let find = |list: &[(&str, &Value)]| list.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).clone());
                    match (find(&bn), find(&an)) {
                        (Some(x), Some(y)) => walk(p, &x, &y, out),
                        (x, y) => out.push(FieldChange { path: p, before: x, after: y }),
                    }
                }
            }
            _ if b.len() == a.len() => {
                for (i, (x, y)) in b.iter().zip(a).enumerate() {
                    walk(format!("{path}[{i}]"), x, y, out);
                }
            }
            _ => out.push(FieldChange { path, before: Some(before.clone()), after: Some(after.clone()) }),
        },
        _ => out.push(FieldChange { path, before: Some(before.clone()), after: Some(after.clone()) }),
    }
}

/// `(name, element)` pairs when every element is an object with a unique string `name`.
fn named(list: &[Value]) -> Option<Vec<(&str, &Value)>> {
    let pairs: Option<Vec<(&str, &Value)>> = list.iter().map(|v| v.get("name").and_then(Value::as_str).map(|n| (n, v))).collect();
    let pairs = pairs?;
    let mut names: Vec<&str> = pairs.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    (names.len() == pairs.len() && !pairs.is_empty()).then_some(pairs)
}

/// Fields Kubernetes refuses to change in place, by kind: changing one means delete and
/// create.
pub fn immutable_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::StatefulSet => &["spec.selector", "spec.serviceName", "spec.volumeClaimTemplates", "spec.podManagementPolicy"],
        Kind::Deployment => &["spec.selector"],
        Kind::Service => &["spec.clusterIP"],
        Kind::RoleBinding | Kind::ClusterRoleBinding => &["roleRef"],
        _ => &[],
    }
}

/// The first immutable field among `changes` for an object of `kind`.
pub fn immutable_change(kind: Kind, changes: &[FieldChange]) -> Option<&FieldChange> {
    let fields = immutable_fields(kind);
    changes
        .iter()
        .find(|c| fields.iter().any(|f| c.path == *f || c.path.starts_with(&format!("{f}.")) || c.path.starts_with(&format!("{f}["))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_lists_are_matched_by_name() {
        let before = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y"}]}});
        let after =
            json!({"spec": {"containers": [{"name": "new", "image": "z"}, {"name": "a", "image": "x:2"}, {"name": "b", "image": "y"}]}});
        let changes = diff(&before, &after);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["spec.containers[a].image", "spec.containers[new]"]);
        assert_eq!(changes[0].after, Some(json!("x:2")));
    }

    #[test]
    fn odd_keys_are_quoted_and_secret_data_is_redacted() {
        let before = json!({"kind": "Secret", "data": {"tls.key": "b2xk"}, "metadata": {"annotations": {"a/b": "1"}}});
        let after = json!({"kind": "Secret", "data": {"tls.key": "bmV3"}, "metadata": {"annotations": {"a/b": "2"}}});
        let changes = diff(&before, &after);
        assert_eq!(changes[0].path, "data[\"tls.key\"]");
        assert_eq!(changes[0].after, Some(json!(SENSITIVE)));
        assert_eq!(changes[1].path, "metadata.annotations[\"a/b\"]");
    }

    #[test]
    fn volume_claim_template_changes_are_immutable() {
        let before = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": "a"}}]}});
        let after = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"storageClassName": "b"}}]}});
        let changes = diff(&before, &after);
        assert!(immutable_change(Kind::StatefulSet, &changes).is_some());
        assert!(immutable_change(Kind::Deployment, &changes).is_none());
    }
}
