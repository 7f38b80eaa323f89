//! `gid-admin`: the operator's toolbox over the configured backend — buckets, objects,
//! ACLs, public and presigned URLs, and the synthetic sample data for demos and tests.

// A command-line program: stdout carries its answers, stderr its one-line errors.
// (unreachable_pub: site.rs's `pub` items, left to the module split under way.)
#![allow(clippy::print_stdout, clippy::print_stderr, unreachable_pub)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use gid_cli::{init_logging, CommonArgs, MonthArgs, MultiProgress};
use gid_core::{Acl, BucketName, Config, ObjectKey};
use gid_notify::{
    create_gid_topic, find_gid_topic, is_kept, list_gid_topics, prune_topics,
    subscribe_contacts_with_progress, unsubscribe_all, ContactList, Notifier, PhoneNumber,
    Protocol, SubscribeProgress, SubscriptionArn, TopicArn, TopicName, TopicPrefix,
};
use gid_runs::{departments, open_notifier, open_store, topic_prefix, MonthRun, RunOptions};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{
    content_type_for, download_to_file, list_all, ObjectStore, PutOptions, StorageError,
};
use indicatif::{ProgressBar, ProgressStyle};

mod site;

/// Operate gid's buckets and objects on the configured backend.
#[derive(Debug, Parser)]
#[command(name = "gid-admin", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list or delete buckets.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Upload, download, inspect, list or delete objects.
    #[command(subcommand)]
    Object(ObjectCommand),
    /// Read or set an object's canned ACL.
    #[command(subcommand)]
    Acl(AclCommand),
    /// Print an object's public URL (readable only if the object is public).
    Url { bucket: BucketName, key: ObjectKey },
    /// Print a presigned GET URL (on the local backend: a file:// URL, no expiry).
    Presign {
        bucket: BucketName,
        key: ObjectKey,
        /// Lifetime in seconds (1 to 604800).
        #[arg(long, default_value_t = 3600)]
        expires: u64,
    },
    /// gid's SNS topics (named <notify.topic_prefix>NAME): create, list, delete, prune all
    /// but the kept ones. Topics without the prefix are never changed.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Subscribe every contact of contacts.csv to its department's topic (SMS + email), as
    /// [notify.departments] maps it.
    Subscribe {
        /// A local contacts file instead of s3://<staging>/<notify.contacts_key>.
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Subscriptions with protocol, endpoint and status.
    #[command(subcommand)]
    Subscriptions(SubscriptionsCommand),
    /// Remove one subscription by ARN, or all of a topic's (optionally one protocol's).
    Unsubscribe {
        /// The subscription ARN.
        #[arg(conflicts_with = "topic", required_unless_present = "topic")]
        arn: Option<String>,
        #[arg(long)]
        topic: Option<String>,
        /// With --topic: only this protocol (sms, email).
        #[arg(long, requires = "topic")]
        protocol: Option<String>,
    },
    /// Publish a message to a topic.
    Publish {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        subject: Option<String>,
        #[arg(long)]
        message: String,
    },
    /// Send an SMS directly to a phone number.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// The report site: configure the reports bucket for public reads, print its URL.
    #[command(subcommand)]
    Site(site::SiteCommand),
    /// Preflight before the first scheduled run: region, credentials and identity, every
    /// bucket, a probe write and conditional writes in the work bucket, public reads of the
    /// reports bucket, SNS, threshold topics' subscribers, the SMS sandbox (aws); the data
    /// root, folders, outbox and offline engines (local). Exit 0: a run can start (warnings
    /// allowed); 1: something would make it fail; 2: the configuration cannot be used.
    Doctor {
        /// A table for people, or one JSON document ({schema_version, profile, ok, checks}).
        #[arg(long, value_enum, default_value_t = DoctorOutput::Text)]
        output: DoctorOutput,
    },
    /// Per month and stage: the last run's state, counts, and whether inputs changed since.
    Runs {
        #[command(flatten)]
        months: MonthArgs,
    },
    /// Write synthetic exports (with dirty rows) into the requests bucket, the demo
    /// contacts.csv into the staging bucket and, with --images, request photos into the
    /// images bucket. Refuses to overwrite anything unless --force or --if-missing.
    Sample {
        #[command(flatten)]
        months: MonthArgs,
        #[arg(long, default_value_t = SampleSpec::default().files_per_month)]
        files: usize,
        #[arg(long, default_value_t = SampleSpec::default().rows_per_file)]
        rows: usize,
        #[arg(long, default_value_t = SampleSpec::default().seed)]
        seed: u64,
        /// Leave what already exists (a month that has exports, contacts.csv, a photo)
        /// as it is and write only what is missing.
        #[arg(long)]
        if_missing: bool,
        /// Write the sample over what already exists (same-named exports, contacts.csv,
        /// photos). Without --force or --if-missing, sample writes nothing when any of
        /// its targets exists.
        #[arg(long, conflicts_with = "if_missing")]
        force: bool,
        /// Folder of real photos (`make sample-images`) stored in the images bucket under
        /// the requests' image keys (one key in seven is left without a photo).
        #[arg(long, env = "GID_SAMPLE_IMAGES")]
        images: Option<PathBuf>,
    },
}

