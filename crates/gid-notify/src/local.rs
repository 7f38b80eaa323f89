//! An outbox on disk: nothing leaves the machine, and every topic, subscription and
//! delivered message is a pretty-printed JSON file a person (or a test) can read:
//!
//! ```text
//! <root>/topics/<topic>.json                      {name, arn, created_at}
//! <root>/subscriptions/<topic>/<id>.json          {arn, topic, protocol, endpoint, status, created_at}
//! <root>/messages/<seq>-<topic>.json              {message_id, topic, subject, message, message_attributes, published_at, delivered_to: [...]}
//! <root>/sms/<seq>-<digits>.json                  {message_id, phone_number, message, message_attributes, sent_at}
//! <root>/.tmp/                                    files being written (renamed into place)
//! ```
//!
//! `<seq>` is a zero-padded sequence per folder (`000001`), so `ls` shows the order of
//! sending. Every file is written to `.tmp` and renamed or hard-linked into place: readers
//! never see half a record, and a new sequence number or topic is claimed with a hard link,
//! which fails if the name exists, even when two processes race. ARNs look like AWS's with
//! partition `gid`, region `local` and account `000000000000`.
//!
//! `message_attributes` are the SNS message attributes the message would carry
//! ([`SmsAttributes`]: `AWS.SNS.SMS.SMSType` and, when configured, the sender ID and
//! origination number), so an offline run shows how its SMS would go out.
//!
//! Email subscriptions are confirmed at once by default, as moto does, so a demo delivers
//! to them; [`EmailConfirmation::Pending`] makes them wait for
//! [`LocalOutbox::confirm_subscription`] like AWS waits for the recipient's click.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tempfile::NamedTempFile;

use crate::contacts::EndpointKey;
use crate::types::{check_message, check_subject, MAX_MESSAGE_BYTES, MAX_SMS_BYTES};
use crate::{
    Endpoint, MessageId, Notifier, NotifyError, PhoneNumber, Protocol, SmsAttributes, Subscription,
    SubscriptionArn, SubscriptionStatus, TopicAdmin, TopicArn, TopicName,
};

/// The ARN prefix of every local topic.
const ARN_PREFIX: &str = "arn:gid:sns:local:000000000000:";

/// What happens to a new email subscription on the local backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmailConfirmation {
    /// Confirmed at once (as moto does), so messages reach it straight away.
    #[default]
    Immediate,
    /// Pending until [`LocalOutbox::confirm_subscription`] (as on AWS, where the recipient
    /// must follow a link); nothing is delivered to it meanwhile.
    Pending,
}

/// The local-disk backend of [`Notifier`].
#[derive(Debug, Clone)]
pub struct LocalOutbox {
    inner: Arc<Inner>,
    sms: SmsAttributes,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    email_confirmation: EmailConfirmation,
    /// Serialises check-then-write steps (subscribe's duplicate check) inside this process,
    /// and holds each topic's [`TopicIndex`] by topic name.
    lock: Mutex<HashMap<String, TopicIndex>>,
    /// How often a topic's subscription records were read to build its index.
    #[cfg(test)]
    index_reads: AtomicU64,
}

/// Which endpoints a topic's subscriptions deliver to, read from its folder once and kept
/// up to date by this process's own subscribes. Reading every record on every subscribe
/// made subscribing N contacts cost N²/2 file reads (about 6,000 of a million contacts'
/// two million endpoints in four minutes).
#[derive(Debug)]
struct TopicIndex {
    /// The folder's modification time right after this index last matched it. Anything
    /// else that adds or removes a record (another process subscribing or unsubscribing,
    /// a confirmation, a deleted topic) moves it on, and the index is read again.
    folder_modified: Option<SystemTime>,
    /// A 64-bit digest of each endpoint's [`EndpointKey`] → the id (file name) of its
    /// oldest subscription: digests and ids rather than keys and ARNs keep two million
    /// endpoints in ~150 MB instead of ~470 MB. A hit is confirmed by reading that record.
    by_endpoint: HashMap<u64, Box<str>>,
}

