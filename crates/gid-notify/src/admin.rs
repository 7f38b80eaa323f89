//! Operations for `gid-admin`: delete gid's topics but the kept ones, remove a topic's
//! subscriptions by protocol, and subscribe one endpoint to one topic.

use crate::{
    create_gid_topic, find_gid_topic, list_gid_topics, Endpoint, NotifyError, Protocol,
    Subscription, SubscriptionArn, SubscriptionStatus, TopicAdmin, TopicArn, TopicName,
    TopicPrefix,
};

/// The topics [`prune_topics`] keeps unless told otherwise.
pub const DEFAULT_KEEP_TOPICS: [&str; 1] = ["critical"];

/// [`DEFAULT_KEEP_TOPICS`] as topic names.
pub fn default_keep() -> Vec<TopicName> {
    DEFAULT_KEEP_TOPICS
        .iter()
        .map(|t| TopicName::new(*t).expect("valid default"))
        .collect()
}

/// What [`prune_topics`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Topics deleted.
    pub deleted: Vec<TopicArn>,
    /// gid's topics left in place because `keep` names them.
    pub kept: Vec<TopicArn>,
    /// Topics that could not be deleted, with the reason; the others were still pruned.
    pub failed: Vec<(TopicArn, String)>,
    /// Topics without gid's prefix: someone else's, never considered.
    pub others: usize,
}

/// Deletes gid's topics (those named with `prefix`) except those whose short name is in
/// `keep`, with their subscriptions. A topic without the prefix is never deleted: in a
/// shared account it belongs to someone else.
pub async fn prune_topics(
    notifier: &dyn TopicAdmin,
    prefix: &TopicPrefix,
    keep: &[TopicName],
) -> Result<PruneReport, NotifyError> {
    let listing = list_gid_topics(notifier, prefix).await?;
    let mut report = PruneReport {
        others: listing.others,
        ..PruneReport::default()
    };
    for gid_topic in listing.gid {
        let topic = gid_topic.arn;
        if is_kept(keep, &gid_topic.name, &topic) {
            report.kept.push(topic);
            continue;
        }
        match notifier.delete_topic(&topic).await {
            Ok(()) => report.deleted.push(topic),
            Err(e) => report.failed.push((topic, e.to_string())),
        }
    }
    tracing::info!(
        deleted = report.deleted.len(),
        kept = report.kept.len(),
        others = report.others,
        failed = report.failed.len(),
        "topics pruned"
    );
    Ok(report)
}

/// Whether `keep` names one of gid's topics: by its short name or, written in full, by
/// its SNS name (`gid-critical`). A prune cannot be undone, so that slip must not cost the
/// topic.
pub fn is_kept(keep: &[TopicName], short: &TopicName, topic: &TopicArn) -> bool {
    keep.iter()
        .any(|k| k == short || k.as_str() == topic.name())
}

/// What [`unsubscribe_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnsubscribeReport {
    /// Subscriptions unsubscribed.
    pub removed: Vec<Subscription>,
    /// Pending confirmation: SNS gives them no ARN to unsubscribe with; they expire on
    /// their own (after 3 days on AWS) unless confirmed.
    pub pending: Vec<Subscription>,
    /// Subscriptions the service refused to remove, with its reason.
    pub failed: Vec<(Subscription, String)>,
}

/// Removes the topic's subscriptions of `protocol` (all of them when `None`), e.g. every
/// SMS subscription of `trash`.
pub async fn unsubscribe_all(
    notifier: &dyn TopicAdmin,
    topic: &TopicArn,
    protocol: Option<Protocol>,
) -> Result<UnsubscribeReport, NotifyError> {
    let mut report = UnsubscribeReport::default();
    let subscriptions = notifier.list_subscriptions(Some(topic)).await?;
    for subscription in subscriptions {
        if protocol
            .as_ref()
            .is_some_and(|p| *p != subscription.protocol)
        {
            continue;
        }
        let Some(arn) = subscription.arn.clone() else {
            report.pending.push(subscription);
            continue;
        };
        match notifier.unsubscribe(&arn).await {
            Ok(()) => report.removed.push(subscription),
            Err(e) => report.failed.push((subscription, e.to_string())),
        }
    }
    Ok(report)
}

