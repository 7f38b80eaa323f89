//! The month runner: what every stage shares — the manifest written before and after,
//! skip-unchanged, `--resume`, `--force`, dry run and stop handling — done once, here,
//! for any [`StageRun`]; the stage modules hold only what their stage does.

use std::fmt;

use bytes::Bytes;
use chrono::Utc;
use gid_aggregate::MonthSummary;
use gid_core::{BucketName, Config, Month, ObjectKey, RunOwner, WorkKeys};
use gid_storage::{PutOptions, StorageError, WrittenObject};
use polars_core::prelude::DataFrame;

use super::{MonthRun, Progress, SkipKind, Stage, StageError, StageOutcome, StageStatus};
use crate::manifest::{self, Manifest, ObjectRef, RunState, GID_VERSION};

/// How a stop request (SIGTERM, SIGINT) treats a stage that is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnStop {
    /// Reading and computing: abandoned at once. Their outputs are whole objects written
    /// last, so a rerun simply redoes them.
    Abandon,
    /// Publishing and alerting stop at their own safe points (a site file rolled back, an
    /// alert not yet claimed): cutting them short elsewhere would leave half a site or an
    /// alert sent but not recorded.
    SafePoints,
}

/// One month of one invocation, as its stages see it: where things are, and what the
/// earlier stages of this invocation handed on, so a later stage neither re-reads what is
/// in memory nor asks the store what an earlier stage was told by its puts.
pub(crate) struct MonthContext<'a> {
    pub(crate) run: &'a MonthRun,
    pub(crate) month: Month,
    pub(crate) keys: WorkKeys,
    pub(crate) progress: &'a dyn Progress,
    /// The ingested table, when ingest ran in this invocation and built it (aggregate
    /// takes it).
    pub(crate) table: Option<DataFrame>,
    /// The month's counts, when ingest ran in this invocation and streamed the month
    /// (aggregate finishes them: nothing is read back).
    pub(crate) tally: Option<gid_aggregate::Tally>,
    /// The month's summary, when aggregate ran in this invocation.
    pub(crate) summary: Option<MonthSummary>,
    /// The enriched table, when enrich ran in this invocation (the pickups publish takes it).
    #[cfg(feature = "enrich")]
    pub(crate) enriched: Option<DataFrame>,
    /// What earlier stages of this invocation wrote or found intact: an input among them
    /// needs no request.
    pub(crate) known: Vec<ObjectRef>,
}

impl<'a> MonthContext<'a> {
    pub(crate) fn new(run: &'a MonthRun, month: Month, progress: &'a dyn Progress) -> Self {
        Self {
            run,
            month,
            keys: WorkKeys::new(&run.layout, month),
            progress,
            table: None,
            tally: None,
            summary: None,
            #[cfg(feature = "enrich")]
            enriched: None,
            known: Vec::new(),
        }
    }

    /// `s3://<work bucket>/<key>`, as plans and messages name work objects.
    pub(crate) fn work_url(&self, key: &impl fmt::Display) -> String {
        self.run.work_url(key)
    }

    /// The work object `key` that an earlier stage (`needs`) writes, as the manifest
    /// records an input: from `known` when this invocation wrote it, else from a HEAD.
    pub(crate) async fn work_input(
        &self,
        key: ObjectKey,
        what: &'static str,
        needs: Stage,
    ) -> Result<ObjectRef, StageError> {
        let work = self.run.work();
        if let Some(input) = self
            .known
            .iter()
            .find(|r| r.bucket == work.as_str() && r.key == key.as_str())
        {
            return Ok(input.clone());
        }
        match self.run.store.head(work, &key).await {
            Ok(meta) => Ok(ObjectRef::new(work, &meta)),
            Err(e) if e.is_not_found() => Err(self.missing_input(&key, what, needs)),
            Err(e) => Err(e.into()),
        }
    }

