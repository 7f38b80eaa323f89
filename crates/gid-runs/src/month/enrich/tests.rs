//! scooter-pickups' stages on the in-memory store, with scripted engines: what runs,
//! what is recorded, what is skipped, and which stage a failure is reported under.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use gid_core::{BucketName, Config, ObjectKey};
use gid_enrich::pickups::Engines;
use gid_enrich::ports::{
    DetectedLanguage, EngineId, ImageLabel, ImageLabeler, ImageRef, LanguageCode, LanguageDetector,
    SentimentAnalyzer, SentimentResult, SentimentScores, Translation, Translator,
};
use gid_enrich::EnrichError;
use gid_storage::{list_all, Backend, PutOptions};

use super::*;
use crate::month::tests::{assert_hash_follows, january, kinds, runner, world};
use crate::month::RunOptions;

/// Engines that answer by rule and count the inputs they are asked about: Spanish is
/// any text with an `ñ` or starting with `El `/`La `, every text is negative, every
/// photo shows a scooter, and `fail_sentiment` makes the sentiment engine refuse.
#[derive(Debug, Default)]
struct Scripted {
    asked: AtomicU64,
    fail_sentiment: bool,
}

impl Scripted {
    fn count(&self, inputs: usize) {
        self.asked.fetch_add(inputs as u64, Ordering::SeqCst);
    }
}

#[async_trait]
impl LanguageDetector for Scripted {
    fn engine(&self) -> EngineId {
        EngineId("scripted-language".into())
    }
    async fn detect(&self, texts: &[String]) -> Result<Vec<DetectedLanguage>, EnrichError> {
        self.count(texts.len());
        Ok(texts
            .iter()
            .map(|t| {
                let spanish = t.contains('ñ') || t.starts_with("El ") || t.starts_with("La ");
                DetectedLanguage {
                    code: LanguageCode(if spanish { "es" } else { "en" }.into()),
                    score: 0.99,
                }
            })
            .collect())
    }
}

#[async_trait]
impl Translator for Scripted {
    fn engine(&self) -> EngineId {
        EngineId("scripted-translate".into())
    }
    async fn translate(
        &self,
        texts: &[String],
        _source: Option<&LanguageCode>,
        _target: &LanguageCode,
    ) -> Result<Vec<Translation>, EnrichError> {
        self.count(texts.len());
        Ok(texts
            .iter()
            .map(|t| Translation {
                text: format!("in English: {t}"),
                source_language: LanguageCode("es".into()),
            })
            .collect())
    }
}

#[async_trait]
impl SentimentAnalyzer for Scripted {
    fn engine(&self) -> EngineId {
        EngineId("scripted-sentiment".into())
    }
    async fn sentiment(&self, english: &[String]) -> Result<Vec<SentimentResult>, EnrichError> {
        if self.fail_sentiment {
            return Err(EnrichError::Engine {
                engine: "scripted-sentiment".into(),
                message: "not installed".into(),
            });
        }
        self.count(english.len());
        let negative = SentimentResult {
            sentiment: Sentiment::Negative,
            scores: SentimentScores {
                positive: 0.0,
                negative: 0.9,
                neutral: 0.1,
                mixed: 0.0,
            },
        };
        Ok(vec![negative; english.len()])
    }
}

#[async_trait]
impl ImageLabeler for Scripted {
    fn engine(&self) -> EngineId {
        EngineId("scripted-labels".into())
    }
    async fn labels(
        &self,
        _image: &ImageRef,
        _max_labels: usize,
        _min_confidence: f32,
    ) -> Result<Vec<ImageLabel>, EnrichError> {
        self.count(1);
        Ok(vec![ImageLabel {
            name: "Scooter".into(),
            confidence: 97.0,
        }])
    }
}

fn engines(scripted: &Arc<Scripted>) -> Engines {
    Engines {
        language: scripted.clone(),
        translator: scripted.clone(),
        sentiment: scripted.clone(),
        labeler: scripted.clone(),
    }
}

/// January's sample exports and one more export of three e-scooter requests: two with
/// a photo in the images bucket (one described in Spanish), one whose photo is missing.
async fn scooter_world(root: &std::path::Path) -> (Config, Arc<dyn Backend>) {
    let (config, store) = world(root).await;
    let export = "service_request_id,date_requested,service_name,public_description,image\n\
        s-1,2019-01-03T08:00:00,Shared Mobility Device,Scooter blocking the ramp,2019/s-1.jpg\n\
        s-2,2019-01-04T08:00:00,Shared Mobility Device,El patinete bloquea la acera,2019/s-2.jpg\n\
        s-3,2019-01-05T08:00:00,Shared Mobility Device,Scooter on the lawn,2019/s-3.jpg\n";
    let put = |bucket: &BucketName, key: &str, body: &'static [u8]| {
        let store = Arc::clone(&store);
        let (bucket, key) = (bucket.clone(), ObjectKey::new(key).unwrap());
        async move {
            store
                .put(
                    &bucket,
                    &key,
                    Bytes::from_static(body),
                    &PutOptions::new("text/csv"),
                )
                .await
                .unwrap();
        }
    };
    put(
        &config.buckets.requests,
        "2019/jan/scooters.csv",
        export.as_bytes(),
    )
    .await;
    let images = &config.buckets.images;
    store.create_bucket(images).await.unwrap();
    for key in ["2019/s-1.jpg", "2019/s-2.jpg"] {
        put(images, key, b"a photo").await;
    }
    (config, store)
}

