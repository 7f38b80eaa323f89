//! The AWS SDK configuration every gid client starts from (S3 here, SNS in gid-notify,
//! Translate/Comprehend/Rekognition in gid-enrich): the standard credential chain, the
//! region and endpoint overrides, the standard retry strategy with gid's attempt budget,
//! and timeouts. Credentials are never read here; the chain finds them.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// The region used when neither the configuration nor the environment names one:
/// emulators and most S3-compatible stores accept it.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Connection, retry and timeout settings of one client (never credentials).
#[derive(Debug, Clone)]
pub struct SdkSettings<'a> {
    pub region: Option<&'a str>,
    pub endpoint_url: Option<&'a str>,
    /// Attempts per operation, the first included (0 is read as 1).
    pub max_attempts: u32,
    /// Backoff before the first retry; the SDK doubles it per retry, with jitter.
    pub initial_backoff: Duration,
    /// Time for one operation, retries included; each attempt gets half of it.
    pub operation_timeout: Duration,
}

/// Loads the SDK configuration: region and endpoint (else `AWS_REGION`/profile and
/// `AWS_ENDPOINT_URL[_<SERVICE>]`), retries with exponential backoff for throttling,
/// 5xx and timeouts, and timeouts. A region is always set ([`FALLBACK_REGION`]).
pub async fn load_sdk_config(settings: &SdkSettings<'_>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(settings.max_attempts.max(1))
                .with_initial_backoff(settings.initial_backoff),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(settings.operation_timeout)
                .operation_attempt_timeout(settings.operation_timeout / 2)
                .connect_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(region) = settings.region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(endpoint) = settings.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    if sdk.region().is_some() {
        return sdk;
    }
    sdk.into_builder()
        .region(Region::new(FALLBACK_REGION))
        .build()
}