/// What [`subscribe_endpoint`] found, did or (in a dry run) would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointChange {
    /// A new subscription was made.
    Subscribed,
    /// The topic already delivers to the endpoint (confirmed or pending): nothing changed.
    AlreadySubscribed,
    /// Dry run: a subscription would be made (and the topic created when
    /// [`EndpointSubscription::topic_arn`] is `None`).
    WouldSubscribe,
}

/// One endpoint's subscription to one of gid's topics, as [`subscribe_endpoint`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSubscription {
    /// The SNS topic's name (with the prefix).
    pub topic: TopicName,
    /// `None` only in a dry run, for a topic that does not exist yet.
    pub topic_arn: Option<TopicArn>,
    /// Whether the topic did not exist (and was created, unless this was a dry run).
    pub topic_created: bool,
    /// The address subscribed.
    pub endpoint: Endpoint,
    /// Whether the subscription was made, was there already, or would be made.
    pub change: EndpointChange,
    /// `None` in a dry run, or for an existing subscription still pending confirmation
    /// (SNS lists those without an ARN).
    pub subscription: Option<SubscriptionArn>,
    /// As the topic's listing shows it; `None` in a dry run for a new subscription.
    pub status: Option<SubscriptionStatus>,
}

/// Subscribes one endpoint to gid's topic of that short name (created on demand, as
/// `gid-admin subscribe` does for the contacts list). An endpoint the topic already
/// delivers to (confirmed or pending) is left alone, so running it twice changes nothing.
/// With `dry_run`, only reads: says what would be created and subscribed.
pub async fn subscribe_endpoint(
    notifier: &dyn TopicAdmin,
    prefix: &TopicPrefix,
    short: &TopicName,
    endpoint: &Endpoint,
    dry_run: bool,
) -> Result<EndpointSubscription, NotifyError> {
    let mut result = EndpointSubscription {
        topic: prefix.topic(short)?,
        topic_arn: None,
        topic_created: false,
        endpoint: endpoint.clone(),
        change: EndpointChange::WouldSubscribe,
        subscription: None,
        status: None,
    };
    let arn = match find_gid_topic(notifier, prefix, short).await? {
        Some(arn) => arn,
        None if dry_run => {
            result.topic_created = true;
            return Ok(result);
        }
        None => {
            result.topic_created = true;
            create_gid_topic(notifier, prefix, short).await?
        }
    };
    result.topic_arn = Some(arn.clone());
    let listed = notifier.list_subscriptions(Some(&arn)).await?;
    if let Some(found) = listed.iter().find(|s| s.delivers_to(endpoint)) {
        result.change = EndpointChange::AlreadySubscribed;
        result.subscription = found.arn.clone();
        result.status = Some(found.status);
        return Ok(result);
    }
    if dry_run {
        return Ok(result);
    }
    result.subscription = Some(notifier.subscribe(&arn, endpoint).await?);
    result.change = EndpointChange::Subscribed;
    // Whether a new email subscription waits for confirmation depends on the backend
    // (AWS: yes; moto and the default local outbox: no), so ask rather than guess.
    result.status = notifier
        .list_subscriptions(Some(&arn))
        .await?
        .iter()
        .find(|s| s.delivers_to(endpoint))
        .map(|s| s.status);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Notifier as _;
    use crate::{EmailAddress, EmailConfirmation, Endpoint, LocalOutbox, PhoneNumber};

    fn name(n: &str) -> TopicName {
        TopicName::new(n).unwrap()
    }

    #[tokio::test]
    async fn prune_deletes_gids_topics_but_critical_and_never_an_unprefixed_one() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        for t in [
            "gid-trash",
            "gid-streets",
            "gid-critical",
            "gid-old-test",
            "trash",
            "payroll-alerts",
        ] {
            outbox.create_topic(&name(t)).await.unwrap();
        }
        let report = prune_topics(&outbox, &TopicPrefix::default(), &default_keep())
            .await
            .unwrap();
        let mut deleted: Vec<&str> = report.deleted.iter().map(|t| t.name()).collect();
        deleted.sort();
        assert_eq!(deleted, ["gid-old-test", "gid-streets", "gid-trash"]);
        assert_eq!(report.others, 2);
        assert_eq!(
            crate::test_support::topic_names(&outbox).await,
            ["gid-critical", "payroll-alerts", "trash"]
        );
    }

    #[tokio::test]
    async fn prune_keeps_every_named_topic_by_short_or_full_name() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        for t in ["gid-trash", "gid-streets", "gid-critical"] {
            outbox.create_topic(&name(t)).await.unwrap();
        }
        let report = prune_topics(
            &outbox,
            &TopicPrefix::default(),
            &[name("trash"), name("gid-streets")],
        )
        .await
        .unwrap();
        assert_eq!(report.deleted.len(), 1);
        assert_eq!(report.deleted[0].name(), "gid-critical");
        assert_eq!(report.kept.len(), 2);
    }

    #[tokio::test]
    async fn unsubscribe_by_protocol_leaves_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::with_email_confirmation(dir.path(), EmailConfirmation::Pending);
        let trash = outbox.create_topic(&name("trash")).await.unwrap();
        for n in ["+16195550100", "+16195550101"] {
            let phone = Endpoint::Sms(PhoneNumber::new(n).unwrap());
            outbox.subscribe(&trash, &phone).await.unwrap();
        }
        let email = Endpoint::Email(EmailAddress::new("pat@example.org").unwrap());
        outbox.subscribe(&trash, &email).await.unwrap();

        let report = unsubscribe_all(&outbox, &trash, Some(Protocol::Sms))
            .await
            .unwrap();
        assert_eq!(report.removed.len(), 2);
        let left = outbox.list_subscriptions(Some(&trash)).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].protocol, Protocol::Email);

        let report = unsubscribe_all(&outbox, &trash, None).await.unwrap();
        assert!(report.removed.is_empty());
        assert_eq!(
            report.pending.len(),
            1,
            "a pending email has no ARN to remove"
        );
    }

    #[tokio::test]
    async fn subscribing_one_endpoint_twice_subscribes_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let prefix = TopicPrefix::default();
        let phone = Endpoint::Sms(PhoneNumber::new("+16195550100").unwrap());

        let first = subscribe_endpoint(&outbox, &prefix, &name("trash"), &phone, false)
            .await
            .unwrap();
        assert_eq!(first.change, EndpointChange::Subscribed);
        assert!(first.topic_created);
        assert_eq!(first.topic.as_str(), "gid-trash");
        assert_eq!(first.status, Some(SubscriptionStatus::Confirmed));

        let again = subscribe_endpoint(&outbox, &prefix, &name("trash"), &phone, false)
            .await
            .unwrap();
        assert_eq!(again.change, EndpointChange::AlreadySubscribed);
        assert!(!again.topic_created);
        assert_eq!(again.subscription, first.subscription);
        let trash = first.topic_arn.unwrap();
        assert_eq!(
            outbox.list_subscriptions(Some(&trash)).await.unwrap().len(),
            1
        );
    }

    #[tokio::test]
    async fn a_dry_run_subscribes_nobody_and_creates_no_topic() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let prefix = TopicPrefix::default();
        let email = Endpoint::Email(EmailAddress::new("pat@example.org").unwrap());

        let planned = subscribe_endpoint(&outbox, &prefix, &name("streets"), &email, true)
            .await
            .unwrap();
        assert_eq!(planned.change, EndpointChange::WouldSubscribe);
        assert!(planned.topic_created && planned.topic_arn.is_none());
        assert!(outbox.list_topics().await.unwrap().is_empty());

        let streets = outbox.create_topic(&name("gid-streets")).await.unwrap();
        let planned = subscribe_endpoint(&outbox, &prefix, &name("streets"), &email, true)
            .await
            .unwrap();
        assert_eq!(planned.change, EndpointChange::WouldSubscribe);
        assert_eq!(planned.topic_arn, Some(streets.clone()));
        assert!(outbox
            .list_subscriptions(Some(&streets))
            .await
            .unwrap()
            .is_empty());
    }
}
