use std::sync::Arc;

use gid_core::{Config, Profile};
use gid_notify::{
    InvalidInput, LocalOutbox, Notifier, SnsNotifier, SnsSettings, Threshold, TopicName,
};
use gid_storage::{LocalStore, ObjectStore, S3Settings, S3Store, StorageError};

/// Why the configured backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("configuration notify.thresholds: {0}")]
    Threshold(#[from] InvalidInput),
}

/// Opens the notifier the configuration names: the local outbox, or SNS.
pub async fn open_notifier(config: &Config) -> Arc<dyn Notifier> {
    match config.profile {
        Profile::Local => Arc::new(LocalOutbox::new(&config.notify.outbox_dir)),
        Profile::Aws => {
            let mut settings = SnsSettings::from_config(&config.aws);
            if let Some(endpoint) = &config.notify.sns_endpoint_url {
                settings.endpoint_url = Some(endpoint.clone());
            }
            Arc::new(SnsNotifier::connect(&settings).await)
        }
    }
}

#[cfg(feature = "enrich")]
/// Opens the enrichment engines the configuration names: the offline engines (Lingua,
/// Apertium, VADER, EfficientNet-Lite0) or AWS Comprehend, Translate and Rekognition.
pub async fn open_engines(
    config: &Config,
    store: Arc<dyn ObjectStore>,
) -> Result<gid_enrich::pickups::Engines, gid_enrich::EnrichError> {
    match config.profile {
        Profile::Local => crate::scooter::local_engines(store),
        Profile::Aws => Ok(crate::scooter::aws_engines(config).await),
    }
}

/// The configured alert thresholds, validated.
pub fn thresholds(config: &Config) -> Result<Vec<Threshold>, BackendError> {
    config
        .notify
        .thresholds
        .iter()
        .map(|t| {
            let topic = TopicName::new(t.topic.clone())?;
            let label = t.label.clone().unwrap_or_else(|| t.service_name.clone());
            Ok(Threshold::new(
                t.service_name.clone(),
                t.above,
                topic,
                label,
            )?)
        })
        .collect()
}

/// Opens the object store the configuration names.
pub async fn open_store(config: &Config) -> Result<Arc<dyn ObjectStore>, BackendError> {
    Ok(match config.profile {
        Profile::Local => Arc::new(LocalStore::open(&config.local.data_root)?),
        Profile::Aws => Arc::new(S3Store::connect(&S3Settings::from_config(&config.aws)).await),
    })
}

/// Creates the buckets gid writes to when running locally, where a bucket is just a folder.
/// On AWS buckets are infrastructure: a missing one is reported, not created behind the
/// operator's back.
pub async fn prepare_buckets(config: &Config, store: &dyn ObjectStore) -> Result<(), BackendError> {
    if config.profile == Profile::Local {
        for bucket in [&config.buckets.work, &config.buckets.reports] {
            store.create_bucket(bucket).await?;
        }
    }
    Ok(())
}
