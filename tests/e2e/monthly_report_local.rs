//! monthly-report end to end on the local backend, checked against the sample
//! generator's own ground truth.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use gid_core::{Acl, BucketName, Month, ObjectKey};
use gid_e2e::{
    assert_success, run_local, run_local_json, run_with_env, stderr, stdout, summary_month,
    summary_stage,
};
use gid_sample::{generate_month, DirtyKind, SampleSpec};
use gid_storage::{list_all, BucketAdmin, LocalStore, ObjectAcls, ObjectStore, PutOptions};

fn bucket(name: &str) -> BucketName {
    BucketName::new(name).unwrap()
}

fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).unwrap()
}

async fn text(store: &LocalStore, b: &str, k: &str) -> String {
    let object = store.get(&bucket(b), &key(k)).await.unwrap();
    String::from_utf8(object.body.to_vec()).unwrap()
}

fn parse_report(csv: &str) -> BTreeMap<String, u64> {
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(&r[0], "2019-01");
            (r[1].to_owned(), r[2].parse().unwrap())
        })
        .collect()
}

async fn seed(root: &Path) -> LocalStore {
    crate::fixtures::seed(root, "2019-01", "2019-01", &Default::default()).await;
    LocalStore::new(root)
}

#[tokio::test]
async fn monthly_report_matches_ground_truth_and_publishes_a_complete_site() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = seed(root).await;
    let truth = generate_month(Month::new(2019, 1).unwrap(), &SampleSpec::default()).truth;

    // A hostile service name, and more site objects than one listing page holds.
    let hostile = "service_request_id,service_name,date_requested,public_description\n\
                   h1,\"<script>alert('gid')</script>\",2019-01-09T10:00:00,\"<img src=x onerror=alert(1)>\"\n";
    store
        .put(
            &bucket("gid-requests"),
            &key("2019/jan/zz-hostile.csv"),
            Bytes::from(hostile),
            &PutOptions::new("text/csv"),
        )
        .await
        .unwrap();
    store.create_bucket(&bucket("gid-reports")).await.unwrap();
    for i in 0..1100 {
        store
            .put(
                &bucket("gid-reports"),
                &key(&format!("archive/old-{i:04}.txt")),
                Bytes::from_static(b"x"),
                &PutOptions::new("text/plain"),
            )
            .await
            .unwrap();
    }

    let (out, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_success(&out);
    assert_eq!(summary_month(&doc, "2019-01")["status"], "ok");
    assert_eq!(
        summary_stage(&doc, "2019-01", "ingest")["counts"]["quarantined"],
        truth.dirty.len()
    );

    // Per-service counts equal the generator's truth (plus the one hostile row).
    let report = parse_report(&text(&store, "gid-reports", "2019/jan/final_report.csv").await);
    let mut expected = truth.service_counts.clone();
    expected.insert("<script>alert('gid')</script>".into(), 1);
    assert_eq!(report, expected);

    // Every dirty row is in the quarantine with its line and reason.
    let quarantine = text(
        &store,
        "gid-work",
        "quarantine/2019/jan/part-004.csv.quarantine.csv",
    )
    .await;
    for row in &truth.dirty {
        let reason = match row.kind {
            DirtyKind::TooManyFields => "fields, expected 13",
            DirtyKind::TooFewFields => "5 fields, expected 13",
            DirtyKind::BadDate => "unparseable date_requested",
        };
        let line = format!("2019/jan/{},{},", row.file, row.line);
        let found = quarantine
            .lines()
            .any(|l| l.starts_with(&line) && l.contains(reason));
        assert!(found, "missing {line} {reason} in\n{quarantine}");
    }
    // Content types; no ACLs (publish.access = bucket-policy: a bucket policy grants reads).
    let reports = bucket("gid-reports");
    for (k, ct) in [
        ("2019/jan/final_report.csv", "text/csv"),
        ("2019/jan/final_report.html", "text/html"),
        ("2019/jan/chart.html", "text/html"),
        ("index.html", "text/html"),
    ] {
        let meta = store.head(&reports, &key(k)).await.unwrap();
        assert!(
            meta.content_type.as_deref().unwrap().starts_with(ct),
            "{k}: {meta:?}"
        );
        assert_eq!(
            store.get_acl(&reports, &key(k)).await.unwrap(),
            Acl::Private,
            "{k}"
        );
    }

    // The index lists every object, across listing pages, with relative links.
    let index = text(&store, "gid-reports", "index.html").await;
    let objects = list_all(&store, &reports, "").await.unwrap();
    // 1100 archived files, the index, the month's five files and the trends' two.
    assert_eq!(objects.len(), 1108);
    for o in objects.iter().filter(|o| o.key.as_str() != "index.html") {
        assert!(
            index.contains(&format!("href=\"./{}\"", o.key)),
            "index misses {}",
            o.key
        );
    }

    // User text is escaped on every page.
    for page in ["2019/jan/final_report.html", "2019/jan/chart.html"] {
        let html = text(&store, "gid-reports", page).await;
        assert!(!html.contains("<script>alert"), "{page} has a live script");
        assert!(
            html.contains("&lt;script&gt;alert('gid')&lt;/script&gt;"),
            "{page}"
        );
    }
}

