//! Hostile and broken CSV through the row parser ([`parse_export`]): a corpus of abuse
//! (wrong field counts, Latin-1 and invalid UTF-8, BOMs, CRLF and CR-only line endings,
//! unterminated quotes, a 10 MB field, a million rows, header-only files, duplicate headers,
//! formula cells) and a proptest fuzz target over generated files.
//!
//! The property every case asserts: no panic; every good row is kept exactly as written
//! and in order; every bad row is quarantined with its line and reason; kept + quarantined
//! equals the records in the file.

use bytes::Bytes;
use gid_core::{ObjectKey, OutOfMonth};
use gid_ingest::{parse_export, ExportRules, ParsedFile, QuarantinedRow, SkipReason};
use proptest::prelude::*;

fn key() -> ObjectKey {
    ObjectKey::new("2019/jan/hostile.csv").unwrap()
}

/// The row parser alone: any header is an export here, any date belongs (the header and
/// month rules have their own tests in only_exports.rs).
fn rules() -> ExportRules {
    ExportRules::new([] as [&str; 0], 1000, OutOfMonth::Quarantine)
}

/// The parsed table as rows of optional strings, and the quarantine.
fn parse(bytes: impl Into<Bytes>) -> (Vec<String>, Vec<Vec<Option<String>>>, Vec<QuarantinedRow>) {
    match parse_export(&key(), bytes.into(), &rules()) {
        ParsedFile::Skipped(SkipReason::Empty) => (vec![], vec![], vec![]),
        ParsedFile::Skipped(other) => panic!("skipped: {other}"),
        ParsedFile::Export(export) => {
            let rows = &export.rows;
            let table = (0..rows.len())
                .map(|r| {
                    rows.row(r)
                        .map(|v| (!v.is_empty()).then(|| v.to_owned()))
                        .collect()
                })
                .collect();
            (rows.columns().to_vec(), table, export.quarantined)
        }
    }
}

fn row(cells: &[&str]) -> Vec<Option<String>> {
    cells
        .iter()
        .map(|c| (!c.is_empty()).then(|| c.to_string()))
        .collect()
}

/// (line, reason contains) of each quarantined row.
fn lines(q: &[QuarantinedRow]) -> Vec<(u64, String)> {
    q.iter().map(|r| (r.line, r.reason.to_string())).collect()
}

fn assert_quarantine(q: &[QuarantinedRow], expected: &[(u64, &str)]) {
    let got = lines(q);
    assert_eq!(got.len(), expected.len(), "quarantine {got:?}");
    for ((line, reason), (want_line, want_reason)) in got.iter().zip(expected) {
        assert_eq!(line, want_line, "quarantine {got:?}");
        assert!(
            reason.contains(want_reason),
            "{reason:?} lacks {want_reason:?}"
        );
    }
    for r in q {
        assert_eq!(r.source, key(), "every quarantined row names its file");
    }
}

/// Cases of the hand-written corpus (counted for the README's figures).
const CORPUS_CASES: usize = 23;

#[test]
fn corpus_size_matches_the_cases_below() {
    // Keeps the README's "bad CSV inputs" figure honest: update both when adding a case.
    let source = include_str!("hostile_csv.rs");
    let cases = source.matches("#[test]\nfn case_").count();
    assert_eq!(cases, CORPUS_CASES);
}

#[test]
fn case_too_many_and_too_few_fields() {
    let (_, rows, q) = parse("a,b,c\n1,2,3\n1,2,3,4\n1,2\n\"x,y\",2,3\n4,5,6,7,8,9\n7,8,9\n");
    assert_eq!(
        rows,
        [
            row(&["1", "2", "3"]),
            row(&["x,y", "2", "3"]),
            row(&["7", "8", "9"])
        ]
    );
    assert_quarantine(
        &q,
        &[
            (3, "4 fields, expected 3"),
            (4, "2 fields, expected 3"),
            (6, "6 fields, expected 3"),
        ],
    );
    assert_eq!(
        q[0].raw, "1,2,3,4",
        "the raw row is kept for the quarantine file"
    );
}

