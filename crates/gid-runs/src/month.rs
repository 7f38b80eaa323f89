//! One month's stages: the [`Stage`] names, their outcomes and errors, and [`MonthRun`],
//! which chains them. Each stage is a value implementing [`runner::StageRun`] in its own
//! module; the runner does the bookkeeping they share once.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gid_aggregate::{AggregateError, MonthSummary};
use gid_core::{BucketName, Config, Layout, Month, WorkKeys};
use gid_ingest::{IngestError, IngestSource};
use gid_publish::{PublishError, ReportSite, SiteSettings};
use gid_storage::{Backend, ObjectMeta, ObjectStore, StorageError};
use tracing::Instrument;

use crate::manifest::{Manifest, ObjectRef};
use crate::shutdown::{Shutdown, StopReason};

mod aggregate;
#[cfg(feature = "enrich")]
mod enrich;
#[cfg(feature = "enrich")]
pub use enrich::{EnrichPlanned, Enriched};
mod ingest;
mod notify;
mod publish;
mod runner;

use runner::{with_stage, MonthContext};

/// A stage of the monthly report, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The month's exports → the request table.
    Ingest,
    /// The request table → the month's summary.
    Aggregate,
    /// The summary → the report files on the site, then the index.
    Publish,
    /// Threshold alerts, after the site is up so the alert can point people at it.
    Notify,
    /// scooter-pickups: the month's e-scooter requests through the enrichment engines →
    /// `enriched.parquet` (the engines' answers cached beside it).
    #[cfg(feature = "enrich")]
    Enrich,
    /// scooter-pickups: `enriched.parquet` → `scooter_pickups.{csv,html}` on the site,
    /// then the site's index.
    #[cfg(feature = "enrich")]
    PickupsPublish,
}

impl Stage {
    /// The monthly report's stages (the ones `--stage` names).
    pub const ALL: [Stage; 4] = [
        Stage::Ingest,
        Stage::Aggregate,
        Stage::Publish,
        Stage::Notify,
    ];

    /// Its name in manifests, `--stage` and the run summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Aggregate => "aggregate",
            Stage::Publish => "publish",
            Stage::Notify => "notify",
            #[cfg(feature = "enrich")]
            Stage::Enrich => "enrich",
            #[cfg(feature = "enrich")]
            Stage::PickupsPublish => "publish-pickups",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| format!("unknown stage `{s}`: use ingest, aggregate, publish or notify"))
    }
}

