//! scooter-pickups as two stages on the month runner: enrich (the ingested table's
//! e-scooter requests → the engines, through the month's answer cache →
//! `enriched.parquet`) and its publish (`enriched.parquet` → `scooter_pickups.{csv,html}`
//! on the site, index last). The runner gives them what the monthly stages have:
//! manifests, skip-unchanged, `--force`, `--resume`, dry run and stops.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Cursor;

use bytes::Bytes;
use gid_core::{Config, Month, Profile};
use gid_enrich::cache::AnswerCache;
use gid_enrich::pickups::{
    enrich_requests, plan, EnrichPlan, EnrichedRequest, ImageStatus, PickupRules, ScooterRequest,
};
use gid_enrich::ports::{Sentiment, SentimentScores};
use gid_ingest::IngestError;
use gid_publish::{page_key, table_csv, table_page, MonthNav, PageText, RenderedFile, TextTable};
use gid_storage::PutOptions;
use polars_core::prelude::*;
use polars_io::prelude::ParquetReader;
use polars_io::SerReader;

use super::publish::{site_config_hash, site_plan};
use super::runner::{MonthContext, OnStop, Ran, StageRun};
use super::StageOutcome;
use super::{MonthOutcome, MonthRun, Progress, RunError, Stage, StageError};
use crate::manifest::{self, Manifest, ObjectRef};

/// What the enrich stage of a month found and asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Enriched {
    /// The month's e-scooter requests (`enrich.service_name`).
    pub requests: usize,
    /// Descriptions translated into English before their sentiment was judged.
    pub translated: usize,
    /// Requests naming a photo, and of those the ones whose photo is not in the bucket.
    pub with_photo: usize,
    /// Of those, the photos not in the images bucket.
    pub missing_photos: usize,
    /// Photos labelled as showing a scooter.
    pub scooter_photos: usize,
    /// Descriptions judged negative.
    pub negative: usize,
    /// Requests with both: a scooter in the photo and a negative description.
    pub pickups: usize,
    /// Engine calls made this run (cache misses), per engine.
    pub engine_calls: BTreeMap<String, u64>,
    /// Inputs (texts or photos) sent to each engine this run.
    pub engine_inputs: BTreeMap<String, u64>,
    /// Answers taken from the month's cache instead of an engine.
    pub cache_hits: u64,
    /// `enriched.parquet`, as its put returned it.
    pub written: Vec<ObjectRef>,
}

impl fmt::Display for Enriched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let calls: u64 = self.engine_calls.values().sum();
        write!(
            f,
            "{} e-scooter requests, {} translated, {} photos ({} missing), {} show a scooter, \
             {} negative · pickups {} · engine calls {calls}, cache hits {}",
            self.requests,
            self.translated,
            self.with_photo,
            self.missing_photos,
            self.scooter_photos,
            self.negative,
            self.pickups,
            self.cache_hits,
        )
    }
}

/// What a dry run of the enrich stage found: what it would ask of the engines.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichPlanned {
    /// The month planned.
    pub month: Month,
    /// `None` when the month has no ingested table yet: a run ingests it first, and only
    /// then is there anything to count.
    pub plan: Option<EnrichPlan>,
    /// The AWS list price of the plan (`enrich.prices`), on the aws profile.
    pub estimated_cost_usd: Option<f64>,
}

impl EnrichPlanned {
    /// Why nothing could be counted, when the month was never ingested.
    pub fn not_ingested_reason(&self) -> Option<String> {
        self.plan.is_none().then(|| {
            format!(
                "not ingested yet: a run would ingest the month first; run `monthly-report \
                 --month {} --stage ingest` to count the engine calls",
                self.month
            )
        })
    }
}

impl fmt::Display for EnrichPlanned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(plan) = &self.plan else {
            return write!(
                f,
                "enrich {}",
                self.not_ingested_reason().unwrap_or_default()
            );
        };
        write!(
            f,
            "enrich would ask: language {} texts ({} chars), translate up to {} texts ({} \
             chars), sentiment up to {} texts ({} chars), labels for {} photos of {} e-scooter \
             requests",
            plan.language_texts,
            plan.language_characters,
            plan.translate_texts,
            plan.translate_characters,
            plan.sentiment_texts,
            plan.sentiment_characters,
            plan.images,
            plan.requests,
        )?;
        match self.estimated_cost_usd {
            Some(cost) => write!(f, " · estimated AWS cost ${cost:.4}"),
            None => write!(f, " · local engines: no per-call cost"),
        }
    }
}