async fn pickups(
    config: &Config,
    store: &Arc<dyn Backend>,
    scripted: &Arc<Scripted>,
    options: RunOptions,
) -> MonthOutcome {
    runner(config, store, options)
        .with_engines(engines(scripted))
        .scooter_pickups(january(), &())
        .await
}

async fn read(store: &Arc<dyn Backend>, bucket: &BucketName, key: &str) -> Bytes {
    store
        .get(bucket, &ObjectKey::new(key).unwrap())
        .await
        .unwrap()
        .body
}

fn enriched(outcome: &MonthOutcome) -> &Enriched {
    outcome
        .stages
        .iter()
        .find_map(|s| match s {
            StageOutcome::Enriched(e) => Some(&**e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no enrich outcome: {:?}", outcome.stages))
}

#[tokio::test]
async fn a_month_never_ingested_is_ingested_then_enriched_then_published_with_three_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = scooter_world(dir.path()).await;
    let scripted = Arc::new(Scripted::default());
    let outcome = pickups(&config, &store, &scripted, RunOptions::default()).await;
    assert!(outcome.is_ok(), "{:?}", outcome.failure);
    assert_eq!(
        kinds(&outcome),
        [
            (Stage::Ingest, "ran"),
            (Stage::Enrich, "ran"),
            (Stage::PickupsPublish, "ran")
        ]
    );
    let counts = enriched(&outcome);
    assert_eq!(
        (counts.with_photo, counts.missing_photos, counts.translated),
        (3, 1, 1),
        "{counts:?}"
    );
    assert_eq!(
        counts.pickups, 2,
        "a stored photo and a negative description"
    );

    let work = list_all(store.as_ref(), &config.buckets.work, "2019/jan/manifests/")
        .await
        .unwrap();
    let manifests: Vec<&str> = work.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        manifests,
        [
            "2019/jan/manifests/enrich.json",
            "2019/jan/manifests/ingest.json",
            "2019/jan/manifests/publish-pickups.json",
        ]
    );
    // The table rows of the CSV are the pickups, rendered from the enriched table.
    let csv = read(
        &store,
        &config.buckets.reports,
        "2019/jan/scooter_pickups.csv",
    )
    .await;
    let rows = csv::Reader::from_reader(&csv[..]).records().count();
    assert_eq!(rows, counts.pickups);
    let index = read(&store, &config.buckets.reports, "index.html").await;
    assert!(String::from_utf8_lossy(&index).contains("2019/jan/scooter_pickups.html"));
}

#[tokio::test]
async fn an_unchanged_rerun_skips_enrich_and_its_publish_and_asks_no_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = scooter_world(dir.path()).await;
    let scripted = Arc::new(Scripted::default());
    pickups(&config, &store, &scripted, RunOptions::default()).await;
    let asked = scripted.asked.load(Ordering::SeqCst);
    assert!(asked > 0);

    let again = pickups(&config, &store, &scripted, RunOptions::default()).await;
    assert_eq!(
        kinds(&again),
        [
            (Stage::Enrich, "unchanged"),
            (Stage::PickupsPublish, "unchanged")
        ],
        "the table exists, so ingest does not run again"
    );
    assert_eq!(scripted.asked.load(Ordering::SeqCst), asked);
}

#[tokio::test]
async fn force_reruns_enrich_from_the_answer_cache_without_asking_the_engines() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = scooter_world(dir.path()).await;
    let scripted = Arc::new(Scripted::default());
    pickups(&config, &store, &scripted, RunOptions::default()).await;
    let asked = scripted.asked.load(Ordering::SeqCst);

    let force = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    let forced = pickups(&config, &store, &scripted, force).await;
    assert_eq!(
        kinds(&forced),
        [(Stage::Enrich, "ran"), (Stage::PickupsPublish, "ran")]
    );
    let counts = enriched(&forced);
    assert!(counts.engine_calls.is_empty(), "{counts:?}");
    assert!(counts.cache_hits > 0, "{counts:?}");
    assert_eq!(scripted.asked.load(Ordering::SeqCst), asked);
}

