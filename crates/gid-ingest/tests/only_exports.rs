//! Only exports are counted, each request once, each in its month:
//! - files that are not exports (random bytes, a contacts list, a copied report, a header
//!   without the key columns, an over-wide header) are skipped whole with a reason;
//! - a `service_request_id` seen in several rows is kept once: the copy from the file with
//!   the latest LastModified (ties: the later key; within a file: the last row);
//! - rows dated outside the month, undated rows and rows without an id are quarantined
//!   (or, for dates, kept and counted under `out_of_month = "keep"`);
//! - many small files give the same table as one file of the same rows.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use gid_core::{BucketName, Month, ObjectKey, OutOfMonth};
use gid_ingest::{
    combine, ingest_month, list_inputs, parse_export, ExportRules, IngestError, IngestSource,
    ParsedExport, ParsedFile, SkipReason, SourcedExport,
};
use gid_storage::{BucketAdmin, InstrumentedStore, LocalStore, ObjectStore, PutOptions};
use polars_core::prelude::*;

const KEY_COLUMNS: [&str; 3] = ["service_request_id", "date_requested", "service_name"];

fn month() -> Month {
    "2019-01".parse().unwrap()
}

fn rules() -> ExportRules {
    ExportRules::new(KEY_COLUMNS, 1000, OutOfMonth::Quarantine).in_month(month())
}

fn key(name: &str) -> ObjectKey {
    ObjectKey::new(format!("2019/jan/{name}")).unwrap()
}

fn parse(name: &str, bytes: impl Into<Bytes>, rules: &ExportRules) -> ParsedFile {
    parse_export(&key(name), bytes.into(), rules)
}

fn skipped(name: &str, bytes: impl Into<Bytes>, rules: &ExportRules) -> SkipReason {
    match parse(name, bytes, rules) {
        ParsedFile::Skipped(reason) => reason,
        ParsedFile::Export(e) => panic!("{name} was read as an export: {:?}", e.rows),
    }
}

fn export(name: &str, text: &str, rules: &ExportRules) -> ParsedExport {
    match parse(name, text.to_owned(), rules) {
        ParsedFile::Export(e) => e,
        ParsedFile::Skipped(reason) => panic!("{name} skipped: {reason}"),
    }
}

// ---- files that are not exports ---------------------------------------------------------

#[test]
fn a_random_binary_file_is_skipped_as_not_text() {
    let reason = skipped(
        "zz-random.csv",
        gid_sample::binary_noise(64 * 1024),
        &rules(),
    );
    assert_eq!(reason, SkipReason::NotText);
    assert!(reason.to_string().contains("not a text CSV"), "{reason}");
}

#[test]
fn a_utf16_export_is_skipped_as_not_text() {
    let utf16: Vec<u8> =
        "\u{feff}service_request_id,date_requested,service_name\r\n1,2019-01-05,Pothole\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
    assert_eq!(skipped("utf16.csv", utf16, &rules()), SkipReason::NotText);
}

#[test]
fn a_contacts_list_is_not_an_export() {
    let reason = skipped("contacts.csv", gid_sample::CONTACTS_CSV, &rules());
    let SkipReason::MissingColumns { missing, header } = &reason else {
        panic!("{reason:?}")
    };
    assert_eq!(missing, &KEY_COLUMNS);
    assert_eq!(header, "name, department, email, phone");
    let said = reason.to_string();
    assert!(
        said.contains("lacks service_request_id, date_requested, service_name")
            && said.contains("it has: name, department, email, phone"),
        "{said}"
    );
}

#[test]
fn a_copied_final_report_is_not_an_export() {
    let report =
        "month,service_name,request_count\n2019-01,Illegal Dumping,342\n2019-01,Pothole,30\n";
    let reason = skipped("final_report.csv", report, &rules());
    assert_eq!(
        reason,
        SkipReason::MissingColumns {
            missing: vec!["service_request_id".into(), "date_requested".into()],
            header: "month, service_name, request_count".into(),
        }
    );
}

