//! Threshold alerts: when a month's count for a service crosses its threshold, publish
//! once to the threshold's topic, and remember that in a ledger so a rerun stays quiet.
//!
//! The ledger is one JSON object in the object store (e.g. `gid-work/2019/jan/alerts.json`).
//! Every alert is *claimed* in the ledger before it is published and marked *sent* right
//! after, each write conditional on the ledger being unchanged since it was read
//! (`If-None-Match: *` to create, `If-Match: <etag>` to update). Two runs racing for the same
//! alert therefore cannot both publish it: the loser's write fails, it rereads, and sees the
//! claim.
//!
//! A claim names its owner ([`RunOwner`]: run id, host, pid) and holds a lease that the
//! sender renews while it publishes. Another run finding a claim whose owner still runs
//! (or whose lease has not expired, where the owner cannot be checked) leaves it alone:
//! that run is sending it. Only a claim whose owner is gone — the process ended, or the
//! lease ran out — is *in doubt* (the owner died between claim and record: maybe sent,
//! maybe not), reported and not resent until an operator decides.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use gid_core::{BucketName, Month, ObjectKey, RunOwner};
use gid_storage::{ObjectStore, PutCondition, PutOptions, StorageError};
use serde::{Deserialize, Serialize};

use crate::types::{check_subject, MAX_SUBJECT_LEN};
use crate::{
    create_gid_topic, InvalidInput, MessageId, Notifier, NotifyError, SubscriptionStatus, TopicArn,
    TopicName, TopicPrefix,
};

/// Ledger writes retried after losing a race to another run, before giving up.
const LEDGER_ATTEMPTS: u32 = 5;

/// "Alert when the month's count of `service_name` is strictly above `above`."
///
/// Deserialisable from config (a list of these); `label` defaults to the service name.
/// The label names the count in the message: `"{label} count is now {count} for
/// {month}"`. It must be printable ASCII, since it also goes into the SNS Subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ThresholdSpec")]
pub struct Threshold {
    /// The service counted, as the exports spell it.
    pub service_name: String,
    /// Alert when the count is strictly above this.
    pub above: u64,
    /// The short name (without the prefix) of the topic alerted.
    pub topic: TopicName,
    /// What the message calls the count.
    pub label: String,
}

/// A threshold as written in config, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdSpec {
    service_name: String,
    above: u64,
    topic: TopicName,
    #[serde(default)]
    label: Option<String>,
}

impl TryFrom<ThresholdSpec> for Threshold {
    type Error = InvalidInput;
    fn try_from(spec: ThresholdSpec) -> Result<Self, Self::Error> {
        let label = spec.label.unwrap_or_else(|| spec.service_name.clone());
        Threshold::new(spec.service_name, spec.above, spec.topic, label)
    }
}

impl Threshold {
    /// A validated threshold: a service name, and a label whose Subject fits SNS's rules.
    pub fn new(
        service_name: impl Into<String>,
        above: u64,
        topic: TopicName,
        label: impl Into<String>,
    ) -> Result<Self, InvalidInput> {
        let threshold = Self {
            service_name: service_name.into(),
            above,
            topic,
            label: label.into(),
        };
        let fail = |reason: String| InvalidInput::Threshold {
            service_name: threshold.service_name.clone(),
            reason,
        };
        if threshold.service_name.trim().is_empty() {
            return Err(fail("the service name is empty".into()));
        }
        if threshold.label.trim().is_empty() {
            return Err(fail("the label is empty".into()));
        }
        // The longest Subject this threshold can produce (a month is always 7 characters).
        let subject = threshold.subject(Month::new(2019, 1).expect("valid month"));
        check_subject(&threshold.topic.to_string(), &subject).map_err(|e| {
            fail(format!(
                "label {:?} does not fit an SNS Subject ({e}); use at most {} printable ASCII characters",
                threshold.label,
                MAX_SUBJECT_LEN - (subject.len() - threshold.label.len())
            ))
        })?;
        Ok(threshold)
    }

    /// The course's thresholds: more than 100 Illegal Dumping requests alert `trash`,
    /// more than 30 Pothole requests alert `streets`.
    pub fn course_defaults() -> Vec<Threshold> {
        let topic = |t: &str| TopicName::new(t).expect("valid topic");
        vec![
            Threshold::new("Illegal Dumping", 100, topic("trash"), "Trash violations")
                .expect("valid default"),
            Threshold::new("Pothole", 30, topic("streets"), "Pothole").expect("valid default"),
        ]
    }

    /// Strictly greater: a count equal to the threshold does not alert.
    pub fn is_crossed_by(&self, count: u64) -> bool {
        count > self.above
    }

    /// The SNS Subject (`Trash violations above 100 in 2019-01`).
    pub fn subject(&self, month: Month) -> String {
        format!("{} above {} in {month}", self.label, self.above)
    }

    /// The message body (`Trash violations count is now 123 for 2019-01`).
    pub fn message(&self, month: Month, count: u64) -> String {
        format!("{} count is now {count} for {month}", self.label)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} > {} → {}",
            self.service_name, self.above, self.topic
        )
    }
}

/// The names among `present` closest to `service`, best first (at most three): what a
/// threshold on a misspelled service ("Potholes") most likely meant. A threshold whose
/// service never appears in a month never fires, and nothing else would say so.
pub fn closest_services<'a>(service: &str, present: &[&'a str]) -> Vec<&'a str> {
    let wanted = service.trim().to_lowercase();
    let mut scored: Vec<(f64, &str)> = present
        .iter()
        .map(|name| {
            let score =
                strsim::normalized_damerau_levenshtein(&wanted, &name.trim().to_lowercase());
            (score, *name)
        })
        .filter(|(score, _)| *score >= 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

/// Where a ledger lives in the object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLocation {
    /// The work bucket.
    pub bucket: BucketName,
    /// The month's ledger key, e.g. `2019/jan/alerts.json`.
    pub key: ObjectKey,
}

impl LedgerLocation {
    /// The ledger at `key` in `bucket`.
    pub fn new(bucket: BucketName, key: ObjectKey) -> Self {
        Self { bucket, key }
    }
}

impl fmt::Display for LedgerLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Where an alert stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// A run is publishing it, or died while doing so.
    Claimed,
    /// Published, with the message id recorded.
    Sent,
}

