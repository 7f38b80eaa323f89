//! A notifier that fails on request, around a [`LocalOutbox`], for testing how the domain
//! logic reports and survives backend failures; and what tests read back from a notifier.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    Endpoint, LocalOutbox, MessageId, Notifier, NotifyError, PhoneNumber, Subscription,
    SubscriptionArn, TopicAdmin, TopicArn, TopicName,
};

/// The names of every topic of the account, sorted.
pub(crate) async fn topic_names(notifier: &dyn Notifier) -> Vec<String> {
    let mut names: Vec<String> = notifier
        .list_topics()
        .await
        .unwrap()
        .iter()
        .map(|t| t.name().to_owned())
        .collect();
    names.sort();
    names
}

#[derive(Debug)]
pub(crate) struct Faulty {
    inner: LocalOutbox,
    failing_topic: Option<String>,
    failing_endpoint: Option<String>,
    fail_publish: AtomicBool,
    publish_delay: Option<Duration>,
}

impl Faulty {
    pub(crate) fn new(inner: LocalOutbox) -> Self {
        Self {
            inner,
            failing_topic: None,
            failing_endpoint: None,
            fail_publish: AtomicBool::new(false),
            publish_delay: None,
        }
    }

    /// Publishing takes this long (a slow or retrying SNS).
    pub(crate) fn slow_publish(mut self, delay: Duration) -> Self {
        self.publish_delay = Some(delay);
        self
    }

    /// Creating this topic fails as an unavailable service would.
    pub(crate) fn failing_topic(mut self, name: &str) -> Self {
        self.failing_topic = Some(name.to_owned());
        self
    }

    /// Subscribing this address is refused.
    pub(crate) fn failing_endpoint(mut self, address: &str) -> Self {
        self.failing_endpoint = Some(address.to_owned());
        self
    }

    /// Whether publishing to a topic fails from now on.
    pub(crate) fn fail_publish(&self, on: bool) {
        self.fail_publish.store(on, Ordering::SeqCst);
    }
}

#[async_trait]
impl Notifier for Faulty {
    fn backend(&self) -> &'static str {
        "faulty"
    }

    async fn create_topic(&self, name: &TopicName) -> Result<TopicArn, NotifyError> {
        if self.failing_topic.as_deref() == Some(name.as_str()) {
            return Err(NotifyError::Service {
                operation: "create topic",
                target: name.to_string(),
                kind: gid_core::FailureKind::ServerError { status: 503 },
                detail: None,
            });
        }
        self.inner.create_topic(name).await
    }

    async fn list_topics(&self) -> Result<Vec<TopicArn>, NotifyError> {
        self.inner.list_topics().await
    }

    async fn list_subscriptions(
        &self,
        topic: Option<&TopicArn>,
    ) -> Result<Vec<Subscription>, NotifyError> {
        self.inner.list_subscriptions(topic).await
    }

    async fn publish(
        &self,
        topic: &TopicArn,
        subject: Option<&str>,
        message: &str,
    ) -> Result<MessageId, NotifyError> {
        if let Some(delay) = self.publish_delay {
            tokio::time::sleep(delay).await;
        }
        if self.fail_publish.load(Ordering::SeqCst) {
            return Err(NotifyError::Service {
                operation: "publish to",
                target: topic.to_string(),
                kind: gid_core::FailureKind::Rejected {
                    code: "Test".into(),
                    message: "publish refused by the test".into(),
                },
                detail: None,
            });
        }
        self.inner.publish(topic, subject, message).await
    }

    async fn send_sms(&self, phone: &PhoneNumber, message: &str) -> Result<MessageId, NotifyError> {
        self.inner.send_sms(phone, message).await
    }
}

#[async_trait]
impl TopicAdmin for Faulty {
    async fn delete_topic(&self, topic: &TopicArn) -> Result<(), NotifyError> {
        self.inner.delete_topic(topic).await
    }

    async fn subscribe(
        &self,
        topic: &TopicArn,
        endpoint: &Endpoint,
    ) -> Result<SubscriptionArn, NotifyError> {
        if self.failing_endpoint.as_deref() == Some(endpoint.address()) {
            return Err(NotifyError::Rejected {
                operation: "subscribe",
                target: endpoint.to_string(),
                message: "opted out".into(),
            });
        }
        self.inner.subscribe(topic, endpoint).await
    }

    async fn unsubscribe(&self, subscription: &SubscriptionArn) -> Result<(), NotifyError> {
        self.inner.unsubscribe(subscription).await
    }
}
