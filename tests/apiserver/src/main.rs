//! Runs the test API server by hand:
//!
//! ```text
//! cargo run -p kkp-test-apiserver -- --port 18080
//! kubectl --kubeconfig /tmp/kkp-test-apiserver-18080.kubeconfig get ns
//! ```

use clap::Parser;
use kkp_test_apiserver::{FaultConfig, ServerConfig, TestServer};
use std::time::Duration;

/// An in-memory Kubernetes API server for tests.
#[derive(Debug, Parser)]
struct Args {
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 18080)]
    port: u16,
    /// Milliseconds before Deployments and StatefulSets report ready.
    #[arg(long, default_value_t = 0)]
    ready_delay_ms: u64,
    /// Least milliseconds between a request's arrival and its answer.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Share of requests answered with --error-code (0.0..=1.0).
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Status of injected errors: 500, 503 or 504.
    #[arg(long, default_value_t = 503, value_parser = error_code)]
    error_code: u16,
    /// Seed of the fault-injection RNG.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write a kubeconfig for this server (default: in the temp directory).
    #[arg(long)]
    kubeconfig: Option<std::path::PathBuf>,
}

fn error_code(text: &str) -> Result<u16, String> {
    match text.parse() {
        Ok(code @ (500 | 503 | 504)) => Ok(code),
        _ => Err("one of 500, 503, 504".into()),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if !(0.0..=1.0).contains(&args.error_rate) {
        eprintln!("--error-rate must be between 0.0 and 1.0");
        std::process::exit(2);
    }
    let server = TestServer::start(ServerConfig {
        port: args.port,
        ready_delay: Duration::from_millis(args.ready_delay_ms),
        seed: args.seed,
        faults: FaultConfig {
            latency: Duration::from_millis(args.latency_ms),
            error_rate: args.error_rate,
            error_code: args.error_code,
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    let kubeconfig =
        args.kubeconfig.unwrap_or_else(|| std::env::temp_dir().join(format!("kkp-test-apiserver-{}.kubeconfig", server.port())));
    std::fs::write(&kubeconfig, server.kubeconfig_yaml("kkp-test"))?;
    println!("serving on {}", server.url());
    println!("kubeconfig: {} (context \"kkp-test\")", kubeconfig.display());
    println!("try: kubectl --kubeconfig {} get ns", kubeconfig.display());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}