/// One (month, threshold) alert in the ledger. A threshold is identified by service
/// name, level and topic: changing any of them in config makes a new threshold, which
/// may alert again for a month the old one already alerted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// The threshold's service.
    pub service_name: String,
    /// The threshold's level.
    pub above: u64,
    /// The threshold's topic (short name).
    pub topic: TopicName,
    /// The threshold's label, as the message used it.
    pub label: String,
    /// The count when it was last claimed.
    pub count: u64,
    /// Claimed or sent.
    pub state: AlertState,
    /// When it was last claimed (a claim older than the lease has expired).
    pub claimed_at: DateTime<Utc>,
    /// The last message that went out for it.
    pub message_id: Option<MessageId>,
    /// When it last went out.
    pub sent_at: Option<DateTime<Utc>>,
    /// How many times it went out (more than 1 only through `force`).
    pub times_sent: u32,
    /// The run holding the claim (absent in ledgers written before claims had owners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<RunOwner>,
    /// Until when the claim holds unless renewed; renewed while its owner publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<DateTime<Utc>>,
}

impl LedgerEntry {
    /// The claim's owner if it may still be publishing: its process runs (where that can
    /// be checked) or its lease has not run out (elsewhere).
    fn live_owner(&self, now: DateTime<Utc>) -> Option<&RunOwner> {
        let owner = self.claimed_by.as_ref()?;
        let live = match owner.is_running() {
            Some(running) => running,
            None => self.lease_until.is_some_and(|until| until > now),
        };
        live.then_some(owner)
    }

    fn is_for(&self, month: &str, threshold: &Threshold) -> bool {
        self.month == month
            && self.service_name == threshold.service_name
            && self.above == threshold.above
            && self.topic == threshold.topic
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LedgerFile {
    alerts: Vec<LedgerEntry>,
}

/// The alerts sent so far, as read from the object store, with the ETag that conditional
/// updates compare against.
#[derive(Debug, Clone, Default)]
pub struct AlertLedger {
    entries: Vec<LedgerEntry>,
    /// `None`: the ledger object does not exist yet.
    etag: Option<String>,
}

impl AlertLedger {
    /// Reads the ledger; a missing ledger object is an empty ledger (a missing bucket is
    /// an error).
    pub async fn load(
        store: &dyn ObjectStore,
        location: &LedgerLocation,
    ) -> Result<Self, NotifyError> {
        let object = match store.get(&location.bucket, &location.key).await {
            Ok(object) => object,
            Err(StorageError::NoSuchKey { .. }) => return Ok(Self::default()),
            Err(e) => return Err(e.into()),
        };
        let file: LedgerFile =
            serde_json::from_slice(&object.body).map_err(|e| NotifyError::CorruptLedger {
                bucket: location.bucket.to_string(),
                key: location.key.to_string(),
                source: e,
            })?;
        Ok(Self {
            entries: file.alerts,
            etag: Some(object.meta.etag),
        })
    }

    /// Every alert the ledger records (one per threshold alerted), in its order.
    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// The entry of this month's alert for `threshold`, if any.
    pub fn find(&self, month: Month, threshold: &Threshold) -> Option<&LedgerEntry> {
        let month = month.to_string();
        self.entries.iter().find(|e| e.is_for(&month, threshold))
    }

    /// Applies `change` and writes the result conditionally; when another run wrote in
    /// between, rereads and applies `change` again to what that run left. `change` says
    /// whether it changed anything (nothing is written otherwise).
    async fn update<T>(
        &mut self,
        store: &dyn ObjectStore,
        location: &LedgerLocation,
        mut change: impl FnMut(&mut Vec<LedgerEntry>) -> (T, bool),
    ) -> Result<T, NotifyError> {
        for _ in 0..LEDGER_ATTEMPTS {
            let mut entries = self.entries.clone();
            let (outcome, changed) = change(&mut entries);
            if !changed {
                return Ok(outcome);
            }
            let file = LedgerFile { alerts: entries };
            let mut body = serde_json::to_vec_pretty(&file).expect("ledger serialises");
            body.push(b'\n');
            let condition = match &self.etag {
                None => PutCondition::IfNoneMatch,
                Some(etag) => PutCondition::IfMatch(etag.clone()),
            };
            let options = PutOptions::new("application/json").with_condition(condition);
            match store
                .put(&location.bucket, &location.key, Bytes::from(body), &options)
                .await
            {
                Ok(written) => {
                    self.entries = file.alerts;
                    self.etag = Some(written.etag);
                    return Ok(outcome);
                }
                Err(StorageError::PreconditionFailed { .. }) => {
                    tracing::debug!(%location, "ledger changed under us; rereading");
                    *self = Self::load(store, location).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(NotifyError::LedgerContended {
            bucket: location.bucket.to_string(),
            key: location.key.to_string(),
            attempts: LEDGER_ATTEMPTS,
        })
    }
}

/// What happened to one threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertResult {
    /// The count did not cross the threshold.
    Below,
    /// Published now.
    Sent {
        /// The topic it went to.
        topic: TopicArn,
        /// The id the service gave it.
        message_id: MessageId,
    },
    /// Sent by an earlier run for this month; not sent again (pass `force` to resend).
    AlreadySent {
        /// The id of the earlier message, when recorded.
        message_id: Option<MessageId>,
        /// When it went out, when recorded.
        sent_at: Option<DateTime<Utc>>,
    },
    /// Claimed by another run that is still running: it is sending this alert; nothing to do.
    ClaimedElsewhere {
        /// The run holding the claim.
        owner: RunOwner,
        /// When it claimed it.
        claimed_at: DateTime<Utc>,
    },
    /// Claimed by a run that ended (or whose lease ran out) before recording the outcome:
    /// maybe sent, maybe not. Not resent until an operator decides.
    InDoubt {
        /// When the claim was made.
        claimed_at: DateTime<Utc>,
        /// The run that made it (absent in ledgers written before claims had owners).
        owner: Option<RunOwner>,
    },
    /// Not sent: nobody has a confirmed subscription to the topic, so nobody would get it
    /// (`allow_unsubscribed` sends it anyway).
    NoSubscribers {
        /// The topic nobody is subscribed to.
        topic: TopicArn,
    },
    /// Not sent: the run was asked to stop before it claimed the alert. A rerun sends it.
    Stopped,
    /// Not sent; the reason names what failed. A rerun tries again.
    Failed {
        /// What failed, in one sentence.
        reason: String,
    },
}

impl fmt::Display for AlertResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        match self {
            AlertResult::Below => f.write_str("below its threshold"),
            AlertResult::Sent { message_id, .. } => write!(f, "sent (message {message_id})"),
            AlertResult::AlreadySent { sent_at, .. } => match sent_at {
                Some(at) => write!(f, "already sent at {}", when(at)),
                None => f.write_str("already sent"),
            },
            AlertResult::ClaimedElsewhere { owner, .. } => {
                write!(f, "another run is sending it: {owner}; nothing to do")
            }
            AlertResult::InDoubt { claimed_at, owner } => {
                write!(f, "in doubt: claimed at {}", when(claimed_at))?;
                if let Some(owner) = owner {
                    write!(f, " by {owner}")?;
                }
                f.write_str(", which ended before recording whether it was sent")
            }
            AlertResult::NoSubscribers { topic } => write!(
                f,
                "not sent: topic {} has no confirmed subscription, so nobody would receive it \
                 (subscribe the contacts with `gid-admin subscribe`, or set \
                 notify.allow_unsubscribed = true to send anyway)",
                topic.name()
            ),
            AlertResult::Stopped => f.write_str("not sent: the run was stopped first"),
            AlertResult::Failed { reason } => write!(f, "not sent: {reason}"),
        }
    }
}

/// One threshold's count and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertOutcome {
    /// The threshold checked.
    pub threshold: Threshold,
    /// The month's count of its service.
    pub count: u64,
    /// What happened.
    pub result: AlertResult,
}

/// What [`evaluate_and_send`] did for a month, one outcome per threshold, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertReport {
    /// The month checked.
    pub month: Month,
    /// One per threshold, in config order.
    pub outcomes: Vec<AlertOutcome>,
}