/// How the enrichment is judged, from configuration.
pub(crate) fn pickup_rules(config: &Config) -> PickupRules {
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
pub(crate) fn estimate_cost(config: &Config, plan: &EnrichPlan) -> f64 {
    let p = &config.enrich.prices;
    let units =
        |texts: usize, chars: usize| ((chars as f64 / 100.0).ceil()).max(3.0 * texts as f64);
    p.translate_per_million_characters * plan.translate_characters as f64 / 1e6
        + p.comprehend_per_unit
            * (units(plan.language_texts, plan.language_characters)
                + units(plan.sentiment_texts, plan.sentiment_characters))
        + p.rekognition_per_image * plan.images as f64
}

/// The enrich stage.
pub(crate) struct EnrichStage;

impl StageRun for EnrichStage {
    const STAGE: Stage = Stage::Enrich;
    /// The engines' answers are paid for: a stop ends the engines' work, but the stage
    /// still saves the answers it got to the cache before it returns.
    const ON_STOP: OnStop = OnStop::SafePoints;
    type Found = ();

    fn config_hash(&self, c: &Config) -> String {
        let e = &c.enrich;
        manifest::config_hash(&[
            c.buckets.work.as_str(),
            c.buckets.images.as_str(),
            // The engines: local and AWS ones answer differently.
            c.profile.as_str(),
            &e.service_name,
            &e.cache_name,
            &e.scooter_labels.join(","),
            &format!(
                "{} {} {} {}",
                e.max_labels, e.min_confidence, e.scooter_confidence, e.language_min_score
            ),
        ])
    }

    /// The ingested table.
    async fn inputs(&self, ctx: &MonthContext<'_>) -> Result<(Vec<ObjectRef>, ()), StageError> {
        ctx.only_input(ctx.keys.requests(), "ingested table", Stage::Ingest)
            .await
    }

    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        let run = ctx.run;
        let config = &run.config;
        let planned = |plan, estimated_cost_usd| {
            StageOutcome::EnrichPlanned(Box::new(EnrichPlanned {
                month: ctx.month,
                plan,
                estimated_cost_usd,
            }))
        };
        match ctx
            .work_input(ctx.keys.requests(), "ingested table", Stage::Ingest)
            .await
        {
            Ok(_) => {}
            Err(StageError::MissingInput { .. }) => return Ok(planned(None, None)),
            Err(e) => return Err(e),
        }
        let requests = month_requests(ctx).await?;
        let cache = AnswerCache::load(
            run.store.as_ref(),
            run.work(),
            &ctx.keys.enrich_cache(&config.enrich.cache_name),
        )
        .await?;
        let asked = plan(
            run.engines().ok_or_else(not_wired)?,
            &pickup_rules(config),
            run.store.as_ref(),
            &cache,
            &requests,
        )
        .await?;
        let cost = (config.engines() == Profile::Aws).then(|| estimate_cost(config, &asked));
        Ok(planned(Some(asked), cost))
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, (): ()) -> Result<Ran, StageError> {
        let run = ctx.run;
        let engines = run.engines().ok_or_else(not_wired)?;
        let requests = month_requests(ctx).await?;
        let store = run.store.as_ref();
        let cache_key = ctx.keys.enrich_cache(&run.config.enrich.cache_name);
        let mut cache = AnswerCache::load(store, run.work(), &cache_key).await?;
        let rules = pickup_rules(&run.config);
        let enriched = tokio::select! {
            enriched = enrich_requests(engines, &rules, store, &mut cache, &requests) => Some(enriched),
            () = run.shutdown.requested() => None,
        };
        // Answers already paid for are kept even when a later engine failed or the run
        // was stopped.
        cache.save(store, run.work(), &cache_key).await?;
        let Some(enriched) = enriched else {
            return Err(run.interrupted().expect("requested"));
        };
        let rows = enriched?;
        let key = ctx.keys.enriched();
        let table_error = |doing| {
            let (bucket, key) = (run.work().to_string(), key.to_string());
            move |source| StageError::EnrichedTable {
                doing,
                bucket,
                key,
                source,
            }
        };
        let mut table = enriched_frame(&rows).map_err(table_error("build"))?;
        let parquet = gid_ingest::to_parquet(&mut table).map_err(|e| match e {
            IngestError::Combine(source) => table_error("serialise")(source),
            other => other.into(),
        })?;
        let written = store
            .put(
                run.work(),
                &key,
                Bytes::from(parquet),
                &PutOptions::new("application/vnd.apache.parquet"),
            )
            .await?;
        let mut enriched = Enriched::of(&rows, &cache);
        enriched
            .written
            .push(ObjectRef::written(run.work(), &written));
        ctx.enriched = Some(table);
        Ok(Ran {
            outcome: StageOutcome::Enriched(Box::new(enriched)),
            bucket: run.work().clone(),
            written: vec![written],
        })
    }
}

