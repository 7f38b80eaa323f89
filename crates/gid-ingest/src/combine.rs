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
use crate::rows::{ColumnView, ExportRows, Store, TextRows};
use crate::IngestError;

/// One parsed export and where it came from (the duplicate rule needs both).
#[derive(Debug)]
pub struct SourcedExport {
    /// The file's key.
    pub key: ObjectKey,
    /// When the file was last written: of two copies of an id, the newer file's wins.
    pub last_modified: DateTime<Utc>,
    /// Its good rows.
    pub rows: ExportRows,
}

/// Rows of one file dropped because another copy of their `service_request_id` was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateCopies {
    /// The file whose rows were dropped.
    pub file: String,
    /// The file whose copies were kept (the same file for repeats within one export).
    pub kept_from: String,
    /// Rows of `file` dropped.
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
    /// One row per `service_request_id`, columns combined by name.
    pub frame: DataFrame,
    /// Most dropped rows first.
    pub duplicates: Vec<DuplicateCopies>,
}

impl Combined {
    /// Rows dropped as copies, over all files.
    pub fn duplicates_dropped(&self) -> u64 {
        rows_dropped(&self.duplicates)
    }
}

/// Rows dropped as copies, over every file pair of `duplicates`.
pub(crate) fn rows_dropped(duplicates: &[DuplicateCopies]) -> u64 {
    duplicates.iter().map(|d| d.rows).sum()
}

/// Combines a month's exports (in any order; the table follows key order, so reruns give
/// identical tables): drops repeated `service_request_id`s by the duplicate rule, then
/// joins the files by column name; a column missing from a file is null there.
///
/// Large files bring their own columns (one chunk each, not copied unless they lost rows
/// to newer copies); each run of small files between them is copied into one set of
/// columns, their text freed file by file, so the peak is about one table.
pub fn combine(mut exports: Vec<SourcedExport>) -> Result<Combined, IngestError> {
    exports.sort_by(|a, b| a.key.cmp(&b.key));
    let ids: Vec<FileIds<'_>> = exports.iter().map(FileIds::of).collect();
    let (dropped, duplicates) = find_duplicates(&ids);
    drop(ids);
    let failed = IngestError::Combine;

    let mut segments: Vec<DataFrame> = Vec::new();
    let mut small: Vec<SmallFile> = Vec::new();
    for (export, dropped) in exports.into_iter().zip(dropped) {
        match export.rows.into_parts() {
            (_, Store::Columns(frame)) => {
                if !small.is_empty() {
                    let run = std::mem::take(&mut small);
                    segments.push(columns_of_small_files(run).map_err(failed)?);
                }
                segments.push(without_rows(frame, &dropped).map_err(failed)?);
            }
            (columns, Store::Text(text)) => small.push(SmallFile {
                columns,
                text,
                dropped,
            }),
        }
    }
    if !small.is_empty() {
        segments.push(columns_of_small_files(small).map_err(failed)?);
    }
    let frame = match segments.len() {
        0 => DataFrame::empty(),
        1 => segments.pop().expect("one segment"),
        _ => polars_core::functions::concat_df_diagonal(&segments).map_err(failed)?,
    };
    Ok(Combined { frame, duplicates })
}

/// A large file's columns without the rows dropped as copies (a copy of the file only
/// when it lost rows).
fn without_rows(frame: DataFrame, dropped: &[usize]) -> PolarsResult<DataFrame> {
    if dropped.is_empty() {
        return Ok(frame);
    }
    let mut keep = vec![true; frame.height()];
    for &r in dropped {
        keep[r] = false;
    }
    frame.filter(&BooleanChunked::from_slice("keep".into(), &keep))
}

/// A small file's rows waiting to be copied into the month's columns.
struct SmallFile {
    columns: Vec<String>,
    text: TextRows,
    /// Rows left out as copies (descending indices).
    dropped: Vec<usize>,
}

