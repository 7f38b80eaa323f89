//! The run summary that `--output json` prints: one document per run, for schedulers and
//! scripts that act on what a run did rather than parse its human lines.
//!
//! The types here are the document's contract, described by
//! `docs/run-summary.schema.json` and README's "Run summary" section. They are built from
//! a run's outcomes ([`MonthOutcome`], the scooter-pickups months) and hold only plain
//! values, so the outcomes and the stages' own types can change without changing the
//! document. A field is added only with a schema change; renaming or removing one takes
//! a new [`SCHEMA_VERSION`].
//!
//! ```
//! use gid_runs::report::{RunClock, Tool};
//!
//! let clock = RunClock::start(Tool::MonthlyReport);
//! let summary = clock.finish(gid_core::Profile::Local, false, vec![], Default::default(), None);
//! let line = summary.to_json_line();
//! assert!(line.starts_with(r#"{"schema_version":1,"tool":"monthly-report""#));
//! assert!(!line.contains('\n'));
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use gid_core::RequestStats;
use gid_core::{Profile, RunOwner};
use gid_notify::{AlertOutcome, AlertResult};
use serde::Serialize;

use crate::manifest::{ObjectRef, GID_VERSION};
use crate::month::{
    Aggregated, Ingested, MonthOutcome, Notified, Published, RunError, SkipKind, StageError,
    StageOutcome,
};
use crate::{Stage, StopReason};

/// The version of the document's shape; bumped when a field is renamed, retyped or removed.
pub const SCHEMA_VERSION: u32 = 1;

/// Which binary wrote the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    /// `monthly-report`.
    MonthlyReport,
    /// `scooter-pickups`.
    ScooterPickups,
}

/// One run of a binary: what it was asked, each month, the requests it made and how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The version of this document's shape (`docs/run-summary.schema.json`).
    pub schema_version: u32,
    /// The binary that ran.
    pub tool: Tool,
    /// The gid version that ran.
    pub gid_version: &'static str,
    /// The run id that claims, manifests and logs of this process carry.
    pub run_id: String,
    /// `local` or `aws`.
    pub profile: &'static str,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// When the run ended (RFC 3339, UTC).
    pub finished_at: String,
    /// How long the run took.
    pub duration_secs: f64,
    /// `--dry-run`: nothing was written.
    pub dry_run: bool,
    /// The process's exit code (README, "Exit codes").
    pub exit_code: u8,
    /// The signal that stopped the run early, if one did.
    pub stopped_by: Option<SignalName>,
    /// Every month of the run, in calendar order.
    pub months: Vec<MonthReport>,
    /// Requests made per service (`s3`, `sns`, …), on the backends that count them (aws).
    pub requests: BTreeMap<String, RequestCounts>,
    /// Where the report site is read, when the run published (README, "The site on S3").
    pub site_url: Option<String>,
}

impl RunSummary {
    /// The document as one line of JSON (no newline inside, none at the end).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("a run summary holds only plain values")
    }

    /// Alerts of any month left in doubt by a run that ended between claiming and
    /// recording them.
    pub fn alerts_in_doubt(&self) -> usize {
        self.months.iter().map(MonthReport::alerts_in_doubt).sum()
    }
}

/// When a run started; [`RunClock::finish`] turns it into the [`RunSummary`].
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    tool: Tool,
    started_at: DateTime<Utc>,
    started: Instant,
}

impl RunClock {
    /// Starts the clock of a run of `tool`.
    pub fn start(tool: Tool) -> Self {
        Self {
            tool,
            started_at: Utc::now(),
            started: Instant::now(),
        }
    }

