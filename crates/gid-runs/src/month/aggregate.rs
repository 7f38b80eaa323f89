//! Aggregate as a stage: the request table → the month's summary.

use bytes::Bytes;
use gid_core::Config;
use gid_storage::PutOptions;

use super::runner::{MonthContext, OnStop, Ran, StageRun};
use super::{Aggregated, Stage, StageError, StageOutcome};
use crate::manifest::{self, ObjectRef};

/// The aggregate stage.
pub(crate) struct AggregateStage;

impl StageRun for AggregateStage {
    const STAGE: Stage = Stage::Aggregate;
    const ON_STOP: OnStop = OnStop::Abandon;
    type Found = ();

    fn config_hash(&self, c: &Config) -> String {
        // The summary's shape too: a gid that adds to it rebuilds the summaries it finds.
        manifest::config_hash(&[
            c.buckets.work.as_str(),
            &gid_aggregate::SUMMARY_VERSION.to_string(),
        ])
    }

    /// The ingested table.
    async fn inputs(&self, ctx: &MonthContext<'_>) -> Result<(Vec<ObjectRef>, ()), StageError> {
        ctx.only_input(ctx.keys.requests(), "ingested table", Stage::Ingest)
            .await
    }

    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        Ok(StageOutcome::Planned {
            stage: Stage::Aggregate,
            reads: vec![ctx.work_url(&ctx.keys.requests())],
            writes: vec![ctx.work_url(&ctx.keys.summary())],
        })
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, (): ()) -> Result<Ran, StageError> {
        let run = ctx.run;
        let month = ctx.month;
        let summary = match ctx.tally.take() {
            // Ingest counted the month as it read it.
            Some(tally) => tokio::task::spawn_blocking(move || tally.finish(month))
                .await
                .expect("aggregation panicked"),
            None => {
                let frame = match ctx.table.take() {
                    Some(frame) => frame,
                    None => ctx.load_table().await?,
                };
                tokio::task::spawn_blocking(move || gid_aggregate::summarise(month, &frame))
                    .await
                    .expect("aggregation panicked")?
            }
        };
        let keys = &ctx.keys;
        let written = run
            .store
            .put(
                run.work(),
                &keys.summary(),
                Bytes::from(summary.to_json()),
                &PutOptions::new("application/json"),
            )
            .await?;
        let outcome = StageOutcome::Aggregated(Aggregated {
            total_requests: summary.total_requests,
            per_service: summary.services.clone(),
            written: vec![ObjectRef::written(run.work(), &written)],
        });
        ctx.summary = Some(summary);
        Ok(Ran {
            outcome,
            bucket: run.work().clone(),
            written: vec![written],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::month::tests::{assert_hash_follows, plan_of};

    #[tokio::test]
    async fn a_dry_run_of_aggregate_reads_the_table_and_would_write_the_summary() {
        let (reads, writes) = plan_of(&AggregateStage).await;
        assert_eq!(reads, ["s3://gid-work/2019/jan/requests.parquet"]);
        assert_eq!(writes, ["s3://gid-work/2019/jan/summary.json"]);
    }

    #[test]
    fn the_aggregate_hash_changes_with_the_work_bucket_and_not_with_the_ingest_settings() {
        assert_hash_follows(
            &AggregateStage,
            |c| c.buckets.work = gid_core::BucketName::new("other-work").unwrap(),
            |c| c.ingest.suffix = ".txt".into(),
        );
    }
}
