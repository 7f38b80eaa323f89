//! What an SDK client did on the wire: operations gid asked for, HTTP attempts the SDK
//! sent (retries included), and the answers that made it retry. Runs report these, so
//! an operator sees when a store or service is throttling.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;

/// Request counts of one client since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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

#[derive(Debug, Default)]
struct Counts {
    operations: AtomicU64,
    attempts: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
}

/// An SDK interceptor counting operations, attempts and retry-worthy answers. The
/// interceptor trait is the smithy runtime's, shared by every `aws-sdk-*` crate, so one
/// counter type serves the S3, SNS and other clients.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(Arc<Counts>);

impl RequestCounter {
    pub fn stats(&self) -> RequestStats {
        let c = &self.0;
        RequestStats {
            operations: c.operations.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
        }
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "gid-request-counter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.operations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let status = context.response().status().as_u16();
        // SNS and other query/JSON services say Throttling in a 400.
        let throttling_400 = status == 400
            && context
                .response()
                .body()
                .bytes()
                .is_some_and(|b| b.windows(10).any(|w| w == b"Throttling"));
        if status == 503 || status == 429 || throttling_400 {
            self.0.throttled.fetch_add(1, Ordering::Relaxed);
        } else if status >= 500 {
            self.0.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
