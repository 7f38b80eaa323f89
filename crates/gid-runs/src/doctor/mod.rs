//! The operator's preflight (`gid-admin doctor`): every precondition of a scheduled run
//! checked once, before the run, each answered in words with what to do about it.
//!
//! On the aws profile: the region, which credential source resolved and whom STS says it
//! is, each configured bucket (exists, reachable, in the client's region), a probe object
//! put, read back and deleted in the work bucket, whether the store honours conditional
//! writes (the alert ledger and the site index rely on them), whether the reports bucket
//! lets anyone read (by object ACL, by bucket policy, or not at all) as `publish.acl`
//! expects, SNS, each threshold topic's confirmed subscriptions and the SMS sandbox. On
//! the local profile: the data root, the bucket folders, the same probes and the outbox.
//! Then the enrichment engines `enrich.engines` names (by default the profile's), on
//! either profile: the offline engines of scooter-pickups are installed, or Amazon
//! Translate, Comprehend and Rekognition answer and let the identity call them.
//!
//! A [`Check`] is `ok`, `warn` (a run works, but something is risky), `fail` (a scheduled
//! run would fail) or `skipped` (it could not be told, and why). Nothing is changed but a
//! probe object under `.gid-doctor/` (removed again) and, on the local profile, what every
//! run creates anyway (the data root, the work and reports folders, the outbox).

mod aws;
mod engines;
mod local;

use std::fmt::Write as _;

use gid_core::{BucketName, Config, FailureKind, ObjectKey, Profile};
use gid_notify::{topic_audiences, Notifier, Threshold, TopicAudience, TopicPrefix};
use gid_storage::{ObjectStore, PutCondition, PutOptions, SignedStore, StorageError};
use serde::Serialize;

use crate::BackendError;

/// The JSON document's version: bumped when a field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 1;

/// Where probe objects go in the work bucket, each under a key of its own.
pub const PROBE_PREFIX: &str = ".gid-doctor/";

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// A run works, but something is risky (alerts nobody receives, a site nobody can read).
    Warn,
    /// A scheduled run would fail.
    Fail,
    /// Not checked: it could not be told here, or an earlier failure makes it moot.
    Skipped,
}

impl Status {
    /// The status as the report prints it (`ok`, `warn`, `fail`, `skipped`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skipped => "skipped",
        }
    }
}

/// One line of the doctor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, for scripts: `bucket.work`, `topic.trash`, `sns.sms-sandbox`.
    pub id: String,
    /// What the table shows: `bucket gid-work`, `topic trash`.
    pub name: String,
    /// How it came out.
    pub status: Status,
    /// What was found, in one line.
    pub detail: String,
    /// What to do about a `warn` or `fail` (`None` otherwise).
    pub action: Option<String>,
}

impl Check {
    fn new(id: impl Into<String>, name: impl Into<String>, status: Status, detail: String) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            status,
            detail,
            action: None,
        }
    }

    fn ok(id: impl Into<String>, name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(id, name, Status::Ok, detail.into())
    }

    fn warn(
        id: impl Into<String>,
        name: impl Into<String>,
        detail: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self::new(id, name, Status::Warn, detail.into()).with_action(action)
    }

    fn fail(
        id: impl Into<String>,
        name: impl Into<String>,
        detail: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        Self::new(id, name, Status::Fail, detail.into()).with_action(action)
    }

    fn skipped(id: impl Into<String>, name: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(id, name, Status::Skipped, why.into())
    }

    fn with_action(mut self, action: impl Into<String>) -> Self {
        self.action = Some(action.into());
        self
    }

    /// `fail` when the thing checked blocks a run, else `warn`.
    fn problem(
        blocks: bool,
        id: impl Into<String>,
        name: impl Into<String>,
        detail: impl Into<String>,
        action: impl Into<String>,
    ) -> Self {
        let status = if blocks { Status::Fail } else { Status::Warn };
        Self::new(id, name, status, detail.into()).with_action(action)
    }
}

