//! Notify as a stage: the month's summary → an alert on each crossed threshold's topic,
//! once per month (the ledger in the work bucket remembers what was sent).

use std::time::Duration;

use gid_aggregate::MonthSummary;
use gid_core::{Config, Month};
use gid_storage::WrittenObject;

use super::runner::{MonthContext, OnStop, Ran, StageRun};
use super::{Notified, Stage, StageError, StageOutcome};
use crate::manifest::{self, ObjectRef};

/// The notify stage.
pub(crate) struct NotifyStage;

impl StageRun for NotifyStage {
    const STAGE: Stage = Stage::Notify;
    const ON_STOP: OnStop = OnStop::SafePoints;
    type Found = ();

    fn config_hash(&self, c: &Config) -> String {
        manifest::config_hash(&[
            // Not user-facing: the thresholds in a stable form (existing manifests hold it).
            &format!("{:?}", c.notify.thresholds),
            &c.notify.ledger_name,
            c.profile.as_str(),
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
        let ledger_key = ctx.keys.alerts(&ctx.run.config.notify.ledger_name);
        Ok(StageOutcome::Planned {
            stage: Stage::Notify,
            reads: vec![ctx.work_url(&ctx.keys.summary()), ctx.work_url(&ledger_key)],
            writes: ctx
                .run
                .thresholds
                .iter()
                .map(|t| format!("topic {} if {} > {}", t.topic, t.service_name, t.above))
                .chain([ctx.work_url(&ledger_key)])
                .collect(),
        })
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, (): ()) -> Result<Ran, StageError> {
        let run = ctx.run;
        let month = ctx.month;
        let thresholds = &run.thresholds;
        let ledger_key = ctx.keys.alerts(&run.config.notify.ledger_name);
        // Taken: notify is the last stage.
        let summary = match ctx.summary.take() {
            Some(summary) => summary,
            None => run.load_summary(month).await?,
        };
        warn_of_thresholds_that_cannot_fire(month, &summary, thresholds);
        let ledger = gid_notify::LedgerLocation::new(run.work().clone(), ledger_key.clone());
        let notify = &run.config.notify;
        let policy = gid_notify::AlertPolicy {
            resend: if run.options.force {
                gid_notify::Resend::All
            } else if run.options.resend_in_doubt {
                gid_notify::Resend::InDoubt
            } else if run.options.confirm_in_doubt {
                gid_notify::Resend::ConfirmInDoubt
            } else {
                gid_notify::Resend::Never
            },
            lease: Duration::from_secs(notify.claim_lease_secs),
            allow_unsubscribed: notify.allow_unsubscribed,
            stop: Some(run.shutdown.as_stop_signal()),
            topic_prefix: run.topic_prefix.clone(),
            clock: gid_notify::LedgerClock::system(),
        };
        let report = gid_notify::evaluate_and_send(
            run.notifier().ok_or(StageError::NotWired {
                stage: Stage::Notify,
                what: "a notifier",
            })?,
            run.store.as_ref(),
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
        if let Some(stopped) = run.interrupted() {
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
        // The ledger exists only once a threshold was crossed. gid-notify's report does
        // not say what its last ledger write returned, hence this HEAD.
        let written = match run.store.head(run.work(), &ledger_key).await {
            Ok(meta) => vec![WrittenObject::from(meta)],
            Err(e) if e.is_not_found() => vec![],
            Err(e) => return Err(e.into()),
        };
        Ok(Ran {
            outcome,
            bucket: run.work().clone(),
            written,
        })
    }
}

/// A threshold whose service does not appear in the month never fires; when the name is
/// close to one that does (a typo such as "Potholes"), say so.
fn warn_of_thresholds_that_cannot_fire(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::month::tests::{assert_hash_follows, plan_of};

    #[tokio::test]
    async fn a_dry_run_of_notify_names_each_threshold_and_the_ledger() {
        let (reads, writes) = plan_of(&NotifyStage).await;
        assert_eq!(
            reads,
            [
                "s3://gid-work/2019/jan/summary.json",
                "s3://gid-work/2019/jan/alerts.json"
            ]
        );
        assert_eq!(
            writes,
            [
                "topic trash if Illegal Dumping > 100",
                "topic streets if Pothole > 30",
                "s3://gid-work/2019/jan/alerts.json",
            ]
        );
    }

    #[test]
    fn the_notify_hash_changes_with_the_thresholds_and_not_with_the_publish_settings() {
        assert_hash_follows(
            &NotifyStage,
            |c| c.notify.thresholds[0].above += 1,
            |c| c.publish.report_cache_control = "no-store".into(),
        );
    }
}
