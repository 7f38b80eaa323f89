//! The AWS backend of the enrichment ports: Amazon Translate ([`AwsTranslator`]), Amazon
//! Comprehend ([`AwsComprehend`]: dominant language and sentiment) and Amazon Rekognition
//! ([`AwsRekognition`]: image labels and text in images).
//!
//! Every adapter is built from the process's shared [`gid_aws::AwsContext`] (one credential
//! cache for all AWS clients) and one [`AwsEnrichSettings`], and shares the same request
//! discipline:
//! * credentials come only from the SDK's standard chain (environment, shared profile, SSO,
//!   instance/container role); gid never reads or logs them;
//! * throttling (`ThrottlingException`, `TooManyRequestsException`,
//!   `ProvisionedThroughputExceededException`, …), 5xx answers and timeouts are retried by the
//!   SDK's standard retry strategy (exponential backoff with jitter) within
//!   [`AwsEnrichSettings::max_attempts`];
//! * every operation of an adapter waits for a slot of its concurrency bound
//!   ([`AwsEnrichSettings::max_concurrency`]) and of its pace
//!   ([`AwsEnrichSettings::requests_per_second`]) before it is sent;
//! * each adapter counts the operations it issued ([`AwsTranslator::api_calls`], …); the
//!   HTTP attempts, retries included (`api_attempts`), are counted by the context's counter
//!   of the service ([`gid_aws::AwsContext::counter`]), which the run summary reads;
//! * SDK errors are read by gid-aws's one classifier ([`gid_aws::classify`]), the SDK's
//!   error kept as the source.
//!
//! What the adapters do not do: cache answers (the caller keys its cache by
//! [`EngineId`](crate::ports::EngineId)), fetch images (Rekognition reads them from S3
//! itself), or translate empty texts (see each adapter for how blank input is answered).
//!
//! ```no_run
//! use gid_enrich::aws::{AwsComprehend, AwsEnrichSettings};
//! use gid_enrich::ports::SentimentAnalyzer;
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let comprehend = AwsComprehend::connect(&AwsEnrichSettings::default()).await?;
//! let answers = comprehend
//!     .sentiment(&["The scooter has blocked the ramp for a week".to_owned()])
//!     .await?;
//! println!("{:?} after {} call(s)", answers[0].sentiment, comprehend.api_calls());
//! # Ok(())
//! # }
//! ```

mod comprehend;
mod gate;
mod rekognition;
mod translate;

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
// The three SDK crates share one smithy runtime, so its error types (re-exported by each
// crate) are the same types whichever crate names them.
use aws_sdk_comprehend::config::http::HttpResponse;
use aws_sdk_comprehend::error::{ProvideErrorMetadata, SdkError};
use gid_aws::{AwsContext, AwsSettings, AwsSetupError, Service};

pub use comprehend::AwsComprehend;
pub use rekognition::{AwsRekognition, REKOGNITION_MAX_IMAGE_BYTES};
pub use translate::AwsTranslator;

use crate::EnrichError;
use gate::Gate;

/// Texts per Comprehend batch call (its limit for both batch operations): a run's
/// Comprehend calls are `ceil(non-blank texts / 25)` per operation.
pub const COMPREHEND_BATCH_SIZE: usize = 25;

/// Connection, retry and pacing settings of the AWS enrichment adapters (never credentials).
///
/// Each adapter applies them on its own: two adapters built from the same settings may
/// together send twice [`requests_per_second`](Self::requests_per_second).
#[derive(Debug, Clone, PartialEq)]
pub struct AwsEnrichSettings {
    /// `None`: `AWS_REGION` or the shared profile's region.
    pub region: Option<String>,
    /// One endpoint for all three services (moto_server, a VPC endpoint). `None`: the SDK's
    /// own resolution (`AWS_ENDPOINT_URL_TRANSLATE`/`_COMPREHEND`/`_REKOGNITION`,
    /// `AWS_ENDPOINT_URL`, else the public AWS endpoint of the region).
    pub endpoint_url: Option<String>,
    /// Attempts per operation, the first one included (0 is read as 1).
    pub max_attempts: u32,
    /// Backoff before the first retry; it doubles per retry, with full jitter, up to the
    /// SDK's 20 s ceiling.
    pub initial_backoff: Duration,
    /// Time allowed for one operation, retries and backoff included; each attempt gets
    /// half of it.
    pub operation_timeout: Duration,
    /// Operations of one adapter in flight at once.
    pub max_concurrency: NonZeroUsize,
    /// Operations one adapter starts per second at most (evenly spaced); `None`: unpaced.
    /// SDK retries of an operation are not paced again: they already back off.
    pub requests_per_second: Option<NonZeroU32>,
}

impl Default for AwsEnrichSettings {
    /// Conservative values (5 operations per second, 4 in flight, 5 attempts): check the
    /// account's Service Quotas for the region before raising them.
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            operation_timeout: Duration::from_secs(60),
            max_concurrency: NonZeroUsize::new(4).expect("non-zero"),
            requests_per_second: NonZeroU32::new(5),
        }
    }
}

impl AwsEnrichSettings {
    /// Takes the region, attempt budget and timeout from the shared `[aws]` section and the
    /// enrichment defaults for the rest. The endpoint is deliberately not taken over:
    /// `aws.endpoint_url` may point at an S3-only store, which cannot answer Comprehend.
    pub fn from_aws_config(aws: &gid_core::AwsConfig) -> Self {
        let defaults = Self::default();
        Self {
            region: aws.region.clone(),
            max_attempts: aws.max_attempts.unwrap_or(defaults.max_attempts),
            operation_timeout: Duration::from_secs(aws.operation_timeout_secs),
            ..defaults
        }
    }

