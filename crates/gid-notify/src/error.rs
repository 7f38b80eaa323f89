use gid_storage::StorageError;

use crate::{SubscriptionArn, TopicArn};

/// A value refused before it reached any backend; every variant names the value and the
/// rule it broke. Values are printed with `{:?}` so control characters in (hostile) input
/// cannot forge log lines.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidInput {
    #[error("topic name {name:?} is invalid: {reason} (SNS rules: 1-256 characters of A-Z, a-z, 0-9, '_' and '-')")]
    TopicName { name: String, reason: &'static str },
    #[error("topic prefix {prefix:?} is invalid: {reason} (1-64 characters of A-Z, a-z, 0-9, '_' and '-', ending in '-' or '_', e.g. \"gid-\")")]
    TopicPrefix {
        prefix: String,
        reason: &'static str,
    },
    #[error("department {department:?} is invalid: {reason}")]
    Department {
        department: String,
        reason: &'static str,
    },
    #[error("SMS sender ID {value:?} is invalid: {reason} (1-11 letters and digits, at least one letter)")]
    SenderId { value: String, reason: &'static str },
    #[error("phone number {value:?} is invalid: {reason} (use E.164: '+', the country code and the number, e.g. +16195550100)")]
    Phone { value: String, reason: &'static str },
    #[error("email address {value:?} is invalid: {reason}")]
    Email { value: String, reason: &'static str },
    #[error("{value:?} is not an SNS {kind} ARN: {reason}")]
    Arn {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("the {what} for {target} is refused: {reason}")]
    Message {
        what: &'static str,
        target: String,
        reason: String,
    },
    #[error("threshold {service_name:?}: {reason}")]
    Threshold {
        service_name: String,
        reason: String,
    },
}

/// What went wrong with a notifier operation; every variant names the topic, subscription,
/// phone number or file involved (what to do about it is the binaries' advice, see
/// `gid_cli::advice`).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("topic {topic} does not exist")]
    NoSuchTopic { topic: TopicArn },
    #[error("subscription {subscription} does not exist")]
    NoSuchSubscription { subscription: SubscriptionArn },
    /// The service refused the request as invalid or not allowed; retrying will not help.
    #[error("{operation} {target}: refused: {message}")]
    Rejected {
        operation: &'static str,
        target: String,
        message: String,
    },
    #[error("{operation} {target}: {kind}")]
    Service {
        operation: &'static str,
        target: String,
        /// Why, in words an operator acts on (`kind.is_transient()`: retrying may help).
        kind: gid_core::FailureKind,
        /// The client's own error (the SDK's detail, printed at `-v`).
        #[source]
        detail: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    #[error("local outbox: {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("local outbox: {path} is not a valid record ({source})")]
    CorruptRecord {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("alert ledger s3://{bucket}/{key} is not a valid ledger ({source})")]
    CorruptLedger {
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "alert ledger s3://{bucket}/{key} kept changing under other runs ({attempts} attempts)"
    )]
    LedgerContended {
        bucket: String,
        key: String,
        attempts: u32,
    },
}
