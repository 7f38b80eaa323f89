//! One export file → a DataFrame of its good rows plus the rows it refused.
//!
//! The `csv` crate reads each record with its byte span, so every bad row is quarantined
//! with its line, and the good rows' fields go straight into the table's text columns.
//! (polars' CSV reader was used for the good bytes before; it reads a bare `\r` line end,
//! a blank line or a quote inside an unquoted field differently from the `csv` crate, so
//! one such row failed the whole file, or shifted its values silently.)

use std::collections::HashSet;

use bytes::Bytes;
use gid_core::ObjectKey;
use polars_core::prelude::*;

use crate::columns::DATE_REQUESTED;
use crate::dates::normalise_timestamp;
use crate::IngestError;

/// Why a row was refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuarantineReason {
    /// The row has a different number of fields than the header.
    FieldCount { found: usize, expected: usize },
    /// `date_requested` is not a timestamp gid understands.
    BadDate { value: String },
    /// The row's bytes are not UTF-8 (often a Latin-1 export).
    InvalidUtf8,
    /// The CSV structure is broken (e.g. an unterminated quote).
    Malformed { message: String },
}

impl std::fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FieldCount { found, expected } => {
                write!(f, "{found} fields, expected {expected}")
            }
            Self::BadDate { value } => write!(f, "unparseable date_requested {value:?}"),
            Self::InvalidUtf8 => f.write_str("not valid UTF-8 (re-export the file as UTF-8)"),
            Self::Malformed { message } => write!(f, "malformed CSV: {message}"),
        }
    }
}

/// A row refused by ingest, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRow {
    pub source: ObjectKey,
    /// 1-based physical line where the row starts.
    pub line: u64,
    pub reason: QuarantineReason,
    /// The row as it was in the file (lossily decoded if it was not UTF-8).
    pub raw: String,
}

/// The outcome of parsing one file.
#[derive(Debug)]
pub enum ParsedFile {
    /// No bytes, or no header: nothing to read.
    Empty,
    Table {
        frame: DataFrame,
        quarantined: Vec<QuarantinedRow>,
    },
}

/// Header names as gid uses them: trimmed, lowercased; a repeated name gets a `__2`, `__3`
/// suffix (the first one not already taken) so no column is lost.
fn normalise_header(raw: &csv::ByteRecord) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    raw.iter()
        .map(|field| {
            let base = String::from_utf8_lossy(field).trim().to_lowercase();
            let mut name = base.clone();
            let mut n = 1;
            while taken.contains(&name) {
                n += 1;
                name = format!("{base}__{n}");
            }
            taken.insert(name.clone());
            name
        })
        .collect()
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses one export. Every column is read as text: types differ between exports
/// (an all-empty column would be inferred as something else), and the combined table
/// must never fail to concatenate or lose a row over a stray value.
pub fn parse_export(source: &ObjectKey, bytes: Bytes) -> Result<ParsedFile, IngestError> {
    let bytes = if bytes.starts_with(BOM) {
        bytes.slice(BOM.len()..)
    } else {
        bytes
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ParsedFile::Empty);
    }

    let reader_over = |from: usize| {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[from..])
    };
    let mut reader = reader_over(0);
    // Where `reader` starts in `bytes` (it restarts after an unterminated quote).
    let mut base = 0usize;
    let mut record = csv::ByteRecord::new();
    let header = match reader.read_byte_record(&mut record) {
        Ok(true)
            if reader.position().byte() as usize == bytes.len() && ends_in_open_quote(&bytes) =>
        {
            // Every row would be read as part of one header name: refuse the file loudly.
            return Err(IngestError::Header {
                key: source.to_string(),
                message: "a quoted header name is never closed (unterminated '\"')".into(),
            });
        }
        Ok(true) => normalise_header(&record),
        Ok(false) => return Ok(ParsedFile::Empty),
        Err(e) => {
            return Err(IngestError::Header {
                key: source.to_string(),
                message: e.to_string(),
            })
        }
    };
    let expected = header.len();
    let date_index = header.iter().position(|h| h == DATE_REQUESTED);
    let mut columns: Vec<StringChunkedBuilder> = header
        .iter()
        .map(|name| StringChunkedBuilder::new(name.as_str().into(), 0))
        .collect();
    let mut lines = LineCounter::default();

    let mut quarantined = Vec::new();
    loop {
        let start = base + reader.position().byte() as usize;
        let read = reader.read_byte_record(&mut record);
        let end = base + reader.position().byte() as usize;
        // After a CRLF the reader's position sits on the '\n'; the row starts after it.
        let from = skip_line_breaks(&bytes, start).min(end);
        let reason = match read {
            Ok(false) => break,
            Ok(true) if end == bytes.len() && ends_in_open_quote(&bytes[from..end]) => {
                // A quote that never closes swallowed the rest of the file into one field.
                // Only its own line is refused; reading resumes on the next line.
                let line_end = bytes[from..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(bytes.len(), |i| from + i);
                quarantined.push(QuarantinedRow {
                    source: source.clone(),
                    line: lines.line_at(&bytes, from),
                    reason: QuarantineReason::Malformed {
                        message: "a quoted field is never closed (unterminated '\"')".into(),
                    },
                    raw: String::from_utf8_lossy(&bytes[from..line_end]).into_owned(),
                });
                if line_end >= bytes.len() {
                    break;
                }
                base = line_end;
                reader = reader_over(base);
                // The lone quote must not make later bare-CR line ends look quoted.
                lines.line_at(&bytes, line_end);
                lines.in_quotes = false;
                continue;
            }
            Ok(true) => check_record(&record, expected, date_index),
            Err(e) => Some(QuarantineReason::Malformed {
                message: e.to_string(),
            }),
        };
        match reason {
            None => {
                // check_record validated the UTF-8: as a StringRecord (a move, no copy) the
                // fields are read without validating each one again.
                let text = csv::StringRecord::from_byte_record(record).expect("checked UTF-8");
                for (column, field) in columns.iter_mut().zip(text.iter()) {
                    if field.is_empty() {
                        column.append_null();
                    } else {
                        column.append_value(field);
                    }
                }
                record = text.into_byte_record();
            }
            Some(reason) => {
                let raw = String::from_utf8_lossy(&bytes[from..end])
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                quarantined.push(QuarantinedRow {
                    source: source.clone(),
                    // Lines are counted only up to bad rows: a clean file is never rescanned.
                    line: lines.line_at(&bytes, from),
                    reason,
                    raw,
                });
            }
        }
    }

    let columns: Vec<Column> = columns
        .into_iter()
        .map(|c| c.finish().into_column())
        .collect();
    let height = columns.first().map_or(0, Column::len);
    let frame = DataFrame::new(height, columns).map_err(|e| polars_error(source, e))?;
    let frame = normalise_dates(frame).map_err(|e| polars_error(source, e))?;
    Ok(ParsedFile::Table { frame, quarantined })
}

