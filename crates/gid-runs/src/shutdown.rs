//! Graceful shutdown: a scheduler's SIGTERM (Kubernetes, AWS Batch, a spot reclaim) or an
//! operator's Ctrl-C asks a run to stop; the run finishes or rolls back what it is writing,
//! records what it did not finish, and exits within the scheduler's grace period.
//!
//! The binaries turn signals into [`Shutdown::request`]; everything that can stop early
//! asks [`Shutdown::is_requested`] at its safe points (between months, stages, site files,
//! alert claims) or waits on [`Shutdown::requested`].

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

/// What asked the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGTERM: a scheduler stopping the job.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
}

impl StopReason {
    /// The exit code of a run stopped this way: 128 + the signal number, as a shell reports
    /// a process killed by it, so schedulers and scripts read it the same way.
    pub fn exit_code(self) -> u8 {
        match self {
            StopReason::Terminate => 143,
            StopReason::Interrupt => 130,
        }
    }

    fn code(self) -> u8 {
        match self {
            StopReason::Terminate => 1,
            StopReason::Interrupt => 2,
        }
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StopReason::Terminate => "SIGTERM",
            StopReason::Interrupt => "SIGINT",
        })
    }
}

/// A request to stop, shared by everything a run does. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    reason: Arc<AtomicU8>,
}

impl Shutdown {
    /// A shutdown nobody has requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the run to stop; the first reason given is the one reported.
    pub fn request(&self, reason: StopReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason.code(), Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why the run was asked to stop, once it was.
    pub fn reason(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::SeqCst) {
            1 => Some(StopReason::Terminate),
            2 => Some(StopReason::Interrupt),
            _ => None,
        }
    }

    /// Resolves once a stop is requested.
    pub async fn requested(&self) {
        self.token.cancelled().await
    }

    /// A check that alert sending can call before each claim.
    pub fn as_stop_signal(&self) -> gid_notify::StopSignal {
        let token = self.token.clone();
        Arc::new(move || token.is_cancelled())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_reason_is_kept_and_waiters_wake() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.is_requested());
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.requested().await }
        });
        shutdown.request(StopReason::Terminate);
        shutdown.request(StopReason::Interrupt);
        waiter.await.unwrap();
        assert_eq!(shutdown.reason(), Some(StopReason::Terminate));
        assert_eq!(StopReason::Terminate.exit_code(), 143);
    }
}
