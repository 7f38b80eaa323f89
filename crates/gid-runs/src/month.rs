use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use gid_aggregate::{AggregateError, MonthSummary};
use gid_core::{Config, Layout, Month, WorkKeys};
use gid_ingest::{IngestError, IngestSource};
use gid_publish::{render_month, PublishError, ReportSite, SiteAccess, INDEX_KEY};
use gid_storage::{ObjectMeta, ObjectStore, PutOptions, StorageError};
use polars::prelude::DataFrame;

/// A stage of the monthly report, in pipeline order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Ingest,
    Aggregate,
    Publish,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Ingest, Stage::Aggregate, Stage::Publish];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Ingest => "ingest",
            Stage::Aggregate => "aggregate",
            Stage::Publish => "publish",
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
            .ok_or_else(|| format!("unknown stage `{s}`: use ingest, aggregate or publish"))
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
    #[error("no {what} for {month} at s3://{bucket}/{key}: run --stage {needs} first (or run without --stage)")]
    MissingInput {
        what: &'static str,
        month: Month,
        bucket: String,
        key: String,
        needs: Stage,
    },
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

/// What one stage did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq)]
pub enum StageOutcome {
    Ingested {
        files: usize,
        skipped: usize,
        rows: u64,
        quarantined: u64,
        bytes: u64,
    },
    Aggregated {
        services: usize,
        total_requests: u64,
    },
    Published {
        objects: usize,
        index_entries: usize,
        acl_fallback_used: bool,
    },
    /// Dry run: what the stage would read and write.
    Planned {
        stage: Stage,
        reads: Vec<String>,
        writes: Vec<String>,
    },
}

/// The result of a month's stages.
#[derive(Debug, Clone)]
pub struct MonthOutcome {
    pub month: Month,
    pub stages: Vec<StageOutcome>,
    pub elapsed: Duration,
}