/// One set of columns for consecutive small files (key order), each file's text freed
/// as soon as it is copied.
fn columns_of_small_files(files: Vec<SmallFile>) -> PolarsResult<DataFrame> {
    let mut names: Vec<&str> = Vec::new();
    let mut index: PlHashMap<&str, usize> = PlHashMap::default();
    for file in &files {
        for name in &file.columns {
            index.entry(name.as_str()).or_insert_with(|| {
                names.push(name.as_str());
                names.len() - 1
            });
        }
    }
    let height: usize = files.iter().map(|f| f.text.len() - f.dropped.len()).sum();
    let mut builders: Vec<StringChunkedBuilder> = names
        .iter()
        .map(|name| StringChunkedBuilder::new((*name).into(), height))
        .collect();
    // Where each column is in each file (computed before the files are consumed: `names`
    // borrows from them).
    let sources: Vec<Vec<Option<usize>>> = files
        .iter()
        .map(|file| {
            let mut source = vec![None; names.len()];
            for (c, name) in file.columns.iter().enumerate() {
                source[index[name.as_str()]] = Some(c);
            }
            source
        })
        .collect();
    drop(index);
    drop(names);
    for (file, source) in files.into_iter().zip(sources) {
        let kept = file.text.len() - file.dropped.len();
        for (builder, column) in builders.iter_mut().zip(source) {
            match column {
                Some(c) => fill(builder, &file.text, c, &file.dropped),
                None => (0..kept).for_each(|_| builder.append_null()),
            }
        }
        // `file` (its text) is dropped here, before the next file is copied.
    }
    let columns: Vec<Column> = builders
        .into_iter()
        .map(|b| b.finish().into_column())
        .collect();
    DataFrame::new(height, columns)
}

/// Appends one file's values of one column to the month's column, leaving out `dropped`
/// rows (descending indices).
fn fill(builder: &mut StringChunkedBuilder, rows: &TextRows, column: usize, dropped: &[usize]) {
    let mut skip = dropped.iter().rev().peekable();
    for (r, value) in rows.column_values(column).enumerate() {
        if skip.peek() == Some(&&r) {
            skip.next();
        } else if value.is_empty() {
            builder.append_null();
        } else {
            builder.append_value(value);
        }
    }
}

/// A file's ids as the duplicate rule reads them.
pub(crate) enum Ids<'a> {
    /// As text.
    Text(ColumnView<'a>),
    /// Every id a [canonical number](canonical_number), converted where the file was
    /// parsed (on its parser thread, not in the month's serial tail).
    Numbers(&'a [u64]),
}

/// `ids` as numbers when every one is a canonical number (trimmed), else `None`.
pub(crate) fn numeric_ids(ids: &StringChunked) -> Option<Vec<u64>> {
    ids.iter()
        .map(|id| canonical_number(id.unwrap_or("").trim()))
        .collect()
}

/// What the duplicate rule reads of one file: when it was written and its ids.
pub(crate) struct FileIds<'a> {
    pub(crate) key: &'a ObjectKey,
    pub(crate) last_modified: DateTime<Utc>,
    /// `None` for a file without a `service_request_id` column.
    pub(crate) ids: Option<Ids<'a>>,
    pub(crate) rows: usize,
}

impl<'a> FileIds<'a> {
    fn of(export: &'a SourcedExport) -> Self {
        let rows = &export.rows;
        Self {
            key: &export.key,
            last_modified: export.last_modified,
            ids: rows
                .columns()
                .iter()
                .position(|c| c == SERVICE_REQUEST_ID)
                .map(|id| Ids::Text(rows.column(id))),
            rows: rows.len(),
        }
    }
}

