use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{InvalidInput, NotifyError};

gid_core::validated_string! {
    /// An SNS topic name: 1-256 characters of `A-Za-z0-9_-` (standard topics; FIFO topics are
    /// not used by gid).
    pub struct TopicName, error InvalidInput,
    rule topic_name_rule, refused |value, reason| InvalidInput::TopicName { name: value, reason };
}

/// Validates `name` against SNS's rules: 1 to [`TopicName::MAX_LEN`] characters of
/// A-Z, a-z, 0-9, `_` and `-`.
fn topic_name_rule(name: &str) -> Result<String, &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > TopicName::MAX_LEN {
        return Err("it is longer than 256 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("it contains a character other than A-Z, a-z, 0-9, '_' and '-'");
    }
    Ok(name.to_owned())
}

impl TopicName {
    /// SNS's maximum topic name length.
    pub const MAX_LEN: usize = 256;
}

gid_core::validated_string! {
    /// A topic's ARN, `arn:<partition>:sns:<region>:<account>:<name>`. Every operation on an
    /// existing topic takes the ARN, as SNS does; [`find_topic`] resolves a name.
    pub struct TopicArn, error InvalidInput,
    rule topic_arn_rule, refused |value, reason| InvalidInput::Arn { kind: "topic", value, reason };
}

/// Validates `arn`: `arn:<partition>:sns:<region>:<account>:<topic name>`.
fn topic_arn_rule(arn: &str) -> Result<String, &'static str> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
        return Err("expected arn:<partition>:sns:<region>:<account>:<topic name>");
    }
    if topic_name_rule(parts[5]).is_err() {
        return Err("the last part is not a valid topic name");
    }
    Ok(arn.to_owned())
}

impl TopicArn {
    /// The topic's name (the ARN's last part).
    pub fn name(&self) -> &str {
        self.0.rsplit(':').next().expect("validated ARN")
    }

    /// The name as a [`TopicName`].
    pub fn topic_name(&self) -> TopicName {
        TopicName(self.name().to_owned())
    }
}

gid_core::validated_string! {
    /// A subscription's ARN: its topic's ARN followed by `:<id>`.
    pub struct SubscriptionArn, error InvalidInput,
    rule subscription_arn_rule,
    refused |value, reason| InvalidInput::Arn { kind: "subscription", value, reason };
}

/// Validates `arn`: a topic ARN followed by `:<id>`.
fn subscription_arn_rule(arn: &str) -> Result<String, &'static str> {
    match arn.rsplit_once(':') {
        Some((topic, id)) if !id.is_empty() && topic_arn_rule(topic).is_ok() => Ok(arn.to_owned()),
        _ => Err("expected arn:<partition>:sns:<region>:<account>:<topic name>:<id>"),
    }
}

impl SubscriptionArn {
    /// The ARN of the topic this subscription belongs to.
    pub fn topic(&self) -> TopicArn {
        let (topic, _) = self.0.rsplit_once(':').expect("validated ARN");
        TopicArn(topic.to_owned())
    }
}

gid_core::validated_string! {
    /// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not `0`.
    ///
    /// Spaces, `-`, `.`, `(` and `)` are accepted as separators and dropped (`+1 (619)
    /// 555-0100` → `+16195550100`), since that is how people write numbers in a spreadsheet;
    /// anything else is refused.
    pub struct PhoneNumber, error InvalidInput,
    rule phone_number_rule, refused |value, reason| InvalidInput::Phone { value, reason };
}

/// Validates and normalises `raw` to E.164 (separators dropped).
fn phone_number_rule(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("it is empty");
    }
    let Some(rest) = trimmed.strip_prefix('+') else {
        return Err("it must start with '+' and the country code");
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err("it contains a character other than digits and separators"),
        }
    }
    if !(8..=15).contains(&digits.len()) {
        return Err("it must have 8 to 15 digits after the '+'");
    }
    if digits.starts_with('0') {
        return Err("country codes never start with 0");
    }
    Ok(format!("+{digits}"))
}

/// Characters allowed in the part of an address before the `@` (RFC 5322 "atext" and '.').
const EMAIL_LOCAL_SPECIALS: &[u8] = b"!#$%&'*+/=?^_`{|}~.-";

