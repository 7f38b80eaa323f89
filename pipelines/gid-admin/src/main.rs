//! `gid-admin`: the operator's toolbox over the configured backend — buckets, objects,
//! ACLs, public and presigned URLs, and the synthetic sample data for demos and tests.

// A command-line program: stdout carries its answers, stderr its one-line errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use gid_cli::{init_logging, CommonArgs, MonthArgs, MultiProgress};
use gid_core::{BucketName, ObjectKey};
use gid_runs::open_store;
use gid_sample::SampleSpec;

mod doctor;
mod download;
mod engines;
mod notify;
mod runs;
mod sample;
mod site;
mod storage;

use doctor::{doctor, DoctorOutput};
use notify::{subscribe, topic, SmsCommand, SubscriptionsCommand, TopicCommand};
use runs::runs;
use sample::{sample, sample_photos, Existing};
use storage::{bucket, object, AclCommand, BucketCommand, ObjectCommand};

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
    /// [notify.departments] maps it; or one endpoint to one topic (--topic with --sms or
    /// --email). Endpoints already subscribed are left alone.
    Subscribe(notify::SubscribeArgs),
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
    #[command(flatten)]
    Engine(engines::EngineCommand),
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
        Command::Acl(command) => storage::acl(store, command).await,
        Command::Url { bucket, key } => {
            gid_cli::outln!("{}", store.public_url(&bucket, &key));
            Ok(())
        }
        Command::Presign {
            bucket,
            key,
            expires,
        } => storage::presign(store, &bucket, &key, expires).await,
        Command::Site(command) => site::site(&config, store, command).await,
        Command::Engine(command) => engines::run(&config, store_handle.clone(), command).await,
        Command::Topic(command) => topic(&config, command).await,
        Command::Subscribe(args) => subscribe(&config, store, args, &bars).await,
        Command::Subscriptions(SubscriptionsCommand::List { topic }) => {
            notify::list_subscriptions(&config, topic).await
        }
        Command::Unsubscribe {
            arn,
            topic,
            protocol,
        } => notify::unsubscribe(&config, arn, topic, protocol).await,
        Command::Publish {
            topic,
            subject,
            message,
        } => notify::publish(&config, &topic, subject.as_deref(), &message).await,
        Command::Sms(SmsCommand::Send { phone, message }) => {
            notify::send_sms(&config, &phone, &message).await
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
            let existing = Existing::from_flags(force, if_missing);
            sample(&config, store, &months, &spec, existing, &photos).await
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("gid-admin").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn site_init_takes_an_access_a_website_and_a_dry_run() {
        let cli = parse(&["site", "init", "--access", "acl", "--website", "--dry-run"]).unwrap();
        let Command::Site(site::SiteCommand::Init {
            access,
            website,
            dry_run,
        }) = cli.command
        else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(access, Some(gid_core::SiteAccess::Acl));
        assert!(website && dry_run);
        let err = parse(&["site", "init", "--access", "public-read"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("use bucket-policy, acl or presign"),
            "{err}"
        );
    }

    #[test]
    fn sample_refuses_force_with_if_missing_and_maps_each_flag() {
        assert!(parse(&["sample", "--month", "2019-01", "--force", "--if-missing"]).is_err());
        assert_eq!(Existing::from_flags(true, false), Existing::Overwrite);
        assert_eq!(Existing::from_flags(false, true), Existing::Keep);
        assert_eq!(Existing::from_flags(false, false), Existing::Refuse);
    }

    #[test]
    fn subscribe_takes_one_endpoint_with_a_topic_or_a_contacts_file() {
        assert!(parse(&["subscribe", "--topic", "trash", "--sms", "+16195550100"]).is_ok());
        assert!(parse(&[
            "subscribe",
            "--topic",
            "trash",
            "--email",
            "pat@example.org",
            "--dry-run",
            "--output",
            "json"
        ])
        .is_ok());
        // One endpoint at a time, and an endpoint needs its topic.
        assert!(parse(&["subscribe", "--topic", "trash"]).is_err());
        assert!(parse(&[
            "subscribe",
            "--topic",
            "trash",
            "--sms",
            "+16195550100",
            "--email",
            "pat@example.org"
        ])
        .is_err());
        assert!(parse(&["subscribe", "--sms", "+16195550100"]).is_err());
        assert!(parse(&[
            "subscribe",
            "--file",
            "c.csv",
            "--topic",
            "trash",
            "--sms",
            "+16195550100"
        ])
        .is_err());
        assert!(parse(&["subscribe", "--dry-run"]).is_err());
        assert!(parse(&[
            "subscribe",
            "--file",
            "https://gid-staging.s3.amazonaws.com/contacts.csv?X-Amz-Signature=abc"
        ])
        .is_ok());
        let err = parse(&[
            "subscribe",
            "--file",
            "http://example.org/contacts.csv?X-Amz-Signature=abc",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("use the https:// URL") && !err.contains("abc"),
            "{err}"
        );
    }

    #[test]
    fn topic_delete_takes_a_name_or_an_arn_with_force_dry_run_and_json() {
        assert!(parse(&["topic", "delete", "trash", "--dry-run", "--output", "json"]).is_ok());
        assert!(parse(&[
            "topic",
            "delete",
            "arn:aws:sns:us-east-1:123456789012:trash",
            "--force"
        ])
        .is_ok());
        assert!(parse(&["topic", "delete"]).is_err());
    }

    #[test]
    fn unsubscribe_needs_an_arn_or_a_topic() {
        assert!(parse(&["unsubscribe"]).is_err());
        assert!(parse(&["unsubscribe", "--protocol", "sms"]).is_err());
        assert!(parse(&["unsubscribe", "--topic", "trash", "--protocol", "sms"]).is_ok());
    }
}