/// Every check of one preflight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// The version of this document's shape.
    pub schema_version: u32,
    /// `local` or `aws`.
    pub profile: &'static str,
    /// No check failed: a scheduled run can start (warnings allowed).
    pub ok: bool,
    /// Every check, in the order they ran.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The report of `checks` run on `profile`.
    pub fn new(profile: Profile, checks: Vec<Check>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            profile: profile.as_str(),
            ok: !checks.iter().any(|c| c.status == Status::Fail),
            checks,
        }
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// 0 when nothing fails (warnings allowed), 1 when something would block a run.
    pub fn exit_code(&self) -> u8 {
        if self.ok {
            0
        } else {
            1
        }
    }

    /// The JSON document of `--output json`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }

    /// The table people read: one row per check, what to do under each warning or
    /// failure, and a closing verdict.
    pub fn table(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(0)
            .max("check".len());
        let mut out = String::new();
        let _ = writeln!(out, "{:<width$}  {:<7}  detail", "check", "status");
        for check in &self.checks {
            let _ = writeln!(
                out,
                "{:<width$}  {:<7}  {}",
                check.name,
                check.status.as_str(),
                check.detail
            );
            if let Some(action) = &check.action {
                let _ = writeln!(out, "{:<width$}  {:<7}  → {action}", "", "");
            }
        }
        let (failed, warned) = (self.count(Status::Fail), self.count(Status::Warn));
        let skipped = match self.count(Status::Skipped) {
            0 => String::new(),
            n => format!(" ({} skipped)", plural(n, "check", "checks")),
        };
        let verdict = if failed > 0 {
            format!(
                "{}, {}{skipped}: a scheduled run would fail; fix the failed checks first.",
                plural(failed, "check failed", "checks failed"),
                plural(warned, "warning", "warnings")
            )
        } else if warned > 0 {
            format!(
                "ready, with {}{skipped}: a scheduled run works, but read the warnings.",
                plural(warned, "warning", "warnings")
            )
        } else {
            format!("ready: no check failed or warned{skipped}.")
        };
        let _ = writeln!(out, "\n{verdict}");
        out
    }
}

/// `1 warning`, `2 warnings`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Why the preflight could not run at all (a configuration error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    /// The configuration cannot be used to open the backends.
    Config(#[from] BackendError),
}

/// Runs every check of the configured profile.
pub async fn examine(config: &Config) -> Result<DoctorReport, DoctorError> {
    let thresholds = crate::thresholds(config)?;
    let mut checks = match config.profile {
        Profile::Aws => aws::examine(config, &thresholds).await,
        Profile::Local => local::examine(config, &thresholds).await,
    };
    // The engines are chosen apart from storage: check the ones a run would call.
    checks.extend(match config.engines() {
        Profile::Local => local::engine_checks().await,
        Profile::Aws => engines::aws_engine_checks(config).await,
    });
    Ok(DoctorReport::new(config.profile, checks))
}

/// A configured bucket and what it is for.
struct BucketRole {
    /// The config key under `buckets.` (`work`).
    key: &'static str,
    bucket: BucketName,
    /// Who uses it, for details.
    used_for: &'static str,
    /// Whether a scheduled run fails without it.
    required: bool,
}

fn bucket_roles(config: &Config) -> Vec<BucketRole> {
    let b = &config.buckets;
    vec![
        BucketRole {
            key: "requests",
            bucket: b.requests.clone(),
            used_for: "monthly-report and scooter-pickups read the exports here",
            required: true,
        },
        BucketRole {
            key: "work",
            bucket: b.work.clone(),
            used_for: "every stage keeps its outputs, manifests and the alert ledger here",
            required: true,
        },
        BucketRole {
            key: "reports",
            bucket: b.reports.clone(),
            used_for: "publish writes the report site here",
            required: true,
        },
        BucketRole {
            key: "staging",
            bucket: b.staging.clone(),
            used_for: "gid-admin subscribe reads contacts.csv here",
            required: false,
        },
        BucketRole {
            key: "images",
            bucket: b.images.clone(),
            used_for: "scooter-pickups reads request photos here (without it every photo counts as missing)",
            required: false,
        },
    ]
}