#[test]
fn key_columns_are_matched_as_header_names_are_normalised() {
    let e = export(
        "upper.csv",
        "\u{feff} Service_Request_ID ,DATE_REQUESTED,Service_Name\n1,2019-01-05,Pothole\n",
        &rules(),
    );
    assert_eq!(e.rows.len(), 1);
}

#[test]
fn a_hostile_header_is_listed_shortened_in_the_reason() {
    let header: Vec<String> = (0..900).map(|i| format!("column_{i}")).collect();
    let reason = skipped("wide.csv", format!("{}\n", header.join(",")), &rules());
    let said = reason.to_string();
    assert!(said.contains("column_0, column_1"), "{said}");
    assert!(said.contains("(900 columns in all)"), "{said}");
    assert!(said.len() < 600, "{} characters: {said}", said.len());
}

#[test]
fn an_over_wide_header_is_skipped_whole() {
    let header = |n: usize| {
        let mut names: Vec<String> = KEY_COLUMNS.iter().map(|c| c.to_string()).collect();
        names.extend((names.len()..n).map(|i| format!("c{i}")));
        names.join(",")
    };
    let row = |n: usize| {
        let mut cells = vec!["1".to_owned(), "2019-01-05".into(), "Pothole".into()];
        cells.extend((cells.len()..n).map(|_| "x".to_owned()));
        cells.join(",")
    };
    let file = |n: usize| format!("{}\n{}\n", header(n), row(n));
    assert_eq!(
        skipped("wide.csv", file(5_000), &rules()),
        SkipReason::TooManyColumns {
            columns: 5_000,
            max: 1_000
        }
    );
    // A lowered cap: one column more than the cap is refused, the cap itself is read.
    let capped = ExportRules::new(KEY_COLUMNS, 100, OutOfMonth::Quarantine).in_month(month());
    let reason = skipped("wide.csv", file(101), &capped);
    assert!(
        reason
            .to_string()
            .contains("101 columns, more than ingest.max_columns = 100"),
        "{reason}"
    );
    assert_eq!(export("ok.csv", &file(100), &capped).rows.len(), 1);
}

// ---- dates and ids ------------------------------------------------------------------------

const HEADER: &str = "service_request_id,date_requested,service_name";

#[test]
fn rows_dated_outside_the_month_or_undated_are_quarantined_with_their_reason() {
    let text = format!(
        "{HEADER}\n1,2019-01-05T10:00:00,Pothole\n2,2016-03-01T10:00:00,Pothole\n3,,Pothole\n\
         4,2031-01-01,Pothole\n5,2018-12-31 23:59:59,Pothole\n6,2019-02-01T00:00:00,Pothole\n\
         7,01/31/2019 23:59,Pothole\n"
    );
    let e = export("dates.csv", &text, &rules());
    let kept: Vec<&str> = (0..e.rows.len()).map(|r| e.rows.field(r, 0)).collect();
    assert_eq!(kept, ["1", "7"]);
    let refused: Vec<(u64, String)> = e
        .quarantined
        .iter()
        .map(|q| (q.line, q.reason.to_string()))
        .collect();
    assert_eq!(
        refused,
        [
            (
                3,
                "date_requested 2016-03-01T10:00:00 is outside 2019-01".to_owned()
            ),
            (4, "date_requested is empty".to_owned()),
            (
                5,
                "date_requested 2031-01-01T00:00:00 is outside 2019-01".to_owned()
            ),
            (
                6,
                "date_requested 2018-12-31T23:59:59 is outside 2019-01".to_owned()
            ),
            (
                7,
                "date_requested 2019-02-01T00:00:00 is outside 2019-01".to_owned()
            ),
        ]
    );
    assert_eq!(e.out_of_month, 5);
}

#[test]
fn with_out_of_month_keep_such_rows_are_counted_and_kept() {
    let keep = ExportRules::new(KEY_COLUMNS, 1000, OutOfMonth::Keep).in_month(month());
    let text = format!("{HEADER}\n1,2019-01-05,Pothole\n2,2016-03-01,Pothole\n3,,Pothole\n");
    let e = export("dates.csv", &text, &keep);
    assert_eq!(e.rows.len(), 3);
    assert!(e.quarantined.is_empty());
    assert_eq!(e.out_of_month, 2);
}

