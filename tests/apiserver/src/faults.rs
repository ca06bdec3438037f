//! Fault injection, adjustable while the server runs: latency, error rates by verb, 429 with
//! Retry-After, dropped connections, failing the Nth request, refusing connections.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What faults to inject.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// The least time between a request's arrival and its answer.
    pub latency: Duration,
    /// Share of requests answered with `error_code` (0.0..=1.0).
    pub error_rate: f64,
    /// 500, 503 or 504 (default 503).
    pub error_code: u16,
    /// Verbs the error rate applies to (`get`, `list`, `create`, `update`, `patch`, `delete`,
    /// `watch`); empty means all.
    pub error_verbs: Vec<String>,
    /// Share of requests answered 429 with `Retry-After: retry_after_secs`.
    pub throttle_rate: f64,
    /// Seconds in the Retry-After header.
    pub retry_after_secs: u64,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Fail exactly the Nth API request (1-based) with a 500.
    pub fail_nth: Option<u64>,
    /// Namespaces whose Deployments and StatefulSets never report ready (a workload that
    /// never comes up).
    pub never_ready: Vec<String>,
    /// Namespaces whose API server, reached through the service proxy, answers `/readyz` with
    /// 500 and a failed check (a control plane that runs but is not ready).
    pub readyz_failing: Vec<String>,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Serve it.
    Serve,
    /// Answer with this status.
    Error(u16),
    /// Answer 429 with this Retry-After.
    Throttle(u64),
    /// Close the connection without an answer.
    Drop,
}

/// The live fault settings of a server.
#[derive(Debug)]
pub struct Faults {
    config: Mutex<FaultConfig>,
    rng: Mutex<fastrand::Rng>,
    requests: AtomicU64,
    refuse: AtomicBool,
}

impl Faults {
    pub(crate) fn new(seed: u64) -> Self {
        Faults {
            config: Mutex::new(FaultConfig::default()),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            requests: AtomicU64::new(0),
            refuse: AtomicBool::new(false),
        }
    }

    /// Replaces the whole configuration.
    pub fn set(&self, config: FaultConfig) {
        *self.config.lock().unwrap() = config;
    }

    /// Changes the configuration in place.
    pub fn update(&self, f: impl FnOnce(&mut FaultConfig)) {
        f(&mut self.config.lock().unwrap());
    }

    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.config.lock().unwrap().clone()
    }

    /// Clears every fault (and stops refusing connections).
    pub fn clear(&self) {
        self.set(FaultConfig::default());
        self.refuse_connections(false);
    }

    /// Closes new connections at once, as a dead seed would (true), or serves again (false).
    pub fn refuse_connections(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    pub(crate) fn refusing(&self) -> bool {
        self.refuse.load(Ordering::SeqCst)
    }

    pub(crate) fn latency(&self) -> Duration {
        self.config.lock().unwrap().latency
    }

    /// Decides the fate of the next request with `verb`.
    pub(crate) fn decide(&self, verb: &str) -> Decision {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        let config = self.config.lock().unwrap();
        if config.fail_nth == Some(n) {
            return Decision::Error(500);
        }
        let mut rng = self.rng.lock().unwrap();
        if config.drop_rate > 0.0 && rng.f64() < config.drop_rate {
            return Decision::Drop;
        }
        if config.throttle_rate > 0.0 && rng.f64() < config.throttle_rate {
            return Decision::Throttle(config.retry_after_secs);
        }
        let applies = config.error_verbs.is_empty() || config.error_verbs.iter().any(|v| v == verb);
        if applies && config.error_rate > 0.0 && rng.f64() < config.error_rate {
            return Decision::Error(if config.error_code == 0 { 503 } else { config.error_code });
        }
        Decision::Serve
    }
}
