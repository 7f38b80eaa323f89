//! The behaviour every [`Notifier`] backend must share, as one suite of checks.
//!
//! Backends call [`run_all`] from their own tests (the local outbox on a temp folder, SNS
//! against moto_server), so "local and AWS behave the same" is a tested property. Each
//! check panics with a message naming what differed. What was *delivered* is not visible
//! through the port; each backend's own tests read that back (outbox files, moto's API).
//!
//! The suite never assumes an empty account: it only looks at topics whose names start
//! with the namespace it is given, and leaves none of them behind.

use crate::{
    EmailAddress, Endpoint, NotifyError, PhoneNumber, Protocol, SubscriptionStatus, TopicAdmin,
    TopicArn, TopicName,
};

fn topic_name(namespace: &str, suffix: &str) -> TopicName {
    TopicName::new(format!("{namespace}-{suffix}")).expect("suite topic names are valid")
}

fn sms(number: &str) -> Endpoint {
    Endpoint::Sms(PhoneNumber::new(number).expect("suite numbers are valid"))
}

fn email(address: &str) -> Endpoint {
    Endpoint::Email(EmailAddress::new(address).expect("suite addresses are valid"))
}

/// Runs every check against `notifier`. `namespace` prefixes every topic the suite
/// creates (e.g. `conf-4711-1`): on a shared account or emulator it must be unique to
/// this run.
pub async fn run_all(notifier: &dyn TopicAdmin, namespace: &str) {
    topics_are_created_idempotently_and_listed(notifier, namespace).await;
    subscriptions_are_listed_by_topic_without_duplicates(notifier, namespace).await;
    unsubscribe_removes_only_that_subscription(notifier, namespace).await;
    publishing_returns_distinct_message_ids(notifier, namespace).await;
    missing_topics_are_reported_as_such(notifier, namespace).await;
    listings_follow_every_page(notifier, namespace).await;
    deleting_a_topic_removes_it_and_its_subscriptions(notifier, namespace).await;
}

async fn topics_are_created_idempotently_and_listed(notifier: &dyn TopicAdmin, namespace: &str) {
    let name = topic_name(namespace, "idem");
    let first = notifier.create_topic(&name).await.expect("create topic");
    let again = notifier
        .create_topic(&name)
        .await
        .expect("create topic again");
    assert_eq!(first, again, "same name, same ARN");
    assert_eq!(
        first.name(),
        name.as_str(),
        "the ARN ends in the topic name"
    );
    assert_eq!(first.topic_name(), name);
    let topics = notifier.list_topics().await.expect("list topics");
    assert_eq!(
        topics.iter().filter(|t| **t == first).count(),
        1,
        "{first} listed exactly once in {topics:?}"
    );
    let found = crate::find_topic(notifier, &name)
        .await
        .expect("find topic");
    assert_eq!(found.as_ref(), Some(&first));
    notifier.delete_topic(&first).await.expect("cleanup");
}

async fn subscriptions_are_listed_by_topic_without_duplicates(
    notifier: &dyn TopicAdmin,
    namespace: &str,
) {
    let trash = notifier
        .create_topic(&topic_name(namespace, "trash"))
        .await
        .expect("create topic");
    let streets = notifier
        .create_topic(&topic_name(namespace, "streets"))
        .await
        .expect("create topic");
    let phone = sms("+16195550100");
    let mail = email("pat@example.org");
    let sms_arn = notifier.subscribe(&trash, &phone).await.expect("sms");
    let email_arn = notifier.subscribe(&trash, &mail).await.expect("email");
    notifier
        .subscribe(&streets, &phone)
        .await
        .expect("same phone, other topic");
    assert_eq!(
        sms_arn.topic(),
        trash,
        "a subscription ARN extends its topic's"
    );
    assert_eq!(email_arn.topic(), trash);
    assert_ne!(sms_arn, email_arn);
    let again = notifier
        .subscribe(&trash, &phone)
        .await
        .expect("subscribe again");
    assert_eq!(again, sms_arn, "subscribing again returns the existing ARN");

    let on_trash = notifier
        .list_subscriptions(Some(&trash))
        .await
        .expect("list by topic");
    assert_eq!(on_trash.len(), 2, "{on_trash:?}");
    let by_sms = on_trash
        .iter()
        .find(|s| s.protocol == Protocol::Sms)
        .expect("sms listed");
    assert_eq!(by_sms.endpoint, "+16195550100");
    assert_eq!(by_sms.topic, trash);
    assert_eq!(by_sms.status, SubscriptionStatus::Confirmed);
    assert_eq!(by_sms.arn.as_ref(), Some(&sms_arn));
    let by_email = on_trash
        .iter()
        .find(|s| s.protocol == Protocol::Email)
        .expect("email listed");
    assert_eq!(by_email.endpoint, "pat@example.org");
    assert!(by_email.delivers_to(&mail));
    // AWS leaves email pending until the recipient clicks; moto confirms at once.
    match by_email.status {
        SubscriptionStatus::Confirmed => assert_eq!(by_email.arn.as_ref(), Some(&email_arn)),
        SubscriptionStatus::PendingConfirmation => assert_eq!(by_email.arn, None),
    }

    let all = notifier
        .list_subscriptions(None)
        .await
        .expect("list all subscriptions");
    let ours: Vec<_> = all
        .iter()
        .filter(|s| s.topic == trash || s.topic == streets)
        .collect();
    assert_eq!(ours.len(), 3, "{ours:?}");

    for topic in [trash, streets] {
        notifier.delete_topic(&topic).await.expect("cleanup");
    }
}