fn digest(key: &EndpointKey) -> u64 {
    // Fixed keys: the digests only have to agree within this process.
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

fn record_key(record: &SubscriptionRecord) -> EndpointKey {
    EndpointKey::new(record.protocol.clone(), &record.endpoint)
}

/// The id of a subscription: the last segment of its ARN, also its record's file name.
fn subscription_id(arn: &SubscriptionArn) -> &str {
    arn.as_str().rsplit(':').next().unwrap_or_default()
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicRecord {
    name: TopicName,
    arn: TopicArn,
    created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SubscriptionRecord {
    arn: SubscriptionArn,
    topic: TopicArn,
    protocol: Protocol,
    endpoint: String,
    status: SubscriptionStatus,
    created_at: DateTime<Utc>,
}

/// One delivery of a published message, as recorded in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// How it was delivered.
    pub protocol: Protocol,
    /// The phone number or address it went to.
    pub endpoint: String,
    /// The subscription it went through.
    pub subscription: SubscriptionArn,
}

/// A message published to a topic, as recorded in `<root>/messages/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedMessage {
    /// The id the outbox gave it.
    pub message_id: MessageId,
    /// The topic it was published to.
    pub topic: TopicArn,
    /// The subject (email only; SMS ignores it).
    pub subject: Option<String>,
    /// The message text.
    pub message: String,
    /// The SNS message attributes it carried (name → value); empty in records written
    /// before gid set any.
    #[serde(default)]
    pub message_attributes: BTreeMap<String, String>,
    /// When it was published.
    pub published_at: DateTime<Utc>,
    /// The confirmed subscriptions it went to (empty when the topic had none).
    pub delivered_to: Vec<Delivery>,
}

/// A direct SMS, as recorded in `<root>/sms/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentSms {
    /// The id the outbox gave it.
    pub message_id: MessageId,
    /// The number it went to.
    pub phone_number: PhoneNumber,
    /// The message text.
    pub message: String,
    /// The SNS message attributes it carried (name → value).
    #[serde(default)]
    pub message_attributes: BTreeMap<String, String>,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}

fn io_err<'p>(
    operation: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> NotifyError + 'p {
    move |source| NotifyError::Io {
        operation,
        path: path.display().to_string(),
        source,
    }
}

