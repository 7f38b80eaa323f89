use std::sync::Arc;

use gid_aws::{AwsContext, AwsSettings, AwsSetupError};
use gid_core::{Config, Profile};
use gid_notify::{
    DepartmentTable, InvalidInput, LocalOutbox, SmsAttributes, SnsNotifier, Threshold, TopicAdmin,
    TopicName, TopicPrefix,
};
use gid_storage::{Backend, LocalStore, S3Options, S3Store, StorageError};

/// Why the configured backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    /// The object store could not be opened.
    Storage(#[from] StorageError),
    #[error(transparent)]
    /// The AWS configuration could not be loaded.
    Aws(#[from] AwsSetupError),
    #[error("configuration notify.thresholds: {0}")]
    /// A `notify.thresholds` entry cannot work (its topic name).
    Threshold(#[from] InvalidInput),
    #[error("configuration {key}: {source}")]
    /// A `[notify]` setting cannot work.
    Notify {
        /// The setting's key, e.g. `notify.topic_prefix`.
        key: &'static str,
        /// Why it cannot work.
        source: InvalidInput,
    },
}

/// The process's one AWS configuration, once something asked for it.
static AWS: tokio::sync::OnceCell<AwsContext> = tokio::sync::OnceCell::const_new();

/// Requests of the services whose clients count through the process's AWS configuration
/// (the enrichment engines: `translate`, `comprehend`, `rekognition`), by their run-summary
/// names; S3 and SNS are read from the store and the notifier. Empty when no such client
/// was built, so a run on the offline engines lists none and loads no AWS configuration.
pub fn counted_requests() -> Vec<(&'static str, gid_core::RequestStats)> {
    AWS.get().map_or_else(Vec::new, |aws| {
        aws.request_stats()
            .into_iter()
            .map(|(service, stats)| (service.summary_name(), stats))
            .collect()
    })
}

/// The process's AWS configuration: loaded once, on first use, and shared by every client
/// (S3, SNS, Translate, Comprehend, Rekognition), so credentials are resolved and cached
/// once. A process runs one configuration, so the first caller's is the one.
pub async fn aws_context(config: &Config) -> Result<&'static AwsContext, BackendError> {
    Ok(AWS
        .get_or_try_init(|| async {
            AwsContext::load(&AwsSettings::from_config(&config.aws)).await
        })
        .await?)
}

/// Opens the notifier the configuration names: the local outbox, or SNS; either sends
/// every message with the `[notify.sms]` attributes. Both halves of the port: a run that
/// only sends takes it as `Arc<dyn Notifier>`.
pub async fn open_notifier(config: &Config) -> Result<Arc<dyn TopicAdmin>, BackendError> {
    let sms = sms_attributes(config)?;
    Ok(match config.profile {
        Profile::Local => {
            Arc::new(LocalOutbox::new(&config.notify.outbox_dir).with_sms_attributes(sms))
        }
        Profile::Aws => Arc::new(
            SnsNotifier::new(
                aws_context(config).await?,
                config.notify.sns_endpoint_url.as_deref(),
            )
            .with_sms_attributes(sms),
        ),
    })
}

/// The configured `[notify.sms]` attributes.
pub fn sms_attributes(config: &Config) -> Result<SmsAttributes, BackendError> {
    SmsAttributes::from_config(&config.notify.sms).map_err(|source| BackendError::Notify {
        key: "notify.sms",
        source,
    })
}

/// The configured `notify.topic_prefix`.
pub fn topic_prefix(config: &Config) -> Result<TopicPrefix, BackendError> {
    TopicPrefix::new(config.notify.topic_prefix.clone()).map_err(|source| BackendError::Notify {
        key: "notify.topic_prefix",
        source,
    })
}

/// The configured department → topic table (`[notify.departments]`, `notify.default_topic`).
pub fn departments(config: &Config) -> Result<DepartmentTable, BackendError> {
    let notify = &config.notify;
    let topic = |key: &'static str, name: &str| {
        TopicName::new(name).map_err(|source| BackendError::Notify { key, source })
    };
    let listed = notify
        .departments
        .iter()
        .map(|(department, name)| Ok((department.clone(), topic("notify.departments", name)?)))
        .collect::<Result<Vec<_>, BackendError>>()?;
    DepartmentTable::new(
        listed,
        topic("notify.default_topic", &notify.default_topic)?,
    )
    .map_err(|source| BackendError::Notify {
        key: "notify.departments",
        source,
    })
}

#[cfg(feature = "enrich")]
/// Opens the enrichment engines `enrich.engines` names (by default the profile's): the
/// offline engines (Lingua, Apertium, VADER, EfficientNet-Lite0) or AWS Comprehend,
/// Translate and Rekognition, whichever backend `store` is.
pub async fn open_engines(
    config: &Config,
    store: Arc<dyn gid_storage::ObjectStore>,
) -> Result<gid_enrich::pickups::Engines, gid_enrich::EnrichError> {
    match config.engines() {
        Profile::Local => crate::scooter::local_engines(store),
        Profile::Aws => Ok(crate::scooter::aws_engines(
            config,
            enrich_aws_context(config).await?,
            store,
        )),
    }
}