    /// [`StageRun::inputs`] of a stage that reads one work object, written by `needs`.
    pub(crate) async fn only_input(
        &self,
        key: ObjectKey,
        what: &'static str,
        needs: Stage,
    ) -> Result<(Vec<ObjectRef>, ()), StageError> {
        Ok((vec![self.work_input(key, what, needs).await?], ()))
    }

    /// The error for a work object `key` that an earlier stage (`needs`) writes and
    /// that is not there.
    pub(crate) fn missing_input(
        &self,
        key: &ObjectKey,
        what: &'static str,
        needs: Stage,
    ) -> StageError {
        StageError::MissingInput {
            what,
            month: self.month,
            bucket: self.run.work().to_string(),
            key: key.to_string(),
            needs,
        }
    }

    /// Reads the month's persisted ingested table (when ingest did not hand it on).
    pub(crate) async fn load_table(&self) -> Result<DataFrame, StageError> {
        let run = self.run;
        gid_ingest::load_table(run.store.as_ref(), run.work(), &self.keys)
            .await
            .map_err(|e| match e {
                gid_ingest::IngestError::Storage(s) if s.is_not_found() => {
                    self.missing_input(&self.keys.requests(), "ingested table", Stage::Ingest)
                }
                other => other.into(),
            })
    }
}

/// What a stage that ran hands back: its outcome, and the objects its manifest records
/// as its outputs (as their puts returned them).
pub(crate) struct Ran {
    pub(crate) outcome: StageOutcome,
    pub(crate) bucket: BucketName,
    pub(crate) written: Vec<WrittenObject>,
}

/// A stage of the monthly report as a value: what it reads, what of the configuration
/// shapes its outputs, what it would do (dry run) and what it does. The runner
/// ([`MonthRun::run_stage`]) decides whether and how it runs.
pub(crate) trait StageRun {
    /// Its name in manifests, outcomes and errors.
    const STAGE: Stage;
    /// Whether a stop abandons it at once or lets it reach its own safe point.
    const ON_STOP: OnStop;
    /// What reading the inputs found that running the stage then uses (ingest: the
    /// listing, so the exports are listed once).
    type Found;

    /// A hash of the configuration that shapes this stage's outputs, and of nothing
    /// else: a change reruns this stage, not the others.
    fn config_hash(&self, config: &Config) -> String;

    /// What the stage reads (recorded in its manifest and compared for skip-unchanged).
    async fn inputs(
        &self,
        ctx: &MonthContext<'_>,
    ) -> Result<(Vec<ObjectRef>, Self::Found), StageError>;

    /// Dry run: what the stage would read and write, writing nothing.
    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError>;