    fn retry_config(&self) -> RetryConfig {
        RetryConfig::standard()
            .with_max_attempts(self.max_attempts.max(1))
            .with_initial_backoff(self.initial_backoff)
    }

    fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .operation_timeout(self.operation_timeout)
            .operation_attempt_timeout(self.operation_timeout / 2)
            .connect_timeout(Duration::from_secs(5))
            .build()
    }

    /// What an adapter of `service` holds besides its client: these settings with the
    /// endpoint the shared configuration resolves filled in (for messages: "connection
    /// refused by …"), and the gate that paces its operations and counts them into the
    /// context's counter of `service` (what the run summary reports).
    fn admission(&self, aws: &AwsContext, service: Service) -> (Self, Gate) {
        let settings = Self {
            endpoint_url: self.endpoint_url.clone().or_else(|| aws.endpoint(service)),
            ..self.clone()
        };
        let gate = Gate::new(
            settings.max_concurrency,
            settings.requests_per_second,
            aws.counter(service),
        );
        (settings, gate)
    }
}

/// The AWS configuration an adapter built on its own (without a shared one) loads.
async fn standalone_context(settings: &AwsEnrichSettings) -> Result<AwsContext, AwsSetupError> {
    AwsContext::load(&AwsSettings {
        region: settings.region.clone(),
        endpoint_url: settings.endpoint_url.clone(),
        max_attempts: Some(settings.max_attempts),
        retry_mode: None,
        operation_timeout: settings.operation_timeout,
    })
    .await
}

/// Builds an SDK client's config from the shared configuration with the adapter's own
/// endpoint, retries, timeouts and attempt counter.
macro_rules! client_config {
    ($sdk:ident, $aws:expr, $settings:expr, $gate:expr) => {{
        let mut config = $sdk::config::Builder::from($aws.sdk())
            .interceptor($gate.attempt_counter())
            .retry_config($settings.retry_config())
            .timeout_config($settings.timeout_config());
        if let Some(endpoint) = &$settings.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        config.build()
    }};
}
pub(crate) use client_config;

/// The methods every adapter has alike: `connect` (a configuration of its own) and its
/// counters. `$calls` says what one operation of the adapter is.
macro_rules! connect_and_counters {
    ($calls:literal) => {
        /// An adapter of its own AWS configuration, loaded from `settings` and the standard
        /// chain.
        pub async fn connect(settings: &AwsEnrichSettings) -> Result<Self, gid_aws::AwsSetupError> {
            Ok(Self::new(
                &super::standalone_context(settings).await?,
                settings,
            ))
        }

        #[doc = $calls]
        /// SDK retries of an operation are not counted here (see `api_attempts`).
        pub fn api_calls(&self) -> u64 {
            self.gate.operations()
        }

        /// HTTP requests transmitted so far, SDK retries included, by every adapter of
        /// the service built from the same `AwsContext` (the run summary's count).
        pub fn api_attempts(&self) -> u64 {
            self.gate.attempts()
        }
    };
}
pub(crate) use connect_and_counters;

/// Error codes of a request refused for what it holds. AWS authenticates and authorises a
/// request before it validates the input, so one of these answers to a deliberately empty
/// request proves the endpoint, the credentials and the permission, at no charge.
const REFUSED_AS_INVALID: &[&str] = &[
    "ValidationException",
    "InvalidRequestException",
    "InvalidParameterException",
    "InvalidImageFormatException",
];

/// What a preflight's deliberately empty request came back with: refused as invalid (or
/// accepted) means the operation is usable; anything else is the error a run would meet.
fn preflight_answer<T, E>(
    engine: &str,
    operation: &'static str,
    settings: &AwsEnrichSettings,
    answer: Result<T, SdkError<E, HttpResponse>>,
) -> Result<(), EnrichError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match answer {
        Ok(_) => Ok(()),
        Err(err) if err.code().is_some_and(|c| REFUSED_AS_INVALID.contains(&c)) => Ok(()),
        Err(err) => Err(service_error(
            engine,
            operation,
            "an empty preflight request",
            settings,
            err,
        )),
    }
}

/// Maps an SDK error the adapter has no specific meaning for onto
/// [`EnrichError::Service`], saying whether a later run may succeed.
///
/// `subject` names what the request was about (`text #3`, `s3://bucket/key`).
fn service_error<E>(
    engine: &str,
    operation: &'static str,
    subject: &str,
    settings: &AwsEnrichSettings,
    err: SdkError<E, HttpResponse>,
) -> EnrichError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    // gid-aws's one reading of SDK errors decides; a connection that broke (not refused)
    // or an answer that broke off is worth a later run too, though it names no kind.
    let kind = gid_aws::describe(operation, subject, &err, settings.endpoint_url.as_deref());
    let throttled = kind == gid_aws::FailureKind::Throttled;
    let transient = kind.is_transient()
        || matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
    let message = if throttled {
        format!(
            "{subject}: still throttled after retrying (max_attempts = {}; {}: {}); lower \
             requests_per_second or max_concurrency, or ask AWS for a higher quota",
            settings.max_attempts.max(1),
            err.code().unwrap_or("HTTP 429"),
            err.message().unwrap_or("no message"),
        )
    } else {
        format!("{subject}: {kind}")
    };
    EnrichError::Service {
        engine: engine.to_owned(),
        operation,
        message,
        transient,
        detail: Some(Box::new(gid_aws::SdkDetail::new(err))),
    }
}

/// An answer that lacks a field the service documents as always present.
fn malformed(engine: &str, operation: &'static str, what: String) -> EnrichError {
    EnrichError::Service {
        engine: engine.to_owned(),
        operation,
        message: format!("unexpected answer: {what}"),
        transient: false,
        detail: None,
    }
}