#[test]
fn case_latin1_bytes_are_quarantined_not_garbled() {
    let mut bytes = b"service_name,public_description\nPothole,ok\nGraffiti,caf".to_vec();
    bytes.extend_from_slice(&[0xE9]); // é in Latin-1
    bytes.extend_from_slice(b" cr\xE8me\nOther,fine\n");
    let (_, rows, q) = parse(bytes);
    assert_eq!(rows, [row(&["Pothole", "ok"]), row(&["Other", "fine"])]);
    assert_quarantine(&q, &[(3, "not valid UTF-8")]);
    assert!(
        q[0].raw.starts_with("Graffiti,caf\u{FFFD}"),
        "{:?}",
        q[0].raw
    );
}

#[test]
fn case_invalid_utf8_sequences_anywhere_in_a_row() {
    // Overlong encoding, lone continuation byte, truncated sequence, surrogate half, 0xFF.
    let bad: [&[u8]; 5] = [
        b"\xC0\xAF",
        b"\x80",
        b"\xE2\x82",
        b"\xED\xA0\x80",
        b"\xFF\xFE",
    ];
    let mut bytes = b"a,b\n".to_vec();
    for (i, seq) in bad.iter().enumerate() {
        bytes.extend_from_slice(format!("good{i},x\n").as_bytes());
        bytes.extend_from_slice(b"\"q");
        bytes.extend_from_slice(seq);
        bytes.extend_from_slice(b"\",y\n");
    }
    let (_, rows, q) = parse(bytes);
    assert_eq!(rows.len(), 5);
    assert_quarantine(
        &q,
        &[
            (3, "UTF-8"),
            (5, "UTF-8"),
            (7, "UTF-8"),
            (9, "UTF-8"),
            (11, "UTF-8"),
        ],
    );
}

#[test]
fn case_invalid_utf8_in_the_header_skips_the_file_as_not_text() {
    // A header that is not UTF-8 is a binary file or a Latin-1/UTF-16 export: its names
    // cannot be matched, so the file is skipped whole and says why (it was read with
    // mangled column names before).
    let parsed = parse_export(&key(), Bytes::from_static(b"na\xEFme,b\n1,2\n"), &rules());
    assert!(
        matches!(parsed, ParsedFile::Skipped(SkipReason::NotText)),
        "{parsed:?}"
    );
}

#[test]
fn case_utf8_bom_then_crlf() {
    let (names, rows, q) =
        parse("\u{feff}Service_Name,Status\r\nPothole,Open\r\nGraffiti,Closed\r\n");
    assert_eq!(names, ["service_name", "status"]);
    assert_eq!(
        rows,
        [row(&["Pothole", "Open"]), row(&["Graffiti", "Closed"])]
    );
    assert!(q.is_empty());
}

#[test]
fn case_a_second_bom_inside_the_file_is_data() {
    // Two exports concatenated: the second BOM sits at the start of a row's first cell.
    let (_, rows, q) = parse("\u{feff}a,b\n1,2\n\u{feff}a,b\n3,4\n");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1], row(&["\u{feff}a", "b"]));
    assert!(q.is_empty());
}

#[test]
fn case_crlf_with_bad_rows_and_quoted_crlf_inside_fields() {
    let text = "a,b\r\n1,\"line\r\nbreak\"\r\nbad\r\n2,x\r\n";
    let (_, rows, q) = parse(text);
    assert_eq!(rows, [row(&["1", "line\r\nbreak"]), row(&["2", "x"])]);
    assert_quarantine(&q, &[(4, "1 fields, expected 2")]);
}

#[test]
fn case_cr_only_line_endings() {
    // Classic Mac exports end lines with a bare CR.
    let (_, rows, q) = parse("a,b\r1,2\r3,4\r");
    assert_eq!(rows, [row(&["1", "2"]), row(&["3", "4"])]);
    assert!(q.is_empty(), "{:?}", lines(&q));
}

#[test]
fn case_mixed_line_endings_and_blank_lines() {
    let (_, rows, q) = parse("a,b\n1,2\r\n\n\r\n3,4\r5,6\n\n");
    assert_eq!(rows, [row(&["1", "2"]), row(&["3", "4"]), row(&["5", "6"])]);
    assert!(q.is_empty(), "{:?}", lines(&q));
}

#[test]
fn case_unterminated_quote_loses_no_later_row() {
    // A stray quote opens a field that never closes: the rest of the file would be one
    // huge field. The broken row is quarantined; the rows after it are still read.
    let text = "a,b\n1,2\n3,\"oops\n4,5\n6,7\n";
    let (_, rows, q) = parse(text);
    assert_quarantine(&q, &[(3, "")]);
    assert_eq!(rows, [row(&["1", "2"]), row(&["4", "5"]), row(&["6", "7"])]);
}

