//! How many study runs the API lets happen at once. A run decrypts and computes for
//! seconds to minutes, in memory up to its manifest's limit: 48 at once from one
//! researcher took 2.8 GiB. So runs in flight are capped per researcher and in total;
//! past the caps a run waits in a bounded queue (bounded per researcher too, so that one
//! researcher cannot fill it) for at most [`RunLimits::queue_wait`], and past the queue
//! or the wait it is refused with 429 and `Retry-After`. Each researcher also has a
//! quota of stored runs ([`RunLimits::stored_per_researcher`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The caps; `carrel up --max-study-runs…` sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Runs in flight at once, over all researchers.
    pub total: usize,
    /// Runs in flight at once for one researcher.
    pub per_researcher: usize,
    /// Runs that may wait, over all researchers (each researcher: `per_researcher`).
    pub queued: usize,
    /// How long a run waits for its turn before it is refused.
    pub queue_wait: Duration,
    /// Runs a researcher may have stored (of every outcome) before new ones are refused.
    pub stored_per_researcher: u64,
}

impl Default for RunLimits {
    fn default() -> Self {
        Self {
            total: 4,
            per_researcher: 2,
            queued: 16,
            queue_wait: Duration::from_secs(30),
            stored_per_researcher: 1000,
        }
    }
}

/// Why a run was not let in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error(
        "too many study runs are waiting ({waiting} of at most {queued}, {mine} of them yours): retry later"
    )]
    QueueFull {
        waiting: usize,
        queued: usize,
        mine: usize,
    },
    #[error("no study run finished within {0:?}: retry later")]
    WaitedTooLong(Duration),
}

#[derive(Debug, Default)]
struct Counts {
    running: usize,
    waiting: usize,
    running_by: HashMap<String, usize>,
    waiting_by: HashMap<String, usize>,
}

fn decrement(map: &mut HashMap<String, usize>, key: &str) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[derive(Debug)]
pub struct RunGate {
    pub limits: RunLimits,
    counts: Mutex<Counts>,
    freed: Notify,
}

/// A run's place; dropping it lets the next one in.
#[derive(Debug)]
pub struct RunPermit {
    gate: Arc<RunGate>,
    researcher: String,
}

impl Drop for RunPermit {
    fn drop(&mut self) {
        let mut counts = self.gate.lock();
        counts.running -= 1;
        decrement(&mut counts.running_by, &self.researcher);
        drop(counts);
        self.gate.freed.notify_waiters();
    }
}

impl RunGate {
    pub fn new(limits: RunLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: RunLimits {
                total: limits.total.max(1),
                per_researcher: limits.per_researcher.max(1),
                ..limits
            },
            counts: Mutex::default(),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (running, waiting) now, for tests and logs.
    pub fn load(&self) -> (usize, usize) {
        let counts = self.lock();
        (counts.running, counts.waiting)
    }

    /// Waits for a place for a run of `researcher` (a token id), or says why not.
    /// Dropping the future (the client went away) gives its place in the queue back.
    pub async fn enter(self: &Arc<Self>, researcher: &str) -> Result<RunPermit, Busy> {
        let limits = self.limits;
        let deadline = tokio::time::Instant::now() + limits.queue_wait;
        let mut queued = Queued {
            gate: self,
            researcher,
            active: false,
        };
        loop {
            // Registered before the counts are read, so that a place freed in between
            // is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut counts = self.lock();
                let mine = counts.running_by.get(researcher).copied().unwrap_or(0);
                if counts.running < limits.total && mine < limits.per_researcher {
                    counts.running += 1;
                    *counts.running_by.entry(researcher.to_owned()).or_default() += 1;
                    if queued.active {
                        counts.waiting -= 1;
                        decrement(&mut counts.waiting_by, researcher);
                        queued.active = false;
                    }
                    return Ok(RunPermit {
                        gate: self.clone(),
                        researcher: researcher.to_owned(),
                    });
                }
                if !queued.active {
                    let waiting_mine = counts.waiting_by.get(researcher).copied().unwrap_or(0);
                    if counts.waiting >= limits.queued || waiting_mine >= limits.per_researcher {
                        return Err(Busy::QueueFull {
                            waiting: counts.waiting,
                            queued: limits.queued,
                            mine: waiting_mine,
                        });
                    }
                    counts.waiting += 1;
                    *counts.waiting_by.entry(researcher.to_owned()).or_default() += 1;
                    queued.active = true;
                }
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Busy::WaitedTooLong(limits.queue_wait));
            }
        }
    }
}

/// A run's place in the queue, given back when dropped while still held.
struct Queued<'a> {
    gate: &'a RunGate,
    researcher: &'a str,
    active: bool,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if self.active {
            let mut counts = self.gate.lock();
            counts.waiting -= 1;
            decrement(&mut counts.waiting_by, self.researcher);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(total: usize, per: usize, queued: usize, wait_ms: u64) -> Arc<RunGate> {
        RunGate::new(RunLimits {
            total,
            per_researcher: per,
            queued,
            queue_wait: Duration::from_millis(wait_ms),
            stored_per_researcher: 10,
        })
    }

    #[tokio::test]
    async fn runs_are_capped_per_researcher_and_in_total_and_wait_in_a_bounded_queue() {
        let g = gate(3, 2, 3, 50);
        let a1 = g.enter("a").await.unwrap();
        let _a2 = g.enter("a").await.unwrap();
        // a's third waits, then gives up.
        assert_eq!(
            g.enter("a").await.unwrap_err(),
            Busy::WaitedTooLong(Duration::from_millis(50))
        );
        let _b1 = g.enter("b").await.unwrap();
        assert_eq!(g.load(), (3, 0));
        // The total is reached: b waits until a place is freed.
        let waiting = {
            let g = g.clone();
            tokio::spawn(async move { g.enter("b").await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(g.load(), (3, 1));
        drop(a1);
        waiting.await.unwrap().unwrap();
        assert_eq!(
            g.load(),
            (2, 0),
            "the permit of the waiting run was dropped"
        );
    }

    #[tokio::test]
    async fn past_the_queue_runs_are_refused_at_once() {
        let g = gate(1, 1, 2, 5_000);
        let _held = g.enter("a").await.unwrap();
        let mut waiters = Vec::new();
        for who in ["b", "c"] {
            let g = g.clone();
            waiters.push(tokio::spawn(async move { g.enter(who).await.map(|_| ()) }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = std::time::Instant::now();
        assert!(matches!(
            g.enter("d").await.unwrap_err(),
            Busy::QueueFull { waiting: 2, .. }
        ));
        // One researcher cannot hold more than their share of the queue.
        let g2 = gate(1, 1, 10, 5_000);
        let _held = g2.enter("a").await.unwrap();
        let g3 = g2.clone();
        let _a_waits = tokio::spawn(async move { g3.enter("a").await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(
            g2.enter("a").await.unwrap_err(),
            Busy::QueueFull { mine: 1, .. }
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
        for w in waiters {
            w.abort();
            let _ = w.await;
        }
        assert_eq!(g.load(), (1, 0), "aborted waiters gave their places back");
    }
}
