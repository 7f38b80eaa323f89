//! `gid-admin`: the operator's toolbox over the configured backend — buckets, objects,
//! ACLs, public and presigned URLs, and the synthetic sample data for demos and tests.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use clap::{Parser, Subcommand};
use gid_cli::{init_logging, CommonArgs, MonthArgs};
use gid_core::{Acl, BucketName, Config, ObjectKey, Profile};
use gid_runs::{open_store, MonthRun, RunOptions};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{content_type_for, list_all, ObjectStore, PutOptions};

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
    /// Per month and stage: the last run's state, counts, and whether inputs changed since.
    Runs {
        #[command(flatten)]
        months: MonthArgs,
    },
    /// Write synthetic exports (with dirty rows) into the requests bucket.
    Sample {
        #[command(flatten)]
        months: MonthArgs,
        #[arg(long, default_value_t = SampleSpec::default().files_per_month)]
        files: usize,
        #[arg(long, default_value_t = SampleSpec::default().rows_per_file)]
        rows: usize,
        #[arg(long, default_value_t = SampleSpec::default().seed)]
        seed: u64,
        /// Leave months that already have exports untouched.
        #[arg(long)]
        if_missing: bool,
    },
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
    let _bars = init_logging(&cli.common);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gid: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.common.load_config()?;
    let store_handle = open_store(&config)
        .await
        .context("opening the object store")?;
    let store = store_handle.as_ref();
    match cli.command {
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
            println!("{}", public_url(&config, &bucket, &key));
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
        } => {
            let spec = SampleSpec {
                files_per_month: files,
                rows_per_file: rows,
                dirty: true,
                seed,
            };
            sample(&config, store, &months, &spec, if_missing).await
        }
    }
}

/// The URL anonymous readers use: virtual-hosted AWS style, or `endpoint/bucket/key` for
/// a custom endpoint (path style), or a file:// path on the local backend.
fn public_url(config: &Config, bucket: &BucketName, key: &ObjectKey) -> String {
    let encoded: String = key
        .as_str()
        .split('/')
        .map(|segment| {
            segment
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/");
    match config.profile {
        Profile::Local => {
            let path = config.local.data_root.join(bucket.as_str());
            let path = std::path::absolute(&path).unwrap_or(path);
            format!("file://{}/{encoded}", path.display())
        }
        Profile::Aws => match config
            .aws
            .endpoint_url
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        {
            Some(endpoint) => format!("{}/{bucket}/{encoded}", endpoint.trim_end_matches('/')),
            None => format!("https://{bucket}.s3.amazonaws.com/{encoded}"),
        },
    }
}

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
            let body =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let content_type = content_type.unwrap_or_else(|| content_type_for(&key).to_owned());
            let options = PutOptions::new(content_type.clone()).with_acl(acl);
            let etag = store
                .put(&bucket, &key, Bytes::from(body), &options)
                .await?;
            println!("uploaded s3://{bucket}/{key} ({content_type}, etag {etag})");
        }
        ObjectCommand::Download {
            bucket,
            key,
            output,
        } => {
            let object = store.get(&bucket, &key).await?;
            match output {
                Some(path) if path.as_os_str() == "-" => {
                    use std::io::Write;
                    std::io::stdout().write_all(&object.body)?;
                }
                other => {
                    let path = other.unwrap_or_else(|| PathBuf::from(key.file_name()));
                    std::fs::write(&path, &object.body)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!(
                        "downloaded s3://{bucket}/{key} → {} ({} bytes)",
                        path.display(),
                        object.body.len()
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

async fn runs(
    config: Config,
    store: std::sync::Arc<dyn ObjectStore>,
    months: &[gid_core::Month],
) -> anyhow::Result<()> {
    let run = MonthRun::new(config, store, RunOptions::default());
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
                last.state.as_str(),
                finished,
                count(last.rows),
                count(last.quarantined)
            );
        }
    }
    Ok(())
}

async fn sample(
    config: &Config,
    store: &dyn ObjectStore,
    months: &MonthArgs,
    spec: &SampleSpec,
    if_missing: bool,
) -> anyhow::Result<()> {
    let bucket = &config.buckets.requests;
    let layout = config.layout()?;
    if spec.files_per_month < 3 {
        bail!("--files must be at least 3 (clean, drifted and dirty parts)");
    }
    store.create_bucket(bucket).await?;
    for month in months.months()? {
        let prefix = layout.month_prefix(month);
        if if_missing
            && !store
                .list_page(bucket, &prefix, None, 1)
                .await?
                .objects
                .is_empty()
        {
            println!("{month}: exports already under s3://{bucket}/{prefix}, left as they are");
            continue;
        }
        let sample = generate_month(month, spec);
        for file in &sample.files {
            let key = layout.month_key(month, &file.name);
            store
                .put(
                    bucket,
                    &key,
                    Bytes::from(file.bytes.clone()),
                    &PutOptions::new("text/csv; charset=utf-8"),
                )
                .await?;
        }
        println!(
            "{month}: {} files, {} good rows, {} dirty rows → s3://{bucket}/{prefix}",
            sample.files.len(),
            sample.truth.total_rows,
            sample.truth.dirty.len()
        );
    }
    Ok(())
}
