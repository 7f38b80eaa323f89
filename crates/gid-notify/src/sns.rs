//! `aws-sdk-sns` behind the [`Notifier`] port, for AWS or an SNS-compatible endpoint.
//!
//! Credentials come only from the SDK's standard chain (environment, shared profile,
//! instance/container role); gid never reads or logs them. Throttling, 5xx and timeouts
//! are retried by the SDK's standard retry strategy with the configured attempt budget.
//!
//! On AWS, email subscriptions stay pending until the recipient follows the link in the
//! confirmation email, and SMS from a new account only reach numbers verified in the SMS
//! sandbox; neither is something this backend can change.

use std::time::Duration;

pub(crate) mod inspect;

use async_trait::async_trait;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::Client;
use gid_aws::{
    AwsContext, AwsSettings, AwsSetupError, FailureKind, RequestCounter, SdkDetail, Service,
};

use crate::types::{check_message, check_subject, MAX_MESSAGE_BYTES, MAX_SMS_BYTES};
use crate::{
    Endpoint, MessageId, Notifier, NotifyError, PhoneNumber, Protocol, SmsAttributes, Subscription,
    SubscriptionArn, SubscriptionStatus, TopicAdmin, TopicArn, TopicName,
};

/// What SNS lists instead of an ARN for a subscription awaiting confirmation.
const PENDING_ARN: &str = "PendingConfirmation";

/// Connection settings for [`SnsNotifier`] (never credentials).
#[derive(Debug, Clone)]
pub struct SnsSettings {
    /// `None`: `AWS_REGION` or the shared profile's region.
    pub region: Option<String>,
    /// `None`: AWS itself (or `AWS_ENDPOINT_URL_SNS` / `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// Longest one request may take, retries included.
    pub operation_timeout: Duration,
}

impl Default for SnsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            max_attempts: 3,
            operation_timeout: Duration::from_secs(30),
        }
    }
}

/// The SNS backend of [`Notifier`].
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    counter: RequestCounter,
    /// The custom endpoint SNS is reached at (`None`: AWS's own), for messages.
    endpoint: Option<String>,
    /// Sent with every publish and direct SMS, so SMS never fall back to the account's
    /// defaults (Promotional unless changed).
    sms: SmsAttributes,
}

impl SnsNotifier {
    /// The SNS client of the process's shared AWS configuration; `endpoint` overrides the
    /// one the configuration resolves for SNS (`notify.sns_endpoint_url`).
    pub fn new(aws: &AwsContext, endpoint: Option<&str>) -> Self {
        let endpoint = endpoint
            .map(str::to_owned)
            .or_else(|| aws.endpoint(Service::Sns));
        let counter = RequestCounter::default();
        let mut config = aws_sdk_sns::config::Builder::from(aws.sdk()).interceptor(counter.clone());
        if let Some(endpoint) = &endpoint {
            config = config.endpoint_url(endpoint);
        }
        tracing::debug!(region = aws.region(), ?endpoint, "sns client ready");
        Self {
            client: Client::from_conf(config.build()),
            counter,
            endpoint,
            sms: SmsAttributes::default(),
        }
    }

    /// The notifier with every publish and direct SMS carrying `sms` as message attributes.
    pub fn with_sms_attributes(mut self, sms: SmsAttributes) -> Self {
        self.sms = sms;
        self
    }

    /// The SMS attributes as SNS message attributes (all of data type String).
    fn message_attributes(
        &self,
    ) -> Option<std::collections::HashMap<String, aws_sdk_sns::types::MessageAttributeValue>> {
        let attributes = self
            .sms
            .message_attributes()
            .into_iter()
            .map(|(name, value)| {
                let value = aws_sdk_sns::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(value)
                    .build()
                    .expect("data_type is set");
                (name.to_owned(), value)
            })
            .collect();
        Some(attributes)
    }

    /// A notifier of its own AWS configuration, loaded from `settings` and the standard chain.
    pub async fn connect(settings: &SnsSettings) -> Result<Self, AwsSetupError> {
        let aws = AwsContext::load(&AwsSettings {
            region: settings.region.clone(),
            endpoint_url: settings.endpoint_url.clone(),
            max_attempts: Some(settings.max_attempts),
            retry_mode: None,
            operation_timeout: settings.operation_timeout,
        })
        .await?;
        Ok(Self::new(&aws, settings.endpoint_url.as_deref()))
    }

    /// The SDK client, for operations outside the port (tests, admin).
    pub fn client(&self) -> &Client {
        &self.client
    }

    async fn list_page(
        &self,
        topic: Option<&TopicArn>,
        next_token: Option<String>,
    ) -> Result<(Vec<aws_sdk_sns::types::Subscription>, Option<String>), NotifyError> {
        match topic {
            Some(topic) => {
                let output = self
                    .client
                    .list_subscriptions_by_topic()
                    .topic_arn(topic.as_str())
                    .set_next_token(next_token)
                    .send()
                    .await
                    .map_err(|e| {
                        self.failed_on_topic("list subscriptions of", topic, topic.as_str(), e)
                    })?;
                Ok((
                    output.subscriptions().to_vec(),
                    output.next_token().map(str::to_owned),
                ))
            }
            None => {
                let output = self
                    .client
                    .list_subscriptions()
                    .set_next_token(next_token)
                    .send()
                    .await
                    .map_err(|e| self.failed("list subscriptions", "of the account", e))?;
                Ok((
                    output.subscriptions().to_vec(),
                    output.next_token().map(str::to_owned),
                ))
            }
        }
    }