/// A run set up without engines ([`MonthRun::with_engines`]).
fn not_wired() -> StageError {
    StageError::NotWired {
        stage: Stage::Enrich,
        what: "the enrichment engines",
    }
}

impl Enriched {
    /// The counts of a month's enriched requests and of the cache that answered them.
    fn of(rows: &[EnrichedRequest], cache: &AnswerCache) -> Self {
        let count = |f: fn(&EnrichedRequest) -> bool| rows.iter().filter(|r| f(r)).count();
        Self {
            requests: rows.len(),
            translated: count(|r| r.translated),
            with_photo: count(|r| r.image.is_some()),
            missing_photos: count(|r| r.image_status == ImageStatus::Missing),
            scooter_photos: count(|r| r.img_scooter),
            negative: count(|r| {
                r.sentiment
                    .is_some_and(|s| s.sentiment == Sentiment::Negative)
            }),
            pickups: count(|r| r.pickup),
            engine_calls: cache.calls.clone(),
            engine_inputs: cache.inputs_sent.clone(),
            cache_hits: cache.hits,
            written: Vec::new(),
        }
    }
}

/// The month's requests of the configured service, from the table ingest handed on or
/// from the persisted one.
async fn month_requests(ctx: &MonthContext<'_>) -> Result<Vec<ScooterRequest>, StageError> {
    let frame = match &ctx.table {
        Some(frame) => return Ok(scooter_requests(frame, &ctx.run.config.enrich.service_name)),
        None => ctx.load_table().await?,
    };
    Ok(scooter_requests(
        &frame,
        &ctx.run.config.enrich.service_name,
    ))
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

/// One of the four sentiment probabilities.
type ScoreOf = fn(&SentimentScores) -> f32;

/// The enriched table: every e-scooter request with every new column.
fn enriched_frame(rows: &[EnrichedRequest]) -> PolarsResult<DataFrame> {
    let text = |f: &dyn Fn(&EnrichedRequest) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(f).collect()
    };
    let score = |f: &dyn Fn(&EnrichedRequest) -> Option<f32>| -> Vec<Option<f32>> {
        rows.iter().map(f).collect()
    };
    let flag = |f: fn(&EnrichedRequest) -> bool| -> Vec<bool> { rows.iter().map(f).collect() };
    let mut columns = vec![
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
        Column::new("translated".into(), flag(|r| r.translated)),
        Column::new(
            "sentiment".into(),
            text(&|r| r.sentiment.map(|s| s.sentiment.as_str().to_owned())),
        ),
    ];
    let scores: [(&str, ScoreOf); 4] = [
        ("sentiment_positive", |s| s.positive),
        ("sentiment_negative", |s| s.negative),
        ("sentiment_neutral", |s| s.neutral),
        ("sentiment_mixed", |s| s.mixed),
    ];
    columns.extend(scores.map(|(name, of)| {
        Column::new(name.into(), score(&|r| r.sentiment.map(|s| of(&s.scores))))
    }));
    columns.extend([
        Column::new("image".into(), text(&|r| r.image.clone())),
        Column::new(
            "image_status".into(),
            text(&|r| Some(r.image_status.as_str().to_owned())),
        ),
        Column::new("image_labels".into(), text(&|r| Some(labels_text(r)))),
        Column::new("img_scooter".into(), flag(|r| r.img_scooter)),
        Column::new("pickup".into(), flag(|r| r.pickup)),
    ]);
    DataFrame::new(rows.len(), columns)
}