#[tokio::test]
async fn publish_reruns_alone_from_the_persisted_summary() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = seed(root).await;
    assert_success(&run_local("monthly-report", root, &["--month", "2019-01"]));
    let before = text(&store, "gid-reports", "2019/jan/final_report.csv").await;

    let reports = bucket("gid-reports");
    store
        .delete(&reports, &key("2019/jan/final_report.csv"))
        .await
        .unwrap();
    // Changing the exports must not matter: publish reads aggregate's persisted output.
    store
        .delete(&bucket("gid-requests"), &key("2019/jan/part-001.csv"))
        .await
        .unwrap();
    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--month", "2019-01", "--stage", "publish"],
    );
    assert_success(&out);
    let stages = summary_month(&doc, "2019-01")["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 1, "ingest must not run: {doc:#}");
    assert_eq!(stages[0]["stage"], "publish");
    assert_eq!(stages[0]["status"], "ran");
    assert_eq!(
        text(&store, "gid-reports", "2019/jan/final_report.csv").await,
        before
    );

    // A private site (publish.access = presign) says when its links stop working.
    let outbox = root.join("outbox");
    let presigned = run_with_env(
        "monthly-report",
        &["--month", "2019-01", "--stage", "publish", "--force"],
        &[
            ("GID__LOCAL__DATA_ROOT", root.to_str().unwrap()),
            ("GID__NOTIFY__OUTBOX_DIR", outbox.to_str().unwrap()),
            ("GID__PUBLISH__ACCESS", "presign"),
        ],
        "local",
    );
    assert_success(&presigned);
    let said = stdout(&presigned);
    assert!(
        said.contains("presigned links valid until") && said.contains("site: file://"),
        "{said}"
    );
}

#[tokio::test]
async fn dry_run_writes_nothing_and_says_what_it_would_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = seed(root).await;
    let (out, doc) = run_local_json("monthly-report", root, &["--month", "2019-01", "--dry-run"]);
    assert_success(&out);
    assert_eq!(doc["dry_run"], true);
    let planned = |stage: &str, what: &str| -> Vec<String> {
        let stage = summary_stage(&doc, "2019-01", stage);
        assert_eq!(stage["status"], "planned", "{stage:#}");
        stage["planned"][what]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        planned("ingest", "reads")
            .iter()
            .any(|r| r.starts_with("s3://gid-requests/2019/jan/part-001.csv (")),
        "{doc:#}"
    );
    assert!(
        planned("publish", "writes")
            .iter()
            .any(|w| w.starts_with("s3://gid-reports/index.html")),
        "{doc:#}"
    );
    let buckets: Vec<String> = store
        .list_buckets()
        .await
        .unwrap()
        .iter()
        .map(|b| b.name.to_string())
        .collect();
    for written in ["gid-work", "gid-reports"] {
        assert!(
            !buckets.iter().any(|b| b == written),
            "{written} was created: {buckets:?}"
        );
    }
    assert!(!root.join("outbox").exists(), "no alert was sent");
}

#[tokio::test]
async fn a_month_without_input_fails_alone_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    seed(root).await;
    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--from", "2018-12", "--to", "2019-01"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed month makes the run fail"
    );
    let error = "2018-12 ingest: no input under s3://gid-requests/2018/dec/";
    let dec = summary_month(&doc, "2018-12");
    assert!(dec["error"].as_str().unwrap().starts_with(error), "{dec:#}");
    assert!(stderr(&out).contains(error), "{}", stderr(&out));
    assert_eq!(
        summary_month(&doc, "2019-01")["status"],
        "ok",
        "the other month still runs"
    );
}

#[tokio::test]
async fn publish_without_a_summary_says_which_stage_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    seed(root).await;
    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--month", "2019-01", "--stage", "publish"],
    );
    assert_eq!(out.status.code(), Some(1));
    let publish = summary_stage(&doc, "2019-01", "publish");
    assert_eq!(publish["status"], "failed");
    let reason = publish["reason"].as_str().unwrap();
    assert!(reason.contains("run --stage aggregate first"), "{reason}");
    assert!(stderr(&out).contains(reason), "{}", stderr(&out));
}

#[tokio::test]
async fn the_log_names_a_few_refused_rows_per_file_and_counts_the_rest() {
    // A backfill over dirty years must not bury every other message under one log line per
    // bad row; the quarantine file still holds every one.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let store = LocalStore::new(root);
    store.create_bucket(&bucket("gid-requests")).await.unwrap();
    let mut csv = String::from("service_request_id,service_name,date_requested\n");
    for day in 1..=20 {
        csv.push_str(&format!("{day},Pothole,2019-01-{day:02}T08:00:00\n"));
        if day <= 12 {
            csv.push_str("x,Pothole,2019-01-01T08:00:00,extra field\n");
        }
    }
    store
        .put(
            &bucket("gid-requests"),
            &key("2019/jan/dirty.csv"),
            Bytes::from(csv),
            &PutOptions::new("text/csv"),
        )
        .await
        .unwrap();
    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--month", "2019-01", "--stage", "ingest"],
    );
    assert_success(&out);
    let counts = &summary_stage(&doc, "2019-01", "ingest")["counts"];
    assert_eq!(
        (&counts["rows"], &counts["quarantined"]),
        (&20.into(), &12.into())
    );
    let log = stderr(&out);
    let named = log
        .lines()
        .filter(|l| l.contains("→ row quarantined"))
        .count();
    assert_eq!(named, 5, "{log}");
    assert!(
        log.contains("2019/jan/dirty.csv: 7 more rows quarantined"),
        "{log}"
    );
    let quarantine = text(
        &store,
        "gid-work",
        "quarantine/2019/jan/dirty.csv.quarantine.csv",
    )
    .await;
    assert_eq!(quarantine.lines().count(), 1 + 12, "{quarantine}");
}
