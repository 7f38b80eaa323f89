//! `gid-admin sample`: synthetic exports, contacts and photos, refusing to overwrite.

use std::collections::BTreeSet;

use anyhow::{bail, Context};
use bytes::Bytes;
use gid_cli::MonthArgs;
use gid_core::{BucketName, Config, ObjectKey};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{content_type_for, list_all, Backend, ObjectStore, PutOptions, StorageError};

/// The sample photos of a folder, by file name (PNG and JPEG), in name order.
pub(crate) fn sample_photos(dir: &std::path::Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
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
pub(crate) enum Existing {
    /// Write nothing at all and name them (the default: they may be an operator's data).
    Refuse,
    /// Leave them; write only what is missing (`--if-missing`).
    Keep,
    /// Write over them (`--force`).
    Overwrite,
}

impl Existing {
    /// `--force` overwrites, `--if-missing` keeps, neither refuses (clap forbids both).
    pub(crate) fn from_flags(force: bool, if_missing: bool) -> Self {
        match (force, if_missing) {
            (true, _) => Existing::Overwrite,
            (false, true) => Existing::Keep,
            (false, false) => Existing::Refuse,
        }
    }
}

/// Existing targets named in a refusal; the rest are counted.
pub(crate) const REFUSAL_NAMES: usize = 5;

/// The keys under `prefix` of `bucket`; none when the bucket does not exist yet.
pub(crate) async fn existing_keys(
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
pub(crate) struct MonthPlan {
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

pub(crate) async fn sample(
    config: &Config,
    store: &dyn Backend,
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
        gid_cli::outln!("contacts: s3://{staging}/{contacts} already exists, left as it is");
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
        gid_cli::outln!("contacts: {verb} s3://{staging}/{contacts}");
    }
    store.create_bucket(bucket).await?;
    if !photos.is_empty() {
        store.create_bucket(images).await?;
    }
    for plan in &plans {
        let month = plan.month;
        let prefix = &plan.prefix;
        if existing == Existing::Keep && !plan.exports.is_empty() {
            gid_cli::outln!(
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
        gid_cli::outln!(
            "{month}: {} files{replaced}, {} good rows, {} dirty rows → s3://{bucket}/{prefix}; {stored} of {} request photos stored{kept}",
            sample.files.len(),
            sample.truth.total_rows,
            sample.truth.dirty.len(),
            sample.truth.images.len()
        );
    }
    Ok(())
}