/// A random UUID (v4), the shape SNS gives subscription and message ids.
fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl LocalOutbox {
    /// An outbox rooted at `root` (created on first write); email subscriptions are
    /// confirmed at once.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_email_confirmation(root, EmailConfirmation::Immediate)
    }

    /// An outbox whose new email subscriptions behave as `confirmation` says.
    pub fn with_email_confirmation(
        root: impl Into<PathBuf>,
        confirmation: EmailConfirmation,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: root.into(),
                email_confirmation: confirmation,
                lock: Mutex::new(HashMap::new()),
                #[cfg(test)]
                index_reads: AtomicU64::new(0),
            }),
            sms: SmsAttributes::default(),
        }
    }

    /// The outbox with every message marked with `sms` (recorded with each message).
    pub fn with_sms_attributes(mut self, sms: SmsAttributes) -> Self {
        self.sms = sms;
        self
    }

    /// The attributes each message is recorded with.
    fn message_attributes(&self) -> BTreeMap<String, String> {
        self.sms
            .message_attributes()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    }

    /// The outbox folder (`notify.outbox_dir`).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The ARN a local topic of this name has.
    pub fn topic_arn(name: &TopicName) -> TopicArn {
        TopicArn::new(format!("{ARN_PREFIX}{name}")).expect("a valid name makes a valid ARN")
    }

    /// Every message published to topics so far, oldest first.
    pub async fn messages(&self) -> Result<Vec<PublishedMessage>, NotifyError> {
        self.blocking(|s| s.read_records(&s.dir("messages"))).await
    }

    /// Every direct SMS sent so far, oldest first.
    pub async fn sms_messages(&self) -> Result<Vec<SentSms>, NotifyError> {
        self.blocking(|s| s.read_records(&s.dir("sms"))).await
    }

    /// Confirms a pending subscription, as the recipient following the link would.
    pub async fn confirm_subscription(
        &self,
        subscription: &SubscriptionArn,
    ) -> Result<(), NotifyError> {
        let subscription = subscription.clone();
        self.blocking(move |s| {
            let _guard = s.inner.lock.lock().expect("not poisoned");
            let path = s.subscription_path(&subscription).ok_or_else(|| {
                NotifyError::NoSuchSubscription {
                    subscription: subscription.clone(),
                }
            })?;
            let mut record: SubscriptionRecord =
                s.read_record(&path)?
                    .ok_or_else(|| NotifyError::NoSuchSubscription {
                        subscription: subscription.clone(),
                    })?;
            record.status = SubscriptionStatus::Confirmed;
            s.write_replace(&path, &record)
        })
        .await
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.inner.root.join(name)
    }

    fn topic_path(&self, name: &str) -> PathBuf {
        self.dir("topics").join(format!("{name}.json"))
    }

    fn subscriptions_dir(&self, topic: &str) -> PathBuf {
        self.dir("subscriptions").join(topic)
    }

    /// Where a subscription's record lives; `None` if the ARN is not one of ours.
    fn subscription_path(&self, arn: &SubscriptionArn) -> Option<PathBuf> {
        let topic = arn.topic();
        let id = arn.as_str().rsplit(':').next()?;
        let id_ok = id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        (topic.as_str().starts_with(ARN_PREFIX) && id_ok).then(|| {
            self.subscriptions_dir(topic.name())
                .join(format!("{id}.json"))
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalOutbox) -> Result<T, NotifyError> + Send + 'static,
    ) -> Result<T, NotifyError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .expect("local outbox task panicked")
    }

    /// `value`'s JSON in a file under `.tmp`, deleted if it is dropped before it is persisted
    /// (a failed write leaves nothing behind).
    fn write_temp(&self, value: &impl Serialize) -> Result<NamedTempFile, NotifyError> {
        let dir = self.dir(".tmp");
        fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        let mut bytes = serde_json::to_vec_pretty(value).expect("records serialise");
        bytes.push(b'\n');
        let mut builder = tempfile::Builder::new();
        // Records are as readable as the rest of the data root (the umask decides), not
        // tempfile's private 0600.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut file = builder.tempfile_in(&dir).map_err(io_err("create", &dir))?;
        file.write_all(&bytes)
            .map_err(io_err("write", file.path()))?;
        Ok(file)
    }

    /// Writes `value` to `path`, replacing what is there, atomically.
    fn write_replace(&self, path: &Path, value: &impl Serialize) -> Result<(), NotifyError> {
        let temp = self.write_temp(value)?;
        let parent = path.parent().expect("record paths have a parent");
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        temp.persist(path)
            .map(drop)
            .map_err(|e| io_err("rename into", path)(e.error))
    }

    /// Writes `value` to `path` only if nothing is there; `Ok(false)` if something was.
    /// `persist_noclobber` (a no-replace rename, or a hard link) fails on an existing name,
    /// which makes this atomic across processes.
    fn write_new(&self, path: &Path, value: &impl Serialize) -> Result<bool, NotifyError> {
        let temp = self.write_temp(value)?;
        let parent = path.parent().expect("record paths have a parent");
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        match temp.persist_noclobber(path) {
            Ok(_) => Ok(true),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err("link", path)(e.error)),
        }
    }

    /// Writes `value` as the next `<seq>-<suffix>.json` in `dir`.
    fn append(&self, dir: &Path, suffix: &str, value: &impl Serialize) -> Result<(), NotifyError> {
        let mut seq = self
            .record_paths(dir)?
            .iter()
            .filter_map(|p| sequence_of(p))
            .max()
            .unwrap_or(0);
        loop {
            seq += 1;
            let path = dir.join(format!("{seq:06}-{suffix}.json"));
            // Another process took this number between our listing and the link: try the next.
            if self.write_new(&path, value)? {
                return Ok(());
            }
        }
    }

    fn read_record<T: DeserializeOwned>(&self, path: &Path) -> Result<Option<T>, NotifyError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| NotifyError::CorruptRecord {
                path: path.display().to_string(),
                source: e,
            })
    }

    /// The `.json` files directly in `dir`, sorted by name (so by sequence).
    fn record_paths(&self, dir: &Path) -> Result<Vec<PathBuf>, NotifyError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", dir)(e)),
        };
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_err("list", dir))?.path();
            if path.extension().is_some_and(|e| e == "json") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        Ok(paths)
    }

    fn read_records<T: DeserializeOwned>(&self, dir: &Path) -> Result<Vec<T>, NotifyError> {
        let mut records = Vec::new();
        for path in self.record_paths(dir)? {
            // Deleted between the listing and the read (a topic being deleted): skip it.
            if let Some(record) = self.read_record(&path)? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// The topic's record, or [`NotifyError::NoSuchTopic`].
    fn require_topic(&self, topic: &TopicArn) -> Result<TopicRecord, NotifyError> {
        let missing = || NotifyError::NoSuchTopic {
            topic: topic.clone(),
        };
        if !topic.as_str().starts_with(ARN_PREFIX) {
            return Err(missing());
        }
        let record: Option<TopicRecord> = self.read_record(&self.topic_path(topic.name()))?;
        record.filter(|r| &r.arn == topic).ok_or_else(missing)
    }

    fn subscriptions_of(&self, topic: &str) -> Result<Vec<SubscriptionRecord>, NotifyError> {
        let mut records: Vec<SubscriptionRecord> =
            self.read_records(&self.subscriptions_dir(topic))?;
        records.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.arn.cmp(&b.arn)));
        Ok(records)
    }

    /// The topic's index, read again from its folder unless the folder is as this process
    /// last left it.
    fn topic_index<'a>(
        &self,
        indexes: &'a mut HashMap<String, TopicIndex>,
        topic: &str,
    ) -> Result<&'a mut TopicIndex, NotifyError> {
        let modified = folder_modified(&self.subscriptions_dir(topic))?;
        let current = indexes
            .get(topic)
            .is_some_and(|index| modified.is_some() && index.folder_modified == modified);
        if !current {
            #[cfg(test)]
            self.inner.index_reads.fetch_add(1, Ordering::Relaxed);
            let mut by_endpoint = HashMap::new();
            for record in self.subscriptions_of(topic)? {
                // The oldest subscription of an endpoint is the one subscribe answers with.
                by_endpoint
                    .entry(digest(&record_key(&record)))
                    .or_insert_with(|| subscription_id(&record.arn).into());
            }
            indexes.insert(
                topic.to_owned(),
                TopicIndex {
                    folder_modified: modified,
                    by_endpoint,
                },
            );
        }
        Ok(indexes.get_mut(topic).expect("present or just inserted"))
    }

    /// The subscription of the topic that delivers to `key`, if the index knows one.
    fn indexed_subscription(
        &self,
        index: &TopicIndex,
        topic: &str,
        key: &EndpointKey,
    ) -> Result<Option<SubscriptionArn>, NotifyError> {
        let Some(id) = index.by_endpoint.get(&digest(key)) else {
            return Ok(None);
        };
        let path = self.subscriptions_dir(topic).join(format!("{id}.json"));
        let record: Option<SubscriptionRecord> = self.read_record(&path)?;
        if let Some(record) = record.filter(|r| &record_key(r) == key) {
            return Ok(Some(record.arn));
        }
        // Another endpoint with the same digest: look through the records themselves.
        Ok(self
            .subscriptions_of(topic)?
            .into_iter()
            .find(|r| &record_key(r) == key)
            .map(|r| r.arn))
    }

    fn create_topic_sync(&self, name: &TopicName) -> Result<TopicArn, NotifyError> {
        let path = self.topic_path(name.as_str());
        let record = TopicRecord {
            name: name.clone(),
            arn: Self::topic_arn(name),
            created_at: Utc::now(),
        };
        if !self.write_new(&path, &record)? {
            let existing: Option<TopicRecord> = self.read_record(&path)?;
            if let Some(existing) = existing {
                return Ok(existing.arn);
            }
            // Deleted between the failed link and the read: create it after all.
            self.write_replace(&path, &record)?;
        }
        tracing::debug!(topic = %record.arn, "local topic created");
        Ok(record.arn)
    }

    fn delete_topic_sync(&self, topic: &TopicArn) -> Result<(), NotifyError> {
        if !topic.as_str().starts_with(ARN_PREFIX) {
            return Ok(());
        }
        let _guard = self.inner.lock.lock().expect("not poisoned");
        // Subscriptions first: a crash in between leaves a topic without subscriptions,
        // never subscriptions without a topic.
        let subs = self.subscriptions_dir(topic.name());
        match fs::remove_dir_all(&subs) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("delete", &subs)(e)),
        }
        let path = self.topic_path(topic.name());
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("delete", &path)(e)),
        }
    }

    fn subscribe_sync(
        &self,
        topic: &TopicArn,
        endpoint: &Endpoint,
    ) -> Result<SubscriptionArn, NotifyError> {
        let mut indexes = self.inner.lock.lock().expect("not poisoned");
        self.require_topic(topic)?;
        let key = EndpointKey::of(endpoint);
        let index = self.topic_index(&mut indexes, topic.name())?;
        if let Some(arn) = self.indexed_subscription(index, topic.name(), &key)? {
            return Ok(arn);
        }
        let status = match (endpoint, self.inner.email_confirmation) {
            (Endpoint::Email(_), EmailConfirmation::Pending) => {
                SubscriptionStatus::PendingConfirmation
            }
            _ => SubscriptionStatus::Confirmed,
        };
        let id = random_id();
        let record = SubscriptionRecord {
            arn: SubscriptionArn::new(format!("{topic}:{id}")).expect("valid topic ARN + id"),
            topic: topic.clone(),
            protocol: endpoint.protocol(),
            endpoint: endpoint.address().to_owned(),
            status,
            created_at: Utc::now(),
        };
        let dir = self.subscriptions_dir(topic.name());
        self.write_replace(&dir.join(format!("{id}.json")), &record)?;
        index.by_endpoint.insert(digest(&key), id.into());
        index.folder_modified = folder_modified(&dir)?;
        Ok(record.arn)
    }

    fn publish_sync(
        &self,
        topic: &TopicArn,
        subject: Option<&str>,
        message: &str,
    ) -> Result<MessageId, NotifyError> {
        let record = self.require_topic(topic)?;
        let delivered_to = self
            .subscriptions_of(record.name.as_str())?
            .into_iter()
            .filter(|s| s.status == SubscriptionStatus::Confirmed)
            .map(|s| Delivery {
                protocol: s.protocol,
                endpoint: s.endpoint,
                subscription: s.arn,
            })
            .collect();
        let published = PublishedMessage {
            message_id: MessageId::new(random_id()),
            topic: topic.clone(),
            subject: subject.map(str::to_owned),
            message: message.to_owned(),
            message_attributes: self.message_attributes(),
            published_at: Utc::now(),
            delivered_to,
        };
        self.append(&self.dir("messages"), record.name.as_str(), &published)?;
        Ok(published.message_id)
    }
}

