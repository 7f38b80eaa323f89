//! The source stage: one month of CSV exports in a bucket → one table.
//!
//! [`ingest_month`] lists every object under the month's prefix (all pages), downloads
//! them with bounded concurrency and parses each in memory as it arrives (off the async
//! executor). Only exports are counted: a file that is not text, has more columns than
//! `ingest.max_columns` or lacks the key columns of `ingest.required_columns` is skipped
//! whole and reported ([`SkipReason`]), decided from its header before the body is read.
//! Rows with the wrong number of fields, an unparseable or out-of-month `date_requested`,
//! an empty `service_request_id` or bytes that are not UTF-8 are
//! [quarantined](QuarantinedRow) with their file, line and reason; the good rows of the
//! same file are kept. The month's table keeps one row per `service_request_id`
//! ([`combine`]: the copy in the latest-modified file wins) and combines files by column
//! name: missing, extra or reordered columns combine, missing values are null.
//! [`persist`] writes the table (Parquet), the quarantine objects and an [`IngestReport`]
//! to the work bucket, so later stages rerun without re-reading CSVs.
//!
//! This crate does not aggregate or render anything.

// Not yet documented item by item: missing_docs found 70 public items without docs
// (fields, variants and methods mostly) when it was turned on workspace-wide; remove
// this once they are.
#![allow(missing_docs)]

pub mod columns;
mod combine;
mod dates;
mod parse;
mod rows;
mod rules;

use std::io::Cursor;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use gid_core::{BucketName, Month, ObjectKey, OutOfMonth, WorkKeys};
use gid_storage::{list_all, ObjectMeta, ObjectStore, PutOptions, StorageError, WrittenObject};
use polars_core::prelude::*;
use polars_io::prelude::{
    ParquetCompression, ParquetReader, ParquetWriter, SerReader, StatisticsOptions,
};
use serde::{Deserialize, Serialize};

pub use combine::{combine, Combined, DuplicateCopies, SourcedExport};
pub use dates::normalise_timestamp;
pub use parse::{parse_export, ParsedExport, ParsedFile, QuarantineReason, QuarantinedRow};
pub use rows::ExportRows;
pub use rules::{ExportRules, SkipReason};

/// What can stop a month's ingest (bad rows and foreign files never do: they are
/// quarantined or skipped).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no input under s3://{bucket}/{prefix} (is the month right? `gid-admin object list --prefix {prefix}` shows what is there)")]
    NoInput { bucket: BucketName, prefix: String },
    #[error("none of the {files} objects under s3://{bucket}/{prefix} is an export ({reasons}); the warnings above name each file and why, and ingest.required_columns lists the columns an export must have")]
    NoExport {
        bucket: BucketName,
        prefix: String,
        files: usize,
        /// Skipped files per reason, e.g. `1 empty, 2 without the export's key columns`.
        reasons: String,
    },
    #[error("cannot combine the month's files: {0}")]
    Combine(#[source] PolarsError),
    #[error(
        "the month's table in s3://{bucket}/{key} is unreadable ({source}); rerun --stage ingest"
    )]
    CorruptTable {
        bucket: BucketName,
        key: String,
        /// The Parquet reader's or the JSON parser's complaint.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where a month's exports are, how hard to pull them and what counts as one.
#[derive(Debug, Clone)]
pub struct IngestSource {
    pub bucket: BucketName,
    pub prefix: String,
    /// Only keys ending with this are exports (e.g. `.csv`).
    pub suffix: String,
    /// Objects downloaded and parsed at once.
    pub concurrency: usize,
    /// Header and row rules (the month is added by [`ingest_month`]).
    pub rules: ExportRules,
}

/// What happened to one input object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileReport {
    pub key: String,
    pub etag: String,
    pub bytes: u64,
    /// Rows read from the file (before copies of other files' rows were dropped).
    pub rows: u64,
    pub quarantined: u64,
    /// Rows dropped because a newer copy of their `service_request_id` was kept.
    #[serde(default)]
    pub duplicates_dropped: u64,
    /// Rows whose `date_requested` is empty or outside the month (quarantined or kept).
    #[serde(default)]
    pub out_of_month: u64,
    /// Why the file contributed nothing.
    pub skipped: Option<SkipReason>,
}