/// What `gid-admin doctor` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DoctorOutput {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum BucketCommand {
    Create {
        bucket: BucketName,
    },
    List,
    Delete {
        bucket: BucketName,
        /// Empty the bucket first (deletes every object in it).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ObjectCommand {
    /// Upload a file; Content-Type comes from the extension unless given.
    Upload {
        file: PathBuf,
        bucket: BucketName,
        /// Defaults to the file name.
        #[arg(long)]
        key: Option<ObjectKey>,
        #[arg(long, value_parser = parse_acl)]
        acl: Option<Acl>,
        #[arg(long)]
        content_type: Option<String>,
    },
    Download {
        bucket: BucketName,
        key: ObjectKey,
        /// Defaults to the key's file name in the current directory; `-` for stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    Head {
        bucket: BucketName,
        key: ObjectKey,
    },
    List {
        bucket: BucketName,
        #[arg(long, default_value = "")]
        prefix: String,
        /// Stop after this many keys (default: all, across every page).
        #[arg(long)]
        max_keys: Option<usize>,
    },
    Delete {
        bucket: BucketName,
        #[arg(required = true)]
        keys: Vec<ObjectKey>,
    },
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
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
enum SubscriptionsCommand {
    List {
        #[arg(long)]
        topic: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SmsCommand {
    Send {
        #[arg(long)]
        phone: String,
        #[arg(long)]
        message: String,
    },
}

#[derive(Debug, Subcommand)]
enum AclCommand {
    Get {
        bucket: BucketName,
        key: ObjectKey,
    },
    Set {
        bucket: BucketName,
        key: ObjectKey,
        #[arg(long, value_parser = parse_acl)]
        acl: Acl,
    },
}

fn parse_acl(s: &str) -> Result<Acl, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bars = init_logging(&cli.common);
    gid_cli::block_on(async {
        if let Command::Doctor { output } = cli.command {
            return doctor(&cli.common, output).await;
        }
        run(cli, bars).await.map(|()| ExitCode::SUCCESS)
    })
}

/// Exit code of `doctor` when the configuration cannot be used (as the other binaries).
const EXIT_CONFIG: u8 = 2;

/// Runs the preflight before anything else opens a backend: its job is to report what
/// opening would fail on. A configuration that cannot be loaded prints nothing on stdout
/// (never half a document) and exits 2.
async fn doctor(common: &CommonArgs, output: DoctorOutput) -> anyhow::Result<ExitCode> {
    let report = match common.load_config() {
        Ok(config) => gid_runs::doctor::examine(&config).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            gid_cli::report_error(AsRef::<dyn std::error::Error>::as_ref(&e));
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    match output {
        DoctorOutput::Text => print!("{}", report.table()),
        DoctorOutput::Json => println!("{}", report.to_json()),
    }
    Ok(ExitCode::from(report.exit_code()))
}

async fn run(cli: Cli, bars: MultiProgress) -> anyhow::Result<()> {
    let config = cli.common.load_config()?;
    let store_handle = open_store(&config)
        .await
        .context("opening the object store")?;
    let store = store_handle.as_ref();
    match cli.command {
        Command::Doctor { .. } => unreachable!("main runs doctor before opening a backend"),
        Command::Bucket(command) => bucket(store, command).await,
        Command::Object(command) => object(store, command).await,
        Command::Acl(AclCommand::Get { bucket, key }) => {
            println!("{}", store.get_acl(&bucket, &key).await?.as_str());
            Ok(())
        }
        Command::Acl(AclCommand::Set { bucket, key, acl }) => {
            store.put_acl(&bucket, &key, acl).await?;
            println!("s3://{bucket}/{key} is now {}", acl.as_str());
            Ok(())
        }
        Command::Url { bucket, key } => {
            println!("{}", store.public_url(&bucket, &key));
            Ok(())
        }
        Command::Presign {
            bucket,
            key,
            expires,
        } => {
            let url = store
                .presign_get(&bucket, &key, Duration::from_secs(expires))
                .await?;
            println!("{url}");
            Ok(())
        }
        Command::Site(command) => site::site(&config, store, command).await,
        Command::Topic(command) => topic(&config, command).await,
        Command::Subscribe { file } => subscribe(&config, store, file, &bars).await,
        Command::Subscriptions(SubscriptionsCommand::List { topic }) => {
            let notifier = open_notifier(&config).await?;
            let prefix = topic_prefix(&config)?;
            let topic = match topic {
                Some(name) => Some(existing_topic(notifier.as_ref(), &prefix, &name).await?),
                None => None,
            };
            println!(
                "{:<10} {:<6} {:<32} {:<22} subscription",
                "topic", "proto", "endpoint", "status"
            );
            for s in notifier.list_subscriptions(topic.as_ref()).await? {
                // Without --topic every subscription of the account is listed: gid's by
                // short name, the others by their full topic name.
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
        Command::Unsubscribe {
            arn,
            topic,
            protocol,
        } => {
            let notifier = open_notifier(&config).await?;
            if let Some(arn) = arn {
                notifier.unsubscribe(&SubscriptionArn::new(arn)?).await?;
                println!("unsubscribed");
                return Ok(());
            }
            let topic = existing_topic(
                notifier.as_ref(),
                &topic_prefix(&config)?,
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
                eprintln!(
                    "gid: could not unsubscribe {} {}: {reason}",
                    s.protocol.as_str(),
                    s.endpoint
                );
            }
            if report.failed.is_empty() {
                Ok(())
            } else {
                bail!("some subscriptions were not removed")
            }
        }
        Command::Publish {
            topic,
            subject,
            message,
        } => {
            let notifier = open_notifier(&config).await?;
            let arn = existing_topic(notifier.as_ref(), &topic_prefix(&config)?, &topic).await?;
            let id = notifier.publish(&arn, subject.as_deref(), &message).await?;
            println!("published to {arn} (message {id})");
            Ok(())
        }
        Command::Sms(SmsCommand::Send { phone, message }) => {
            let notifier = open_notifier(&config).await?;
            let phone = PhoneNumber::new(&phone)?;
            let id = notifier.send_sms(&phone, &message).await?;
            println!("sent SMS to {phone} (message {id})");
            Ok(())
        }
        Command::Runs { months } => {
            let months = months.resolve(&config, store).await?;
            runs(config.clone(), store_handle.clone(), &months).await
        }
        Command::Sample {
            months,
            files,
            rows,
            seed,
            if_missing,
            force,
            images,
        } => {
            let spec = SampleSpec {
                files_per_month: files,
                rows_per_file: rows,
                dirty: true,
                seed,
            };
            let photos = match images {
                Some(dir) => sample_photos(&dir)?,
                None => Vec::new(),
            };
            let existing = match (force, if_missing) {
                (true, _) => Existing::Overwrite,
                (false, true) => Existing::Keep,
                (false, false) => Existing::Refuse,
            };
            sample(&config, store, &months, &spec, existing, &photos).await
        }
    }
}

/// The URL anonymous readers use: virtual-hosted AWS style, or `endpoint/bucket/key` for
/// a custom endpoint (path style), or a file:// path on the local backend.
async fn bucket(store: &dyn ObjectStore, command: BucketCommand) -> anyhow::Result<()> {
    match command {
        BucketCommand::Create { bucket } => {
            store.create_bucket(&bucket).await?;
            println!("bucket {bucket} ready");
        }
        BucketCommand::List => {
            for b in store.list_buckets().await? {
                let created = b.created.map(|c| c.to_rfc3339()).unwrap_or_default();
                println!("{}\t{created}", b.name);
            }
        }
        BucketCommand::Delete { bucket, force } => {
            if force {
                let keys: Vec<ObjectKey> = list_all(store, &bucket, "")
                    .await?
                    .into_iter()
                    .map(|o| o.key)
                    .collect();
                store.delete_many(&bucket, &keys).await?;
                println!("emptied {bucket}: {} objects deleted", keys.len());
            }
            store.delete_bucket(&bucket).await?;
            println!("bucket {bucket} deleted");
        }
    }
    Ok(())
}

async fn object(store: &dyn ObjectStore, command: ObjectCommand) -> anyhow::Result<()> {
    match command {
        ObjectCommand::Upload {
            file,
            bucket,
            key,
            acl,
            content_type,
        } => {
            let key = match key {
                Some(k) => k,
                None => {
                    let name = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .context("the file name is not UTF-8; pass --key")?;
                    ObjectKey::new(name)?
                }
            };
            let content_type = content_type.unwrap_or_else(|| content_type_for(&key).to_owned());
            let options = PutOptions::new(content_type.clone()).with_acl(acl);
            let written = store.put_file(&bucket, &key, &file, &options).await?;
            println!(
                "uploaded s3://{bucket}/{key} ({content_type}, {} bytes, etag {})",
                written.size, written.etag
            );
        }
        ObjectCommand::Download {
            bucket,
            key,
            output,
        } => {
            match output {
                Some(path) if path.as_os_str() == "-" => {
                    use std::io::Write;
                    let mut body = store.get_stream(&bucket, &key).await?.body;
                    while let Some(chunk) = body.next().await {
                        // Locked per chunk: the lock is not held across the await.
                        let mut stdout = std::io::stdout().lock();
                        stdout
                            .write_all(&chunk?)
                            .and_then(|()| stdout.flush())
                            .context("writing to standard output")?;
                    }
                }
                other => {
                    let path = other.unwrap_or_else(|| PathBuf::from(key.file_name()));
                    let meta = download_to_file(store, &bucket, &key, &path).await?;
                    println!(
                        "downloaded s3://{bucket}/{key} → {} ({} bytes)",
                        path.display(),
                        meta.size
                    );
                }
            }
        }
        ObjectCommand::Head { bucket, key } => {
            let meta = store.head(&bucket, &key).await?;
            println!("key\t{}", meta.key);
            println!("size\t{}", meta.size);
            println!("last_modified\t{}", meta.last_modified.to_rfc3339());
            println!("etag\t{}", meta.etag);
            println!("content_type\t{}", meta.content_type.unwrap_or_default());
            println!("cache_control\t{}", meta.cache_control.unwrap_or_default());
        }
        ObjectCommand::List {
            bucket,
            prefix,
            max_keys,
        } => {
            let mut shown = 0usize;
            let mut continuation = None;
            'pages: loop {
                let page = store
                    .list_page(&bucket, &prefix, continuation, 1000)
                    .await?;
                for o in page.objects {
                    if max_keys.is_some_and(|max| shown >= max) {
                        break 'pages;
                    }
                    println!("{}\t{}\t{}", o.last_modified.to_rfc3339(), o.size, o.key);
                    shown += 1;
                }
                match page.next {
                    Some(token) => continuation = Some(token),
                    None => break,
                }
            }
            eprintln!("{shown} objects");
        }
        ObjectCommand::Delete { bucket, keys } => {
            store.delete_many(&bucket, &keys).await?;
            println!("deleted {} keys from {bucket}", keys.len());
        }
    }
    Ok(())
}

/// gid's topic of that short name (`trash` → SNS topic `gid-trash`), which must exist.
async fn existing_topic(
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

async fn topic(config: &Config, command: TopicCommand) -> anyhow::Result<()> {
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
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Subscribe's progress: a bar on a terminal; elsewhere (a scheduler's log, a pipe) an INFO
/// line at most every [`PROGRESS_LOG_INTERVAL`], and one when the last endpoint is done.
enum SubscribeDisplay {
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

async fn subscribe(
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

async fn runs(
    config: Config,
    store: std::sync::Arc<dyn ObjectStore>,
    months: &[gid_core::Month],
) -> anyhow::Result<()> {
    let notifier = open_notifier(&config).await?;
    let run = MonthRun::new(config, store, notifier, RunOptions::default());
    println!(
        "{:<8} {:<9} {:<10} {:<20} {:>9} {:>11}  inputs",
        "month", "stage", "state", "finished (UTC)", "rows", "quarantined"
    );
    for month in months {
        for status in run.status(*month).await? {
            let Some(last) = &status.last else {
                println!(
                    "{:<8} {:<9} {:<10}",
                    month.to_string(),
                    status.stage.as_str(),
                    "never run"
                );
                continue;
            };
            let finished = last
                .finished_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into());
            let count = |v: Option<u64>| v.map_or("-".to_owned(), |n| n.to_string());
            let inputs = match status.inputs_changed {
                Some(true) => "changed since (would run)",
                Some(false) => "unchanged",
                None => "-",
            };
            println!(
                "{:<8} {:<9} {:<10} {:<20} {:>9} {:>11}  {inputs}",
                month.to_string(),
                status.stage.as_str(),
                last.observed_state().to_string(),
                finished,
                count(last.rows),
                count(last.quarantined)
            );
        }
    }
    Ok(())
}

/// The sample photos of a folder, by file name (PNG and JPEG), in name order.
fn sample_photos(dir: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut photos = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "reading sample photos from {} (run `make sample-images`)",
            dir.display()
        )
    })?;
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name.ends_with(".png") || name.ends_with(".jpg") {
            photos.push((name, std::fs::read(&path)?));
        }
    }
    photos.sort();
    if photos.is_empty() {
        bail!(
            "no .png or .jpg photos in {} (run `make sample-images`)",
            dir.display()
        );
    }
    Ok(photos)
}

/// What `gid-admin sample` does with targets that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// Write nothing at all and name them (the default: they may be an operator's data).
    Refuse,
    /// Leave them; write only what is missing (`--if-missing`).
    Keep,
    /// Write over them (`--force`).
    Overwrite,
}

/// Existing targets named in a refusal; the rest are counted.
const REFUSAL_NAMES: usize = 5;

/// The keys under `prefix` of `bucket`; none when the bucket does not exist yet.
async fn existing_keys(
    store: &dyn ObjectStore,
    bucket: &BucketName,
    prefix: &str,
) -> anyhow::Result<BTreeSet<ObjectKey>> {
    match list_all(store, bucket, prefix).await {
        Ok(objects) => Ok(objects.into_iter().map(|o| o.key).collect()),
        Err(StorageError::NoSuchBucket { .. }) => Ok(BTreeSet::new()),
        Err(e) => Err(e.into()),
    }
}

/// One month of the sample, with what already exists where it would go.
struct MonthPlan {
    month: gid_core::Month,
    prefix: String,
    sample: gid_sample::SampleMonth,
    /// Objects already under the month's prefix of the requests bucket (any name: sample
    /// parts written next to real exports would be counted in the month's reports).
    exports: Vec<ObjectKey>,
    /// The photos this month would store, by image key, with the photo's index.
    photos: Vec<(ObjectKey, usize)>,
    existing_photos: BTreeSet<ObjectKey>,
}

async fn sample(
    config: &Config,
    store: &dyn ObjectStore,
    months: &MonthArgs,
    spec: &SampleSpec,
    existing: Existing,
    photos: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let bucket = &config.buckets.requests;
    let staging = &config.buckets.staging;
    let images = &config.buckets.images;
    let layout = config.layout()?;
    if spec.files_per_month < 3 {
        bail!("--files must be at least 3 (clean, drifted and dirty parts)");
    }
    let contacts = ObjectKey::new(config.notify.contacts_key.clone())?;

    // Look before writing anything: with neither flag, one existing target stops it all.
    let contacts_exist = match store.head(staging, &contacts).await {
        Ok(_) => true,
        Err(StorageError::NoSuchKey { .. } | StorageError::NoSuchBucket { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    let mut plans = Vec::new();
    for month in months.months(config)? {
        let prefix = layout.month_prefix(month);
        let sample = generate_month(month, spec);
        let exports = existing_keys(store, bucket, &prefix)
            .await?
            .into_iter()
            .collect();
        let mut month_photos = Vec::new();
        let mut photo_folders = BTreeSet::new();
        for key in &sample.truth.images {
            if let Some(i) = gid_sample::photo_for(key, photos.len()) {
                let key = ObjectKey::new(key.clone())?;
                let folder = key.as_str().rsplit_once('/').map_or("", |(f, _)| f);
                photo_folders.insert(format!("{folder}/"));
                month_photos.push((key, i));
            }
        }
        let mut existing_photos = BTreeSet::new();
        for folder in &photo_folders {
            existing_photos.extend(existing_keys(store, images, folder).await?);
        }
        existing_photos.retain(|k| month_photos.iter().any(|(p, _)| p == k));
        plans.push(MonthPlan {
            month,
            prefix,
            sample,
            exports,
            photos: month_photos,
            existing_photos,
        });
    }
    if existing == Existing::Refuse {
        let mut found: Vec<String> = Vec::new();
        if contacts_exist {
            found.push(format!("s3://{staging}/{contacts}"));
        }
        for plan in &plans {
            found.extend(plan.exports.iter().map(|k| format!("s3://{bucket}/{k}")));
            found.extend(
                plan.existing_photos
                    .iter()
                    .map(|k| format!("s3://{images}/{k}")),
            );
        }
        if !found.is_empty() {
            let more = found.len().saturating_sub(REFUSAL_NAMES);
            let mut named = found[..found.len().min(REFUSAL_NAMES)].join(", ");
            if more > 0 {
                named.push_str(&format!(" and {more} more"));
            }
            bail!(
                "sample wrote nothing: {} of its targets already exist ({named}); \
                 --force overwrites them, --if-missing leaves them and writes only what is missing",
                found.len()
            );
        }
    }

    let csv = PutOptions::new("text/csv; charset=utf-8");
    store.create_bucket(staging).await?;
    if contacts_exist && existing == Existing::Keep {
        println!("contacts: s3://{staging}/{contacts} already exists, left as it is");
    } else {
        store
            .put(
                staging,
                &contacts,
                Bytes::from_static(gid_sample::CONTACTS_CSV.as_bytes()),
                &csv,
            )
            .await?;
        let verb = if contacts_exist { "overwrote" } else { "wrote" };
        println!("contacts: {verb} s3://{staging}/{contacts}");
    }
    store.create_bucket(bucket).await?;
    if !photos.is_empty() {
        store.create_bucket(images).await?;
    }
    for plan in &plans {
        let month = plan.month;
        let prefix = &plan.prefix;
        if existing == Existing::Keep && !plan.exports.is_empty() {
            println!(
                "{month}: {} exports already under s3://{bucket}/{prefix}, left as they are",
                plan.exports.len()
            );
            continue;
        }
        let sample = &plan.sample;
        let mut replaced = 0;
        for file in &sample.files {
            let key = layout.month_key(month, &file.name);
            replaced += usize::from(plan.exports.contains(&key));
            store
                .put(bucket, &key, Bytes::from(file.bytes.clone()), &csv)
                .await?;
        }
        let (mut stored, mut kept) = (0, 0);
        for (key, i) in &plan.photos {
            if existing == Existing::Keep && plan.existing_photos.contains(key) {
                kept += 1;
                continue;
            }
            let (name, bytes) = &photos[*i];
            store
                .put(
                    images,
                    key,
                    Bytes::from(bytes.clone()),
                    &PutOptions::new(content_type_for(key)),
                )
                .await
                .with_context(|| format!("storing sample photo {name}"))?;
            stored += 1;
        }
        let replaced = match replaced {
            0 => String::new(),
            n => format!(" ({n} replaced)"),
        };
        let kept = match kept {
            0 => String::new(),
            n => format!(", {n} already there left as they are"),
        };
        println!(
            "{month}: {} files{replaced}, {} good rows, {} dirty rows → s3://{bucket}/{prefix}; {stored} of {} request photos stored{kept}",
            sample.files.len(),
            sample.truth.total_rows,
            sample.truth.dirty.len(),
            sample.truth.images.len()
        );
    }
    Ok(())
}