/// A failure in two parts: what happened, and what to do.
fn failure_words(kind: &FailureKind) -> (String, String) {
    let at = |endpoint: &Option<String>| endpoint.clone().unwrap_or_else(|| "AWS".to_owned());
    let rerun = "rerun the doctor later".to_owned();
    match kind {
        FailureKind::ConnectionRefused { endpoint } => (
            format!("connection refused by {}", at(endpoint)),
            "check aws.endpoint_url / AWS_ENDPOINT_URL and that the service is running".into(),
        ),
        FailureKind::UnknownHost { endpoint } => (
            format!("the host of {} does not resolve", at(endpoint)),
            "check the endpoint (aws.endpoint_url, AWS_ENDPOINT_URL_<SERVICE>) and aws.force_path_style".into(),
        ),
        FailureKind::TimedOut => (
            "no answer in time".into(),
            "check network access to the endpoint, or raise aws.operation_timeout_secs".into(),
        ),
        FailureKind::NoCredentials => (
            "no credentials in the standard chain (environment, AWS profile, SSO, container or instance role)".into(),
            "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is attached".into(),
        ),
        FailureKind::SsoLoginRequired { profile } => {
            let profile = profile.clone().unwrap_or_else(|| "<your profile>".into());
            (
                format!("the SSO session of AWS profile {profile} has no valid token"),
                format!("run `aws sso login --profile {profile}`"),
            )
        }
        FailureKind::CredentialsExpired => (
            "the credentials have expired".into(),
            "refresh them (`aws sso login`, a new session token)".into(),
        ),
        FailureKind::CredentialsRejected => (
            "the credentials were rejected (unknown access key or bad signature)".into(),
            "check which keys are in use (AWS_PROFILE, AWS_ACCESS_KEY_ID)".into(),
        ),
        FailureKind::AccessDenied => (
            "access denied".into(),
            "grant the identity shown above the permission it lacks".into(),
        ),
        FailureKind::NotFound { code } => (format!("not found ({code})"), rerun),
        FailureKind::PreconditionFailed => ("a precondition failed".into(), rerun),
        FailureKind::Throttled => ("still throttled after every retry".into(), rerun),
        FailureKind::ServerError { status } => {
            (format!("the service failed (HTTP {status})"), rerun)
        }
        FailureKind::Rejected { code, message } if message.is_empty() => {
            (format!("refused: {code}"), "run with -v for the detail".into())
        }
        FailureKind::Rejected { code, message } => {
            (format!("refused: {code}: {message}"), "run with -v for the detail".into())
        }
        FailureKind::BrokenResponse { .. } => ("the response broke off".into(), rerun),
        FailureKind::Other => (
            "the request failed".into(),
            "run with -v for the SDK's detail".into(),
        ),
    }
}

/// A storage failure in two parts, as [`failure_words`].
fn storage_words(error: &StorageError) -> (String, String) {
    match error {
        StorageError::Service { kind, .. } => failure_words(kind),
        StorageError::NoSuchBucket { bucket } => (
            "the bucket does not exist".into(),
            format!("gid-admin bucket create {bucket}"),
        ),
        other => (other.to_string(), "run with -v for the detail".into()),
    }
}

/// The write and conditional-write probes of the work bucket, or both skipped when the
/// bucket itself failed its check.
async fn work_probes(store: &dyn SignedStore, work: &BucketName, usable: bool) -> Vec<Check> {
    if usable {
        return probe_work_bucket(store, work).await;
    }
    let reason = "the work bucket is not usable";
    vec![
        Check::skipped("bucket.work.write", format!("write probe {work}"), reason),
        Check::skipped(
            "bucket.work.conditional-writes",
            "conditional writes",
            reason,
        ),
    ]
}

