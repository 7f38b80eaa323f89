use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use gid_aggregate::{AggregateError, MonthSummary};
use gid_core::{BucketName, Config, Layout, Month, ObjectKey, RunOwner, WorkKeys};
use gid_ingest::{IngestError, IngestSource, MonthListing};
use gid_publish::{render_month, PublishError, ReportSite, SiteSettings, INDEX_KEY};
use gid_storage::{Backend, ObjectMeta, ObjectStore, PutOptions, StorageError, WrittenObject};
use polars_core::prelude::DataFrame;
use tracing::Instrument;

use crate::manifest::{self, Manifest, ObjectRef, RunState, GID_VERSION};
use crate::shutdown::{Shutdown, StopReason};

/// A stage of the monthly report, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Ingest,
    Aggregate,
    Publish,
    /// Threshold alerts, after the site is up so the alert can point people at it.
    Notify,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Ingest,
        Stage::Aggregate,
        Stage::Publish,
        Stage::Notify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Aggregate => "aggregate",
            Stage::Publish => "publish",
            Stage::Notify => "notify",
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
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Aggregate(#[from] AggregateError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Notify(#[from] gid_notify::NotifyError),
    #[error(transparent)]
    Backend(#[from] crate::BackendError),
    #[error("{count} alert(s) not sent: {details}; rerun to retry (sent alerts are not repeated)")]
    AlertsNotSent {
        count: usize,
        details: String,
        /// Every threshold's outcome, the ones that did go out included: the run summary
        /// reports a failed notify stage with what it did send.
        outcomes: Vec<gid_notify::AlertOutcome>,
    },
    #[error("stopped by {reason} before it finished; rerun the same command to resume")]
    Interrupted { reason: StopReason },
    #[error("no {what} for {month} at s3://{bucket}/{key}: run --stage {needs} first (or run without --stage)")]
    MissingInput {
        what: &'static str,
        month: Month,
        bucket: String,
        key: String,
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
    pub month: Month,
    pub stage: Stage,
    #[source]
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
    pub index_entries: usize,
    /// With a presigned site: when the index's links stop working.
    pub links_expire_at: Option<chrono::DateTime<Utc>>,
}

/// What the notify stage of a month did: one outcome per threshold checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Notified {
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
    Ingested(Box<Ingested>),
    Aggregated(Aggregated),
    Published(Published),
    Notified(Notified),
    /// It did not run: see [`SkipKind`]; `reason` says it in words.
    Skipped {
        stage: Stage,
        kind: SkipKind,
        reason: String,
    },
    /// Dry run: what the stage would read and write.
    Planned {
        stage: Stage,
        reads: Vec<String>,
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
            StageOutcome::Skipped { stage, .. } | StageOutcome::Planned { stage, .. } => *stage,
        }
    }
}

/// The result of a month's stages: those that ended, in order, and the one that failed.
#[derive(Debug)]
pub struct MonthOutcome {
    pub month: Month,
    /// The stages that ran, were skipped or were planned, in pipeline order.
    pub stages: Vec<StageOutcome>,
    /// The stage that failed or was interrupted; the stages after it did not start.
    pub failure: Option<RunError>,
    pub elapsed: Duration,
}

impl MonthOutcome {
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

/// The bucket and objects a stage wrote (recorded in its manifest).
type Outputs = (BucketName, Vec<WrittenObject>);

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
    pub stage: Stage,
    pub last: Option<Manifest>,
    /// `Some(true)` when the inputs or configuration differ from the last successful
    /// run (the stage would run again); `None` when it never ran.
    pub inputs_changed: Option<bool>,
}

/// Observes a run, for progress bars. Every method has a no-op default.
pub trait Progress: Send + Sync {
    fn stage_started(&self, _month: Month, _stage: Stage) {}
    fn files_found(&self, _month: Month, _files: usize) {}
    fn file_done(&self, _month: Month, _meta: &ObjectMeta) {}
    fn month_finished(&self, _month: Month, _ok: bool) {}
}