    /// The summary of a run that ends now; its `exit_code` is 0 until the binary decides
    /// it from the months (`gid_cli::RunExit::settle`).
    pub fn finish(
        self,
        profile: Profile,
        dry_run: bool,
        months: Vec<MonthReport>,
        requests: BTreeMap<String, RequestCounts>,
        stopped_by: Option<StopReason>,
    ) -> RunSummary {
        RunSummary {
            schema_version: SCHEMA_VERSION,
            tool: self.tool,
            gid_version: GID_VERSION,
            run_id: RunOwner::current().run_id.clone(),
            profile: profile.as_str(),
            started_at: rfc3339(self.started_at),
            finished_at: rfc3339(Utc::now()),
            duration_secs: seconds(self.started.elapsed()),
            dry_run,
            exit_code: 0,
            stopped_by: stopped_by.map(SignalName::from),
            months,
            requests,
            site_url: None,
        }
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Seconds to the millisecond: finer is noise for a batch run.
fn seconds(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// A stop signal by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SignalName {
    #[serde(rename = "SIGTERM")]
    /// SIGTERM (a scheduler's stop).
    Sigterm,
    #[serde(rename = "SIGINT")]
    /// SIGINT (Ctrl-C).
    Sigint,
}

impl From<StopReason> for SignalName {
    fn from(reason: StopReason) -> Self {
        match reason {
            StopReason::Terminate => SignalName::Sigterm,
            StopReason::Interrupt => SignalName::Sigint,
        }
    }
}

impl From<SignalName> for StopReason {
    fn from(signal: SignalName) -> Self {
        match signal {
            SignalName::Sigterm => StopReason::Terminate,
            SignalName::Sigint => StopReason::Interrupt,
        }
    }
}

/// What one client asked of its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    /// Operations gid issued (one GetObject, one Publish, …).
    pub operations: u64,
    /// HTTP requests sent, retries included.
    pub attempts: u64,
    /// Attempts after the first, over all operations.
    pub retries: u64,
    /// Answers asking to slow down (503 SlowDown, 429, Throttling).
    pub throttled: u64,
    /// Other 5xx answers.
    pub server_errors: u64,
}

impl From<RequestStats> for RequestCounts {
    fn from(s: RequestStats) -> Self {
        Self {
            operations: s.operations,
            attempts: s.attempts,
            retries: s.retries(),
            throttled: s.throttled,
            server_errors: s.server_errors,
        }
    }
}

/// How a month ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MonthStatus {
    /// Every stage asked for ran, was skipped as unchanged or was planned (dry run).
    Ok,
    /// A stage failed or was stopped; the later stages did not start.
    Failed,
    /// Stopped by SIGTERM or SIGINT; rerunning the same command resumes it.
    Interrupted,
}

/// One month of the run.
#[derive(Debug, Clone, Serialize)]
pub struct MonthReport {
    /// `YYYY-MM`.
    pub month: String,
    /// How the month ended.
    pub status: MonthStatus,
    /// Why the month failed or stopped, in one sentence (as printed on stderr).
    pub error: Option<String>,
    /// How long the month took.
    pub duration_secs: f64,
    /// The stages that ended, in order, then the one that failed; stages after a failure
    /// are absent (they did not start).
    pub stages: Vec<StageReport>,
}

impl MonthReport {
    /// Alerts of this month left in doubt.
    pub fn alerts_in_doubt(&self) -> usize {
        self.stages
            .iter()
            .filter_map(|s| match &s.counts {
                Some(StageCounts::Notify(n)) => Some(n.in_doubt.len()),
                _ => None,
            })
            .sum()
    }

    fn ended(month: String, elapsed: Duration, stages: Vec<StageReport>) -> Self {
        let status = match stages.last().map(|s| s.status) {
            Some(StageState::Failed) => MonthStatus::Failed,
            Some(StageState::Interrupted) => MonthStatus::Interrupted,
            _ => MonthStatus::Ok,
        };
        Self {
            month,
            status,
            error: None,
            duration_secs: seconds(elapsed),
            stages,
        }
    }
}

impl From<&MonthOutcome> for MonthReport {
    fn from(outcome: &MonthOutcome) -> Self {
        let mut stages: Vec<StageReport> = outcome.stages.iter().map(StageReport::from).collect();
        stages.extend(outcome.failure.as_ref().map(StageReport::failed));
        let mut report = Self::ended(outcome.month.to_string(), outcome.elapsed, stages);
        report.error = outcome.failure.as_ref().map(ToString::to_string);
        report
    }
}

