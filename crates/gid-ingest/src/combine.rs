//! A month's parsed exports → one table: one row per `service_request_id`, columns
//! combined by name.
//!
//! The duplicate rule: of the rows sharing a `service_request_id`, the one from the file
//! with the latest LastModified is kept (a tie goes to the later key in key order; within
//! one file, to the last row). A re-uploaded or corrected export is newer than the copy it
//! replaces, and a backup copy made later holds the same rows: either way the month counts
//! each request once. Files without a `service_request_id` column (possible only when
//! `ingest.required_columns` leaves it out) keep every row.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use gid_core::ObjectKey;
use polars_core::prelude::*;
use serde::{Deserialize, Serialize};

use crate::columns::SERVICE_REQUEST_ID;
use crate::parse::ExportRows;
use crate::IngestError;

/// One parsed export and where it came from (the duplicate rule needs both).
#[derive(Debug)]
pub struct SourcedExport {
    pub key: ObjectKey,
    pub last_modified: DateTime<Utc>,
    pub rows: ExportRows,
}

/// Rows of one file dropped because another copy of their `service_request_id` was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateCopies {
    /// The file whose rows were dropped.
    pub file: String,
    /// The file whose copies were kept (the same file for repeats within one export).
    pub kept_from: String,
    pub rows: u64,
}

impl std::fmt::Display for DuplicateCopies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.file == self.kept_from {
            write!(
                f,
                "{} repeats {} ids within the file (last row kept)",
                self.file, self.rows
            )
        } else {
            write!(
                f,
                "{} repeats {} ids of {} (newer, kept)",
                self.file, self.rows, self.kept_from
            )
        }
    }
}

/// The month's table and the copies left out of it.
#[derive(Debug)]
pub struct Combined {
    pub frame: DataFrame,
    /// Most dropped rows first.
    pub duplicates: Vec<DuplicateCopies>,
}

impl Combined {
    /// Rows dropped as copies, over all files.
    pub fn duplicates_dropped(&self) -> u64 {
        self.duplicates.iter().map(|d| d.rows).sum()
    }
}

/// Combines a month's exports (in any order; the table follows key order, so reruns give
/// identical tables): drops repeated `service_request_id`s by the duplicate rule, then
/// builds every column once for the month. A column missing from a file is null there.
///
/// Each file's text is freed as soon as its rows are in the table, so the peak is about
/// one table, not a table plus every file.
pub fn combine(mut exports: Vec<SourcedExport>) -> Result<Combined, IngestError> {
    exports.sort_by(|a, b| a.key.cmp(&b.key));
    let (dropped, duplicates) = find_duplicates(&exports);

    let mut names: Vec<&str> = Vec::new();
    let mut index: PlHashMap<&str, usize> = PlHashMap::default();
    for export in &exports {
        for name in export.rows.columns() {
            index.entry(name.as_str()).or_insert_with(|| {
                names.push(name.as_str());
                names.len() - 1
            });
        }
    }
    let height: usize = exports
        .iter()
        .zip(&dropped)
        .map(|(e, d)| e.rows.len() - d.len())
        .sum();
    let mut builders: Vec<StringChunkedBuilder> = names
        .iter()
        .map(|name| StringChunkedBuilder::new((*name).into(), height))
        .collect();
    // Where each of the month's columns is in each file (computed before the files are
    // consumed: `names` borrows from them).
    let sources: Vec<Vec<Option<usize>>> = exports
        .iter()
        .map(|export| {
            let mut source = vec![None; names.len()];
            for (c, name) in export.rows.columns().iter().enumerate() {
                source[index[name.as_str()]] = Some(c);
            }
            source
        })
        .collect();
    drop(index);
    drop(names);

    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(builders.len())
        .max(1);
    for ((export, dropped), source) in exports.into_iter().zip(dropped).zip(sources) {
        let (rows, dropped) = (&export.rows, dropped.as_slice());
        if threads > 1 && rows.len() >= PARALLEL_FILL_ROWS {
            // Columns are independent: a large file fills them on every core. (Parsing
            // ran one file per core; this is the only copy of the month's text.)
            std::thread::scope(|scope| {
                let mut groups: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
                for (i, job) in builders.iter_mut().zip(&source).enumerate() {
                    groups[i % threads].push(job);
                }
                for group in groups {
                    scope.spawn(move || {
                        for (builder, column) in group {
                            fill(builder, *column, rows, dropped);
                        }
                    });
                }
            });
        } else {
            for (builder, column) in builders.iter_mut().zip(&source) {
                fill(builder, *column, rows, dropped);
            }
        }
        // `export` (its text) is dropped here, before the next file is copied.
    }
    let columns: Vec<Column> = builders
        .into_iter()
        .map(|b| b.finish().into_column())
        .collect();
    let frame =
        DataFrame::new(height, columns).map_err(|e| IngestError::Combine(e.to_string()))?;
    Ok(Combined { frame, duplicates })
}

/// Files with fewer rows fill the month's columns on one thread (a thread costs more).
const PARALLEL_FILL_ROWS: usize = 50_000;

/// Appends one file's values of one column (`None`: the file lacks it) to the month's
/// column, leaving out `dropped` rows (descending indices).
fn fill(
    builder: &mut StringChunkedBuilder,
    column: Option<usize>,
    rows: &ExportRows,
    dropped: &[usize],
) {
    let Some(c) = column else {
        for _ in 0..rows.len() - dropped.len() {
            builder.append_null();
        }
        return;
    };
    let mut skip = dropped.iter().rev().peekable();
    for (r, value) in rows.column_values(c).enumerate() {
        if skip.peek() == Some(&&r) {
            skip.next();
        } else if value.is_empty() {
            builder.append_null();
        } else {
            builder.append_value(value);
        }
    }
}

/// Row indices to drop per file (descending), and the dropped copies per file pair.
fn find_duplicates(exports: &[SourcedExport]) -> (Vec<Vec<usize>>, Vec<DuplicateCopies>) {
    let ids: Vec<Option<usize>> = exports
        .iter()
        .map(|e| e.rows.columns().iter().position(|c| c == SERVICE_REQUEST_ID))
        .collect();
    // Newest file first, the later key first on a tie: the first copy seen is kept.
    let mut order: Vec<usize> = (0..exports.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&exports[a], &exports[b]);
        (b.last_modified, &b.key).cmp(&(a.last_modified, &a.key))
    });
    let rows_with_ids = exports
        .iter()
        .zip(&ids)
        .filter(|(_, id)| id.is_some())
        .map(|(e, _)| e.rows.len())
        .sum();
    let mut kept: PlHashMap<&str, usize> = PlHashMap::with_capacity(rows_with_ids);
    let mut dropped = vec![Vec::new(); exports.len()];
    let mut pairs: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    for &f in &order {
        let Some(id) = ids[f] else { continue };
        let rows = &exports[f].rows;
        // Last row first: within a file the last copy wins.
        for r in (0..rows.len()).rev() {
            let before = kept.len();
            let winner = *kept.entry(rows.field(r, id).trim()).or_insert(f);
            if kept.len() == before {
                dropped[f].push(r);
                *pairs.entry((f, winner)).or_default() += 1;
            }
        }
    }
    let mut duplicates: Vec<DuplicateCopies> = pairs
        .into_iter()
        .map(|((file, winner), rows)| DuplicateCopies {
            file: exports[file].key.to_string(),
            kept_from: exports[winner].key.to_string(),
            rows,
        })
        .collect();
    duplicates.sort_by(|a, b| b.rows.cmp(&a.rows));
    (dropped, duplicates)
}
