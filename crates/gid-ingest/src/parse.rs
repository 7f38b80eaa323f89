//! One export file → its good rows plus the rows it refused, or the reason the whole file
//! was skipped.
//!
//! The header is checked first, before the body is read: a file that is not text, has
//! more columns than the cap or lacks the export's key columns is skipped whole, without
//! building anything per column. Then each record is read with its byte span (plain ones
//! by a [search for their delimiters](crate::split), the others by the `csv` crate), so
//! every bad row is quarantined with its line, and the good rows' fields go to the file's
//! [rows](crate::ExportRows). (polars' CSV reader was used for the good bytes
//! before; it reads a bare `\r` line end, a blank line or a quote inside an unquoted field
//! differently from the `csv` crate, so one such row failed the whole file, or shifted its
//! values silently.)

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::io::Cursor;

use bytes::Bytes;
use gid_core::{Month, ObjectKey, OutOfMonth};

use crate::columns::{DATE_REQUESTED, SERVICE_REQUEST_ID};
use crate::dates::normalised;
use crate::rows::{ExportRows, Fields, RowSink};
use crate::rules::{normalise_name, ExportRules, SkipReason};
use crate::split::{self, Found, PlainFields};

/// Why a row was refused.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuarantineReason {
    /// The row has a different number of fields than the header.
    FieldCount {
        /// Fields in the row.
        found: usize,
        /// Columns in the header.
        expected: usize,
    },
    /// `date_requested` is not a timestamp gid understands.
    BadDate {
        /// The value as in the file.
        value: String,
    },
    /// `date_requested` is empty (or the file has no such column) while ingesting a month.
    EmptyDate,
    /// `date_requested` (normalised) falls outside the month being ingested.
    OutsideMonth {
        /// The value as in the file.
        value: String,
        /// The month being ingested.
        #[serde(serialize_with = "as_text")]
        month: Month,
    },
    /// `service_request_id` is empty: the row cannot be told apart from its copies.
    EmptyId,
    /// The row's bytes are not UTF-8 (often a Latin-1 export).
    InvalidUtf8,
    /// The CSV structure is broken (e.g. an unterminated quote).
    Malformed {
        /// The CSV reader's complaint.
        message: String,
    },
}

fn as_text<S: serde::Serializer>(month: &Month, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(month)
}

impl std::fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FieldCount { found, expected } => {
                write!(f, "{found} fields, expected {expected}")
            }
            Self::BadDate { value } => write!(f, "unparseable date_requested {value:?}"),
            Self::EmptyDate => f.write_str("date_requested is empty"),
            Self::OutsideMonth { value, month } => {
                write!(f, "date_requested {value} is outside {month}")
            }
            Self::EmptyId => f.write_str(
                "service_request_id is empty (a row without an id cannot be told from its copies)",
            ),
            Self::InvalidUtf8 => f.write_str("not valid UTF-8 (re-export the file as UTF-8)"),
            Self::Malformed { message } => write!(f, "malformed CSV: {message}"),
        }
    }
}

impl QuarantineReason {
    /// Whether the row was refused for its date's month (empty or another month).
    pub fn is_out_of_month(&self) -> bool {
        matches!(self, Self::EmptyDate | Self::OutsideMonth { .. })
    }
}

/// A row refused by ingest, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedRow {
    /// The file the row is in.
    pub source: ObjectKey,
    /// 1-based physical line where the row starts.
    pub line: u64,
    /// Why it was refused.
    pub reason: QuarantineReason,
    /// The row as it was in the file (lossily decoded if it was not UTF-8).
    pub raw: String,
}

/// What a file gave: its rows and refused rows, or why it was skipped whole.
#[derive(Debug)]
pub enum ParsedFile {
    /// Not read (empty, not text, not an export, too wide, unreadable header).
    Skipped(SkipReason),
    /// An export, read row by row.
    Export(ParsedExport),
}