/// The publish of scooter-pickups: the month's pickups page and table, then the index.
pub(crate) struct PickupsPublishStage;

/// The month's pickups files.
/// The page (last) each other language of `publish.languages` gets too.
const PICKUPS_FILES: [&str; 2] = ["scooter_pickups.csv", "scooter_pickups.html"];

impl StageRun for PickupsPublishStage {
    const STAGE: Stage = Stage::PickupsPublish;
    const ON_STOP: OnStop = OnStop::SafePoints;
    type Found = ();

    fn config_hash(&self, c: &Config) -> String {
        site_config_hash(c)
    }

    /// The enriched table.
    async fn inputs(&self, ctx: &MonthContext<'_>) -> Result<(Vec<ObjectRef>, ()), StageError> {
        ctx.only_input(ctx.keys.enriched(), "enriched table", Stage::Enrich)
            .await
    }

    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        Ok(site_plan(
            ctx,
            Self::STAGE,
            ctx.keys.enriched(),
            &PICKUPS_FILES,
            &PICKUPS_FILES[1..],
        ))
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, (): ()) -> Result<Ran, StageError> {
        let run = ctx.run;
        let frame = match ctx.enriched.take() {
            Some(frame) => frame,
            None => load_enriched(ctx).await?,
        };
        let rows = PickupRows::of(&frame);
        let services = [run.config.enrich.service_name.clone()];
        let texts = run
            .page_texts(ctx.month, &services, &page_sentences(ctx.month, &rows))
            .await?;
        let files = render(&run.layout, ctx.month, &rows, &texts);
        let (published, ran) = run.publish_stage(&files).await?;
        Ok(ran(StageOutcome::PickupsPublished(published)))
    }

    async fn unchanged(&self, ctx: &MonthContext<'_>, last: &Manifest) -> Result<(), StageError> {
        ctx.run.repair_index(ctx.month, last).await
    }
}

/// Reads the month's persisted enriched table.
async fn load_enriched(ctx: &MonthContext<'_>) -> Result<DataFrame, StageError> {
    let run = ctx.run;
    let key = ctx.keys.enriched();
    let object = run.store.get(run.work(), &key).await.map_err(|e| {
        if e.is_not_found() {
            ctx.missing_input(&key, "enriched table", Stage::Enrich)
        } else {
            e.into()
        }
    })?;
    let body = object.body;
    tokio::task::spawn_blocking(move || ParquetReader::new(Cursor::new(body)).finish())
        .await
        .expect("parquet reader panicked")
        .map_err(|source| StageError::EnrichedTable {
            doing: "read",
            bucket: run.work().to_string(),
            key: key.to_string(),
            source,
        })
}

/// The enriched table's columns that the pickups page shows, read as text.
struct PickupRows {
    height: usize,
    text: BTreeMap<&'static str, Option<StringChunked>>,
    language_score: Option<Float32Chunked>,
    img_scooter: Option<BooleanChunked>,
    pickup: Option<BooleanChunked>,
}

impl PickupRows {
    fn of(frame: &DataFrame) -> Self {
        let flag = |name: &str| frame.column(name).ok().and_then(|c| c.bool().ok().cloned());
        // What the files show as text, and the photo's status; `pickup` is a flag.
        let text = CSV_HEADERS
            .into_iter()
            .filter(|&name| name != "pickup")
            .chain(["image_status"])
            .map(|name| (name, text_column(frame, name)))
            .collect();
        Self {
            height: frame.height(),
            text,
            language_score: frame
                .column("language_score")
                .ok()
                .and_then(|c| c.f32().ok().cloned()),
            img_scooter: flag("img_scooter"),
            pickup: flag("pickup"),
        }
    }

    fn text(&self, name: &str, i: usize) -> Option<&str> {
        self.text.get(name)?.as_ref()?.get(i)
    }

    fn is(column: &Option<BooleanChunked>, i: usize) -> bool {
        column.as_ref().and_then(|c| c.get(i)).unwrap_or(false)
    }

    fn is_pickup(&self, i: usize) -> bool {
        Self::is(&self.pickup, i)
    }

    fn count(&self, f: impl Fn(usize) -> bool) -> usize {
        (0..self.height).filter(|&i| f(i)).count()
    }

