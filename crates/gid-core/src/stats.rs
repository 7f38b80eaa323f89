//! What a client did on the wire: operations gid asked for, HTTP attempts sent (retries
//! included), and the answers that made it retry. Runs report these, so an operator sees
//! when a store or service is throttling. Backends that send nothing report zeros.

/// Request counts of one client since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestStats {
    /// Operations gid issued (one GetObject, one Publish, ...).
    pub operations: u64,
    /// HTTP requests sent, retries included.
    pub attempts: u64,
    /// Answers that asked to slow down (503 SlowDown, 429, SNS/Comprehend Throttling).
    pub throttled: u64,
    /// Other server errors (5xx).
    pub server_errors: u64,
}

impl RequestStats {
    /// Attempts beyond the first of each operation.
    pub fn retries(&self) -> u64 {
        self.attempts.saturating_sub(self.operations)
    }

    /// Whether nothing was sent (a backend without a wire, or an idle client).
    pub fn is_empty(&self) -> bool {
        self.attempts == 0 && self.operations == 0
    }
}

impl std::ops::Add for RequestStats {
    type Output = RequestStats;
    fn add(self, o: RequestStats) -> RequestStats {
        RequestStats {
            operations: self.operations + o.operations,
            attempts: self.attempts + o.attempts,
            throttled: self.throttled + o.throttled,
            server_errors: self.server_errors + o.server_errors,
        }
    }
}

impl std::fmt::Display for RequestStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} retries ({} throttled, {} server errors)",
            self.attempts,
            self.retries(),
            self.throttled,
            self.server_errors
        )
    }
}