impl AlertReport {
    /// The alerts published by this run.
    pub fn sent(&self) -> impl Iterator<Item = &AlertOutcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, AlertResult::Sent { .. }))
    }

    /// The alerts that should have gone out but did not (failed, in doubt, unsubscribed,
    /// stopped). An alert another live run is sending is not a problem of this run.
    pub fn problems(&self) -> impl Iterator<Item = &AlertOutcome> {
        self.outcomes.iter().filter(|o| {
            matches!(
                o.result,
                AlertResult::Failed { .. }
                    | AlertResult::InDoubt { .. }
                    | AlertResult::NoSubscribers { .. }
                    | AlertResult::Stopped
            )
        })
    }

    /// The alerts another run, still running, was sending when this run looked.
    pub fn claimed_elsewhere(&self) -> impl Iterator<Item = &AlertOutcome> {
        self.outcomes
            .iter()
            .filter(|o| matches!(o.result, AlertResult::ClaimedElsewhere { .. }))
    }
}

/// What the claim step found.
enum Claim {
    /// Ours to publish; the entry it replaced (a forced resend) to restore on failure.
    Ours(Option<LedgerEntry>),
    Done(AlertResult),
}

/// Which alerts already in the ledger a run sends again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resend {
    /// None: an alert goes out once per month and threshold.
    #[default]
    Never,
    /// Only alerts left "in doubt" by a run that died between claiming and recording them
    /// (the operator checked they did not go out).
    InDoubt,
    /// None; alerts left "in doubt" did go out (the operator saw them on the topic): they
    /// are recorded as sent, so the month's alerting is settled without a duplicate.
    ConfirmInDoubt,
    /// All of them (`--force`).
    All,
}

impl From<bool> for Resend {
    /// `force`: resend everything.
    fn from(force: bool) -> Self {
        if force {
            Resend::All
        } else {
            Resend::Never
        }
    }
}

/// Says whether the process is shutting down (checked before each claim).
pub type StopSignal = Arc<dyn Fn() -> bool + Send + Sync>;

/// How a run sends a month's alerts.
#[derive(Clone)]
pub struct AlertPolicy {
    /// Which alerts already sent (or in doubt) go out again.
    pub resend: Resend,
    /// How long a claim holds without renewal; the sender renews it every third of this
    /// while it publishes, so only a claim whose owner stopped renewing expires.
    pub lease: Duration,
    /// Send to topics without a confirmed subscription (and record the alert as sent).
    pub allow_unsubscribed: bool,
    /// Stops the run before its next claim (graceful shutdown).
    pub stop: Option<StopSignal>,
    /// A threshold's topic is gid's topic of that short name (`trash` → `gid-trash`). The
    /// ledger keeps the short name, so changing the prefix never resends a month's alerts.
    pub topic_prefix: TopicPrefix,
    /// The clock the ledger's claims and leases are stamped with.
    pub clock: LedgerClock,
}

/// Where the ledger's timestamps (claims, leases, sends) come from.
#[derive(Clone, Copy)]
pub struct LedgerClock(ClockSource);

#[derive(Clone, Copy)]
enum ClockSource {
    System,
    Tokio {
        wall: DateTime<Utc>,
        instant: tokio::time::Instant,
    },
}

impl LedgerClock {
    /// The system's wall clock: what runs use, since other processes and hosts read the
    /// leases.
    pub fn system() -> Self {
        Self(ClockSource::System)
    }

    /// The wall clock now, advanced by tokio's clock from here on: under tokio's paused
    /// time (tests) leases expire and renew as the virtual clock moves, with no real wait.
    pub fn following_tokio() -> Self {
        Self(ClockSource::Tokio {
            wall: Utc::now(),
            instant: tokio::time::Instant::now(),
        })
    }

    /// The time to stamp now.
    pub fn now(&self) -> DateTime<Utc> {
        match self.0 {
            ClockSource::System => Utc::now(),
            ClockSource::Tokio { wall, instant } => {
                let elapsed = chrono::Duration::from_std(instant.elapsed())
                    .unwrap_or(chrono::Duration::zero());
                wall + elapsed
            }
        }
    }
}

impl fmt::Debug for LedgerClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            ClockSource::System => "system",
            ClockSource::Tokio { .. } => "following tokio",
        })
    }
}

/// The default claim lease.
pub const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(60);

impl Default for AlertPolicy {
    fn default() -> Self {
        Self {
            resend: Resend::Never,
            lease: DEFAULT_CLAIM_LEASE,
            allow_unsubscribed: false,
            stop: None,
            topic_prefix: TopicPrefix::default(),
            clock: LedgerClock::system(),
        }
    }
}

impl fmt::Debug for AlertPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlertPolicy")
            .field("resend", &self.resend)
            .field("lease", &self.lease)
            .field("allow_unsubscribed", &self.allow_unsubscribed)
            .field("stop", &self.stop.is_some())
            .field("topic_prefix", &self.topic_prefix)
            .field("clock", &self.clock)
            .finish()
    }
}

impl From<Resend> for AlertPolicy {
    fn from(resend: Resend) -> Self {
        Self {
            resend,
            ..Self::default()
        }
    }
}

impl From<bool> for AlertPolicy {
    /// `force`: resend everything.
    fn from(force: bool) -> Self {
        Resend::from(force).into()
    }
}