#[cfg(feature = "enrich")]
/// Amazon Rekognition for photos in `store`: it fetches them from S3 itself on the aws
/// profile; on the local one (`enrich.engines = "aws"` over folders) gid reads each photo
/// and sends its bytes, since Rekognition cannot reach a folder.
pub(crate) fn rekognition(
    aws: &AwsContext,
    settings: &gid_enrich::aws::AwsEnrichSettings,
    config: &Config,
    store: Arc<dyn gid_storage::ObjectStore>,
) -> gid_enrich::aws::AwsRekognition {
    let rekognition = gid_enrich::aws::AwsRekognition::new(aws, settings);
    match config.profile {
        Profile::Aws => rekognition,
        Profile::Local => rekognition.sending_bytes_from(store),
    }
}

#[cfg(feature = "enrich")]
/// The process's AWS configuration, as an engine error (an engine cannot run without it).
async fn enrich_aws_context(
    config: &Config,
) -> Result<&'static AwsContext, gid_enrich::EnrichError> {
    aws_context(config)
        .await
        .map_err(|e| gid_enrich::EnrichError::Engine {
            engine: "aws".into(),
            message: e.to_string(),
        })
}

#[cfg(feature = "enrich")]
/// One engine of the configured family (`enrich.engines`, by default the profile's), opened alone: a command that asks one question
/// (gid-admin's `translate`, `labels`, ...) should neither load the image model nor
/// need it installed to translate a sentence.
pub mod engine {
    use std::sync::Arc;

    use gid_core::{Config, Profile};
    use gid_enrich::ports::{
        ImageLabeler, LanguageDetector, SentimentAnalyzer, TextDetector, Translator,
    };
    use gid_enrich::{aws, local, EnrichError};

    use crate::scooter::aws_enrich_settings;

    /// Apertium, or Amazon Translate.
    pub async fn translator(config: &Config) -> Result<Arc<dyn Translator>, EnrichError> {
        Ok(match config.engines() {
            Profile::Local => Arc::new(local::ApertiumTranslator::default()),
            Profile::Aws => Arc::new(aws::AwsTranslator::new(
                super::enrich_aws_context(config).await?,
                &aws_enrich_settings(config),
            )),
        })
    }

    /// Lingua, or Amazon Comprehend.
    pub async fn language_detector(
        config: &Config,
    ) -> Result<Arc<dyn LanguageDetector>, EnrichError> {
        Ok(match config.engines() {
            Profile::Local => Arc::new(local::LinguaDetector::default()),
            Profile::Aws => Arc::new(comprehend(config).await?),
        })
    }

    /// VADER, or Amazon Comprehend.
    pub async fn sentiment_analyzer(
        config: &Config,
    ) -> Result<Arc<dyn SentimentAnalyzer>, EnrichError> {
        Ok(match config.engines() {
            Profile::Local => Arc::new(local::VaderSentiment::default()),
            Profile::Aws => Arc::new(comprehend(config).await?),
        })
    }

    /// EfficientNet-Lite0 on images from `store`, or Amazon Rekognition.
    pub async fn image_labeler(
        config: &Config,
        store: Arc<dyn gid_storage::ObjectStore>,
    ) -> Result<Arc<dyn ImageLabeler>, EnrichError> {
        Ok(match config.engines() {
            Profile::Local => Arc::new(local::LocalImageLabeler::new(
                store,
                local::labels::ImageClassifier::load_default()?,
            )),
            Profile::Aws => Arc::new(rekognition(config, store).await?),
        })
    }

    /// Tesseract on images from `store`, or Amazon Rekognition.
    pub async fn text_detector(
        config: &Config,
        store: Arc<dyn gid_storage::ObjectStore>,
    ) -> Result<Arc<dyn TextDetector>, EnrichError> {
        Ok(match config.engines() {
            Profile::Local => Arc::new(local::TesseractTextDetector::new(store)),
            Profile::Aws => Arc::new(rekognition(config, store).await?),
        })
    }

    async fn comprehend(config: &Config) -> Result<aws::AwsComprehend, EnrichError> {
        let aws = super::enrich_aws_context(config).await?;
        Ok(aws::AwsComprehend::new(aws, &aws_enrich_settings(config)))
    }

    async fn rekognition(
        config: &Config,
        store: Arc<dyn gid_storage::ObjectStore>,
    ) -> Result<aws::AwsRekognition, EnrichError> {
        let aws = super::enrich_aws_context(config).await?;
        Ok(super::rekognition(
            aws,
            &aws_enrich_settings(config),
            config,
            store,
        ))
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
pub async fn open_store(config: &Config) -> Result<Arc<dyn Backend>, BackendError> {
    Ok(match config.profile {
        Profile::Local => Arc::new(LocalStore::open(&config.local.data_root)?),
        Profile::Aws => Arc::new(S3Store::new(
            aws_context(config).await?,
            &S3Options::from_config(&config.aws),
        )),
    })
}

/// Creates the buckets gid writes to when running locally, where a bucket is just a folder.
/// On AWS buckets are infrastructure: a missing one is reported, not created behind the
/// operator's back.
pub async fn prepare_buckets(config: &Config, store: &dyn Backend) -> Result<(), BackendError> {
    if config.profile == Profile::Local {
        for bucket in [&config.buckets.work, &config.buckets.reports] {
            store.create_bucket(bucket).await?;
        }
    }
    Ok(())
}