/// When a folder's entries last changed; `None` if it does not exist.
fn folder_modified(dir: &Path) -> Result<Option<SystemTime>, NotifyError> {
    match fs::metadata(dir).and_then(|m| m.modified()) {
        Ok(modified) => Ok(Some(modified)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("stat", dir)(e)),
    }
}

/// The sequence number at the start of a `<seq>-<suffix>.json` file name.
fn sequence_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    name.split('-').next()?.parse().ok()
}

fn to_subscription(record: &SubscriptionRecord) -> Subscription {
    Subscription {
        // Listed like SNS lists them: a pending subscription has no usable ARN yet.
        arn: (record.status == SubscriptionStatus::Confirmed).then(|| record.arn.clone()),
        topic: record.topic.clone(),
        protocol: record.protocol.clone(),
        endpoint: record.endpoint.clone(),
        status: record.status,
    }
}

#[async_trait]
impl Notifier for LocalOutbox {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn create_topic(&self, name: &TopicName) -> Result<TopicArn, NotifyError> {
        let name = name.clone();
        self.blocking(move |s| s.create_topic_sync(&name)).await
    }

    async fn list_topics(&self) -> Result<Vec<TopicArn>, NotifyError> {
        self.blocking(|s| {
            let records: Vec<TopicRecord> = s.read_records(&s.dir("topics"))?;
            Ok(records.into_iter().map(|r| r.arn).collect())
        })
        .await
    }

