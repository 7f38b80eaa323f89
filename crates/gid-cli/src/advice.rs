//! What the operator can do about a failure, in the words of gid's commands.
//!
//! The library crates' errors say what failed and why; which command or flag helps is
//! the binaries' business (a library does not know whether it runs under
//! `monthly-report`, `scooter-pickups` or `gid-admin`), so the advice is added here,
//! where errors are reported: to the one stderr line ([`crate::error_line`]) and to the
//! run summary's failed months ([`advise_summary`]).

use std::error::Error;

use gid_aggregate::AggregateError;
use gid_core::{ConfigError, MonthError};
use gid_ingest::IngestError;
use gid_notify::NotifyError;
use gid_publish::PublishError;
use gid_runs::report::RunSummary;
use gid_runs::{MonthOutcome, Stage, StageError};
use gid_storage::StorageError;

/// What to do about `error`: the advice of the first error in its chain that has one.
pub fn advice(error: &(dyn Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(advice) = own_advice(error) {
            return Some(advice);
        }
        next = error.source();
    }
    None
}

/// `line`, then `; ` and the advice for `error` unless the line already says it.
pub fn with_advice(mut line: String, error: &(dyn Error + 'static)) -> String {
    if let Some(advice) = advice(error) {
        if !line.contains(&advice) {
            line.push_str("; ");
            line.push_str(&advice);
        }
    }
    line
}

/// Adds the advice to each failed month of `summary` (its `error` and its failed stage's
/// `reason`); `outcomes` are the months the summary was built from, in the same order.
pub fn advise_summary(summary: &mut RunSummary, outcomes: &[MonthOutcome]) {
    for (report, outcome) in summary.months.iter_mut().zip(outcomes) {
        let Some(failure) = &outcome.failure else {
            continue;
        };
        if let Some(error) = report.error.take() {
            report.error = Some(with_advice(error, failure));
        }
        if let Some(reason) = report.stages.last_mut().and_then(|s| s.reason.take()) {
            report.stages.last_mut().expect("just read").reason =
                Some(with_advice(reason, &failure.source));
        }
    }
}

/// The advice for this error itself (not its causes), looking through the wrappers
/// whose message is their inner error's (`#[error(transparent)]`), which a `source()`
/// chain skips.
fn own_advice(error: &(dyn Error + 'static)) -> Option<String> {
    if let Some(error) = error.downcast_ref::<StageError>() {
        return stage_advice(error);
    }
    if let Some(error) = error.downcast_ref::<StorageError>() {
        return storage_advice(error);
    }
    if let Some(error) = error.downcast_ref::<AggregateError>() {
        return aggregate_advice(error);
    }
    if let Some(error) = error.downcast_ref::<IngestError>() {
        return ingest_advice(error);
    }
    if let Some(error) = error.downcast_ref::<PublishError>() {
        return publish_advice(error);
    }
    if let Some(error) = error.downcast_ref::<NotifyError>() {
        return notify_advice(error);
    }
    if let Some(error) = error.downcast_ref::<MonthError>() {
        return month_advice(error);
    }
    if let Some(error) = error.downcast_ref::<ConfigError>() {
        return config_advice(error);
    }
    None
}

fn stage_advice(error: &StageError) -> Option<String> {
    match error {
        StageError::MissingInput { needs, .. } => Some(missing_input(*needs)),
        StageError::Interrupted { .. } => Some("rerun the same command to resume".into()),
        StageError::AlertsNotSent { .. } => {
            Some("rerun to retry (sent alerts are not repeated)".into())
        }
        StageError::Storage(e) => storage_advice(e),
        StageError::Ingest(e) => ingest_advice(e),
        StageError::Aggregate(e) => aggregate_advice(e),
        StageError::Publish(e) => publish_advice(e),
        StageError::Notify(e) => notify_advice(e),
        StageError::Translate { lang, .. } => Some(format!(
            "check the engine with `gid-admin translate --to {lang} \"Pothole\"`, or remove \"{lang}\" from publish.languages"
        )),
        _ => None,
    }
}

/// The stage that writes a missing input, as the command that runs it says it.
fn missing_input(needs: Stage) -> String {
    if Stage::ALL.contains(&needs) {
        format!("run --stage {needs} first (or run without --stage)")
    } else {
        // scooter-pickups' own stages run in one chain: a missing output of an earlier
        // one was removed while the run went on.
        format!("rerun the month with --force so that {needs} runs again")
    }
}

fn storage_advice(error: &StorageError) -> Option<String> {
    match error {
        StorageError::NoSuchBucket { bucket } => {
            Some(format!("create it with `gid-admin bucket create {bucket}`"))
        }
        StorageError::BucketNotEmpty { .. } => Some("use --force to empty it first".into()),
        StorageError::PreconditionFailed { .. } => Some("rerun to retry".into()),
        _ => None,
    }
}

fn aggregate_advice(error: &AggregateError) -> Option<String> {
    match error {
        AggregateError::Corrupt { .. } => Some("rerun --stage aggregate".into()),
        _ => None,
    }
}

fn ingest_advice(error: &IngestError) -> Option<String> {
    match error {
        IngestError::NoInput { prefix, .. } => Some(format!(
            "is the month right? `gid-admin object list --prefix {prefix}` shows what is there"
        )),
        IngestError::CorruptTable { .. } => Some("rerun --stage ingest".into()),
        IngestError::Storage(e) => storage_advice(e),
        _ => None,
    }
}

fn publish_advice(error: &PublishError) -> Option<String> {
    match error {
        PublishError::IndexContended { .. } => Some("rerun once they have finished".into()),
        _ => None,
    }
}

fn notify_advice(error: &NotifyError) -> Option<String> {
    match error {
        NotifyError::NoSuchTopic { topic } => Some(format!(
            "create it with `gid-admin topic create {}`",
            topic.name()
        )),
        NotifyError::NoSuchSubscription { .. } => {
            Some("list them with `gid-admin subscriptions list`".into())
        }
        NotifyError::CorruptRecord { .. } => Some("fix or delete the file".into()),
        NotifyError::CorruptLedger { .. } => Some(
            "fix it, or delete it to start afresh (alerts already sent may then be sent again)"
                .into(),
        ),
        NotifyError::LedgerContended { .. } => Some("rerun once they have finished".into()),
        NotifyError::Storage(e) => storage_advice(e),
        _ => None,
    }
}

fn month_advice(error: &MonthError) -> Option<String> {
    match error {
        MonthError::RangeTooLong { .. } => {
            Some("narrow it, or use --all to run every month that has exports".into())
        }
        _ => None,
    }
}

fn config_advice(error: &ConfigError) -> Option<String> {
    match error {
        ConfigError::MissingFile(_) => Some("check the path given with --config".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use gid_core::{BucketName, Month};
    use gid_runs::RunError;

    use super::*;

    fn bucket() -> BucketName {
        BucketName::new("gid-work").unwrap()
    }

    fn missing(needs: Stage) -> RunError {
        RunError {
            month: Month::new(2019, 1).unwrap(),
            stage: Stage::Publish,
            source: StageError::MissingInput {
                what: "summary",
                month: Month::new(2019, 1).unwrap(),
                bucket: "gid-work".into(),
                key: "2019/jan/summary.json".into(),
                needs,
            },
        }
    }

    #[test]
    fn a_missing_input_names_the_stage_to_run_first_after_what_is_missing() {
        let error = missing(Stage::Aggregate);
        assert_eq!(
            with_advice(error.to_string(), &error),
            "2019-01 publish: no summary for 2019-01 at s3://gid-work/2019/jan/summary.json; \
             run --stage aggregate first (or run without --stage)"
        );
    }

    #[test]
    fn a_missing_bucket_inside_a_stage_error_names_the_command_that_creates_it() {
        let error = StageError::Storage(StorageError::NoSuchBucket { bucket: bucket() });
        assert_eq!(
            advice(&error).as_deref(),
            Some("create it with `gid-admin bucket create gid-work`")
        );
    }

    #[test]
    fn a_wrapped_error_keeps_the_advice_of_its_cause() {
        let error = anyhow::Error::new(StorageError::BucketNotEmpty { bucket: bucket() })
            .context("deleting bucket gid-work");
        assert_eq!(
            advice(error.as_ref()).as_deref(),
            Some("use --force to empty it first")
        );
    }

    #[test]
    fn advice_already_in_the_line_is_not_repeated() {
        let error = StorageError::PreconditionFailed {
            bucket: bucket(),
            key: "index.html".into(),
        };
        let line = "s3://gid-work/index.html changed; rerun to retry".to_owned();
        assert_eq!(with_advice(line.clone(), &error), line);
    }

    #[test]
    fn a_failed_page_translation_names_the_command_that_checks_the_engine() {
        let error = StageError::Translate {
            month: "2019-01".parse().unwrap(),
            lang: "es".into(),
            source: gid_enrich::EnrichError::ModelInvalid {
                path: "weights.safetensors".into(),
                reason: "truncated".into(),
            },
        };
        let line = with_advice(error.to_string(), &error);
        assert!(
            line.starts_with("translating the 2019-01 pages into `es`: "),
            "{line}"
        );
        assert!(
            line.ends_with(
                "check the engine with `gid-admin translate --to es \"Pothole\"`, or remove \"es\" from publish.languages"
            ),
            "{line}"
        );
    }

    fn not_json() -> serde_json::Error {
        serde_json::from_str::<u32>("{").unwrap_err()
    }

    fn topic() -> gid_notify::TopicArn {
        gid_notify::TopicArn::new("arn:aws:sns:us-west-2:123456789012:gid-graffiti").unwrap()
    }

    #[test]
    fn a_month_without_input_names_the_command_that_lists_its_prefix() {
        let error = StageError::Ingest(IngestError::NoInput {
            bucket: BucketName::new("gid-requests").unwrap(),
            prefix: "2018/dec/".into(),
        });
        assert_eq!(
            with_advice(error.to_string(), &error),
            "no input under s3://gid-requests/2018/dec/: no object is stored under that prefix; \
             is the month right? `gid-admin object list --prefix 2018/dec/` shows what is there"
        );
    }

    #[test]
    fn an_unreadable_month_table_says_to_rerun_ingest() {
        let error = StageError::Ingest(IngestError::CorruptTable {
            bucket: bucket(),
            key: "2019/jan/requests.parquet".into(),
            source: "not a Parquet file".into(),
        });
        assert_eq!(advice(&error).as_deref(), Some("rerun --stage ingest"));
    }

    #[test]
    fn a_contended_index_or_ledger_says_to_rerun_once_the_others_have_finished() {
        let index = StageError::Publish(PublishError::IndexContended {
            bucket: bucket(),
            attempts: 5,
        });
        let ledger = StageError::Notify(NotifyError::LedgerContended {
            bucket: "gid-work".into(),
            key: "alerts/ledger.json".into(),
            attempts: 5,
        });
        for error in [index, ledger] {
            assert_eq!(
                advice(&error).as_deref(),
                Some("rerun once they have finished"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_missing_topic_names_the_command_that_creates_it_by_its_short_name() {
        let error = anyhow::Error::new(NotifyError::NoSuchTopic { topic: topic() })
            .context("deleting topic graffiti");
        assert_eq!(
            advice(error.as_ref()).as_deref(),
            Some("create it with `gid-admin topic create gid-graffiti`")
        );
    }

    #[test]
    fn a_missing_subscription_names_the_command_that_lists_them() {
        let subscription = gid_notify::SubscriptionArn::new(format!("{}:abc", topic())).unwrap();
        let error = NotifyError::NoSuchSubscription { subscription };
        assert_eq!(
            advice(&error).as_deref(),
            Some("list them with `gid-admin subscriptions list`")
        );
    }

    #[test]
    fn a_corrupt_outbox_record_or_ledger_says_to_fix_or_delete_it() {
        let record = NotifyError::CorruptRecord {
            path: "outbox/topics/gid-graffiti.json".into(),
            source: not_json(),
        };
        assert_eq!(advice(&record).as_deref(), Some("fix or delete the file"));
        let ledger = StageError::Notify(NotifyError::CorruptLedger {
            bucket: "gid-work".into(),
            key: "alerts/ledger.json".into(),
            source: not_json(),
        });
        assert_eq!(
            advice(&ledger).as_deref(),
            Some(
                "fix it, or delete it to start afresh (alerts already sent may then be sent again)"
            )
        );
    }

    #[test]
    fn a_too_long_month_range_suggests_narrowing_it_or_all() {
        let from = Month::new(0, 1).unwrap();
        let to = Month::new(9999, 12).unwrap();
        let error = anyhow::Error::new(gid_core::MonthRange::new(from, to).unwrap_err());
        assert_eq!(
            with_advice(error.to_string(), error.as_ref()),
            "the range 0000-01 to 9999-12 is 120000 months long, more than the 600 (50 years) \
             one run takes; narrow it, or use --all to run every month that has exports"
        );
    }

    #[test]
    fn a_missing_config_file_points_at_the_config_flag() {
        let error = ConfigError::MissingFile("/etc/gid/prod.toml".into());
        assert_eq!(
            with_advice(error.to_string(), &error),
            "config file /etc/gid/prod.toml does not exist; check the path given with --config"
        );
    }
}