/// What went wrong in one stage of one month.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    /// Ingest failed.
    Ingest(#[from] IngestError),
    #[error(transparent)]
    /// Aggregation failed.
    Aggregate(#[from] AggregateError),
    #[error(transparent)]
    /// Publishing failed.
    Publish(#[from] PublishError),
    #[error(transparent)]
    /// A read or write of the object store failed.
    Storage(#[from] StorageError),
    #[error(transparent)]
    /// Notification failed (the ledger, a topic).
    Notify(#[from] gid_notify::NotifyError),
    #[error(transparent)]
    /// The run's backends could not be set up.
    Backend(#[from] crate::BackendError),
    /// An engine, the answer cache or a photo read failed.
    #[cfg(feature = "enrich")]
    #[error(transparent)]
    Enrich(#[from] gid_enrich::EnrichError),
    /// polars refused the enriched table (building, serialising or reading it).
    #[cfg(feature = "enrich")]
    #[error("could not {doing} the enriched table s3://{bucket}/{key}: {source}")]
    EnrichedTable {
        /// What was being done: `build`, `serialise` or `read`.
        doing: &'static str,
        /// The work bucket.
        bucket: String,
        /// `enriched.parquet`'s key.
        key: String,
        #[source]
        /// polars' complaint.
        source: polars_core::error::PolarsError,
    },
    /// The command set the run up without what the stage needs (a wiring fault).
    #[error("the {stage} stage needs {what}, which this command did not open")]
    NotWired {
        /// The stage.
        stage: Stage,
        /// What it needs, in words.
        what: &'static str,
    },
    #[error("{count} alert(s) not sent: {details}")]
    /// Some alerts were not sent.
    AlertsNotSent {
        /// How many.
        count: usize,
        /// Each one's topic and reason.
        details: String,
        /// Every threshold's outcome, the ones that did go out included: the run summary
        /// reports a failed notify stage with what it did send.
        outcomes: Vec<gid_notify::AlertOutcome>,
    },
    /// A stop signal ended the stage at a safe point.
    #[error("stopped by {reason} before it finished")]
    Interrupted {
        /// The signal.
        reason: StopReason,
    },
    /// The pages of `publish.languages` other than English could not be translated.
    #[cfg(feature = "enrich")]
    #[error("translating the {month} pages into `{lang}`: {source}")]
    Translate {
        /// The month whose pages were being translated.
        month: Month,
        /// The language asked for.
        lang: String,
        /// What the engine said.
        #[source]
        source: gid_enrich::EnrichError,
    },
    /// `publish.languages` asks for translated pages from a build without engines.
    #[error("publish.languages asks for {langs} pages, but this build of gid has no translation engine: set publish.languages = [\"en\"]")]
    NoTranslator {
        /// The languages asked for other than English.
        langs: String,
    },
    #[error("no {what} for {month} at s3://{bucket}/{key}")]
    /// A stage's input, written by an earlier stage, is not there.
    MissingInput {
        /// The input in words (`summary`, `ingested table`).
        what: &'static str,
        /// Its month.
        month: Month,
        /// The work bucket.
        bucket: String,
        /// The input's key.
        key: String,
        /// The stage that writes it.
        needs: Stage,
    },
}

impl StageError {
    /// Whether a stop request (SIGTERM, SIGINT), not a fault, ended the stage.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, StageError::Interrupted { .. })
    }
}

/// A failed month: which stage, and why.
#[derive(Debug, thiserror::Error)]
#[error("{month} {stage}: {source}")]
pub struct RunError {
    /// The month.
    pub month: Month,
    /// The stage that failed.
    pub stage: Stage,
    #[source]
    /// Why.
    pub source: StageError,
}

/// Why a stage did not run although it was asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipKind {
    /// Its inputs, configuration and outputs are as its last successful run left them.
    Unchanged,
    /// `--resume`: it succeeded before, and its inputs were not checked again.
    Resume,
}

/// What the ingest stage of a month did.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingested {
    /// Files, rows, quarantined rows, skipped files and dropped copies of the month.
    pub tally: gid_ingest::IngestTally,
    /// Each file that contributed nothing, by key, and why.
    pub skipped_files: Vec<(String, gid_ingest::SkipReason)>,
    /// The table, the ingest report and the quarantine objects, as their puts returned them.
    pub written: Vec<ObjectRef>,
}

/// What the aggregate stage of a month did.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregated {
    /// Requests in the month.
    pub total_requests: u64,
    /// Requests per service, most first.
    pub per_service: Vec<gid_aggregate::GroupCount>,
    /// The summary object.
    pub written: Vec<ObjectRef>,
}

/// What the publish stage of a month did.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The month's site files (the index, rewritten by every publish, is not among them).
    pub objects: Vec<ObjectRef>,
    /// Entries the regenerated index lists.
    pub index_entries: usize,
    /// With a presigned site: when the index's links stop working.
    pub links_expire_at: Option<chrono::DateTime<chrono::Utc>>,
    /// With `publish.languages` beyond English: what translating the month's pages and
    /// the trends cost.
    pub site_translations: Option<SiteTranslations>,
}

/// What translating a publish's pages cost: the month's cache and the site's together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SiteTranslations {
    /// Calls to the translation engine (one per cache and language with anything
    /// uncached).
    pub engine_calls: u64,
    /// Texts sent to it.
    pub texts_sent: u64,
    /// Texts answered from the caches.
    pub cache_hits: u64,
}

impl SiteTranslations {
    /// Adds another translation's cost to this one.
    pub fn add(&mut self, other: Self) {
        self.engine_calls += other.engine_calls;
        self.texts_sent += other.texts_sent;
        self.cache_hits += other.cache_hits;
    }
}

/// What the notify stage of a month did: one outcome per threshold checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Notified {
    /// Per threshold: sent, already sent, below, in doubt, ...
    pub outcomes: Vec<gid_notify::AlertOutcome>,
}

impl Notified {
    /// Topics alerted by this run.
    pub fn sent_topics(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, gid_notify::AlertResult::Sent { .. }))
            .map(|o| o.threshold.topic.to_string())
            .collect()
    }

    /// Thresholds crossed but already alerted for this month by an earlier run.
    pub fn already_sent(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, gid_notify::AlertResult::AlreadySent { .. }))
            .count()
    }

    /// Thresholds crossed whose alert another run, still running, was sending.
    pub fn elsewhere(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, gid_notify::AlertResult::ClaimedElsewhere { .. }))
            .count()
    }
}

