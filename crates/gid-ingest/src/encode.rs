//! A file's part as Parquet, with each text column's encoding chosen before polars
//! estimates it.
//!
//! polars' writer asks for a dictionary on every text column, and for each it first
//! estimates the column's distinct values over every row (5 % of a month's instructions
//! under callgrind), then drops the dictionary when they are more than 3/4 of the rows:
//! ids, timestamps, coordinates, free text. Such columns show it in a sample of a
//! thousand rows already (no value repeats), so they are written plain without the full
//! estimate; any other column still gets polars' own decision (one month 2.372 G → 2.348 G
//! instructions, the same bytes).
//!
//! A part is encoded on its file's parser thread alone, while the other core parses too:
//! handing each column to polars' thread pool there, as [`crate::to_parquet`] does for a
//! month's table, only added hand-offs (12 months, 6 pairs: 0.975x CPU, 0.935x wall).

use polars_core::prelude::*;
use polars_io::parquet::write::get_encodings;
use polars_parquet::parquet::error::ParquetError;
use polars_parquet::write::{
    array_to_columns, CompressionOptions, Compressor, DynIter, DynStreamingIterator, Encoding,
    FallibleStreamingIterator, FileWriter, StatisticsOptions, Version, WriteOptions, ZstdLevel,
};

use crate::{IngestError, ROW_GROUP_ROWS};

/// Rows sampled per text column.
const SAMPLE: usize = 1024;

/// Whether a sample says a column's distinct values are more than 3/4 of its rows (where
/// polars drops the dictionary): in `n` rows drawn from `d` distinct values about
/// `n² / 2d` repeat, so fewer than `n² / (1.5 × rows)` repeats put `d` above `3/4 × rows`.
/// A column just above the line may come out either way; both encodings read the same.
fn mostly_distinct(values: &StringChunked) -> bool {
    let rows = values.len();
    if rows < 4 * SAMPLE {
        return false;
    }
    let step = rows / SAMPLE;
    let mut seen = PlHashSet::with_capacity(SAMPLE);
    let repeats = (0..SAMPLE)
        .filter(|i| !seen.insert(values.get(i * step)))
        .count();
    (repeats as f64) < (SAMPLE * SAMPLE) as f64 / (1.5 * rows as f64)
}

/// The part of one file, written as [`crate::to_parquet`] writes a table (row groups of
/// at most `ROW_GROUP_ROWS` rows, zstd at `level`, no statistics), on the calling thread.
pub(crate) fn part(frame: &mut DataFrame, level: i32) -> Result<Vec<u8>, IngestError> {
    let failed = IngestError::Combine;
    frame.align_chunks();
    let schema = frame.schema().to_arrow(CompatLevel::newest());
    let mut encodings = get_encodings(&schema).to_vec();
    for (column, encoding) in frame.columns().iter().zip(encodings.iter_mut()) {
        if column.str().is_ok_and(mostly_distinct) {
            *encoding = vec![Encoding::Plain];
        }
    }
    let options = WriteOptions {
        statistics: StatisticsOptions::empty(),
        compression: CompressionOptions::Zstd(Some(
            ZstdLevel::try_new(level).expect("a valid zstd level"),
        )),
        version: Version::V1,
        data_page_size: None,
    };
    let mut writer = FileWriter::try_new(Vec::new(), schema, options).map_err(failed)?;
    let fields = writer.parquet_schema().fields().to_vec();
    let mut offset = 0;
    while offset < frame.height() {
        let group = frame.slice(offset as i64, ROW_GROUP_ROWS);
        offset += ROW_GROUP_ROWS;
        for batch in group.iter_chunks(CompatLevel::newest(), false) {
            let rows = batch.len() as u64;
            let mut columns = Vec::with_capacity(fields.len());
            for ((array, field), encoding) in batch.columns().iter().zip(&fields).zip(&encodings) {
                for pages in
                    array_to_columns(array, field.clone(), options, encoding).map_err(failed)?
                {
                    let pages = pages.map(|page| {
                        page.map_err(|e| ParquetError::FeatureNotSupported(e.to_string()))
                    });
                    let compressed = Compressor::new(pages, options.compression, Vec::new());
                    columns.push(Ok(DynStreamingIterator::new(
                        compressed.map_err(PolarsError::from),
                    )));
                }
            }
            writer
                .write(rows, DynIter::new(columns.into_iter()))
                .map_err(failed)?;
        }
    }
    writer.end(None).map_err(failed)?;
    Ok(writer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(values: impl Iterator<Item = String>) -> StringChunked {
        StringChunked::from_iter_values("c".into(), values)
    }

    #[test]
    fn only_columns_whose_sample_barely_repeats_are_written_plain() {
        let rows = 25_000;
        assert!(mostly_distinct(&column(
            (0..rows).map(|i| format!("2019{i:08}"))
        )));
        // 1/10 of the rows distinct: polars keeps the dictionary, so does the sample.
        assert!(!mostly_distinct(&column(
            (0..rows).map(|i| format!("{}", i % 2_500))
        )));
        assert!(!mostly_distinct(&column(
            (0..rows).map(|i| format!("{}", i % 12))
        )));
        // Too few rows to sample: polars decides.
        assert!(!mostly_distinct(&column((0..1_000).map(|i| i.to_string()))));
    }

    #[test]
    fn a_part_reads_back_as_the_table_it_was() {
        use polars_io::prelude::{ParquetReader, SerReader};
        let rows = 30_000;
        let ids = column((0..rows).map(|i| format!("id-{i}")));
        let services: StringChunked = (0..rows)
            .map(|i| (i % 7 != 0).then(|| format!("service {}", i % 5)))
            .collect();
        let mut frame = DataFrame::new(
            rows,
            vec![
                ids.with_name("id".into()).into_column(),
                services.with_name("service".into()).into_column(),
            ],
        )
        .unwrap();
        let bytes = part(&mut frame, 1).unwrap();
        let read = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert!(read.equals_missing(&frame));
    }
}
