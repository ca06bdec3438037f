//! Standard `Status` error bodies.

use serde_json::{Value, json};

/// An API error: HTTP code, reason and message, as the real server words them.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...
    pub reason: &'static str,
    /// Human message.
    pub message: String,
    /// `details` (name, kind, causes, retryAfterSeconds).
    pub details: Value,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String, details: Value) -> Self {
        ApiError { code, reason, message, details }
    }

    /// 404 NotFound for `resource` `name`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let qualified = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"), json!({"name": name, "group": group, "kind": plural}))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let qualified = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
        Self::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
            json!({"name": name, "group": group, "kind": plural}),
        )
    }

    /// 409 Conflict on a stale resourceVersion.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        let qualified = if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") };
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            json!({"name": name, "group": group, "kind": plural}),
        )
    }

    /// 409 Conflict of server-side apply with other field managers.
    pub fn field_conflicts(conflicts: &[(String, String)], api_version: &str) -> Self {
        let listed: Vec<String> =
            conflicts.iter().map(|(manager, path)| format!("conflict with \"{manager}\" using {api_version}: {path}")).collect();
        let message = if listed.len() == 1 {
            format!("Apply failed with 1 conflict: {}", listed[0])
        } else {
            format!("Apply failed with {} conflicts: {}", listed.len(), listed.join("\n"))
        };
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": p}))
            .collect();
        Self::new(409, "Conflict", message, json!({"causes": causes}))
    }

    /// 422 Invalid.
    pub fn invalid(kind: &str, name: &str, message: String) -> Self {
        Self::new(422, "Invalid", format!("{kind} \"{name}\" is invalid: {message}"), json!({"name": name, "kind": kind}))
    }

    /// 400 BadRequest.
    pub fn bad_request(message: String) -> Self {
        Self::new(400, "BadRequest", message, Value::Null)
    }

    /// 403 Forbidden.
    pub fn forbidden(message: String) -> Self {
        Self::new(403, "Forbidden", message, Value::Null)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(405, "MethodNotAllowed", "the server does not allow this method on the requested resource".into(), Value::Null)
    }

    /// 503 ServiceUnavailable, as the service proxy says it.
    pub fn unavailable(message: String) -> Self {
        Self::new(503, "ServiceUnavailable", message, Value::Null)
    }

    /// An injected fault: 429 with Retry-After, or a 5xx.
    pub fn injected(code: u16, retry_after: Option<u64>) -> Self {
        let (reason, message) = match code {
            429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
            504 => ("Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request"),
            503 => ("ServiceUnavailable", "the server is currently unable to handle the request"),
            _ => ("InternalError", "an error on the server (\"injected fault\") has prevented the request from succeeding"),
        };
        let details = retry_after.map(|s| json!({"retryAfterSeconds": s})).unwrap_or(Value::Null);
        Self::new(code, reason, message.into(), details)
    }

    /// The Status body.
    pub fn body(&self) -> Value {
        let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code});
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}
