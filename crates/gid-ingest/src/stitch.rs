//! The month's table from its files' parts, without encoding it again.
//!
//! Every large export is encoded once, as its [part](crate::parts), on its parser thread.
//! When the month's table is exactly those files one after the other (each has a part,
//! none lost rows to the duplicate rule, all have the month's columns in its order), the
//! month's Parquet file is the parts' row groups copied page by page: compressed pages are
//! moved, not decoded, so the month's own encoding (dictionary building, cardinality
//! estimates, compression: half of the Parquet work of a run) is skipped. Any other month is
//! encoded from its table as before.

use std::io::Cursor;
use std::sync::Arc;

use bytes::Bytes;
use polars_buffer::Buffer;
use polars_core::prelude::*;
use polars_parquet::parquet::error::{ParquetError, ParquetResult};
use polars_parquet::parquet::metadata::{ColumnChunkMetadata, FileMetadata};
use polars_parquet::parquet::page::CompressedPage;
use polars_parquet::parquet::read::{get_page_iterator, read_metadata, PageReader};
use polars_parquet::parquet::schema::types::ParquetType;
use polars_parquet::parquet::write::{
    DynIter, DynStreamingIterator, FileWriter, Version, WriteOptions,
};
use polars_parquet::parquet::FallibleStreamingIterator;

use crate::IngestError;

/// Largest page header (and page) a part may hold: parts are gid's own, pages of ~1 MB.
const MAX_PAGE_BYTES: usize = 256 * 1024 * 1024;