#[test]
fn case_unterminated_quote_in_a_cr_only_file_keeps_later_line_numbers() {
    let (_, rows, q) = parse("a,b\r1,\"oops\r2,3\rbad\r4,5\r");
    assert_eq!(rows, [row(&["2", "3"]), row(&["4", "5"])]);
    assert_quarantine(&q, &[(2, "never closed"), (4, "1 fields, expected 2")]);
}

#[test]
fn case_unterminated_quote_on_the_last_line() {
    let (_, rows, q) = parse("a,b\n1,2\n3,\"never closed");
    assert_eq!(rows, [row(&["1", "2"])]);
    assert_quarantine(&q, &[(3, "")]);
}

#[test]
fn case_bare_quotes_inside_unquoted_fields() {
    let (_, rows, q) = parse("a,b\n5\" pothole,x\nsay \"hi\",y\n");
    assert_eq!(
        rows,
        [row(&["5\" pothole", "x"]), row(&["say \"hi\"", "y"])]
    );
    assert!(q.is_empty(), "{:?}", lines(&q));
}

#[test]
fn case_a_10_mb_single_field() {
    let big = "x".repeat(10 * 1024 * 1024);
    let text = format!("a,b\n1,\"{big}\"\n2,small\n3\n");
    let (_, rows, q) = parse(text);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1].as_deref().map(str::len), Some(big.len()));
    assert_eq!(rows[1], row(&["2", "small"]));
    assert_quarantine(&q, &[(4, "1 fields, expected 2")]);
}

#[test]
fn case_a_10_mb_field_in_a_bad_row_is_quarantined_whole() {
    let big = "y".repeat(10 * 1024 * 1024);
    let text = format!("a,b\n1,2\n{big},x,extra\n3,4\n");
    let (_, rows, q) = parse(text);
    assert_eq!(rows, [row(&["1", "2"]), row(&["3", "4"])]);
    assert_quarantine(&q, &[(3, "3 fields, expected 2")]);
    assert_eq!(q[0].raw.len(), big.len() + 8);
}

#[test]
fn case_a_million_rows_with_bad_rows_scattered() {
    const ROWS: usize = 1_000_000;
    let mut text = String::with_capacity(ROWS * 40);
    text.push_str("service_request_id,service_name,date_requested\n");
    let mut bad_lines = Vec::new();
    for i in 0..ROWS {
        if i % 100_000 == 99_999 {
            bad_lines.push(i as u64 + 2);
            text.push_str("broken row\n");
        } else {
            text.push_str(&format!("{i},Pothole,2019-01-05T13:22:00\n"));
        }
    }
    let started = std::time::Instant::now();
    let ParsedFile::Export(export) = parse_export(&key(), Bytes::from(text), &rules()) else {
        panic!("an export")
    };
    eprintln!("1M rows parsed in {:?}", started.elapsed());
    let (rows, quarantined) = (&export.rows, &export.quarantined);
    assert_eq!(rows.len() + quarantined.len(), ROWS);
    assert_eq!(quarantined.len(), 10);
    let got: Vec<u64> = quarantined.iter().map(|r| r.line).collect();
    assert_eq!(got, bad_lines);
    assert_eq!(rows.field(0, 0), "0");
    assert_eq!(rows.field(rows.len() - 1, 0), "999998");
}

#[test]
fn case_header_only_files() {
    for text in ["a,b\n", "a,b", "a,b\r\n", "\u{feff}a,b\r\n\r\n"] {
        let (names, rows, q) = parse(text);
        assert_eq!(names, ["a", "b"], "{text:?}");
        assert!(rows.is_empty() && q.is_empty(), "{text:?}");
    }
}

#[test]
fn case_empty_and_whitespace_files_are_empty() {
    for text in ["", "\n\n", "  \r\n\t", "\u{feff}", "\u{feff}\n"] {
        assert!(
            matches!(
                parse_export(&key(), Bytes::from(text), &rules()),
                ParsedFile::Skipped(SkipReason::Empty)
            ),
            "{text:?}"
        );
    }
}

