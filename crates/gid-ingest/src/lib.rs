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

/// The export's column names the later stages rely on.
pub mod columns;
mod combine;
mod dates;
mod encode;
mod parse;
mod parts;
mod rows;
mod rules;
mod slots;
mod split;
mod stitch;
mod streamed;

use std::io::Cursor;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use gid_core::{BucketName, Month, ObjectKey, OutOfMonth, WorkKeys};
use gid_storage::{list_all, ObjectMeta, ObjectStore, PutOptions, StorageError, WrittenObject};
use polars_core::prelude::*;
use polars_io::prelude::{
    ParquetCompression, ParquetReader, ParquetWriter, SerReader, StatisticsOptions,
};
use polars_parquet::write::ZstdLevel;
use serde::{Deserialize, Serialize};

pub use combine::{combine, Combined, DuplicateCopies, SourcedExport};
pub use dates::normalise_timestamp;
pub use parse::{parse_export, ParsedExport, ParsedFile, QuarantineReason, QuarantinedRow};
pub use parts::{FileParts, PreviousIngest};
pub use rows::ExportRows;
pub use rules::{ExportRules, SkipReason};
use slots::{parser_slots, parser_slots_count, MonthRank};
use streamed::{Streamed, StreamedExport};

/// What can stop a month's ingest (bad rows and foreign files never do: they are
/// quarantined or skipped).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The month's prefix holds no object at all (a wrong month or layout, or the
    /// exports are not uploaded yet).
    #[error("no input under s3://{bucket}/{prefix}: no object is stored under that prefix")]
    NoInput {
        /// The requests bucket.
        bucket: BucketName,
        /// The month's prefix in it.
        prefix: String,
    },
    /// Objects are there, but every one was skipped as not an export.
    #[error("none of the {files} objects under s3://{bucket}/{prefix} is an export ({reasons}); the warnings above name each file and why, and ingest.required_columns lists the columns an export must have")]
    NoExport {
        /// The requests bucket.
        bucket: BucketName,
        /// The month's prefix in it.
        prefix: String,
        /// Objects listed under the prefix (all skipped).
        files: usize,
        /// Skipped files per reason, e.g. `1 empty, 2 without the export's key columns`.
        reasons: String,
    },
    /// polars could not build or stack the files' tables.
    #[error("cannot combine the month's files: {0}")]
    Combine(#[source] PolarsError),
    /// The Parquet table (or its report) a previous ingest wrote cannot be read back.
    #[error("the month's table in s3://{bucket}/{key} is unreadable ({source})")]
    CorruptTable {
        /// The work bucket.
        bucket: BucketName,
        /// The table's (or report's) key.
        key: String,
        /// The Parquet reader's or the JSON parser's complaint.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Listing, reading or writing the buckets failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Where a month's exports are, how hard to pull them and what counts as one.
#[derive(Debug, Clone)]
pub struct IngestSource {
    /// The requests bucket.
    pub bucket: BucketName,
    /// The month's prefix (`layout.month_prefix` filled in), ending in `/`.
    pub prefix: String,
    /// Only keys ending with this are exports (e.g. `.csv`).
    pub suffix: String,
    /// Objects downloaded and parsed at once.
    pub concurrency: usize,
    /// Bytes of exports downloaded and not yet parsed at any time (raised to one of the
    /// month's largest files per core).
    pub max_inflight_bytes: u64,
    /// Header and row rules (the month is added by [`ingest_month`]).
    pub rules: ExportRules,
}

/// What happened to one input object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileReport {
    /// The object's key in the requests bucket.
    pub key: String,
    /// Its ETag when read: a changed ETag means the file is read again next run.
    pub etag: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Rows read from the file (before copies of other files' rows were dropped).
    pub rows: u64,
    /// Rows refused and written to the quarantine instead.
    pub quarantined: u64,
    /// Rows dropped because a newer copy of their `service_request_id` was kept.
    #[serde(default)]
    pub duplicates_dropped: u64,
    /// Rows whose `date_requested` is empty or outside the month (quarantined or kept).
    #[serde(default)]
    pub out_of_month: u64,
    /// Why the file contributed nothing.
    pub skipped: Option<SkipReason>,
    /// The file's parsed rows kept in the work bucket for the next run
    /// ([`FileParts`]), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
}

/// The ingest stage's account of a month.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestReport {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Every object listed under the month's prefix, exports or not.
    pub files: Vec<FileReport>,
    /// Rows in the month's table.
    pub rows: u64,
    /// Rows quarantined over all files.
    pub quarantined: u64,
    /// Bytes read over all files.
    pub bytes: u64,
    /// The table's columns, in order.
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
    /// What the files' parts depend on besides the files ([`FileParts::fingerprint`]).
    #[serde(default)]
    pub fingerprint: String,
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
    /// Objects listed, exports or not.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
    /// Rows in the month's table.
    pub rows: u64,
    /// Rows quarantined.
    pub quarantined: u64,
    /// Skipped files per reason label ([`IngestReport::skipped_by_reason`]).
    pub skipped: Vec<(&'static str, usize)>,
    /// Rows left out as copies of a kept `service_request_id`.
    pub duplicates_dropped: u64,
    /// The dropped copies per file pair, most first.
    pub duplicates: Vec<DuplicateCopies>,
    /// Rows whose `date_requested` is empty or outside the month.
    pub out_of_month: u64,
    /// Whether those were quarantined or kept.
    pub out_of_month_policy: OutOfMonth,
    /// The month, `YYYY-MM`.
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
    /// The month ingested.
    pub month: Month,
    /// One row per `service_request_id`, columns combined by name (missing values null).
    /// `None` when the month was streamed (see `tally`): the table is then only in the
    /// Parquet file [`persist`] writes.
    pub frame: Option<DataFrame>,
    /// The month's counts, when its exports were tallied as they were parsed (every export
    /// got a part and no id repeats): the aggregate stage finishes the summary from them.
    pub tally: Option<gid_aggregate::Tally>,
    /// The rows refused in this run (files read afresh only; see `kept_quarantine`).
    pub quarantined: Vec<QuarantinedRow>,
    /// The account of the month that [`persist`] writes as `ingest.json`.
    pub report: IngestReport,
    /// Quarantine objects of files taken from their parts: kept as the last run wrote them.
    pub kept_quarantine: Vec<ObjectMeta>,
    /// The month's parts folder when it may hold parts no file needs any more (of files
    /// that changed or went away, or of a run that failed): [`persist`] lists it once the
    /// new report is written and deletes every part the report does not name.
    pub parts_folder: Option<String>,
    /// Files taken from their parts or their last skip reason instead of being fetched.
    pub reused_files: usize,
    /// The exports' parts in key order when the table is exactly their rows one file after
    /// the other (every export has one, none lost rows to a newer copy): [`persist`] then
    /// copies their pages into the month's Parquet file instead of encoding the table.
    pub parts_in_order: Option<Vec<Bytes>>,
}

/// The objects under a month's prefix: the exports to read, and the rest (reported and
/// skipped).
#[derive(Debug, Clone)]
pub struct MonthListing {
    /// Objects whose key ends with the export suffix.
    pub exports: Vec<ObjectMeta>,
    /// Every other object (reported as skipped, never read).
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
    /// The part this run wrote or reused.
    part: Option<ObjectKey>,
    /// The part's bytes (also when keeping it failed: they are the file's rows all the same).
    encoded: Option<Bytes>,
    /// The export counted and dropped but for its ids (its `parsed` rows are then empty).
    streamed: Option<Streamed>,
    /// The last run's report of the file, when it was taken from there.
    reused: Option<FileReport>,
}

/// Per-file parts for one run: where they go, and what the last run left.
#[derive(Clone, Copy)]
struct Reuse<'a> {
    parts: &'a FileParts,
    previous: &'a PreviousIngest,
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
    read_month(store, source, month, listing, None, on_file).await
}

/// [`ingest_month`] keeping a [part](FileParts) of each large export: a file whose key
/// and ETag the last run (`previous`) recorded is taken from its part (or its skip
/// reason) instead of being downloaded and parsed; the others are read and get a part.
pub async fn ingest_month_with_parts(
    store: &dyn ObjectStore,
    source: &IngestSource,
    month: Month,
    listing: MonthListing,
    parts: &FileParts,
    previous: &PreviousIngest,
    on_file: &(dyn Fn(&ObjectMeta) + Sync),
) -> Result<MonthTable, IngestError> {
    let reuse = Reuse { parts, previous };
    read_month(store, source, month, listing, Some(reuse), on_file).await
}

/// A listed file taken from what the last run left, when it can be: its skip reason, or
/// its part (and quarantine object, when it had refused rows). `None`: read the file.
async fn reuse_file(
    store: &dyn ObjectStore,
    source: &IngestSource,
    reuse: Reuse<'_>,
    gate: &DownloadsFirst,
    meta: &ObjectMeta,
) -> Option<ParsedObject> {
    let last = reuse.previous.file(&meta.key, &meta.etag)?;
    if let Some(reason) = &last.skipped {
        return Some(ParsedObject {
            meta: meta.clone(),
            parsed: ParsedFile::Skipped(reason.clone()),
            part: None,
            encoded: None,
            streamed: None,
            reused: Some(last.clone()),
        });
    }
    let part = ObjectKey::new(last.part.clone()?).ok()?;
    if last.quarantined > 0
        && reuse
            .previous
            .quarantine(&reuse.parts.keys.quarantine_for(&meta.key))
            .is_none()
    {
        // Its refused rows are only in the file now.
        return None;
    }
    let bucket = &reuse.parts.bucket;
    let body = match store.get(bucket, &part).await {
        Ok(object) => object.body,
        Err(e) => {
            tracing::warn!(
                "cannot read the part s3://{bucket}/{part} of s3://{}/{} ({e}); reading the file again",
                source.bucket,
                meta.key
            );
            return None;
        }
    };
    gate.wait().await;
    let _core = parser_slots().acquire(gate.rank).await;
    let (b, k, encoded) = (bucket.clone(), part.clone(), body.clone());
    let rows = tokio::task::spawn_blocking(move || {
        let (header, tallied) = parts::decode_tallied(&b, &k, body.clone())?;
        match Streamed::of(&header, &tallied, encoded.clone()) {
            Some(streamed) => Ok((ExportRows::default(), Some(streamed), encoded)),
            // Not tallied (no `service_name`): the month is combined as a table.
            None => Ok::<_, IngestError>((parts::decode(&b, &k, body)?, None, encoded)),
        }
    })
    .await
    .expect("part reader panicked");
    match rows {
        Ok((rows, streamed, encoded)) => Some(ParsedObject {
            meta: meta.clone(),
            parsed: ParsedFile::Export(ParsedExport {
                rows,
                quarantined: Vec::new(),
                out_of_month: last.out_of_month,
            }),
            part: Some(part),
            encoded: Some(encoded),
            streamed,
            reused: Some(last.clone()),
        }),
        Err(e) => {
            tracing::warn!(
                "{e}; reading s3://{}/{} again instead",
                source.bucket,
                meta.key
            );
            None
        }
    }
}

/// Downloads and parses one file (and keeps its part, when it gets one).
async fn fetch_file(
    store: &dyn ObjectStore,
    source: &IngestSource,
    rules: &ExportRules,
    reuse: Option<Reuse<'_>>,
    budget: &InflightBytes,
    gate: &DownloadsFirst,
    meta: ObjectMeta,
) -> Result<ParsedObject, IngestError> {
    let waiting = Parsing(gate);
    if meta.size == 0 {
        // The listing already says what a GET would: nothing to count (one request less
        // per month on exports that deliver an empty placeholder file).
        return Ok(ParsedObject {
            meta,
            parsed: ParsedFile::Skipped(SkipReason::Empty),
            part: None,
            encoded: None,
            streamed: None,
            reused: None,
        });
    }
    // Held until the file is parsed (its body dropped).
    let inflight = budget.acquire(meta.size).await;
    let object = store.get(&source.bucket, &meta.key).await?;
    let key = meta.key.clone();
    let rules = rules.clone();
    let wanted = reuse.filter(|r| r.parts.wanted(meta.size));
    // Downloads overlap freely; parsing is CPU work, one file per core at a time
    // across every month in flight. More parsers than cores only interleave, and
    // each extra thread that allocates keeps its own malloc arena (measured: peak
    // RSS grew with the number of months run, not with the months in flight).
    let core = parser_slots().acquire(gate.rank).await;
    drop(waiting);
    let want = wanted.is_some();
    let Kept {
        parsed,
        encoded,
        streamed,
    } = if object.body.len() <= PARSE_INLINE_BYTES {
        // A handoff to the blocking pool costs more than parsing a small file
        // (20,000 one-row files: half of the run was thread wake-ups).
        let parsed = parse_export(&key, object.body, &rules);
        keep_part(parsed, want)
    } else {
        tokio::task::spawn_blocking(move || {
            let parsed = parse_export(&key, object.body, &rules);
            // Encoded and counted on the parser thread while other files download.
            keep_part(parsed, want)
        })
        .await
        .expect("parser task panicked")
    };
    drop(core);
    drop(inflight);
    let mut part = None;
    let mut kept_bytes = None;
    if let (Some(reuse), Some(encoded)) = (wanted, encoded) {
        let key = reuse.parts.key_for(&meta.key, &meta.etag);
        match encoded {
            Ok(body) => {
                kept_bytes = Some(body.clone());
                match parts::put(store, &reuse.parts.bucket, &key, body).await {
                    Ok(()) => part = Some(key),
                    Err(e) => tracing::warn!(
                        "cannot keep the part of s3://{}/{} ({e}); the next run reads the file again",
                        source.bucket,
                        meta.key
                    ),
                }
            }
            Err(e) => tracing::warn!(
                "cannot encode the part of s3://{}/{} ({e}); the next run reads the file again",
                source.bucket,
                meta.key
            ),
        }
    }
    Ok(ParsedObject {
        meta,
        parsed,
        part,
        encoded: kept_bytes,
        streamed,
        reused: None,
    })
}

/// A parsed file, with what [`keep_part`] made of it.
struct Kept {
    parsed: ParsedFile,
    /// Its part, when one was wanted.
    encoded: Option<Result<Bytes, IngestError>>,
    /// The export streamed (its `parsed` rows are then empty).
    streamed: Option<Streamed>,
}

/// A parsed export's part (when `want`ed) and, when it has one, the export
/// [streamed](streamed): tallied, its rows dropped but for their ids.
fn keep_part(mut parsed: ParsedFile, want: bool) -> Kept {
    let kept = |parsed, encoded, streamed| Kept {
        parsed,
        encoded,
        streamed,
    };
    let ParsedFile::Export(export) = &mut parsed else {
        return kept(parsed, None, None);
    };
    if !want {
        return kept(parsed, None, None);
    }
    let table = match parts::table(&export.rows) {
        Ok(table) => table,
        Err(e) => return kept(parsed, Some(Err(e)), None),
    };
    let encoded = match encode::part(&mut table.clone(), PARQUET_ZSTD_LEVEL) {
        Ok(encoded) => Bytes::from(encoded),
        Err(e) => return kept(parsed, Some(Err(e)), None),
    };
    let streamed = Streamed::of(export.rows.columns(), &table, encoded.clone());
    drop(table);
    if streamed.is_some() {
        export.rows = ExportRows::default();
    }
    kept(parsed, Some(Ok(encoded)), streamed)
}

async fn read_month(
    store: &dyn ObjectStore,
    source: &IngestSource,
    month: Month,
    listing: MonthListing,
    reuse: Option<Reuse<'_>>,
    on_file: &(dyn Fn(&ObjectMeta) + Sync),
) -> Result<MonthTable, IngestError> {
    let MonthListing {
        exports: inputs,
        others,
    } = listing;
    let rules = &source.rules.clone().in_month(month);
    let largest = inputs.iter().map(|m| m.size).max().unwrap_or(0);
    let budget = &InflightBytes::for_month(source.max_inflight_bytes, largest);
    // Downloads first in the stream too: a reused part waits for every download to have a
    // parser slot, so every download must have been started.
    let reused = |m: &ObjectMeta| reuse.is_some_and(|r| r.previous.reuses(&m.key, &m.etag));
    let mut inputs = inputs;
    inputs.sort_by_key(|m| reused(m));
    let gate = &DownloadsFirst::new(
        inputs.iter().filter(|m| !reused(m)).count(),
        MonthRank::next(),
    );
    let mut parsed: Vec<ParsedObject> = futures::stream::iter(inputs)
        .map(|meta| async move {
            let reused = match reuse {
                Some(reuse) => reuse_file(store, source, reuse, gate, &meta).await,
                None => None,
            };
            let parsed = match reused {
                Some(parsed) => parsed,
                None => fetch_file(store, source, rules, reuse, budget, gate, meta).await?,
            };
            on_file(&parsed.meta);
            Ok::<_, IngestError>(parsed)
        })
        .buffer_unordered(source.concurrency.max(1))
        .try_collect()
        .await?;
    // Downloads finish in any order; report in key order so reruns give identical reports.
    parsed.sort_by(|a, b| a.meta.key.cmp(&b.meta.key));

    let mut files = Vec::with_capacity(parsed.len() + others.len());
    let mut exports = Vec::new();
    let mut streamed_exports = Vec::new();
    let mut quarantined = Vec::new();
    let mut kept_quarantine = Vec::new();
    let mut parts_kept = 0;
    let mut reused_files = 0;
    let mut out_of_month = 0;
    // Stays `Some` while every export so far has its part's bytes.
    let mut parts_in_order = Some(Vec::new());
    for ParsedObject {
        meta,
        parsed,
        part,
        encoded,
        streamed,
        reused,
    } in parsed
    {
        let mut report = FileReport {
            key: meta.key.to_string(),
            etag: meta.etag.clone(),
            bytes: meta.size,
            rows: 0,
            quarantined: 0,
            duplicates_dropped: 0,
            out_of_month: 0,
            skipped: None,
            part: part.as_ref().map(ToString::to_string),
        };
        parts_kept += usize::from(part.is_some());
        if let Some(last) = &reused {
            reused_files += 1;
            report.quarantined = last.quarantined;
            if last.quarantined > 0 {
                let key = reuse
                    .expect("reused only with parts")
                    .parts
                    .keys
                    .quarantine_for(&meta.key);
                kept_quarantine.extend(reuse.and_then(|r| r.previous.quarantine(&key)).cloned());
            }
        }
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
                match (&mut parts_in_order, encoded) {
                    (Some(parts), Some(part)) => parts.push(part),
                    _ => parts_in_order = None,
                }
                if reused.is_none() {
                    report.quarantined = export.quarantined.len() as u64;
                }
                report.out_of_month = export.out_of_month;
                out_of_month += export.out_of_month;
                warn_quarantined(&source.bucket, &meta.key, &export.quarantined);
                quarantined.extend(export.quarantined);
                match streamed {
                    Some(streamed) => {
                        report.rows = streamed.rows() as u64;
                        let reuse = reuse.expect("streamed only with parts");
                        streamed_exports.push(StreamedExport {
                            part_bucket: reuse.parts.bucket.clone(),
                            part_key: reuse.parts.key_for(&meta.key, &meta.etag),
                            key: meta.key,
                            last_modified: meta.last_modified,
                            streamed,
                        });
                    }
                    None => {
                        report.rows = export.rows.len() as u64;
                        exports.push(SourcedExport {
                            key: meta.key,
                            last_modified: meta.last_modified,
                            rows: export.rows,
                        });
                    }
                }
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
            part: None,
        });
    }
    if reused_files > 0 {
        tracing::info!(
            "{month}: {reused_files} of {} files unchanged since the last run, taken from what it kept (--force reads them again)",
            files.len()
        );
    }

    let mut report = IngestReport {
        month: month.to_string(),
        rows: 0,
        quarantined: files.iter().map(|f| f.quarantined).sum(),
        bytes: files.iter().map(|f| f.bytes).sum(),
        columns: Vec::new(),
        files,
        duplicates_dropped: 0,
        duplicates: Vec::new(),
        out_of_month,
        out_of_month_policy: rules.out_of_month(),
        fingerprint: reuse
            .map(|r| r.parts.fingerprint.clone())
            .unwrap_or_default(),
    };
    if exports.is_empty() && streamed_exports.is_empty() {
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
    let assembled =
        tokio::task::spawn_blocking(move || streamed::assemble(exports, streamed_exports))
            .await
            .expect("combining panicked")?;
    let position: std::collections::HashMap<&str, usize> = report
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.key.as_str(), i))
        .collect();
    let mut dropped_per_file = vec![0; report.files.len()];
    for copies in &assembled.duplicates {
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
    report.rows = assembled.rows;
    report.duplicates_dropped = combine::rows_dropped(&assembled.duplicates);
    report.columns = assembled.columns;
    if !assembled.duplicates.is_empty() {
        // Some file lost rows: its part holds more than the table.
        parts_in_order = None;
    }
    report.duplicates = assembled.duplicates;
    Ok(MonthTable {
        month,
        frame: assembled.frame,
        tally: assembled.tally,
        quarantined,
        report,
        kept_quarantine,
        parts_folder: reuse
            .filter(|r| parts_kept > 0 || r.previous.named_parts())
            .map(|r| r.parts.folder()),
        reused_files,
        parts_in_order,
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

/// The bytes of a month's exports downloaded and not yet parsed, bounded
/// (`ingest.max_inflight_mb`, raised to one of the month's largest files per parser so
/// that every parser stays busy): without a bound every file of the month is downloaded
/// at once while two are parsed, so a month's peak held all of its CSV bytes (a 1 GB month
/// peaked at 2 GB; 12 months of 33 MB at `--jobs 2` 142 MB, 110 MB with 16 MiB).
struct InflightBytes {
    kib: tokio::sync::Semaphore,
    total: u32,
}

impl InflightBytes {
    fn for_month(bound: u64, largest_file: u64) -> Self {
        let parsers = parser_slots_count() as u64;
        let bytes = bound.max(largest_file.saturating_mul(parsers));
        let total = u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            kib: tokio::sync::Semaphore::new(total as usize),
            total,
        }
    }

    /// Waits until a file of `size` bytes fits.
    async fn acquire(&self, size: u64) -> tokio::sync::SemaphorePermit<'_> {
        let kib = u32::try_from(size.div_ceil(1024)).unwrap_or(u32::MAX);
        self.kib
            .acquire_many(kib.clamp(1, self.total))
            .await
            .expect("never closed")
    }
}

/// Files up to this size are parsed on the async worker itself (tens of microseconds).
const PARSE_INLINE_BYTES: usize = 16 * 1024;

/// Refused rows logged one by one per file; the rest are summed up in one line.
const QUARANTINE_WARNINGS_PER_FILE: usize = 5;

/// Holds a month's reused parts back from the parser slots until every file it downloads
/// has one.
///
/// A rerun's longest task is the changed file: downloaded, parsed, encoded as its part. The
/// reused parts (read, decoded, tallied) are ready sooner and, first in the slots' queue,
/// made it wait: in the 1 GB month's rerun the changed file started parsing after a second
/// of decoding. With the gate, the download parses on one core while parts decode on the
/// other.
struct DownloadsFirst {
    downloads: u32,
    parsing: tokio::sync::Semaphore,
    /// The month's place in the parser slots' queue.
    rank: MonthRank,
}

impl DownloadsFirst {
    fn new(downloads: usize, rank: MonthRank) -> Self {
        Self {
            downloads: u32::try_from(downloads).unwrap_or(u32::MAX),
            parsing: tokio::sync::Semaphore::new(0),
            rank,
        }
    }

    /// A download took its parser slot (or needs none).
    fn parsing(&self) {
        self.parsing.add_permits(1);
    }

    /// Waits until every download of the month has taken its parser slot.
    async fn wait(&self) {
        if self.downloads > 0 {
            // The permits go back as this returns: every waiting part passes.
            let _all = self
                .parsing
                .acquire_many(self.downloads)
                .await
                .expect("never closed");
        }
    }
}

/// Tells the gate a download no longer waits for a parser slot, however its task ends.
struct Parsing<'a>(&'a DownloadsFirst);