/// A stage by name: the four of monthly-report and scooter-pickups' enrichment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageName {
    /// `ingest`.
    Ingest,
    /// `aggregate`.
    Aggregate,
    /// `publish` (scooter-pickups' too).
    Publish,
    /// `notify`.
    Notify,
    /// scooter-pickups: language, translation, sentiment and photo labels →
    /// `enriched.parquet` (its page and table are its `publish`).
    Enrich,
}

impl From<Stage> for StageName {
    fn from(stage: Stage) -> Self {
        match stage {
            Stage::Ingest => StageName::Ingest,
            Stage::Aggregate => StageName::Aggregate,
            Stage::Publish => StageName::Publish,
            Stage::Notify => StageName::Notify,
            #[cfg(feature = "enrich")]
            Stage::Enrich => StageName::Enrich,
            // The run summary's publish: the site files a stage wrote, whichever they are
            // (scooter-pickups has no other publish).
            #[cfg(feature = "enrich")]
            Stage::PickupsPublish => StageName::Publish,
        }
    }
}

/// How a stage of a month ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageState {
    /// It ran to its end.
    Ran,
    /// Inputs, configuration and outputs unchanged since its last successful run.
    SkippedUnchanged,
    /// `--resume`: it succeeded before; its inputs were not checked again.
    SkippedResume,
    /// `--dry-run`: what it would read and write.
    Planned,
    /// It ended with an error (`reason`).
    Failed,
    /// A stop signal ended it (`reason`).
    Interrupted,
}

/// One stage of a month.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// Which stage.
    pub stage: StageName,
    /// How it ended.
    pub status: StageState,
    /// Why it was skipped, failed or stopped, in words; null when it ran.
    pub reason: Option<String>,
    /// What it did; the shape follows `stage`. Null when it did not run, and for a failed
    /// stage except notify (whose alerts sent, in doubt and not sent are what to act on).
    pub counts: Option<StageCounts>,
    /// `--dry-run`: what it would read and write.
    pub planned: Option<Planned>,
}

impl StageReport {
    fn new(stage: StageName, status: StageState) -> Self {
        Self {
            stage,
            status,
            reason: None,
            counts: None,
            planned: None,
        }
    }

    fn failed(error: &RunError) -> Self {
        Self::of_error(error.stage.into(), &error.source)
    }

    fn of_error(stage: StageName, error: &StageError) -> Self {
        let status = if error.is_interrupted() {
            StageState::Interrupted
        } else {
            StageState::Failed
        };
        let mut report = Self::new(stage, status);
        report.reason = Some(error.to_string());
        if let StageError::AlertsNotSent { outcomes, .. } = error {
            report.counts = Some(StageCounts::Notify(NotifyCounts::from_outcomes(outcomes)));
        }
        report
    }
}

impl From<&StageOutcome> for StageReport {
    fn from(outcome: &StageOutcome) -> Self {
        let ran = |counts| {
            let mut report = Self::new(outcome.stage().into(), StageState::Ran);
            report.counts = Some(counts);
            report
        };
        match outcome {
            StageOutcome::Ingested(i) => ran(StageCounts::Ingest(IngestCounts::from(&**i))),
            StageOutcome::Aggregated(a) => ran(StageCounts::Aggregate(AggregateCounts::from(a))),
            StageOutcome::Published(p) => ran(StageCounts::Publish(PublishCounts::from(p))),
            StageOutcome::Notified(n) => ran(StageCounts::Notify(NotifyCounts::from(n))),
            #[cfg(feature = "enrich")]
            StageOutcome::Enriched(e) => ran(StageCounts::Enrich(EnrichCounts::from(&**e))),
            #[cfg(feature = "enrich")]
            StageOutcome::EnrichPlanned(p) => StageReport::from(&**p),
            #[cfg(feature = "enrich")]
            StageOutcome::PickupsPublished(p) => ran(StageCounts::Publish(PublishCounts::from(p))),
            StageOutcome::Skipped {
                stage,
                kind,
                reason,
            } => {
                let status = match kind {
                    SkipKind::Unchanged => StageState::SkippedUnchanged,
                    SkipKind::Resume => StageState::SkippedResume,
                };
                let mut report = Self::new((*stage).into(), status);
                report.reason = Some(reason.clone());
                report
            }
            StageOutcome::Planned {
                stage,
                reads,
                writes,
            } => {
                let mut report = Self::new((*stage).into(), StageState::Planned);
                report.planned = Some(Planned {
                    reads: reads.clone(),
                    writes: writes.clone(),
                });
                report
            }
        }
    }
}