/// Why the parts could not be copied (the month is then encoded from its table).
#[derive(Debug, thiserror::Error)]
pub(crate) enum StitchError {
    #[error(transparent)]
    Parquet(#[from] ParquetError),
    #[error(transparent)]
    Encode(#[from] IngestError),
}

/// A Parquet file and its footer.
struct Encoded {
    buffer: Buffer<u8>,
    metadata: FileMetadata,
}

impl Encoded {
    fn read(bytes: Bytes) -> ParquetResult<Self> {
        let metadata = read_metadata(&mut Cursor::new(bytes.as_ref()))?;
        Ok(Self {
            buffer: Buffer::from_owner(bytes),
            metadata,
        })
    }

    fn of(mut frame: DataFrame) -> Result<Self, StitchError> {
        Ok(Self::read(Bytes::from(crate::to_parquet(&mut frame)?))?)
    }

    fn fields(&self) -> &[ParquetType] {
        self.metadata.schema().fields()
    }
}

/// Where one column chunk of the month's row group comes from.
enum Chunk<'a> {
    /// A part's own chunk.
    Part(&'a Encoded, &'a ColumnChunkMetadata),
    /// A column the part does not have: nulls, encoded once per row count and type.
    Nulls(Arc<Encoded>),
}

/// Column chunks of nulls, one per (rows, type): a chunk's pages do not name their
/// column (the writer takes names from the month's schema), so one encoding serves every
/// column a part lacks. Encoding one per column was a writer and a zstd context each: 9
/// of them for a month whose exports drifted (a column only one file has), a tenth of the
/// month's tail.
#[derive(Default)]
struct NullChunks(PlHashMap<(usize, DataType), Arc<Encoded>>);

impl NullChunks {
    /// `rows` nulls of `dtype`, encoded the first time they are asked for.
    fn get(&mut self, rows: usize, dtype: &DataType) -> Result<Arc<Encoded>, StitchError> {
        let key = (rows, dtype.clone());
        if let Some(encoded) = self.0.get(&key) {
            return Ok(Arc::clone(encoded));
        }
        let nulls = Column::full_null("nulls".into(), rows, dtype);
        let encoded = Arc::new(Encoded::of(
            DataFrame::new(rows, vec![nulls]).map_err(IngestError::Combine)?,
        )?);
        self.0.insert(key, Arc::clone(&encoded));
        Ok(encoded)
    }
}

/// One Parquet file holding every row group of `parts`, in order, with the columns of
/// `table` (the month's table, of which only the schema is used): a column a part lacks
/// is null in its rows, as the table has it. `None` when a part's column differs in type
/// from the table's, or a part is not flat.
pub(crate) fn stitch(parts: &[Bytes], table: &DataFrame) -> Result<Option<Vec<u8>>, StitchError> {
    if parts.is_empty() {
        return Ok(None);
    }
    // The month's schema and Arrow metadata exactly as encoding the table would write them.
    let month = Encoded::of(table.clear())?;
    let fields = month.fields();
    let flat = |fields: &[ParquetType]| {
        fields
            .iter()
            .all(|f| matches!(f, ParquetType::PrimitiveType(_)))
    };
    let parts: Vec<Encoded> = parts
        .iter()
        .map(|part| Encoded::read(part.clone()))
        .collect::<ParquetResult<_>>()?;
    // Per part, where each of the month's columns is in it.
    let mut positions: Vec<Vec<Option<usize>>> = Vec::with_capacity(parts.len());
    for part in &parts {
        if !flat(part.fields()) {
            return Ok(None);
        }
        let mut position = Vec::with_capacity(fields.len());
        for field in fields {
            match part.fields().iter().position(|f| f.name() == field.name()) {
                Some(i) if part.fields()[i] == *field => position.push(Some(i)),
                Some(_) => return Ok(None),
                None => position.push(None),
            }
        }
        if position.iter().flatten().count() != part.fields().len() {
            // A column the table does not have: not this month's part.
            return Ok(None);
        }
        positions.push(position);
    }
    let options = WriteOptions {
        write_statistics: false,
        version: Version::V2,
    };
    let mut nulls = NullChunks::default();
    let size = parts.iter().map(|p| p.buffer.len()).sum();
    let mut writer = FileWriter::new(
        Vec::with_capacity(size),
        month.metadata.schema().clone(),
        options,
        month.metadata.created_by.clone(),
    );
    for (part, position) in parts.iter().zip(&positions) {
        for group in &part.metadata.row_groups {
            let rows = group.num_rows();
            let chunks: Vec<Chunk<'_>> = position
                .iter()
                .zip(table.columns())
                .map(|(at, column)| {
                    Ok(match at {
                        Some(i) => Chunk::Part(part, &group.parquet_columns()[*i]),
                        None => Chunk::Nulls(nulls.get(rows, column.dtype())?),
                    })
                })
                .collect::<Result<_, StitchError>>()?;
            let columns = chunks.iter().map(|chunk| {
                let (encoded, column): (&Encoded, &ColumnChunkMetadata) = match chunk {
                    Chunk::Part(part, column) => (part, column),
                    Chunk::Nulls(nulls) => {
                        (nulls, &nulls.metadata.row_groups[0].parquet_columns()[0])
                    }
                };
                let reader = get_page_iterator(
                    column,
                    Cursor::new(encoded.buffer.clone()),
                    Vec::new(),
                    MAX_PAGE_BYTES,
                )?;
                Ok(DynStreamingIterator::new(Pages { reader, page: None }))
            });
            writer.write(rows as u64, DynIter::new(columns))?;
        }
    }
    writer.end(month.metadata.key_value_metadata().clone())?;
    Ok(Some(writer.into_inner()))
}

/// A column chunk's compressed pages as they are stored.
struct Pages {
    reader: PageReader,
    page: Option<CompressedPage>,
}

impl FallibleStreamingIterator for Pages {
    type Item = CompressedPage;
    type Error = ParquetError;

    fn advance(&mut self) -> Result<(), ParquetError> {
        self.page = self.reader.next().transpose()?;
        if let Some(CompressedPage::Data(page)) = &mut self.page {
            // A v1 page header does not say its rows; in a flat column (the only kind a
            // part has) they are its values, nulls included.
            page.num_rows.get_or_insert(page.num_values());
        }
        Ok(())
    }