#[test]
fn rows_without_a_service_request_id_are_quarantined() {
    let text =
        format!("{HEADER}\n1,2019-01-05,Pothole\n,2019-01-05,Pothole\n  ,2019-01-06,Graffiti\n");
    let e = export("ids.csv", &text, &rules());
    assert_eq!(e.rows.len(), 1);
    let reasons: Vec<String> = e.quarantined.iter().map(|q| q.reason.to_string()).collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons
            .iter()
            .all(|r| r.starts_with("service_request_id is empty")),
        "{reasons:?}"
    );
}

// ---- one row per service_request_id -------------------------------------------------------

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_548_000_000 + seconds, 0).unwrap()
}

fn sourced(name: &str, modified: DateTime<Utc>, text: &str) -> SourcedExport {
    SourcedExport {
        key: key(name),
        last_modified: modified,
        rows: export(name, text, &rules()).rows,
    }
}

/// (service_request_id, service_name) of every row of the table, in order.
fn id_and_service(frame: &DataFrame) -> Vec<(String, String)> {
    let ids = frame.column("service_request_id").unwrap().str().unwrap();
    let services = frame.column("service_name").unwrap().str().unwrap();
    ids.iter()
        .zip(services.iter())
        .map(|(i, s)| (i.unwrap().to_owned(), s.unwrap().to_owned()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn of_two_copies_of_an_id_the_row_from_the_newer_file_is_kept() {
    let old = format!("{HEADER}\n1,2019-01-05,Old\n2,2019-01-05,Old\n3,2019-01-05,Old\n");
    let new = format!("{HEADER}\n2,2019-01-06,New\n3,2019-01-06,New\n4,2019-01-06,New\n");
    // part-001 is the newer file: the copies in the backup folder (older) are dropped.
    let combined = combine(vec![
        sourced("backup/part-001.csv", at(0), &old),
        sourced("part-001.csv", at(60), &new),
    ])
    .unwrap();
    assert_eq!(
        id_and_service(&combined.frame),
        pairs(&[("1", "Old"), ("2", "New"), ("3", "New"), ("4", "New")])
    );
    assert_eq!(combined.duplicates_dropped(), 2);
    assert_eq!(combined.duplicates.len(), 1);
    let d = &combined.duplicates[0];
    assert_eq!(
        (d.file.as_str(), d.kept_from.as_str(), d.rows),
        ("2019/jan/backup/part-001.csv", "2019/jan/part-001.csv", 2)
    );

    // The same files with the ages swapped: now the backup's copies win.
    let combined = combine(vec![
        sourced("backup/part-001.csv", at(60), &old),
        sourced("part-001.csv", at(0), &new),
    ])
    .unwrap();
    assert_eq!(
        id_and_service(&combined.frame),
        pairs(&[("1", "Old"), ("2", "Old"), ("3", "Old"), ("4", "New")])
    );
    assert_eq!(combined.duplicates[0].file, "2019/jan/part-001.csv");
}

#[test]
fn on_a_last_modified_tie_the_later_key_wins() {
    let a = format!("{HEADER}\n7,2019-01-05,From-a\n");
    let b = format!("{HEADER}\n7,2019-01-05,From-b\n");
    let combined = combine(vec![
        sourced("b.csv", at(0), &b),
        sourced("a.csv", at(0), &a),
    ])
    .unwrap();
    assert_eq!(id_and_service(&combined.frame), pairs(&[("7", "From-b")]));
    assert_eq!(combined.duplicates[0].file, "2019/jan/a.csv");
}

#[test]
fn within_one_file_the_last_row_of_an_id_is_kept() {
    let text = format!(
        "{HEADER}\n1,2019-01-05,First\n2,2019-01-05,Other\n1,2019-01-06,Second\n 1 ,2019-01-07,Third\n"
    );
    let combined = combine(vec![sourced("part.csv", at(0), &text)]).unwrap();
    assert_eq!(
        id_and_service(&combined.frame),
        pairs(&[("2", "Other"), (" 1 ", "Third")])
    );
    assert_eq!(combined.duplicates_dropped(), 2);
    assert!(
        combined.duplicates[0]
            .to_string()
            .contains("repeats 2 ids within the file (last row kept)"),
        "{}",
        combined.duplicates[0]
    );
}

// ---- through the store ---------------------------------------------------------------------

fn bucket() -> BucketName {
    BucketName::new("gid-requests").unwrap()
}

fn source(rules: ExportRules) -> IngestSource {
    IngestSource {
        bucket: bucket(),
        prefix: "2019/jan/".into(),
        suffix: ".csv".into(),
        concurrency: 8,
        max_inflight_bytes: 256 << 20,
        rules,
    }
}

/// Writes a file into the bucket folder as an operator's copy would land (no metadata
/// sidecar: LastModified is the file's modification time).
fn drop_file(root: &std::path::Path, name: &str, bytes: &[u8], modified: SystemTime) {
    let path = root.join("gid-requests/2019/jan").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

async fn ingest(
    store: &dyn ObjectStore,
    rules: ExportRules,
) -> Result<gid_ingest::MonthTable, IngestError> {
    let source = source(rules);
    let listing = list_inputs(store, &source).await?;
    ingest_month(store, &source, month(), listing, &|_| {}).await
}

#[tokio::test]
async fn an_empty_export_is_skipped_from_its_listing_without_a_download() {
    let dir = tempfile::tempdir().unwrap();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_548_000_000);
    let export = format!("{HEADER}\n1,2019-01-05,Pothole\n");
    drop_file(dir.path(), "part-001.csv", export.as_bytes(), base);
    drop_file(dir.path(), "part-empty.csv", b"", base);
    drop_file(dir.path(), "part-blank.csv", b" \n\n", base);
    let store = InstrumentedStore::new(std::sync::Arc::new(LocalStore::new(dir.path())));

    let table = ingest(&store, rules()).await.unwrap();

    let report = &table.report;
    assert_eq!(report.rows, 1);
    let empty: Vec<&str> = report
        .files
        .iter()
        .filter(|f| f.skipped == Some(gid_ingest::SkipReason::Empty))
        .map(|f| f.key.as_str())
        .collect();
    assert_eq!(
        empty,
        ["2019/jan/part-blank.csv", "2019/jan/part-empty.csv"]
    );
    assert_eq!(
        store.counts().gets.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "the export and the blank file are read; the zero-byte file is known empty from the listing"
    );
}

#[tokio::test]
async fn foreign_files_and_copies_under_the_prefix_do_not_change_the_months_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_548_000_000);
    let export = format!("{HEADER},status\n1,2019-01-05,Pothole,Open\n2,2019-01-06,Graffiti,Closed\n3,2019-01-07,Pothole,New\n");
    drop_file(dir.path(), "part-001.csv", export.as_bytes(), base);
    // A backup made an hour later holds the same rows.
    drop_file(
        dir.path(),
        "backup/part-001 (1).csv",
        export.as_bytes(),
        base + Duration::from_secs(3600),
    );
    drop_file(
        dir.path(),
        "zz-random.csv",
        &gid_sample::binary_noise(256 * 1024),
        base,
    );
    drop_file(
        dir.path(),
        "contacts.csv",
        gid_sample::CONTACTS_CSV.as_bytes(),
        base,
    );
    drop_file(
        dir.path(),
        "final_report.csv",
        b"month,service_name,request_count\n2019-01,Pothole,2\n",
        base,
    );
    drop_file(dir.path(), "notes.txt", b"not an export", base);

    let table = ingest(&store, rules()).await.unwrap();
    let report = &table.report;
    assert_eq!(report.rows, 3, "{report:#?}");
    assert_eq!(table.frame.as_ref().unwrap().height(), 3);
    assert_eq!(
        table.frame.as_ref().unwrap().get_column_names(),
        [
            "service_request_id",
            "date_requested",
            "service_name",
            "status"
        ],
        "no column of a foreign file reaches the table"
    );
    assert_eq!(report.duplicates_dropped, 3);
    assert_eq!(
        report.duplicates[0].file, "2019/jan/part-001.csv",
        "the older original's copies are the ones dropped"
    );
    let reason_of = |name: &str| {
        report
            .files
            .iter()
            .find(|f| f.key == format!("2019/jan/{name}"))
            .unwrap_or_else(|| panic!("{name} not reported"))
            .skipped
            .as_ref()
            .map(SkipReason::label)
    };
    assert_eq!(reason_of("zz-random.csv"), Some("not text"));
    assert_eq!(
        reason_of("contacts.csv"),
        Some("without the export's key columns")
    );
    assert_eq!(
        reason_of("final_report.csv"),
        Some("without the export's key columns")
    );
    assert_eq!(reason_of("notes.txt"), Some("not an export by name"));
    assert_eq!(reason_of("part-001.csv"), None);
    let summary = report.tally().to_string();
    assert!(
        summary.contains("files 6 (4 ignored: ")
            && summary.contains("rows 3, quarantined 0")
            && summary.contains("duplicates dropped 3 (2019/jan/part-001.csv repeats 3 ids of 2019/jan/backup/part-001 (1).csv (newer, kept))"),
        "{summary}"
    );
}

#[tokio::test]
async fn the_summary_says_how_many_rows_fell_outside_the_month_under_either_policy() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        format!("{HEADER}\n1,2019-01-05,Pothole\n2,2016-03-01T10:00:00,Pothole\n3,,Pothole\n");
    drop_file(dir.path(), "part.csv", text.as_bytes(), SystemTime::now());
    let store = LocalStore::new(dir.path());
    let quarantined = ingest(&store, rules()).await.unwrap().report;
    assert_eq!((quarantined.rows, quarantined.out_of_month), (1, 2));
    assert!(
        quarantined
            .tally()
            .to_string()
            .contains("rows 1, quarantined 2 (2 undated or dated outside 2019-01)"),
        "{}",
        quarantined.tally()
    );
    let keep = ExportRules::new(KEY_COLUMNS, 1000, OutOfMonth::Keep);
    let kept = ingest(&store, keep).await.unwrap().report;
    assert_eq!((kept.rows, kept.quarantined, kept.out_of_month), (3, 0, 2));
    assert!(
        kept.tally()
            .to_string()
            .contains("rows 3, quarantined 0, kept 2 undated or dated outside 2019-01"),
        "{}",
        kept.tally()
    );
}

