//! The run summary of `--output json` and the exit codes, on the local backend: what a
//! scheduler or a script reads instead of the human lines. Every document is checked
//! against docs/run-summary.schema.json (`gid_e2e::run_summary`).

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use gid_core::{BucketName, ObjectKey};
use gid_e2e::{
    assert_success, run_local, run_local_json, run_with_env, stderr, stdout, summary_month,
    summary_stage,
};
use gid_storage::{LocalStore, ObjectStore, PutOptions};
use serde_json::Value;

fn sample(root: &Path, from: &str, to: &str) {
    assert_success(&run_local(
        "gid-admin",
        root,
        &["sample", "--from", from, "--to", to],
    ));
}

fn truth() -> gid_sample::GroundTruth {
    gid_sample::generate_month(
        "2019-01".parse().unwrap(),
        &gid_sample::SampleSpec::default(),
    )
    .truth
}

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

fn list(value: &Value) -> &Vec<Value> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
}

#[tokio::test]
async fn a_local_run_prints_one_document_with_the_months_true_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-01");
    let truth = truth();

    let (_, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_eq!(doc["tool"], "monthly-report");
    assert_eq!(doc["profile"], "local");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["stopped_by"], Value::Null);
    assert_eq!(
        doc["requests"],
        serde_json::json!({}),
        "the local backend counts no requests"
    );
    let month = summary_month(&doc, "2019-01");
    assert_eq!(month["status"], "ok");
    let stages: Vec<(&str, &str)> = list(&month["stages"])
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [
            ("ingest", "ran"),
            ("aggregate", "ran"),
            ("publish", "ran"),
            ("notify", "ran")
        ]
    );

    let ingest = &summary_stage(&doc, "2019-01", "ingest")["counts"];
    assert_eq!(count(&ingest["rows"]), truth.total_rows as u64);
    assert_eq!(count(&ingest["quarantined"]), truth.dirty.len() as u64);
    let skipped: Vec<(&str, &str)> = list(&ingest["files_skipped"])
        .iter()
        .map(|f| (f["key"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, [("2019/jan/part-empty.csv", "empty")]);

    // Requests per service: the generator's own truth.
    let aggregate = &summary_stage(&doc, "2019-01", "aggregate")["counts"];
    let per_service: BTreeMap<String, u64> = list(&aggregate["requests_per_service"])
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_owned(),
                count(&s["count"]),
            )
        })
        .collect();
    assert_eq!(per_service, truth.service_counts);
    assert_eq!(count(&aggregate["total_requests"]), truth.total_rows as u64);

    // Objects written carry the ETags the store holds.
    let store = LocalStore::new(root);
    let publish = &summary_stage(&doc, "2019-01", "publish")["counts"];
    let written = list(&publish["objects_written"]);
    assert_eq!(written.len(), 3, "{publish:#}");
    for object in written {
        let bucket = BucketName::new(object["bucket"].as_str().unwrap()).unwrap();
        let key = ObjectKey::new(object["key"].as_str().unwrap()).unwrap();
        let head = store.head(&bucket, &key).await.unwrap();
        assert_eq!(object["etag"], head.etag.as_str(), "{key}");
        assert_eq!(count(&object["size"]), head.size, "{key}");
    }

    let notify = &summary_stage(&doc, "2019-01", "notify")["counts"];
    let sent: Vec<&str> = list(&notify["sent"])
        .iter()
        .map(|a| a["topic"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["trash", "streets"]);
    assert!(list(&notify["in_doubt"]).is_empty());
}

