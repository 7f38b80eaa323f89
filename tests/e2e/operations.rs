//! Reruns, backfills and crash recovery on the local backend: what schedulers, analysts
//! and backfilling engineers rely on; and the guards operators rely on (settings mistakes
//! caught at start, sample data that never replaces theirs).

use std::path::Path;
use std::time::{Duration, Instant};

use gid_e2e::{
    assert_success, bin, gid_command, run_local, run_local_json, run_with_env, stderr, stdout,
    summary_month, summary_stage,
};
use serde_json::Value;

fn sample(root: &Path, from: &str, to: &str, rows: usize) {
    let spec = gid_sample::SampleSpec {
        rows_per_file: rows,
        ..Default::default()
    };
    crate::fixtures::seed_blocking(root, from, to, &spec);
}

/// Each stage of a month in a run summary, with its status.
fn statuses(doc: &Value, month: &str) -> Vec<(String, String)> {
    summary_month(doc, month)["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let field = |name: &str| s[name].as_str().unwrap().to_owned();
            (field("stage"), field("status"))
        })
        .collect()
}

/// Every stage of the month has `status`.
fn all_stages(status: &str) -> Vec<(String, String)> {
    ["ingest", "aggregate", "publish", "notify"]
        .iter()
        .map(|stage| (stage.to_string(), status.to_owned()))
        .collect()
}

fn read(root: &Path, path: &str) -> Vec<u8> {
    std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn an_unchanged_rerun_skips_every_stage_and_force_reruns_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-01", 100);
    assert_success(&run_local("monthly-report", root, &["--month", "2019-01"]));
    let report = "gid-reports/2019/jan/final_report.csv";
    let modified = std::fs::metadata(root.join(report))
        .unwrap()
        .modified()
        .unwrap();

    let (again, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_success(&again);
    assert_eq!(statuses(&doc, "2019-01"), all_stages("skipped_unchanged"));
    for stage in ["ingest", "aggregate", "publish", "notify"] {
        let reason = &summary_stage(&doc, "2019-01", stage)["reason"];
        assert!(
            reason.as_str().unwrap().starts_with("unchanged since "),
            "{reason}"
        );
    }
    let after = std::fs::metadata(root.join(report))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, after, "a skipped publish rewrites nothing");

    let (forced, doc) = run_local_json("monthly-report", root, &["--month", "2019-01", "--force"]);
    assert_success(&forced);
    assert_eq!(statuses(&doc, "2019-01"), all_stages("ran"));
    assert_eq!(
        summary_stage(&doc, "2019-01", "ingest")["counts"]["rows"],
        399
    );
    let published = &summary_stage(&doc, "2019-01", "publish")["counts"]["objects_written"];
    // The month's five files and the trends' two.
    assert_eq!(published.as_array().unwrap().len(), 7, "{published}");
}