/// Puts a probe object into the work bucket, reads it back, tries the conditional writes
/// the alert ledger and the site index rely on, and deletes it again: a write check and a
/// conditional-write check.
async fn probe_work_bucket(store: &dyn SignedStore, bucket: &BucketName) -> Vec<Check> {
    let owner = gid_core::RunOwner::current();
    let key = ObjectKey::new(format!("{PROBE_PREFIX}{}.probe", owner.run_id))
        .expect("a run id makes a valid key");
    // The local store's objects are files: name the file, not an s3:// address.
    let url = if store.backend() == "local" {
        store.public_url(bucket, &key)
    } else {
        format!("s3://{bucket}/{key}")
    };
    let write_id = "bucket.work.write";
    let write_name = format!("write probe {bucket}");
    let cond_id = "bucket.work.conditional-writes";
    let cond_name = "conditional writes";
    let body = format!("gid-admin doctor probe of run {}\n", owner.run_id);
    let plain = PutOptions::new("text/plain");

    let etag = match store.put(bucket, &key, body.clone().into(), &plain).await {
        Ok(written) => written.etag,
        Err(e) => {
            let (what, todo) = storage_words(&e);
            return vec![
                Check::fail(
                    write_id,
                    write_name,
                    format!("gid cannot write {url}: {what}; every stage writes to this bucket"),
                    todo,
                ),
                Check::skipped(cond_id, cond_name, "needs a writable work bucket"),
            ];
        }
    };
    let read_back = store.get(bucket, &key).await;
    let conditional = conditional_writes(store, bucket, &key, &etag).await;
    let deleted = store.delete(bucket, &key).await;

    let write = match (read_back, deleted) {
        (Ok(object), Ok(())) if object.body == body.as_bytes() => Check::ok(
            write_id,
            write_name,
            format!("put, read back and deleted {url}"),
        ),
        (Ok(_), Ok(())) => Check::fail(
            write_id,
            write_name,
            format!("{url} read back with other bytes than were put"),
            "check that nothing rewrites objects in the work bucket (a proxy, a lifecycle rule)",
        ),
        (Err(e), _) => {
            let (what, todo) = storage_words(&e);
            Check::fail(
                write_id,
                write_name,
                format!("wrote {url} but cannot read it back: {what}"),
                todo,
            )
        }
        (Ok(_), Err(e)) => {
            let (what, todo) = storage_words(&e);
            Check::fail(
                write_id,
                write_name,
                format!("cannot delete {url}: {what}; runs remove stale outputs, so they would fail too"),
                format!("{todo}; then delete the probe by hand"),
            )
        }
    };
    let cond = match conditional {
        Ok(()) => Check::ok(
            cond_id,
            cond_name,
            format!(
                "honoured in {bucket}: If-None-Match refused an existing key, If-Match refused a stale ETag and took the current one"
            ),
        ),
        Err(why) => Check::warn(
            cond_id,
            cond_name,
            format!(
                "not honoured in {bucket} ({why}): two runs could both claim an alert, so alerts could be sent twice, and concurrent publishers could drop each other's reports from index.html"
            ),
            "use a store that honours If-None-Match and If-Match on PUT (S3 does), and never start two runs of a month at once",
        ),
    };
    vec![write, cond]
}

/// The three conditional writes gid relies on, on an existing probe object whose ETag is
/// `etag`; `Err` says which one the store did not honour.
async fn conditional_writes(
    store: &dyn ObjectStore,
    bucket: &BucketName,
    key: &ObjectKey,
    etag: &str,
) -> Result<(), String> {
    let put = |condition| {
        let options = PutOptions::new("text/plain").with_condition(condition);
        async move {
            store
                .put(bucket, key, "conditional write probe\n".into(), &options)
                .await
        }
    };
    let refused =
        |what: &str, result: Result<gid_storage::WrittenObject, StorageError>| match result {
            Err(StorageError::PreconditionFailed { .. }) => Ok(()),
            Ok(_) => Err(format!("{what} was accepted")),
            Err(e) => Err(format!("{what} failed: {}", storage_words(&e).0)),
        };
    refused(
        "If-None-Match: * on an existing key",
        put(PutCondition::IfNoneMatch).await,
    )?;
    refused(
        "If-Match with a stale ETag",
        put(PutCondition::IfMatch(
            "0123456789abcdef0123456789abcdef".into(),
        ))
        .await,
    )?;
    match put(PutCondition::IfMatch(etag.to_owned())).await {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "If-Match with the current ETag was refused: {}",
            storage_words(&e).0
        )),
    }
}

