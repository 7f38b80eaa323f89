//! The source stage: one month of CSV exports in a bucket → one table.
//!
//! [`ingest_month`] lists every object under the month's prefix (all pages), downloads
//! them with bounded concurrency, parses each in memory as it arrives (off the async
//! executor), and concatenates the tables by column name: files with missing, extra or
//! reordered columns combine, missing values are null. Rows with the wrong number of
//! fields, an unparseable `date_requested` or bytes that are not UTF-8 are
//! [quarantined](QuarantinedRow) with their file, line and reason; the good rows of the
//! same file are kept. [`persist`] writes the table (Parquet), the quarantine objects and
//! an [`IngestReport`] to the work bucket, so later stages rerun without re-reading CSVs.
//!
//! This crate does not aggregate or render anything.

pub mod columns;
mod dates;
mod parse;

use std::io::Cursor;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use gid_core::{BucketName, Month, ObjectKey, WorkKeys};
use gid_storage::{list_all, ObjectMeta, ObjectStore, PutOptions, StorageError, WrittenObject};
use polars_core::prelude::*;
use polars_io::prelude::{
    ParquetCompression, ParquetReader, ParquetWriter, SerReader, StatisticsOptions,
};
use serde::{Deserialize, Serialize};

pub use dates::normalise_timestamp;
pub use parse::{parse_export, ParsedFile, QuarantineReason, QuarantinedRow};

/// What can stop a month's ingest (bad rows never do: they are quarantined).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no input under s3://{bucket}/{prefix} (is the month right? `gid-admin object list --prefix {prefix}` shows what is there)")]
    NoInput { bucket: BucketName, prefix: String },
    #[error("cannot read the header of {key}: {message}")]
    Header { key: String, message: String },
    #[error("cannot parse {key}: {message}")]
    Parse { key: String, message: String },
    #[error("cannot combine the month's files: {0}")]
    Combine(String),
    #[error(
        "the month's table in s3://{bucket}/{key} is unreadable ({message}); rerun --stage ingest"
    )]
    CorruptTable {
        bucket: BucketName,
        key: String,
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where a month's exports are and how hard to pull them.
#[derive(Debug, Clone)]
pub struct IngestSource {
    pub bucket: BucketName,
    pub prefix: String,
    /// Only keys ending with this are exports (e.g. `.csv`).
    pub suffix: String,
    /// Objects downloaded and parsed at once.
    pub concurrency: usize,
}

/// What happened to one input object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileReport {
    pub key: String,
    pub etag: String,
    pub bytes: u64,
    pub rows: u64,
    pub quarantined: u64,
    /// Why the file contributed nothing (empty, not an export).
    pub skipped: Option<String>,
}

/// The ingest stage's account of a month.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestReport {
    pub month: String,
    pub files: Vec<FileReport>,
    pub rows: u64,
    pub quarantined: u64,
    pub bytes: u64,
    pub columns: Vec<String>,
}

/// The month's combined table, with what was refused.
#[derive(Debug)]
pub struct MonthTable {
    pub month: Month,
    pub frame: DataFrame,
    pub quarantined: Vec<QuarantinedRow>,
    pub report: IngestReport,
}

/// The objects under a month's prefix: the exports to read, and the rest (reported and
/// skipped).
#[derive(Debug, Clone)]
pub struct MonthListing {
    pub exports: Vec<ObjectMeta>,
    pub others: Vec<ObjectMeta>,
}

impl MonthListing {
    /// Every listed object, exports first.
    pub fn all(&self) -> impl Iterator<Item = &ObjectMeta> {
        self.exports.iter().chain(&self.others)
    }
}

/// Lists the month's export objects (all pages). Keys without the suffix are returned
/// separately so the report can say they were skipped.
pub async fn list_inputs(
    store: &dyn ObjectStore,
    source: &IngestSource,
) -> Result<MonthListing, IngestError> {
    let objects = list_all(store, &source.bucket, &source.prefix).await?;
    if objects.is_empty() {
        return Err(IngestError::NoInput {
            bucket: source.bucket.clone(),
            prefix: source.prefix.clone(),
        });
    }
    let suffix = source.suffix.to_ascii_lowercase();
    let (exports, others) = objects
        .into_iter()
        .partition(|o| o.key.as_str().to_ascii_lowercase().ends_with(&suffix));
    Ok(MonthListing { exports, others })
}

struct ParsedObject {
    meta: ObjectMeta,
    parsed: ParsedFile,
}

