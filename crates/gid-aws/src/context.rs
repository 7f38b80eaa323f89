//! The SDK configuration every AWS client of a process is built from, loaded once.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_config::retry::{RetryConfig, RetryMode};
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_types::service_config::ServiceConfigKey;
use gid_core::RequestStats;

use crate::RequestCounter;

/// The region used with a custom endpoint when nothing names one: emulators and most
/// S3-compatible stores accept it. Against AWS itself gid never guesses a region.
pub const FALLBACK_REGION: &str = "us-east-1";

/// The wait before the first retry (it doubles per retry, with jitter).
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);

/// The AWS services gid calls, by the SDK's service id (which names their
/// `AWS_ENDPOINT_URL_<SERVICE>` variable and the profile's `services` section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Object storage: the exports, the work data and the report site.
    S3,
    /// Threshold alerts and contacts' subscriptions.
    Sns,
    /// Descriptions into English (enrichment).
    Translate,
    /// Language and sentiment of descriptions (enrichment).
    Comprehend,
    /// Labels and text in request photos (enrichment).
    Rekognition,
    /// The caller's identity, for `gid-admin doctor`.
    Sts,
}

impl Service {
    /// The SDK's service id (`S3`, `SNS`, …).
    pub fn id(self) -> &'static str {
        match self {
            Service::S3 => "S3",
            Service::Sns => "SNS",
            Service::Translate => "Translate",
            Service::Comprehend => "Comprehend",
            Service::Rekognition => "Rekognition",
            Service::Sts => "STS",
        }
    }

    /// Its name in the run summary's `requests` (`s3`, `translate`, …).
    pub fn summary_name(self) -> &'static str {
        match self {
            Service::S3 => "s3",
            Service::Sns => "sns",
            Service::Translate => "translate",
            Service::Comprehend => "comprehend",
            Service::Rekognition => "rekognition",
            Service::Sts => "sts",
        }
    }

    /// Its service-specific endpoint variable (`AWS_ENDPOINT_URL_S3`, …).
    pub fn endpoint_variable(self) -> String {
        format!("AWS_ENDPOINT_URL_{}", self.id().to_ascii_uppercase())
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Connection, retry and timeout settings from gid's `[aws]` config (never credentials).
/// `None` leaves the value to the standard AWS chain (environment, then profile).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AwsSettings {
    /// `aws.region`; wins over `AWS_REGION` and the profile's region.
    pub region: Option<String>,
    /// One endpoint for every service (wins over `AWS_ENDPOINT_URL[_<SERVICE>]`).
    pub endpoint_url: Option<String>,
    /// Attempts per operation, the first included; wins over `AWS_MAX_ATTEMPTS` and the
    /// profile's `max_attempts`.
    pub max_attempts: Option<u32>,
    /// Wins over `AWS_RETRY_MODE` and the profile's `retry_mode`.
    pub retry_mode: Option<RetryMode>,
    /// Time for one operation, retries included; each attempt gets half of it.
    pub operation_timeout: Duration,
}

impl AwsSettings {
    /// The `[aws]` section of gid's configuration.
    pub fn from_config(aws: &gid_core::AwsConfig) -> Self {
        Self {
            region: aws.region.clone(),
            endpoint_url: aws.endpoint_url.clone(),
            max_attempts: aws.max_attempts,
            retry_mode: aws.retry_mode.map(|mode| match mode {
                gid_core::RetryModeConfig::Standard => RetryMode::Standard,
                gid_core::RetryModeConfig::Adaptive => RetryMode::Adaptive,
            }),
            operation_timeout: Duration::from_secs(aws.operation_timeout_secs),
        }
    }
}

/// Why the AWS configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AwsSetupError {
    #[error(
        "no AWS region is set{profile}: set aws.region in gid's config (GID__AWS__REGION), AWS_REGION, \
         or `region` in the AWS profile. gid does not guess: against the wrong region S3 answers \
         PermanentRedirect and SNS topics are created where nobody reads them"
    )]
    /// No region anywhere: gid refuses to guess one (see the message).
    NoRegion {
        /// The profile the chain read, named in the message.
        profile: ProfileNote,
    },
}

/// ` (profile X)` when `AWS_PROFILE` names one, for messages.
#[derive(Debug, Clone, Default)]
pub struct ProfileNote(pub Option<String>);

impl fmt::Display for ProfileNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(profile) => write!(f, " (AWS profile {profile})"),
            None => Ok(()),
        }
    }
}

/// The one SDK configuration of a process: the standard credential chain with its
/// single identity cache, the region, retries and timeouts. Every client (S3, SNS,
/// Translate, Comprehend, Rekognition, STS) is built from it, so credentials are resolved
/// (and refreshed) once for all of them.
///
/// It also owns the process's request counters, one per service ([`AwsContext::counter`]):
/// every client of a service counts into the same one, so a run can report what it asked
/// of each service however many adapters it built.
#[derive(Debug, Clone)]
pub struct AwsContext {
    sdk: SdkConfig,
    settings: AwsSettings,
    /// Shared by every clone: a counter handed out once is the one read at the end.
    counters: Arc<Mutex<Vec<(Service, RequestCounter)>>>,
}