/// What a dry run would read and write, as `s3://bucket/key` with notes.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// What it would read.
    pub reads: Vec<String>,
    /// What it would write.
    pub writes: Vec<String>,
}

/// A stage's counts; which shape is given by the stage's name.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum StageCounts {
    /// ingest's counts.
    Ingest(IngestCounts),
    /// aggregate's counts.
    Aggregate(AggregateCounts),
    /// publish's counts.
    Publish(PublishCounts),
    /// notify's counts.
    Notify(NotifyCounts),
    /// enrich's counts.
    Enrich(EnrichCounts),
    /// scooter-pickups `--dry-run`: what enrichment would ask of the engines.
    EnrichPlan(EnrichPlanCounts),
}

/// An object as its put returned it.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenObject {
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
    /// The ETag its put returned.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

impl From<&ObjectRef> for WrittenObject {
    fn from(o: &ObjectRef) -> Self {
        Self {
            bucket: o.bucket.clone(),
            key: o.key.clone(),
            etag: o.etag.clone(),
            size: o.size,
        }
    }
}

fn written(objects: &[ObjectRef]) -> Vec<WrittenObject> {
    objects.iter().map(WrittenObject::from).collect()
}

/// A file under the month's prefix that contributed nothing.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    /// The file's key.
    pub key: String,
    /// `empty`, `not_an_export`, `not_text`, `too_many_columns`, `missing_columns` or
    /// `unreadable_header` (as in `ingest.json`).
    pub kind: &'static str,
    /// Why it was skipped, in words.
    pub reason: String,
}

/// Copies of requests dropped because a newer file holds them too.
#[derive(Debug, Clone, Serialize)]
pub struct DroppedCopies {
    /// The file whose rows were dropped.
    pub file: String,
    /// The file whose copies were kept (the same file for repeats within one export).
    pub kept_from: String,
    /// Rows in the month's table.
    pub rows: u64,
}

/// What ingest read and kept.
#[derive(Debug, Clone, Serialize)]
pub struct IngestCounts {
    /// Objects under the month's prefix, the skipped ones included.
    pub files: usize,
    /// Files that contributed nothing, and why.
    pub files_skipped: Vec<SkippedFile>,
    /// Bytes read.
    pub bytes: u64,
    /// Rows in the month's table.
    pub rows: u64,
    /// Rows quarantined (file:line:reason in the quarantine objects).
    pub quarantined: u64,
    /// Rows undated or dated outside the month (quarantined, or kept under
    /// `ingest.out_of_month = "keep"`).
    pub out_of_month: u64,
    /// Rows dropped because a later copy of their id was kept.
    pub duplicates_dropped: u64,
    /// Where the dropped copies came from.
    pub duplicates: Vec<DroppedCopies>,
    /// The table, the report and the quarantine objects.
    pub objects_written: Vec<WrittenObject>,
}

