//! Who would receive a topic's alerts: per topic, its confirmed subscriptions by protocol
//! and those still pending confirmation, read through the [`Notifier`] port (so the local
//! outbox and SNS answer alike) without creating anything. `gid-admin doctor` warns about
//! threshold topics nobody would hear.

use std::collections::BTreeMap;

use crate::{Notifier, NotifyError, SubscriptionStatus, TopicArn, TopicName};

/// The audience of one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicAudience {
    /// The topic's name, as SNS has it.
    pub name: TopicName,
    /// `None`: the topic does not exist (notify would create it, with nobody subscribed).
    pub arn: Option<TopicArn>,
    /// Confirmed subscriptions per protocol (`sms`, `email`, …), in protocol order.
    pub confirmed: BTreeMap<String, usize>,
    /// Subscriptions awaiting confirmation: they receive nothing yet.
    pub pending: usize,
}

impl TopicAudience {
    /// Confirmed subscriptions of every protocol: who receives a message today.
    pub fn confirmed_total(&self) -> usize {
        self.confirmed.values().sum()
    }
}

/// The audience of each named topic (in the order given, each name once), from one
/// listing of the topics and one listing of each existing topic's subscriptions.
pub async fn topic_audiences(
    notifier: &dyn Notifier,
    names: &[TopicName],
) -> Result<Vec<TopicAudience>, NotifyError> {
    let topics = notifier.list_topics().await?;
    let mut audiences: Vec<TopicAudience> = Vec::new();
    for name in names {
        if audiences.iter().any(|a| &a.name == name) {
            continue;
        }
        let arn = topics.iter().find(|t| t.name() == name.as_str()).cloned();
        let mut audience = TopicAudience {
            name: name.clone(),
            arn: arn.clone(),
            confirmed: BTreeMap::new(),
            pending: 0,
        };
        if let Some(arn) = &arn {
            for subscription in notifier.list_subscriptions(Some(arn)).await? {
                match subscription.status {
                    SubscriptionStatus::Confirmed => {
                        *audience
                            .confirmed
                            .entry(subscription.protocol.as_str().to_owned())
                            .or_default() += 1
                    }
                    SubscriptionStatus::PendingConfirmation => audience.pending += 1,
                }
            }
        }
        audiences.push(audience);
    }
    Ok(audiences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TopicAdmin as _;
    use crate::{EmailAddress, Endpoint, LocalOutbox, PhoneNumber};

    #[tokio::test]
    async fn audiences_count_confirmed_subscriptions_per_protocol_and_name_missing_topics() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let trash = outbox
            .create_topic(&TopicName::new("trash").unwrap())
            .await
            .unwrap();
        outbox
            .create_topic(&TopicName::new("streets").unwrap())
            .await
            .unwrap();
        for endpoint in [
            Endpoint::Sms(PhoneNumber::new("+16195550100").unwrap()),
            Endpoint::Email(EmailAddress::new("pat@example.org").unwrap()),
        ] {
            outbox.subscribe(&trash, &endpoint).await.unwrap();
        }
        let names: Vec<TopicName> = ["trash", "streets", "parks", "trash"]
            .into_iter()
            .map(|n| TopicName::new(n).unwrap())
            .collect();

        let audiences = topic_audiences(&outbox, &names).await.unwrap();

        let summary: Vec<(&str, bool, usize)> = audiences
            .iter()
            .map(|a| (a.name.as_str(), a.arn.is_some(), a.confirmed_total()))
            .collect();
        assert_eq!(
            summary,
            [
                ("trash", true, 2),
                ("streets", true, 0),
                ("parks", false, 0)
            ]
        );
        assert_eq!(audiences[0].confirmed.get("sms"), Some(&1));
        assert_eq!(audiences[0].confirmed.get("email"), Some(&1));
    }
}
