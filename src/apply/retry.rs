//! Retries of transient target errors (429, 5xx, timeouts, dropped connections) with
//! exponential backoff and jitter, waiting at least as long as a Retry-After asks.

use crate::target::Error;
use std::future::Future;
use std::time::Duration;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base: Duration,
    /// Longest backoff.
    pub cap: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { attempts: 10, base: Duration::from_millis(50), cap: Duration::from_secs(2) }
    }
}

impl Policy {
    /// The delay before attempt `n` (1-based, n >= 2): a random point in `[backoff/2, backoff]`.
    pub fn delay(&self, n: u32) -> Duration {
        let backoff = self.base.saturating_mul(1 << (n.saturating_sub(2)).min(20)).min(self.cap);
        let jitter = fastrand::f64() * 0.5 + 0.5;
        backoff.mul_f64(jitter)
    }
}

/// The longest Retry-After honoured: a server asking for more is asked again sooner.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Runs `op` until it succeeds, fails permanently, or the attempts run out.
pub async fn retry<T, F, Fut>(policy: &Policy, mut op: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(e) if e.is_transient() && attempt < policy.attempts => {
                attempt += 1;
                let asked = e.retry_after().unwrap_or_default().min(MAX_RETRY_AFTER);
                tokio::time::sleep(policy.delay(attempt).max(asked)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn transient() -> Error {
        Error::Api { seed: "s".into(), object: "o".into(), message: "503".into(), status: Some(503), transient: true, retry_after: None }
    }

    #[tokio::test]
    async fn transient_errors_are_retried_permanent_ones_are_not() {
        let policy = Policy { attempts: 4, base: Duration::from_millis(1), cap: Duration::from_millis(2) };
        let calls = AtomicU32::new(0);
        let result = retry(&policy, || async { if calls.fetch_add(1, Ordering::SeqCst) < 2 { Err(transient()) } else { Ok(7) } }).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&policy, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Error::NotReady { seed: "s".into(), object: "o".into(), waited: Duration::ZERO })
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_is_waited_out_even_when_the_backoff_is_shorter() {
        let policy = Policy { attempts: 3, base: Duration::from_millis(1), cap: Duration::from_millis(2) };
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let result = retry(&policy, || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(Error::Api {
                    seed: "s".into(),
                    object: "o".into(),
                    message: "429".into(),
                    status: Some(429),
                    transient: true,
                    retry_after: Some(Duration::from_secs(3)),
                })
            } else {
                Ok(())
            }
        })
        .await;
        assert!(result.is_ok());
        assert!(start.elapsed() >= Duration::from_secs(3), "retried after {:?}", start.elapsed());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = Policy { attempts: 10, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        assert!(policy.delay(2) <= Duration::from_millis(100));
        assert!(policy.delay(3) >= Duration::from_millis(100));
        assert!(policy.delay(9) <= Duration::from_secs(1));
    }
}
