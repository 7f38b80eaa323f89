use gid_storage::StorageError;

use crate::{SubscriptionArn, TopicArn};

/// A value refused before it reached any backend; every variant names the value and the
/// rule it broke. Values are printed with `{:?}` so control characters in (hostile) input
/// cannot forge log lines.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidInput {
    /// A topic name SNS would refuse.
    #[error("topic name {name:?} is invalid: {reason} (SNS rules: 1-256 characters of A-Z, a-z, 0-9, '_' and '-')")]
    TopicName {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A `notify.topic_prefix` that could not tell gid's topics from others.
    #[error("topic prefix {prefix:?} is invalid: {reason} (1-64 characters of A-Z, a-z, 0-9, '_' and '-', ending in '-' or '_', e.g. \"gid-\")")]
    TopicPrefix {
        /// The prefix as given.
        prefix: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A department name (contacts.csv, `notify.departments`) that cannot route.
    #[error("department {department:?} is invalid: {reason}")]
    Department {
        /// The department as given.
        department: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An SMS sender ID carriers would refuse.
    #[error("SMS sender ID {value:?} is invalid: {reason} (1-11 letters and digits, at least one letter)")]
    SenderId {
        /// The sender ID as given.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A phone number that is not E.164.
    #[error("phone number {value:?} is invalid: {reason} (use E.164: '+', the country code and the number, e.g. +16195550100)")]
    Phone {
        /// The number as given.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// An email address SNS would refuse.
    #[error("email address {value:?} is invalid: {reason}")]
    Email {
        /// The address as given.
        value: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A topic or subscription ARN that is malformed.
    #[error("{value:?} is not an SNS {kind} ARN: {reason}")]
    Arn {
        /// `topic` or `subscription`.
        kind: &'static str,
        /// The ARN as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A message or subject SNS would refuse (too long, control characters).
    #[error("the {what} for {target} is refused: {reason}")]
    Message {
        /// `message` or `subject`.
        what: &'static str,
        /// The topic or phone number it was for.
        target: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A configured alert threshold that cannot be used.
    #[error("threshold {service_name:?}: {reason}")]
    Threshold {
        /// The threshold's service name.
        service_name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What went wrong with a notifier operation; every variant names the topic, subscription,
/// phone number or file involved (what to do about it is the binaries' advice, see
/// `gid_cli::advice`).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A value was refused before anything was sent.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The topic is not there (deleted, or never created).
    #[error("topic {topic} does not exist")]
    NoSuchTopic {
        /// The topic asked for.
        topic: TopicArn,
    },
    /// The subscription is not there (removed, or never made).
    #[error("subscription {subscription} does not exist")]
    NoSuchSubscription {
        /// The subscription asked for.
        subscription: SubscriptionArn,
    },
    /// The service refused the request as invalid or not allowed; retrying will not help.
    #[error("{operation} {target}: refused: {message}")]
    Rejected {
        /// The API call, e.g. `Publish`.
        operation: &'static str,
        /// The topic, subscription or number it was about.
        target: String,
        /// The service's reason.
        message: String,
    },
    /// The service could not be reached or failed, after retries.
    #[error("{operation} {target}: {kind}")]
    Service {
        /// The API call, e.g. `Publish`.
        operation: &'static str,
        /// The topic, subscription or number it was about.
        target: String,
        /// Why, in words an operator acts on (`kind.is_transient()`: retrying may help).
        kind: gid_core::FailureKind,
        /// The client's own error (the SDK's detail, printed at `-v`).
        #[source]
        detail: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// Reading or writing a file of the local outbox failed.
    #[error("local outbox: {operation} {path}: {source}")]
    Io {
        /// What was being done, e.g. `writing`.
        operation: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file of the local outbox is not JSON gid wrote.
    #[error("local outbox: {path} is not a valid record ({source})")]
    CorruptRecord {
        /// The file.
        path: String,
        /// The JSON parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// Reading or writing the alert ledger or contacts failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The month's alert ledger does not parse.
    #[error("alert ledger s3://{bucket}/{key} is not a valid ledger ({source})")]
    CorruptLedger {
        /// The work bucket.
        bucket: String,
        /// The ledger's key.
        key: String,
        /// The JSON parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// Every conditional write of the ledger lost to another run.
    #[error(
        "alert ledger s3://{bucket}/{key} kept changing under other runs ({attempts} attempts)"
    )]
    LedgerContended {
        /// The work bucket.
        bucket: String,
        /// The ledger's key.
        key: String,
        /// Writes tried before giving up.
        attempts: u32,
    },
}
