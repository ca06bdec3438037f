//! `meta.k8s.io/v1` PartialObjectMetadata answers for clients that ask for metadata only
//! (`Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`, as kube-rs's
//! `Api::list_metadata` sends; `as=PartialObjectMetadata` for a single object). As the real
//! server (`asPartialObjectMetadataList` in the apiserver's handlers): the list's kind and
//! apiVersion are `PartialObjectMetadataList` and `meta.k8s.io/v1`, its metadata keeps the
//! resourceVersion, continue token and remaining count, and each item is a
//! `PartialObjectMetadata` with the object's whole metadata (managedFields included) and
//! nothing else: no spec, no data, no status.

use serde_json::{Value, json};

/// The representation the Accept header asks for first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// The object or list as stored.
    Full,
    /// `as=PartialObjectMetadata`.
    Object,
    /// `as=PartialObjectMetadataList`.
    List,
}

/// What the first media type of `accept` asks for.
pub fn wanted(accept: &str) -> Wanted {
    let first = accept.split(',').next().unwrap_or_default();
    let params: Vec<&str> = first.split(';').map(str::trim).collect();
    let has = |p: &str| params.contains(&p);
    if !has("g=meta.k8s.io") || !has("v=v1") {
        return Wanted::Full;
    }
    if has("as=PartialObjectMetadataList") {
        Wanted::List
    } else if has("as=PartialObjectMetadata") {
        Wanted::Object
    } else {
        Wanted::Full
    }
}

/// The media type a request for `wanted` is answered in, as the real server labels it.
pub fn content_type(wanted: Wanted) -> &'static str {
    match wanted {
        Wanted::Full => "application/json",
        Wanted::Object => "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        Wanted::List => "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    }
}

/// One object reduced to its metadata.
pub fn object(object: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object.get("metadata").cloned().unwrap_or(json!({}))})
}

/// A list answer reduced to its items' metadata.
pub fn list(answer: &Value) -> Value {
    let items: Vec<Value> =
        answer.get("items").and_then(Value::as_array).map(|items| items.iter().map(object).collect()).unwrap_or_default();
    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": answer.get("metadata").cloned().unwrap_or(json!({})), "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_media_type_decides() {
        assert_eq!(wanted("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"), Wanted::List);
        assert_eq!(wanted("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json"), Wanted::Object);
        assert_eq!(wanted("application/json, application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"), Wanted::Full);
        assert_eq!(wanted("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"), Wanted::Full);
        assert_eq!(wanted(""), Wanted::Full);
    }
}