/// Reads, parses and combines one month's listed exports. `on_file` is called after
/// each file is parsed (for progress).
pub async fn ingest_month(
    store: &dyn ObjectStore,
    source: &IngestSource,
    month: Month,
    listing: MonthListing,
    on_file: &(dyn Fn(&ObjectMeta) + Sync),
) -> Result<MonthTable, IngestError> {
    let MonthListing {
        exports: inputs,
        others,
    } = listing;
    let mut parsed: Vec<ParsedObject> = futures::stream::iter(inputs)
        .map(|meta| async move {
            let object = store.get(&source.bucket, &meta.key).await?;
            let key = meta.key.clone();
            // Downloads overlap freely; parsing is CPU work, one file per core at a time
            // across every month in flight. More parsers than cores only interleave, and
            // each extra thread that allocates keeps its own malloc arena (measured: peak
            // RSS grew with the number of months run, not with the months in flight).
            let _core = parser_slots().acquire().await.expect("never closed");
            let parsed = tokio::task::spawn_blocking(move || parse_export(&key, object.body))
                .await
                .expect("parser task panicked")?;
            on_file(&meta);
            Ok::<_, IngestError>(ParsedObject { meta, parsed })
        })
        .buffer_unordered(source.concurrency.max(1))
        .try_collect()
        .await?;
    // Downloads finish in any order; combine in key order so reruns give identical tables.
    parsed.sort_by(|a, b| a.meta.key.cmp(&b.meta.key));

    let mut files = Vec::with_capacity(parsed.len() + others.len());
    let mut frames = Vec::new();
    let mut quarantined = Vec::new();
    for ParsedObject { meta, parsed } in parsed {
        let mut report = FileReport {
            key: meta.key.to_string(),
            etag: meta.etag.clone(),
            bytes: meta.size,
            rows: 0,
            quarantined: 0,
            skipped: None,
        };
        match parsed {
            ParsedFile::Empty => {
                tracing::warn!(key = %meta.key, "skipping empty file");
                report.skipped = Some("empty file".to_owned());
            }
            ParsedFile::Table {
                frame,
                quarantined: bad,
            } => {
                report.rows = frame.height() as u64;
                report.quarantined = bad.len() as u64;
                // A few lines per file say what is wrong; thousands would bury every other
                // message of a backfill. The quarantine files hold every row.
                for (i, row) in bad.iter().enumerate() {
                    if i < QUARANTINE_WARNINGS_PER_FILE {
                        tracing::warn!(
                            "cannot read s3://{}/{} line {}: {} → row quarantined",
                            source.bucket,
                            row.source,
                            row.line,
                            row.reason
                        );
                    } else {
                        tracing::debug!(
                            "cannot read s3://{}/{} line {}: {} → row quarantined",
                            source.bucket,
                            row.source,
                            row.line,
                            row.reason
                        );
                    }
                }
                if bad.len() > QUARANTINE_WARNINGS_PER_FILE {
                    tracing::warn!(
                        "s3://{}/{}: {} more rows quarantined (every refused row, with its line and reason, is in the month's quarantine folder of the work bucket; -v lists them here)",
                        source.bucket,
                        meta.key,
                        bad.len() - QUARANTINE_WARNINGS_PER_FILE
                    );
                }
                quarantined.extend(bad);
                frames.push(frame);
            }
        }
        files.push(report);
    }
    for meta in others {
        tracing::warn!(key = %meta.key, suffix = %source.suffix, "skipping object that is not an export");
        files.push(FileReport {
            key: meta.key.to_string(),
            etag: meta.etag,
            bytes: meta.size,
            rows: 0,
            quarantined: 0,
            skipped: Some(format!("not a {} export", source.suffix)),
        });
    }

    let frame = combine(frames)?;
    let report = IngestReport {
        month: month.to_string(),
        rows: frame.height() as u64,
        quarantined: quarantined.len() as u64,
        bytes: files.iter().map(|f| f.bytes).sum(),
        columns: frame
            .get_column_names()
            .into_iter()
            .map(|c| c.to_string())
            .collect(),
        files,
    };
    Ok(MonthTable {
        month,
        frame,
        quarantined,
        report,
    })
}

/// Refused rows logged one by one per file; the rest are summed up in one line.
const QUARANTINE_WARNINGS_PER_FILE: usize = 5;

/// One permit per core, shared by every month ingesting in this process.
fn parser_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Concatenates tables by column name; a column missing from one file is null there.
fn combine(frames: Vec<DataFrame>) -> Result<DataFrame, IngestError> {
    match frames.len() {
        0 => Ok(DataFrame::empty()),
        1 => Ok(frames.into_iter().next().expect("one frame")),
        _ => polars_core::functions::concat_df_diagonal(&frames)
            .map_err(|e| IngestError::Combine(e.to_string())),
    }
}

