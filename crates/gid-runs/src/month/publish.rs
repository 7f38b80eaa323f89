//! Publish as a stage: the month's summary → its report files on the site, then the
//! site's index.

use gid_core::Config;
use gid_publish::{render_month, PublishError, INDEX_KEY};

use super::runner::{MonthContext, OnStop, Ran, StageRun};
use super::{MonthRun, Published, Stage, StageError, StageOutcome};
use crate::manifest::{self, Manifest, ObjectRef};

/// The publish stage.
pub(crate) struct PublishStage;

/// The month's site files, as a dry run names them.
const SITE_FILES: [&str; 3] = ["final_report.csv", "final_report.html", "chart.html"];

impl StageRun for PublishStage {
    const STAGE: Stage = Stage::Publish;
    const ON_STOP: OnStop = OnStop::SafePoints;
    type Found = ();

    fn config_hash(&self, c: &Config) -> String {
        manifest::config_hash(&[
            c.buckets.reports.as_str(),
            &c.layout.month_prefix,
            // Not user-facing: every publish setting, in a stable form, so any change
            // republishes (existing manifests hold this exact form).
            &format!("{:?}", c.publish),
        ])
    }

    /// The month's summary.
    async fn inputs(&self, ctx: &MonthContext<'_>) -> Result<(Vec<ObjectRef>, ()), StageError> {
        let summary = ctx
            .work_input(ctx.keys.summary(), "summary", Stage::Aggregate)
            .await?;
        Ok((vec![summary], ()))
    }

    async fn plan(&self, ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        let run = ctx.run;
        let reports = &run.config.buckets.reports;
        Ok(StageOutcome::Planned {
            stage: Stage::Publish,
            reads: vec![ctx.work_url(&ctx.keys.summary())],
            writes: SITE_FILES
                .iter()
                .map(|f| format!("s3://{reports}/{}", run.layout.month_key(ctx.month, f)))
                .chain([format!("s3://{reports}/{INDEX_KEY} (regenerated last)")])
                .collect(),
        })
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, (): ()) -> Result<Ran, StageError> {
        let run = ctx.run;
        let reports_bucket = run.config.buckets.reports.clone();
        // Cloned, not taken: notify, after publish, uses the summary too.
        let summary = match ctx.summary.clone() {
            Some(summary) => summary,
            None => run.load_summary(ctx.month).await?,
        };
        let files = render_month(&run.layout, &summary, &run.service_info());
        let published = match run.publish_files(&files).await {
            Err(PublishError::Stopped) => {
                return Err(run
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
        Ok(Ran {
            outcome,
            bucket: reports_bucket,
            written: published.objects,
        })
    }

    /// The month's files are as the last publish left them, but the index may not list
    /// them: see [`MonthRun::repair_index`].
    async fn unchanged(&self, ctx: &MonthContext<'_>, last: &Manifest) -> Result<(), StageError> {
        ctx.run.repair_index(ctx.month, last).await
    }
}

impl MonthRun {
    /// The month's site files are unchanged, but another publisher's index may have lost
    /// them (a gid version without the index protocol, a crash between a file and the
    /// index): rebuild the index when it misses any of them.
    async fn repair_index(
        &self,
        month: gid_core::Month,
        last: &Manifest,
    ) -> Result<(), StageError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::month::tests::{assert_hash_follows, plan_of};

    #[tokio::test]
    async fn a_dry_run_of_publish_names_the_month_files_and_the_index_last() {
        let (reads, writes) = plan_of(&PublishStage).await;
        assert_eq!(reads, ["s3://gid-work/2019/jan/summary.json"]);
        assert_eq!(
            writes,
            [
                "s3://gid-reports/2019/jan/final_report.csv",
                "s3://gid-reports/2019/jan/final_report.html",
                "s3://gid-reports/2019/jan/chart.html",
                "s3://gid-reports/index.html (regenerated last)",
            ]
        );
    }

    #[test]
    fn the_publish_hash_changes_with_the_publish_settings_and_not_with_the_notify_ones() {
        assert_hash_follows(
            &PublishStage,
            |c| c.publish.report_cache_control = "no-store".into(),
            |c| c.notify.ledger_name = "ledger.json".into(),
        );
    }
}