    fn get(&self) -> Option<&CompressedPage> {
        self.page.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_io::prelude::{ParquetReader, SerReader};

    fn part(frame: &DataFrame) -> Bytes {
        Bytes::from(crate::to_parquet(&mut frame.clone()).unwrap())
    }

    #[test]
    fn stitched_parts_read_back_as_the_files_one_after_the_other() {
        let a = df!(
            "service_request_id" => ["1", "2", "3"],
            "service_name" => [Some("Pothole"), None, Some("Graffiti")]
        )
        .unwrap();
        // Enough rows for several pages and a dictionary that differs from the first part's.
        let ids: Vec<String> = (0..50_000).map(|i| format!("id-{i}")).collect();
        let services: Vec<Option<&str>> = (0..50_000)
            .map(|i| (i % 7 != 0).then_some(["Sidewalk", "Tree", "Dumping"][i % 3]))
            .collect();
        let b = df!("service_request_id" => ids, "service_name" => services).unwrap();
        let mut expected = a.clone();
        expected.vstack_mut(&b).unwrap();
        let month = stitch(&[part(&a), part(&b)], &expected)
            .unwrap()
            .expect("same columns");
        let read = ParquetReader::new(Cursor::new(month)).finish().unwrap();
        assert!(read.equals_missing(&expected), "{read:?}");
    }

    #[test]
    fn a_column_a_part_lacks_is_null_in_its_rows_and_columns_follow_the_table() {
        let a = df!("service_request_id" => ["1"], "service_name" => ["Pothole"]).unwrap();
        let b =
            df!("service_name" => ["Tree"], "service_request_id" => ["2"], "status" => ["Closed"])
                .unwrap();
        let table = polars_core::functions::concat_df_diagonal(&[a.clone(), b.clone()]).unwrap();
        let month = stitch(&[part(&a), part(&b)], &table)
            .unwrap()
            .expect("the table has every part's columns");
        let read = ParquetReader::new(Cursor::new(month)).finish().unwrap();
        assert!(read.equals_missing(&table), "{read:?}");
        assert_eq!(
            read.column("status").unwrap().null_count(),
            1,
            "a.csv has no status"
        );
    }

    #[test]
    fn columns_several_parts_lack_are_nulls_under_their_own_names() {
        // One null chunk per row count serves every missing column: a lacks two columns,
        // c (another row count) lacks both as well, b has them all.
        let a = df!("service_request_id" => ["1", "2"]).unwrap();
        let b = df!(
            "service_request_id" => ["3", "4"],
            "service_name" => ["Tree", "Pothole"],
            "status" => [Some("Closed"), None]
        )
        .unwrap();
        let c = df!("service_request_id" => ["5", "6", "7"]).unwrap();
        let table =
            polars_core::functions::concat_df_diagonal(&[a.clone(), b.clone(), c.clone()]).unwrap();
        let month = stitch(&[part(&a), part(&b), part(&c)], &table)
            .unwrap()
            .expect("the table has every part's columns");
        let read = ParquetReader::new(Cursor::new(month)).finish().unwrap();
        assert!(read.equals_missing(&table), "{read:?}");
        assert_eq!(read.column("service_name").unwrap().null_count(), 5);
        assert_eq!(read.column("status").unwrap().null_count(), 6);
    }

    #[test]
    fn parts_that_are_not_the_table_are_not_stitched() {
        let a = df!("service_request_id" => ["1"], "service_name" => ["Pothole"]).unwrap();
        let narrower = df!("service_request_id" => ["1"]).unwrap();
        assert_eq!(stitch(&[part(&a)], &narrower).unwrap(), None);
        let numbers = df!("service_request_id" => [1i64], "service_name" => ["Pothole"]).unwrap();
        assert_eq!(stitch(&[part(&a)], &numbers).unwrap(), None);
        assert_eq!(stitch(&[], &a).unwrap(), None);
    }
}