#[test]
fn changing_one_input_reruns_exactly_that_months_downstream_stages() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-02", 100);
    assert_success(&run_local(
        "monthly-report",
        root,
        &["--from", "2019-01", "--to", "2019-02"],
    ));
    let feb_report = read(root, "gid-reports/2019/feb/final_report.csv");

    let part = root.join("gid-requests/2019/jan/part-003.csv");
    let mut text = std::fs::read_to_string(&part).unwrap();
    text.push_str("201901999999,2019-01-31T23:59:00,1,Pothole,TSW,New,32.7,-117.1,3,Downtown,Web,added later,\n");
    std::fs::write(&part, text).unwrap();

    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--from", "2019-01", "--to", "2019-02"],
    );
    assert_success(&out);
    assert_eq!(statuses(&doc, "2019-01"), all_stages("ran"));
    let counts = |stage| summary_stage(&doc, "2019-01", stage)["counts"].clone();
    assert_eq!(counts("ingest")["rows"], 400);
    assert_eq!(counts("aggregate")["total_requests"], 400);
    assert_eq!(
        counts("publish")["objects_written"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(statuses(&doc, "2019-02"), all_stages("skipped_unchanged"));
    assert_eq!(
        read(root, "gid-reports/2019/feb/final_report.csv"),
        feb_report
    );

    let runs = stdout(&run_local(
        "gid-admin",
        root,
        &["runs", "--from", "2019-01", "--to", "2019-02"],
    ));
    assert!(
        runs.lines()
            .all(|l| l.ends_with("unchanged") || l.starts_with("month")),
        "{runs}"
    );
    std::fs::write(&part, "service_name\nPothole\n").unwrap();
    let runs = stdout(&run_local(
        "gid-admin",
        root,
        &["runs", "--month", "2019-01"],
    ));
    let ingest = runs.lines().find(|l| l.contains(" ingest ")).unwrap();
    assert!(
        ingest.contains("succeeded") && ingest.contains("changed since"),
        "{runs}"
    );
}

#[test]
fn a_backfill_with_a_corrupt_month_finishes_the_others_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-03", 50);
    // February's exports lost their service_name column: that month cannot be reported.
    for entry in std::fs::read_dir(root.join("gid-requests/2019/feb")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::write(
        root.join("gid-requests/2019/feb/broken.csv"),
        "status,date_requested\nNew,2019-02-01\n",
    )
    .unwrap();

    let (out, doc) = run_local_json("monthly-report", root, &["--all", "--jobs", "2"]);
    assert_eq!(out.status.code(), Some(1), "a failed month fails the run");
    for ok in ["2019-01", "2019-03"] {
        assert_eq!(statuses(&doc, ok), all_stages("ran"), "{doc:#}");
    }
    let feb = summary_month(&doc, "2019-02");
    assert_eq!(feb["status"], "failed");
    let error = "2019-02 ingest: none of the 1 objects under s3://gid-requests/2019/feb/ is an export (1 without the export's key columns)";
    assert!(feb["error"].as_str().unwrap().starts_with(error), "{feb:#}");
    assert_eq!(
        statuses(&doc, "2019-02"),
        [("ingest".to_owned(), "failed".to_owned())]
    );
    let err = stderr(&out);
    assert!(err.contains(&format!("gid: {error}")), "{err}");
    assert!(err.contains("1 of 3 months failed"), "{err}");
    let runs = stdout(&run_local(
        "gid-admin",
        root,
        &["runs", "--month", "2019-02"],
    ));
    assert!(
        runs.lines()
            .any(|l| l.contains("ingest") && l.contains("failed")),
        "{runs}"
    );
}

#[test]
fn month_index_picks_one_month_of_the_range_for_array_workers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-03", 20);
    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--from", "2019-01", "--to", "2019-03", "--month-index", "1"],
    );
    assert_success(&out);
    let months: Vec<&Value> = doc["months"].as_array().unwrap().iter().collect();
    assert_eq!(months.len(), 1, "{doc:#}");
    assert_eq!(months[0]["month"], "2019-02");
    assert_eq!(months[0]["status"], "ok");
    assert!(!root.join("gid-reports/2019/jan").exists());
    let out = run_local("monthly-report", root, &["--all", "--month-index", "3"]);
    assert_eq!(out.status.code(), Some(2), "nothing ran: a usage error");
    assert!(
        stderr(&out).contains("outside the 3 months"),
        "{}",
        stderr(&out)
    );
}

/// Every published month's outputs, for comparing runs.
const MONTH_FILES: [&str; 5] = [
    "final_report.csv",
    "final_report.html",
    "chart.html",
    "map.html",
    "summary.json",
];

fn site_snapshot(root: &Path, months: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for m in months {
        for f in MONTH_FILES {
            let path = format!("gid-reports/2019/{m}/{f}");
            files.push((path.clone(), read(root, &path)));
        }
    }
    // The trends too: a resumed backfill must not lose a month from them.
    for f in ["trends.csv", "trends.html"] {
        let path = format!("gid-reports/{f}");
        files.push((path.clone(), read(root, &path)));
    }
    files
}

