//! The notifier port and what gid does with it: department topics, contact
//! subscriptions and monthly threshold alerts.
//!
//! The port is two traits, split by who needs them: [`Notifier`] (an alerting run: the
//! account's topics and subscriptions as they are, publishing to a topic, direct SMS) and
//! [`TopicAdmin`] (setting alerts up: topics — create is idempotent — and SMS and email
//! subscriptions). Two backends implement both and pass the same [`conformance`] suite:
//!
//! * [`LocalOutbox`]: offline; topics, subscriptions and every delivered message are
//!   readable JSON files under one folder, so a demo or a test can see exactly what was sent.
//! * [`SnsNotifier`]: `aws-sdk-sns` against AWS or an emulator.
//!
//! On top of the port, independent of the backend: [`ContactList`] parses `contacts.csv`
//! (bad rows reported by line, duplicates collapsed, departments routed to topics by a
//! [`DepartmentTable`]) and [`subscribe_contacts`] subscribes each contact to its
//! department's topic without duplicating anything on a rerun, in time
//! linear in the number of contacts (with progress through
//! [`subscribe_contacts_with_progress`]);
//! [`evaluate_and_send`] publishes each crossed [`Threshold`] once per month, recorded in an
//! [`AlertLedger`] kept in the object store; [`prune_topics`] and [`unsubscribe_all`] are the
//! bulk admin operations. Every topic gid names is `<prefix><short name>` ([`TopicPrefix`]),
//! so gid never touches another application's topics in a shared account, and every
//! message carries the configured [`SmsAttributes`]. This crate does not compute counts (that is aggregate's job), read
//! configuration, or decide where the contacts file and ledger live: callers pass them in.
//!
//! ```
//! use gid_notify::{subscribe_contacts, ContactList, DepartmentTable, LocalOutbox, Notifier, TopicPrefix};
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let outbox = LocalOutbox::new(dir.path());
//! let csv = "Name,Department,Email,Phone\nPat,Trash,pat@example.org,+16195550100\n";
//! let contacts = ContactList::parse("contacts.csv", csv.as_bytes(), &DepartmentTable::default()).unwrap();
//! let report = subscribe_contacts(&outbox, &TopicPrefix::default(), &contacts).await;
//! assert_eq!(report.subscribed.len(), 2); // by SMS and by email
//!
//! let trash = &report.topics[0];
//! assert_eq!(trash.name(), "gid-trash");
//! outbox.publish(trash, Some("Trash alert"), "Trash violations count is now 123 for 2019-01").await?;
//! let sent = outbox.messages().await?;
//! assert_eq!(sent[0].delivered_to.len(), 2);
//! # Ok::<(), gid_notify::NotifyError>(())
//! # }).unwrap();
//! ```

mod admin;
mod alerts;
mod audience;
mod contacts;
mod departments;
mod error;
mod local;
mod sms_attributes;
#[cfg(feature = "sns")]
mod sns;
mod topics;
mod types;

pub mod conformance;

#[cfg(test)]
mod test_support;

pub use admin::{
    default_keep, is_kept, prune_topics, subscribe_endpoint, unsubscribe_all, EndpointChange,
    EndpointSubscription, PruneReport, UnsubscribeReport, DEFAULT_KEEP_TOPICS,
};
pub use alerts::{
    closest_services, evaluate_and_send, AlertLedger, AlertOutcome, AlertPolicy, AlertReport,
    AlertResult, AlertState, LedgerClock, LedgerEntry, LedgerLocation, Resend, StopSignal,
    Threshold, DEFAULT_CLAIM_LEASE,
};
pub use audience::{topic_audiences, TopicAudience};
pub use contacts::{
    subscribe_contacts, subscribe_contacts_with_progress, Contact, ContactList, ContactProblem,
    ContactSubscription, ContactsError, DuplicateEndpoint, FailedContact, RejectedContact,
    SubscribeProgress, SubscribeReport,
};
pub use departments::{DepartmentNote, DepartmentTable, DepartmentUse, Route};
pub use error::{InvalidInput, NotifyError};
pub use local::{Delivery, EmailConfirmation, LocalOutbox, PublishedMessage, SentSms};
pub use sms_attributes::{
    SenderId, SmsAttributes, ORIGINATION_NUMBER_ATTRIBUTE, SENDER_ID_ATTRIBUTE, SMS_TYPE_ATTRIBUTE,
};
#[cfg(feature = "sns")]
pub use sns::inspect::SmsSandbox;
#[cfg(feature = "sns")]
pub use sns::{SnsNotifier, SnsSettings};
pub use topics::{
    create_gid_topic, find_gid_topic, list_gid_topics, GidTopic, TopicListing, TopicPrefix,
};
pub use types::{
    find_topic, EmailAddress, Endpoint, MessageId, Notifier, PhoneNumber, Protocol, Subscription,
    SubscriptionArn, SubscriptionStatus, TopicAdmin, TopicArn, TopicName, MAX_MESSAGE_BYTES,
    MAX_SMS_BYTES, MAX_SUBJECT_LEN,
};
