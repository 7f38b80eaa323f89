//! What every operation of an AWS adapter passes through before it is sent: a bound on
//! operations in flight, an even pace (requests per second) and the call counters.

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The admission control and counters of one adapter.
#[derive(Debug)]
pub(crate) struct Gate {
    permits: Semaphore,
    pace: Option<Pace>,
    operations: AtomicU64,
    /// Attempts on the wire: the service's counter of the process's `AwsContext`, so the
    /// run summary's per-service requests include the engines'.
    wire: gid_aws::RequestCounter,
}

impl Gate {
    pub(crate) fn new(
        max_concurrency: NonZeroUsize,
        per_second: Option<NonZeroU32>,
        wire: gid_aws::RequestCounter,
    ) -> Self {
        Self {
            permits: Semaphore::new(max_concurrency.get()),
            pace: per_second.map(Pace::new),
            operations: AtomicU64::new(0),
            wire,
        }
    }

    /// Waits for a concurrency slot, then for the next paced start time, and counts the
    /// operation. Hold the permit until the operation's answer is in.
    pub(crate) async fn enter(&self) -> SemaphorePermit<'_> {
        let permit = self
            .permits
            .acquire()
            .await
            .expect("the gate's semaphore is never closed");
        if let Some(pace) = &self.pace {
            pace.wait().await;
        }
        self.operations.fetch_add(1, Ordering::Relaxed);
        permit
    }

    /// Operations issued through [`Gate::enter`].
    pub(crate) fn operations(&self) -> u64 {
        self.operations.load(Ordering::Relaxed)
    }

    /// HTTP attempts the SDK transmitted for the service, retries included (every adapter
    /// of the service built from the same `AwsContext` counts into the same number).
    pub(crate) fn attempts(&self) -> u64 {
        self.wire.stats().attempts
    }

    /// The interceptor that counts attempts; install it on the adapter's SDK client.
    pub(crate) fn attempt_counter(&self) -> gid_aws::RequestCounter {
        self.wire.clone()
    }
}

/// Spaces operation starts evenly, `1/rate` apart. No burst allowance: the services'
/// quotas are per second, and a steady stream meets fewer throttling errors than bursts.
#[derive(Debug)]
struct Pace {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pace {
    fn new(per_second: NonZeroU32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.get(),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        // Reserve a slot under the lock, sleep without it; a cancelled waiter just leaves
        // its slot unused.
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Paused time: the clock moves only when every task waits, so the spacing is exact
    // and the test takes no wall-clock time.
    #[tokio::test(start_paused = true)]
    async fn pace_spaces_operations_evenly() {
        let gate = Gate::new(
            NonZeroUsize::new(8).unwrap(),
            Some(NonZeroU32::new(50).unwrap()),
            gid_aws::RequestCounter::default(),
        );
        let start = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..6 {
            drop(gate.enter().await);
            starts.push(start.elapsed());
        }
        // Six starts 20 ms apart: the first at once, the last after 100 ms.
        let expected: Vec<Duration> = (0..6).map(|i| Duration::from_millis(20 * i)).collect();
        assert_eq!(starts, expected);
        assert_eq!(gate.operations(), 6);
    }

    #[tokio::test]
    async fn concurrency_bound_holds_back_the_next_operation() {
        use futures::FutureExt;
        let gate = Gate::new(
            NonZeroUsize::new(1).unwrap(),
            None,
            gid_aws::RequestCounter::default(),
        );
        let first = gate.enter().await;
        // Polled once, without waiting on the clock: no slot is free, so it must wait.
        assert!(
            gate.enter().now_or_never().is_none(),
            "a second operation got in while one was in flight"
        );
        drop(first);
        assert!(
            gate.enter().now_or_never().is_some(),
            "the freed slot is taken at once"
        );
        assert_eq!(gate.operations(), 2);
    }
}