impl From<&Ingested> for IngestCounts {
    fn from(i: &Ingested) -> Self {
        let t = &i.tally;
        Self {
            files: t.files,
            files_skipped: i
                .skipped_files
                .iter()
                .map(|(key, reason)| SkippedFile {
                    key: key.clone(),
                    kind: skip_kind(reason),
                    reason: reason.to_string(),
                })
                .collect(),
            bytes: t.bytes,
            rows: t.rows,
            quarantined: t.quarantined,
            out_of_month: t.out_of_month,
            duplicates_dropped: t.duplicates_dropped,
            duplicates: t
                .duplicates
                .iter()
                .map(|d| DroppedCopies {
                    file: d.file.clone(),
                    kept_from: d.kept_from.clone(),
                    rows: d.rows,
                })
                .collect(),
            objects_written: written(&i.written),
        }
    }
}

/// The `kind` that `ingest.json` records for a skipped file.
fn skip_kind(reason: &gid_ingest::SkipReason) -> &'static str {
    use gid_ingest::SkipReason::*;
    match reason {
        Empty => "empty",
        NotAnExport { .. } => "not_an_export",
        NotText => "not_text",
        TooManyColumns { .. } => "too_many_columns",
        MissingColumns { .. } => "missing_columns",
        UnreadableHeader { .. } => "unreadable_header",
    }
}

/// Requests of one service in the month.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceCount {
    /// The service's name.
    pub service: String,
    /// Its requests.
    pub count: u64,
}

/// What aggregate counted.
#[derive(Debug, Clone, Serialize)]
pub struct AggregateCounts {
    /// Services with requests.
    pub services: usize,
    /// Requests in the month.
    pub total_requests: u64,
    /// Most requests first.
    pub requests_per_service: Vec<ServiceCount>,
    /// `summary.json`.
    pub objects_written: Vec<WrittenObject>,
}

impl From<&Aggregated> for AggregateCounts {
    fn from(a: &Aggregated) -> Self {
        Self {
            services: a.per_service.len(),
            total_requests: a.total_requests,
            requests_per_service: a
                .per_service
                .iter()
                .map(|g| ServiceCount {
                    service: g.name.clone(),
                    count: g.request_count,
                })
                .collect(),
            objects_written: written(&a.written),
        }
    }
}

/// What publish put on the site.
#[derive(Debug, Clone, Serialize)]
pub struct PublishCounts {
    /// The month's site files; `index.html`, rewritten by every publish, is not listed.
    pub objects_written: Vec<WrittenObject>,
    /// Objects the regenerated index lists.
    pub index_entries: usize,
    /// With a presigned site (`publish.access = "presign"`): when the index's links stop
    /// working.
    pub links_expire_at: Option<chrono::DateTime<chrono::Utc>>,
    /// With `publish.languages` beyond English: the translation engine's calls and the
    /// caches' answers for the month's pages and the trends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_translations: Option<crate::month::SiteTranslations>,
}

impl From<&Published> for PublishCounts {
    fn from(p: &Published) -> Self {
        Self {
            objects_written: written(&p.objects),
            index_entries: p.index_entries,
            links_expire_at: p.links_expire_at,
            site_translations: p.site_translations,
        }
    }
}

/// The run that holds or held an alert's claim.
#[derive(Debug, Clone, Serialize)]
pub struct ClaimOwner {
    /// The run that claimed it.
    pub run_id: String,
    /// Its host.
    pub host: String,
    /// Its process id.
    pub pid: u32,
}

impl From<&RunOwner> for ClaimOwner {
    fn from(o: &RunOwner) -> Self {
        Self {
            run_id: o.run_id.clone(),
            host: o.host.clone(),
            pid: o.pid,
        }
    }
}

/// An alert this run published.
#[derive(Debug, Clone, Serialize)]
pub struct SentAlert {
    /// The topic alerted.
    pub topic: String,
    /// The service whose count crossed the threshold.
    pub service: String,
    /// The month's count that crossed the threshold.
    pub count: u64,
    /// The message id the notifier returned.
    pub message_id: String,
}