#[test]
fn the_text_summary_line_says_what_the_document_says() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-01");
    let (_, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    let out = run_local("monthly-report", root, &["--month", "2019-01", "--force"]);
    assert_success(&out);
    let said = stdout(&out);
    let counts = |stage: &str| summary_stage(&doc, "2019-01", stage)["counts"].clone();
    let (ingest, aggregate, publish, notify) = (
        counts("ingest"),
        counts("aggregate"),
        counts("publish"),
        counts("notify"),
    );
    // --force sends the month's alerts again.
    let sent: Vec<&str> = list(&notify["sent"])
        .iter()
        .map(|a| a["topic"].as_str().unwrap())
        .collect();
    let expected = format!(
        "2019-01 ok · files {files} (1 ignored: 1 empty) ({mb:.1} MB), rows {rows}, quarantined {q} · \
         services {services}, requests {requests} · published {published} objects, index lists {index} · \
         alerts sent {sent_count} ({sent}), already sent 0, thresholds 2 · ",
        files = count(&ingest["files"]),
        mb = count(&ingest["bytes"]) as f64 / 1e6,
        rows = count(&ingest["rows"]),
        q = count(&ingest["quarantined"]),
        services = count(&aggregate["services"]),
        requests = count(&aggregate["total_requests"]),
        published = list(&publish["objects_written"]).len(),
        index = count(&publish["index_entries"]),
        sent_count = sent.len(),
        sent = sent.join(", "),
    );
    let line = said.lines().next().unwrap();
    assert!(
        line.starts_with(&expected) && line.ends_with('s'),
        "expected {expected}…s, got\n{said}"
    );
    let site = said.lines().last().unwrap();
    assert!(
        site.starts_with("site: ") && site.ends_with("gid-reports/index.html"),
        "{said}"
    );
}

#[test]
fn a_failed_stage_is_listed_after_the_stages_that_ran_and_the_run_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-01");
    // Nobody subscribed and unsubscribed topics refused: notify fails, the site is up.
    let outbox = root.join("outbox");
    let out = run_with_env(
        "monthly-report",
        &["--month", "2019-01", "--output", "json"],
        &[
            ("GID__LOCAL__DATA_ROOT", root.to_str().unwrap()),
            ("GID__NOTIFY__OUTBOX_DIR", outbox.to_str().unwrap()),
            ("GID__NOTIFY__ALLOW_UNSUBSCRIBED", "false"),
        ],
        "local",
    );
    let doc = gid_e2e::run_summary(&out);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let month = summary_month(&doc, "2019-01");
    assert_eq!(month["status"], "failed");
    let error = month["error"].as_str().unwrap();
    assert!(
        error.starts_with("2019-01 notify: 2 alert(s) not sent"),
        "{error}"
    );
    assert!(
        stderr(&out).contains(&format!("gid: {error}")),
        "the failure is on stderr too: {}",
        stderr(&out)
    );
    let stages: Vec<(&str, &str)> = list(&month["stages"])
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stages,
        [
            ("ingest", "ran"),
            ("aggregate", "ran"),
            ("publish", "ran"),
            ("notify", "failed")
        ]
    );
    let notify = summary_stage(&doc, "2019-01", "notify");
    assert!(notify["reason"]
        .as_str()
        .unwrap()
        .contains("has no confirmed subscription"));
    let not_sent: Vec<&str> = list(&notify["counts"]["not_sent"])
        .iter()
        .map(|a| a["topic"].as_str().unwrap())
        .collect();
    assert_eq!(not_sent, ["trash", "streets"]);
}

/// Runs `name` on the local profile of `root` with `env` added, `--output json` and `args`.
fn run_json_with(
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
    let args: Vec<&str> = args.iter().copied().chain(["--output", "json"]).collect();
    run_with_env(name, &args, &all, "local")
}

#[test]
fn errors_before_any_month_runs_exit_2_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // A folder of someone else's files is no data root.
    let foreign = dir.path().join("home");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let cases: [(&str, &[(&str, &str)], &[&str], &str); 6] = [
        (
            "a configuration error",
            &[("GID__INGEST__CONCURRENCY", "many")],
            &["--month", "2019-01"],
            "ingest.concurrency",
        ),
        (
            "a range that ends before it starts",
            &[],
            &["--from", "2019-03", "--to", "2019-01"],
            "2019-03",
        ),
        (
            "a month index outside the range",
            &[],
            &["--from", "2019-01", "--to", "2019-03", "--month-index", "3"],
            "outside the 3 months",
        ),
        (
            "a data root that is not gid's",
            &[("GID__LOCAL__DATA_ROOT", foreign.to_str().unwrap())],
            &["--month", "2019-01"],
            "is not a gid data root",
        ),
        ("no month named", &[], &[], "say which months to run"),
        (
            "a month that does not exist (clap)",
            &[],
            &["--month", "2019-13"],
            "2019-13",
        ),
    ];
    for name in ["monthly-report", "scooter-pickups"] {
        for (case, env, args, said) in cases {
            let out = run_json_with(name, &root, env, args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{name}, {case}: {}",
                stderr(&out)
            );
            assert_eq!(
                stdout(&out),
                "",
                "{name}, {case}: no document when nothing ran"
            );
            assert!(
                stderr(&out).contains(said),
                "{name}, {case}: {}",
                stderr(&out)
            );
        }
    }
    assert!(!root.join("gid-work").exists(), "nothing ran");
}

