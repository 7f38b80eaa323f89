//! The scooter-pickups run of a month: the ingested table (ingest runs first when it is
//! absent) → the month's e-scooter requests → enrichment through the cached engines →
//! `enriched.parquet` in the work bucket and `scooter_pickups.{csv,html}` on the site
//! (index regenerated last).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gid_core::{Config, Month, Profile, WorkKeys};
use gid_enrich::cache::AnswerCache;
use gid_enrich::pickups::{
    enrich_requests, plan, Engines, EnrichPlan, EnrichedRequest, PickupRules, ScooterRequest,
};
use gid_enrich::EnrichError;
use gid_ingest::IngestError;
use gid_publish::{page_key, table_csv, table_page, MonthNav, PageText, RenderedFile, TextTable};
use gid_storage::PutOptions;
use polars_core::prelude::*;

use crate::manifest::ObjectRef;
use crate::month::MonthEnd;
use crate::{MonthRun, Progress, RunError, Stage, StageError, StageOutcome};

/// What went wrong in a scooter-pickups month.
#[derive(Debug, thiserror::Error)]
pub enum ScooterError {
    #[error("{month}: {source}")]
    Run {
        month: Month,
        #[source]
        source: Box<RunError>,
    },
    #[error("{month} enrich: {source}")]
    Enrich {
        month: Month,
        #[source]
        source: EnrichError,
    },
    #[error("{month} enrich: {source}")]
    Stage {
        month: Month,
        #[source]
        source: StageError,
    },
}

/// What a month's scooter-pickups run did (or would do, in a dry run).
#[derive(Debug, Clone, Default)]
pub struct ScooterOutcome {
    pub month: Option<Month>,
    pub requests: usize,
    pub translated: usize,
    pub with_photo: usize,
    pub missing_photos: usize,
    pub scooter_photos: usize,
    pub negative: usize,
    pub pickups: usize,
    /// Engine calls made this run (cache misses), per engine.
    pub engine_calls: BTreeMap<String, u64>,
    /// Inputs (texts or photos) sent to each engine this run.
    pub engine_inputs: BTreeMap<String, u64>,
    pub cache_hits: u64,
    pub ingested_first: bool,
    /// `enriched.parquet` and the site files, as their puts returned them.
    pub written: Vec<ObjectRef>,
    /// Dry run on a month that was never ingested: nothing could be counted.
    pub dry_run_needs_ingest: bool,
    /// Dry run: what enrichment would ask, and its estimated cost on AWS.
    pub plan: Option<(EnrichPlan, Option<f64>)>,
    pub elapsed: Duration,
}

impl ScooterOutcome {
    pub fn summary_line(&self) -> String {
        let month = self.month.map(|m| m.to_string()).unwrap_or_default();
        if self.dry_run_needs_ingest {
            return format!(
                "{month} dry run · not ingested yet: a run would ingest the month first; run `monthly-report --month {month} --stage ingest` to count the engine calls"
            );
        }
        if let Some((plan, cost)) = &self.plan {
            return format!(
                "{month} dry run · {} e-scooter requests · would ask: language {} texts ({} chars), translate up to {} texts ({} chars), sentiment up to {} texts ({} chars), labels for {} photos{}",
                plan.requests,
                plan.language_texts,
                plan.language_characters,
                plan.translate_texts,
                plan.translate_characters,
                plan.sentiment_texts,
                plan.sentiment_characters,
                plan.images,
                cost.map(|c| format!(" · estimated AWS cost ${c:.4}")).unwrap_or_default()
            );
        }
        let calls: u64 = self.engine_calls.values().sum();
        format!(
            "{month} ok · {} e-scooter requests, {} translated, {} photos ({} missing), {} show a scooter, {} negative · pickups {} · engine calls {calls}, cache hits {}{} · {:.2}s",
            self.requests,
            self.translated,
            self.with_photo,
            self.missing_photos,
            self.scooter_photos,
            self.negative,
            self.pickups,
            self.cache_hits,
            if self.ingested_first { " · ingested first" } else { "" },
            self.elapsed.as_secs_f64()
        )
    }
}

