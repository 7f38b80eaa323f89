//! Per-file parts: an export's parsed rows kept in the work bucket under its ETag, so a
//! rerun after one file of a month changed downloads and parses only that file.
//!
//! A month is often re-delivered with one corrected file. The month's table still has to
//! be rebuilt whole (the duplicate rule compares every file's ids), but the other files'
//! rows need not be parsed again: each export of at least `ingest.part_min_bytes` is
//! written once, as parsed, to `<month prefix>parts/<file>@<etag>.parquet`, and
//! `ingest.json` records the part with the file's counts. The next run of the month reads
//! that report; a file listed with the same key and ETag (and the same ingest settings and
//! gid version: the [fingerprint](FileParts::fingerprint)) is taken from its part, a
//! foreign file from its recorded skip reason, and only new or changed files are fetched.
//! Their quarantine objects stay where the last run wrote them. A part that is gone or
//! unreadable only costs the file's download: the file is read again.
//!
//! Small files get no part: below the threshold a file's GET costs less than its part's
//! PUT and GET, and a month of thousands of one-row files would write thousands of parts.

use std::collections::HashMap;
use std::io::Cursor;

use bytes::Bytes;
use gid_core::{BucketName, ObjectKey, WorkKeys};
use gid_storage::{list_all, ObjectMeta, ObjectStore, PutOptions};
use polars_core::prelude::*;
use polars_io::prelude::{ParallelStrategy, ParquetReader, SerReader};

use gid_aggregate::Tally;

use crate::columns::SERVICE_REQUEST_ID;
use crate::rows::{ExportRows, Store};
use crate::{load_report, FileReport, IngestError};

/// Where and for which files a month's per-file parts are kept.
#[derive(Debug, Clone)]
pub struct FileParts {
    /// The work bucket.
    pub bucket: BucketName,
    /// The month's work keys (its report and quarantine objects).
    pub keys: WorkKeys,
    /// The month's prefix in both buckets (`2019/jan/`): parts go under `<prefix>parts/`.
    pub month_prefix: String,
    /// Exports from this size on get a part (`ingest.part_min_bytes`).
    pub min_bytes: u64,
    /// What a part depends on besides its file (gid version, ingest settings): a part
    /// made under another fingerprint is not reused.
    pub fingerprint: String,
}

impl FileParts {
    /// The part of `source` as it was at `etag`: the source key relative to the month,
    /// so `2019/jan/backup/part-1.csv` → `2019/jan/parts/backup/part-1.csv@<etag>.parquet`.
    pub fn key_for(&self, source: &ObjectKey, etag: &str) -> ObjectKey {
        let relative = source
            .as_str()
            .strip_prefix(&self.month_prefix)
            .unwrap_or(source.as_str());
        ObjectKey::new(format!("{}{relative}@{etag}.parquet", self.folder()))
            .expect("a valid key under a valid prefix is a valid key")
    }

    /// The folder of the month's parts.
    pub fn folder(&self) -> String {
        format!("{}parts/", self.month_prefix)
    }

    /// Whether a file of this size gets a part.
    pub fn wanted(&self, size: u64) -> bool {
        size >= self.min_bytes
    }

    /// What the month's last ingest left that this run may reuse: its per-file report
    /// (when made under the same fingerprint) and the quarantine objects in place. Costs a
    /// GET of `ingest.json` and a LIST of the month's quarantine folder; nothing when the
    /// month has no report yet.
    pub async fn previous(&self, store: &dyn ObjectStore) -> Result<PreviousIngest, IngestError> {
        let keys = &self.keys;
        let report = match load_report(store, &self.bucket, keys).await {
            Ok(report) => report,
            Err(IngestError::Storage(e)) if e.is_not_found() => return Ok(PreviousIngest::none()),
            // An unreadable report only means nothing is reused: the files are read again
            // and the report is replaced.
            Err(IngestError::CorruptTable { .. }) => return Ok(PreviousIngest::none()),
            Err(e) => return Err(e),
        };
        if report.fingerprint != self.fingerprint {
            return Ok(PreviousIngest {
                named_parts: report.files.iter().any(|f| f.part.is_some()),
                ..PreviousIngest::none()
            });
        }
        let quarantine = list_all(store, &self.bucket, &keys.quarantine_prefix()).await?;
        Ok(PreviousIngest {
            named_parts: report.files.iter().any(|f| f.part.is_some()),
            files: report
                .files
                .into_iter()
                .map(|f| ((f.key.clone(), f.etag.clone()), f))
                .collect(),
            quarantine: quarantine.into_iter().map(|o| (o.key.clone(), o)).collect(),
        })
    }
}