/// A ledger in which a run on another host claimed January's trash alert and died: its
/// lease ran out a minute ago, so nobody can tell whether the alert went out.
async fn trash_alert_claimed_by_a_dead_run(root: &Path) {
    let claimed_at = "2019-02-02T06:00:00Z";
    let ledger = serde_json::json!({
        "alerts": [{
            "month": "2019-01",
            "service_name": "Illegal Dumping",
            "above": 100,
            "topic": "trash",
            "label": "Trash violations",
            "count": 123,
            "state": "claimed",
            "claimed_at": claimed_at,
            "message_id": null,
            "sent_at": null,
            "times_sent": 0,
            "claimed_by": {
                "run_id": "dead-run",
                "host": "gid-cron-7x2k",
                "pid": 4242,
                "started_at": claimed_at
            },
            "lease_until": "2019-02-02T06:01:00Z"
        }]
    });
    let store = LocalStore::new(root);
    let work = BucketName::new("gid-work").unwrap();
    store.create_bucket(&work).await.unwrap();
    store
        .put(
            &work,
            &ObjectKey::new("2019/jan/alerts.json").unwrap(),
            Bytes::from(ledger.to_string()),
            &PutOptions::new("application/json"),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_alert_left_in_doubt_exits_3_even_when_another_month_failed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    sample(root, "2019-01", "2019-01");
    trash_alert_claimed_by_a_dead_run(root).await;

    // December has no exports (exit 1 alone); January's alert in doubt needs an operator,
    // whose rerun retries December too: 3 wins.
    let (out, doc) = run_local_json(
        "monthly-report",
        root,
        &["--from", "2018-12", "--to", "2019-01"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(summary_month(&doc, "2018-12")["status"], "failed");
    assert_eq!(summary_month(&doc, "2019-01")["status"], "failed");
    let notify = summary_stage(&doc, "2019-01", "notify");
    assert_eq!(notify["status"], "failed");
    let counts = &notify["counts"];
    let in_doubt = list(&counts["in_doubt"]);
    assert_eq!(in_doubt.len(), 1, "{counts:#}");
    assert_eq!(in_doubt[0]["topic"], "trash");
    assert_eq!(in_doubt[0]["claimed_by"]["run_id"], "dead-run");
    assert_eq!(in_doubt[0]["claimed_by"]["host"], "gid-cron-7x2k");
    let sent: Vec<&str> = list(&counts["sent"])
        .iter()
        .map(|a| a["topic"].as_str().unwrap())
        .collect();
    assert_eq!(sent, ["streets"], "the other alert went out");

    // A plain rerun cannot settle it: still 3.
    let (again, _) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));

    // The operator saw it on the topic: confirmed, the month is settled.
    let (settled, doc) = run_local_json(
        "monthly-report",
        root,
        &[
            "--month",
            "2019-01",
            "--stage",
            "notify",
            "--confirm-in-doubt",
        ],
    );
    assert_eq!(settled.status.code(), Some(0), "{}", stderr(&settled));
    let counts = &summary_stage(&doc, "2019-01", "notify")["counts"];
    assert!(list(&counts["in_doubt"]).is_empty());
    let already: Vec<&str> = list(&counts["already_sent"])
        .iter()
        .map(|a| a["topic"].as_str().unwrap())
        .collect();
    assert_eq!(already, ["trash", "streets"]);
}
