//! Exports streamed through ingest: counted and encoded as they are parsed, then dropped.
//!
//! A file that gets a [part](crate::parts) is, on its parser thread and right after it is
//! parsed, encoded as that part and [tallied](gid_aggregate::Tally); its rows are then
//! dropped but for their `service_request_id`s, which the duplicate rule needs. When every
//! export of the month went this way and no id repeats, the month is its parts (copied
//! into the month's Parquet file by [`stitch`](crate::stitch)) and its tallies merged: the
//! month's table is never held in memory, and the aggregate stage of the same run reads
//! nothing back. Otherwise (a small file without a part, a repeated id) the streamed
//! files' rows are decoded from their parts and the month is combined as a table.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use gid_aggregate::Tally;
use gid_core::{BucketName, ObjectKey};
use polars_core::prelude::*;

use crate::columns::SERVICE_REQUEST_ID;
use crate::combine::{
    combine, find_duplicates, numeric_ids, DuplicateCopies, FileIds, Ids, SourcedExport,
};
use crate::rows::{ColumnView, Store};
use crate::{parts, IngestError};

/// A streamed export's ids.
#[derive(Debug)]
enum KeptIds {
    Numbers(Vec<u64>),
    Text(StringChunked),
}

/// What is kept of a streamed export.
#[derive(Debug)]
pub(crate) struct Streamed {
    /// The file's normalised header.
    columns: Vec<String>,
    /// Its ids (`None`: the file has no `service_request_id` column), as numbers when
    /// they all are (half the memory of the text, and read without parsing by the rule).
    ids: Option<KeptIds>,
    rows: usize,
    tally: Tally,
    /// The part: the file's rows, encoded.
    part: Bytes,
}

impl Streamed {
    /// The export's tally and ids, from its rows as a table (its `part`'s rows), when they
    /// can be tallied (a table without `service_name`, which `ingest.required_columns` may
    /// allow, cannot).
    pub(crate) fn of(columns: &[String], table: &DataFrame, part: Bytes) -> Option<Self> {
        let tally = Tally::of(table).ok()?;
        let ids = match table.column(SERVICE_REQUEST_ID) {
            Ok(ids) => {
                let ids = ids.str().ok()?;
                Some(match numeric_ids(ids) {
                    Some(numbers) => KeptIds::Numbers(numbers),
                    None => KeptIds::Text(ids.clone()),
                })
            }
            Err(_) => None,
        };
        Some(Self {
            columns: columns.to_vec(),
            ids,
            rows: table.height(),
            tally,
            part,
        })
    }

    /// Rows of the export.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }
}

/// A streamed export and where it came from.
#[derive(Debug)]
pub(crate) struct StreamedExport {
    pub(crate) key: ObjectKey,
    pub(crate) last_modified: DateTime<Utc>,
    /// The part's location, for messages about it.
    pub(crate) part_bucket: BucketName,
    pub(crate) part_key: ObjectKey,
    pub(crate) streamed: Streamed,
}

/// A month put together from its files.
pub(crate) struct Assembled {
    /// The combined table; `None` when every export was streamed and no id repeats.
    pub(crate) frame: Option<DataFrame>,
    /// The streamed month's merged tallies (`None` with a table: aggregate counts it).
    pub(crate) tally: Option<Tally>,
    /// The month's columns: each file's, in key order, first seen first.
    pub(crate) columns: Vec<String>,
    pub(crate) rows: u64,
    pub(crate) duplicates: Vec<DuplicateCopies>,
}

/// The month from its exports (`tables`: held as rows; `streamed`), both in key order.
pub(crate) fn assemble(
    mut tables: Vec<SourcedExport>,
    streamed: Vec<StreamedExport>,
) -> Result<Assembled, IngestError> {
    if tables.is_empty() {
        let ids: Vec<FileIds<'_>> = streamed
            .iter()
            .map(|s| FileIds {
                key: &s.key,
                last_modified: s.last_modified,
                ids: s.streamed.ids.as_ref().map(|ids| match ids {
                    KeptIds::Numbers(numbers) => Ids::Numbers(numbers),
                    KeptIds::Text(text) => Ids::Text(ColumnView::Columns(text)),
                }),
                rows: s.streamed.rows,
            })
            .collect();
        let (_, duplicates) = find_duplicates(&ids);
        drop(ids);
        if duplicates.is_empty() {
            let mut tally = Tally::default();
            let mut columns: Vec<String> = Vec::new();
            for s in &streamed {
                tally.merge(&s.streamed.tally);
                for c in &s.streamed.columns {
                    if !columns.contains(c) {
                        columns.push(c.clone());
                    }
                }
            }
            return Ok(Assembled {
                frame: None,
                rows: tally.rows(),
                tally: Some(tally),
                columns,
                duplicates,
            });
        }
    }
    for s in streamed {
        let rows = parts::decode(&s.part_bucket, &s.part_key, s.streamed.part)?;
        tables.push(SourcedExport {
            key: s.key,
            last_modified: s.last_modified,
            rows,
        });
    }
    let combined = combine(tables)?;
    Ok(Assembled {
        columns: combined
            .frame
            .get_column_names()
            .into_iter()
            .map(|c| c.to_string())
            .collect(),
        rows: combined.frame.height() as u64,
        frame: Some(combined.frame),
        tally: None,
        duplicates: combined.duplicates,
    })
}

/// The table of a streamed month, from its parts (key order): the fallback of a month
/// whose parts could not be copied into one file.
pub(crate) fn table_of_parts(
    bucket: &BucketName,
    key: &ObjectKey,
    parts: &[Bytes],
) -> Result<DataFrame, IngestError> {
    let frames: Vec<DataFrame> = parts
        .iter()
        .map(
            |part| match parts::decode(bucket, key, part.clone())?.into_parts() {
                (_, Store::Columns(frame)) => Ok(frame),
                (_, Store::Text(_)) => unreachable!("a part decodes to columns"),
            },
        )
        .collect::<Result<_, IngestError>>()?;
    polars_core::functions::concat_df_diagonal(&frames).map_err(IngestError::Combine)
}