/// The ingest stage's account of a month.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestReport {
    pub month: String,
    pub files: Vec<FileReport>,
    /// Rows in the month's table.
    pub rows: u64,
    pub quarantined: u64,
    pub bytes: u64,
    pub columns: Vec<String>,
    /// Rows left out because another copy of their `service_request_id` was kept.
    #[serde(default)]
    pub duplicates_dropped: u64,
    /// The dropped copies per file pair, most first.
    #[serde(default)]
    pub duplicates: Vec<DuplicateCopies>,
    /// Rows whose `date_requested` is empty or outside the month.
    #[serde(default)]
    pub out_of_month: u64,
    /// What was done with them (`ingest.out_of_month`).
    #[serde(default)]
    pub out_of_month_policy: OutOfMonth,
}

impl IngestReport {
    /// Skipped files per reason label, in a stable order.
    pub fn skipped_by_reason(&self) -> Vec<(&'static str, usize)> {
        let mut counts: Vec<(&'static str, usize)> = Vec::new();
        for reason in self.files.iter().filter_map(|f| f.skipped.as_ref()) {
            match counts.iter_mut().find(|(l, _)| *l == reason.label()) {
                Some((_, n)) => *n += 1,
                None => counts.push((reason.label(), 1)),
            }
        }
        counts.sort();
        counts
    }

    /// The month's ingest in a few words, for the summary line: files (and why some were
    /// ignored), size, rows, quarantined rows, dropped copies.
    pub fn tally(&self) -> IngestTally {
        IngestTally {
            files: self.files.len(),
            bytes: self.bytes,
            rows: self.rows,
            quarantined: self.quarantined,
            skipped: self.skipped_by_reason(),
            duplicates_dropped: self.duplicates_dropped,
            duplicates: self.duplicates.clone(),
            out_of_month: self.out_of_month,
            out_of_month_policy: self.out_of_month_policy,
            month: self.month.clone(),
        }
    }
}

/// The counts of a month's ingest, as its summary line shows them (`Display`):
/// `files 7 (2 ignored: 1 empty, 1 not text) (0.2 MB), rows 1197, quarantined 3,
/// duplicates dropped 399 (2019/jan/part-001.csv repeats 399 ids of 2019/jan/backup/part-001.csv (newer, kept))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestTally {
    pub files: usize,
    pub bytes: u64,
    pub rows: u64,
    pub quarantined: u64,
    pub skipped: Vec<(&'static str, usize)>,
    pub duplicates_dropped: u64,
    pub duplicates: Vec<DuplicateCopies>,
    pub out_of_month: u64,
    pub out_of_month_policy: OutOfMonth,
    pub month: String,
}

/// File pairs named on the summary line; the rest are counted (ingest.json has them all).
const PAIRS_ON_THE_LINE: usize = 2;

impl std::fmt::Display for IngestTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "files {}", self.files)?;
        let ignored: usize = self.skipped.iter().map(|(_, n)| n).sum();
        if ignored > 0 {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(label, n)| format!("{n} {label}"))
                .collect();
            write!(f, " ({ignored} ignored: {})", reasons.join(", "))?;
        }
        write!(
            f,
            " ({:.1} MB), rows {}, quarantined {}",
            self.bytes as f64 / 1e6,
            self.rows,
            self.quarantined
        )?;
        if self.out_of_month > 0 {
            match self.out_of_month_policy {
                OutOfMonth::Quarantine => write!(
                    f,
                    " ({} undated or dated outside {})",
                    self.out_of_month, self.month
                )?,
                OutOfMonth::Keep => write!(
                    f,
                    ", kept {} undated or dated outside {}",
                    self.out_of_month, self.month
                )?,
            }
        }
        if self.duplicates_dropped > 0 {
            let pairs: Vec<String> = self
                .duplicates
                .iter()
                .take(PAIRS_ON_THE_LINE)
                .map(ToString::to_string)
                .collect();
            let more = self.duplicates.len().saturating_sub(PAIRS_ON_THE_LINE);
            write!(
                f,
                ", duplicates dropped {} ({}{})",
                self.duplicates_dropped,
                pairs.join("; "),
                if more > 0 {
                    format!("; {more} more file pairs in ingest.json")
                } else {
                    String::new()
                }
            )?;
        }
        Ok(())
    }
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
    let rules = &source.rules.clone().in_month(month);
    let mut parsed: Vec<ParsedObject> = futures::stream::iter(inputs)
        .map(|meta| async move {
            let object = store.get(&source.bucket, &meta.key).await?;
            let key = meta.key.clone();
            let rules = rules.clone();
            // Downloads overlap freely; parsing is CPU work, one file per core at a time
            // across every month in flight. More parsers than cores only interleave, and
            // each extra thread that allocates keeps its own malloc arena (measured: peak
            // RSS grew with the number of months run, not with the months in flight).
            let _core = parser_slots().acquire().await.expect("never closed");
            let parsed = if object.body.len() <= PARSE_INLINE_BYTES {
                // A handoff to the blocking pool costs more than parsing a small file
                // (20,000 one-row files: half of the run was thread wake-ups).
                parse_export(&key, object.body, &rules)
            } else {
                tokio::task::spawn_blocking(move || parse_export(&key, object.body, &rules))
                    .await
                    .expect("parser task panicked")
            };
            on_file(&meta);
            Ok::<_, IngestError>(ParsedObject { meta, parsed })
        })
        .buffer_unordered(source.concurrency.max(1))
        .try_collect()
        .await?;
    // Downloads finish in any order; report in key order so reruns give identical reports.
    parsed.sort_by(|a, b| a.meta.key.cmp(&b.meta.key));

    let mut files = Vec::with_capacity(parsed.len() + others.len());
    let mut exports = Vec::new();
    let mut quarantined = Vec::new();
    let mut out_of_month = 0;
    for ParsedObject { meta, parsed } in parsed {
        let mut report = FileReport {
            key: meta.key.to_string(),
            etag: meta.etag.clone(),
            bytes: meta.size,
            rows: 0,
            quarantined: 0,
            duplicates_dropped: 0,
            out_of_month: 0,
            skipped: None,
        };
        match parsed {
            ParsedFile::Skipped(reason) => {
                tracing::warn!(
                    "skipping s3://{}/{}: {reason}; nothing in it is counted",
                    source.bucket,
                    meta.key
                );
                report.skipped = Some(reason);
            }
            ParsedFile::Export(export) => {
                report.rows = export.rows.len() as u64;
                report.quarantined = export.quarantined.len() as u64;
                report.out_of_month = export.out_of_month;
                out_of_month += export.out_of_month;
                warn_quarantined(&source.bucket, &meta.key, &export.quarantined);
                quarantined.extend(export.quarantined);
                exports.push(SourcedExport {
                    key: meta.key,
                    last_modified: meta.last_modified,
                    rows: export.rows,
                });
            }
        }
        files.push(report);
    }
    for meta in others {
        let reason = SkipReason::NotAnExport {
            suffix: source.suffix.clone(),
        };
        tracing::warn!("skipping s3://{}/{}: {reason}", source.bucket, meta.key);
        files.push(FileReport {
            key: meta.key.to_string(),
            etag: meta.etag,
            bytes: meta.size,
            rows: 0,
            quarantined: 0,
            duplicates_dropped: 0,
            out_of_month: 0,
            skipped: Some(reason),
        });
    }

    let mut report = IngestReport {
        month: month.to_string(),
        rows: 0,
        quarantined: quarantined.len() as u64,
        bytes: files.iter().map(|f| f.bytes).sum(),
        columns: Vec::new(),
        files,
        duplicates_dropped: 0,
        duplicates: Vec::new(),
        out_of_month,
        out_of_month_policy: rules.out_of_month(),
    };
    if exports.is_empty() {
        // Nothing to count: an empty table would publish a month of zero requests.
        let reasons: Vec<String> = report
            .skipped_by_reason()
            .iter()
            .map(|(label, n)| format!("{n} {label}"))
            .collect();
        return Err(IngestError::NoExport {
            bucket: source.bucket.clone(),
            prefix: source.prefix.clone(),
            files: report.files.len(),
            reasons: reasons.join(", "),
        });
    }
    // Combining is CPU work over the whole month: off the async executor.
    let combined = tokio::task::spawn_blocking(move || combine(exports))
        .await
        .expect("combining panicked")?;
    let position: std::collections::HashMap<&str, usize> = report
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.key.as_str(), i))
        .collect();
    let mut dropped_per_file = vec![0; report.files.len()];
    for copies in &combined.duplicates {
        tracing::warn!(
            "s3://{bucket}/{file} repeats {n} service_request_ids of s3://{bucket}/{winner}: {}",
            if copies.file == copies.kept_from {
                "the last row of each id in the file is kept, the earlier ones are dropped"
            } else {
                "the copies in the later-modified file are kept, these are dropped"
            },
            bucket = source.bucket,
            file = copies.file,
            n = copies.rows,
            winner = copies.kept_from,
        );
        dropped_per_file[position[copies.file.as_str()]] += copies.rows;
    }
    drop(position);
    for (file, dropped) in report.files.iter_mut().zip(dropped_per_file) {
        file.duplicates_dropped = dropped;
    }
    report.rows = combined.frame.height() as u64;
    report.duplicates_dropped = combined.duplicates_dropped();
    report.columns = combined
        .frame
        .get_column_names()
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    report.duplicates = combined.duplicates;
    Ok(MonthTable {
        month,
        frame: combined.frame,
        quarantined,
        report,
    })
}

