//! An in-memory Kubernetes API server for kkp's tests: plain HTTP on 127.0.0.1, speaking the
//! real REST protocol well enough for kube-rs and kubectl (discovery, CRUD, server-side apply
//! with field managers, selectors, watches, namespace lifecycle, workload status), with fault
//! injection and a request log. See README.md.

mod api;
mod discovery;
mod faults;
mod fields;
mod metadata;
mod proxy;
mod resources;
mod selectors;
mod status;
mod store;
mod table;

pub use faults::{FaultConfig, Faults};
pub use resources::Resource;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// How to start a server.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// How long Deployments and StatefulSets take to report ready after a write.
    pub ready_delay: Duration,
    /// Kinds to serve besides the built-in ones (e.g. `kubermatic.k8c.io/v1` `Cluster`).
    pub extra_resources: Vec<Resource>,
    /// Seed of the fault-injection RNG (same seed, same faults).
    pub seed: u64,
    /// Faults from the first request on (default: none); change them later with
    /// [`TestServer::faults`].
    pub faults: FaultConfig,
    /// How long a deleted Namespace stays Terminating before it goes with its contents
    /// (None: 5 ms).
    pub namespace_cleanup_delay: Option<Duration>,
}

/// One request, as the log keeps it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Request Content-Type.
    pub content_type: String,
    /// Request Accept header (e.g. `application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1`).
    pub accept: String,
    /// `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// Response status (0 when the connection was dropped).
    pub status: u16,
    /// When it arrived, relative to server start.
    pub at: Duration,
}

/// Shared state of a running server.
pub(crate) struct Server {
    pub(crate) store: store::Store,
    pub(crate) resources: Vec<Resource>,
    pub(crate) faults: Faults,
    pub(crate) ready_delay: Duration,
    pub(crate) namespace_cleanup_delay: Duration,
    log: Mutex<Vec<RequestRecord>>,
    started: Instant,
    address: String,
}