    /// A row as the CSV and the page show it.
    fn cells(&self, i: usize) -> Vec<String> {
        let text = |name| self.text(name, i).unwrap_or_default().to_owned();
        let language = match (
            self.text("language", i),
            self.language_score.as_ref().and_then(|c| c.get(i)),
        ) {
            (Some(code), Some(score)) => format!("{code} ({score:.2})"),
            _ => String::new(),
        };
        let image = match self.text("image", i) {
            Some(key) => format!("{key} ({})", text("image_status")),
            None => String::new(),
        };
        vec![
            text("service_request_id"),
            text("public_description"),
            language,
            text("description_en"),
            text("sentiment"),
            image,
            text("image_labels"),
            if self.is_pickup(i) { "yes" } else { "no" }.to_owned(),
        ]
    }
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

/// The pickups page's own sentences (English), translated with the site's other text.
fn page_sentences(month: Month, rows: &PickupRows) -> [String; 5] {
    let with_photo = rows.count(|i| rows.text("image", i).is_some());
    let missing =
        rows.count(|i| rows.text("image_status", i) == Some(ImageStatus::Missing.as_str()));
    let scooters = rows.count(|i| PickupRows::is(&rows.img_scooter, i));
    let negative = rows.count(|i| rows.text("sentiment", i) == Some(Sentiment::Negative.as_str()));
    let pickups = rows.count(|i| rows.is_pickup(i));
    [
        format!("E-scooter pickups, {month}"),
        format!(
            "{} e-scooter requests; {with_photo} with a photo ({missing} missing), \
             {scooters} photos labelled as showing a scooter, {negative} descriptions \
             negative.",
            rows.height
        ),
        format!("Pickups (a scooter in the photo and a negative description): {pickups}."),
        "Pickups".to_owned(),
        "Every e-scooter request analysed".to_owned(),
    ]
}

/// The pickups CSV and the page in each language of `texts` (English first), whose own
/// sentences come translated with them.
fn render(
    layout: &gid_core::Layout,
    month: Month,
    rows: &PickupRows,
    texts: &[(PageText, BTreeMap<String, String>)],
) -> Vec<RenderedFile> {
    const PAGE: &str = "scooter_pickups.html";
    let all: Vec<Vec<String>> = (0..rows.height).map(|i| rows.cells(i)).collect();
    let pickups: Vec<Vec<String>> = (0..rows.height)
        .filter(|&i| rows.is_pickup(i))
        .map(|i| all[i].clone())
        .collect();
    let csv = table_csv(&CSV_HEADERS, &pickups);
    let headers: Vec<String> = CSV_HEADERS.iter().map(|h| h.to_string()).collect();
    let langs: Vec<String> = texts.iter().map(|(t, _)| t.lang().to_owned()).collect();
    let mut files = vec![RenderedFile::csv(
        layout.month_key(month, "scooter_pickups.csv"),
        csv,
    )];
    for (text, translated) in texts {
        let [title, requests, pickup_count, pickups_caption, all_caption] =
            page_sentences(month, rows).map(|s| translated.get(&s).cloned().unwrap_or(s));
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

impl MonthRun {
    /// Runs scooter-pickups for one month: enrich and its publish, with ingest first
    /// when the month has no ingested table yet.
    pub async fn scooter_pickups(&self, month: Month, progress: &dyn Progress) -> MonthOutcome {
        let mut ctx = MonthContext::new(self, month, progress);
        let mut stages = vec![Stage::Enrich, Stage::PickupsPublish];
        // One HEAD decides whether ingest runs; the enrich stage then takes the table's
        // ETag from `known` (or from what ingest wrote) instead of asking again.
        match ctx
            .work_input(ctx.keys.requests(), "ingested table", Stage::Ingest)
            .await
        {
            Ok(table) => ctx.known.push(table),
            Err(StageError::MissingInput { .. }) => {
                tracing::info!(%month, "no ingested table yet: running ingest first");
                stages.insert(0, Stage::Ingest);
            }
            Err(source) => {
                return MonthOutcome {
                    month,
                    stages: vec![],
                    failure: Some(RunError {
                        month,
                        stage: Stage::Enrich,
                        source,
                    }),
                    elapsed: std::time::Duration::ZERO,
                }
            }
        }
        self.run_chain(ctx, &stages).await
    }
}

#[cfg(test)]
mod tests;
