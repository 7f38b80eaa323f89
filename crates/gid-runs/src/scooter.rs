//! scooter-pickups over months, and the engines it opens. A month is the enrich stage
//! and its publish on the month runner (`month/enrich.rs`), with ingest first when the
//! month has no ingested table yet.

use std::sync::Arc;
use std::time::Duration;

use gid_core::{Config, Month};
use gid_enrich::pickups::Engines;
use gid_enrich::EnrichError;

use crate::{MonthOutcome, MonthRun, Progress};

/// Runs scooter-pickups over months, at most `jobs` at once; outcomes in calendar order.
/// The run must have its engines ([`MonthRun::with_engines`]).
pub async fn scooter_months(
    run: &MonthRun,
    months: &[Month],
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<MonthOutcome> {
    crate::for_each_month(months, jobs, progress, |month| {
        run.scooter_pickups(month, progress)
    })
    .await
}

/// The engines the configured profile uses (local: Lingua, Apertium, VADER, EfficientNet).
pub fn local_engines(store: Arc<dyn gid_storage::ObjectStore>) -> Result<Engines, EnrichError> {
    let classifier = gid_enrich::local::labels::ImageClassifier::load_default()?;
    Ok(Engines {
        language: Arc::new(gid_enrich::local::LinguaDetector::default()),
        translator: Arc::new(gid_enrich::local::ApertiumTranslator::default()),
        sentiment: Arc::new(gid_enrich::local::VaderSentiment::default()),
        labeler: Arc::new(gid_enrich::local::LocalImageLabeler::new(store, classifier)),
    })
}

/// The AWS adapters' settings: `[aws]` with `[enrich.aws]`'s endpoint and pace.
pub fn aws_enrich_settings(config: &Config) -> gid_enrich::aws::AwsEnrichSettings {
    let pacing = &config.enrich.aws;
    let mut settings = gid_enrich::aws::AwsEnrichSettings::from_aws_config(&config.aws);
    settings.endpoint_url = pacing.endpoint_url.clone();
    settings.max_concurrency =
        std::num::NonZeroUsize::new(pacing.max_concurrency).expect("validated at load");
    settings.requests_per_second = std::num::NonZeroU32::new(pacing.requests_per_second);
    settings.initial_backoff = Duration::from_millis(pacing.initial_backoff_ms);
    settings
}

/// The AWS engines: Comprehend (language, sentiment), Translate, Rekognition (labels), on
/// the process's shared AWS configuration; photos come from `store`.
pub fn aws_engines(
    config: &Config,
    aws: &gid_aws::AwsContext,
    store: Arc<dyn gid_storage::ObjectStore>,
) -> Engines {
    let settings = aws_enrich_settings(config);
    let comprehend = Arc::new(gid_enrich::aws::AwsComprehend::new(aws, &settings));
    Engines {
        language: comprehend.clone(),
        translator: Arc::new(gid_enrich::aws::AwsTranslator::new(aws, &settings)),
        sentiment: comprehend,
        labeler: Arc::new(crate::backend::rekognition(aws, &settings, config, store)),
    }
}