/// Row indices to drop per file (descending), and the dropped copies per file pair (most
/// dropped rows first). `files` in key order.
pub(crate) fn find_duplicates(files: &[FileIds<'_>]) -> (Vec<Vec<usize>>, Vec<DuplicateCopies>) {
    // Newest file first, the later key first on a tie: the first copy seen is kept.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&files[a], &files[b]);
        (b.last_modified, b.key).cmp(&(a.last_modified, a.key))
    });
    let rows_with_ids = files
        .iter()
        .filter(|f| f.ids.is_some())
        .map(|f| f.rows)
        .sum();
    let mut dropped = vec![Vec::new(); files.len()];
    let mut pairs: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    let mut drop_copy = |file: usize, row: usize, winner: usize| {
        dropped[file].push(row);
        *pairs.entry((file, winner)).or_default() += 1;
    };
    // Numeric ids (every id of the exports seen: `201901000001`) are sorted with where they
    // were seen; other ids go through a map in the rule's order.
    let mut numbers_seen: Vec<Occurrence> = Vec::with_capacity(rows_with_ids);
    let mut texts: PlHashMap<&str, usize> = PlHashMap::default();
    for (rank, &f) in order.iter().enumerate() {
        let ids = match &files[f].ids {
            None => continue,
            Some(Ids::Numbers(numbers)) => {
                // Last row first, as below.
                let occurrences = numbers.iter().enumerate().rev();
                numbers_seen.extend(occurrences.map(|(r, &n)| Occurrence::new(n, rank, r)));
                continue;
            }
            // The column is walked in order once: looking each row up in a chunked column
            // took a third of the rule's time.
            Some(Ids::Text(ids)) => ids.values().collect::<Vec<&str>>(),
        };
        // Last row first: within a file the last copy wins.
        for (r, id) in ids.into_iter().enumerate().rev() {
            let id = id.trim();
            match canonical_number(id) {
                Some(n) => numbers_seen.push(Occurrence::new(n, rank, r)),
                None => {
                    if let Some(winner) = held_by(&mut texts, id, f) {
                        drop_copy(f, r, winner);
                    }
                }
            }
        }
    }
    // By id, then in the rule's order: the first occurrence of each id is the copy kept.
    sort_by_id(&mut numbers_seen);
    for run in numbers_seen.chunk_by(|a, b| a.id() == b.id()) {
        let winner = order[run[0].rank()];
        for copy in &run[1..] {
            drop_copy(order[copy.rank()], copy.row(), winner);
        }
    }
    drop(numbers_seen);
    for rows in &mut dropped {
        rows.sort_unstable_by(|a, b| b.cmp(a));
    }
    let mut duplicates: Vec<DuplicateCopies> = pairs
        .into_iter()
        .map(|((file, winner), rows)| DuplicateCopies {
            file: files[file].key.to_string(),
            kept_from: files[winner].key.to_string(),
            rows,
        })
        .collect();
    duplicates.sort_by_key(|d| std::cmp::Reverse(d.rows));
    (dropped, duplicates)
}

/// One row's numeric id and where the rule met it, packed so that sorting orders the
/// month's rows by id, then by the rule's order (newest file first, last row first).
///
/// A month's ids are sorted rather than put in a hash map: at 6 million rows (a 1 GB month)
/// the map was 140 MB of random writes, 1.9 s on one core, where the sort walks memory in
/// order. Service request ids are numbers in every export seen (`201901000001`); any other
/// id (a letter, a leading zero, more than 19 digits) goes through a map of text, and the
/// two never meet, since a text id is never the canonical digits of a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Occurrence(u128);

impl Occurrence {
    fn new(id: u64, rank: usize, row: usize) -> Self {
        let rank = u32::try_from(rank).expect("fewer than 2^32 files");
        let row = u32::try_from(row).expect("fewer than 2^32 rows in a file");
        Self(u128::from(id) << 64 | u128::from(rank) << 32 | u128::from(u32::MAX - row))
    }

    fn id(self) -> u64 {
        (self.0 >> 64) as u64
    }

    /// The file's place in the rule's order.
    fn rank(self) -> usize {
        (self.0 >> 32) as u32 as usize
    }

    fn row(self) -> usize {
        (u32::MAX - self.0 as u32) as usize
    }
}

/// Sorts occurrences by id, keeping their order within an id (a radix sort on the id's
/// bytes: 2-3x faster than a comparison sort on 6 million rows). Bytes every id shares
/// (the leading ones of ids of one size) cost one counting pass and no move.
fn sort_by_id(occurrences: &mut Vec<Occurrence>) {
    // Every byte's counts in one pass.
    let mut counts = [[0usize; 256]; 8];
    for o in occurrences.iter() {
        let id = o.id();
        for (i, per_byte) in counts.iter_mut().enumerate() {
            per_byte[(id >> (8 * i)) as usize & 0xff] += 1;
        }
    }
    let mut moved = vec![Occurrence(0); occurrences.len()];
    for (i, per_byte) in counts.iter().enumerate() {
        if per_byte.contains(&occurrences.len()) {
            continue;
        }
        let mut next = [0usize; 256];
        let mut at = 0;
        for (slot, &count) in next.iter_mut().zip(per_byte) {
            *slot = at;
            at += count;
        }
        for o in occurrences.iter() {
            let b = (o.id() >> (8 * i)) as usize & 0xff;
            moved[next[b]] = *o;
            next[b] += 1;
        }
        std::mem::swap(occurrences, &mut moved);
    }
}