impl AlertPolicy {
    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| stop())
    }
}

/// Compares each threshold with `counts(service_name)` for `month` and publishes every
/// crossed one that the ledger does not already hold, each at most once per month across
/// runs, recording it in the ledger at `ledger` right after. `policy` says which alerts
/// already in the ledger go out again (`true` means [`Resend::All`]), how long claims hold
/// and whether topics nobody subscribed to get alerts. Publishing failures are reported per
/// threshold and the others proceed; a ledger that cannot be read or written stops the run
/// (an alert is never sent without being recorded).
pub async fn evaluate_and_send(
    notifier: &dyn Notifier,
    store: &dyn ObjectStore,
    ledger: &LedgerLocation,
    month: Month,
    counts: impl Fn(&str) -> u64,
    thresholds: &[Threshold],
    policy: impl Into<AlertPolicy>,
) -> Result<AlertReport, NotifyError> {
    let policy = policy.into();
    let counted: Vec<(&Threshold, u64)> = thresholds
        .iter()
        .map(|t| (t, counts(&t.service_name)))
        .collect();
    let mut run = AlertRun {
        notifier,
        store,
        location: ledger,
        book: AlertLedger::load(store, ledger).await?,
        month,
        policy,
    };
    let mut outcomes = Vec::with_capacity(counted.len());
    for (threshold, count) in counted {
        let result = if threshold.is_crossed_by(count) {
            run.send(threshold, count).await?
        } else {
            AlertResult::Below
        };
        outcomes.push(AlertOutcome {
            threshold: threshold.clone(),
            count,
            result,
        });
    }
    Ok(AlertReport { month, outcomes })
}

/// One month's alerting against one ledger.
struct AlertRun<'a> {
    notifier: &'a dyn Notifier,
    store: &'a dyn ObjectStore,
    location: &'a LedgerLocation,
    book: AlertLedger,
    month: Month,
    policy: AlertPolicy,
}

