//! A tiny HTTP client for protocol tests, and the kubectl finder.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Sends one request; returns status, Retry-After, and the JSON body (Null if none).
pub async fn call(url: &str, method: &str, path: &str, content_type: &str, body: &str) -> Result<(u16, Option<String>, Value), String> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder()
        .method(method)
        .uri(format!("{url}{path}"))
        .header("Content-Type", content_type)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let retry_after = response.headers().get("Retry-After").map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, retry_after, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

pub async fn get(url: &str, path: &str) -> (u16, Value) {
    let (s, _, v) = call(url, "GET", path, "application/json", "").await.unwrap();
    (s, v)
}

pub async fn send(url: &str, method: &str, path: &str, content_type: &str, body: Value) -> (u16, Value) {
    let (s, _, v) = call(url, method, path, content_type, &body.to_string()).await.unwrap();
    (s, v)
}

/// The kubectl to test with.
pub fn kubectl() -> std::path::PathBuf {
    kkp_test_apiserver::kubectl()
}

/// Sends one request with extra headers; returns status, the response Content-Type, and the
/// JSON body.
pub async fn get_with(url: &str, path: &str, accept: &str) -> (u16, String, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let request = http::Request::builder().uri(format!("{url}{path}")).header("Accept", accept).body(Full::new(Bytes::new())).unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers().get("Content-Type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A watch being read line by line as events arrive.
pub struct Watch {
    events: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl Watch {
    /// Starts watching `path` (which must carry `watch=true` or `watch=1`).
    pub async fn start(url: &str, path: &str) -> Watch {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let response = client.get(format!("{url}{path}").parse().unwrap()).await.unwrap();
        assert_eq!(response.status(), 200, "watch {path}");
        let (sender, events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut body = response.into_body();
            let mut buffer = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else { continue };
                buffer.extend_from_slice(&data);
                while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buffer.drain(..=end).collect();
                    if sender.send(serde_json::from_slice(&line).expect("each line is one JSON event")).is_err() {
                        return;
                    }
                }
            }
        });
        Watch { events }
    }

    /// The next event as (type, name); panics if none comes within two seconds.
    pub async fn next(&mut self) -> (String, String, Value) {
        let event = tokio::time::timeout(std::time::Duration::from_secs(2), self.events.recv())
            .await
            .expect("an event within 2 s")
            .expect("the watch is still open");
        let kind = event["type"].as_str().unwrap().to_string();
        let name = event["object"]["metadata"]["name"].as_str().unwrap_or_default().to_string();
        (kind, name, event["object"].clone())
    }

    /// Whether the stream ended (None: still open after `wait`).
    pub async fn ended_within(&mut self, wait: std::time::Duration) -> Option<bool> {
        match tokio::time::timeout(wait, self.events.recv()).await {
            Err(_) => None,
            Ok(None) => Some(true),
            Ok(Some(event)) => panic!("unexpected event {event}"),
        }
    }
}
