//! Which topics of an account are gid's: those named with gid's prefix.
//!
//! An SNS account is often shared (other teams, other applications). gid names every topic
//! it creates or looks up `<prefix><short name>` (`trash` → `gid-trash`), and treats a topic
//! without the prefix as someone else's: listed only as a count, never deleted. Operators,
//! thresholds and the department table keep using the short names.

use crate::{InvalidInput, Notifier, NotifyError, TopicArn, TopicName};

gid_core::validated_string! {
    /// The prefix of every topic gid creates or looks up: 1 to 64 characters of
    /// `A-Za-z0-9_-` ending in `-` or `_`. The separator at the end keeps a prefix `gid-` from
    /// claiming a topic such as `gidget-orders` that merely starts with the same letters.
    pub struct TopicPrefix, error InvalidInput,
    rule topic_prefix_rule, refused |value, reason| InvalidInput::TopicPrefix { prefix: value, reason };
}

/// Validates `prefix`: 1 to [`TopicPrefix::MAX_LEN`] characters of A-Z, a-z, 0-9, `_`
/// and `-`, ending in `-` or `_`.
fn topic_prefix_rule(prefix: &str) -> Result<String, &'static str> {
    if prefix.is_empty() {
        return Err("it is empty, so every topic of the account would count as gid's");
    }
    if prefix.len() > TopicPrefix::MAX_LEN {
        return Err("it is longer than 64 characters");
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("it contains a character other than A-Z, a-z, 0-9, '_' and '-'");
    }
    if !(prefix.ends_with('-') || prefix.ends_with('_')) {
        return Err("it must end in '-' or '_'");
    }
    Ok(prefix.to_owned())
}

impl TopicPrefix {
    /// gid's own prefix, unless configured otherwise (`notify.topic_prefix`).
    pub const DEFAULT: &'static str = "gid-";
    /// The longest prefix, so that names of up to 192 characters still fit SNS's 256.
    pub const MAX_LEN: usize = gid_core::MAX_TOPIC_PREFIX_LEN;

    /// The SNS topic gid uses for the short name (`trash` → `gid-trash`); refused when
    /// the two together are longer than SNS allows.
    pub fn topic(&self, short: &TopicName) -> Result<TopicName, InvalidInput> {
        TopicName::new(format!("{}{short}", self.0)).map_err(|_| InvalidInput::TopicName {
            name: short.to_string(),
            reason: "with the topic prefix it is longer than 256 characters",
        })
    }

    /// The short name of one of gid's topics (`…:gid-trash` → `trash`); `None` for a topic
    /// without the prefix, which is not gid's.
    pub fn short_name(&self, topic: &TopicArn) -> Option<TopicName> {
        let short = topic.name().strip_prefix(self.0.as_str())?;
        TopicName::new(short).ok()
    }
}

impl Default for TopicPrefix {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

/// One of gid's topics: its short name and its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GidTopic {
    /// The name without the prefix (`trash`).
    pub name: TopicName,
    /// The topic's ARN (whose name carries the prefix).
    pub arn: TopicArn,
}

/// An account's topics as gid sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicListing {
    /// gid's topics (named with the prefix), by short name.
    pub gid: Vec<GidTopic>,
    /// How many other topics the account has: not gid's, never shown or changed.
    pub others: usize,
}

/// Splits the account's topics into gid's (by short name) and a count of the others.
pub async fn list_gid_topics(
    notifier: &dyn Notifier,
    prefix: &TopicPrefix,
) -> Result<TopicListing, NotifyError> {
    let mut listing = TopicListing::default();
    for arn in notifier.list_topics().await? {
        match prefix.short_name(&arn) {
            Some(name) => listing.gid.push(GidTopic { name, arn }),
            None => listing.others += 1,
        }
    }
    listing.gid.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
}

/// Creates gid's topic for the short name (or returns the existing one's ARN).
pub async fn create_gid_topic(
    notifier: &dyn Notifier,
    prefix: &TopicPrefix,
    short: &TopicName,
) -> Result<TopicArn, NotifyError> {
    notifier.create_topic(&prefix.topic(short)?).await
}

/// The ARN of gid's topic for the short name, if it exists (without creating it).
pub async fn find_gid_topic(
    notifier: &dyn Notifier,
    prefix: &TopicPrefix,
    short: &TopicName,
) -> Result<Option<TopicArn>, NotifyError> {
    crate::find_topic(notifier, &prefix.topic(short)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalOutbox;

    fn name(n: &str) -> TopicName {
        TopicName::new(n).unwrap()
    }

    #[test]
    fn prefixes_follow_sns_rules_and_end_in_a_separator() {
        for good in ["gid-", "city_gid_", "A1-", &format!("{}-", "a".repeat(63))] {
            TopicPrefix::new(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in [
            "",
            "gid",
            "gid.",
            "g d-",
            "ñ-",
            &format!("{}-", "a".repeat(64)),
        ] {
            let err = TopicPrefix::new(bad).expect_err(bad);
            assert!(err.to_string().contains("topic prefix"), "{err}");
        }
    }

    #[test]
    fn short_names_become_prefixed_topics_and_back() {
        let prefix = TopicPrefix::default();
        assert_eq!(prefix.topic(&name("trash")).unwrap().as_str(), "gid-trash");
        let arn = TopicArn::new("arn:aws:sns:us-east-1:123456789012:gid-trash").unwrap();
        assert_eq!(prefix.short_name(&arn), Some(name("trash")));
        for other in ["trash", "gid", "gidget-orders", "GID-trash"] {
            let arn = TopicArn::new(format!("arn:aws:sns:us-east-1:123456789012:{other}")).unwrap();
            assert_eq!(prefix.short_name(&arn), None, "{other} is not gid's");
        }
        let too_long = name(&"a".repeat(253));
        let err = prefix.topic(&too_long).unwrap_err();
        assert!(err.to_string().contains("with the topic prefix"), "{err}");
    }

    #[tokio::test]
    async fn gid_topics_are_listed_by_short_name_and_the_others_only_counted() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let prefix = TopicPrefix::default();
        let trash = create_gid_topic(&outbox, &prefix, &name("trash"))
            .await
            .unwrap();
        assert_eq!(trash.name(), "gid-trash");
        for other in ["trash", "payroll-alerts"] {
            outbox.create_topic(&name(other)).await.unwrap();
        }
        let listing = list_gid_topics(&outbox, &prefix).await.unwrap();
        assert_eq!(
            listing.gid,
            [GidTopic {
                name: name("trash"),
                arn: trash.clone()
            }]
        );
        assert_eq!(listing.others, 2);
        assert_eq!(
            find_gid_topic(&outbox, &prefix, &name("trash"))
                .await
                .unwrap(),
            Some(trash)
        );
        assert_eq!(
            find_gid_topic(&outbox, &prefix, &name("payroll-alerts"))
                .await
                .unwrap(),
            None,
            "an unprefixed topic is never found under a short name"
        );
    }
}