#[test]
fn case_duplicate_and_blank_headers_keep_every_column() {
    let (names, rows, q) = parse("Status,status, STATUS ,,\nOpen,Closed,New,x,y\n");
    assert_eq!(names, ["status", "status__2", "status__3", "", "__2"]);
    assert_eq!(rows, [row(&["Open", "Closed", "New", "x", "y"])]);
    assert!(q.is_empty());
}

#[test]
fn case_formula_cells_are_kept_verbatim_as_data() {
    // Ingest keeps exactly what was exported; neutralising is the CSV writers' job
    // (gid-publish), tested there and end to end.
    let cells = [
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "+1+1",
        "-2+3",
        "@SUM(A1:A9)",
        "\tTAB",
        "=cmd|' /C calc'!A0",
    ];
    let mut text = String::from("service_name,n\n");
    for c in cells {
        text.push_str(&format!("\"{}\",1\n", c.replace('"', "\"\"")));
    }
    let (_, rows, q) = parse(text);
    assert!(q.is_empty());
    let got: Vec<&str> = rows.iter().map(|r| r[0].as_deref().unwrap()).collect();
    assert_eq!(got, cells);
}

#[test]
fn case_bad_dates_are_quarantined_and_good_ones_normalised() {
    let (_, rows, q) = parse(
        "date_requested,n\n2019-01-05 13:22:00,1\n2019-02-30,2\n01/05/2019 13:22,3\n'; DROP TABLE x;--,4\n,5\n",
    );
    assert_eq!(
        rows,
        [
            row(&["2019-01-05T13:22:00", "1"]),
            row(&["2019-01-05T13:22:00", "3"]),
            row(&["", "5"])
        ]
    );
    assert_quarantine(
        &q,
        &[
            (3, "unparseable date_requested"),
            (5, "unparseable date_requested"),
        ],
    );
}

#[test]
fn case_nul_bytes_and_control_characters_are_data() {
    let (_, rows, q) = parse(b"a,b\nx\x00y,\x1b[31mred\n".to_vec());
    assert_eq!(rows, [row(&["x\0y", "\u{1b}[31mred"])]);
    assert!(q.is_empty());
}

#[test]
fn case_a_file_of_only_bad_rows_is_an_empty_table_with_its_columns() {
    let (names, rows, q) = parse("a,b,c\n1\n2\n3,4,5,6\n");
    assert_eq!(names, ["a", "b", "c"]);
    assert!(rows.is_empty());
    assert_eq!(q.len(), 3);
}

// ---- the fuzz target ----------------------------------------------------------------

/// One generated row: good (its cells as they must come out) or bad (and why).
#[derive(Debug, Clone)]
enum GenRow {
    Good(Vec<String>),
    WrongCount(Vec<String>),
    BadDate(Vec<String>),
    Latin1(Vec<String>),
}

fn cell() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ]{0,8}",
        // Everything CSV must quote, plus unicode and formula starts.
        2 => "[a-z,\"\r\n =+@ é中<>-]{0,10}",
        1 => Just(String::new()),
    ]
    .boxed()
}

fn quote(cell: &str) -> String {
    if cell.contains([',', '"', '\r', '\n']) || cell.starts_with(' ') || cell.ends_with(' ') {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_owned()
    }
}

/// A date cell: valid ISO timestamps (kept as they are) or empty.
fn good_date() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..=28, 0u32..24, 0u32..60)
            .prop_map(|(d, h, m)| format!("2019-01-{d:02}T{h:02}:{m:02}:00")),
        Just(String::new()),
    ]
}

fn gen_row(width: usize, date_at: Option<usize>) -> impl Strategy<Value = GenRow> {
    let cells = proptest::collection::vec(cell(), width);
    let good = (cells, good_date())
        .prop_map(move |(mut c, d)| {
            if let Some(i) = date_at {
                c[i] = d;
            }
            c
        })
        .boxed();
    let wrong = proptest::collection::vec(cell(), 1..=width + 3)
        .prop_filter("a different count", move |c| c.len() != width)
        .prop_map(GenRow::WrongCount);
    let mut options: Vec<(u32, BoxedStrategy<GenRow>)> = vec![
        (6, good.clone().prop_map(GenRow::Good).boxed()),
        (1, wrong.boxed()),
        (1, good.clone().prop_map(GenRow::Latin1).boxed()),
    ];
    if let Some(i) = date_at {
        let bad = (
            good,
            prop_oneof![Just("not a date"), Just("2019-13-45"), Just("32/01/2019")],
        )
            .prop_map(move |(mut c, bad)| {
                c[i] = bad.to_owned();
                GenRow::BadDate(c)
            });
        options.push((1, bad.boxed()));
    }
    proptest::strategy::Union::new_weighted(options)
}