#[tokio::test]
async fn a_month_of_only_foreign_files_fails_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let now = SystemTime::now();
    drop_file(
        dir.path(),
        "contacts.csv",
        gid_sample::CONTACTS_CSV.as_bytes(),
        now,
    );
    drop_file(dir.path(), "empty.csv", b"", now);
    let err = ingest(&store, rules()).await.unwrap_err().to_string();
    assert!(
        err.contains("none of the 2 objects under s3://gid-requests/2019/jan/ is an export (1 empty, 1 without the export's key columns)"),
        "{err}"
    );
}

/// Rows long enough that 500 of them pass 1 MiB, the size from which a file gets its own
/// columns (smaller files are copied into columns shared with their neighbours).
fn long_row(i: usize) -> String {
    format!(
        "{i},2019-01-{:02}T10:00:00,{},{},\"note {i}, quoted {}\"",
        i % 28 + 1,
        ["Pothole", "Graffiti", "Illegal Dumping"][i % 3],
        if i.is_multiple_of(5) { "" } else { "Closed" },
        "x".repeat(2_200)
    )
}

const LONG_HEADER: &str =
    "service_request_id,date_requested,service_name,status,public_description";

async fn store_with(root: &std::path::Path, files: &[(String, String)]) -> LocalStore {
    let store = LocalStore::new(root);
    store.create_bucket(&bucket()).await.unwrap();
    for (name, body) in files {
        store
            .put(
                &bucket(),
                &key(name),
                Bytes::from(body.clone()),
                &PutOptions::new("text/csv"),
            )
            .await
            .unwrap();
    }
    store
}