/// How the enrichment is judged, from configuration.
pub fn pickup_rules(config: &Config) -> PickupRules {
    let e = &config.enrich;
    PickupRules {
        images_bucket: config.buckets.images.clone(),
        max_labels: e.max_labels,
        min_confidence: e.min_confidence,
        scooter_labels: e.scooter_labels.clone(),
        scooter_confidence: e.scooter_confidence,
        language_min_score: e.language_min_score,
        image_concurrency: e.image_concurrency,
    }
}

/// The AWS list-price estimate of a plan (Translate per character, Comprehend per
/// 100-character unit with a 3-unit minimum, Rekognition per image).
pub fn estimate_cost(config: &Config, plan: &EnrichPlan) -> f64 {
    let p = &config.enrich.prices;
    let units =
        |texts: usize, chars: usize| ((chars as f64 / 100.0).ceil()).max(3.0 * texts as f64);
    p.translate_per_million_characters * plan.translate_characters as f64 / 1e6
        + p.comprehend_per_unit
            * (units(plan.language_texts, plan.language_characters)
                + units(plan.sentiment_texts, plan.sentiment_characters))
        + p.rekognition_per_image * plan.images as f64
}

fn text_column(frame: &DataFrame, name: &str) -> Option<StringChunked> {
    frame
        .column(name)
        .ok()
        .and_then(|c| c.cast(&DataType::String).ok())
        .and_then(|c| c.str().ok().cloned())
}

/// The month's requests of the configured service.
fn scooter_requests(frame: &DataFrame, service_name: &str) -> Vec<ScooterRequest> {
    let Some(services) = text_column(frame, "service_name") else {
        return vec![];
    };
    let ids = text_column(frame, "service_request_id");
    let descriptions = text_column(frame, "public_description");
    let images = text_column(frame, "image");
    let get =
        |c: &Option<StringChunked>, i: usize| c.as_ref().and_then(|c| c.get(i)).map(str::to_owned);
    services
        .iter()
        .enumerate()
        .filter(|(_, s)| s.map(str::trim) == Some(service_name))
        .map(|(i, _)| ScooterRequest {
            id: get(&ids, i).unwrap_or_else(|| format!("row-{}", i + 1)),
            description: get(&descriptions, i),
            image: get(&images, i).filter(|v| !v.trim().is_empty()),
        })
        .collect()
}

fn labels_text(r: &EnrichedRequest) -> String {
    r.image_labels
        .iter()
        .map(|l| format!("{} {:.1}", l.name, l.confidence))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The enriched table: every e-scooter request with every new column.
fn enriched_frame(rows: &[EnrichedRequest]) -> PolarsResult<DataFrame> {
    let text = |f: &dyn Fn(&EnrichedRequest) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(f).collect()
    };
    let score = |f: &dyn Fn(&EnrichedRequest) -> Option<f32>| -> Vec<Option<f32>> {
        rows.iter().map(f).collect()
    };
    let columns = vec![
        Column::new("service_request_id".into(), text(&|r| Some(r.id.clone()))),
        Column::new(
            "public_description".into(),
            text(&|r| r.description.clone()),
        ),
        Column::new(
            "language".into(),
            text(&|r| r.language.as_ref().map(|l| l.code.to_string())),
        ),
        Column::new(
            "language_score".into(),
            score(&|r| r.language.as_ref().map(|l| l.score)),
        ),
        Column::new("description_en".into(), text(&|r| r.description_en.clone())),
        Column::new(
            "translated".into(),
            rows.iter().map(|r| r.translated).collect::<Vec<_>>(),
        ),
        Column::new(
            "sentiment".into(),
            text(&|r| r.sentiment.map(|s| s.sentiment.as_str().to_owned())),
        ),
        Column::new(
            "sentiment_positive".into(),
            score(&|r| r.sentiment.map(|s| s.scores.positive)),
        ),
        Column::new(
            "sentiment_negative".into(),
            score(&|r| r.sentiment.map(|s| s.scores.negative)),
        ),
        Column::new(
            "sentiment_neutral".into(),
            score(&|r| r.sentiment.map(|s| s.scores.neutral)),
        ),
        Column::new(
            "sentiment_mixed".into(),
            score(&|r| r.sentiment.map(|s| s.scores.mixed)),
        ),
        Column::new("image".into(), text(&|r| r.image.clone())),
        Column::new(
            "image_status".into(),
            text(&|r| Some(r.image_status.as_str().to_owned())),
        ),
        Column::new("image_labels".into(), text(&|r| Some(labels_text(r)))),
        Column::new(
            "img_scooter".into(),
            rows.iter().map(|r| r.img_scooter).collect::<Vec<_>>(),
        ),
        Column::new(
            "pickup".into(),
            rows.iter().map(|r| r.pickup).collect::<Vec<_>>(),
        ),
    ];
    DataFrame::new(rows.len(), columns)
}