/// Names the first refused rows of a file in the log and counts the rest.
fn warn_quarantined(bucket: &BucketName, key: &ObjectKey, bad: &[QuarantinedRow]) {
    // A few lines per file say what is wrong; thousands would bury every other message of
    // a backfill. The quarantine files hold every row.
    for (i, row) in bad.iter().enumerate() {
        if i < QUARANTINE_WARNINGS_PER_FILE {
            tracing::warn!(
                "cannot read s3://{}/{} line {}: {} → row quarantined",
                bucket,
                row.source,
                row.line,
                row.reason
            );
        } else {
            tracing::debug!(
                "cannot read s3://{}/{} line {}: {} → row quarantined",
                bucket,
                row.source,
                row.line,
                row.reason
            );
        }
    }
    if bad.len() > QUARANTINE_WARNINGS_PER_FILE {
        tracing::warn!(
            "s3://{}/{}: {} more rows quarantined (every refused row, with its line and reason, is in the month's quarantine folder of the work bucket; -v lists them here)",
            bucket,
            key,
            bad.len() - QUARANTINE_WARNINGS_PER_FILE
        );
    }
}

/// Files up to this size are parsed on the async worker itself (tens of microseconds).
const PARSE_INLINE_BYTES: usize = 16 * 1024;

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
/// Row groups of at most 512² rows, LZ4, no column statistics. The month's table is one
/// chunk per column; each row group is a zero-copy slice of it (polars' `finish` would
/// copy the chunks into row groups first: a second table at the memory peak), and a
/// bounded row group keeps the encoder's buffers small. The table is gid's own
/// intermediate, read whole by the later stages, so min/max statistics would never prune
/// anything; LZ4 trades size for CPU (one generated month: zstd with statistics 149 ms and
/// 3.7 MB, LZ4 without them 92 ms and 5.6 MB).
pub fn to_parquet(frame: &mut DataFrame) -> Result<Vec<u8>, IngestError> {
    const ROW_GROUP_ROWS: usize = 512 * 512;
    let failed = IngestError::Combine;
    let mut buf = Vec::new();
    frame.align_chunks_par();
    {
        let mut writer = ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Lz4Raw)
            .with_statistics(StatisticsOptions::empty())
            .batched(frame.schema())
            .map_err(failed)?;
        if frame.first_col_n_chunks() > 1 {
            // Tables read back from Parquet (or built by other stages) keep their chunks
            // as row groups.
            writer.write_batch(frame).map_err(failed)?;
        } else {
            let mut offset = 0;
            while offset < frame.height() {
                let group = frame.slice(offset as i64, ROW_GROUP_ROWS);
                writer.write_batch(&group).map_err(failed)?;
                offset += ROW_GROUP_ROWS;
            }
        }
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
            source: e.into(),
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
        source: e.into(),
    })
}