impl MonthOutcome {
    /// The one-line summary printed per month.
    pub fn summary_line(&self) -> String {
        let mut parts = vec![format!("{} ok", self.month)];
        for stage in &self.stages {
            parts.push(match stage {
                StageOutcome::Ingested {
                    files,
                    skipped,
                    rows,
                    quarantined,
                    bytes,
                } => format!(
                    "files {files}{} ({:.1} MB), rows {rows}, quarantined {quarantined}",
                    if *skipped > 0 {
                        format!(" ({skipped} skipped)")
                    } else {
                        String::new()
                    },
                    *bytes as f64 / 1e6
                ),
                StageOutcome::Aggregated {
                    services,
                    total_requests,
                } => format!("services {services}, requests {total_requests}"),
                StageOutcome::Published {
                    objects,
                    index_entries,
                    acl_fallback_used,
                } => format!(
                    "published {objects} objects, index lists {index_entries}{}",
                    if *acl_fallback_used {
                        " (ACLs refused: fallback used)"
                    } else {
                        ""
                    }
                ),
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
    pub store: Arc<dyn ObjectStore>,
    pub dry_run: bool,
    /// Publishing lists the site and rewrites its index; months publishing at once would
    /// race (an index listed before another month's files landed), so they take turns.
    site_lock: tokio::sync::Mutex<()>,
}

impl MonthRun {
    pub fn new(config: Config, store: Arc<dyn ObjectStore>, dry_run: bool) -> Self {
        let layout = config
            .layout()
            .expect("validated when the config was loaded");
        Self {
            config,
            layout,
            store,
            dry_run,
            site_lock: tokio::sync::Mutex::new(()),
        }
    }

    fn source(&self, month: Month) -> IngestSource {
        IngestSource {
            bucket: self.config.buckets.requests.clone(),
            prefix: self.layout.month_prefix(month),
            suffix: self.config.ingest.suffix.clone(),
            concurrency: self.config.ingest.concurrency,
        }
    }

    fn site(&self) -> ReportSite<'_> {
        let p = &self.config.publish;
        ReportSite::new(
            self.store.as_ref(),
            self.config.buckets.reports.clone(),
            self.layout.clone(),
            SiteAccess {
                acl: p.acl,
                fallback: p.acl_fallback,
                presign_expires: Duration::from_secs(p.presign_expires_secs),
                index_cache_control: p.index_cache_control.clone(),
                report_cache_control: p.report_cache_control.clone(),
            },
        )
    }

    fn work_url(&self, key: &impl fmt::Display) -> String {
        format!("s3://{}/{key}", self.config.buckets.work)
    }

    /// Runs `stages` (in pipeline order) for one month.
    pub async fn run_month(
        &self,
        month: Month,
        stages: &[Stage],
        progress: &dyn Progress,
    ) -> Result<MonthOutcome, RunError> {
        let started = Instant::now();
        let mut stages = stages.to_vec();
        stages.sort();
        stages.dedup();
        let mut table: Option<DataFrame> = None;
        let mut summary: Option<MonthSummary> = None;
        let mut outcomes = Vec::new();
        for stage in stages {
            progress.stage_started(month, stage);
            let span = tracing::info_span!("stage", %month, %stage);
            let _enter = span.enter();
            let outcome = match stage {
                Stage::Ingest => self.ingest(month, progress, &mut table).await,
                Stage::Aggregate => self.aggregate(month, &mut table, &mut summary).await,
                Stage::Publish => self.publish(month, &mut summary).await,
            }
            .map_err(|source| RunError {
                month,
                stage,
                source,
            })?;
            outcomes.push(outcome);
        }
        Ok(MonthOutcome {
            month,
            stages: outcomes,
            elapsed: started.elapsed(),
        })
    }

    async fn ingest(
        &self,
        month: Month,
        progress: &dyn Progress,
        table: &mut Option<DataFrame>,
    ) -> Result<StageOutcome, StageError> {
        let source = self.source(month);
        let keys = WorkKeys::new(&self.layout, month);
        if self.dry_run {
            let (inputs, _) = gid_ingest::list_inputs(self.store.as_ref(), &source).await?;
            return Ok(StageOutcome::Planned {
                stage: Stage::Ingest,
                reads: inputs
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
            });
        }
        let (inputs, _) = gid_ingest::list_inputs(self.store.as_ref(), &source).await?;
        progress.files_found(month, inputs.len());
        let on_file = |meta: &ObjectMeta| progress.file_done(month, meta);
        let mut month_table =
            gid_ingest::ingest_month(self.store.as_ref(), &source, month, &on_file).await?;
        gid_ingest::persist(
            self.store.as_ref(),
            &self.config.buckets.work,
            &keys,
            &mut month_table,
        )
        .await?;
        let report = &month_table.report;
        let outcome = StageOutcome::Ingested {
            files: report.files.len(),
            skipped: report.files.iter().filter(|f| f.skipped.is_some()).count(),
            rows: report.rows,
            quarantined: report.quarantined,
            bytes: report.bytes,
        };
        *table = Some(month_table.frame);
        Ok(outcome)
    }

    async fn aggregate(
        &self,
        month: Month,
        table: &mut Option<DataFrame>,
        summary: &mut Option<MonthSummary>,
    ) -> Result<StageOutcome, StageError> {
        let keys = WorkKeys::new(&self.layout, month);
        let frame = match table.take() {
            Some(frame) => frame,
            None if self.dry_run => {
                return Ok(StageOutcome::Planned {
                    stage: Stage::Aggregate,
                    reads: vec![self.work_url(&keys.requests())],
                    writes: vec![self.work_url(&keys.summary())],
                })
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
        let result = tokio::task::spawn_blocking(move || gid_aggregate::summarise(month, &frame))
            .await
            .expect("aggregation panicked")?;
        self.store
            .put(
                &self.config.buckets.work,
                &keys.summary(),
                Bytes::from(result.to_json()),
                &PutOptions::new("application/json"),
            )
            .await?;
        let outcome = StageOutcome::Aggregated {
            services: result.services.len(),
            total_requests: result.total_requests,
        };
        *summary = Some(result);
        Ok(outcome)
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
    ) -> Result<StageOutcome, StageError> {
        let summary = match summary.take() {
            Some(s) => s,
            None if self.dry_run => {
                let keys = WorkKeys::new(&self.layout, month);
                let reports = &self.config.buckets.reports;
                return Ok(StageOutcome::Planned {
                    stage: Stage::Publish,
                    reads: vec![self.work_url(&keys.summary())],
                    writes: ["final_report.csv", "final_report.html", "chart.html"]
                        .iter()
                        .map(|f| format!("s3://{reports}/{}", self.layout.month_key(month, f)))
                        .chain([format!("s3://{reports}/{INDEX_KEY} (regenerated last)")])
                        .collect(),
                });
            }
            None => self.load_summary(month).await?,
        };
        let files = render_month(&self.layout, &summary);
        if self.dry_run {
            let reports = &self.config.buckets.reports;
            return Ok(StageOutcome::Planned {
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
            });
        }
        let _turn = self.site_lock.lock().await;
        let published = self.site().publish(&files).await?;
        Ok(StageOutcome::Published {
            objects: published.objects.len(),
            index_entries: published.index_entries,
            acl_fallback_used: published.acl_fallback_used,
        })
    }
}

/// Runs the stages for every month, at most `jobs` months at once. Every month runs to
/// its own end: a failure is reported in its slot and the others go on. Results come
/// back in calendar order.
pub async fn run_months(
    run: &MonthRun,
    months: &[Month],
    stages: &[Stage],
    jobs: usize,
    progress: &dyn Progress,
) -> Vec<(Month, Result<MonthOutcome, RunError>)> {
    let mut results: Vec<(Month, Result<MonthOutcome, RunError>)> =
        futures::stream::iter(months.iter().copied())
            .map(|month| async move {
                let result = run.run_month(month, stages, progress).await;
                progress.month_finished(month, result.is_ok());
                (month, result)
            })
            .buffer_unordered(jobs.max(1))
            .collect()
            .await;
    results.sort_by_key(|(m, _)| *m);
    results
}
