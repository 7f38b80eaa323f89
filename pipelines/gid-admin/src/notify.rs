//! Topics, subscriptions, direct SMS and `subscribe`: the contacts list (from the staging
//! bucket, a local file or an https:// URL) or one endpoint.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{ArgGroup, Args, Subcommand};
use gid_cli::MultiProgress;
use gid_core::{Config, ObjectKey};
use gid_notify::{
    create_gid_topic, find_gid_topic, is_kept, list_gid_topics, prune_topics,
    subscribe_contacts_with_progress, subscribe_endpoint, unsubscribe_all, ContactList,
    EmailAddress, Endpoint, EndpointChange, PhoneNumber, Protocol, SubscribeProgress,
    SubscriptionArn, TopicAdmin, TopicArn, TopicName, TopicPrefix,
};
use gid_runs::{departments, open_notifier, topic_prefix};
use gid_storage::ObjectStore;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::download::SourceUrl;
use crate::engines::Output;

#[derive(Debug, Subcommand)]
pub(crate) enum TopicCommand {
    Create {
        name: String,
    },
    List,
    /// Delete one topic with its subscriptions: gid's by short name (trash is SNS topic
    /// gid-trash), or any by ARN. A topic without notify.topic_prefix is someone else's in a
    /// shared account: deleting one by ARN needs --force.
    Delete {
        #[arg(value_name = "NAME|ARN")]
        topic: String,
        /// Delete a topic whose name lacks the prefix (by ARN), e.g. one from before it.
        #[arg(long)]
        force: bool,
        /// Say what would be deleted (and how many subscriptions); delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
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
    notifier: &dyn TopicAdmin,
    prefix: &TopicPrefix,
    name: &str,
) -> anyhow::Result<TopicArn> {
    let name = TopicName::new(name)?;
    find_gid_topic(notifier, prefix, &name).await?.with_context(|| {
        // `gid-trash` for `trash` is an easy slip: the prefix is added by gid.
        let hint = name
            .as_str()
            .strip_prefix(prefix.as_str())
            .filter(|short| !short.is_empty())
            .map(|short| format!(" (names are short, without the prefix {prefix}: did you mean {short}?)"))
            .unwrap_or_default();
        format!(
            "topic {name} (SNS topic {prefix}{name}) does not exist{hint}: list gid's topics with `gid-admin topic list`, or create it with `gid-admin topic create {name}`"
        )
    })
}

/// `topic delete NAME|ARN`: the topic to delete, checked against the shared-account rule.
async fn topic_to_delete(
    notifier: &dyn TopicAdmin,
    prefix: &TopicPrefix,
    given: &str,
    force: bool,
) -> anyhow::Result<(Option<TopicName>, TopicArn)> {
    if !given.starts_with("arn:") {
        let arn = existing_topic(notifier, prefix, given).await?;
        return Ok((prefix.short_name(&arn), arn));
    }
    let arn = TopicArn::new(given)?;
    let short = prefix.short_name(&arn);
    if short.is_none() && !force {
        bail!(
            "topic {arn} is not gid's: its name {} lacks the prefix {prefix} (notify.topic_prefix), and in a shared account such a topic belongs to someone else; nothing deleted (add --force to delete it anyway, e.g. a topic of gid's from before the prefix)",
            arn.name()
        );
    }
    // SNS deletes a missing topic without complaint; a typo deserves better.
    if !notifier.list_topics().await?.contains(&arn) {
        bail!("topic {arn} does not exist: list gid's topics with `gid-admin topic list`");
    }
    Ok((short, arn))
}

pub(crate) async fn topic(config: &Config, command: TopicCommand) -> anyhow::Result<()> {
    let notifier = open_notifier(config).await?;
    let notifier = notifier.as_ref();
    let prefix = topic_prefix(config)?;
    match command {
        TopicCommand::Create { name } => {
            let arn = create_gid_topic(notifier, &prefix, &TopicName::new(name)?).await?;
            gid_cli::outln!("{arn}");
        }
        TopicCommand::List => {
            let listing = list_gid_topics(notifier, &prefix).await?;
            for topic in &listing.gid {
                gid_cli::outln!("{:<20} {}", topic.name.as_str(), topic.arn);
            }
            if listing.others > 0 {
                gid_cli::outln!(
                    "({} other topics in the account without the prefix {prefix}: not gid's, not shown)",
                    listing.others
                );
            }
        }
        TopicCommand::Delete {
            topic,
            force,
            dry_run,
            output,
        } => {
            let (short, arn) = topic_to_delete(notifier, &prefix, &topic, force).await?;
            let subscriptions = notifier.list_subscriptions(Some(&arn)).await?.len();
            if !dry_run {
                notifier.delete_topic(&arn).await?;
            }
            match output {
                Output::Text => gid_cli::outln!(
                    "{} {arn} with its {subscriptions} subscriptions",
                    if dry_run { "would delete" } else { "deleted" }
                ),
                Output::Json => gid_cli::outln!(
                    "{:#}",
                    json!({
                        "profile": config.profile.as_str(),
                        "topic": short.as_ref().map(TopicName::as_str),
                        "topic_arn": arn,
                        "subscriptions": subscriptions,
                        "dry_run": dry_run,
                        "deleted": !dry_run,
                    })
                ),
            }
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
            gid_cli::outln!(
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

/// Where `subscribe --file` reads the contacts list.
#[derive(Debug, Clone)]
pub(crate) enum ContactsSource {
    File(PathBuf),
    /// An https:// URL, e.g. a presigned S3 URL.
    Url(SourceUrl),
}

impl std::str::FromStr for ContactsSource {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if SourceUrl::looks_like_url(value) {
            SourceUrl::parse(value).map(Self::Url)
        } else {
            Ok(Self::File(PathBuf::from(value)))
        }
    }
}

/// Parses `--file` with an error of its own: clap's usual "invalid value '…'" would print
/// a presigned URL whole, signature included.
#[derive(Debug, Clone, Copy)]
struct ContactsSourceParser;

impl clap::builder::TypedValueParser for ContactsSourceParser {
    type Value = ContactsSource;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ContactsSource, clap::Error> {
        let refuse = |message: String| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, message).with_cmd(cmd)
        };
        match value.to_str() {
            Some(text) => text
                .parse()
                .map_err(|why: String| refuse(format!("--file {why}\n"))),
            // Not UTF-8: not a URL, so a path (OsStr paths need not be UTF-8).
            None => Ok(ContactsSource::File(PathBuf::from(value))),
        }
    }
}

/// `subscribe`: every contact of the contacts list, or one endpoint with `--topic`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("endpoint").args(["sms", "email"]).requires("topic")))]
pub(crate) struct SubscribeArgs {
    /// The contacts list: a local file, or an https:// URL (e.g. a presigned URL), instead
    /// of s3://<buckets.staging>/<notify.contacts_key>.
    #[arg(long, value_name = "PATH|URL", conflicts_with = "topic", value_parser = ContactsSourceParser)]
    file: Option<ContactsSource>,
    /// Subscribe one endpoint (--sms or --email) to this topic instead (short name: trash
    /// is SNS topic gid-trash; created when missing).
    #[arg(long, requires = "endpoint")]
    topic: Option<String>,
    /// With --topic: a phone number in E.164, e.g. +16195550100.
    #[arg(long)]
    sms: Option<String>,
    /// With --topic: an email address.
    #[arg(long)]
    email: Option<String>,
    /// With --topic: say what would be created and subscribed; change nothing.
    #[arg(long, requires = "topic")]
    dry_run: bool,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

pub(crate) async fn subscribe(
    config: &Config,
    store: &dyn ObjectStore,
    args: SubscribeArgs,
    bars: &MultiProgress,
) -> anyhow::Result<()> {
    match args.topic {
        Some(topic) => {
            let endpoint = match (args.sms, args.email) {
                (Some(phone), _) => Endpoint::Sms(
                    PhoneNumber::new(&phone)
                        .map_err(|e| anyhow!("--sms: {e}; nothing subscribed"))?,
                ),
                (None, Some(email)) => Endpoint::Email(
                    EmailAddress::new(&email)
                        .map_err(|e| anyhow!("--email: {e}; nothing subscribed"))?,
                ),
                (None, None) => unreachable!("clap requires --sms or --email with --topic"),
            };
            subscribe_one(config, &topic, &endpoint, args.dry_run, args.output).await
        }
        None => subscribe_list(config, store, args.file, args.output, bars).await,
    }
}

/// `subscribe --topic T --sms …|--email …`: one endpoint, validated as a contacts row is.
async fn subscribe_one(
    config: &Config,
    topic: &str,
    endpoint: &Endpoint,
    dry_run: bool,
    output: Output,
) -> anyhow::Result<()> {
    let short = TopicName::new(topic).map_err(|e| anyhow!("--topic: {e}"))?;
    let notifier = open_notifier(config).await?;
    let prefix = topic_prefix(config)?;
    let done = subscribe_endpoint(notifier.as_ref(), &prefix, &short, endpoint, dry_run)
        .await
        .with_context(|| format!("subscribing {endpoint} to topic {short}"))?;
    let status = done.status.map(|s| s.to_string());
    match output {
        Output::Text => {
            let sns = &done.topic;
            let line = match done.change {
                EndpointChange::Subscribed => format!(
                    "subscribed {endpoint} to {short} (SNS topic {sns}{}): {}",
                    if done.topic_created { ", created" } else { "" },
                    status.as_deref().unwrap_or("status unknown")
                ),
                EndpointChange::AlreadySubscribed => format!(
                    "{endpoint} is already subscribed to {short} (SNS topic {sns}, {}): nothing changed",
                    status.as_deref().unwrap_or("status unknown")
                ),
                EndpointChange::WouldSubscribe if done.topic_created => format!(
                    "would create topic {short} (SNS topic {sns}) and subscribe {endpoint} to it"
                ),
                EndpointChange::WouldSubscribe => {
                    format!("would subscribe {endpoint} to {short} (SNS topic {sns})")
                }
            };
            gid_cli::outln!("{line}");
        }
        Output::Json => gid_cli::outln!(
            "{:#}",
            json!({
                "profile": config.profile.as_str(),
                "topic": short.as_str(),
                "sns_topic": done.topic.as_str(),
                "topic_arn": done.topic_arn,
                "topic_created": done.topic_created,
                "protocol": endpoint.protocol().as_str(),
                "endpoint": endpoint.address(),
                "result": match done.change {
                    EndpointChange::Subscribed => "subscribed",
                    EndpointChange::AlreadySubscribed => "already_subscribed",
                    EndpointChange::WouldSubscribe => "would_subscribe",
                },
                "dry_run": dry_run,
                "subscription_arn": done.subscription,
                "status": status,
            })
        ),
    }
    Ok(())
}

/// The contacts list's name for messages and its bytes.
async fn read_contacts(
    config: &Config,
    store: &dyn ObjectStore,
    file: Option<ContactsSource>,
) -> anyhow::Result<(String, Vec<u8>)> {
    Ok(match file {
        Some(ContactsSource::File(path)) => (
            path.display().to_string(),
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
        ),
        Some(ContactsSource::Url(url)) => {
            let bytes = url.fetch().await?;
            (url.to_string(), bytes.to_vec())
        }
        None => {
            let key = ObjectKey::new(config.notify.contacts_key.clone())?;
            let bucket = &config.buckets.staging;
            let object = store
                .get(bucket, &key)
                .await
                .context("reading the contacts list")?;
            (format!("s3://{bucket}/{key}"), object.body.to_vec())
        }
    })
}

/// `subscribe [--file PATH|URL]`: every contact of the list to its department's topic.
async fn subscribe_list(
    config: &Config,
    store: &dyn ObjectStore,
    file: Option<ContactsSource>,
    output: Output,
    bars: &MultiProgress,
) -> anyhow::Result<()> {
    let (source, bytes) = read_contacts(config, store, file).await?;
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
    match output {
        Output::Text => gid_cli::outln!(
            "{} contacts → {} topics: {} subscribed, {} already subscribed, {} rejected rows, {} failed",
            contacts.contacts.len(),
            report.topics.len(),
            report.subscribed.len(),
            report.already_subscribed.len(),
            contacts.rejected.len(),
            report.failed.len()
        ),
        Output::Json => gid_cli::outln!(
            "{:#}",
            json!({
                "profile": config.profile.as_str(),
                "source": source,
                "contacts": contacts.contacts.len(),
                "topics": report.topics,
                "subscribed": report.subscribed.len(),
                "already_subscribed": report.already_subscribed.len(),
                "rejected_rows": contacts.rejected.iter().map(|r| json!({"line": r.line, "reason": r.reason.to_string()})).collect::<Vec<_>>(),
                "failed": report.failed.len(),
            })
        ),
    }
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
    gid_cli::outln!(
        "{:<10} {:<6} {:<32} {:<22} subscription",
        "topic",
        "proto",
        "endpoint",
        "status"
    );
    for s in notifier.list_subscriptions(topic.as_ref()).await? {
        // Without --topic every subscription of the account is listed: gid's by short
        // name, the others by their full topic name.
        let topic = prefix
            .short_name(&s.topic)
            .map_or_else(|| s.topic.name().to_owned(), |n| n.to_string());
        gid_cli::outln!(
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
        gid_cli::outln!("unsubscribed");
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
    gid_cli::outln!(
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
    gid_cli::outln!("published to {arn} (message {id})");
    Ok(())
}

/// `sms send PHONE MESSAGE`, with the configured SMS attributes.
pub(crate) async fn send_sms(config: &Config, phone: &str, message: &str) -> anyhow::Result<()> {
    let notifier = open_notifier(config).await?;
    let phone = PhoneNumber::new(phone)?;
    let id = notifier.send_sms(&phone, message).await?;
    gid_cli::outln!("sent SMS to {phone} (message {id})");
    Ok(())
}