/// An export's good rows and the rows it refused.
#[derive(Debug)]
pub struct ParsedExport {
    /// The rows kept.
    pub rows: ExportRows,
    /// The rows refused, in file order.
    pub quarantined: Vec<QuarantinedRow>,
    /// Rows whose `date_requested` is empty or outside the month: quarantined or kept,
    /// as `ingest.out_of_month` says.
    pub out_of_month: u64,
}

/// Header names as gid uses them: trimmed, lowercased; a repeated name gets a `__2`, `__3`
/// suffix (the first one not already taken) so no column is lost.
fn normalise_header(raw: &csv::ByteRecord) -> Vec<String> {
    let mut taken: HashSet<String> = HashSet::new();
    raw.iter()
        .map(|field| {
            let base = normalise_name(&String::from_utf8_lossy(field));
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

/// Where the columns gid checks sit in a file's rows, and what the month expects.
struct RowRules {
    expected: usize,
    date: Option<usize>,
    id: Option<usize>,
    /// `2019-01-`: the prefix of every normalised timestamp of the month.
    month: Option<(Month, String)>,
    out_of_month: OutOfMonth,
}

/// A good row's normalised date, and whether it is kept although out of the month.
struct GoodRow<'a> {
    date: Option<Cow<'a, str>>,
    out_of_month: bool,
}

/// Parses one export. Every column is read as text: types differ between exports
/// (an all-empty column would be inferred as something else), and the combined table
/// must never fail to concatenate or lose a row over a stray value.
pub fn parse_export(source: &ObjectKey, bytes: Bytes, rules: &ExportRules) -> ParsedFile {
    let bytes = if bytes.starts_with(BOM) {
        bytes.slice(BOM.len()..)
    } else {
        bytes
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return ParsedFile::Skipped(SkipReason::Empty);
    }
    with_reader(bytes.clone(), |reader| {
        parse_records(reader, source, &bytes, rules)
    })
}

type CsvReader = csv::Reader<Cursor<Bytes>>;

thread_local! {
    /// Building a csv reader builds its parser tables (~15 µs, more than a one-row file
    /// takes to parse): each thread keeps one and points it at the next file.
    static READER: RefCell<Option<CsvReader>> = const { RefCell::new(None) };
}

/// Runs `parse` with this thread's reader reading `bytes` from the start.
fn with_reader<T>(bytes: Bytes, parse: impl FnOnce(&mut CsvReader) -> T) -> T {
    READER.with(|slot| {
        let mut slot = slot.borrow_mut();
        let reader = slot.get_or_insert_with(|| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(Cursor::new(Bytes::new()))
        });
        *reader.get_mut() = Cursor::new(bytes);
        restart(reader, 0);
        let parsed = parse(reader);
        // The idle reader must not keep the file's bytes alive.
        *reader.get_mut() = Cursor::new(Bytes::new());
        parsed
    })
}

/// Points the reader at byte `at` with a fresh parser state; positions stay absolute.
fn restart(reader: &mut CsvReader, at: usize) {
    let mut position = csv::Position::new();
    position.set_byte(at as u64);
    reader
        .seek_raw(std::io::SeekFrom::Start(at as u64), position)
        .expect("seeking in memory cannot fail");
}

/// The header checks, then every record of the file.
fn parse_records(
    reader: &mut CsvReader,
    source: &ObjectKey,
    bytes: &[u8],
    rules: &ExportRules,
) -> ParsedFile {
    let mut record = csv::ByteRecord::new();
    // Only the header is read before deciding whether this is an export: a foreign file
    // costs one record, and a hostile width never reaches a per-column structure.
    let header = match reader.read_byte_record(&mut record) {
        Ok(false) => return ParsedFile::Skipped(SkipReason::Empty),
        Ok(true)
            if record.as_slice().contains(&0)
                || std::str::from_utf8(record.as_slice()).is_err() =>
        {
            return ParsedFile::Skipped(SkipReason::NotText);
        }
        Ok(true)
            if reader.position().byte() as usize == bytes.len() && ends_in_open_quote(bytes) =>
        {
            // Every row would be read as part of one header name.
            return ParsedFile::Skipped(SkipReason::UnreadableHeader {
                message: "a quoted header name is never closed (unterminated '\"')".into(),
            });
        }
        Ok(true) if record.len() > rules.max_columns() => {
            return ParsedFile::Skipped(SkipReason::TooManyColumns {
                columns: record.len(),
                max: rules.max_columns(),
            });
        }
        Ok(true) => normalise_header(&record),
        Err(e) => {
            return ParsedFile::Skipped(SkipReason::UnreadableHeader {
                message: e.to_string(),
            })
        }
    };
    let missing: Vec<String> = rules
        .required_columns()
        .iter()
        .filter(|c| !header.contains(c))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return ParsedFile::Skipped(SkipReason::missing_columns(missing, &header));
    }
    let row_rules = RowRules {
        expected: header.len(),
        date: header.iter().position(|h| h == DATE_REQUESTED),
        id: header.iter().position(|h| h == SERVICE_REQUEST_ID),
        month: rules.month().map(|m| (m, format!("{m}-"))),
        out_of_month: rules.out_of_month(),
    };
    // Every row ends at a line break (quoted ones only make this an overestimate): one
    // vectorised search, ~0.1 ms a MB, sizes the rows' columns once.
    let rows = memchr::memchr_iter(b'\n', bytes).count() + 1;
    let mut sink = RowSink::new(&header, bytes.len(), rows);
    let mut lines = LineCounter::default();
    let mut out_of_month = 0u64;

    let mut quarantined = Vec::new();
    let mut at = reader.position().byte() as usize;
    let mut plain = Vec::with_capacity(header.len());
    loop {
        let start = at;
        let (read, end) = match split::plain_record(bytes, start, &mut plain) {
            Found::Record(end) => (Ok(Some(Read::Plain)), end),
            Found::End => (Ok(None), bytes.len()),
            Found::Unusual => {
                restart(reader, start);
                let read = reader.read_byte_record(&mut record);
                let read = read.map(|more| more.then_some(Read::ByReader));
                (read, reader.position().byte() as usize)
            }
        };
        at = end;
        // After a CRLF the reader's position sits on the '\n'; the row starts after it.
        let from = skip_line_breaks(bytes, start).min(end);
        let reason = match read {
            Ok(None) => break,
            Ok(Some(Read::ByReader))
                if end == bytes.len() && ends_in_open_quote(&bytes[from..end]) =>
            {
                // A quote that never closes swallowed the rest of the file into one field.
                // Only its own line is refused; reading resumes on the next line.
                let line_end = bytes[from..]
                    .iter()
                    .position(|&b| b == b'\n' || b == b'\r')
                    .map_or(bytes.len(), |i| from + i);
                quarantined.push(QuarantinedRow {
                    source: source.clone(),
                    line: lines.line_at(bytes, from),
                    reason: QuarantineReason::Malformed {
                        message: "a quoted field is never closed (unterminated '\"')".into(),
                    },
                    raw: String::from_utf8_lossy(&bytes[from..line_end]).into_owned(),
                });
                if line_end >= bytes.len() {
                    break;
                }
                at = line_end;
                // The lone quote must not make later bare-CR line ends look quoted.
                lines.line_at(bytes, line_end);
                lines.in_quotes = false;
                continue;
            }
            Ok(Some(read)) => {
                let found = match read {
                    Read::Plain => plain.len(),
                    Read::ByReader => record.len(),
                };
                let kept = if found != row_rules.expected {
                    Err(QuarantineReason::FieldCount {
                        found,
                        expected: row_rules.expected,
                    })
                } else {
                    match read {
                        Read::Plain => match PlainFields::new(bytes, &plain) {
                            Some(fields) => keep(&fields, &row_rules, &mut sink),
                            None => Err(QuarantineReason::InvalidUtf8),
                        },
                        // As a StringRecord (a move, no copy) the row's UTF-8 is validated
                        // once, and its fields are read without validating each again.
                        Read::ByReader => match csv::StringRecord::from_byte_record(record) {
                            Ok(text) => {
                                let kept = keep(&text, &row_rules, &mut sink);
                                record = text.into_byte_record();
                                kept
                            }
                            Err(invalid) => {
                                record = invalid.into_byte_record();
                                Err(QuarantineReason::InvalidUtf8)
                            }
                        },
                    }
                };
                match kept {
                    Ok(kept_out_of_month) => {
                        out_of_month += u64::from(kept_out_of_month);
                        continue;
                    }
                    Err(reason) => Some(reason),
                }
            }
            Err(e) => Some(QuarantineReason::Malformed {
                message: e.to_string(),
            }),
        };
        if let Some(reason) = reason {
            out_of_month += u64::from(reason.is_out_of_month());
            let raw = String::from_utf8_lossy(&bytes[from..end])
                .trim_end_matches(['\r', '\n'])
                .to_owned();
            quarantined.push(QuarantinedRow {
                source: source.clone(),
                // Lines are counted only up to bad rows: a clean file is never rescanned.
                line: lines.line_at(bytes, from),
                reason,
                raw,
            });
        }
    }
    let rows = match sink.finish(header) {
        Ok(rows) => rows,
        Err(e) => {
            return ParsedFile::Skipped(SkipReason::UnreadableHeader {
                message: e.to_string(),
            })
        }
    };
    ParsedFile::Export(ParsedExport {
        rows,
        quarantined,
        out_of_month,
    })
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

/// Who read a record.
enum Read {
    Plain,
    ByReader,
}

/// Checks a record of the header's width and appends it to `sink` when it is good:
/// whether it is kept although out of the month, or why it is refused.
fn keep(
    fields: &impl Fields,
    rules: &RowRules,
    sink: &mut RowSink,
) -> Result<bool, QuarantineReason> {
    let good = check_record(fields, rules)?;
    sink.push(fields, rules.date, good.date.as_deref())?;
    Ok(good.out_of_month)
}

/// Checks one record of the header's width: its normalised date when it is good, or why
/// it is refused.
fn check_record<'a>(
    record: &'a impl Fields,
    rules: &RowRules,
) -> Result<GoodRow<'a>, QuarantineReason> {
    let text = |i: usize| record.get(i);
    let date = match rules.date.map(text) {
        Some(value) if !value.trim().is_empty() => match normalised(value) {
            Some(date) => Some(date),
            None => {
                return Err(QuarantineReason::BadDate {
                    value: value.to_owned(),
                })
            }
        },
        _ => None,
    };
    let mut out_of_month = false;
    if let Some((month, prefix)) = &rules.month {
        let outside = match &date {
            None => Some(QuarantineReason::EmptyDate),
            Some(d) if !d.starts_with(prefix.as_str()) => Some(QuarantineReason::OutsideMonth {
                value: d.to_string(),
                month: *month,
            }),
            Some(_) => None,
        };
        if let Some(reason) = outside {
            match rules.out_of_month {
                OutOfMonth::Quarantine => return Err(reason),
                OutOfMonth::Keep => out_of_month = true,
            }
        }
    }
    if rules.id.is_some_and(|i| text(i).trim().is_empty()) {
        return Err(QuarantineReason::EmptyId);
    }
    Ok(GoodRow { date, out_of_month })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ObjectKey {
        ObjectKey::new("2019/jan/part-001.csv").unwrap()
    }

    /// Row-level rules only: any header, any date.
    fn any_header() -> ExportRules {
        ExportRules::new([] as [&str; 0], 1000, OutOfMonth::Quarantine)
    }

    fn parsed(text: &str, rules: &ExportRules) -> ParsedFile {
        parse_export(&key(), Bytes::from(text.to_owned()), rules)
    }

    fn table(text: &str) -> (ExportRows, Vec<QuarantinedRow>) {
        match parsed(text, &any_header()) {
            ParsedFile::Export(e) => (e.rows, e.quarantined),
            ParsedFile::Skipped(why) => panic!("unexpectedly skipped: {why}"),
        }
    }

    fn column<'a>(rows: &'a ExportRows, name: &str) -> Vec<&'a str> {
        let c = rows.columns().iter().position(|n| n == name).unwrap();
        (0..rows.len()).map(|r| rows.field(r, c)).collect()
    }

    #[test]
    fn quoted_commas_newlines_and_quotes_parse() {
        let (rows, q) = table(
            "service_name,public_description\nPothole,\"a, b\"\nGraffiti,\"line1\nline2\"\nOther,\"say \"\"hi\"\"\"\n",
        );
        assert!(q.is_empty());
        assert_eq!(
            column(&rows, "public_description"),
            ["a, b", "line1\nline2", "say \"hi\""]
        );
    }

    #[test]
    fn bom_and_crlf_are_handled() {
        let (rows, q) = table("\u{feff}Service_Name ,status\r\nPothole,Closed\r\n");
        assert!(q.is_empty());
        assert_eq!(rows.columns(), ["service_name", "status"]);
        assert_eq!(column(&rows, "status"), ["Closed"]);
    }

    #[test]
    fn bad_rows_are_quarantined_with_their_line_and_good_rows_kept() {
        let text = "service_name,date_requested,x\n\
                    Pothole,2019-01-01T00:00:00,1\n\
                    Pothole,2019-01-02 10:00:00,1,extra\n\
                    Graffiti,\"multi\nline\",2\n\
                    Other,2019-01-03,3\n\
                    Short\n";
        let (rows, q) = table(text);
        assert_eq!(rows.len(), 2, "two good rows survive");
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
        assert_eq!(
            column(&rows, "date_requested"),
            ["2019-01-01T00:00:00", "2019-01-03T00:00:00"],
            "dates are normalised"
        );
    }

    #[test]
    fn crlf_files_with_bad_rows_gain_no_phantom_rows() {
        let (rows, q) =
            table("\u{feff}service_name,n\r\nPothole,1\r\nBad\r\nGraffiti,2\r\nOther,3\r\n");
        assert_eq!(q.len(), 1);
        assert_eq!(
            column(&rows, "service_name"),
            ["Pothole", "Graffiti", "Other"]
        );
        let (rows, _) = table("service_name,n\r\nPothole,1\r\nGraffiti,2\r\n");
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn invalid_utf8_rows_are_quarantined() {
        let mut bytes = b"service_name,public_description\nPothole,ok\nPothole,caf".to_vec();
        bytes.extend_from_slice(&[0xE9, b'\n']);
        let ParsedFile::Export(e) = parse_export(&key(), Bytes::from(bytes), &any_header()) else {
            panic!("expected an export")
        };
        assert_eq!(e.rows.len(), 1);
        assert_eq!(e.quarantined[0].reason, QuarantineReason::InvalidUtf8);
        assert_eq!(e.quarantined[0].line, 3);
    }

    #[test]
    fn empty_and_header_only_files() {
        assert!(matches!(
            parsed("", &any_header()),
            ParsedFile::Skipped(SkipReason::Empty)
        ));
        let (rows, q) = table("service_name,status\n");
        assert_eq!((rows.len(), rows.columns().len(), q.len()), (0, 2, 0));
    }

    #[test]
    fn duplicate_headers_keep_both_columns() {
        let (rows, _) = table("status,status\nOpen,Closed\n");
        assert_eq!(rows.columns(), ["status", "status__2"]);
    }

    #[test]
    fn empty_fields_read_back_as_empty_text() {
        let (rows, _) = table("a,b,c\n,x,\n1,,3\n");
        assert_eq!(rows.row(0).collect::<Vec<_>>(), ["", "x", ""]);
        assert_eq!(rows.row(1).collect::<Vec<_>>(), ["1", "", "3"]);
    }
}