#[test]
fn a_killed_backfill_resumes_to_the_same_site_as_an_uninterrupted_run() {
    const MONTHS: [&str; 8] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug"];
    let reference = tempfile::tempdir().unwrap();
    sample(reference.path(), "2019-01", "2019-08", 2000);
    assert_success(&run_local(
        "monthly-report",
        reference.path(),
        &["--from", "2019-01", "--to", "2019-08"],
    ));

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-08", 2000);
    let mut child = gid_command("monthly-report", "local")
        .args(["--from", "2019-01", "--to", "2019-08"])
        .env("GID__LOCAL__DATA_ROOT", root)
        .env("GID__NOTIFY__OUTBOX_DIR", root.join("outbox"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill -9 once the first month is fully published, mid-way through the backfill.
    let first_done = root.join("gid-work/2019/jan/manifests/publish.json");
    let started = Instant::now();
    while !first_done.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "first month never finished"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !root
            .join("gid-work/2019/aug/manifests/publish.json")
            .exists(),
        "the run was interrupted before its last month"
    );
    // Whatever index exists only references objects that exist.
    if let Ok(index) = std::fs::read_to_string(root.join("gid-reports/index.html")) {
        for link in index.split("href=\"./").skip(1) {
            let target = &link[..link.find('"').unwrap()];
            assert!(
                root.join("gid-reports").join(target).exists(),
                "index links missing {target}"
            );
        }
    }

    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--from", "2019-01", "--to", "2019-08", "--resume"],
    );
    assert_success(&out);
    // January's ingest finished before the kill: trusted, not re-checked.
    let ingest = summary_stage(&doc, "2019-01", "ingest");
    assert_eq!(ingest["status"], "skipped_resume", "{ingest:#}");
    assert!(ingest["reason"]
        .as_str()
        .unwrap()
        .contains("--resume does not re-check"));
    assert_eq!(
        site_snapshot(root, &MONTHS),
        site_snapshot(reference.path(), &MONTHS)
    );
    let index = std::fs::read_to_string(root.join("gid-reports/index.html")).unwrap();
    // The listing's rows (the header links the months' pages again, by their names).
    assert_eq!(index.matches("\">2019/").count(), MONTHS.len() * 5);
}

/// Runs `name` on the local backend of `root` with `env` added.
fn run_local_with(
    name: &str,
    root: &Path,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let outbox = root.join("outbox");
    let mut all = vec![
        ("GID__LOCAL__DATA_ROOT", root.to_str().unwrap()),
        ("GID__NOTIFY__OUTBOX_DIR", outbox.to_str().unwrap()),
    ];
    all.extend_from_slice(env);
    run_with_env(name, args, &all, "local")
}

#[test]
fn every_binary_prints_a_configuration_error_once_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("monthly-report", &["--month", "2019-01"][..]),
        ("scooter-pickups", &["--month", "2019-01"][..]),
        ("gid-admin", &["bucket", "list"][..]),
    ] {
        let out = run_local_with(
            name,
            dir.path(),
            &[("GID__INGEST__CONCURRENCY", "many")],
            args,
        );
        let said = stderr(&out);
        // gid-admin's errors all exit 1; the run binaries say 2: nothing ran.
        let code = if name == "gid-admin" { 1 } else { 2 };
        assert_eq!(out.status.code(), Some(code), "{name}: {said}");
        assert_eq!(
            said.matches("ingest.concurrency").count(),
            1,
            "{name}: {said}"
        );
        assert_eq!(said.matches("invalid type").count(), 1, "{name}: {said}");
    }

    let out = run_local_with(
        "monthly-report",
        dir.path(),
        &[("GID__BUCKET__REPORTS", "city-reports")],
        &["--month", "2019-01"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim_end(),
        "gid: environment variable GID__BUCKET__REPORTS sets unknown key bucket.reports: \
         did you mean GID__BUCKETS__REPORTS?"
    );
    assert!(
        !dir.path().join("gid-work").exists(),
        "nothing runs on a bad configuration"
    );
}

#[test]
fn a_named_config_dir_that_does_not_exist_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-config");
    for named in [vec!["--config-dir", missing.to_str().unwrap()], Vec::new()] {
        let out = std::process::Command::new(bin("gid-admin"))
            .args(&named)
            .args(["bucket", "list"])
            .env("GID_CONFIG_DIR", &missing)
            .env("GID__LOCAL__DATA_ROOT", dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        let said = stderr(&out);
        assert!(
            said.contains(&format!(
                "config directory {} does not exist",
                missing.display()
            )),
            "{said}"
        );
    }
}