impl Drop for Parsing<'_> {
    fn drop(&mut self) {
        self.0.parsing();
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

/// zstd's fastest level (see [`to_parquet`]).
const PARQUET_ZSTD_LEVEL: i32 = 1;

/// Serialises a table as Parquet.
///
/// Row groups of at most 512² rows, zstd level 1, no column statistics. The month's table is
/// one chunk per column; each row group is a zero-copy slice of it (polars' `finish` would
/// copy the chunks into row groups first: a second table at the memory peak), and a
/// bounded row group keeps the encoder's buffers small. The table is gid's own
/// intermediate, read whole by the later stages, so min/max statistics would never prune
/// anything. zstd at level 1 over LZ4: a 25,000-row export's part is 411 KB instead of
/// 706 KB (−42 %) for ~2 ms more on one core, and the parts are what an incremental rerun
/// reads back (zstd at its default level with statistics had cost 149 ms against LZ4's 92 ms
/// for a month: the statistics and the level, not the codec).
pub fn to_parquet(frame: &mut DataFrame) -> Result<Vec<u8>, IngestError> {
    let failed = IngestError::Combine;
    let mut buf = Vec::new();
    frame.align_chunks_par();
    {
        let mut writer = ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Zstd(Some(
                ZstdLevel::try_new(PARQUET_ZSTD_LEVEL).expect("a valid zstd level"),
            )))
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

/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// The month's table as Parquet: its files' parts stitched page by page when they are
/// the table (see [`MonthTable::parts_in_order`]), else the table encoded.
fn month_parquet(
    table: &mut MonthTable,
    work: &BucketName,
    keys: &WorkKeys,
) -> Result<Vec<u8>, IngestError> {
    // Kept on the table (cheap clones): persisting twice writes the same file.
    if let Some(parts) = table.parts_in_order.clone() {
        let schema = match &table.frame {
            Some(frame) => frame.clear(),
            None => text_columns(&table.report.columns)?,
        };
        match stitch::stitch(&parts, &schema) {
            Ok(Some(parquet)) => {
                tracing::debug!(
                    "{}: the month's table is its {} files' parts, copied page by page",
                    table.month,
                    parts.len()
                );
                return Ok(parquet);
            }
            Ok(None) => tracing::debug!(
                "{}: the files' parts differ from the table in their columns' types: encoding it",
                table.month
            ),
            // A part that cannot be copied only costs the encoding.
            Err(e) => tracing::warn!(
                "{}: cannot copy the files' parts into the month's table ({e}); encoding it instead",
                table.month
            ),
        }
        if table.frame.is_none() {
            table.frame = Some(streamed::table_of_parts(work, &keys.requests(), &parts)?);
        }
    }
    let frame = table
        .frame
        .as_mut()
        .expect("a month without its table is streamed, and a streamed month has its parts");
    to_parquet(frame)
}

/// An empty table of text columns.
fn text_columns(names: &[String]) -> Result<DataFrame, IngestError> {
    let columns = names
        .iter()
        .map(|name| Column::new_empty(name.as_str().into(), &DataType::String))
        .collect();
    DataFrame::new(0, columns).map_err(IngestError::Combine)
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
    let kept: std::collections::HashSet<&ObjectKey> =
        table.kept_quarantine.iter().map(|o| &o.key).collect();
    let stale: Vec<ObjectKey> = list_all(store, work, &keys.quarantine_prefix())
        .await?
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !kept.contains(k) && !by_source.keys().any(|s| keys.quarantine_for(s) == *k))
        .collect();
    store.delete_many(work, &stale).await?;
    written.extend(
        table
            .kept_quarantine
            .iter()
            .cloned()
            .map(WrittenObject::from),
    );
    for (source, rows) in by_source {
        let key = keys.quarantine_for(source);
        let body = Bytes::from(quarantine_csv(&rows));
        let options = PutOptions::new("text/csv; charset=utf-8");
        written.push(store.put(work, &key, body, &options).await?);
    }
    let parquet = Bytes::from(month_parquet(table, work, keys)?);
    let options = PutOptions::new("application/vnd.apache.parquet");
    written.push(store.put(work, &keys.requests(), parquet, &options).await?);
    let report = Bytes::from(serde_json::to_vec_pretty(&table.report).expect("report serialises"));
    let options = PutOptions::new("application/json");
    written.push(
        store
            .put(work, &keys.ingest_report(), report, &options)
            .await?,
    );
    if let Some(folder) = &table.parts_folder {
        // Only now that no report names them.
        let named: std::collections::HashSet<&str> = table
            .report
            .files
            .iter()
            .filter_map(|f| f.part.as_deref())
            .collect();
        let stale: Vec<ObjectKey> = list_all(store, work, folder)
            .await?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| !named.contains(k.as_str()))
            .collect();
        store.delete_many(work, &stale).await?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reused_parts_wait_until_every_download_has_a_parser_slot() {
        let gate = DownloadsFirst::new(2, MonthRank::next());
        let mut waiting = Box::pin(gate.wait());
        let mut done = || futures::FutureExt::now_or_never(waiting.as_mut()).is_some();
        assert!(!done());
        drop(Parsing(&gate));
        assert!(!done(), "one of two downloads parsing");
        gate.parsing();
        assert!(done(), "both downloads parsing");
        // Every other part passes too: the permits went back.
        assert!(futures::FutureExt::now_or_never(gate.wait()).is_some());
        // A month with nothing to download holds nothing back.
        assert!(
            futures::FutureExt::now_or_never(DownloadsFirst::new(0, MonthRank::next()).wait())
                .is_some()
        );
    }
}
