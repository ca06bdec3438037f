//! The service proxy, `/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy[/PATH]`, as
//! far as kkp's wave health check uses it: a GET of a Kubernetes API server's health endpoints
//! behind a Service.
//!
//! There is no real backend. As the real proxy does, a missing Service is 404, a port the
//! Service does not have or a Service without ready pods behind it (no Deployment or
//! StatefulSet whose pod labels match its selector reports a ready replica) is 503 with the
//! real server's words. Otherwise the "backend" answers: `/readyz`, `/livez` and `/healthz`
//! say `ok`, except `/readyz` in the namespaces of [`crate::FaultConfig::readyz_failing`],
//! which answers 500 with a failed check, as kube-apiserver does; other paths are 404.

use crate::Server;
use crate::status::ApiError;
use serde_json::Value;

/// A parsed proxy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service.
    pub service: String,
    /// The port, by name or number (None: the Service's only port).
    pub port: Option<String>,
    /// The path behind the Service, without the leading slash.
    pub path: String,
}

/// Parses a service proxy path; None when `path` is not one.
pub fn parse(path: &str) -> Option<Proxy> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let mut segments = rest.splitn(5, '/');
    let (namespace, services, spec, proxy) = (segments.next()?, segments.next()?, segments.next()?, segments.next()?);
    if services != "services" || proxy != "proxy" || namespace.is_empty() {
        return None;
    }
    let parts: Vec<&str> = spec.split(':').collect();
    let (service, port) = match parts.as_slice() {
        [name] => (*name, None),
        ["http" | "https", name] => (*name, None),
        [name, port] => (*name, Some(*port)),
        [_, name, port] => (*name, Some(*port)),
        _ => return None,
    };
    Some(Proxy {
        namespace: namespace.into(),
        service: service.into(),
        port: port.filter(|p| !p.is_empty()).map(str::to_string),
        path: segments.next().unwrap_or_default().to_string(),
    })
}

/// The answer: status, content type, body.
pub fn serve(server: &Server, method: &http::Method, proxy: &Proxy) -> (u16, &'static str, Vec<u8>) {
    let status = |e: ApiError| (e.code, "application/json", serde_json::to_vec(&e.body()).expect("JSON"));
    if method != http::Method::GET {
        return status(ApiError::method_not_allowed());
    }
    let key = ("/services".to_string(), proxy.namespace.clone(), proxy.service.clone());
    let Some(service) = server.store.get(&key) else { return status(ApiError::not_found("", "services", &proxy.service)) };
    let service = service.value();
    let ports = service.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let has_port = match &proxy.port {
        None => ports.len() == 1,
        Some(p) => {
            ports.iter().any(|port| port["name"].as_str() == Some(p) || port["port"].as_i64().map(|n| n.to_string()).as_deref() == Some(p))
        }
    };
    if !has_port {
        let port = proxy.port.clone().unwrap_or_default();
        return status(ApiError::unavailable(format!("no service port \"{port}\" found for service \"{}\"", proxy.service)));
    }
    if !has_ready_pods(server, &proxy.namespace, service.pointer("/spec/selector")) {
        return status(ApiError::unavailable(format!("no endpoints available for service \"{}\"", proxy.service)));
    }
    let failing = server.faults.config().readyz_failing.contains(&proxy.namespace);
    match proxy.path.trim_end_matches('/') {
        "readyz" if failing => (
            500,
            "text/plain; charset=utf-8",
            b"[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n[+]informer-sync ok\nreadyz check failed\n".to_vec(),
        ),
        "readyz" | "livez" | "healthz" => (200, "text/plain; charset=utf-8", b"ok".to_vec()),
        _ => (
            404,
            "application/json",
            serde_json::to_vec(&serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404})).expect("JSON"),
        ),
    }
}

/// Whether a Deployment or StatefulSet in `namespace` whose pod labels carry all of `selector`
/// reports a ready replica: the endpoints the Service would have.
fn has_ready_pods(server: &Server, namespace: &str, selector: Option<&Value>) -> bool {
    let Some(selector) = selector.and_then(Value::as_object).filter(|s| !s.is_empty()) else { return false };
    let workloads =
        server.store.list(|(resource, ns, _)| ns == namespace && matches!(resource.as_str(), "apps/deployments" | "apps/statefulsets"));
    workloads.iter().any(|w| {
        let w = w.value();
        let labels = w.pointer("/spec/template/metadata/labels");
        let matches = selector.iter().all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        matches && w.pointer("/status/readyReplicas").and_then(Value::as_i64).unwrap_or(0) > 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_paths_name_the_service_port_and_path() {
        let p = parse("/api/v1/namespaces/cluster-a/services/https:apiserver-external:secure/proxy/readyz").unwrap();
        assert_eq!(
            p,
            Proxy {
                namespace: "cluster-a".into(),
                service: "apiserver-external".into(),
                port: Some("secure".into()),
                path: "readyz".into()
            }
        );
        let p = parse("/api/v1/namespaces/ns/services/web:8080/proxy").unwrap();
        assert_eq!((p.service.as_str(), p.port.as_deref(), p.path.as_str()), ("web", Some("8080"), ""));
        assert_eq!(parse("/api/v1/namespaces/ns/services/https:web/proxy/a/b").unwrap().path, "a/b");
        assert!(parse("/api/v1/namespaces/ns/services/web").is_none());
        assert!(parse("/api/v1/namespaces/ns/pods/web/proxy/x").is_none());
    }
}