#[test]
fn a_range_longer_than_fifty_years_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run_local(
        "monthly-report",
        dir.path(),
        &["--from", "0000-01", "--to", "9999-12"],
    );
    assert_eq!(out.status.code(), Some(2), "nothing ran: a usage error");
    let said = stderr(&out);
    assert!(said.contains("120000 months long"), "{said}");
    assert!(said.contains("use --all"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// An operator's own contacts list and January export, written by hand.
const OPERATORS_CONTACTS: &str =
    "Name,Department,Email,Phone\nReal Person,Trash,real@city.example,+16195550199\n";
const OPERATORS_EXPORT: &str = "service_request_id,service_name\n1,Pothole\n";

fn operators_data(root: &Path) {
    // Buckets made by gid, so the data root is one gid recognises; the files by hand.
    for bucket in ["gid-staging", "gid-requests"] {
        assert_success(&run_local("gid-admin", root, &["bucket", "create", bucket]));
    }
    std::fs::write(root.join("gid-staging/contacts.csv"), OPERATORS_CONTACTS).unwrap();
    std::fs::create_dir_all(root.join("gid-requests/2019/jan")).unwrap();
    std::fs::write(
        root.join("gid-requests/2019/jan/part-001.csv"),
        OPERATORS_EXPORT,
    )
    .unwrap();
}

fn text(root: &Path, path: &str) -> String {
    String::from_utf8(read(root, path)).unwrap()
}

#[test]
fn sample_refuses_to_overwrite_an_operators_contacts_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    operators_data(root);
    let out = run_local(
        "gid-admin",
        root,
        &[
            "sample", "--from", "2019-01", "--to", "2019-02", "--rows", "20",
        ],
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    let said = stderr(&out);
    for named in [
        "2 of its targets already exist",
        "s3://gid-staging/contacts.csv",
        "s3://gid-requests/2019/jan/part-001.csv",
        "--force overwrites them",
        "--if-missing leaves them",
    ] {
        assert!(said.contains(named), "{named}: {said}");
    }
    assert_eq!(text(root, "gid-staging/contacts.csv"), OPERATORS_CONTACTS);
    assert_eq!(
        text(root, "gid-requests/2019/jan/part-001.csv"),
        OPERATORS_EXPORT
    );
    assert!(
        !root.join("gid-requests/2019/feb").exists(),
        "nothing is written when anything exists"
    );
}

#[test]
fn sample_if_missing_writes_only_what_is_missing_and_force_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    operators_data(root);
    let photos = tempfile::tempdir().unwrap();
    std::fs::write(photos.path().join("scooter.png"), b"sample photo").unwrap();
    // An operator's photo where February's sample would put one.
    let feb = gid_sample::generate_month("2019-02".parse().unwrap(), &small_sample());
    let photo_key = feb
        .truth
        .images
        .iter()
        .find(|k| gid_sample::photo_for(k, 1).is_some())
        .expect("February's sample has a photo");
    let photo = root.join("gid-images").join(photo_key);
    std::fs::create_dir_all(photo.parent().unwrap()).unwrap();
    std::fs::write(&photo, b"operator's photo").unwrap();
    let images = ["--images", photos.path().to_str().unwrap()];

    let args = [
        "sample", "--from", "2019-01", "--to", "2019-02", "--rows", "20",
    ];
    let out = run_local(
        "gid-admin",
        root,
        &[&args[..], &["--if-missing"], &images].concat(),
    );
    assert_success(&out);
    let said = stdout(&out);
    assert!(
        said.contains("contacts: s3://gid-staging/contacts.csv already exists, left as it is"),
        "{said}"
    );
    assert!(said.contains("2019-01: 1 exports already under"), "{said}");
    assert!(said.contains("2019-02: 5 files"), "{said}");
    assert!(said.contains("1 already there left as they are"), "{said}");
    assert_eq!(text(root, "gid-staging/contacts.csv"), OPERATORS_CONTACTS);
    assert_eq!(
        text(root, "gid-requests/2019/jan/part-001.csv"),
        OPERATORS_EXPORT
    );
    assert!(!root.join("gid-requests/2019/jan/part-002.csv").exists());
    assert!(root.join("gid-requests/2019/feb/part-002.csv").exists());
    assert_eq!(std::fs::read(&photo).unwrap(), b"operator's photo");

    let again = run_local(
        "gid-admin",
        root,
        &[&args[..], &["--if-missing"], &images].concat(),
    );
    assert_success(&again);
    assert!(
        stdout(&again).contains("2019-02: 5 exports already under"),
        "{}",
        stdout(&again)
    );

    let out = run_local(
        "gid-admin",
        root,
        &[&args[..], &["--force"], &images].concat(),
    );
    assert_success(&out);
    let said = stdout(&out);
    assert!(
        said.contains("contacts: overwrote s3://gid-staging/contacts.csv"),
        "{said}"
    );
    assert!(said.contains("2019-01: 5 files (1 replaced)"), "{said}");
    assert_eq!(
        text(root, "gid-staging/contacts.csv"),
        gid_sample::CONTACTS_CSV
    );
    assert_ne!(
        text(root, "gid-requests/2019/jan/part-001.csv"),
        OPERATORS_EXPORT
    );
    assert_eq!(std::fs::read(&photo).unwrap(), b"sample photo");
}

fn small_sample() -> gid_sample::SampleSpec {
    gid_sample::SampleSpec {
        rows_per_file: 20,
        ..gid_sample::SampleSpec::default()
    }
}