impl AwsContext {
    /// Loads the configuration: gid's settings first, then the standard chain
    /// (`AWS_REGION`, `AWS_PROFILE` and the shared files, SSO, `credential_process`, web
    /// identity, ECS, IMDS). Without a region it fails — unless some service has a custom
    /// endpoint (an emulator or S3-compatible store), where [`FALLBACK_REGION`] serves.
    pub async fn load(settings: &AwsSettings) -> Result<Self, AwsSetupError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(settings.operation_timeout)
                .operation_attempt_timeout(settings.operation_timeout / 2)
                .connect_timeout(Duration::from_secs(5))
                .build(),
        );
        if settings.max_attempts.is_some() || settings.retry_mode.is_some() {
            // gid's own setting wins; a part it leaves unset keeps the SDK's default.
            let base = match settings.retry_mode {
                Some(RetryMode::Adaptive) => RetryConfig::adaptive(),
                _ => RetryConfig::standard(),
            };
            let config = match settings.max_attempts {
                Some(n) => base.with_max_attempts(n.max(1)),
                None => base,
            };
            loader = loader.retry_config(config);
        }
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &settings.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        // Whoever decided the attempts and mode, the first retry comes soon: the SDK's 1 s
        // start (doubling) would spend a short operation budget on waiting.
        let retry = sdk
            .retry_config()
            .cloned()
            .unwrap_or_else(RetryConfig::standard)
            .with_initial_backoff(INITIAL_BACKOFF);
        let sdk = sdk.into_builder().retry_config(retry).build();
        let mut context = Self {
            sdk,
            settings: settings.clone(),
            counters: Arc::default(),
        };
        if context.sdk.region().is_none() {
            let custom = [Service::S3, Service::Sns, Service::Translate]
                .into_iter()
                .any(|s| context.endpoint(s).is_some());
            if !custom {
                return Err(AwsSetupError::NoRegion {
                    profile: ProfileNote(std::env::var("AWS_PROFILE").ok()),
                });
            }
            context.sdk = context
                .sdk
                .into_builder()
                .region(Region::new(FALLBACK_REGION))
                .build();
        }
        tracing::debug!(
            region = context.region(),
            retry = ?context.sdk.retry_config(),
            "AWS configuration loaded"
        );
        Ok(context)
    }

    /// The SDK configuration clients are built from.
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The settings this context was loaded with.
    pub fn settings(&self) -> &AwsSettings {
        &self.settings
    }

    /// The region every client uses.
    pub fn region(&self) -> &str {
        self.sdk
            .region()
            .map(Region::as_ref)
            .unwrap_or(FALLBACK_REGION)
    }

    /// The request counter of `service`, to install on its client as an interceptor: every
    /// call for the same service returns (a clone of) the same counter.
    pub fn counter(&self, service: Service) -> RequestCounter {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, counter)) = counters.iter().find(|(s, _)| *s == service) {
            return counter.clone();
        }
        let counter = RequestCounter::default();
        counters.push((service, counter.clone()));
        counter
    }

    /// What each service whose counter was handed out has been asked so far, in the order
    /// the counters were first asked for.
    pub fn request_stats(&self) -> Vec<(Service, RequestStats)> {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters.iter().map(|(s, c)| (*s, c.stats())).collect()
    }

    /// The custom endpoint the SDK resolves for `service`, as its client builder does:
    /// gid's `aws.endpoint_url`, else `AWS_ENDPOINT_URL_<SERVICE>` or the profile's
    /// `services` section, else `AWS_ENDPOINT_URL` or the profile's `endpoint_url`. `None`:
    /// AWS's own endpoint for the region.
    pub fn endpoint(&self, service: Service) -> Option<String> {
        if let Some(endpoint) = &self.settings.endpoint_url {
            return Some(endpoint.clone());
        }
        let key = ServiceConfigKey::builder()
            .service_id(service.id())
            .env("AWS_ENDPOINT_URL")
            .profile("endpoint_url")
            .build()
            .expect("every field is set");
        self.sdk
            .service_config()
            .and_then(|config| config.load_config(key))
            .or_else(|| self.sdk.endpoint_url().map(str::to_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_specific_endpoint_variables_are_named_as_the_sdk_reads_them() {
        assert_eq!(Service::S3.endpoint_variable(), "AWS_ENDPOINT_URL_S3");
        assert_eq!(Service::Sns.endpoint_variable(), "AWS_ENDPOINT_URL_SNS");
        assert_eq!(
            Service::Rekognition.endpoint_variable(),
            "AWS_ENDPOINT_URL_REKOGNITION"
        );
    }

    #[tokio::test]
    async fn every_client_of_a_service_counts_into_the_one_counter_of_the_context() {
        let aws = AwsContext::load(&AwsSettings {
            region: Some("us-east-1".into()),
            endpoint_url: Some("http://127.0.0.1:1".into()),
            ..AwsSettings::default()
        })
        .await
        .unwrap();
        let shared = aws.clone();
        let first = aws.counter(Service::Translate);
        let second = shared.counter(Service::Translate);
        let other = aws.counter(Service::Comprehend);
        assert!(
            first.shares_counts_with(&second),
            "two Translate clients of one process count apart"
        );
        assert!(!first.shares_counts_with(&other));
        let services: Vec<_> = aws.request_stats().into_iter().map(|(s, _)| s).collect();
        assert_eq!(services, [Service::Translate, Service::Comprehend]);
    }
}