    async fn list_subscriptions(
        &self,
        topic: Option<&TopicArn>,
    ) -> Result<Vec<Subscription>, NotifyError> {
        let topic = topic.cloned();
        self.blocking(move |s| {
            let records = match &topic {
                Some(topic) => {
                    s.require_topic(topic)?;
                    s.subscriptions_of(topic.name())?
                }
                None => {
                    let topics: Vec<TopicRecord> = s.read_records(&s.dir("topics"))?;
                    let mut all = Vec::new();
                    for t in topics {
                        all.extend(s.subscriptions_of(t.name.as_str())?);
                    }
                    all
                }
            };
            Ok(records.iter().map(to_subscription).collect())
        })
        .await
    }

    async fn publish(
        &self,
        topic: &TopicArn,
        subject: Option<&str>,
        message: &str,
    ) -> Result<MessageId, NotifyError> {
        if let Some(subject) = subject {
            check_subject(topic.as_str(), subject)?;
        }
        check_message(topic.as_str(), message, MAX_MESSAGE_BYTES)?;
        let (topic, subject, message) = (
            topic.clone(),
            subject.map(str::to_owned),
            message.to_owned(),
        );
        self.blocking(move |s| s.publish_sync(&topic, subject.as_deref(), &message))
            .await
    }

    async fn send_sms(&self, phone: &PhoneNumber, message: &str) -> Result<MessageId, NotifyError> {
        check_message(phone.as_str(), message, MAX_SMS_BYTES)?;
        let sms = SentSms {
            message_id: MessageId::new(random_id()),
            phone_number: phone.clone(),
            message: message.to_owned(),
            message_attributes: self.message_attributes(),
            sent_at: Utc::now(),
        };
        self.blocking(move |s| {
            let digits = sms.phone_number.as_str().trim_start_matches('+').to_owned();
            s.append(&s.dir("sms"), &digits, &sms)?;
            Ok(sms.message_id)
        })
        .await
    }
}