/// Progress that shows nothing (tests, non-interactive runs).
impl Progress for () {}

/// What a run of months shares: configuration, layout and the store.
#[derive(Debug)]
pub struct MonthRun {
    pub config: Config,
    pub layout: Layout,
    pub store: Arc<dyn Backend>,
    pub notifier: Arc<dyn gid_notify::Notifier>,
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
}

impl MonthRun {
    /// Sets up a run; the notify settings that the configuration types cannot check
    /// (threshold topics, the topic prefix) are checked here, once, before any month.
    pub fn new(
        config: Config,
        store: Arc<dyn Backend>,
        notifier: Arc<dyn gid_notify::Notifier>,
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
            notifier,
            options,
            shutdown: Shutdown::new(),
            thresholds,
            topic_prefix,
            site_lock: tokio::sync::Mutex::new(()),
        })
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

    /// Puts files on the report site and regenerates its index, one month at a time.
    pub(crate) async fn publish_files(
        &self,
        files: &[gid_publish::RenderedFile],
    ) -> Result<gid_publish::PublishedReport, PublishError> {
        let _turn = self.site_lock.lock().await;
        let shutdown = self.shutdown.clone();
        self.site()
            .publish_unless(files, &move || shutdown.is_requested())
            .await
    }

    /// The month's site files are unchanged, but another publisher's index may have lost
    /// them (a gid version without the index protocol, a crash between a file and the
    /// index): rebuild the index when it misses any of them.
    async fn repair_index(&self, month: Month, last: &Manifest) -> Result<(), StageError> {
        let keys: Vec<&str> = last.outputs.iter().map(|o| o.key.as_str()).collect();
        let site = self.site();
        if site.index_lists(&keys).await? {
            return Ok(());
        }
        tracing::warn!(%month, bucket = %site.bucket(), "the site index does not list this month's reports; rebuilding it");
        let _turn = self.site_lock.lock().await;
        site.rebuild_index().await?;
        Ok(())
    }

    pub(crate) fn work(&self) -> &BucketName {
        &self.config.buckets.work
    }

    /// The configuration that shapes a stage's outputs; a change reruns the stage.
    fn config_hash(&self, stage: Stage) -> String {
        let c = &self.config;
        match stage {
            Stage::Ingest => manifest::config_hash(&[
                c.buckets.requests.as_str(),
                &c.layout.month_prefix,
                &c.ingest.suffix,
                &c.ingest.required_columns.join(","),
                &c.ingest.max_columns.to_string(),
                c.ingest.out_of_month.as_str(),
            ]),
            Stage::Aggregate => manifest::config_hash(&[c.buckets.work.as_str()]),
            Stage::Publish => manifest::config_hash(&[
                c.buckets.reports.as_str(),
                &c.layout.month_prefix,
                &format!("{:?}", c.publish),
            ]),
            Stage::Notify => manifest::config_hash(&[
                &format!("{:?}", c.notify.thresholds),
                &c.notify.ledger_name,
                c.profile.as_str(),
            ]),
        }
    }

    /// What a stage reads, for the skip decision (ingest: the listing; later stages: the
    /// previous stage's persisted output). `known` holds what earlier stages of this run
    /// wrote or found intact: an input among them needs no request.
    async fn inputs_of(
        &self,
        month: Month,
        stage: Stage,
        known: &[ObjectRef],
    ) -> Result<(Vec<ObjectRef>, Option<MonthListing>), StageError> {
        let keys = WorkKeys::new(&self.layout, month);
        let (key, what, needs) = match stage {
            Stage::Ingest => {
                let listing =
                    gid_ingest::list_inputs(self.store.as_ref(), &self.source(month)).await?;
                let bucket = &self.config.buckets.requests;
                let refs = listing.all().map(|m| ObjectRef::new(bucket, m)).collect();
                return Ok((refs, Some(listing)));
            }
            Stage::Aggregate => (keys.requests(), "ingested table", Stage::Ingest),
            Stage::Publish | Stage::Notify => (keys.summary(), "summary", Stage::Aggregate),
        };
        let work = self.work().as_str();
        if let Some(input) = known
            .iter()
            .find(|r| r.bucket == work && r.key == key.as_str())
        {
            return Ok((vec![input.clone()], None));
        }
        match self.store.head(self.work(), &key).await {
            Ok(meta) => Ok((vec![ObjectRef::new(self.work(), &meta)], None)),
            Err(e) if e.is_not_found() => Err(StageError::MissingInput {
                what,
                month,
                bucket: self.work().to_string(),
                key: key.to_string(),
                needs,
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn write_manifest(
        &self,
        key: &ObjectKey,
        manifest: &Manifest,
    ) -> Result<(), StorageError> {
        let body = serde_json::to_vec_pretty(manifest).expect("manifest serialises");
        self.store
            .put(
                self.work(),
                key,
                Bytes::from(body),
                &PutOptions::new("application/json"),
            )
            .await
            .map(|_| ())
    }

    /// The last recorded run of each stage of a month, and whether its inputs changed since.
    pub async fn status(&self, month: Month) -> Result<Vec<StageStatus>, StageError> {
        let keys = WorkKeys::new(&self.layout, month);
        let mut statuses = Vec::new();
        for stage in Stage::ALL {
            let key = keys.manifest(stage.as_str());
            let last = manifest::load(self.store.as_ref(), self.work(), &key).await?;
            let inputs_changed = match &last {
                None => None,
                Some(m) => Some(match self.inputs_of(month, stage, &[]).await {
                    Ok((inputs, _)) => {
                        m.inputs != inputs
                            || m.config_hash != self.config_hash(stage)
                            || m.gid_version != GID_VERSION
                    }
                    Err(_) => true,
                }),
            };
            statuses.push(StageStatus {
                stage,
                last,
                inputs_changed,
            });
        }
        Ok(statuses)
    }

    fn source(&self, month: Month) -> IngestSource {
        IngestSource {
            bucket: self.config.buckets.requests.clone(),
            prefix: self.layout.month_prefix(month),
            suffix: self.config.ingest.suffix.clone(),
            concurrency: self.config.ingest.concurrency,
            rules: gid_ingest::ExportRules::from_config(&self.config.ingest),
        }
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
        let started = Instant::now();
        let mut stages = stages.to_vec();
        stages.sort();
        stages.dedup();
        let mut table: Option<DataFrame> = None;
        let mut summary: Option<MonthSummary> = None;
        let mut known = Vec::new();
        let mut outcomes = Vec::new();
        let mut failure = None;
        for stage in stages {
            let result = match self.interrupted() {
                Some(stopped) => Err(stopped),
                None => {
                    progress.stage_started(month, stage);
                    let span = tracing::info_span!("stage", %month, %stage);
                    self.run_stage(month, stage, progress, &mut table, &mut summary, &mut known)
                        .instrument(span)
                        .await
                }
            };
            match result {
                Ok(outcome) => outcomes.push(outcome),
                Err(source) => {
                    failure = Some(RunError {
                        month,
                        stage,
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

    /// Runs one stage unless its manifest shows nothing changed; records the run. Adds
    /// the stage's outputs to `known` (the inputs of the next stage).
    async fn run_stage(
        &self,
        month: Month,
        stage: Stage,
        progress: &dyn Progress,
        table: &mut Option<DataFrame>,
        summary: &mut Option<MonthSummary>,
        known: &mut Vec<ObjectRef>,
    ) -> Result<StageOutcome, StageError> {
        if self.options.dry_run {
            return match stage {
                Stage::Ingest => self.plan_ingest(month).await,
                Stage::Aggregate => self.aggregate(month, table, summary).await.map(|(o, _)| o),
                Stage::Publish => self.publish(month, summary).await.map(|(o, _)| o),
                Stage::Notify => self.notify(month, summary).await.map(|(o, _)| o),
            };
        }
        let keys = WorkKeys::new(&self.layout, month);
        let manifest_key = keys.manifest(stage.as_str());
        // --force reruns whatever the last run says, so it need not be read.
        let previous = if self.options.force {
            None
        } else {
            manifest::load(self.store.as_ref(), self.work(), &manifest_key).await?
        };
        if self.options.resume
            && previous
                .as_ref()
                .is_some_and(|m| m.state == RunState::Succeeded)
        {
            return Ok(StageOutcome::Skipped {
                stage,
                kind: SkipKind::Resume,
                reason: "succeeded before; --resume does not re-check inputs".into(),
            });
        }
        let (inputs, listing) = self.inputs_of(month, stage, known).await?;
        let config_hash = self.config_hash(stage);
        if let Some(last) = previous.filter(|_| !self.options.force) {
            if last.covers(&inputs, &config_hash)
                && manifest::outputs_intact(self.store.as_ref(), &last).await
            {
                if stage == Stage::Publish {
                    self.repair_index(month, &last).await?;
                }
                known.extend(last.outputs.iter().cloned());
                tracing::info!(%month, %stage, "inputs and configuration unchanged since the last successful run; skipping (--force reruns)");
                let when = last
                    .finished_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                return Ok(StageOutcome::Skipped {
                    stage,
                    kind: SkipKind::Unchanged,
                    reason: format!("unchanged since {when}"),
                });
            }
        }
        let mut record = Manifest {
            stage: stage.as_str().into(),
            month: month.to_string(),
            state: RunState::Running,
            gid_version: GID_VERSION.into(),
            config_hash,
            started_at: Utc::now(),
            finished_at: None,
            inputs,
            outputs: vec![],
            rows: None,
            quarantined: None,
            error: None,
            owner: Some(RunOwner::current().clone()),
        };
        self.write_manifest(&manifest_key, &record).await?;
        let work = async {
            match stage {
                Stage::Ingest => {
                    let listing = listing.expect("ingest inputs come with the listing");
                    self.ingest(month, listing, progress, table).await
                }
                Stage::Aggregate => self.aggregate(month, table, summary).await,
                Stage::Publish => self.publish(month, summary).await,
                Stage::Notify => self.notify(month, summary).await,
            }
        };
        let result = match stage {
            // Reading and computing: abandoned at once (their outputs are whole objects
            // written last; a rerun redoes them).
            Stage::Ingest | Stage::Aggregate => {
                tokio::select! {
                    result = work => result,
                    () = self.shutdown.requested() => Err(self.interrupted().expect("requested")),
                }
            }
            // Publishing and alerting stop at their own safe points: a site file rolled
            // back, an alert not yet claimed.
            Stage::Publish | Stage::Notify => work.await,
        };
        record.finished_at = Some(Utc::now());
        match result {
            Ok((outcome, outputs)) => {
                let (bucket, keys) = outputs;
                record.outputs = keys
                    .iter()
                    .map(|w| ObjectRef::written(&bucket, w))
                    .collect();
                known.extend(record.outputs.iter().cloned());
                match &outcome {
                    StageOutcome::Ingested(ingested) => {
                        record.rows = Some(ingested.tally.rows);
                        record.quarantined = Some(ingested.tally.quarantined);
                    }
                    StageOutcome::Aggregated(aggregated) => {
                        record.rows = Some(aggregated.total_requests);
                    }
                    _ => {}
                }
                record.state = match &outcome {
                    // Not settled by this run: the next run looks at those alerts again
                    // (the other run may yet fail or die).
                    StageOutcome::Notified(notified) if notified.elsewhere() > 0 => {
                        RunState::Deferred
                    }
                    _ => RunState::Succeeded,
                };
                self.write_manifest(&manifest_key, &record).await?;
                Ok(outcome)
            }
            Err(error) => {
                record.state = match error {
                    StageError::Interrupted { .. } => RunState::Interrupted,
                    _ => RunState::Failed,
                };
                record.error = Some(error.to_string());
                if let Err(e) = self.write_manifest(&manifest_key, &record).await {
                    tracing::warn!(%month, %stage, error = %e, "could not record the failed run");
                }
                Err(error)
            }
        }
    }

    async fn plan_ingest(&self, month: Month) -> Result<StageOutcome, StageError> {
        let source = self.source(month);
        let keys = WorkKeys::new(&self.layout, month);
        let listing = gid_ingest::list_inputs(self.store.as_ref(), &source).await?;
        Ok(StageOutcome::Planned {
            stage: Stage::Ingest,
            reads: listing
                .exports
                .iter()
                .map(|o| format!("s3://{}/{} ({} bytes)", source.bucket, o.key, o.size))
                .collect(),
            writes: vec![
                self.work_url(&keys.requests()),
                self.work_url(&keys.ingest_report()),
                format!(
                    "{} (rows refused, if any)",
                    self.work_url(&keys.quarantine_prefix())
                ),
            ],
        })
    }

    async fn ingest(
        &self,
        month: Month,
        listing: MonthListing,
        progress: &dyn Progress,
        table: &mut Option<DataFrame>,
    ) -> Result<(StageOutcome, Outputs), StageError> {
        let source = self.source(month);
        let keys = WorkKeys::new(&self.layout, month);
        progress.files_found(month, listing.exports.len());
        let on_file = |meta: &ObjectMeta| progress.file_done(month, meta);
        let mut month_table =
            gid_ingest::ingest_month(self.store.as_ref(), &source, month, listing, &on_file)
                .await?;
        let written = gid_ingest::persist(
            self.store.as_ref(),
            &self.config.buckets.work,
            &keys,
            &mut month_table,
        )
        .await?;
        let report = &month_table.report;
        let outcome = StageOutcome::Ingested(Box::new(Ingested {
            tally: report.tally(),
            skipped_files: report
                .files
                .iter()
                .filter_map(|f| Some((f.key.clone(), f.skipped.clone()?)))
                .collect(),
            written: written
                .iter()
                .map(|w| ObjectRef::written(self.work(), w))
                .collect(),
        }));
        *table = Some(month_table.frame);
        Ok((outcome, (self.work().clone(), written)))
    }

    async fn aggregate(
        &self,
        month: Month,
        table: &mut Option<DataFrame>,
        summary: &mut Option<MonthSummary>,
    ) -> Result<(StageOutcome, Outputs), StageError> {
        let keys = WorkKeys::new(&self.layout, month);
        let frame = match table.take() {
            Some(frame) => frame,
            None if self.options.dry_run => {
                let planned = StageOutcome::Planned {
                    stage: Stage::Aggregate,
                    reads: vec![self.work_url(&keys.requests())],
                    writes: vec![self.work_url(&keys.summary())],
                };
                return Ok((planned, (self.work().clone(), vec![])));
            }
            None => gid_ingest::load_table(self.store.as_ref(), &self.config.buckets.work, &keys)
                .await
                .map_err(|e| match e {
                    IngestError::Storage(s) if s.is_not_found() => StageError::MissingInput {
                        what: "ingested table",
                        month,
                        bucket: self.config.buckets.work.to_string(),
                        key: keys.requests().to_string(),
                        needs: Stage::Ingest,
                    },
                    other => other.into(),
                })?,
        };
        if self.options.dry_run {
            let planned = StageOutcome::Planned {
                stage: Stage::Aggregate,
                reads: vec![self.work_url(&keys.requests())],
                writes: vec![self.work_url(&keys.summary())],
            };
            return Ok((planned, (self.work().clone(), vec![])));
        }
        let result = tokio::task::spawn_blocking(move || gid_aggregate::summarise(month, &frame))
            .await
            .expect("aggregation panicked")?;
        let written = self
            .store
            .write(
                &self.config.buckets.work,
                &keys.summary(),
                Bytes::from(result.to_json()),
                &PutOptions::new("application/json"),
            )
            .await?;
        let outcome = StageOutcome::Aggregated(Aggregated {
            total_requests: result.total_requests,
            per_service: result.services.clone(),
            written: vec![ObjectRef::written(self.work(), &written)],
        });
        *summary = Some(result);
        Ok((outcome, (self.work().clone(), vec![written])))
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

    async fn publish(
        &self,
        month: Month,
        summary: &mut Option<MonthSummary>,
    ) -> Result<(StageOutcome, Outputs), StageError> {
        let reports_bucket = self.config.buckets.reports.clone();
        let summary = match summary.clone() {
            Some(s) => s,
            None if self.options.dry_run => {
                let keys = WorkKeys::new(&self.layout, month);
                let reports = &self.config.buckets.reports;
                let planned = StageOutcome::Planned {
                    stage: Stage::Publish,
                    reads: vec![self.work_url(&keys.summary())],
                    writes: ["final_report.csv", "final_report.html", "chart.html"]
                        .iter()
                        .map(|f| format!("s3://{reports}/{}", self.layout.month_key(month, f)))
                        .chain([format!("s3://{reports}/{INDEX_KEY} (regenerated last)")])
                        .collect(),
                };
                return Ok((planned, (reports_bucket, vec![])));
            }
            None => self.load_summary(month).await?,
        };
        let files = render_month(&self.layout, &summary);
        if self.options.dry_run {
            let reports = &self.config.buckets.reports;
            let planned = StageOutcome::Planned {
                stage: Stage::Publish,
                reads: vec![],
                writes: files
                    .iter()
                    .map(|f| {
                        format!(
                            "s3://{reports}/{} ({}, {} bytes)",
                            f.key,
                            f.content_type,
                            f.body.len()
                        )
                    })
                    .chain([format!("s3://{reports}/{INDEX_KEY} (regenerated last)")])
                    .collect(),
            };
            return Ok((planned, (reports_bucket, vec![])));
        }
        let published = match self.publish_files(&files).await {
            Err(PublishError::Stopped) => {
                return Err(self
                    .interrupted()
                    .unwrap_or(StageError::Publish(PublishError::Stopped)))
            }
            other => other?,
        };
        let outcome = StageOutcome::Published(Published {
            objects: published
                .objects
                .iter()
                .map(|w| ObjectRef::written(&reports_bucket, w))
                .collect(),
            index_entries: published.index_entries,
            links_expire_at: published.links_expire_at,
        });
        Ok((outcome, (reports_bucket, published.objects)))
    }
}

impl MonthRun {
    async fn notify(
        &self,
        month: Month,
        summary: &mut Option<MonthSummary>,
    ) -> Result<(StageOutcome, Outputs), StageError> {
        let thresholds = &self.thresholds;
        let keys = WorkKeys::new(&self.layout, month);
        let ledger_key = keys.alerts(&self.config.notify.ledger_name);
        let summary = match summary.take() {
            Some(s) => s,
            None if self.options.dry_run => {
                let planned = StageOutcome::Planned {
                    stage: Stage::Notify,
                    reads: vec![self.work_url(&keys.summary()), self.work_url(&ledger_key)],
                    writes: thresholds
                        .iter()
                        .map(|t| format!("topic {} if {} > {}", t.topic, t.service_name, t.above))
                        .chain([self.work_url(&ledger_key)])
                        .collect(),
                };
                return Ok((planned, (self.work().clone(), vec![])));
            }
            None => self.load_summary(month).await?,
        };
        if self.options.dry_run {
            let crossed: Vec<String> = thresholds
                .iter()
                .filter(|t| t.is_crossed_by(summary.count_of(&t.service_name)))
                .map(|t| {
                    format!(
                        "topic {}: \"{}\" (unless the ledger shows it was sent)",
                        t.topic,
                        t.message(month, summary.count_of(&t.service_name))
                    )
                })
                .collect();
            let planned = StageOutcome::Planned {
                stage: Stage::Notify,
                reads: vec![self.work_url(&ledger_key)],
                writes: crossed,
            };
            return Ok((planned, (self.work().clone(), vec![])));
        }
        self.warn_of_thresholds_that_cannot_fire(month, &summary, thresholds);
        let ledger = gid_notify::LedgerLocation::new(self.work().clone(), ledger_key.clone());
        let notify = &self.config.notify;
        let policy = gid_notify::AlertPolicy {
            resend: if self.options.force {
                gid_notify::Resend::All
            } else if self.options.resend_in_doubt {
                gid_notify::Resend::InDoubt
            } else if self.options.confirm_in_doubt {
                gid_notify::Resend::ConfirmInDoubt
            } else {
                gid_notify::Resend::Never
            },
            lease: Duration::from_secs(notify.claim_lease_secs),
            allow_unsubscribed: notify.allow_unsubscribed,
            stop: Some(self.shutdown.as_stop_signal()),
            topic_prefix: self.topic_prefix.clone(),
        };
        let report = gid_notify::evaluate_and_send(
            self.notifier.as_ref(),
            self.store.as_ref(),
            &ledger,
            month,
            |service| summary.count_of(service),
            thresholds,
            policy,
        )
        .await?;
        for other in report.claimed_elsewhere() {
            tracing::info!(%month, topic = %other.threshold.topic, "{}", other.result);
        }
        if let Some(stopped) = self.interrupted() {
            if report
                .problems()
                .any(|p| p.result == gid_notify::AlertResult::Stopped)
            {
                return Err(stopped);
            }
        }
        let problems: Vec<String> = report
            .problems()
            .map(|p| {
                format!(
                    "{} → topic {}: {}",
                    p.threshold.service_name, p.threshold.topic, p.result
                )
            })
            .collect();
        if !problems.is_empty() {
            let in_doubt = report
                .problems()
                .any(|p| matches!(p.result, gid_notify::AlertResult::InDoubt { .. }));
            if in_doubt {
                tracing::warn!(%month, "a run that ended between claiming an alert and recording it left the alert in doubt: check whether it went out on its topic, then rerun with --resend-in-doubt if it did not, or --confirm-in-doubt if it did");
            }
            return Err(StageError::AlertsNotSent {
                count: problems.len(),
                details: problems.join("; "),
                outcomes: report.outcomes,
            });
        }
        let outcome = StageOutcome::Notified(Notified {
            outcomes: report.outcomes,
        });
        // The ledger exists only once a threshold was crossed.
        let outputs = match self.store.head(self.work(), &ledger_key).await {
            Ok(meta) => vec![WrittenObject::from(meta)],
            Err(e) if e.is_not_found() => vec![],
            Err(e) => return Err(e.into()),
        };
        Ok((outcome, (self.work().clone(), outputs)))
    }
}

impl MonthRun {
    /// A threshold whose service does not appear in the month never fires; when the name
    /// is close to one that does (a typo such as "Potholes"), say so.
    fn warn_of_thresholds_that_cannot_fire(
        &self,
        month: Month,
        summary: &MonthSummary,
        thresholds: &[gid_notify::Threshold],
    ) {
        let present: Vec<&str> = summary.services.iter().map(|s| s.name.as_str()).collect();
        for threshold in thresholds {
            if present.contains(&threshold.service_name.as_str()) {
                continue;
            }
            let closest = gid_notify::closest_services(&threshold.service_name, &present);
            if closest.is_empty() {
                tracing::warn!(%month, service = %threshold.service_name, "no request of the threshold's service this month, so its alert cannot fire");
            } else {
                tracing::warn!(%month, service = %threshold.service_name, "no request of the threshold's service this month, so its alert cannot fire; did you mean {}? (service names match exactly)", closest.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(" or "));
            }
        }
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