/// Renders the quarantined rows of one source file as CSV (source_key, line, reason, raw_row).
pub fn quarantine_csv(rows: &[QuarantinedRow]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(["source_key", "line", "reason", "raw_row"])
        .expect("writing to memory");
    for row in rows {
        writer
            .write_record([
                row.source.as_str(),
                &row.line.to_string(),
                &row.reason.to_string(),
                &row.raw,
            ])
            .expect("writing to memory");
    }
    writer.into_inner().expect("flushing to memory")
}

/// Serialises a table as Parquet.
///
/// One row group per input file, LZ4, no column statistics. polars' `finish` would first
/// copy the month's per-file chunks together into row groups of 512² rows: a second copy
/// of the whole table at the memory peak (one generated month: 166 → 109 MB peak RSS).
/// The table is gid's own intermediate, read whole by the later stages, so min/max
/// statistics would never prune anything; LZ4 trades size for CPU (same month: zstd with
/// statistics 149 ms and 3.7 MB, LZ4 without them 92 ms and 5.6 MB).
pub fn to_parquet(frame: &mut DataFrame) -> Result<Vec<u8>, IngestError> {
    let failed = |e: PolarsError| IngestError::Combine(e.to_string());
    let mut buf = Vec::new();
    frame.align_chunks_par();
    {
        let mut writer = ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Lz4Raw)
            .with_statistics(StatisticsOptions::empty())
            .batched(frame.schema())
            .map_err(failed)?;
        writer.write_batch(frame).map_err(failed)?;
        writer.finish().map_err(failed)?;
    }
    Ok(buf)
}

/// Writes the month's table, quarantine objects and report to the work bucket. The
/// quarantine of the month is replaced as a whole, so a rerun never leaves stale rows.
pub async fn persist(
    store: &dyn ObjectStore,
    work: &BucketName,
    keys: &WorkKeys,
    table: &mut MonthTable,
) -> Result<Vec<WrittenObject>, IngestError> {
    let mut written = Vec::new();
    let mut by_source: std::collections::BTreeMap<&ObjectKey, Vec<QuarantinedRow>> =
        Default::default();
    for row in &table.quarantined {
        by_source.entry(&row.source).or_default().push(row.clone());
    }
    let stale: Vec<ObjectKey> = list_all(store, work, &keys.quarantine_prefix())
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !by_source.keys().any(|s| keys.quarantine_for(s) == *k))
        .collect();
    store.delete_many(work, &stale).await?;
    for (source, rows) in by_source {
        let key = keys.quarantine_for(source);
        let body = Bytes::from(quarantine_csv(&rows));
        let options = PutOptions::new("text/csv; charset=utf-8");
        written.push(store.write(work, &key, body, &options).await?);
    }
    let parquet = Bytes::from(to_parquet(&mut table.frame)?);
    let options = PutOptions::new("application/vnd.apache.parquet");
    written.push(
        store
            .write(work, &keys.requests(), parquet, &options)
            .await?,
    );
    let report = Bytes::from(serde_json::to_vec_pretty(&table.report).expect("report serialises"));
    let options = PutOptions::new("application/json");
    written.push(
        store
            .write(work, &keys.ingest_report(), report, &options)
            .await?,
    );
    Ok(written)
}

/// Loads a month's persisted table (the input of every later stage).
pub async fn load_table(
    store: &dyn ObjectStore,
    work: &BucketName,
    keys: &WorkKeys,
) -> Result<DataFrame, IngestError> {
    let key = keys.requests();
    let object = store.get(work, &key).await?;
    let body = object.body;
    tokio::task::spawn_blocking(move || ParquetReader::new(Cursor::new(body)).finish())
        .await
        .expect("parquet reader panicked")
        .map_err(|e| IngestError::CorruptTable {
            bucket: work.clone(),
            key: key.to_string(),
            message: e.to_string(),
        })
}

/// Loads a month's persisted ingest report.
pub async fn load_report(
    store: &dyn ObjectStore,
    work: &BucketName,
    keys: &WorkKeys,
) -> Result<IngestReport, IngestError> {
    let key = keys.ingest_report();
    let object = store.get(work, &key).await?;
    serde_json::from_slice(&object.body).map_err(|e| IngestError::CorruptTable {
        bucket: work.clone(),
        key: key.to_string(),
        message: e.to_string(),
    })
}