const CSV_HEADERS: [&str; 8] = [
    "service_request_id",
    "public_description",
    "language",
    "description_en",
    "sentiment",
    "image",
    "image_labels",
    "pickup",
];

fn row_cells(r: &EnrichedRequest) -> Vec<String> {
    vec![
        r.id.clone(),
        r.description.clone().unwrap_or_default(),
        r.language
            .as_ref()
            .map(|l| format!("{} ({:.2})", l.code, l.score))
            .unwrap_or_default(),
        r.description_en.clone().unwrap_or_default(),
        r.sentiment
            .map(|s| s.sentiment.as_str().to_owned())
            .unwrap_or_default(),
        match &r.image {
            Some(key) => format!("{key} ({})", r.image_status.as_str()),
            None => String::new(),
        },
        labels_text(r),
        if r.pickup { "yes" } else { "no" }.to_owned(),
    ]
}

/// The pickups page's own sentences (English), translated with the site's other text.
fn page_sentences(month: Month, o: &ScooterOutcome) -> [String; 5] {
    [
        format!("E-scooter pickups, {month}"),
        format!(
            "{} e-scooter requests; {} with a photo ({} missing), {} photos labelled as showing a scooter, {} descriptions negative.",
            o.requests, o.with_photo, o.missing_photos, o.scooter_photos, o.negative
        ),
        format!("Pickups (a scooter in the photo and a negative description): {}.", o.pickups),
        "Pickups".to_owned(),
        "Every e-scooter request analysed".to_owned(),
    ]
}

fn render(
    layout: &gid_core::Layout,
    month: Month,
    rows: &[EnrichedRequest],
    o: &ScooterOutcome,
    texts: &[(PageText, BTreeMap<String, String>)],
) -> Vec<RenderedFile> {
    const PAGE: &str = "scooter_pickups.html";
    let pickups: Vec<Vec<String>> = rows.iter().filter(|r| r.pickup).map(row_cells).collect();
    let all: Vec<Vec<String>> = rows.iter().map(row_cells).collect();
    let csv = table_csv(&CSV_HEADERS, &pickups);
    let headers: Vec<String> = CSV_HEADERS.iter().map(|h| h.to_string()).collect();
    let langs: Vec<String> = texts.iter().map(|(t, _)| t.lang().to_owned()).collect();
    let mut files = vec![RenderedFile::csv(
        layout.month_key(month, "scooter_pickups.csv"),
        csv,
    )];
    for (text, translated) in texts {
        let [title, requests, pickup_count, pickups_caption, all_caption] =
            page_sentences(month, o).map(|s| translated.get(&s).cloned().unwrap_or(s));
        let nav = MonthNav::new(layout, month).in_language(text.lang(), &langs);
        let html = table_page(
            PAGE,
            &title,
            &nav,
            text,
            &[requests, pickup_count],
            &[
                TextTable {
                    caption: pickups_caption,
                    headers: headers.clone(),
                    rows: pickups.clone(),
                },
                TextTable {
                    caption: all_caption,
                    headers: headers.clone(),
                    rows: all.clone(),
                },
            ],
        );
        files.push(RenderedFile::html(
            page_key(layout, month, text.lang(), PAGE),
            html,
        ));
    }
    files
}