/// An alert an earlier run sent for this month.
#[derive(Debug, Clone, Serialize)]
pub struct AlreadySentAlert {
    /// The topic.
    pub topic: String,
    /// The service.
    pub service: String,
    /// The message id of the earlier send, when recorded.
    pub message_id: Option<String>,
    /// When it was sent (RFC 3339).
    pub sent_at: Option<String>,
}

/// An alert another run, still running, was sending.
#[derive(Debug, Clone, Serialize)]
pub struct AlertClaimedElsewhere {
    /// The topic.
    pub topic: String,
    /// The service.
    pub service: String,
    /// Which run is sending it.
    pub claimed_by: ClaimOwner,
    /// When that run claimed it (RFC 3339).
    pub claimed_at: String,
}

/// An alert claimed by a run that ended before recording whether it went out: the
/// operator checks the topic, then reruns with `--resend-in-doubt` or `--confirm-in-doubt`.
#[derive(Debug, Clone, Serialize)]
pub struct AlertInDoubt {
    /// The topic.
    pub topic: String,
    /// The service.
    pub service: String,
    /// When the dead run claimed it (RFC 3339).
    pub claimed_at: String,
    /// Absent in ledgers written before claims had owners.
    pub claimed_by: Option<ClaimOwner>,
}

/// An alert that should have gone out and did not; a rerun tries again.
#[derive(Debug, Clone, Serialize)]
pub struct AlertNotSent {
    /// The topic.
    pub topic: String,
    /// The service.
    pub service: String,
    /// Why, in words.
    pub reason: String,
}

/// What notify did with each threshold crossed.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyCounts {
    /// Thresholds checked.
    pub thresholds: usize,
    /// Alerts sent by this run.
    pub sent: Vec<SentAlert>,
    /// Alerts an earlier run sent.
    pub already_sent: Vec<AlreadySentAlert>,
    /// Alerts another live run is sending.
    pub being_sent_by_another_run: Vec<AlertClaimedElsewhere>,
    /// Alerts a dead run claimed: nobody knows whether they went out.
    pub in_doubt: Vec<AlertInDoubt>,
    /// Alerts that could not be sent.
    pub not_sent: Vec<AlertNotSent>,
}

impl From<&Notified> for NotifyCounts {
    fn from(n: &Notified) -> Self {
        Self::from_outcomes(&n.outcomes)
    }
}

impl NotifyCounts {
    fn from_outcomes(outcomes: &[AlertOutcome]) -> Self {
        let mut counts = Self {
            thresholds: outcomes.len(),
            sent: vec![],
            already_sent: vec![],
            being_sent_by_another_run: vec![],
            in_doubt: vec![],
            not_sent: vec![],
        };
        for o in outcomes {
            let topic = o.threshold.topic.to_string();
            let service = o.threshold.service_name.clone();
            match &o.result {
                AlertResult::Below => {}
                AlertResult::Sent { message_id, .. } => counts.sent.push(SentAlert {
                    topic,
                    service,
                    count: o.count,
                    message_id: message_id.to_string(),
                }),
                AlertResult::AlreadySent {
                    message_id,
                    sent_at,
                } => counts.already_sent.push(AlreadySentAlert {
                    topic,
                    service,
                    message_id: message_id.as_ref().map(ToString::to_string),
                    sent_at: sent_at.map(rfc3339),
                }),
                AlertResult::ClaimedElsewhere { owner, claimed_at } => counts
                    .being_sent_by_another_run
                    .push(AlertClaimedElsewhere {
                        topic,
                        service,
                        claimed_by: owner.into(),
                        claimed_at: rfc3339(*claimed_at),
                    }),
                AlertResult::InDoubt { claimed_at, owner } => counts.in_doubt.push(AlertInDoubt {
                    topic,
                    service,
                    claimed_at: rfc3339(*claimed_at),
                    claimed_by: owner.as_ref().map(ClaimOwner::from),
                }),
                AlertResult::NoSubscribers { .. }
                | AlertResult::Stopped
                | AlertResult::Failed { .. } => counts.not_sent.push(AlertNotSent {
                    topic,
                    service,
                    reason: o.result.to_string(),
                }),
            }
        }
        counts
    }
}