/// The file holding `key`, or `None` after recording it as `file`'s.
fn held_by<K: std::hash::Hash + Eq>(
    map: &mut PlHashMap<K, usize>,
    key: K,
    file: usize,
) -> Option<usize> {
    let before = map.len();
    let holder = *map.entry(key).or_insert(file);
    (map.len() == before).then_some(holder)
}

/// `id`'s value when it is a number written canonically: 1 to 19 digits, no sign, no
/// leading zero (`"0"` itself is one), so that two ids share a value only when they are
/// the same text.
fn canonical_number(id: &str) -> Option<u64> {
    let bytes = id.as_bytes();
    if bytes.is_empty() || bytes.len() > 19 || (bytes.len() > 1 && bytes[0] == b'0') {
        return None;
    }
    let mut n: u64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        // 19 digits stay below 2^64.
        n = n * 10 + u64::from(b - b'0');
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_numbers_only_when_written_canonically() {
        assert_eq!(canonical_number("201901000001"), Some(201_901_000_001));
        assert_eq!(canonical_number("0"), Some(0));
        assert_eq!(
            canonical_number("9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for text in [
            "",
            "0123",
            "-5",
            "+5",
            "12a",
            "1.0",
            "19 ",
            "10000000000000000000",
        ] {
            assert_eq!(canonical_number(text), None, "{text:?}");
        }
    }

    #[test]
    fn numeric_and_text_ids_are_told_apart_exactly() {
        let key = |n: &str| ObjectKey::new(format!("2019/jan/{n}.csv")).unwrap();
        let (old, new) = (key("a"), key("b"));
        let old_ids = StringChunked::from_iter_values(
            "id".into(),
            ["123", "0123", "SR-1", "77", "18446744073709551616"].into_iter(),
        );
        let new_ids = StringChunked::from_iter_values(
            "id".into(),
            ["0123", " 77 ", "SR-1", "124", "18446744073709551616", "124"].into_iter(),
        );
        let file = |key, ids, rows, at| FileIds {
            key,
            last_modified: DateTime::<Utc>::from_timestamp(at, 0).unwrap(),
            ids: Some(Ids::Text(ColumnView::Columns(ids))),
            rows,
        };
        let files = [file(&old, &old_ids, 5, 1), file(&new, &new_ids, 6, 2)];
        let (dropped, duplicates) = find_duplicates(&files);
        // The newer file keeps "0123", "77", "SR-1" and the 20-digit id; "123" is not
        // "0123"; within the newer file the last "124" wins.
        assert_eq!(dropped, vec![vec![4, 3, 2, 1], vec![3]]);
        assert_eq!(rows_dropped(&duplicates), 5);
    }

    #[test]
    fn ids_kept_as_numbers_follow_the_rule_as_their_text_does() {
        let key = |n: &str| ObjectKey::new(format!("2019/jan/{n}.csv")).unwrap();
        let keys = [key("a"), key("b"), key("c")];
        let texts = [
            StringChunked::from_iter_values("id".into(), ["5", "6", "7", "5"].into_iter()),
            StringChunked::from_iter_values("id".into(), [" 7", "8", "5"].into_iter()),
            StringChunked::from_iter_values("id".into(), ["8", "9", "09"].into_iter()),
        ];
        let numbers: Vec<Option<Vec<u64>>> = texts.iter().map(numeric_ids).collect();
        assert_eq!(numbers[1], Some(vec![7, 8, 5]));
        assert_eq!(numbers[2], None, "\"09\" is text");
        let files = |as_numbers: bool| -> Vec<FileIds<'_>> {
            (0..3)
                .map(|f| FileIds {
                    key: &keys[f],
                    // b is the newest; a and c tie, c (the later key) first.
                    last_modified: DateTime::<Utc>::from_timestamp([1, 2, 1][f], 0).unwrap(),
                    ids: Some(match (&numbers[f], as_numbers) {
                        (Some(n), true) => Ids::Numbers(n),
                        _ => Ids::Text(ColumnView::Columns(&texts[f])),
                    }),
                    rows: texts[f].len(),
                })
                .collect()
        };
        let as_text = find_duplicates(&files(false));
        assert_eq!(find_duplicates(&files(true)), as_text);
        // b keeps 7, 8, 5; c keeps 9 and "09", loses 8; a keeps 6, loses both 5s and 7.
        assert_eq!(as_text.0, vec![vec![3, 2, 0], vec![], vec![0]]);
    }
}
