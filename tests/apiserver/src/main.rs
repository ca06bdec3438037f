//! Runs the test API server by hand:
//!
//! ```text
//! cargo run -p kkp-test-apiserver -- --port 18080
//! kubectl --server http://127.0.0.1:18080 get ns
//! ```

use clap::Parser;
use kkp_test_apiserver::{FaultConfig, ServerConfig, TestServer};
use std::time::Duration;

/// An in-memory Kubernetes API server for tests.
#[derive(Debug, Parser)]
struct Args {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Milliseconds before Deployments and StatefulSets report ready.
    #[arg(long, default_value_t = 0)]
    ready_delay_ms: u64,
    /// Milliseconds of latency added to every request.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of requests answered 503 (0.0..=1.0).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Write a kubeconfig for this server here.
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let server =
        TestServer::start(ServerConfig { port: args.port, ready_delay: Duration::from_millis(args.ready_delay_ms), ..Default::default() })
            .await?;
    server.faults().set(FaultConfig {
        latency: Duration::from_millis(args.latency_ms),
        error_rate: args.error_rate,
        error_code: 503,
        ..Default::default()
    });
    println!("serving on {}", server.url());
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, server.kubeconfig_yaml("test"))?;
        println!("kubeconfig written to {} (context \"test\")", path.display());
    }
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
