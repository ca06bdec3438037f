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