fn file_of(rows: std::ops::Range<usize>) -> String {
    let mut text = format!("{LONG_HEADER}\n");
    for i in rows {
        text.push_str(&long_row(i));
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn many_small_files_make_the_same_table_as_one_file_of_the_same_rows() {
    const ROWS: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let single = |i: usize| (format!("part-{i:05}.csv"), file_of(i..i + 1));
    let small: Vec<_> = (0..ROWS).map(single).collect();
    let one = [("all.csv".to_owned(), file_of(0..ROWS))];
    // Small files around a large one, in key order.
    let mut mixed: Vec<_> = (0..250).map(single).collect();
    mixed.push(("part-00250-00749.csv".to_owned(), file_of(250..750)));
    mixed.extend((750..ROWS).map(single));

    let mut tables = Vec::new();
    for (name, files) in [
        ("small", &small[..]),
        ("one", &one[..]),
        ("mixed", &mixed[..]),
    ] {
        let store = store_with(&dir.path().join(name), files).await;
        tables.push((name, ingest(&store, rules()).await.unwrap().frame.unwrap()));
    }
    let (_, from_small) = &tables[0];
    assert_eq!(from_small.height(), ROWS);
    assert_eq!(
        from_small.first_col_n_chunks(),
        1,
        "small files share one set of columns, not one per file"
    );
    for (name, table) in &tables[1..] {
        assert!(
            from_small.equals_missing(table),
            "{name}:\n{:?}\n{:?}",
            from_small.head(Some(3)),
            table.head(Some(3))
        );
    }
}

#[tokio::test]
async fn rows_of_a_large_file_repeated_in_a_newer_file_leave_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_548_000_000);
    let large = file_of(0..500);
    assert!(large.len() > 1 << 20);
    drop_file(dir.path(), "a-large.csv", large.as_bytes(), base);
    let newer = format!(
        "{LONG_HEADER}\n5,2019-01-20T10:00:00,Newer,Open,x\n7,2019-01-20T10:00:00,Newer,Open,y\n"
    );
    drop_file(
        dir.path(),
        "b-newer.csv",
        newer.as_bytes(),
        base + Duration::from_secs(60),
    );
    let table = ingest(&LocalStore::new(dir.path()), rules()).await.unwrap();
    let rows = id_and_service(table.frame.as_ref().unwrap());
    assert_eq!(rows.len(), 500);
    assert_eq!(
        rows.iter().filter(|(_, s)| s == "Newer").count(),
        2,
        "the newer copies are kept"
    );
    assert_eq!(
        rows.iter().filter(|(id, _)| id == "5" || id == "7").count(),
        2,
        "the large file's copies are gone"
    );
    assert_eq!(table.report.duplicates_dropped, 2);
}