/// What one stage did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutcome {
    /// Ingest ran.
    Ingested(Box<Ingested>),
    /// Aggregate ran.
    Aggregated(Aggregated),
    /// Publish ran.
    Published(Published),
    /// Notify ran.
    Notified(Notified),
    /// scooter-pickups' enrichment ran.
    #[cfg(feature = "enrich")]
    Enriched(Box<Enriched>),
    /// scooter-pickups `--dry-run`: what enrichment would ask of the engines.
    #[cfg(feature = "enrich")]
    EnrichPlanned(Box<EnrichPlanned>),
    /// scooter-pickups' page and table were published.
    #[cfg(feature = "enrich")]
    PickupsPublished(Published),
    /// It did not run: see [`SkipKind`]; `reason` says it in words.
    Skipped {
        /// The stage.
        stage: Stage,
        /// Why.
        kind: SkipKind,
        /// Why, in words.
        reason: String,
    },
    /// Dry run: what the stage would read and write.
    Planned {
        /// The stage.
        stage: Stage,
        /// `s3://bucket/key` of each input, with notes.
        reads: Vec<String>,
        /// `s3://bucket/key` of each output, with notes.
        writes: Vec<String>,
    },
}

impl StageOutcome {
    /// The stage this outcome is of.
    pub fn stage(&self) -> Stage {
        match self {
            StageOutcome::Ingested(_) => Stage::Ingest,
            StageOutcome::Aggregated(_) => Stage::Aggregate,
            StageOutcome::Published(_) => Stage::Publish,
            StageOutcome::Notified(_) => Stage::Notify,
            #[cfg(feature = "enrich")]
            StageOutcome::Enriched(_) | StageOutcome::EnrichPlanned(_) => Stage::Enrich,
            #[cfg(feature = "enrich")]
            StageOutcome::PickupsPublished(_) => Stage::PickupsPublish,
            StageOutcome::Skipped { stage, .. } | StageOutcome::Planned { stage, .. } => *stage,
        }
    }
}

/// The result of a month's stages: those that ended, in order, and the one that failed.
#[derive(Debug)]
pub struct MonthOutcome {
    /// The month.
    pub month: Month,
    /// The stages that ran, were skipped or were planned, in pipeline order.
    pub stages: Vec<StageOutcome>,
    /// The stage that failed or was interrupted; the stages after it did not start.
    pub failure: Option<RunError>,
    /// How long the month took.
    pub elapsed: Duration,
}

impl MonthOutcome {
    /// Whether every stage asked for ended without failure.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }

    /// The one-line summary printed per month that ended without failure.
    pub fn summary_line(&self) -> String {
        let mut parts = vec![format!("{} ok", self.month)];
        for stage in &self.stages {
            parts.push(match stage {
                StageOutcome::Ingested(ingested) => ingested.tally.to_string(),
                StageOutcome::Aggregated(aggregated) => format!(
                    "services {}, requests {}",
                    aggregated.per_service.len(),
                    aggregated.total_requests
                ),
                StageOutcome::Published(published) => format!(
                    "published {} objects, index lists {}{}",
                    published.objects.len(),
                    published.index_entries,
                    match published.links_expire_at {
                        Some(at) => format!(
                            " (presigned links valid until {}, sooner if the signing session \
                             ends first)",
                            at.format("%Y-%m-%d %H:%M UTC")
                        ),
                        None => String::new(),
                    }
                ),
                StageOutcome::Notified(notified) => {
                    let sent = notified.sent_topics();
                    let elsewhere = notified.elsewhere();
                    format!(
                        "alerts sent {}{}, already sent {}{}, thresholds {}",
                        sent.len(),
                        if sent.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", sent.join(", "))
                        },
                        notified.already_sent(),
                        if elsewhere > 0 {
                            format!(", being sent by another run {elsewhere}")
                        } else {
                            String::new()
                        },
                        notified.outcomes.len()
                    )
                }
                #[cfg(feature = "enrich")]
                StageOutcome::Enriched(enriched) => enriched.to_string(),
                #[cfg(feature = "enrich")]
                StageOutcome::EnrichPlanned(planned) => planned.to_string(),
                #[cfg(feature = "enrich")]
                StageOutcome::PickupsPublished(published) => format!(
                    "published {} objects, index lists {}",
                    published.objects.len(),
                    published.index_entries
                ),
                StageOutcome::Skipped { stage, reason, .. } => {
                    format!("{stage} skipped ({reason})")
                }
                StageOutcome::Planned {
                    stage,
                    reads,
                    writes,
                } => format!(
                    "{stage} would read {} and write {}",
                    reads.len(),
                    writes.len()
                ),
            });
        }
        parts.push(format!("{:.2}s", self.elapsed.as_secs_f64()));
        parts.join(" · ")
    }
}