#[async_trait]
impl TopicAdmin for LocalOutbox {
    async fn delete_topic(&self, topic: &TopicArn) -> Result<(), NotifyError> {
        let topic = topic.clone();
        self.blocking(move |s| s.delete_topic_sync(&topic)).await
    }

    async fn subscribe(
        &self,
        topic: &TopicArn,
        endpoint: &Endpoint,
    ) -> Result<SubscriptionArn, NotifyError> {
        let (topic, endpoint) = (topic.clone(), endpoint.clone());
        self.blocking(move |s| s.subscribe_sync(&topic, &endpoint))
            .await
    }

    async fn unsubscribe(&self, subscription: &SubscriptionArn) -> Result<(), NotifyError> {
        let subscription = subscription.clone();
        self.blocking(move |s| {
            let Some(path) = s.subscription_path(&subscription) else {
                return Ok(());
            };
            let _guard = s.inner.lock.lock().expect("not poisoned");
            match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(io_err("delete", &path)(e)),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EmailAddress;

    fn name(n: &str) -> TopicName {
        TopicName::new(n).unwrap()
    }

    fn sms(n: &str) -> Endpoint {
        Endpoint::Sms(PhoneNumber::new(n).unwrap())
    }

    fn email(e: &str) -> Endpoint {
        Endpoint::Email(EmailAddress::new(e).unwrap())
    }

    #[tokio::test]
    async fn local_backend_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        crate::conformance::run_all(&outbox, "conformance").await;
    }

    #[tokio::test]
    async fn local_backend_with_pending_emails_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::with_email_confirmation(dir.path(), EmailConfirmation::Pending);
        crate::conformance::run_all(&outbox, "conformance").await;
    }

    #[tokio::test]
    async fn arns_are_shaped_like_aws() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let arn = outbox.create_topic(&name("trash")).await.unwrap();
        assert_eq!(arn.as_str(), "arn:gid:sns:local:000000000000:trash");
        let sub = outbox.subscribe(&arn, &sms("+16195550100")).await.unwrap();
        assert!(
            sub.as_str()
                .starts_with("arn:gid:sns:local:000000000000:trash:"),
            "{sub}"
        );
        assert_eq!(sub.topic(), arn);
    }

    #[tokio::test]
    async fn published_messages_are_readable_files_naming_their_recipients() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let trash = outbox.create_topic(&name("trash")).await.unwrap();
        let streets = outbox.create_topic(&name("streets")).await.unwrap();
        outbox
            .subscribe(&trash, &sms("+16195550100"))
            .await
            .unwrap();
        outbox
            .subscribe(&trash, &email("pat@example.org"))
            .await
            .unwrap();
        outbox
            .subscribe(&streets, &sms("+16195550199"))
            .await
            .unwrap();
        let id = outbox
            .publish(
                &trash,
                Some("Trash alert"),
                "Trash violations count is now 123",
            )
            .await
            .unwrap();
        outbox.publish(&streets, None, "second").await.unwrap();

