//! Topics, subscriptions, direct SMS and `subscribe` from the contacts list.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;
use gid_cli::MultiProgress;
use gid_core::{Config, ObjectKey};
use gid_notify::{
    create_gid_topic, find_gid_topic, is_kept, list_gid_topics, prune_topics,
    subscribe_contacts_with_progress, unsubscribe_all, ContactList, Notifier, PhoneNumber,
    Protocol, SubscribeProgress, SubscriptionArn, TopicArn, TopicName, TopicPrefix,
};
use gid_runs::{departments, open_notifier, topic_prefix};
use gid_storage::ObjectStore;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Subcommand)]
pub(crate) enum TopicCommand {
    Create {
        name: String,
    },
    List,
    Delete {
        name: String,
    },
    /// Delete gid's topics (those with notify.topic_prefix) except the kept ones (default:
    /// notify.keep_topics). Other topics of the account are never touched.
    Prune {
        #[arg(long, value_delimiter = ',')]
        keep: Vec<String>,
        /// Required: this deletes every other topic of gid's.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SubscriptionsCommand {
    List {
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SmsCommand {
    Send {
        #[arg(long)]
        phone: String,
        #[arg(long)]
        message: String,
    },
}

/// gid's topic of that short name (`trash` → SNS topic `gid-trash`), which must exist.
pub(crate) async fn existing_topic(
    notifier: &dyn Notifier,
    prefix: &TopicPrefix,
    name: &str,
) -> anyhow::Result<TopicArn> {
    let name = TopicName::new(name)?;
    find_gid_topic(notifier, prefix, &name).await?.with_context(|| {
        format!(
            "topic {name} (SNS topic {prefix}{name}) does not exist: create it with `gid-admin topic create {name}`"
        )
    })
}

pub(crate) async fn topic(config: &Config, command: TopicCommand) -> anyhow::Result<()> {
    let notifier = open_notifier(config).await?;
    let notifier = notifier.as_ref();
    let prefix = topic_prefix(config)?;
    match command {
        TopicCommand::Create { name } => {
            let arn = create_gid_topic(notifier, &prefix, &TopicName::new(name)?).await?;
            println!("{arn}");
        }
        TopicCommand::List => {
            let listing = list_gid_topics(notifier, &prefix).await?;
            for topic in &listing.gid {
                println!("{:<20} {}", topic.name.as_str(), topic.arn);
            }
            if listing.others > 0 {
                println!(
                    "({} other topics in the account without the prefix {prefix}: not gid's, not shown)",
                    listing.others
                );
            }
        }
        TopicCommand::Delete { name } => {
            let arn = existing_topic(notifier, &prefix, &name).await?;
            notifier.delete_topic(&arn).await?;
            println!("deleted {arn}");
        }
        TopicCommand::Prune { keep, yes } => {
            let keep = if keep.is_empty() {
                config.notify.keep_topics.clone()
            } else {
                keep
            };
            let keep = keep
                .into_iter()
                .map(TopicName::new)
                .collect::<Result<Vec<_>, _>>()?;
            if !yes {
                let doomed: Vec<String> = list_gid_topics(notifier, &prefix)
                    .await?
                    .gid
                    .into_iter()
                    .filter(|t| !is_kept(&keep, &t.name, &t.arn))
                    .map(|t| t.arn.to_string())
                    .collect();
                bail!(
                    "would delete {} of gid's topics ({}); rerun with --yes to delete them (topics without the prefix {prefix} are never deleted)",
                    doomed.len(),
                    doomed.join(", ")
                );
            }
            let report = prune_topics(notifier, &prefix, &keep).await?;
            println!(
                "deleted {}, kept {}, left alone {} topics without the prefix {prefix}",
                report.deleted.len(),
                report.kept.len(),
                report.others
            );
            for (topic, reason) in &report.failed {
                eprintln!("gid: could not delete {topic}: {reason}");
            }
            if !report.failed.is_empty() {
                bail!("{} topics were not deleted", report.failed.len());
            }
        }
    }
    Ok(())
}

/// How often, off a terminal, subscribe logs how far it has got.
pub(crate) const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Subscribe's progress: a bar on a terminal; elsewhere (a scheduler's log, a pipe) an INFO
/// line at most every [`PROGRESS_LOG_INTERVAL`], and one when the last endpoint is done.
pub(crate) enum SubscribeDisplay {
    Bar(ProgressBar),
    Log { last: Mutex<Instant> },
}

impl SubscribeDisplay {
    fn new(bars: &MultiProgress, total: usize) -> Self {
        if bars.is_hidden() {
            return Self::Log {
                last: Mutex::new(Instant::now()),
            };
        }
        let bar = bars.add(ProgressBar::new(total as u64));
        bar.set_style(
            ProgressStyle::with_template(
                "subscribing [{bar:30}] {human_pos}/{human_len} endpoints, {elapsed} elapsed, eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Self::Bar(bar)
    }

    fn update(&self, progress: SubscribeProgress) {
        match self {
            Self::Bar(bar) => bar.set_position(progress.done as u64),
            Self::Log { last } => {
                let mut last = last.lock().expect("not poisoned");
                if progress.done == progress.total || last.elapsed() >= PROGRESS_LOG_INTERVAL {
                    *last = Instant::now();
                    tracing::info!(
                        "subscribed {} of {} endpoints",
                        progress.done,
                        progress.total
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

pub(crate) async fn subscribe(
    config: &Config,
    store: &dyn ObjectStore,
    file: Option<PathBuf>,
    bars: &MultiProgress,
) -> anyhow::Result<()> {
    let (source, bytes) = match file {
        Some(path) => (
            path.display().to_string(),
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => {
            let key = ObjectKey::new(config.notify.contacts_key.clone())?;
            let bucket = &config.buckets.staging;
            let object = store
                .get(bucket, &key)
                .await
                .context("reading the contacts list")?;
            (format!("s3://{bucket}/{key}"), object.body.to_vec())
        }
    };
    let table = departments(config)?;
    let contacts = ContactList::parse(&source, &bytes, &table)?;
    drop(bytes);
    for rejected in &contacts.rejected {
        eprintln!(
            "gid: {source} line {}: {} → contact skipped",
            rejected.line, rejected.reason
        );
    }
    for duplicate in &contacts.duplicates {
        eprintln!(
            "gid: {source} line {}: {} already listed for {} on line {} → not subscribed twice",
            duplicate.line, duplicate.endpoint, duplicate.topic, duplicate.first_line
        );
    }
    let thresholds = gid_runs::thresholds(config)?;
    for note in contacts.department_notes(thresholds.iter().map(|t| &t.topic)) {
        eprintln!("gid: {source}: {note}");
    }
    let notifier = open_notifier(config).await?;
    let prefix = topic_prefix(config)?;
    let total = contacts.endpoint_count();
    tracing::info!(
        "subscribing {total} endpoints of {} contacts",
        contacts.contacts.len()
    );
    let display = SubscribeDisplay::new(bars, total);
    let report = subscribe_contacts_with_progress(notifier.as_ref(), &prefix, &contacts, &|p| {
        display.update(p)
    })
    .await;
    display.finish();
    for failed in &report.failed {
        eprintln!(
            "gid: {source} line {}: could not subscribe {} to {}: {}",
            failed.line,
            failed.endpoint.address(),
            failed.topic,
            failed.reason
        );
    }
    println!(
        "{} contacts → {} topics: {} subscribed, {} already subscribed, {} rejected rows, {} failed",
        contacts.contacts.len(),
        report.topics.len(),
        report.subscribed.len(),
        report.already_subscribed.len(),
        contacts.rejected.len(),
        report.failed.len()
    );
    if report.failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} subscriptions failed; rerun to retry (existing ones are not duplicated)",
            report.failed.len()
        )
    }
}

/// `subscriptions list [--topic NAME]`: gid's topics by short name, others by full name.
pub(crate) async fn list_subscriptions(
    config: &Config,
    topic: Option<String>,
) -> anyhow::Result<()> {
    let notifier = open_notifier(config).await?;
    let prefix = topic_prefix(config)?;
    let topic = match topic {
        Some(name) => Some(existing_topic(notifier.as_ref(), &prefix, &name).await?),
        None => None,
    };
    println!(
        "{:<10} {:<6} {:<32} {:<22} subscription",
        "topic", "proto", "endpoint", "status"
    );
    for s in notifier.list_subscriptions(topic.as_ref()).await? {
        // Without --topic every subscription of the account is listed: gid's by short
        // name, the others by their full topic name.
        let topic = prefix
            .short_name(&s.topic)
            .map_or_else(|| s.topic.name().to_owned(), |n| n.to_string());
        println!(
            "{:<10} {:<6} {:<32} {:<22} {}",
            topic,
            s.protocol.as_str(),
            s.endpoint,
            s.status.to_string(),
            s.arn
                .map(|a| a.to_string())
                .unwrap_or_else(|| "(pending confirmation)".into())
        );
    }
    Ok(())
}

/// `unsubscribe ARN`, or every subscription of `--topic` (of `--protocol`).
pub(crate) async fn unsubscribe(
    config: &Config,
    arn: Option<String>,
    topic: Option<String>,
    protocol: Option<String>,
) -> anyhow::Result<()> {
    let notifier = open_notifier(config).await?;
    if let Some(arn) = arn {
        notifier.unsubscribe(&SubscriptionArn::new(arn)?).await?;
        println!("unsubscribed");
        return Ok(());
    }
    let topic = existing_topic(
        notifier.as_ref(),
        &topic_prefix(config)?,
        &topic.expect("clap requires it"),
    )
    .await?;
    let protocol = protocol.map(|p| Protocol::from(p.as_str()));
    let report = unsubscribe_all(notifier.as_ref(), &topic, protocol).await?;
    println!(
        "removed {}, pending confirmation (cannot be removed) {}, failed {}",
        report.removed.len(),
        report.pending.len(),
        report.failed.len()
    );
    for (s, reason) in &report.failed {
        gid_cli::report_line(&format!(
            "could not unsubscribe {} {}: {reason}",
            s.protocol.as_str(),
            s.endpoint
        ));
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        bail!("some subscriptions were not removed")
    }
}

/// `publish --topic NAME [--subject S] MESSAGE`.
pub(crate) async fn publish(
    config: &Config,
    topic: &str,
    subject: Option<&str>,
    message: &str,
) -> anyhow::Result<()> {
    let notifier = open_notifier(config).await?;
    let arn = existing_topic(notifier.as_ref(), &topic_prefix(config)?, topic).await?;
    let id = notifier.publish(&arn, subject, message).await?;
    println!("published to {arn} (message {id})");
    Ok(())
}

/// `sms send PHONE MESSAGE`, with the configured SMS attributes.
pub(crate) async fn send_sms(config: &Config, phone: &str, message: &str) -> anyhow::Result<()> {
    let notifier = open_notifier(config).await?;
    let phone = PhoneNumber::new(phone)?;
    let id = notifier.send_sms(&phone, message).await?;
    println!("sent SMS to {phone} (message {id})");
    Ok(())
}