/// How a run treats previous runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Say what would be read and written; write nothing (not even manifests).
    pub dry_run: bool,
    /// Rerun stages even when their manifest shows nothing changed.
    pub force: bool,
    /// Skip stages whose last run succeeded without re-checking their inputs
    /// (continuing an interrupted backfill cheaply).
    pub resume: bool,
    /// Send alerts left "in doubt" by a run that died between claiming and recording
    /// them (after checking they did not go out).
    pub resend_in_doubt: bool,
    /// Record alerts left "in doubt" as sent: the operator saw them go out.
    pub confirm_in_doubt: bool,
}

/// The last recorded run of one stage of a month.
#[derive(Debug, Clone)]
pub struct StageStatus {
    /// The stage.
    pub stage: Stage,
    /// Its last manifest; `None` when it never ran.
    pub last: Option<Manifest>,
    /// `Some(true)` when the inputs or configuration differ from the last successful
    /// run (the stage would run again); `None` when it never ran.
    pub inputs_changed: Option<bool>,
}

/// Observes a run, for progress bars. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A stage of `month` starts.
    fn stage_started(&self, _month: Month, _stage: Stage) {}
    /// Ingest found `files` exports in `month`.
    fn files_found(&self, _month: Month, _files: usize) {}
    /// Ingest read one export of `month`.
    fn file_done(&self, _month: Month, _meta: &ObjectMeta) {}
    /// Every stage of `month` ended; `ok` is false when one failed.
    fn month_finished(&self, _month: Month, _ok: bool) {}
}

/// Progress that shows nothing (tests, non-interactive runs).
impl Progress for () {}

/// What a run of months shares: configuration, layout and the store.
#[derive(Debug)]
pub struct MonthRun {
    /// The configuration, validated at load.
    pub config: Config,
    /// Where a month's objects are (`layout`).
    pub layout: Layout,
    /// The object store every stage reads and writes.
    pub store: Arc<dyn Backend>,
    /// Only the notify stage sends: a command that runs no notify stage opens none.
    notifier: Option<Arc<dyn gid_notify::Notifier>>,
    /// Only the enrich stage asks engines (and only scooter-pickups opens them).
    #[cfg(feature = "enrich")]
    engines: Option<gid_enrich::pickups::Engines>,
    /// Dry run, force, resume, alerts in doubt.
    pub options: RunOptions,
    /// Set when the process is asked to stop (SIGTERM, SIGINT).
    pub shutdown: Shutdown,
    /// `notify.thresholds`, validated once when the run is set up, not per month.
    thresholds: Vec<gid_notify::Threshold>,
    /// `notify.topic_prefix`, validated likewise.
    topic_prefix: gid_notify::TopicPrefix,
    /// Months of this process publishing at once take turns: the index protocol stays
    /// correct without it (see `ReportSite::rebuild_index`), but each would rebuild it again.
    site_lock: tokio::sync::Mutex<()>,
    /// Translates the pages of `publish.languages` other than English (set by the
    /// binaries that publish when there are any: [`MonthRun::with_translator`]).
    #[cfg(feature = "enrich")]
    translator: Option<Arc<dyn gid_enrich::ports::Translator>>,
}

impl MonthRun {
    /// Sets up a run; the notify settings that the configuration types cannot check
    /// (threshold topics, the topic prefix) are checked here, once, before any month.
    pub fn new(
        config: Config,
        store: Arc<dyn Backend>,
        options: RunOptions,
    ) -> Result<Self, crate::BackendError> {
        let layout = config
            .layout()
            .expect("validated when the config was loaded");
        let thresholds = crate::backend::thresholds(&config)?;
        let topic_prefix = crate::backend::topic_prefix(&config)?;
        Ok(Self {
            config,
            layout,
            store,
            notifier: None,
            #[cfg(feature = "enrich")]
            engines: None,
            options,
            shutdown: Shutdown::new(),
            thresholds,
            topic_prefix,
            site_lock: tokio::sync::Mutex::new(()),
            #[cfg(feature = "enrich")]
            translator: None,
        })
    }