/// What the month's last ingest left (see [`FileParts::previous`]).
#[derive(Debug, Default)]
pub struct PreviousIngest {
    /// Per (key, ETag): the file's report, when made under the current fingerprint.
    files: HashMap<(String, String), FileReport>,
    /// The quarantine objects in place, by key.
    quarantine: HashMap<ObjectKey, ObjectMeta>,
    /// Whether the last report named any part (the parts folder is then swept).
    named_parts: bool,
}

impl PreviousIngest {
    /// Nothing to reuse (first run, `--force`, parts turned off).
    pub fn none() -> Self {
        Self::default()
    }

    /// The last report of this file at this ETag.
    pub(crate) fn file(&self, key: &ObjectKey, etag: &str) -> Option<&FileReport> {
        self.files.get(&(key.to_string(), etag.to_owned()))
    }

    /// The quarantine object of a reused file, when the last run left one.
    pub(crate) fn quarantine(&self, key: &ObjectKey) -> Option<&ObjectMeta> {
        self.quarantine.get(key)
    }

    /// Whether a run would take this export (at this ETag) from what the last ingest kept
    /// instead of downloading it: what a dry run says of it.
    pub fn reuses(&self, key: &ObjectKey, etag: &str) -> bool {
        self.file(key, etag).is_some()
    }

    /// Whether the last report named any part.
    pub(crate) fn named_parts(&self) -> bool {
        self.named_parts
    }
}

/// An export's rows as a table (its own columns, or its text copied into columns): what
/// its part holds (Parquet, zstd level 1, no statistics: read whole, never pruned).
pub(crate) fn table(rows: &ExportRows) -> Result<DataFrame, IngestError> {
    let frame = match rows.store() {
        Store::Columns(frame) => frame.clone(),
        Store::Text(text) => {
            let columns: Vec<Column> = rows
                .columns()
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    let mut builder = StringChunkedBuilder::new(name.as_str().into(), text.len());
                    for value in text.column_values(c) {
                        if value.is_empty() {
                            builder.append_null();
                        } else {
                            builder.append_value(value);
                        }
                    }
                    builder.finish().into_column()
                })
                .collect();
            DataFrame::new(text.len(), columns).map_err(IngestError::Combine)?
        }
    };
    Ok(frame)
}

/// A part back as the export's rows (its columns are the file's normalised header).
pub(crate) fn decode(
    bucket: &BucketName,
    key: &ObjectKey,
    body: Bytes,
) -> Result<ExportRows, IngestError> {
    let frame = read(bucket, key, ParquetReader::new(Cursor::new(body)))?;
    let columns = frame
        .get_column_names()
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    Ok(ExportRows::from_parts(columns, Store::Columns(frame)))
}

/// What a reused part is read for when its file is [streamed](crate::streamed): the
/// file's header, and only the columns its [tally](Tally) and the duplicate rule read
/// (7 of the 13 columns of an export; the free text ones, the costliest to decode, are
/// left alone).
pub(crate) fn decode_tallied(
    bucket: &BucketName,
    key: &ObjectKey,
    body: Bytes,
) -> Result<(Vec<String>, DataFrame), IngestError> {
    // One reader: the footer the schema came from is the one the columns are read with.
    let mut reader = ParquetReader::new(Cursor::new(body));
    let schema = reader.schema().map_err(|e| corrupt(bucket, key, e))?;
    let header: Vec<String> = schema.iter_names().map(|c| c.to_string()).collect();
    let wanted = header
        .iter()
        .filter(|c| c.as_str() == SERVICE_REQUEST_ID || Tally::COLUMNS.contains(&c.as_str()))
        .cloned()
        .collect();
    Ok((
        header,
        read(bucket, key, reader.with_columns(Some(wanted)))?,
    ))
}

/// The columns `reader` reads, all text.
fn read(
    bucket: &BucketName,
    key: &ObjectKey,
    reader: ParquetReader<Cursor<Bytes>>,
) -> Result<DataFrame, IngestError> {
    // A part is decoded on a parser slot, one per core, the other core busy too: handing
    // its columns to polars' thread pool only adds hand-offs.
    let frame = reader
        .read_parallel(ParallelStrategy::None)
        .finish()
        .map_err(|e| corrupt(bucket, key, e))?;
    if frame.columns().iter().any(|c| c.str().is_err()) {
        return Err(corrupt(
            bucket,
            key,
            PolarsError::ComputeError("a part's columns are all text".into()),
        ));
    }
    Ok(frame)
}

fn corrupt(bucket: &BucketName, key: &ObjectKey, e: PolarsError) -> IngestError {
    IngestError::CorruptTable {
        bucket: bucket.clone(),
        key: key.to_string(),
        source: e.into(),
    }
}

/// Puts one part.
pub(crate) async fn put(
    store: &dyn ObjectStore,
    bucket: &BucketName,
    key: &ObjectKey,
    body: Bytes,
) -> Result<(), IngestError> {
    let options = PutOptions::new("application/vnd.apache.parquet");
    store.put(bucket, key, body, &options).await?;
    Ok(())
}