gid_core::validated_string! {
    /// An email address, checked the way a delivery service would before trying it: one `@`,
    /// an unquoted local part of at most 64 characters, and a dotted ASCII domain. The domain
    /// is lowercased (domains are case-insensitive; local parts are kept as written).
    pub struct EmailAddress, error InvalidInput,
    rule email_address_rule, refused |value, reason| InvalidInput::Email { value, reason };
}

/// Validates `raw` and lowercases its domain.
fn email_address_rule(raw: &str) -> Result<String, &'static str> {
    let address = raw.trim();
    if address.is_empty() {
        return Err("it is empty");
    }
    if address.len() > 254 {
        return Err("it is longer than 254 characters");
    }
    if !address.is_ascii() {
        return Err("only ASCII addresses are supported");
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err("it has no '@'");
    };
    if domain.contains('@') {
        return Err("it has more than one '@'");
    }
    if local.is_empty() || local.len() > 64 {
        return Err("the part before '@' must be 1 to 64 characters");
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || EMAIL_LOCAL_SPECIALS.contains(&b))
    {
        return Err("the part before '@' contains a character not allowed in an address");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("the part before '@' has a misplaced '.'");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 {
        return Err("the domain needs a dot (e.g. example.org)");
    }
    for label in &labels {
        let ok = (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err("the domain is not a valid host name");
        }
    }
    if !labels
        .last()
        .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_alphabetic()))
    {
        return Err("the domain does not end in a top-level domain");
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// How a subscription delivers. gid subscribes only by SMS and email; other protocols
/// (`sqs`, `https`, …) set up outside gid still show up in listings as [`Protocol::Other`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// Text messages to a phone number.
    Sms,
    /// Email to an address (needs the recipient's confirmation on AWS).
    Email,
    /// Any other protocol, as SNS names it (`sqs`, `https`, …).
    Other(String),
}

impl Protocol {
    /// The SNS protocol name (`sms`, `email`, …).
    pub fn as_str(&self) -> &str {
        match self {
            Protocol::Sms => "sms",
            Protocol::Email => "email",
            Protocol::Other(other) => other,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for Protocol {
    fn from(s: &str) -> Self {
        match s {
            "sms" => Protocol::Sms,
            "email" => Protocol::Email,
            other => Protocol::Other(other.to_owned()),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Protocol::from(String::deserialize(d)?.as_str()))
    }
}

/// Where a subscription delivers: the protocol and its validated address in one value,
/// so an SMS subscription can never be handed an email address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// Text messages to this number.
    Sms(PhoneNumber),
    /// Email to this address.
    Email(EmailAddress),
}

impl Endpoint {
    /// The protocol SNS subscribes it with.
    pub fn protocol(&self) -> Protocol {
        match self {
            Endpoint::Sms(_) => Protocol::Sms,
            Endpoint::Email(_) => Protocol::Email,
        }
    }

    /// The address as SNS takes it.
    pub fn address(&self) -> &str {
        match self {
            Endpoint::Sms(phone) => phone.as_str(),
            Endpoint::Email(email) => email.as_str(),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.protocol(), self.address())
    }
}

/// Whether a subscription receives messages yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Receives messages.
    Confirmed,
    /// Waiting for the recipient to follow the confirmation link (email on AWS). SNS
    /// delivers nothing to it and lists it without an ARN.
    PendingConfirmation,
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SubscriptionStatus::Confirmed => "confirmed",
            SubscriptionStatus::PendingConfirmation => "pending confirmation",
        })
    }
}

/// A subscription as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    /// `None` while pending confirmation: SNS lists such subscriptions as
    /// `PendingConfirmation` instead of an ARN.
    pub arn: Option<SubscriptionArn>,
    /// The topic it belongs to.
    pub topic: TopicArn,
    /// How it delivers.
    pub protocol: Protocol,
    /// Where it delivers (a phone number, an email address, a queue ARN, …), as SNS lists it.
    pub endpoint: String,
    /// Whether it receives messages yet.
    pub status: SubscriptionStatus,
}

impl Subscription {
    /// Whether this subscription delivers to `endpoint` (email addresses compare without
    /// regard to case, as mail systems treat them).
    pub fn delivers_to(&self, endpoint: &Endpoint) -> bool {
        self.protocol == endpoint.protocol()
            && match endpoint {
                Endpoint::Sms(phone) => self.endpoint == phone.as_str(),
                Endpoint::Email(email) => self.endpoint.eq_ignore_ascii_case(email.as_str()),
            }
    }
}

