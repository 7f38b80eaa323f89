//! Ingest as a stage: the month's exports → the request table, its report and the
//! quarantined rows.

use gid_core::Config;
use gid_ingest::{FileParts, MonthListing, PreviousIngest};
use gid_storage::ObjectMeta;

use super::runner::{MonthContext, OnStop, Ran, StageRun};
use super::{Ingested, Stage, StageError, StageOutcome};
use crate::manifest::{self, ObjectRef, GID_VERSION};

/// The ingest stage.
pub(crate) struct IngestStage;

impl StageRun for IngestStage {
    const STAGE: Stage = Stage::Ingest;
    const ON_STOP: OnStop = OnStop::Abandon;
    type Found = MonthListing;

    fn config_hash(&self, c: &Config) -> String {
        manifest::config_hash(&[
            c.buckets.requests.as_str(),
            &c.layout.month_prefix,
            &c.ingest.suffix,
            &c.ingest.required_columns.join(","),
            &c.ingest.max_columns.to_string(),
            c.ingest.out_of_month.as_str(),
        ])
    }

    /// The month's listing: every object under its prefix, exports and others, so a
    /// file added, changed or removed reruns the month.
    async fn inputs(
        &self,
        ctx: &MonthContext<'_>,
    ) -> Result<(Vec<ObjectRef>, MonthListing), StageError> {
        let run = ctx.run;
        let listing = gid_ingest::list_inputs(run.store.as_ref(), &run.source(ctx.month)).await?;
        let bucket = &run.config.buckets.requests;
        let refs = listing.all().map(|m| ObjectRef::new(bucket, m)).collect();
        Ok((refs, listing))
    }

    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        let run = ctx.run;
        let source = run.source(ctx.month);
        let keys = &ctx.keys;
        let listing = gid_ingest::list_inputs(run.store.as_ref(), &source).await?;
        let previous = self.previous(ctx, &listing).await?;
        Ok(StageOutcome::Planned {
            stage: Stage::Ingest,
            reads: listing
                .exports
                .iter()
                .map(|o| {
                    let kept = if previous.reuses(&o.key, &o.etag) {
                        "; unchanged: taken from what the last ingest kept"
                    } else {
                        ""
                    };
                    format!("s3://{}/{} ({} bytes{kept})", source.bucket, o.key, o.size)
                })
                .collect(),
            writes: vec![
                ctx.work_url(&keys.requests()),
                ctx.work_url(&keys.ingest_report()),
                format!(
                    "{} (rows refused, if any)",
                    ctx.work_url(&keys.quarantine_prefix())
                ),
            ],
        })
    }

    async fn run(
        &self,
        ctx: &mut MonthContext<'_>,
        listing: MonthListing,
    ) -> Result<Ran, StageError> {
        let run = ctx.run;
        let month = ctx.month;
        let progress = ctx.progress;
        let source = run.source(month);
        progress.files_found(month, listing.exports.len());
        let on_file = |meta: &ObjectMeta| progress.file_done(month, meta);
        let parts = self.parts(ctx);
        let previous = self.previous(ctx, &listing).await?;
        let mut month_table = gid_ingest::ingest_month_with_parts(
            run.store.as_ref(),
            &source,
            month,
            listing,
            &parts,
            &previous,
            &on_file,
        )
        .await?;
        let written =
            gid_ingest::persist(run.store.as_ref(), run.work(), &ctx.keys, &mut month_table)
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
                .map(|w| ObjectRef::written(run.work(), w))
                .collect(),
        }));
        ctx.table = month_table.frame;
        ctx.tally = month_table.tally;
        Ok(Ran {
            outcome,
            bucket: run.work().clone(),
            written,
        })
    }
}

impl IngestStage {
    /// Where the month's per-file parts go, and under which fingerprint they are reused.
    fn parts(&self, ctx: &MonthContext<'_>) -> FileParts {
        let run = ctx.run;
        FileParts {
            bucket: run.work().clone(),
            keys: ctx.keys.clone(),
            month_prefix: run.layout.month_prefix(ctx.month),
            min_bytes: run.config.ingest.part_min_bytes,
            fingerprint: format!("{GID_VERSION} {}", self.config_hash(&run.config)),
        }
    }

    /// What the last ingest kept for reuse. Looked up only when it can have kept something
    /// (a file large enough for a part), so months of small files cost no extra request;
    /// --force reads every file again.
    async fn previous(
        &self,
        ctx: &MonthContext<'_>,
        listing: &MonthListing,
    ) -> Result<PreviousIngest, StageError> {
        let run = ctx.run;
        let parts = self.parts(ctx);
        if !run.options.force && listing.exports.iter().any(|m| parts.wanted(m.size)) {
            Ok(parts.previous(run.store.as_ref()).await?)
        } else {
            Ok(PreviousIngest::none())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::month::tests::{assert_hash_follows, january, plan_of, put, runner, world};
    use crate::RunOptions;

    #[tokio::test]
    async fn a_dry_run_of_ingest_lists_each_export_with_its_size_and_names_what_it_would_write() {
        let (reads, writes) = plan_of(&IngestStage).await;
        // The sample month: three exports and an empty one.
        assert_eq!(reads.len(), 4, "{reads:?}");
        assert!(
            reads.contains(&"s3://gid-requests/2019/jan/part-empty.csv (0 bytes)".to_owned()),
            "{reads:?}"
        );
        assert!(
            reads
                .iter()
                .all(|r| r.starts_with("s3://gid-requests/2019/jan/") && r.ends_with(" bytes)")),
            "{reads:?}"
        );
        assert_eq!(
            writes,
            [
                "s3://gid-work/2019/jan/requests.parquet",
                "s3://gid-work/2019/jan/ingest.json",
                "s3://gid-work/quarantine/2019/jan/ (rows refused, if any)",
            ]
        );
    }

    #[tokio::test]
    async fn a_dry_run_after_one_export_changed_says_which_exports_it_would_take_from_their_parts()
    {
        let dir = tempfile::tempdir().unwrap();
        let (mut config, store) = world(dir.path()).await;
        config.ingest.part_min_bytes = 0;
        let run = runner(&config, &store, RunOptions::default());
        let first = run.run_month(january(), &[Stage::Ingest], &()).await;
        assert!(first.failure.is_none(), "{:?}", first.failure);
        put(
            store.as_ref(),
            &config.buckets.requests,
            "2019/jan/part-001.csv",
            b"service_request_id,service_name,date_requested\nx-1,Pothole,2019-01-05\n".to_vec(),
        )
        .await;

        let ctx = MonthContext::new(&run, january(), &());
        let StageOutcome::Planned { reads, .. } = IngestStage.plan(&ctx).await.unwrap() else {
            panic!("a dry run plans")
        };
        let kept: Vec<&str> = reads
            .iter()
            .filter(|r| r.contains("unchanged: taken from what the last ingest kept"))
            .map(String::as_str)
            .collect();
        assert_eq!(kept.len(), reads.len() - 1, "{reads:?}");
        assert!(
            kept.iter().all(|r| !r.contains("part-001.csv")),
            "the changed export is read again: {reads:?}"
        );
    }

    #[test]
    fn the_ingest_hash_changes_with_the_ingest_settings_and_not_with_the_publish_ones() {
        assert_hash_follows(
            &IngestStage,
            |c| c.ingest.suffix = ".txt".into(),
            |c| c.publish.report_cache_control = "no-store".into(),
        );
    }
}