/// A running server; stops on [`TestServer::shutdown`] or drop.
pub struct TestServer {
    server: Arc<Server>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

type Body = BoxBody<Bytes, Infallible>;

/// The connection is closed without an answer (an injected fault).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

impl TestServer {
    /// Starts a server on 127.0.0.1.
    pub async fn start(config: ServerConfig) -> std::io::Result<TestServer> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port))).await?;
        let port = listener.local_addr()?.port();
        let mut resources = resources::builtin();
        resources.extend(config.extra_resources);
        let faults = Faults::new(config.seed);
        faults.set(config.faults);
        let server = Arc::new(Server {
            store: store::Store::default(),
            resources,
            faults,
            ready_delay: config.ready_delay,
            namespace_cleanup_delay: config.namespace_cleanup_delay.unwrap_or(Duration::from_millis(5)),
            log: Mutex::new(Vec::new()),
            started: Instant::now(),
            address: format!("127.0.0.1:{port}"),
        });
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = server.clone();
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((stream, _)) = accepted else { continue };
                if shared.faults.refusing() {
                    drop(stream);
                    continue;
                }
                let server = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| handle(server.clone(), request));
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
                });
            }
        });
        Ok(TestServer { server, port, stop: Some(stop), task: Some(task) })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A kubeconfig with one cluster, user and context named `context`, pointing here.
    pub fn kubeconfig_yaml(&self, context: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {context}\nclusters:\n- name: {context}\n  cluster:\n    server: {}\nusers:\n- name: {context}\n  user: {{}}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n",
            self.url()
        )
    }

    /// The live fault settings.
    pub fn faults(&self) -> &Faults {
        &self.server.faults
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.server.log.lock().unwrap().clone()
    }

    /// Forgets the logged requests.
    pub fn clear_requests(&self) {
        self.server.log.lock().unwrap().clear();
    }

    /// One object as served, by apiVersion, kind, namespace and name.
    pub fn object(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let resource = self.server.resources.iter().find(|r| r.api_version() == api_version && r.kind == kind)?;
        self.server.store.get(&store::key(resource, namespace.unwrap_or_default(), name)).map(|s| s.rendered())
    }

    /// Every object as served.
    pub fn objects(&self) -> Vec<Value> {
        self.server.store.list(|_| true).into_iter().map(|s| s.rendered()).collect()
    }

    /// Stops serving.
    pub async fn shutdown(mut self) {
        self.stop_now();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop_now(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// The kubectl to check fidelity with: kubectl on PATH is the Google Cloud SDK version
/// dispatcher, so prefer the pinned 1.32 binary beside its real path.
///
/// # Panics
/// When no kubectl is installed: fidelity tests must fail loudly, not pass without it.
pub fn kubectl() -> std::path::PathBuf {
    let resolved = std::process::Command::new("sh").args(["-c", "readlink -f \"$(command -v kubectl)\""]).output().expect("sh runs");
    let real = std::path::PathBuf::from(String::from_utf8_lossy(&resolved.stdout).trim());
    let pinned = real.with_file_name("kubectl.1.32");
    if pinned.is_file() {
        return pinned;
    }
    assert!(real.is_file(), "kubectl is not installed: the kubectl fidelity tests need it (CI installs it)");
    real
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: u16, value: &Value, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("Content-Type", content_type)
        .body(full(serde_json::to_vec(value).expect("JSON")))
        .expect("valid response")
}

/// Query parameters; empty segments (kube-rs sends `?&...`) are ignored.
fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// Answers one request no earlier than the configured latency after it arrived: the latency
/// models the whole round trip, so the server's own work does not add to it.
async fn handle(server: Arc<Server>, request: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    // A dead seed also fails connections clients kept alive from before.
    if server.faults.refusing() {
        return Err(Dropped);
    }
    let arrived = Instant::now();
    let answer = respond(server.clone(), request).await;
    wait_until(arrived + server.faults.latency()).await;
    answer
}

/// Waits until `deadline` on a timerfd, precise to microseconds. tokio's own timer counts
/// whole milliseconds and rounds deadlines up, so a configured 10 ms would answer after 11 to
/// 12 ms, and a bench measuring a client against that latency would measure the timer.
async fn wait_until(deadline: Instant) {
    if deadline <= Instant::now() {
        return;
    }
    if let Ok(delay) = tokio_timerfd::Delay::new(deadline)
        && delay.await.is_ok()
    {
        return;
    }
    tokio::time::sleep_until(deadline.into()).await;
}

async fn respond(server: Arc<Server>, request: Request<Incoming>) -> Result<Response<Body>, Dropped> {
    let at = server.started.elapsed();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let raw_query = request.uri().query().unwrap_or_default().to_string();
    let query = parse_query(&raw_query);
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let (content_type, accept) = (header("content-type"), header("accept"));
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    let record = |status: u16| RequestRecord {
        method: method.to_string(),
        path: path.clone(),
        query: raw_query.clone(),
        content_type: content_type.clone(),
        accept: accept.clone(),
        field_manager: query.get("fieldManager").cloned(),
        status,
        at,
    };

    let proxied = proxy::parse(&path);
    let resource = if proxied.is_some() { None } else { api::parse_path(&server.resources, &path) };
    let verb = match &resource {
        Some(Ok(target)) => api::verb(&method, target, &query),
        _ if proxied.is_some() => "proxy",
        _ => "discovery",
    };
    match server.faults.decide(verb) {
        faults::Decision::Serve => {}
        faults::Decision::Drop => {
            server.log.lock().unwrap().push(record(0));
            return Err(Dropped);
        }
        faults::Decision::Error(code) => {
            server.log.lock().unwrap().push(record(code));
            return Ok(json_response(code, &status::ApiError::injected(code, None).body(), "application/json"));
        }
        faults::Decision::Throttle(seconds) => {
            server.log.lock().unwrap().push(record(429));
            let mut response = json_response(429, &status::ApiError::injected(429, Some(seconds)).body(), "application/json");
            response.headers_mut().insert("Retry-After", seconds.to_string().parse().expect("digits"));
            return Ok(response);
        }
    }

    // Only JSON (and YAML for apply) is spoken; clients that asked for protobuf fall back.
    if content_type.contains("protobuf") {
        let e = status::ApiError {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})"
            ),
            details: Value::Null,
        };
        server.log.lock().unwrap().push(record(415));
        return Ok(json_response(415, &e.body(), "application/json"));
    }
    let response = match resource {
        Some(Ok(target)) => match api::serve(&server, &method, target.clone(), &query, &content_type, &accept, &body).await {
            Ok(api::Reply::Json(200, value)) if matches!(verb, "get" | "list") && table::wanted(&accept) => json_response(
                200,
                &table::table(&target.resource, &value, query.get("includeObject").map(String::as_str)),
                "application/json",
            ),
            Ok(api::Reply::Json(200, value)) if matches!(verb, "get" | "list") && metadata::wanted(&accept) != metadata::Wanted::Full => {
                match (verb, metadata::wanted(&accept)) {
                    ("list", metadata::Wanted::List) => {
                        json_response(200, &metadata::list(&value), metadata::content_type(metadata::Wanted::List))
                    }
                    ("get", metadata::Wanted::Object) => {
                        json_response(200, &metadata::object(&value), metadata::content_type(metadata::Wanted::Object))
                    }
                    // As the real server: a list asked for as one object (or the reverse)
                    // is not a representation it can give.
                    _ => {
                        let e = status::ApiError {
                            code: 406,
                            reason: "NotAcceptable",
                            message: format!("only the following media types are accepted: application/json (got {accept})"),
                            details: Value::Null,
                        };
                        json_response(406, &e.body(), "application/json")
                    }
                }
            }
            Ok(api::Reply::Json(code, value)) => json_response(code, &value, "application/json"),
            Ok(api::Reply::Raw(code, body, content_type)) => {
                Response::builder().status(code).header("Content-Type", content_type).body(full(body)).expect("valid response")
            }
            Ok(api::Reply::Watch(receiver)) => {
                let stream =
                    futures::stream::unfold(
                        receiver,
                        |mut r| async move { r.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), r)) },
                    );
                Response::builder()
                    .status(200)
                    .header("Content-Type", "application/json")
                    .body(BodyExt::boxed(StreamBody::new(stream)))
                    .expect("valid response")
            }
            Err(e) => json_response(e.code, &e.body(), "application/json"),
        },
        Some(Err(e)) => json_response(e.code, &e.body(), "application/json"),
        None => match &proxied {
            Some(proxied) => {
                let (code, content_type, body) = proxy::serve(&server, &method, proxied);
                Response::builder().status(code).header("Content-Type", content_type).body(full(body)).expect("valid response")
            }
            None => discovery_response(&server, &method, &path, &accept),
        },
    };
    server.log.lock().unwrap().push(record(response.status().as_u16()));
    Ok(response)
}

