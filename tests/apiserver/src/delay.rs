//! Answer delays that last what was configured. tokio's timer wheel counts whole milliseconds
//! and rounds every deadline up, so a 10 ms `sleep` answers after 10.5 to 12 ms, and a bench
//! that measures a client against "10 ms per request" would measure the timer instead. One
//! thread per server waits out the deadlines with the OS's own timer, which is precise to tens
//! of microseconds, and wakes each waiting request when its deadline passes.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;
use tokio::sync::oneshot;

/// A request waiting for its deadline; ordered by the deadline, then by arrival.
struct Waiting {
    deadline: Instant,
    order: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.order) == (other.deadline, other.order)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.order).cmp(&(other.deadline, other.order))
    }
}

/// The delay thread of one server; it ends when this is dropped and nothing waits any more.
pub(crate) struct Delays {
    requests: mpsc::Sender<(Instant, oneshot::Sender<()>)>,
}

impl Delays {
    pub(crate) fn start() -> Delays {
        let (requests, incoming) = mpsc::channel();
        std::thread::Builder::new().name("apiserver-delays".into()).spawn(move || run(incoming)).expect("a thread starts");
        Delays { requests }
    }

    /// Returns at `deadline` (at once when it has passed).
    pub(crate) async fn until(&self, deadline: Instant) {
        if deadline <= Instant::now() {
            return;
        }
        let (wake, woken) = oneshot::channel();
        if self.requests.send((deadline, wake)).is_ok() {
            let _ = woken.await;
        }
    }
}

fn run(incoming: mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut waiting: BinaryHeap<Reverse<Waiting>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut open = true;
    loop {
        let now = Instant::now();
        while waiting.peek().is_some_and(|Reverse(w)| w.deadline <= now) {
            let Reverse(due) = waiting.pop().expect("peeked");
            let _ = due.wake.send(());
        }
        let next = match (waiting.peek(), open) {
            (Some(Reverse(first)), true) => incoming.recv_timeout(first.deadline - now),
            (None, true) => incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
            (Some(Reverse(first)), false) => {
                std::thread::sleep(first.deadline - now);
                continue;
            }
            (None, false) => return,
        };
        match next {
            Ok((deadline, wake)) => {
                order += 1;
                waiting.push(Reverse(Waiting { deadline, order, wake }));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn requests_wake_in_deadline_order_and_never_early() {
        let delays = std::sync::Arc::new(Delays::start());
        let start = Instant::now();
        let woke = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for ms in [30u64, 10, 20] {
            let (delays, woke) = (delays.clone(), woke.clone());
            tasks.push(tokio::spawn(async move {
                let deadline = start + Duration::from_millis(ms);
                delays.until(deadline).await;
                assert!(Instant::now() >= deadline, "woke before its deadline");
                woke.lock().unwrap().push(ms);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*woke.lock().unwrap(), vec![10, 20, 30]);
    }
}