async fn unsubscribe_removes_only_that_subscription(notifier: &dyn TopicAdmin, namespace: &str) {
    let topic = notifier
        .create_topic(&topic_name(namespace, "unsub"))
        .await
        .expect("create topic");
    let keep = notifier
        .subscribe(&topic, &sms("+16195550101"))
        .await
        .expect("subscribe");
    let drop = notifier
        .subscribe(&topic, &sms("+16195550102"))
        .await
        .expect("subscribe");
    notifier.unsubscribe(&drop).await.expect("unsubscribe");
    notifier
        .unsubscribe(&drop)
        .await
        .expect("unsubscribing twice succeeds");
    let left = notifier
        .list_subscriptions(Some(&topic))
        .await
        .expect("list");
    let arns: Vec<_> = left.iter().filter_map(|s| s.arn.clone()).collect();
    assert_eq!(arns, [keep], "only the other subscription is left");
    notifier.delete_topic(&topic).await.expect("cleanup");
}

async fn publishing_returns_distinct_message_ids(notifier: &dyn TopicAdmin, namespace: &str) {
    let topic = notifier
        .create_topic(&topic_name(namespace, "publish"))
        .await
        .expect("create topic");
    notifier
        .subscribe(&topic, &sms("+16195550103"))
        .await
        .expect("subscribe");
    let first = notifier
        .publish(&topic, Some("Trash alert for 2019-01"), "count is now 123")
        .await
        .expect("publish with subject");
    let second = notifier
        .publish(&topic, None, "count is now 124")
        .await
        .expect("publish without subject");
    assert!(!first.as_str().is_empty());
    assert_ne!(first, second, "each publish gets its own message id");
    let sms_id = notifier
        .send_sms(&PhoneNumber::new("+16195550104").unwrap(), "direct")
        .await
        .expect("send sms");
    assert!(!sms_id.as_str().is_empty());

    let err = notifier
        .publish(&topic, Some("two\nlines"), "x")
        .await
        .expect_err("a subject with a line break");
    assert!(matches!(err, NotifyError::Invalid(_)), "{err:?}");
    let err = notifier
        .publish(&topic, None, "")
        .await
        .expect_err("an empty message");
    assert!(matches!(err, NotifyError::Invalid(_)), "{err:?}");
    notifier.delete_topic(&topic).await.expect("cleanup");
}

async fn missing_topics_are_reported_as_such(notifier: &dyn TopicAdmin, namespace: &str) {
    let topic = notifier
        .create_topic(&topic_name(namespace, "gone"))
        .await
        .expect("create topic");
    notifier.delete_topic(&topic).await.expect("delete topic");
    let err = notifier
        .publish(&topic, None, "anyone?")
        .await
        .expect_err("publish to a deleted topic");
    assert!(
        matches!(&err, NotifyError::NoSuchTopic { topic: t } if *t == topic),
        "{err:?}"
    );
    let err = notifier
        .subscribe(&topic, &sms("+16195550105"))
        .await
        .expect_err("subscribe to a deleted topic");
    assert!(matches!(err, NotifyError::NoSuchTopic { .. }), "{err:?}");
    let err = notifier
        .list_subscriptions(Some(&topic))
        .await
        .expect_err("list a deleted topic");
    assert!(matches!(err, NotifyError::NoSuchTopic { .. }), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

/// SNS returns topics and subscriptions 100 to a page.
pub async fn listings_follow_every_page(notifier: &dyn TopicAdmin, namespace: &str) {
    let topic = notifier
        .create_topic(&topic_name(namespace, "pages"))
        .await
        .expect("create topic");
    for i in 0..105 {
        notifier
            .subscribe(&topic, &sms(&format!("+1619555{i:04}")))
            .await
            .expect("subscribe");
    }
    let subs = notifier
        .list_subscriptions(Some(&topic))
        .await
        .expect("list by topic");
    assert_eq!(subs.len(), 105, "every page of the topic's subscriptions");
    let all = notifier.list_subscriptions(None).await.expect("list all");
    assert_eq!(all.iter().filter(|s| s.topic == topic).count(), 105);
    notifier.delete_topic(&topic).await.expect("cleanup");

    let mut created: Vec<TopicArn> = Vec::new();
    for i in 0..101 {
        let name = topic_name(namespace, &format!("page-{i:03}"));
        created.push(notifier.create_topic(&name).await.expect("create topic"));
    }
    let listed = notifier.list_topics().await.expect("list topics");
    let missing: Vec<_> = created.iter().filter(|t| !listed.contains(t)).collect();
    assert!(
        missing.is_empty(),
        "topics missing from the listing: {missing:?}"
    );
    for topic in &created {
        notifier.delete_topic(topic).await.expect("cleanup");
    }
}

async fn deleting_a_topic_removes_it_and_its_subscriptions(
    notifier: &dyn TopicAdmin,
    namespace: &str,
) {
    let topic = notifier
        .create_topic(&topic_name(namespace, "delete"))
        .await
        .expect("create topic");
    notifier
        .subscribe(&topic, &sms("+16195550106"))
        .await
        .expect("subscribe");
    notifier.delete_topic(&topic).await.expect("delete topic");
    notifier
        .delete_topic(&topic)
        .await
        .expect("deleting twice succeeds");
    let topics = notifier.list_topics().await.expect("list topics");
    assert!(!topics.contains(&topic), "{topic} still listed");
    let all = notifier.list_subscriptions(None).await.expect("list all");
    assert!(
        !all.iter().any(|s| s.topic == topic),
        "subscriptions of a deleted topic are gone"
    );
    let left: Vec<_> = topics
        .iter()
        .filter(|t| t.name().starts_with(&format!("{namespace}-")))
        .collect();
    assert!(left.is_empty(), "the suite left topics behind: {left:?}");
}