fn discovery_response(server: &Server, method: &http::Method, path: &str, accept: &str) -> Response<Body> {
    if method != http::Method::GET {
        let e = status::ApiError::method_not_allowed();
        return json_response(e.code, &e.body(), "application/json");
    }
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let found = match segments.as_slice() {
        ["version"] => Some((discovery::version(), "application/json")),
        ["healthz"] | ["readyz"] | ["livez"] => return Response::builder().status(200).body(full("ok")).expect("valid"),
        ["api"] if aggregated => Some((discovery::aggregated(&server.resources, true), discovery::AGGREGATED)),
        ["api"] => Some((discovery::legacy_core(&server.address), "application/json")),
        ["apis"] if aggregated => Some((discovery::aggregated(&server.resources, false), discovery::AGGREGATED)),
        ["apis"] => Some((discovery::legacy_groups(&server.resources), "application/json")),
        ["api", version] => discovery::resource_list(&server.resources, "", version).map(|v| (v, "application/json")),
        ["apis", group, version] => discovery::resource_list(&server.resources, group, version).map(|v| (v, "application/json")),
        ["openapi", "v3"] => Some((discovery::openapi_root(&server.resources), "application/json")),
        ["openapi", "v3", "api", version] => discovery::openapi_group(&server.resources, "", version).map(|v| (v, "application/json")),
        ["openapi", "v3", "apis", group, version] => {
            discovery::openapi_group(&server.resources, group, version).map(|v| (v, "application/json"))
        }
        _ => None,
    };
    match found {
        Some((value, content_type)) => json_response(200, &value, content_type),
        None => json_response(
            404,
            &serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "the server could not find the requested resource", "reason": "NotFound", "code": 404}),
            "application/json",
        ),
    }
}
