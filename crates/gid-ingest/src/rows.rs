//! An export's good rows, held one of two ways depending on the file's size.
//!
//! A large file gets its own text columns, filled while it is parsed (on the file's
//! parser thread), so each value is copied once; the month's table concatenates them.
//! A small file keeps every field in one text buffer instead: a polars text column costs
//! ~8 KiB at least, which for 20,000 one-row files was most of the month's memory (1.4
//! GB), and a table per file made a chunk and a Parquet row group per file. The month's
//! table copies the small files' values into columns shared by all of them.

use polars_core::prelude::*;

use crate::parse::QuarantineReason;

/// Files from this size on get their own columns; smaller ones are kept as text.
pub(crate) const OWN_COLUMNS_FROM_BYTES: usize = 1 << 20;

/// The good rows of one export (an empty field is a missing value).
#[derive(Debug, Clone)]
pub struct ExportRows {
    columns: Vec<String>,
    store: Store,
}

#[derive(Debug, Clone)]
pub(crate) enum Store {
    Text(TextRows),
    Columns(DataFrame),
}

/// Every field's text in one buffer.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextRows {
    width: usize,
    text: String,
    /// Where each row starts in `text`.
    row_starts: Vec<usize>,
    /// Where each field ends, counted from its row's start (`width` per row).
    field_ends: Vec<u32>,
}

impl TextRows {
    #[inline]
    fn field(&self, row: usize, column: usize) -> &str {
        let start = self.row_starts[row];
        let ends = &self.field_ends[row * self.width..(row + 1) * self.width];
        let from = if column == 0 { 0 } else { ends[column - 1] };
        &self.text[start + from as usize..start + ends[column] as usize]
    }

    pub(crate) fn len(&self) -> usize {
        self.row_starts.len()
    }

    /// The values of one column, row after row.
    pub(crate) fn column_values(&self, column: usize) -> impl Iterator<Item = &str> + '_ {
        self.row_starts
            .iter()
            .zip(self.field_ends.chunks_exact(self.width))
            .map(move |(&start, ends)| {
                let from = if column == 0 { 0 } else { ends[column - 1] };
                &self.text[start + from as usize..start + ends[column] as usize]
            })
    }
}

/// One column of an export, read by row.
pub(crate) enum ColumnView<'a> {
    Text(&'a TextRows, usize),
    Columns(&'a StringChunked),
}

impl<'a> ColumnView<'a> {
    #[inline]
    pub(crate) fn get(&self, row: usize) -> &'a str {
        match self {
            Self::Text(rows, column) => rows.field(row, *column),
            Self::Columns(values) => values.get(row).unwrap_or(""),
        }
    }

    /// Every row's value in order (`""` for a null), cheaper than [`get`](Self::get) on
    /// each row.
    pub(crate) fn values(&self) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match *self {
            Self::Text(rows, column) => Box::new(rows.column_values(column)),
            Self::Columns(values) => Box::new(values.iter().map(|v| v.unwrap_or(""))),
        }
    }
}

impl Default for ExportRows {
    /// No columns, no rows: what is left of a [streamed](crate::streamed) export.
    fn default() -> Self {
        Self {
            columns: Vec::new(),
            store: Store::Columns(DataFrame::empty()),
        }
    }
}

impl ExportRows {
    /// The header, normalised (trimmed, lowercased, repeated names suffixed `__2`, `__3`).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Text(rows) => rows.len(),
            Store::Columns(frame) => frame.height(),
        }
    }

    /// Whether the export has no rows (a header-only file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text of one field (`""` when the export left it empty).
    pub fn field(&self, row: usize, column: usize) -> &str {
        self.column(column).get(row)
    }

    /// The fields of one row, in header order.
    pub fn row(&self, row: usize) -> impl Iterator<Item = &str> + '_ {
        (0..self.columns.len()).map(move |c| self.field(row, c))
    }

    pub(crate) fn column(&self, column: usize) -> ColumnView<'_> {
        match &self.store {
            Store::Text(rows) => ColumnView::Text(rows, column),
            Store::Columns(frame) => ColumnView::Columns(
                frame.columns()[column]
                    .str()
                    .expect("export columns are text"),
            ),
        }
    }

    /// How the rows are held.
    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Rows read back from elsewhere (a per-file part).
    pub(crate) fn from_parts(columns: Vec<String>, store: Store) -> Self {
        Self { columns, store }
    }

    /// The header and the rows, for the month's table.
    pub(crate) fn into_parts(self) -> (Vec<String>, Store) {
        (self.columns, self.store)
    }
}