/// A month's scooter-pickups run: the ingest it needed first, what enrichment did or why
/// it failed, and how long the month took.
#[derive(Debug)]
pub struct ScooterMonth {
    pub month: Month,
    /// The ingest stage, when the month had no ingested table yet and ingest ran first.
    pub ingested: Option<StageOutcome>,
    pub result: Result<ScooterOutcome, ScooterError>,
    pub elapsed: Duration,
}

impl MonthEnd for ScooterMonth {
    fn month(&self) -> Month {
        self.month
    }
    fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl MonthRun {
    /// Runs scooter-pickups for one month (ingesting it first when its table is absent).
    pub async fn scooter_pickups(
        &self,
        month: Month,
        engines: &Engines,
        progress: &dyn Progress,
    ) -> ScooterMonth {
        let started = Instant::now();
        let mut ingested = None;
        let result = self
            .scooter_month(month, engines, progress, &mut ingested)
            .await;
        ScooterMonth {
            month,
            ingested,
            result,
            elapsed: started.elapsed(),
        }
    }

    async fn scooter_month(
        &self,
        month: Month,
        engines: &Engines,
        progress: &dyn Progress,
        ingested: &mut Option<StageOutcome>,
    ) -> Result<ScooterOutcome, ScooterError> {
        let started = Instant::now();
        let keys = WorkKeys::new(&self.layout, month);
        let stage_error = |source: StageError| ScooterError::Stage { month, source };
        if let Some(stopped) = self.interrupted() {
            return Err(stage_error(stopped));
        }
        let mut outcome = ScooterOutcome {
            month: Some(month),
            ..ScooterOutcome::default()
        };
        let table_exists = match self.store.head(self.work(), &keys.requests()).await {
            Ok(_) => true,
            Err(e) if e.is_not_found() => false,
            Err(e) => return Err(stage_error(e.into())),
        };
        if !table_exists {
            if self.options.dry_run {
                // Without the table there is nothing to count; say what a real run does first.
                outcome.dry_run_needs_ingest = true;
                outcome.elapsed = started.elapsed();
                return Ok(outcome);
            }
            tracing::info!(%month, "no ingested table yet: running ingest first");
            let mut ingest = self.run_month(month, &[Stage::Ingest], progress).await;
            *ingested = ingest.stages.pop();
            if let Some(e) = ingest.failure {
                return Err(ScooterError::Run {
                    month,
                    source: Box::new(e),
                });
            }
            outcome.ingested_first = true;
        }
        let frame = gid_ingest::load_table(self.store.as_ref(), self.work(), &keys)
            .await
            .map_err(|e: IngestError| stage_error(e.into()))?;
        let requests = scooter_requests(&frame, &self.config.enrich.service_name);
        drop(frame);
        outcome.requests = requests.len();

        let cache_key = keys.enrich_cache(&self.config.enrich.cache_name);
        let enrich_error = |source: EnrichError| ScooterError::Enrich { month, source };
        let mut cache = AnswerCache::load(self.store.as_ref(), self.work(), &cache_key)
            .await
            .map_err(enrich_error)?;
        let rules = pickup_rules(&self.config);
        if self.options.dry_run {
            let planned = plan(engines, &rules, self.store.as_ref(), &cache, &requests)
                .await
                .map_err(enrich_error)?;
            let cost = (self.config.profile == Profile::Aws)
                .then(|| estimate_cost(&self.config, &planned));
            outcome.plan = Some((planned, cost));
            outcome.elapsed = started.elapsed();
            return Ok(outcome);
        }
        let enriched = tokio::select! {
            enriched = enrich_requests(engines, &rules, self.store.as_ref(), &mut cache, &requests) => Some(enriched),
            () = self.shutdown.requested() => None,
        };
        // Answers already paid for are kept even when a later engine failed or the run
        // was stopped.
        cache
            .save(self.store.as_ref(), self.work(), &cache_key)
            .await
            .map_err(enrich_error)?;
        let Some(enriched) = enriched else {
            return Err(stage_error(self.interrupted().expect("requested")));
        };
        let rows = enriched.map_err(enrich_error)?;
        outcome.translated = rows.iter().filter(|r| r.translated).count();
        outcome.with_photo = rows.iter().filter(|r| r.image.is_some()).count();
        outcome.missing_photos = rows
            .iter()
            .filter(|r| r.image_status == gid_enrich::pickups::ImageStatus::Missing)
            .count();
        outcome.scooter_photos = rows.iter().filter(|r| r.img_scooter).count();
        outcome.negative = rows
            .iter()
            .filter(|r| {
                r.sentiment
                    .is_some_and(|s| s.sentiment == gid_enrich::ports::Sentiment::Negative)
            })
            .count();
        outcome.pickups = rows.iter().filter(|r| r.pickup).count();
        outcome.engine_calls = cache.calls.clone();
        outcome.engine_inputs = cache.inputs_sent.clone();
        outcome.cache_hits = cache.hits;

        let mut table =
            enriched_frame(&rows).map_err(|e| stage_error(IngestError::Combine(e).into()))?;
        let parquet = gid_ingest::to_parquet(&mut table).map_err(|e| stage_error(e.into()))?;
        let enriched = self
            .store
            .write(
                self.work(),
                &keys.enriched(),
                Bytes::from(parquet),
                &PutOptions::new("application/vnd.apache.parquet"),
            )
            .await
            .map_err(|e| stage_error(e.into()))?;
        outcome
            .written
            .push(ObjectRef::written(self.work(), &enriched));
        let services = [self.config.enrich.service_name.clone()];
        let texts = self
            .page_texts(month, &services, &page_sentences(month, &outcome))
            .await
            .map_err(stage_error)?;
        let files = render(&self.layout, month, &rows, &outcome, &texts);
        let published = self
            .publish_files(&files, None)
            .await
            .map_err(|e| match e {
                gid_publish::PublishError::Stopped => {
                    stage_error(self.interrupted().unwrap_or(StageError::Publish(e)))
                }
                e => stage_error(e.into()),
            })?;
        let reports = &self.config.buckets.reports;
        outcome.written.extend(
            published
                .objects
                .iter()
                .map(|w| ObjectRef::written(reports, w)),
        );
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    }
}

/// Runs scooter-pickups over months, at most `jobs` at once; results in calendar order.
pub async fn scooter_months(
    run: &MonthRun,
    engines: &Engines,
    months: &[Month],
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<ScooterMonth> {
    crate::for_each_month(months, jobs, progress, |month| {
        run.scooter_pickups(month, engines, progress)
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
/// the process's shared AWS configuration.
pub fn aws_engines(config: &Config, aws: &gid_aws::AwsContext) -> Engines {
    let settings = aws_enrich_settings(config);
    let comprehend = Arc::new(gid_enrich::aws::AwsComprehend::new(aws, &settings));
    Engines {
        language: comprehend.clone(),
        translator: Arc::new(gid_enrich::aws::AwsTranslator::new(aws, &settings)),
        sentiment: comprehend,
        labeler: Arc::new(gid_enrich::aws::AwsRekognition::new(aws, &settings)),
    }
}
