//! Planning clusters on every core. Each cluster is rendered and planned on its own (its
//! nodes read only its own decisions), so worker threads take the clusters in turn and the
//! planner merges their plans in the order given. A few clusters per thread are done ahead,
//! never more, so memory stays bounded whatever the fleet's size. Views of a fleet's plan
//! describe its actions the same way, in chunks.

use std::sync::mpsc::sync_channel;

/// Results a worker may have ready before the caller takes them.
const AHEAD: usize = 4;

/// Calls `each` with every item of `items` and what `work` made of it, in the order given;
/// `work` runs on worker threads.
pub(super) fn map_in_order<'a, I: Sync, T: Send>(items: &'a [I], work: impl Fn(&'a I) -> T + Sync, mut each: impl FnMut(&'a I, T)) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8).min(items.len() / 2);
    if threads <= 1 {
        for item in items {
            each(item, work(item));
        }
        return;
    }
    std::thread::scope(|scope| {
        // Thread t works on items t, t + threads, ...; taking from the threads in turn gives
        // the results back in order.
        let done: Vec<_> = (0..threads)
            .map(|t| {
                let (send, receive) = sync_channel::<T>(AHEAD);
                let work = &work;
                scope.spawn(move || {
                    for item in items.iter().skip(t).step_by(threads) {
                        if send.send(work(item)).is_err() {
                            return; // The caller stopped.
                        }
                    }
                });
                receive
            })
            .collect();
        for (i, item) in items.iter().enumerate() {
            // A worker that panicked has hung up; the scope re-raises its panic.
            let Ok(result) = done[i % threads].recv() else { break };
            each(item, result);
        }
    });
}

/// `work` applied to every item of `items` on worker threads, in the order given.
pub(super) fn map<I: Sync, T: Send>(items: &[I], work: impl Fn(&I) -> T + Sync) -> Vec<T> {
    // Enough chunks to share between the threads, each big enough that handing it over costs
    // nothing next to working on it.
    let chunk = (items.len() / 64).clamp(1, 4096);
    let chunks: Vec<&[I]> = items.chunks(chunk).collect();
    let mut out = Vec::with_capacity(items.len());
    map_in_order(&chunks, |chunk| chunk.iter().map(&work).collect::<Vec<T>>(), |_, done| out.extend(done));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_each_with_its_own_item() {
        let items: Vec<u64> = (0..101).collect();
        let mut seen = Vec::new();
        map_in_order(
            &items,
            |n| {
                // Uneven work, so workers finish out of order.
                std::thread::sleep(std::time::Duration::from_micros(if n % 3 == 0 { 300 } else { 10 }));
                n * n
            },
            |n, square| {
                assert_eq!(square, n * n);
                seen.push(*n);
            },
        );
        assert_eq!(seen, items);
    }

    #[test]
    fn a_map_keeps_the_order_of_many_chunks() {
        let items: Vec<u64> = (0..20_000).collect();
        assert_eq!(map(&items, |n| n * 2), items.iter().map(|n| n * 2).collect::<Vec<_>>());
    }
}