/// Calls one engine got this run (answers not in the cache).
#[derive(Debug, Clone, Serialize)]
pub struct EngineCalls {
    /// The engine (and model version) as the answer cache names it.
    pub engine: String,
    /// Calls made.
    pub calls: u64,
    /// Texts or photos sent in those calls.
    pub inputs: u64,
}

/// What scooter-pickups found and asked in a month.
#[derive(Debug, Clone, Serialize)]
pub struct EnrichCounts {
    /// The month's e-scooter requests (`enrich.service_name`).
    pub requests: usize,
    /// Descriptions translated before sentiment.
    pub translated: usize,
    /// Requests with a photo key, and of those the ones whose photo is missing.
    pub photos: usize,
    /// Photos named but not in the images bucket.
    pub missing_photos: usize,
    /// Photos labelled as a scooter.
    pub scooter_photos: usize,
    /// Descriptions judged negative.
    pub negative: usize,
    /// Scooter photo and negative description.
    pub pickups: usize,
    /// Per engine: calls and inputs sent.
    pub engine_calls: Vec<EngineCalls>,
    /// Answers taken from the month's cache instead of an engine.
    pub cache_hits: u64,
    /// `enriched.parquet`.
    pub objects_written: Vec<WrittenObject>,
}

/// What scooter-pickups `--dry-run` would ask of the engines.
#[derive(Debug, Clone, Serialize)]
pub struct EnrichPlanCounts {
    /// The month's e-scooter requests.
    pub requests: usize,
    /// Texts language detection would get.
    pub language_texts: usize,
    /// Their characters.
    pub language_characters: usize,
    /// Upper bounds: which texts are English is known only after detection.
    pub translate_texts: usize,
    /// Their characters.
    pub translate_characters: usize,
    /// Texts sentiment would get (an upper bound).
    pub sentiment_texts: usize,
    /// Their characters.
    pub sentiment_characters: usize,
    /// Photos the labeller would get.
    pub photos: usize,
    /// At `enrich.prices` when the AWS engines answer (`enrich.engines`, by default the
    /// profile's); null for the local engines, which have no per-call cost.
    pub estimated_cost_usd: Option<f64>,
}

#[cfg(feature = "enrich")]
mod enrich {
    use super::*;
    use crate::{EnrichPlanned, Enriched};

    impl From<&Enriched> for EnrichCounts {
        fn from(o: &Enriched) -> Self {
            Self {
                requests: o.requests,
                translated: o.translated,
                photos: o.with_photo,
                missing_photos: o.missing_photos,
                scooter_photos: o.scooter_photos,
                negative: o.negative,
                pickups: o.pickups,
                engine_calls: o
                    .engine_calls
                    .iter()
                    .map(|(engine, calls)| EngineCalls {
                        engine: engine.clone(),
                        calls: *calls,
                        inputs: o.engine_inputs.get(engine).copied().unwrap_or(0),
                    })
                    .collect(),
                cache_hits: o.cache_hits,
                objects_written: written(&o.written),
            }
        }
    }

    impl From<&EnrichPlanned> for StageReport {
        fn from(planned: &EnrichPlanned) -> Self {
            let mut report = StageReport::new(StageName::Enrich, StageState::Planned);
            report.reason = planned.not_ingested_reason();
            report.counts = planned.plan.as_ref().map(|plan| {
                StageCounts::EnrichPlan(EnrichPlanCounts {
                    requests: plan.requests,
                    language_texts: plan.language_texts,
                    language_characters: plan.language_characters,
                    translate_texts: plan.translate_texts,
                    translate_characters: plan.translate_characters,
                    sentiment_texts: plan.sentiment_texts,
                    sentiment_characters: plan.sentiment_characters,
                    photos: plan.images,
                    estimated_cost_usd: planned.estimated_cost_usd,
                })
            });
            report
        }
    }
}