    /// Runs the stage, handing on in `ctx` what a later stage of this invocation uses.
    async fn run(&self, ctx: &mut MonthContext<'_>, found: Self::Found) -> Result<Ran, StageError>;

    /// Called when the stage is skipped as unchanged, before the skip is reported.
    async fn unchanged(&self, _ctx: &MonthContext<'_>, _last: &Manifest) -> Result<(), StageError> {
        Ok(())
    }
}

/// Turns a stage name into its stage value: the one place the orchestrator matches on
/// [`Stage`]; `$stage` is bound to a `&'static` value implementing [`StageRun`].
macro_rules! with_stage {
    ($name:expr, $stage:ident => $body:expr) => {
        match $name {
            Stage::Ingest => {
                let $stage = &$crate::month::ingest::IngestStage;
                $body
            }
            Stage::Aggregate => {
                let $stage = &$crate::month::aggregate::AggregateStage;
                $body
            }
            Stage::Publish => {
                let $stage = &$crate::month::publish::PublishStage;
                $body
            }
            Stage::Notify => {
                let $stage = &$crate::month::notify::NotifyStage;
                $body
            }
            #[cfg(feature = "enrich")]
            Stage::Enrich => {
                let $stage = &$crate::month::enrich::EnrichStage;
                $body
            }
            #[cfg(feature = "enrich")]
            Stage::PickupsPublish => {
                let $stage = &$crate::month::enrich::PickupsPublishStage;
                $body
            }
        }
    };
}
pub(crate) use with_stage;

impl MonthRun {
    /// Runs one stage unless its manifest shows nothing changed (or, in a dry run, plans
    /// it); records the run. Adds the stage's outputs to `ctx.known` (the next stage's
    /// inputs).
    pub(crate) async fn run_stage<S: StageRun>(
        &self,
        stage: &S,
        ctx: &mut MonthContext<'_>,
    ) -> Result<StageOutcome, StageError> {
        if self.options.dry_run {
            return stage.plan(ctx).await;
        }
        let month = ctx.month;
        let name = S::STAGE;
        let manifest_key = ctx.keys.manifest(name.as_str());
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
                stage: name,
                kind: SkipKind::Resume,
                reason: "succeeded before; --resume does not re-check inputs".into(),
            });
        }
        let (inputs, found) = stage.inputs(ctx).await?;
        let config_hash = stage.config_hash(&self.config);
        if let Some(last) = previous {
            if last.covers(&inputs, &config_hash)
                && manifest::outputs_intact(self.store.as_ref(), &last).await
            {
                stage.unchanged(ctx, &last).await?;
                ctx.known.extend(last.outputs.iter().cloned());
                tracing::info!(%month, stage = %name, "inputs and configuration unchanged since the last successful run; skipping (--force reruns)");
                let when = last
                    .finished_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                return Ok(StageOutcome::Skipped {
                    stage: name,
                    kind: SkipKind::Unchanged,
                    reason: format!("unchanged since {when}"),
                });
            }
        }
        let mut record = Manifest {
            stage: name.as_str().into(),
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
        let work = stage.run(ctx, found);
        let result = match S::ON_STOP {
            OnStop::Abandon => tokio::select! {
                result = work => result,
                () = self.shutdown.requested() => Err(self.interrupted().expect("requested")),
            },
            OnStop::SafePoints => work.await,
        };
        record.finished_at = Some(Utc::now());
        match result {
            Ok(Ran {
                outcome,
                bucket,
                written,
            }) => {
                record.outputs = written
                    .iter()
                    .map(|w| ObjectRef::written(&bucket, w))
                    .collect();
                ctx.known.extend(record.outputs.iter().cloned());
                match &outcome {
                    StageOutcome::Ingested(ingested) => {
                        record.rows = Some(ingested.tally.rows);
                        record.quarantined = Some(ingested.tally.quarantined);
                    }
                    StageOutcome::Aggregated(aggregated) => {
                        record.rows = Some(aggregated.total_requests);
                    }
                    #[cfg(feature = "enrich")]
                    StageOutcome::Enriched(enriched) => {
                        record.rows = Some(enriched.requests as u64);
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
                    tracing::warn!(%month, stage = %name, error = %e, "could not record the failed run");
                }
                Err(error)
            }
        }
    }

    /// The last recorded run of one stage of a month, and whether its inputs changed since.
    pub(crate) async fn stage_status<S: StageRun>(
        &self,
        stage: &S,
        ctx: &MonthContext<'_>,
    ) -> Result<StageStatus, StageError> {
        let key = ctx.keys.manifest(S::STAGE.as_str());
        let last = manifest::load(self.store.as_ref(), self.work(), &key).await?;
        let inputs_changed = match &last {
            None => None,
            Some(m) => Some(match stage.inputs(ctx).await {
                Ok((inputs, _)) => {
                    m.inputs != inputs
                        || m.config_hash != stage.config_hash(&self.config)
                        || m.gid_version != GID_VERSION
                }
                Err(_) => true,
            }),
        };
        Ok(StageStatus {
            stage: S::STAGE,
            last,
            inputs_changed,
        })
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
}