    /// The notifier the notify stage sends alerts through.
    pub fn with_notifier(mut self, notifier: Arc<dyn gid_notify::Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// The engines the enrich stage asks.
    #[cfg(feature = "enrich")]
    pub fn with_engines(mut self, engines: gid_enrich::pickups::Engines) -> Self {
        self.engines = Some(engines);
        self
    }

    /// The notifier, for the notify stage.
    pub(crate) fn notifier(&self) -> Option<&dyn gid_notify::Notifier> {
        self.notifier.as_deref()
    }

    /// The engines, for the enrich stage.
    #[cfg(feature = "enrich")]
    pub(crate) fn engines(&self) -> Option<&gid_enrich::pickups::Engines> {
        self.engines.as_ref()
    }

    /// Translates the pages into `publish.languages` other than English with `translator`
    /// (Apertium or Amazon Translate, chosen as the enrich engines are).
    #[cfg(feature = "enrich")]
    pub fn with_translator(mut self, translator: Arc<dyn gid_enrich::ports::Translator>) -> Self {
        self.translator = Some(translator);
        self
    }

    /// Stops at the next safe point once `shutdown` is requested.
    pub fn with_shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    pub(crate) fn interrupted(&self) -> Option<StageError> {
        self.shutdown
            .reason()
            .map(|reason| StageError::Interrupted { reason })
    }

    /// Puts files on the report site and regenerates its index, one month at a time
    /// (the scooter pickups; a month's publish also records it in the trends).
    /// `headline`: the numbers of the month being published, for the index's header.
    #[cfg(feature = "enrich")]
    pub(crate) async fn publish_files(
        &self,
        files: &[gid_publish::RenderedFile],
        headline: Option<gid_publish::Headline>,
    ) -> Result<gid_publish::PublishedReport, PublishError> {
        let _turn = self.site_lock.lock().await;
        let shutdown = self.shutdown.clone();
        let site = match headline {
            Some(headline) => self.site().with_headline(headline),
            None => self.site(),
        };
        site.publish_unless(files, &move || shutdown.is_requested())
            .await
    }

    pub(crate) fn work(&self) -> &BucketName {
        &self.config.buckets.work
    }

    /// The last recorded run of each stage of a month, and whether its inputs changed since.
    pub async fn status(&self, month: Month) -> Result<Vec<StageStatus>, StageError> {
        let ctx = MonthContext::new(self, month, &());
        let mut statuses = Vec::new();
        for name in Stage::ALL {
            statuses.push(with_stage!(name, stage => self.stage_status(stage, &ctx).await?));
        }
        Ok(statuses)
    }

    fn source(&self, month: Month) -> IngestSource {
        IngestSource {
            bucket: self.config.buckets.requests.clone(),
            prefix: self.layout.month_prefix(month),
            suffix: self.config.ingest.suffix.clone(),
            concurrency: self.config.ingest.concurrency,
            max_inflight_bytes: self.config.ingest.max_inflight_mb * 1024 * 1024,
            rules: gid_ingest::ExportRules::from_config(&self.config.ingest),
        }
    }

    /// The service → information page table of the HTML reports.
    pub(crate) fn service_info(&self) -> gid_publish::ServiceInfo {
        let p = &self.config.publish;
        gid_publish::ServiceInfo::new(&p.service_info, p.service_info_default.clone())
    }

    fn site(&self) -> ReportSite<'_> {
        let p = &self.config.publish;
        ReportSite::new(
            self.store.as_ref(),
            self.config.buckets.reports.clone(),
            self.layout.clone(),
            SiteSettings {
                access: p.access,
                presign_expires: Duration::from_secs(p.presign_expires_secs),
                index_cache_control: p.index_cache_control.clone(),
                report_cache_control: p.report_cache_control.clone(),
            },
        )
    }

    pub(crate) fn work_url(&self, key: &impl fmt::Display) -> String {
        format!("s3://{}/{key}", self.config.buckets.work)
    }