/// A record's fields as text.
pub(crate) trait Fields {
    /// Number of fields.
    fn len(&self) -> usize;
    /// The `i`th field.
    fn get(&self, i: usize) -> &str;
}

impl Fields for csv::StringRecord {
    fn len(&self) -> usize {
        csv::StringRecord::len(self)
    }

    fn get(&self, i: usize) -> &str {
        &self[i]
    }
}

/// Where a file's good rows go while it is parsed.
pub(crate) enum RowSink {
    Text(TextRows),
    Columns(Vec<StringChunkedBuilder>),
}

impl RowSink {
    /// A sink for a file of `bytes` bytes and at most `rows` rows with these (normalised)
    /// columns.
    ///
    /// Sized once: grown row by row, each column's views doubled a dozen times for a
    /// 25,000-row file, every doubling a copy of the column so far.
    pub(crate) fn new(columns: &[String], bytes: usize, rows: usize) -> Self {
        if bytes >= OWN_COLUMNS_FROM_BYTES {
            Self::Columns(
                columns
                    .iter()
                    .map(|name| StringChunkedBuilder::new(name.as_str().into(), rows))
                    .collect(),
            )
        } else {
            Self::Text(TextRows {
                width: columns.len(),
                // Most of a file's bytes are field text: one allocation, not a dozen doublings.
                text: String::with_capacity(bytes),
                row_starts: Vec::with_capacity(rows),
                field_ends: Vec::with_capacity(rows.saturating_mul(columns.len())),
            })
        }
    }

    /// Appends a checked row; `date` replaces the `date_index` field (normalised).
    pub(crate) fn push(
        &mut self,
        record: &impl Fields,
        date_index: Option<usize>,
        date: Option<&str>,
    ) -> Result<(), QuarantineReason> {
        match self {
            Self::Columns(builders) => {
                for (i, builder) in builders.iter_mut().enumerate().take(record.len()) {
                    let field = if Some(i) == date_index {
                        date.unwrap_or("")
                    } else {
                        record.get(i)
                    };
                    if field.is_empty() {
                        builder.append_null();
                    } else {
                        builder.append_value(field);
                    }
                }
                Ok(())
            }
            Self::Text(rows) => {
                let start = rows.text.len();
                let ends_before = rows.field_ends.len();
                for i in 0..record.len() {
                    if Some(i) == date_index {
                        rows.text.push_str(date.unwrap_or(""));
                    } else {
                        rows.text.push_str(record.get(i));
                    }
                    let Ok(end) = u32::try_from(rows.text.len() - start) else {
                        rows.text.truncate(start);
                        rows.field_ends.truncate(ends_before);
                        return Err(QuarantineReason::Malformed {
                            message: "a row longer than 4 GiB".into(),
                        });
                    };
                    rows.field_ends.push(end);
                }
                rows.row_starts.push(start);
                Ok(())
            }
        }
    }

    /// The rows, under the file's normalised header.
    pub(crate) fn finish(self, columns: Vec<String>) -> PolarsResult<ExportRows> {
        let store = match self {
            Self::Text(mut rows) => {
                rows.text.shrink_to_fit();
                Store::Text(rows)
            }
            Self::Columns(builders) => {
                let columns: Vec<Column> = builders
                    .into_iter()
                    .map(|b| b.finish().into_column())
                    .collect();
                let height = columns.first().map_or(0, Column::len);
                Store::Columns(DataFrame::new(height, columns)?)
            }
        };
        Ok(ExportRows { columns, store })
    }
}