fn skip_line_breaks(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
        at += 1;
    }
    at
}

/// 1-based line numbers of byte offsets, counted incrementally (offsets only grow). A line
/// ends at `\n` or `\r\n`, or at a bare `\r` outside quotes (old Mac exports end lines
/// so; inside a quoted field it is text, as editors show it on one line).
#[derive(Default)]
struct LineCounter {
    at: usize,
    breaks: u64,
    in_quotes: bool,
}

impl LineCounter {
    fn line_at(&mut self, bytes: &[u8], offset: usize) -> u64 {
        for i in self.at..offset {
            match bytes[i] {
                b'\n' => self.breaks += 1,
                b'\r' if !self.in_quotes && bytes.get(i + 1) != Some(&b'\n') => self.breaks += 1,
                // Doubled quotes flip twice: parity tracks whether a quoted field is open.
                b'"' => self.in_quotes = !self.in_quotes,
                _ => {}
            }
        }
        self.at = self.at.max(offset);
        self.breaks + 1
    }
}

/// Whether a record's bytes end inside a quoted field that was never closed (the `csv`
/// crate then returns the rest of the file as that field, without an error).
fn ends_in_open_quote(raw: &[u8]) -> bool {
    let (mut quoted, mut field_start) = (false, true);
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if quoted {
            if b == b'"' {
                if raw.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    quoted = false;
                }
            }
        } else {
            match b {
                b'"' if field_start => quoted = true,
                b',' | b'\r' | b'\n' => {
                    field_start = true;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        field_start = false;
        i += 1;
    }
    quoted
}

fn polars_error(source: &ObjectKey, e: PolarsError) -> IngestError {
    IngestError::Parse {
        key: source.to_string(),
        message: e.to_string(),
    }
}

/// Checks one record; `None` means the row is good.
fn check_record(
    record: &csv::ByteRecord,
    expected: usize,
    date_index: Option<usize>,
) -> Option<QuarantineReason> {
    if record.len() != expected {
        return Some(QuarantineReason::FieldCount {
            found: record.len(),
            expected,
        });
    }
    // An all-ASCII row (most rows) is valid UTF-8 without looking at each field.
    if !record.as_slice().is_ascii() && record.iter().any(|f| std::str::from_utf8(f).is_err()) {
        return Some(QuarantineReason::InvalidUtf8);
    }
    if let Some(i) = date_index {
        let value = std::str::from_utf8(&record[i]).expect("checked above");
        if !value.trim().is_empty() && normalise_timestamp(value).is_none() {
            return Some(QuarantineReason::BadDate {
                value: value.to_owned(),
            });
        }
    }
    None
}

/// Rewrites `date_requested` into ISO 8601 (`2019-01-05T13:22:00`) whatever format it came in.
fn normalise_dates(mut frame: DataFrame) -> PolarsResult<DataFrame> {
    if frame.schema().get(DATE_REQUESTED).is_none() {
        return Ok(frame);
    }
    let dates = frame.column(DATE_REQUESTED)?.str()?;
    let normalised: StringChunked = dates
        .iter()
        .map(|v| v.and_then(normalise_timestamp))
        .collect();
    frame.replace(
        DATE_REQUESTED,
        normalised.with_name(DATE_REQUESTED.into()).into_column(),
    )?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectKey {
        ObjectKey::new("2019/jan/part-001.csv").unwrap()
    }

    fn names(df: &DataFrame) -> Vec<String> {
        df.get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect()
    }

    fn table(text: &str) -> (DataFrame, Vec<QuarantinedRow>) {
        match parse_export(&key(), Bytes::from(text.to_owned())).unwrap() {
            ParsedFile::Table { frame, quarantined } => (frame, quarantined),
            ParsedFile::Empty => panic!("unexpectedly empty"),
        }
    }

    #[test]
    fn quoted_commas_newlines_and_quotes_parse() {
        let (df, q) = table(
            "service_name,public_description\nPothole,\"a, b\"\nGraffiti,\"line1\nline2\"\nOther,\"say \"\"hi\"\"\"\n",
        );
        assert!(q.is_empty());
        let d = df.column("public_description").unwrap().str().unwrap();
        assert_eq!(d.get(0), Some("a, b"));
        assert_eq!(d.get(1), Some("line1\nline2"));
        assert_eq!(d.get(2), Some("say \"hi\""));
    }

    #[test]
    fn bom_and_crlf_are_handled() {
        let (df, q) = table("\u{feff}Service_Name ,status\r\nPothole,Closed\r\n");
        assert!(q.is_empty());
        assert_eq!(names(&df), ["service_name", "status"]);
        assert_eq!(
            df.column("status").unwrap().str().unwrap().get(0),
            Some("Closed")
        );
    }

    #[test]
    fn bad_rows_are_quarantined_with_their_line_and_good_rows_kept() {
        let text = "service_name,date_requested,x\n\
                    Pothole,2019-01-01T00:00:00,1\n\
                    Pothole,2019-01-02 10:00:00,1,extra\n\
                    Graffiti,\"multi\nline\",2\n\
                    Other,2019-01-03,3\n\
                    Short\n";
        let (df, q) = table(text);
        assert_eq!(df.height(), 2, "two good rows survive");
        let lines: Vec<(u64, String)> = q.iter().map(|r| (r.line, r.reason.to_string())).collect();
        assert_eq!(
            lines,
            [
                (3, "4 fields, expected 3".to_owned()),
                (4, "unparseable date_requested \"multi\\nline\"".to_owned()),
                (7, "1 fields, expected 3".to_owned()),
            ]
        );
        assert_eq!(q[0].raw, "Pothole,2019-01-02 10:00:00,1,extra");
        let dates = df.column("date_requested").unwrap().str().unwrap();
        assert_eq!(
            dates.get(1),
            Some("2019-01-03T00:00:00"),
            "dates are normalised"
        );
    }

    #[test]
    fn crlf_files_with_bad_rows_gain_no_phantom_rows() {
        let (df, q) =
            table("\u{feff}service_name,n\r\nPothole,1\r\nBad\r\nGraffiti,2\r\nOther,3\r\n");
        assert_eq!(q.len(), 1);
        let names = df.column("service_name").unwrap().str().unwrap();
        let got: Vec<Option<&str>> = names.iter().collect();
        assert_eq!(got, [Some("Pothole"), Some("Graffiti"), Some("Other")]);
        let (df, _) = table("service_name,n\r\nPothole,1\r\nGraffiti,2\r\n");
        assert_eq!(df.height(), 2);
    }

    #[test]
    fn invalid_utf8_rows_are_quarantined() {
        let mut bytes = b"service_name,public_description\nPothole,ok\nPothole,caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n']);
        let ParsedFile::Table { frame, quarantined } =
            parse_export(&key(), Bytes::from(bytes)).unwrap()
        else {
            panic!("expected a table")
        };
        assert_eq!(frame.height(), 1);
        assert_eq!(quarantined[0].reason, QuarantineReason::InvalidUtf8);
        assert_eq!(quarantined[0].line, 3);
    }

    #[test]
    fn empty_and_header_only_files() {
        assert!(matches!(
            parse_export(&key(), Bytes::new()).unwrap(),
            ParsedFile::Empty
        ));
        let (df, q) = table("service_name,status\n");
        assert_eq!((df.height(), df.width(), q.len()), (0, 2, 0));
    }

    #[test]
    fn duplicate_headers_keep_both_columns() {
        let (df, _) = table("status,status\nOpen,Closed\n");
        assert_eq!(names(&df), ["status", "status__2"]);
    }
}