/// The id the service gave a published message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// Wraps the id a service (or the local outbox) gave.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as the service gave it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SNS's longest Subject.
pub const MAX_SUBJECT_LEN: usize = 100;
/// SNS's largest message to a topic, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SNS's largest direct SMS, in bytes.
pub const MAX_SMS_BYTES: usize = 1600;

/// Checks a Subject against SNS's rules, so the local backend refuses what AWS would.
pub(crate) fn check_subject(target: &str, subject: &str) -> Result<(), InvalidInput> {
    let fail = |reason: &str| {
        Err(InvalidInput::Message {
            what: "subject",
            target: target.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if subject.is_empty() {
        return fail("it is empty (leave it out instead)");
    }
    if subject.len() > MAX_SUBJECT_LEN {
        return fail("it is longer than 100 characters");
    }
    if !subject.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return fail("it must be printable ASCII without line breaks");
    }
    if subject.starts_with(' ') {
        return fail("it must start with a letter, digit or punctuation mark");
    }
    Ok(())
}

/// Checks a message body's size against SNS's limit for the kind of delivery.
pub(crate) fn check_message(target: &str, message: &str, max: usize) -> Result<(), InvalidInput> {
    let reason = if message.trim().is_empty() {
        "it is empty".to_owned()
    } else if message.len() > max {
        format!("it is {} bytes, over the limit of {max}", message.len())
    } else {
        return Ok(());
    };
    Err(InvalidInput::Message {
        what: "message",
        target: target.to_owned(),
        reason,
    })
}

/// The notifier port, as an alerting run uses it: resolving topics, reading the account's
/// topics and subscriptions, and sending. Implementations must behave identically as far as the
/// [`conformance`](crate::conformance) suite can tell. Changing topics and subscriptions is
/// [`TopicAdmin`]'s, which only the commands that set alerts up ask for.
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// A short name for logs (`local`, `sns`).
    fn backend(&self) -> &'static str;

    /// What this notifier sent on the wire so far (zero for the local outbox).
    fn request_stats(&self) -> gid_core::RequestStats {
        gid_core::RequestStats::default()
    }

    /// Creates the topic, or returns the existing one's ARN: same name, same ARN (what a
    /// run uses to resolve a topic's ARN: one request, and a topic nobody set up yet
    /// exists afterwards, without subscribers).
    async fn create_topic(&self, name: &TopicName) -> Result<TopicArn, NotifyError>;
    /// Every topic of the account (all pages).
    async fn list_topics(&self) -> Result<Vec<TopicArn>, NotifyError>;
    /// The subscriptions of one topic, or of every topic (all pages).
    async fn list_subscriptions(
        &self,
        topic: Option<&TopicArn>,
    ) -> Result<Vec<Subscription>, NotifyError>;

    /// Publishes to every confirmed subscription of the topic. `subject` is used by email
    /// deliveries (SNS rules: printable ASCII, at most 100 characters).
    async fn publish(
        &self,
        topic: &TopicArn,
        subject: Option<&str>,
        message: &str,
    ) -> Result<MessageId, NotifyError>;
    /// Sends one SMS straight to a phone number, without a topic.
    async fn send_sms(&self, phone: &PhoneNumber, message: &str) -> Result<MessageId, NotifyError>;
}

/// Removing topics and changing subscriptions (`gid-admin topic`/`subscribe`, the contacts
/// list): a [`Notifier`] that can also set alerting up. `Arc<dyn TopicAdmin>`
/// upcasts to `Arc<dyn Notifier>` for a run that only sends.
#[async_trait]
pub trait TopicAdmin: Notifier {
    /// Deletes the topic and its subscriptions; deleting a missing topic succeeds (as on SNS).
    async fn delete_topic(&self, topic: &TopicArn) -> Result<(), NotifyError>;
    /// Subscribes the endpoint to the topic and returns the subscription's ARN, also when
    /// the subscription is still pending confirmation. Subscribing the same endpoint again
    /// returns the existing subscription instead of adding one.
    async fn subscribe(
        &self,
        topic: &TopicArn,
        endpoint: &Endpoint,
    ) -> Result<SubscriptionArn, NotifyError>;
    /// Removes the subscription; removing a missing one succeeds.
    async fn unsubscribe(&self, subscription: &SubscriptionArn) -> Result<(), NotifyError>;
}

/// The ARN of the topic named `name`, if it exists (without creating it).
pub async fn find_topic(
    notifier: &dyn Notifier,
    name: &TopicName,
) -> Result<Option<TopicArn>, NotifyError> {
    Ok(notifier
        .list_topics()
        .await?
        .into_iter()
        .find(|arn| arn.name() == name.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_sns_rules() {
        for good in ["trash", "Streets_2019-jan", &"a".repeat(256)] {
            TopicName::new(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["", "trash bins", "trash.fifo", "ñ", &"a".repeat(257)] {
            assert!(TopicName::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn phone_numbers_are_e164_after_dropping_separators() {
        let ok = |s: &str| PhoneNumber::new(s).unwrap().to_string();
        assert_eq!(ok("+16195550100"), "+16195550100");
        assert_eq!(ok(" +1 (619) 555-0100 "), "+16195550100");
        assert_eq!(ok("+44.20.7946.0018"), "+442079460018");
        for bad in [
            "",
            "6195550100",
            "+1619555",
            "+1234567890123456",
            "+06195550100",
            "+1619555O100",
            "+1619555010;rm -rf",
            "++16195550100",
        ] {
            let err = PhoneNumber::new(bad).expect_err(bad);
            assert!(err.to_string().contains("E.164"), "{err}");
        }
    }

    #[test]
    fn email_addresses_are_checked_and_domains_lowercased() {
        assert_eq!(
            EmailAddress::new(" Pat.Smith+alerts@SanDiego.GOV ")
                .unwrap()
                .as_str(),
            "Pat.Smith+alerts@sandiego.gov"
        );
        for bad in [
            "",
            "pat",
            "pat@",
            "@example.org",
            "pat@example",
            "pat@@example.org",
            "pat@exa mple.org",
            "pat smith@example.org",
            ".pat@example.org",
            "pat..smith@example.org",
            "pat@-example.org",
            "pat@example.123",
            "pät@example.org",
            "<script>@example.org",
            "pat@example.org\nBcc: x@evil.org",
        ] {
            assert!(EmailAddress::new(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn arns_are_parsed_into_topic_and_subscription() {
        let topic = TopicArn::new("arn:aws:sns:us-east-1:123456789012:trash").unwrap();
        assert_eq!(topic.name(), "trash");
        let sub = SubscriptionArn::new(format!("{topic}:0b1c")).unwrap();
        assert_eq!(sub.topic(), topic);
        assert!(TopicArn::new("arn:aws:s3:::bucket").is_err());
        assert!(TopicArn::new("arn:aws:sns:us-east-1:1:bad name").is_err());
        assert!(SubscriptionArn::new("PendingConfirmation").is_err());
        assert!(SubscriptionArn::new(format!("{topic}:")).is_err());
    }

    #[test]
    fn subscriptions_match_emails_without_regard_to_case() {
        let sub = Subscription {
            arn: None,
            topic: TopicArn::new("arn:aws:sns:us-east-1:123456789012:trash").unwrap(),
            protocol: Protocol::Email,
            endpoint: "pat@example.org".into(),
            status: SubscriptionStatus::PendingConfirmation,
        };
        let email = |s: &str| Endpoint::Email(EmailAddress::new(s).unwrap());
        assert!(sub.delivers_to(&email("PAT@Example.org")));
        assert!(!sub.delivers_to(&email("pat2@example.org")));
        assert!(!sub.delivers_to(&Endpoint::Sms(PhoneNumber::new("+16195550100").unwrap())));
    }

    #[test]
    fn subjects_and_messages_follow_sns_limits() {
        assert!(check_subject("t", "Trash alert for 2019-01").is_ok());
        assert!(check_subject("t", &"x".repeat(101)).is_err());
        assert!(check_subject("t", "two\nlines").is_err());
        assert!(check_subject("t", "café").is_err());
        assert!(check_subject("t", " leading space").is_err());
        assert!(check_message("t", "hi", MAX_SMS_BYTES).is_ok());
        assert!(check_message("t", " ", MAX_SMS_BYTES).is_err());
        assert!(check_message("t", &"x".repeat(1601), MAX_SMS_BYTES).is_err());
    }
}