        let file = dir.path().join("messages/000001-trash.json");
        let json: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(json["message_id"], id.as_str());
        assert_eq!(json["subject"], "Trash alert");
        assert_eq!(json["message"], "Trash violations count is now 123");
        let mut endpoints: Vec<&str> = json["delivered_to"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["endpoint"].as_str().unwrap())
            .collect();
        endpoints.sort();
        assert_eq!(endpoints, ["+16195550100", "pat@example.org"]);
        assert!(dir.path().join("messages/000002-streets.json").is_file());
        assert!(dir.path().join("topics/trash.json").is_file());

        let messages = outbox.messages().await.unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].delivered_to.len(), 1);
        assert!(
            !dir.path().join(".tmp").read_dir().unwrap().any(|_| true),
            "no temp files are left behind"
        );
    }

    #[tokio::test]
    async fn direct_sms_is_recorded_under_sms() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let phone = PhoneNumber::new("+16195550100").unwrap();
        let first = outbox.send_sms(&phone, "hello").await.unwrap();
        let second = outbox.send_sms(&phone, "again").await.unwrap();
        assert_ne!(first, second);
        assert!(dir.path().join("sms/000001-16195550100.json").is_file());
        let sent = outbox.sms_messages().await.unwrap();
        let texts: Vec<&str> = sent.iter().map(|s| s.message.as_str()).collect();
        assert_eq!(texts, ["hello", "again"]);
        assert_eq!(sent[0].message_id, first);
    }

    #[tokio::test]
    async fn messages_and_direct_sms_record_the_sms_attributes_they_carry() {
        let dir = tempfile::tempdir().unwrap();
        let sms = SmsAttributes::new(
            gid_core::SmsType::Transactional,
            Some("SanDiegoGID"),
            Some("+16195550100"),
        )
        .unwrap();
        let outbox = LocalOutbox::new(dir.path()).with_sms_attributes(sms);
        let trash = outbox.create_topic(&name("gid-trash")).await.unwrap();
        outbox.publish(&trash, None, "alert").await.unwrap();
        let phone = PhoneNumber::new("+16195550199").unwrap();
        outbox.send_sms(&phone, "pick up").await.unwrap();
        let expected = serde_json::json!({
            "AWS.SNS.SMS.SMSType": "Transactional",
            "AWS.SNS.SMS.SenderID": "SanDiegoGID",
            "AWS.MM.SMS.OriginationNumber": "+16195550100",
        });
        for file in [
            "messages/000001-gid-trash.json",
            "sms/000001-16195550199.json",
        ] {
            let json: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.path().join(file)).unwrap()).unwrap();
            assert_eq!(json["message_attributes"], expected, "{file}");
        }
        // Without configuration SMS still go out Transactional, never the account's default.
        let plain = LocalOutbox::new(dir.path().join("plain"));
        plain.send_sms(&phone, "pick up").await.unwrap();
        let sent = plain.sms_messages().await.unwrap();
        assert_eq!(
            sent[0].message_attributes,
            BTreeMap::from([("AWS.SNS.SMS.SMSType".to_owned(), "Transactional".to_owned())])
        );
    }

    #[tokio::test]
    async fn pending_email_subscriptions_get_nothing_until_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::with_email_confirmation(dir.path(), EmailConfirmation::Pending);
        let trash = outbox.create_topic(&name("trash")).await.unwrap();
        let arn = outbox
            .subscribe(&trash, &email("pat@example.org"))
            .await
            .unwrap();
        let listed = outbox.list_subscriptions(Some(&trash)).await.unwrap();
        assert_eq!(listed[0].status, SubscriptionStatus::PendingConfirmation);
        assert_eq!(listed[0].arn, None, "listed without an ARN, as SNS does");
        outbox.publish(&trash, None, "before").await.unwrap();
        outbox.confirm_subscription(&arn).await.unwrap();
        outbox.publish(&trash, None, "after").await.unwrap();
        let messages = outbox.messages().await.unwrap();
        assert!(messages[0].delivered_to.is_empty());
        assert_eq!(messages[1].delivered_to.len(), 1);
        let listed = outbox.list_subscriptions(Some(&trash)).await.unwrap();
        assert_eq!(listed[0].arn.as_ref(), Some(&arn));
    }

    #[tokio::test]
    async fn concurrent_publishes_get_distinct_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let trash = outbox.create_topic(&name("trash")).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (outbox, trash) = (outbox.clone(), trash.clone());
            tasks.push(tokio::spawn(async move {
                outbox.publish(&trash, None, &format!("m{i}")).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let files: Vec<PathBuf> = outbox.record_paths(&dir.path().join("messages")).unwrap();
        assert_eq!(files.len(), 16, "{files:?}");
        assert!(files[15].ends_with("000016-trash.json"));
    }

    #[tokio::test]
    async fn a_hand_edited_broken_record_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        outbox.create_topic(&name("trash")).await.unwrap();
        fs::write(dir.path().join("topics/trash.json"), "{oops").unwrap();
        let err = outbox.list_topics().await.unwrap_err();
        assert!(matches!(err, NotifyError::CorruptRecord { .. }), "{err:?}");
        assert!(err.to_string().contains("topics/trash.json"), "{err}");
    }

    #[tokio::test]
    async fn foreign_arns_are_unknown_here() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        outbox.create_topic(&name("trash")).await.unwrap();
        let aws = TopicArn::new("arn:aws:sns:us-east-1:123456789012:trash").unwrap();
        let err = outbox.publish(&aws, None, "x").await.unwrap_err();
        assert!(matches!(err, NotifyError::NoSuchTopic { .. }), "{err:?}");
        outbox.delete_topic(&aws).await.unwrap();
        assert_eq!(outbox.list_topics().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn subscribing_reads_a_topics_records_once_and_again_only_after_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let trash = outbox.create_topic(&name("trash")).await.unwrap();
        let mut arns = Vec::new();
        for i in 0..200 {
            let phone = sms(&format!("+1619555{i:04}"));
            arns.push(outbox.subscribe(&trash, &phone).await.unwrap());
        }
        let again = outbox
            .subscribe(&trash, &sms("+16195550007"))
            .await
            .unwrap();
        assert_eq!(
            again, arns[7],
            "an existing endpoint gets its subscription back"
        );
        let reads = || outbox.inner.index_reads.load(Ordering::Relaxed);
        assert_eq!(
            reads(),
            1,
            "201 subscribes, one read of the topic's records"
        );

        // Another process (here: another outbox on the same folder) subscribes an endpoint:
        // this outbox sees it instead of subscribing it twice.
        let other = LocalOutbox::new(dir.path());
        let theirs = other
            .subscribe(&trash, &email("pat@example.org"))
            .await
            .unwrap();
        let ours = outbox
            .subscribe(&trash, &email("PAT@example.org"))
            .await
            .unwrap();
        assert_eq!(ours, theirs);
        assert_eq!(reads(), 2);
        assert_eq!(
            outbox.list_subscriptions(Some(&trash)).await.unwrap().len(),
            201
        );
    }

    #[tokio::test]
    async fn a_digest_shared_by_two_endpoints_still_finds_the_right_subscription() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = LocalOutbox::new(dir.path());
        let trash = outbox.create_topic(&name("trash")).await.unwrap();
        let first = outbox
            .subscribe(&trash, &sms("+16195550100"))
            .await
            .unwrap();
        let second = outbox
            .subscribe(&trash, &sms("+16195550101"))
            .await
            .unwrap();
        // Pretend the second endpoint's digest collides with the first's.
        let second_key = EndpointKey::of(&sms("+16195550101"));
        {
            let mut indexes = outbox.inner.lock.lock().unwrap();
            let index = indexes.get_mut("trash").unwrap();
            index
                .by_endpoint
                .insert(digest(&second_key), subscription_id(&first).into());
            let found = outbox
                .indexed_subscription(index, "trash", &second_key)
                .unwrap();
            assert_eq!(found.as_ref(), Some(&second));
        }
        let again = outbox
            .subscribe(&trash, &sms("+16195550101"))
            .await
            .unwrap();
        assert_eq!(
            again, second,
            "no second subscription for the same endpoint"
        );
    }
}