/// The thresholds that alert a topic, for details (`Illegal Dumping > 100`).
fn alerts_of(thresholds: &[Threshold], topic: &str) -> String {
    thresholds
        .iter()
        .filter(|t| t.topic.as_str() == topic)
        .map(|t| format!("{} > {}", t.service_name, t.above))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One check per threshold topic: who would receive its alerts.
/// Topics are looked up by their SNS names (`gid-trash`) and reported by the short names
/// operators configure (`trash`).
async fn topic_checks(
    notifier: &dyn Notifier,
    thresholds: &[Threshold],
    prefix: &TopicPrefix,
) -> Vec<Check> {
    if thresholds.is_empty() {
        return vec![Check::skipped(
            "topics",
            "topics",
            "no notify.thresholds are configured, so notify sends nothing",
        )];
    }
    let names: Vec<_> = thresholds
        .iter()
        .filter_map(|t| prefix.topic(&t.topic).ok())
        .collect();
    match topic_audiences(notifier, &names).await {
        Ok(audiences) => audiences
            .iter()
            .map(|a| {
                let short = a
                    .name
                    .as_str()
                    .strip_prefix(prefix.as_str())
                    .unwrap_or(a.name.as_str());
                topic_check(a, short, &alerts_of(thresholds, short))
            })
            .collect(),
        Err(e) => vec![Check::warn(
            "topics",
            "topics",
            format!("could not list the threshold topics' subscriptions: {e}"),
            "rerun the doctor later",
        )],
    }
}

/// Whether anyone would receive a topic's alerts.
fn topic_check(audience: &TopicAudience, name: &str, alerts: &str) -> Check {
    let (id, label) = (format!("topic.{name}"), format!("topic {name}"));
    let subscribe = "subscribe the department's contacts with `gid-admin subscribe`, and have each confirm their email subscription";
    if audience.arn.is_none() {
        return Check::warn(
            id,
            label,
            format!(
                "does not exist, so nobody is subscribed: alerts of {alerts} would reach nobody"
            ),
            subscribe,
        );
    }
    let pending = match audience.pending {
        0 => String::new(),
        n => format!(", {n} pending confirmation"),
    };
    if audience.confirmed_total() == 0 {
        return Check::warn(
            id,
            label,
            format!(
                "no confirmed subscription{pending}: alerts of {alerts} would reach nobody (the notify stage refuses to send them unless notify.allow_unsubscribed)"
            ),
            subscribe,
        );
    }
    let by_protocol = audience
        .confirmed
        .iter()
        .map(|(protocol, n)| format!("{n} {protocol}"))
        .collect::<Vec<_>>()
        .join(", ");
    Check::ok(
        id,
        label,
        format!(
            "{} confirmed ({by_protocol}){pending}: alerts of {alerts}",
            audience.confirmed_total()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gid_storage::BucketAdmin;

    fn report(statuses: &[Status]) -> DoctorReport {
        let checks = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| Check::new(format!("c{i}"), format!("check {i}"), *s, "x".into()))
            .collect();
        DoctorReport::new(Profile::Aws, checks)
    }

    #[test]
    fn warnings_keep_the_exit_code_at_zero_and_a_failure_makes_it_one() {
        assert_eq!(
            report(&[Status::Ok, Status::Warn, Status::Skipped]).exit_code(),
            0
        );
        let failed = report(&[Status::Ok, Status::Fail, Status::Warn]);
        assert_eq!(failed.exit_code(), 1);
        assert!(!failed.ok);
        assert!(failed
            .table()
            .contains("1 check failed, 1 warning: a scheduled run would fail"));
    }

    #[test]
    fn the_table_puts_what_to_do_under_the_check_it_belongs_to() {
        let report = DoctorReport::new(
            Profile::Aws,
            vec![
                Check::ok("region", "region", "us-west-2, set by aws.region"),
                Check::fail(
                    "bucket.work",
                    "bucket gid-work",
                    "does not exist",
                    "gid-admin bucket create gid-work",
                ),
            ],
        );
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "check            status   detail");
        assert_eq!(
            lines[1],
            "region           ok       us-west-2, set by aws.region"
        );
        assert_eq!(lines[2], "bucket gid-work  fail     does not exist");
        assert_eq!(
            lines[3],
            "                          → gid-admin bucket create gid-work"
        );
    }

    #[test]
    fn the_json_document_has_a_version_a_verdict_and_every_check() {
        let json: serde_json::Value =
            serde_json::from_str(&report(&[Status::Ok, Status::Warn]).to_json()).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["profile"], "aws");
        assert_eq!(json["ok"], true);
        assert_eq!(json["checks"][1]["status"], "warn");
        assert!(json["checks"][0]["action"].is_null());
    }

    #[test]
    fn a_topic_without_confirmed_subscribers_is_a_warning_naming_it() {
        let audience = TopicAudience {
            name: gid_notify::TopicName::new("trash").unwrap(),
            arn: Some(
                gid_notify::TopicArn::new("arn:aws:sns:us-east-1:123456789012:trash").unwrap(),
            ),
            confirmed: Default::default(),
            pending: 2,
        };
        let check = topic_check(&audience, "trash", "Illegal Dumping > 100");
        assert_eq!(check.status, Status::Warn);
        assert_eq!(check.name, "topic trash");
        assert!(
            check.detail.contains("2 pending confirmation"),
            "{}",
            check.detail
        );
        assert!(check.action.unwrap().contains("gid-admin subscribe"));
    }

    #[tokio::test]
    async fn a_store_that_ignores_preconditions_is_reported_as_not_honouring_them() {
        // A store whose puts always succeed, whatever their condition: what an S3-compatible
        // store that ignores If-None-Match does.
        let dir = tempfile::tempdir().unwrap();
        let store = gid_storage::LocalStore::open(dir.path()).unwrap();
        let bucket = BucketName::new("gid-work").unwrap();
        store.create_bucket(&bucket).await.unwrap();
        let ignoring = gid_storage::InstrumentedStore::new(std::sync::Arc::new(store))
            .ignoring_put_conditions();

        let checks = probe_work_bucket(&ignoring, &bucket).await;

        assert_eq!(checks[0].status, Status::Ok, "{:?}", checks[0]);
        assert_eq!(checks[1].status, Status::Warn);
        assert!(checks[1]
            .detail
            .contains("If-None-Match: * on an existing key was accepted"));
        assert!(checks[1].detail.contains("alerts could be sent twice"));
        let left = gid_storage::list_all(&ignoring, &bucket, PROBE_PREFIX)
            .await
            .unwrap();
        assert!(left.is_empty(), "the probe is removed again: {left:?}");
    }

    #[tokio::test]
    async fn the_local_store_honours_conditional_writes_and_keeps_no_probe() {
        let dir = tempfile::tempdir().unwrap();
        let store = gid_storage::LocalStore::open(dir.path()).unwrap();
        let bucket = BucketName::new("gid-work").unwrap();
        store.create_bucket(&bucket).await.unwrap();

        let checks = probe_work_bucket(&store, &bucket).await;

        assert_eq!(
            checks.iter().map(|c| c.status).collect::<Vec<_>>(),
            [Status::Ok, Status::Ok],
            "{checks:?}"
        );
        assert!(
            checks[0].detail.contains("file://"),
            "the probe is named as the file it was: {}",
            checks[0].detail
        );
        assert!(gid_storage::list_all(&store, &bucket, "")
            .await
            .unwrap()
            .is_empty());
    }
}