    /// `err`, from `operation` on `target`, as the port's error.
    fn failed<E>(&self, operation: &'static str, target: &str, err: SdkError<E>) -> NotifyError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(self.endpoint.as_deref(), operation, target, err, None)
    }

    /// [`Self::failed`] for an operation on `topic`: SNS's "not found" is the topic missing.
    fn failed_on_topic<E>(
        &self,
        operation: &'static str,
        topic: &TopicArn,
        target: &str,
        err: SdkError<E>,
    ) -> NotifyError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let missing = NotifyError::NoSuchTopic {
            topic: topic.clone(),
        };
        classify(
            self.endpoint.as_deref(),
            operation,
            target,
            err,
            Some(missing),
        )
    }

    /// A removal's answer: "not found" is what the caller wanted, so removals are
    /// idempotent as the port promises (AWS's already are; some emulators' are not).
    fn deleted<T, E>(
        &self,
        answer: Result<T, SdkError<E>>,
        operation: &'static str,
        target: &str,
    ) -> Result<(), NotifyError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match answer {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NotFound") => Ok(()),
            Err(e) => Err(self.failed(operation, target, e)),
        }
    }
}

/// Maps an SDK error onto the port's errors by SNS error code and HTTP status.
/// `not_found` says what a `NotFound` means for this operation (`None`: nothing special).
fn classify<E>(
    endpoint: Option<&str>,
    operation: &'static str,
    target: &str,
    err: SdkError<E>,
    not_found: Option<NotifyError>,
) -> NotifyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    if code.as_deref() == Some("NotFound") || (code.is_none() && status == Some(404)) {
        if let Some(mapped) = not_found {
            return mapped;
        }
    }
    match code.as_deref() {
        Some(
            "InvalidParameter"
            | "InvalidParameterValue"
            | "OptedOut"
            | "EndpointDisabled"
            | "InvalidSecurity"
            | "ValidationException",
        ) => NotifyError::Rejected {
            operation,
            target: target.to_owned(),
            message: format!(
                "{}: {}",
                code.as_deref().unwrap_or_default(),
                err.message().unwrap_or_default()
            ),
        },
        _ => NotifyError::Service {
            operation,
            target: target.to_owned(),
            kind: gid_aws::describe(operation, target, &err, endpoint),
            detail: Some(Box::new(SdkDetail::new(err))),
        },
    }
}

/// A listed SNS subscription in the port's terms; `None` for entries gid cannot use
/// (being deleted, or with a malformed topic ARN).
fn to_subscription(s: &aws_sdk_sns::types::Subscription) -> Option<Subscription> {
    let topic = TopicArn::new(s.topic_arn()?).ok()?;
    let raw_arn = s.subscription_arn().unwrap_or(PENDING_ARN);
    let (arn, status) = if raw_arn == PENDING_ARN {
        (None, SubscriptionStatus::PendingConfirmation)
    } else {
        // "Deleted" (a subscription being removed) and anything else unparseable.
        (
            Some(SubscriptionArn::new(raw_arn).ok()?),
            SubscriptionStatus::Confirmed,
        )
    };
    Some(Subscription {
        arn,
        topic,
        protocol: Protocol::from(s.protocol().unwrap_or_default()),
        endpoint: s.endpoint().unwrap_or_default().to_owned(),
        status,
    })
}