#[tokio::test]
async fn a_changed_publish_setting_republishes_from_the_enriched_table_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, store) = scooter_world(dir.path()).await;
    let scripted = Arc::new(Scripted::default());
    pickups(&config, &store, &scripted, RunOptions::default()).await;
    let reports = config.buckets.reports.clone();
    let page = read(&store, &reports, "2019/jan/scooter_pickups.html").await;
    let csv = read(&store, &reports, "2019/jan/scooter_pickups.csv").await;

    config.publish.report_cache_control = "no-store".into();
    let again = pickups(&config, &store, &scripted, RunOptions::default()).await;
    assert_eq!(
        kinds(&again),
        [(Stage::Enrich, "unchanged"), (Stage::PickupsPublish, "ran")]
    );
    // Read back from enriched.parquet, the files say what they said when enrich handed
    // its table over in memory.
    assert_eq!(
        read(&store, &reports, "2019/jan/scooter_pickups.html").await,
        page
    );
    assert_eq!(
        read(&store, &reports, "2019/jan/scooter_pickups.csv").await,
        csv
    );
}

#[tokio::test]
async fn a_dry_run_of_a_month_never_ingested_plans_ingest_and_says_enrich_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = scooter_world(dir.path()).await;
    let scripted = Arc::new(Scripted::default());
    let dry = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let planned = pickups(&config, &store, &scripted, dry).await;
    assert!(planned.is_ok(), "{:?}", planned.failure);
    assert_eq!(planned.stages.len(), 3, "{:?}", planned.stages);
    let StageOutcome::EnrichPlanned(enrich) = &planned.stages[1] else {
        panic!("{:?}", planned.stages[1])
    };
    assert!(enrich.plan.is_none());
    assert!(enrich
        .not_ingested_reason()
        .unwrap()
        .contains("--month 2019-01 --stage ingest"));
    assert_eq!(scripted.asked.load(Ordering::SeqCst), 0);
    let written = list_all(store.as_ref(), &config.buckets.work, "")
        .await
        .unwrap();
    assert!(written.is_empty(), "{written:?}");
}

#[tokio::test]
async fn a_dry_run_of_an_ingested_month_counts_what_the_engines_would_be_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = scooter_world(dir.path()).await;
    let scripted = Arc::new(Scripted::default());
    runner(&config, &store, RunOptions::default())
        .run_month(january(), &[Stage::Ingest], &())
        .await;
    let dry = RunOptions {
        dry_run: true,
        ..RunOptions::default()
    };
    let planned = pickups(&config, &store, &scripted, dry).await;
    let StageOutcome::EnrichPlanned(enrich) = &planned.stages[0] else {
        panic!("{:?}", planned.stages)
    };
    let plan = enrich.plan.as_ref().expect("the table is there to count");
    assert_eq!(plan.images, 2, "the stored photos: {plan:?}");
    assert_eq!(enrich.estimated_cost_usd, None, "no prices offline");
    assert_eq!(
        scripted.asked.load(Ordering::SeqCst),
        0,
        "a plan asks nothing"
    );
}

#[tokio::test]
async fn a_failing_engine_fails_enrich_keeps_its_manifest_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = scooter_world(dir.path()).await;
    let scripted = Arc::new(Scripted {
        fail_sentiment: true,
        ..Scripted::default()
    });
    let outcome = pickups(&config, &store, &scripted, RunOptions::default()).await;
    let failure = outcome.failure.expect("the sentiment engine failed");
    assert_eq!(failure.stage, Stage::Enrich);
    assert!(
        matches!(
            failure.source,
            StageError::Enrich(EnrichError::Engine { .. })
        ),
        "{failure}"
    );
    let manifest = crate::manifest::load(
        store.as_ref(),
        &config.buckets.work,
        &ObjectKey::new("2019/jan/manifests/enrich.json").unwrap(),
    )
    .await
    .unwrap()
    .expect("the failed run is recorded");
    assert_eq!(manifest.state, crate::manifest::RunState::Failed);
    let site = list_all(store.as_ref(), &config.buckets.reports, "")
        .await
        .unwrap();
    assert!(site.is_empty(), "{site:?}");
}

#[tokio::test]
async fn a_site_that_cannot_be_written_fails_the_publish_stage_not_enrich() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, store) = scooter_world(dir.path()).await;
    config.buckets.reports = BucketName::new("no-such-site").unwrap();
    let scripted = Arc::new(Scripted::default());
    let outcome = pickups(&config, &store, &scripted, RunOptions::default()).await;
    assert_eq!(
        kinds(&outcome),
        [(Stage::Ingest, "ran"), (Stage::Enrich, "ran")]
    );
    let failure = outcome.failure.expect("no site bucket");
    assert_eq!(failure.stage, Stage::PickupsPublish, "{failure}");
    assert!(
        matches!(failure.source, StageError::Publish(_)),
        "{failure}"
    );
}

#[test]
fn the_enrich_hash_changes_with_the_enrich_settings_and_not_with_the_publish_ones() {
    assert_hash_follows(
        &EnrichStage,
        |c| c.enrich.scooter_confidence += 1.0,
        |c| c.publish.report_cache_control = "no-store".into(),
    );
}

#[test]
fn the_pickups_publish_hash_changes_with_the_publish_settings_and_not_with_the_enrich_ones() {
    assert_hash_follows(
        &PickupsPublishStage,
        |c| c.publish.report_cache_control = "no-store".into(),
        |c| c.enrich.scooter_confidence += 1.0,
    );
}