#[tokio::test]
async fn downloads_wait_while_the_bytes_in_flight_would_pass_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let inner = LocalStore::new(dir.path());
    inner.create_bucket(&bucket()).await.unwrap();
    // Eight files of ~10 KB.
    let mut size = 0;
    for f in 0..8 {
        let mut text = String::from("service_request_id,date_requested,service_name\n");
        for i in f * 1000..f * 1000 + 250 {
            text.push_str(&format!("{i},2019-01-05,Pothole number {i:08}\n"));
        }
        size = size.max(text.len() as u64);
        let key = ObjectKey::new(format!("2019/jan/part-{f}.csv")).unwrap();
        inner
            .put(
                &bucket(),
                &key,
                Bytes::from(text),
                &PutOptions::new("text/csv"),
            )
            .await
            .unwrap();
    }
    let store =
        InstrumentedStore::new(std::sync::Arc::new(inner)).with_latency(Duration::from_millis(40));
    let source = IngestSource {
        max_inflight_bytes: 25_000,
        ..source(rules())
    };
    let listing = list_inputs(&store, &source).await.unwrap();
    let table = ingest_month(&store, &source, month(), listing, &|_| {})
        .await
        .unwrap();
    assert_eq!(table.report.rows, 8 * 250, "every file read");
    // The bound, raised to one of the largest files per core (in KiB, as it is counted).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let bound_kib = 25_000u64.max(cores * size).div_ceil(1024);
    let fit = (bound_kib / size.div_ceil(1024)).min(8);
    let most = store
        .counts()
        .most_gets_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        most, fit,
        "as many ~10 KB files as fit the bound at once, not the 8 the concurrency allows"
    );
}