fn service_answer(operation: &'static str, target: &str, missing: &str) -> NotifyError {
    NotifyError::Service {
        operation,
        target: target.to_owned(),
        kind: FailureKind::Rejected {
            code: "IncompleteAnswer".into(),
            message: format!("the answer carried no {missing}").into(),
        },
        detail: None,
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    fn backend(&self) -> &'static str {
        "sns"
    }

    fn request_stats(&self) -> gid_core::RequestStats {
        self.counter.stats()
    }

    async fn create_topic(&self, name: &TopicName) -> Result<TopicArn, NotifyError> {
        let output = self
            .client
            .create_topic()
            .name(name.as_str())
            .send()
            .await
            .map_err(|e| self.failed("create topic", name.as_str(), e))?;
        let arn = output
            .topic_arn()
            .ok_or_else(|| service_answer("create topic", name.as_str(), "topic ARN"))?;
        Ok(TopicArn::new(arn)?)
    }

    async fn list_topics(&self) -> Result<Vec<TopicArn>, NotifyError> {
        let mut topics = Vec::new();
        let mut next_token = None;
        loop {
            let output = self
                .client
                .list_topics()
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| self.failed("list topics", "of the account", e))?;
            for topic in output.topics() {
                match topic.topic_arn().map(TopicArn::new) {
                    Some(Ok(arn)) => topics.push(arn),
                    // FIFO topics (`name.fifo`) are not gid's; skip rather than fail the listing.
                    other => tracing::debug!(?other, "topic skipped"),
                }
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(topics),
            }
        }
    }

    async fn list_subscriptions(
        &self,
        topic: Option<&TopicArn>,
    ) -> Result<Vec<Subscription>, NotifyError> {
        let mut subscriptions = Vec::new();
        let mut next_token = None;
        loop {
            let (page, next) = self.list_page(topic, next_token).await?;
            subscriptions.extend(page.iter().filter_map(to_subscription));
            match next {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(subscriptions),
            }
        }
    }

    async fn publish(
        &self,
        topic: &TopicArn,
        subject: Option<&str>,
        message: &str,
    ) -> Result<MessageId, NotifyError> {
        // Checked here as well as by SNS, so both backends refuse the same input the same way.
        if let Some(subject) = subject {
            check_subject(topic.as_str(), subject)?;
        }
        check_message(topic.as_str(), message, MAX_MESSAGE_BYTES)?;
        let output = self
            .client
            .publish()
            .topic_arn(topic.as_str())
            .set_subject(subject.map(str::to_owned))
            .message(message)
            .set_message_attributes(self.message_attributes())
            .send()
            .await
            .map_err(|e| self.failed_on_topic("publish to", topic, topic.as_str(), e))?;
        let id = output
            .message_id()
            .ok_or_else(|| service_answer("publish to", topic.as_str(), "message id"))?;
        Ok(MessageId::new(id))
    }

    async fn send_sms(&self, phone: &PhoneNumber, message: &str) -> Result<MessageId, NotifyError> {
        check_message(phone.as_str(), message, MAX_SMS_BYTES)?;
        let output = self
            .client
            .publish()
            .phone_number(phone.as_str())
            .message(message)
            .set_message_attributes(self.message_attributes())
            .send()
            .await
            .map_err(|e| self.failed("send sms to", phone.as_str(), e))?;
        let id = output
            .message_id()
            .ok_or_else(|| service_answer("send sms to", phone.as_str(), "message id"))?;
        Ok(MessageId::new(id))
    }
}

#[async_trait]
impl TopicAdmin for SnsNotifier {
    async fn delete_topic(&self, topic: &TopicArn) -> Result<(), NotifyError> {
        let answer = self
            .client
            .delete_topic()
            .topic_arn(topic.as_str())
            .send()
            .await;
        self.deleted(answer, "delete topic", topic.as_str())
    }

    async fn subscribe(
        &self,
        topic: &TopicArn,
        endpoint: &Endpoint,
    ) -> Result<SubscriptionArn, NotifyError> {
        let target = format!("{endpoint} to {topic}");
        let output = self
            .client
            .subscribe()
            .topic_arn(topic.as_str())
            .protocol(endpoint.protocol().as_str())
            .endpoint(endpoint.address())
            // Without this, a pending email subscription answers "pending confirmation"
            // instead of an ARN that can be unsubscribed later.
            .return_subscription_arn(true)
            .send()
            .await
            .map_err(|e| self.failed_on_topic("subscribe", topic, &target, e))?;
        let arn = output
            .subscription_arn()
            .ok_or_else(|| service_answer("subscribe", &target, "subscription ARN"))?;
        Ok(SubscriptionArn::new(arn)?)
    }

    async fn unsubscribe(&self, subscription: &SubscriptionArn) -> Result<(), NotifyError> {
        let answer = self
            .client
            .unsubscribe()
            .subscription_arn(subscription.as_str())
            .send()
            .await;
        self.deleted(answer, "unsubscribe", subscription.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(arn: Option<&str>, topic: &str) -> aws_sdk_sns::types::Subscription {
        aws_sdk_sns::types::Subscription::builder()
            .set_subscription_arn(arn.map(str::to_owned))
            .topic_arn(topic)
            .protocol("email")
            .endpoint("pat@example.org")
            .build()
    }

    const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:trash";

    #[test]
    fn pending_subscriptions_are_listed_without_an_arn() {
        let s = to_subscription(&listed(Some("PendingConfirmation"), TOPIC)).unwrap();
        assert_eq!(s.status, SubscriptionStatus::PendingConfirmation);
        assert_eq!(s.arn, None);
        assert_eq!(s.protocol, Protocol::Email);
        let confirmed = to_subscription(&listed(Some(&format!("{TOPIC}:ab-12")), TOPIC)).unwrap();
        assert_eq!(confirmed.status, SubscriptionStatus::Confirmed);
        assert_eq!(
            confirmed.arn.unwrap().as_str(),
            "arn:aws:sns:us-east-1:123456789012:trash:ab-12"
        );
    }

    #[test]
    fn subscriptions_being_deleted_or_malformed_are_left_out() {
        assert!(to_subscription(&listed(Some("Deleted"), TOPIC)).is_none());
        assert!(to_subscription(&listed(Some("x"), "not-an-arn")).is_none());
    }
}