impl AlertRun<'_> {
    /// Claim → publish (renewing the claim) → mark sent (or release the claim if the
    /// publish failed).
    async fn send(
        &mut self,
        threshold: &Threshold,
        count: u64,
    ) -> Result<AlertResult, NotifyError> {
        let month = self.month;
        let month_text = month.to_string();
        if self.policy.stopping() {
            return Ok(AlertResult::Stopped);
        }
        // Resolve the topic before claiming, so an unusable topic leaves no claim behind.
        let topic = match create_gid_topic(
            self.notifier,
            &self.policy.topic_prefix,
            &threshold.topic,
        )
        .await
        {
            Ok(topic) => topic,
            Err(e) => {
                return Ok(AlertResult::Failed {
                    reason: e.to_string(),
                })
            }
        };
        if !self.policy.allow_unsubscribed {
            match self.notifier.list_subscriptions(Some(&topic)).await {
                Ok(subscriptions) => {
                    let confirmed = subscriptions
                        .iter()
                        .any(|s| s.status == SubscriptionStatus::Confirmed);
                    if !confirmed {
                        tracing::warn!(%month, topic = %threshold.topic, "threshold alert not sent: nobody has a confirmed subscription to the topic");
                        return Ok(AlertResult::NoSubscribers { topic });
                    }
                }
                Err(e) => {
                    return Ok(AlertResult::Failed {
                        reason: e.to_string(),
                    })
                }
            }
        }
        let (resend, lease, clock) = (self.policy.resend, self.policy.lease, self.policy.clock);
        let mut claim_it = |entries: &mut Vec<LedgerEntry>| {
            claim(
                entries,
                &month_text,
                threshold,
                count,
                resend,
                lease,
                clock.now(),
            )
        };
        let mut claimed = self
            .book
            .update(self.store, self.location, &mut claim_it)
            .await?;
        // "In doubt" is read from the ledger as this run last saw it, and its owner is
        // found gone only afterwards: the owner may have recorded the send and exited in
        // between. The verdict stands only if a fresh read shows the same ledger.
        for _ in 0..LEDGER_ATTEMPTS {
            if !matches!(claimed, Claim::Done(AlertResult::InDoubt { .. })) {
                break;
            }
            let fresh = AlertLedger::load(self.store, self.location).await?;
            if fresh.etag == self.book.etag {
                break;
            }
            self.book = fresh;
            claimed = self
                .book
                .update(self.store, self.location, &mut claim_it)
                .await?;
        }
        let previous = match claimed {
            Claim::Done(result) => return Ok(result),
            Claim::Ours(previous) => previous,
        };
        if self.policy.stopping() {
            self.release(threshold, previous).await?;
            return Ok(AlertResult::Stopped);
        }

        // Copied out of `self` so the publish does not borrow what the renewals change.
        let notifier = self.notifier;
        let subject = threshold.subject(month);
        let message = threshold.message(month, count);
        let publish = notifier.publish(&topic, Some(&subject), &message);
        tokio::pin!(publish);
        let mut renewals = tokio::time::interval_at(
            tokio::time::Instant::now() + lease / 3,
            (lease / 3).max(Duration::from_millis(10)),
        );
        let published = loop {
            tokio::select! {
                published = &mut publish => break published,
                _ = renewals.tick() => self.renew(threshold).await,
            }
        };
        match published {
            Ok(message_id) => {
                tracing::info!(%month, topic = %threshold.topic, count, "threshold alert sent");
                let sent_at = self.policy.clock.now();
                self.book
                    .update(self.store, self.location, |entries| {
                        if let Some(entry) = entries
                            .iter_mut()
                            .find(|e| e.is_for(&month_text, threshold))
                        {
                            entry.state = AlertState::Sent;
                            entry.message_id = Some(message_id.clone());
                            entry.sent_at = Some(sent_at);
                            entry.times_sent += 1;
                            entry.lease_until = None;
                        }
                        ((), true)
                    })
                    .await?;
                Ok(AlertResult::Sent {
                    topic: topic.clone(),
                    message_id,
                })
            }
            Err(e) => {
                tracing::warn!(%month, topic = %threshold.topic, error = %e, "threshold alert not sent");
                self.release(threshold, previous).await?;
                Ok(AlertResult::Failed {
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Removes this run's claim so a rerun tries again, restoring the entry a forced
    /// resend replaced.
    async fn release(
        &mut self,
        threshold: &Threshold,
        previous: Option<LedgerEntry>,
    ) -> Result<(), NotifyError> {
        let month_text = self.month.to_string();
        self.book
            .update(self.store, self.location, |entries| {
                entries.retain(|e| {
                    !(e.is_for(&month_text, threshold)
                        && e.state == AlertState::Claimed
                        && e.claimed_by.as_ref().is_some_and(RunOwner::is_current))
                });
                entries.extend(previous.clone());
                ((), true)
            })
            .await
    }

    /// Extends this run's claim by a lease. A failed renewal is only logged: the publish
    /// goes on, and at worst another run later finds the claim expired and in doubt.
    async fn renew(&mut self, threshold: &Threshold) {
        let month_text = self.month.to_string();
        let until = self.policy.clock.now() + self.policy.lease;
        let renewed = self
            .book
            .update(self.store, self.location, |entries| {
                match entries.iter_mut().find(|e| {
                    e.is_for(&month_text, threshold)
                        && e.state == AlertState::Claimed
                        && e.claimed_by.as_ref().is_some_and(RunOwner::is_current)
                }) {
                    Some(entry) => {
                        entry.lease_until = Some(until);
                        ((), true)
                    }
                    None => ((), false),
                }
            })
            .await;
        if let Err(e) = renewed {
            tracing::warn!(month = %self.month, topic = %threshold.topic, error = %e, "could not renew the alert's claim");
        }
    }
}

/// The claim step, applied to the ledger's entries (again after every lost race).
fn claim(
    entries: &mut Vec<LedgerEntry>,
    month_text: &str,
    threshold: &Threshold,
    count: u64,
    resend: Resend,
    lease: Duration,
    now: DateTime<Utc>,
) -> (Claim, bool) {
    let at = entries.iter().position(|e| e.is_for(month_text, threshold));
    if let Some(i) = at {
        let existing = &mut entries[i];
        let live_owner = existing.live_owner(now).cloned();
        let done = match (existing.state, resend) {
            (AlertState::Sent, Resend::Never | Resend::InDoubt | Resend::ConfirmInDoubt) => {
                Some(AlertResult::AlreadySent {
                    message_id: existing.message_id.clone(),
                    sent_at: existing.sent_at,
                })
            }
            // Whatever was asked: a live owner is sending it right now, and a second send
            // is a duplicate.
            (AlertState::Claimed, _) if live_owner.is_some() => {
                Some(AlertResult::ClaimedElsewhere {
                    owner: live_owner.expect("checked by the guard"),
                    claimed_at: existing.claimed_at,
                })
            }
            (AlertState::Claimed, Resend::Never) => Some(AlertResult::InDoubt {
                claimed_at: existing.claimed_at,
                owner: existing.claimed_by.clone(),
            }),
            (AlertState::Claimed, Resend::ConfirmInDoubt) => {
                // It went out between the claim and the crash: the claim time is the best
                // record of when; the message id is unknown.
                existing.state = AlertState::Sent;
                existing.sent_at = Some(existing.claimed_at);
                existing.times_sent += 1;
                existing.lease_until = None;
                let confirmed = AlertResult::AlreadySent {
                    message_id: existing.message_id.clone(),
                    sent_at: existing.sent_at,
                };
                return (Claim::Done(confirmed), true);
            }
            _ => None,
        };
        if let Some(done) = done {
            return (Claim::Done(done), false);
        }
    }
    let previous = at.map(|i| entries.remove(i));
    entries.push(LedgerEntry {
        month: month_text.to_owned(),
        service_name: threshold.service_name.clone(),
        above: threshold.above,
        topic: threshold.topic.clone(),
        label: threshold.label.clone(),
        count,
        state: AlertState::Claimed,
        claimed_at: now,
        message_id: previous.as_ref().and_then(|p| p.message_id.clone()),
        sent_at: previous.as_ref().and_then(|p| p.sent_at),
        times_sent: previous.as_ref().map_or(0, |p| p.times_sent),
        claimed_by: Some(RunOwner::current().clone()),
        lease_until: Some(now + lease),
    });
    (Claim::Ours(previous), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Faulty;
    use crate::TopicAdmin as _;
    use crate::{Endpoint, LocalOutbox};
    use gid_storage::BucketAdmin;
    use gid_storage::LocalStore;
    use std::collections::HashMap;

    struct Fixture {
        _dir: tempfile::TempDir,
        outbox: LocalOutbox,
        store: LocalStore,
        ledger: LedgerLocation,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path().join("outbox"));
        let store = LocalStore::new(dir.path().join("data"));
        let bucket = BucketName::new("gid-work").unwrap();
        store.create_bucket(&bucket).await.unwrap();
        let ledger = LedgerLocation::new(bucket, ObjectKey::new("2019/jan/alerts.json").unwrap());
        // Someone to alert on each department topic (topics nobody reads get no alerts).
        let crew = Endpoint::Sms(crate::PhoneNumber::new("+16195550100").unwrap());
        for topic in ["gid-trash", "gid-streets"] {
            let arn = outbox
                .create_topic(&TopicName::new(topic).unwrap())
                .await
                .unwrap();
            outbox.subscribe(&arn, &crew).await.unwrap();
        }
        Fixture {
            _dir: dir,
            outbox,
            store,
            ledger,
        }
    }

    fn jan() -> Month {
        "2019-01".parse().unwrap()
    }

    fn counts(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    async fn run(
        f: &Fixture,
        counts: &HashMap<String, u64>,
        resend: impl Into<Resend>,
    ) -> AlertReport {
        evaluate_and_send(
            &f.outbox,
            &f.store,
            &f.ledger,
            jan(),
            |s| counts.get(s).copied().unwrap_or(0),
            &Threshold::course_defaults(),
            resend.into(),
        )
        .await
        .unwrap()
    }

    #[test]
    fn thresholds_are_strictly_greater_than() {
        let [dumping, pothole] = <[Threshold; 2]>::try_from(Threshold::course_defaults()).unwrap();
        assert!(!dumping.is_crossed_by(100), "exactly 100 does not alert");
        assert!(dumping.is_crossed_by(101));
        assert!(!pothole.is_crossed_by(30));
        assert!(pothole.is_crossed_by(31));
        assert!(!dumping.is_crossed_by(0));
    }

    #[test]
    fn messages_name_the_month_and_count_as_in_the_course() {
        let [dumping, pothole] = <[Threshold; 2]>::try_from(Threshold::course_defaults()).unwrap();
        assert_eq!(
            dumping.message(jan(), 123),
            "Trash violations count is now 123 for 2019-01"
        );
        assert_eq!(
            pothole.message(jan(), 45),
            "Pothole count is now 45 for 2019-01"
        );
        assert_eq!(
            dumping.subject(jan()),
            "Trash violations above 100 in 2019-01"
        );
        assert_eq!(dumping.topic.as_str(), "trash");
        assert_eq!(pothole.topic.as_str(), "streets");
    }

    #[test]
    fn thresholds_deserialise_from_config_and_bad_ones_are_named() {
        #[derive(Deserialize)]
        struct Notify {
            thresholds: Vec<Threshold>,
        }
        let json = r#"{"thresholds": [
            {"service_name": "Illegal Dumping", "above": 100, "topic": "trash", "label": "Trash violations"},
            {"service_name": "Graffiti", "above": 5, "topic": "graffiti"}
        ]}"#;
        let parsed: Notify = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.thresholds[0], Threshold::course_defaults()[0]);
        assert_eq!(
            parsed.thresholds[1].label, "Graffiti",
            "label defaults to the service"
        );

        let bad_topic =
            r#"{"thresholds": [{"service_name": "X", "above": 1, "topic": "bad topic"}]}"#;
        let err = serde_json::from_str::<Notify>(bad_topic).err().unwrap();
        assert!(err.to_string().contains("bad topic"), "{err}");
        let long = format!(
            r#"{{"thresholds": [{{"service_name": "X", "above": 1, "topic": "t", "label": "{}"}}]}}"#,
            "L".repeat(95)
        );
        let err = serde_json::from_str::<Notify>(&long).err().unwrap();
        assert!(
            err.to_string().contains("does not fit an SNS Subject"),
            "{err}"
        );
        let typo = r#"{"thresholds": [{"service_name": "X", "abov": 1, "topic": "t"}]}"#;
        assert!(serde_json::from_str::<Notify>(typo).is_err());
    }

    #[test]
    fn a_misspelled_service_finds_what_it_meant() {
        let present = [
            "Pothole",
            "Graffiti - Public",
            "Illegal Dumping",
            "Street Light Out",
        ];
        assert_eq!(closest_services("Potholes", &present), ["Pothole"]);
        assert_eq!(
            closest_services("illegal dumpng", &present),
            ["Illegal Dumping"]
        );
        assert!(closest_services("Parking", &present).is_empty());
    }

    #[tokio::test]
    async fn crossed_thresholds_publish_once_with_subject_and_count() {
        let f = fixture().await;
        let report = run(
            &f,
            &counts(&[("Illegal Dumping", 123), ("Pothole", 30)]),
            false,
        )
        .await;
        let results: Vec<&AlertResult> = report.outcomes.iter().map(|o| &o.result).collect();
        assert!(
            matches!(results[0], AlertResult::Sent { .. }),
            "{results:?}"
        );
        assert_eq!(results[1], &AlertResult::Below, "30 is not above 30");
        let messages = f.outbox.messages().await.unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].topic.name(), "gid-trash", "the prefixed topic");
        assert_eq!(
            messages[0].message,
            "Trash violations count is now 123 for 2019-01"
        );
        assert_eq!(
            messages[0].subject.as_deref(),
            Some("Trash violations above 100 in 2019-01")
        );

        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        let entry = book.find(jan(), &Threshold::course_defaults()[0]).unwrap();
        assert_eq!(entry.state, AlertState::Sent);
        assert_eq!(entry.count, 123);
        assert_eq!(entry.times_sent, 1);
        assert_eq!(entry.message_id.as_ref(), Some(&messages[0].message_id));
        assert!(book.find(jan(), &Threshold::course_defaults()[1]).is_none());
    }

    #[tokio::test]
    async fn exactly_at_the_threshold_sends_nothing() {
        let f = fixture().await;
        let report = run(
            &f,
            &counts(&[("Illegal Dumping", 100), ("Pothole", 30)]),
            false,
        )
        .await;
        assert_eq!(report.sent().count(), 0);
        assert!(f.outbox.messages().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_rerun_of_the_same_month_sends_nothing_new() {
        let f = fixture().await;
        let c = counts(&[("Illegal Dumping", 123), ("Pothole", 45)]);
        let first = run(&f, &c, false).await;
        assert_eq!(first.sent().count(), 2);
        let rerun = run(&f, &c, false).await;
        assert_eq!(rerun.sent().count(), 0);
        assert!(rerun
            .outcomes
            .iter()
            .all(|o| matches!(o.result, AlertResult::AlreadySent { .. })));
        assert_eq!(f.outbox.messages().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn force_resends_and_counts_the_resend() {
        let f = fixture().await;
        let c = counts(&[("Illegal Dumping", 123)]);
        run(&f, &c, false).await;
        let forced = run(&f, &counts(&[("Illegal Dumping", 130)]), true).await;
        assert_eq!(forced.sent().count(), 1);
        let messages = f.outbox.messages().await.unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(
            messages[1].message,
            "Trash violations count is now 130 for 2019-01"
        );
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert_eq!(book.entries().len(), 1, "one entry per (month, threshold)");
        assert_eq!(book.entries()[0].times_sent, 2);
        assert_eq!(book.entries()[0].count, 130);
    }

    /// A ledger holding the dumping alert claimed by `owner` until `lease_until`.
    async fn claimed_by(f: &Fixture, owner: Option<RunOwner>, lease_until: Option<DateTime<Utc>>) {
        let dumping = &Threshold::course_defaults()[0];
        let mut book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        book.update(&f.store, &f.ledger, |entries| {
            entries.push(LedgerEntry {
                month: "2019-01".into(),
                service_name: dumping.service_name.clone(),
                above: dumping.above,
                topic: dumping.topic.clone(),
                label: dumping.label.clone(),
                count: 123,
                state: AlertState::Claimed,
                claimed_at: Utc::now(),
                message_id: None,
                sent_at: None,
                times_sent: 0,
                claimed_by: owner.clone(),
                lease_until,
            });
            ((), true)
        })
        .await
        .unwrap();
    }

    /// A run on this host whose process has ended (its pid is gone).
    fn ended_process() -> RunOwner {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        RunOwner {
            run_id: "ended".into(),
            pid,
            pid_start: Some(1),
            ..RunOwner::current().clone()
        }
    }

    /// A run on another host (its process cannot be checked from here).
    fn on_another_host() -> RunOwner {
        RunOwner {
            run_id: "elsewhere".into(),
            host: "another-pod".into(),
            ..RunOwner::current().clone()
        }
    }

    /// A ledger holding the dumping alert claimed by a run that died before recording it
    /// (a ledger written before claims had owners reads the same).
    async fn claimed_by_a_dead_run(f: &Fixture) {
        claimed_by(f, None, None).await;
    }

    #[tokio::test]
    async fn a_claim_left_by_a_dead_run_is_in_doubt_and_not_resent() {
        let f = fixture().await;
        claimed_by_a_dead_run(&f).await;
        let c = counts(&[("Illegal Dumping", 123)]);
        let report = run(&f, &c, false).await;
        assert!(matches!(
            report.outcomes[0].result,
            AlertResult::InDoubt { .. }
        ));
        assert_eq!(report.problems().count(), 1);
        assert!(f.outbox.messages().await.unwrap().is_empty());
        let forced = run(&f, &c, true).await;
        assert_eq!(forced.sent().count(), 1);
    }

    #[tokio::test]
    async fn a_live_claim_of_another_run_is_left_to_it_whatever_the_flags() {
        let f = fixture().await;
        let lease = Utc::now() + chrono::Duration::seconds(60);
        claimed_by(&f, Some(on_another_host()), Some(lease)).await;
        let c = counts(&[("Illegal Dumping", 123)]);
        for resend in [
            Resend::Never,
            Resend::InDoubt,
            Resend::ConfirmInDoubt,
            Resend::All,
        ] {
            let report = run(&f, &c, resend).await;
            let AlertResult::ClaimedElsewhere { owner, .. } = &report.outcomes[0].result else {
                panic!("{resend:?}: {report:?}")
            };
            assert_eq!(owner.host, "another-pod");
            assert_eq!(report.problems().count(), 0, "not this run's problem");
            let said = report.outcomes[0].result.to_string();
            assert!(
                said.contains("another run is sending it") && said.contains("another-pod"),
                "{said}"
            );
            assert!(!said.contains("resend"), "no advice to resend: {said}");
        }
        assert!(f.outbox.messages().await.unwrap().is_empty());
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert_eq!(book.entries()[0].state, AlertState::Claimed, "untouched");
    }

    #[tokio::test]
    async fn a_claim_whose_lease_ran_out_is_in_doubt() {
        let f = fixture().await;
        let expired = Utc::now() - chrono::Duration::seconds(1);
        claimed_by(&f, Some(on_another_host()), Some(expired)).await;
        let report = run(&f, &counts(&[("Illegal Dumping", 123)]), false).await;
        let result = &report.outcomes[0].result;
        assert!(matches!(result, AlertResult::InDoubt { .. }), "{result:?}");
        let said = result.to_string();
        assert!(
            said.contains("run elsewhere") && !said.contains("claimed_at"),
            "{said}"
        );
    }

    #[tokio::test]
    async fn a_claim_whose_process_ended_is_in_doubt_before_its_lease_runs_out() {
        let f = fixture().await;
        let lease = Utc::now() + chrono::Duration::seconds(60);
        claimed_by(&f, Some(ended_process()), Some(lease)).await;
        let c = counts(&[("Illegal Dumping", 123)]);
        let report = run(&f, &c, false).await;
        assert!(matches!(
            report.outcomes[0].result,
            AlertResult::InDoubt { .. }
        ));
        // The operator checked the topic: it did not go out.
        let resent = run(&f, &c, Resend::InDoubt).await;
        assert_eq!(resent.sent().count(), 1);
        assert_eq!(f.outbox.messages().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_owner_that_records_the_send_and_exits_after_our_read_is_not_in_doubt() {
        // This run read the ledger while another run held the claim; that run then recorded
        // the send and exited before this one looked for its process. The stale read alone
        // says "in doubt"; the ledger says sent.
        let f = fixture().await;
        let lease = Utc::now() + chrono::Duration::seconds(60);
        claimed_by(&f, Some(ended_process()), Some(lease)).await;
        let policy: AlertPolicy = Resend::Never.into();
        let mut run = AlertRun {
            notifier: &f.outbox,
            store: &f.store,
            location: &f.ledger,
            book: AlertLedger::load(&f.store, &f.ledger).await.unwrap(),
            month: jan(),
            policy: AlertPolicy {
                allow_unsubscribed: true,
                ..policy
            },
        };
        let mut other = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        other
            .update(&f.store, &f.ledger, |entries| {
                entries[0].state = AlertState::Sent;
                entries[0].sent_at = Some(Utc::now());
                entries[0].times_sent = 1;
                ((), true)
            })
            .await
            .unwrap();
        let dumping = &Threshold::course_defaults()[0];
        let result = run.send(dumping, 123).await.unwrap();
        assert!(
            matches!(result, AlertResult::AlreadySent { .. }),
            "{result:?}"
        );
        assert!(
            f.outbox.messages().await.unwrap().is_empty(),
            "nothing resent"
        );
    }

    // On tokio's paused clock, which the ledger's clock follows: the 600 ms publish and the
    // renewals every 50 ms take no real time, and their order is fixed.
    #[tokio::test(start_paused = true)]
    async fn the_sender_renews_its_claim_while_a_slow_publish_outlasts_the_lease() {
        let f = fixture().await;
        let slow = Faulty::new(f.outbox.clone()).slow_publish(Duration::from_millis(600));
        let c = counts(&[("Illegal Dumping", 123)]);
        let policy = AlertPolicy {
            lease: Duration::from_millis(150),
            clock: LedgerClock::following_tokio(),
            ..AlertPolicy::default()
        };
        let dumping = &Threshold::course_defaults()[..1];
        let send = evaluate_and_send(&slow, &f.store, &f.ledger, jan(), |s| c[s], dumping, policy);
        let look = async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            AlertLedger::load(&f.store, &f.ledger).await.unwrap()
        };
        let (report, mid_publish) = tokio::join!(send, look);
        assert_eq!(report.unwrap().sent().count(), 1);
        let entry = &mid_publish.entries()[0];
        assert_eq!(entry.state, AlertState::Claimed);
        let lease_until = entry.lease_until.unwrap();
        assert!(
            lease_until > entry.claimed_at + chrono::Duration::milliseconds(300),
            "renewed past the first lease: claimed {} lease {lease_until}",
            entry.claimed_at
        );
        assert!(entry.claimed_by.as_ref().unwrap().is_current());
    }

    #[tokio::test]
    async fn topics_nobody_subscribed_to_get_no_alert_unless_allowed() {
        let f = fixture().await;
        let nobody = Threshold::new(
            "Graffiti",
            5,
            TopicName::new("graffiti").unwrap(),
            "Graffiti",
        )
        .unwrap();
        let send = |policy: AlertPolicy| {
            evaluate_and_send(
                &f.outbox,
                &f.store,
                &f.ledger,
                jan(),
                |_| 9,
                std::slice::from_ref(&nobody),
                policy,
            )
        };
        let report = send(AlertPolicy::default()).await.unwrap();
        let result = &report.outcomes[0].result;
        assert!(
            matches!(result, AlertResult::NoSubscribers { .. }),
            "{result:?}"
        );
        assert_eq!(report.problems().count(), 1);
        let said = result.to_string();
        assert!(
            said.contains("gid-admin subscribe") && said.contains("notify.allow_unsubscribed"),
            "{said}"
        );
        assert!(f.outbox.messages().await.unwrap().is_empty());
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert!(book.entries().is_empty(), "not recorded as sent");

        let allowed = AlertPolicy {
            allow_unsubscribed: true,
            ..AlertPolicy::default()
        };
        assert_eq!(send(allowed).await.unwrap().sent().count(), 1);
    }

    #[tokio::test]
    async fn a_run_told_to_stop_claims_nothing_more() {
        let f = fixture().await;
        let stopping = AlertPolicy {
            stop: Some(Arc::new(|| true)),
            ..AlertPolicy::default()
        };
        let report = evaluate_and_send(
            &f.outbox,
            &f.store,
            &f.ledger,
            jan(),
            |_| 500,
            &Threshold::course_defaults(),
            stopping,
        )
        .await
        .unwrap();
        assert!(report
            .outcomes
            .iter()
            .all(|o| o.result == AlertResult::Stopped));
        assert!(f.outbox.messages().await.unwrap().is_empty());
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert!(
            book.entries().is_empty(),
            "no claim left for a rerun to doubt"
        );
    }

    #[tokio::test]
    async fn an_alert_in_doubt_that_went_out_is_confirmed_without_a_resend() {
        let f = fixture().await;
        claimed_by_a_dead_run(&f).await;
        let c = counts(&[("Illegal Dumping", 123)]);
        let confirmed = run(&f, &c, Resend::ConfirmInDoubt).await;
        assert!(
            matches!(
                confirmed.outcomes[0].result,
                AlertResult::AlreadySent { .. }
            ),
            "{confirmed:?}"
        );
        assert_eq!(confirmed.problems().count(), 0);
        assert!(
            f.outbox.messages().await.unwrap().is_empty(),
            "nothing resent"
        );
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert_eq!(book.entries()[0].state, AlertState::Sent);
        assert_eq!(book.entries()[0].times_sent, 1);
        // Settled: the next scheduled run neither fails over it nor sends it.
        let next = run(&f, &c, false).await;
        assert_eq!(next.problems().count(), 0);
        assert!(f.outbox.messages().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn concurrent_runs_send_each_alert_once() {
        let f = fixture().await;
        let c = counts(&[("Illegal Dumping", 123), ("Pothole", 45)]);
        let runs = (0..4).map(|_| run(&f, &c, false));
        // Polled together on one task, so their ledger reads and writes interleave.
        let reports = futures::future::join_all(runs).await;
        let sent: usize = reports.iter().map(|r| r.sent().count()).sum();
        assert_eq!(sent, 2, "{reports:#?}");
        assert_eq!(f.outbox.messages().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_failed_publish_releases_its_claim_so_a_rerun_retries() {
        let f = fixture().await;
        let faulty = Faulty::new(f.outbox.clone());
        faulty.fail_publish(true);
        let c = counts(&[("Illegal Dumping", 123)]);
        let dumping = &Threshold::course_defaults()[..1];
        let report = evaluate_and_send(
            &faulty,
            &f.store,
            &f.ledger,
            jan(),
            |s| c[s],
            dumping,
            false,
        )
        .await
        .unwrap();
        let AlertResult::Failed { reason } = &report.outcomes[0].result else {
            panic!("{report:?}")
        };
        assert!(reason.contains("publish refused by the test"), "{reason}");
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert!(book.entries().is_empty(), "no claim left behind: {book:?}");

        faulty.fail_publish(false);
        let retry = evaluate_and_send(
            &faulty,
            &f.store,
            &f.ledger,
            jan(),
            |s| c[s],
            dumping,
            false,
        )
        .await
        .unwrap();
        assert_eq!(retry.sent().count(), 1);
    }

    #[tokio::test]
    async fn a_failed_forced_resend_keeps_the_earlier_send_on_record() {
        let f = fixture().await;
        let faulty = Faulty::new(f.outbox.clone());
        let c = counts(&[("Illegal Dumping", 123)]);
        let dumping = &Threshold::course_defaults()[..1];
        evaluate_and_send(
            &faulty,
            &f.store,
            &f.ledger,
            jan(),
            |s| c[s],
            dumping,
            false,
        )
        .await
        .unwrap();
        faulty.fail_publish(true);
        let forced =
            evaluate_and_send(&faulty, &f.store, &f.ledger, jan(), |s| c[s], dumping, true)
                .await
                .unwrap();
        assert_eq!(forced.problems().count(), 1);
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert_eq!(book.entries()[0].state, AlertState::Sent);
        assert_eq!(book.entries()[0].times_sent, 1);
    }

    #[tokio::test]
    async fn an_unusable_topic_fails_that_alert_only() {
        let f = fixture().await;
        let faulty = Faulty::new(f.outbox.clone()).failing_topic("gid-trash");
        let c = counts(&[("Illegal Dumping", 123), ("Pothole", 45)]);
        let report = evaluate_and_send(
            &faulty,
            &f.store,
            &f.ledger,
            jan(),
            |s| c[s],
            &Threshold::course_defaults(),
            false,
        )
        .await
        .unwrap();
        assert!(matches!(
            report.outcomes[0].result,
            AlertResult::Failed { .. }
        ));
        assert!(matches!(
            report.outcomes[1].result,
            AlertResult::Sent { .. }
        ));
        let book = AlertLedger::load(&f.store, &f.ledger).await.unwrap();
        assert_eq!(book.entries().len(), 1, "only the sent alert is recorded");
    }

    #[tokio::test]
    async fn a_corrupt_ledger_stops_the_run_naming_the_object() {
        let f = fixture().await;
        f.store
            .put(
                &f.ledger.bucket,
                &f.ledger.key,
                Bytes::from_static(b"not json"),
                &PutOptions::new("application/json"),
            )
            .await
            .unwrap();
        let err = evaluate_and_send(
            &f.outbox,
            &f.store,
            &f.ledger,
            jan(),
            |_| 500,
            &Threshold::course_defaults(),
            false,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, NotifyError::CorruptLedger { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("s3://gid-work/2019/jan/alerts.json"),
            "{err}"
        );
        assert!(
            f.outbox.messages().await.unwrap().is_empty(),
            "nothing sent unrecorded"
        );
    }
}