    /// Runs `stages` (in pipeline order) for one month.
    pub async fn run_month(
        &self,
        month: Month,
        stages: &[Stage],
        progress: &dyn Progress,
    ) -> MonthOutcome {
        self.run_chain(MonthContext::new(self, month, progress), stages)
            .await
    }

    /// Runs `stages` (in pipeline order) for the month of `ctx`, handing each stage what
    /// the earlier ones left in it.
    pub(crate) async fn run_chain(
        &self,
        mut ctx: MonthContext<'_>,
        stages: &[Stage],
    ) -> MonthOutcome {
        let started = Instant::now();
        let month = ctx.month;
        let progress = ctx.progress;
        let mut stages = stages.to_vec();
        stages.sort();
        stages.dedup();
        let mut outcomes = Vec::new();
        let mut failure = None;
        for name in stages {
            let result = match self.interrupted() {
                Some(stopped) => Err(stopped),
                None => {
                    progress.stage_started(month, name);
                    let span = tracing::info_span!("stage", %month, stage = %name);
                    with_stage!(name, stage => self.run_stage(stage, &mut ctx).instrument(span).await)
                }
            };
            match result {
                Ok(outcome) => outcomes.push(outcome),
                Err(source) => {
                    failure = Some(RunError {
                        month,
                        stage: name,
                        source,
                    });
                    break;
                }
            }
        }
        MonthOutcome {
            month,
            stages: outcomes,
            failure,
            elapsed: started.elapsed(),
        }
    }

    /// Loads the month's persisted summary (the aggregate stage's output).
    pub async fn load_summary(&self, month: Month) -> Result<MonthSummary, StageError> {
        let keys = WorkKeys::new(&self.layout, month);
        let key = keys.summary();
        let object = self
            .store
            .get(&self.config.buckets.work, &key)
            .await
            .map_err(|e| {
                if e.is_not_found() {
                    StageError::MissingInput {
                        what: "summary",
                        month,
                        bucket: self.config.buckets.work.to_string(),
                        key: key.to_string(),
                        needs: Stage::Aggregate,
                    }
                } else {
                    e.into()
                }
            })?;
        Ok(MonthSummary::from_json(&self.work_url(&key), &object.body)?)
    }
}

/// Months that have objects under their prefix in `bucket`, oldest first (for `--all`).
pub async fn discover_months(
    store: &dyn ObjectStore,
    bucket: &BucketName,
    layout: &Layout,
) -> Result<Vec<Month>, StorageError> {
    let mut months: Vec<Month> = gid_storage::list_all(store, bucket, "")
        .await?
        .iter()
        .filter_map(|o| layout.month_of_key(o.key.as_str()))
        .collect();
    months.sort();
    months.dedup();
    Ok(months)
}

/// Runs the stages for every month, at most `jobs` months at once. Every month runs to
/// its own end: a failure is reported in its outcome and the others go on. Outcomes come
/// back in calendar order.
pub async fn run_months(
    run: &MonthRun,
    months: &[Month],
    stages: &[Stage],
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<MonthOutcome> {
    for_each_month(months, jobs, progress, |month| {
        run.run_month(month, stages, progress)
    })
    .await
}

/// How a month's run ended, as [`for_each_month`] orders results and tells [`Progress`].
pub trait MonthEnd {
    /// The month this result is of.
    fn month(&self) -> Month;
    /// False when the month failed or was interrupted.
    fn is_ok(&self) -> bool;
}

impl MonthEnd for MonthOutcome {
    fn month(&self) -> Month {
        self.month
    }
    fn is_ok(&self) -> bool {
        MonthOutcome::is_ok(self)
    }
}

/// Runs `work` for every month, at most `jobs` at once, telling `progress` as each month
/// ends. A month's failure stays in its result; results come back in calendar order.
pub async fn for_each_month<T, Fut>(
    months: &[Month],
    jobs: usize,
    progress: &dyn Progress,
    work: impl Fn(Month) -> Fut,
) -> Vec<T>
where
    T: MonthEnd,
    Fut: std::future::Future<Output = T>,
{
    let work = &work;
    let mut results: Vec<T> = futures::stream::iter(months.iter().copied())
        .map(|month| async move {
            let result = work(month).await;
            progress.month_finished(month, result.is_ok());
            result
        })
        .buffer_unordered(jobs.max(1))
        .collect()
        .await;
    results.sort_by_key(MonthEnd::month);
    results
}

#[cfg(test)]
mod tests;