#[derive(Debug, Clone)]
struct GenFile {
    width: usize,
    date_at: Option<usize>,
    rows: Vec<GenRow>,
    crlf: bool,
    bom: bool,
    trailing_newline: bool,
}

fn gen_file() -> impl Strategy<Value = GenFile> {
    (1usize..=5)
        .prop_flat_map(|width| (Just(width), proptest::option::of(0..width)))
        .prop_flat_map(|(width, date_at)| {
            (
                Just(width),
                Just(date_at),
                proptest::collection::vec(gen_row(width, date_at), 0..40),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(
            |(width, date_at, rows, crlf, bom, trailing_newline)| GenFile {
                width,
                date_at,
                rows,
                crlf,
                bom,
                trailing_newline,
            },
        )
}

impl GenFile {
    /// The file's bytes, the expected good rows and the lines of the bad ones.
    fn render(&self) -> (Vec<u8>, Vec<Vec<Option<String>>>, Vec<u64>) {
        let eol: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        let header: Vec<String> = (0..self.width)
            .map(|i| {
                if Some(i) == self.date_at {
                    "date_requested".to_owned()
                } else {
                    format!("c{i}")
                }
            })
            .collect();
        out.extend_from_slice(header.join(",").as_bytes());
        let mut good = Vec::new();
        let mut bad_lines = Vec::new();
        for r in &self.rows {
            out.extend_from_slice(eol);
            // The line a row starts on: one more than the line breaks before it.
            let line = 1 + out.iter().filter(|&&b| b == b'\n').count() as u64;
            let cells = match r {
                GenRow::Good(c)
                | GenRow::WrongCount(c)
                | GenRow::BadDate(c)
                | GenRow::Latin1(c) => c,
            };
            let mut text: Vec<Vec<u8>> = cells.iter().map(|c| quote(c).into_bytes()).collect();
            if let GenRow::Latin1(_) = r {
                // A Latin-1 'é' opening the (quoted) first cell: the structure stays intact.
                let mut first = b"\"\xE9".to_vec();
                first.extend_from_slice(cells[0].replace('"', "\"\"").as_bytes());
                first.push(b'"');
                text[0] = first;
            }
            if cells.len() == 1 && cells[0].is_empty() && !matches!(r, GenRow::Latin1(_)) {
                // A lone empty cell would be a blank line, which readers skip: quote it.
                text[0] = b"\"\"".to_vec();
            }
            out.extend_from_slice(&text.join(&b',')[..]);
            match r {
                GenRow::Good(c) => good.push(
                    c.iter()
                        .map(|c| (!c.is_empty()).then(|| c.clone()))
                        .collect(),
                ),
                _ => bad_lines.push(line),
            }
        }
        if self.trailing_newline {
            out.extend_from_slice(eol);
        }
        (out, good, bad_lines)
    }
}

proptest! {
    // Modest, so `make test` stays fast; PROPTEST_CASES raises it for a longer hunt.
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn row_parser_keeps_every_good_row_and_quarantines_every_bad_one(file in gen_file()) {
        let (bytes, good, bad_lines) = file.render();
        let records = good.len() + bad_lines.len();
        let (_, rows, q) = parse(bytes);
        prop_assert_eq!(rows.len() + q.len(), records, "kept + quarantined == records");
        prop_assert_eq!(&rows, &good, "kept rows are exactly the well-formed ones");
        let got: Vec<u64> = q.iter().map(|r| r.line).collect();
        prop_assert_eq!(got, bad_lines, "each bad row is quarantined with its line");
    }

    #[test]
    fn row_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(
        prop_oneof![
            Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b'a'), Just(b' '),
            Just(0xE9u8), Just(0xEF), Just(0xBB), Just(0xBF), Just(0u8), any::<u8>(),
        ],
        0..300,
    )) {
        // Any outcome but a panic (or a skipped file) is acceptable; an export's rows plus
        // quarantine never exceed the line breaks + 1.
        if let ParsedFile::Export(export) = parse_export(&key(), Bytes::from(bytes.clone()), &rules()) {
            let breaks = bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
            prop_assert!(export.rows.len() + export.quarantined.len() <= breaks + 1);
        }
    }
}
