//! Buckets, objects, ACLs and URLs on the configured store.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use futures::StreamExt;
use gid_core::{Acl, BucketName, ObjectKey};
use gid_storage::{
    content_type_for, download_to_file, list_all, Backend, ObjectAcls, ObjectStore, PutOptions,
    UrlSigner,
};

#[derive(Debug, Subcommand)]
pub(crate) enum BucketCommand {
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
pub(crate) enum ObjectCommand {
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
pub(crate) enum AclCommand {
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

pub(crate) fn parse_acl(s: &str) -> Result<Acl, String> {
    s.parse()
}

/// The URL anonymous readers use: virtual-hosted AWS style, or `endpoint/bucket/key` for
/// a custom endpoint (path style), or a file:// path on the local backend.
pub(crate) async fn bucket(store: &dyn Backend, command: BucketCommand) -> anyhow::Result<()> {
    match command {
        BucketCommand::Create { bucket } => {
            store.create_bucket(&bucket).await?;
            gid_cli::outln!("bucket {bucket} ready");
        }
        BucketCommand::List => {
            for b in store.list_buckets().await? {
                let created = b.created.map(|c| c.to_rfc3339()).unwrap_or_default();
                gid_cli::outln!("{}\t{created}", b.name);
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
                gid_cli::outln!("emptied {bucket}: {} objects deleted", keys.len());
            }
            store.delete_bucket(&bucket).await?;
            gid_cli::outln!("bucket {bucket} deleted");
        }
    }
    Ok(())
}

pub(crate) async fn object(store: &dyn ObjectStore, command: ObjectCommand) -> anyhow::Result<()> {
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
            gid_cli::outln!(
                "uploaded s3://{bucket}/{key} ({content_type}, {} bytes, etag {})",
                written.size,
                written.etag
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
                        match stdout.write_all(&chunk?).and_then(|()| stdout.flush()) {
                            // The reader has all it wanted (`| head -c 100`).
                            Err(e) if gid_cli::is_closed_reader(&e) => break,
                            written => written.context("writing to standard output")?,
                        }
                    }
                }
                other => {
                    let path = other.unwrap_or_else(|| PathBuf::from(key.file_name()));
                    let meta = download_to_file(store, &bucket, &key, &path).await?;
                    gid_cli::outln!(
                        "downloaded s3://{bucket}/{key} → {} ({} bytes)",
                        path.display(),
                        meta.size
                    );
                }
            }
        }
        ObjectCommand::Head { bucket, key } => {
            let meta = store.head(&bucket, &key).await?;
            gid_cli::outln!("key\t{}", meta.key);
            gid_cli::outln!("size\t{}", meta.size);
            gid_cli::outln!("last_modified\t{}", meta.last_modified.to_rfc3339());
            gid_cli::outln!("etag\t{}", meta.etag);
            gid_cli::outln!("content_type\t{}", meta.content_type.unwrap_or_default());
            gid_cli::outln!("cache_control\t{}", meta.cache_control.unwrap_or_default());
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
                    gid_cli::outln!("{}\t{}\t{}", o.last_modified.to_rfc3339(), o.size, o.key);
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
            gid_cli::outln!("deleted {} keys from {bucket}", keys.len());
        }
    }
    Ok(())
}

/// `acl get|set BUCKET KEY`.
pub(crate) async fn acl(store: &dyn ObjectAcls, command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Get { bucket, key } => {
            gid_cli::outln!("{}", store.get_acl(&bucket, &key).await?.as_str());
        }
        AclCommand::Set { bucket, key, acl } => {
            store.put_acl(&bucket, &key, acl).await?;
            gid_cli::outln!("s3://{bucket}/{key} is now {}", acl.as_str());
        }
    }
    Ok(())
}

/// `presign BUCKET KEY [--expires SECS]`.
pub(crate) async fn presign(
    store: &dyn UrlSigner,
    bucket: &BucketName,
    key: &ObjectKey,
    expires_secs: u64,
) -> anyhow::Result<()> {
    let url = store
        .presign_get(bucket, key, Duration::from_secs(expires_secs))
        .await?;
    gid_cli::outln!("{url}");
    Ok(())
}
