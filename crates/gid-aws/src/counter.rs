//! One request counter for every AWS client: an SDK interceptor counting operations,
//! attempts and the answers that made the SDK retry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextRef,
    BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use gid_core::RequestStats;

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
    /// The counts so far, across every clone of this counter (clients share one).
    pub fn stats(&self) -> RequestStats {
        let c = &self.0;
        RequestStats {
            operations: c.operations.load(Ordering::Relaxed),
            attempts: c.attempts.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            server_errors: c.server_errors.load(Ordering::Relaxed),
        }
    }

    /// Whether both count into the same numbers (clones of one counter).
    #[cfg(test)]
    pub(crate) fn shares_counts_with(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
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
