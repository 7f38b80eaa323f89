//! gid's promises as production breaks them: several processes at once (an overlapping
//! CronJob, a backfill Job's pods, an operator's rerun) and SIGTERM from a scheduler.
//!
//! - an alert is never sent twice, and a run that finds another one sending it is told
//!   so, not told to resend (both backends);
//! - the site index lists every report however publishers interleave (both backends);
//! - SIGTERM stops a run within the deadline at a safe point: the request in flight
//!   completes, unsent alerts are released, no month is half-published, manifests say
//!   `interrupted`, and a rerun ends where an uninterrupted run ends.

use crate::support_aws;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gid_core::{BucketName, ObjectKey};
use gid_e2e::fault_proxy::{Fault, FaultProxy, ProxyRequest, Rule};
use gid_e2e::{
    assert_success, gid_command, moto_endpoint, moto_sns_endpoint, run_local, run_local_json,
    run_summary, stderr, stdout, summary_month, summary_stage,
};
use gid_storage::{list_all, LocalStore, ObjectStore, PutOptions};
use support_aws::{s3, snapshot, sns_messages, Target, World};

/// A gid binary on the local profile over `root`, started without waiting for it.
fn spawn_local(name: &str, root: &Path, args: &[&str]) -> Child {
    gid_command(name, "local")
        .args(args)
        .env("GID__LOCAL__DATA_ROOT", root)
        .env("GID__NOTIFY__OUTBOX_DIR", root.join("outbox"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts")
}

fn assert_ok_without_resend_advice(out: &Output) {
    assert_success(out);
    let err = stderr(out);
    assert!(
        !err.contains("resend") && !err.contains("in doubt"),
        "a run that met another one sending an alert is not told to resend: {err}"
    );
}

fn outbox_messages(root: &Path) -> Vec<String> {
    let dir = root.join("outbox/messages");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return vec![];
    };
    entries
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn concurrent_notify_runs_send_each_alert_once_on_the_local_backend() {
    const ROUNDS: usize = 12;
    const PROCESSES: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crate::fixtures::seed_default(root, "2019-01", "2019-01");
    assert_success(&run_local("gid-admin", root, &["subscribe"]));
    assert_success(&run_local(
        "monthly-report",
        root,
        &[
            "--month",
            "2019-01",
            "--stage",
            "ingest",
            "--stage",
            "aggregate",
        ],
    ));
    let ledger = root.join("gid-work/2019/jan/alerts.json");
    for round in 0..ROUNDS {
        let _ = std::fs::remove_file(&ledger);
        let _ = std::fs::remove_dir_all(root.join("outbox/messages"));
        let runs: Vec<Child> = (0..PROCESSES)
            .map(|_| {
                spawn_local(
                    "monthly-report",
                    root,
                    &["--month", "2019-01", "--stage", "notify"],
                )
            })
            .collect();
        for run in runs {
            assert_ok_without_resend_advice(&run.wait_with_output().unwrap());
        }
        let messages = outbox_messages(root);
        assert_eq!(
            messages.len(),
            2,
            "round {round}: one trash and one streets alert, whatever the interleaving: {messages:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_notify_runs_send_each_alert_once_on_sns() {
    const ROUNDS: usize = 6;
    let world = World::new(&["2019-01"]).await;
    let target = world.target().await;
    let (s3_endpoint, sns_endpoint) = (moto_endpoint(), moto_sns_endpoint());
    assert_success(&world.run(
        &target,
        &s3_endpoint,
        &sns_endpoint,
        &[
            "--month",
            "2019-01",
            "--stage",
            "ingest",
            "--stage",
            "aggregate",
        ],
    ));
    let store = s3().await;
    let work = BucketName::new(target.work.clone()).unwrap();
    let ledger = ObjectKey::new("2019/jan/alerts.json").unwrap();
    for round in 1..=ROUNDS {
        store.delete(&work, &ledger).await.unwrap();
        let runs: Vec<Child> = (0..2)
            .map(|_| {
                let mut command = gid_command("monthly-report", "aws");
                command
                    .args(["--config", target.config.to_str().unwrap()])
                    .args(["--month", "2019-01", "--stage", "notify"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                for (k, v) in world.env(&target, &s3_endpoint, &sns_endpoint) {
                    command.env(k, v);
                }
                command.spawn().unwrap()
            })
            .collect();
        for run in runs {
            assert_ok_without_resend_advice(&run.wait_with_output().unwrap());
        }
        for topic in [&target.trash, &target.streets] {
            assert_eq!(
                sns_messages(topic).len(),
                round,
                "round {round}: one alert per round on {topic}"
            );
        }
    }
}

/// Keys of the site (but the index) and whether the index lists each.
fn missing_from_index(listed: &[String], index: &str) -> Vec<String> {
    listed
        .iter()
        .filter(|k| !index.contains(&gid_publish::index_link_text(k)))
        .cloned()
        .collect()
}

const MONTHS: [&str; 12] = [
    "2019-01", "2019-02", "2019-03", "2019-04", "2019-05", "2019-06", "2019-07", "2019-08",
    "2019-09", "2019-10", "2019-11", "2019-12",
];

/// Four publishers of months new to the site at once, `rounds` times; after every round
/// the index lists every object of the site.
fn four_publishers_per_round(
    rounds: usize,
    unpublish: impl Fn(&str),
    spawn: impl Fn(&str) -> Child,
    site: impl Fn() -> (Vec<String>, String),
) {
    for round in 0..rounds {
        let months: Vec<&str> = (0..4)
            .map(|i| MONTHS[(round * 4 + i) % MONTHS.len()])
            .collect();
        // Their files are new again: a publisher listing before another's files land
        // would render an index without them.
        for month in &months {
            unpublish(month);
        }
        let runs: Vec<Child> = months.iter().map(|month| spawn(month)).collect();
        for run in runs {
            assert_success(&run.wait_with_output().unwrap());
        }
        let (listed, index) = site();
        assert!(listed.len() > 150, "{} objects", listed.len());
        let missing = missing_from_index(&listed, &index);
        assert!(
            missing.is_empty(),
            "round {round}: the index lost {missing:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_never_lose_a_report_from_the_local_index() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let spec = gid_sample::SampleSpec {
        files_per_month: 3,
        rows_per_file: 30,
        ..Default::default()
    };
    crate::fixtures::seed_blocking(root, "2019-01", "2019-12", &spec);
    assert_success(&run_local(
        "monthly-report",
        root,
        &["--from", "2019-01", "--to", "2019-12", "--jobs", "2"],
    ));
    let store = LocalStore::new(root);
    let reports = BucketName::new("gid-reports").unwrap();
    for i in 0..150 {
        let key = ObjectKey::new(format!("archive/2015/report-{i:03}.csv")).unwrap();
        let options = PutOptions::new("text/csv");
        store
            .put(&reports, &key, Bytes::from_static(b"a,b\n"), &options)
            .await
            .unwrap();
    }
    four_publishers_per_round(
        20,
        |month| {
            let folder = root.join("gid-reports").join(month_folder(month));
            std::fs::remove_dir_all(folder).unwrap();
        },
        |month| {
            spawn_local(
                "monthly-report",
                root,
                &["--month", month, "--stage", "publish", "--force"],
            )
        },
        || {
            let listed = walk(&root.join("gid-reports"));
            let index = std::fs::read_to_string(root.join("gid-reports/index.html")).unwrap();
            (listed, index)
        },
    );

    // An index that lost a month (written by an older gid, or by hand) is repaired by the
    // next plain run of that month, though nothing else changed.
    let index = root.join("gid-reports/index.html");
    std::fs::write(&index, "<html><body>stale</body></html>").unwrap();
    let (rerun, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_success(&rerun);
    assert_eq!(
        summary_stage(&doc, "2019-01", "publish")["status"],
        "skipped_unchanged"
    );
    let repaired = std::fs::read_to_string(&index).unwrap();
    let listed = walk(&root.join("gid-reports"));
    assert_eq!(missing_from_index(&listed, &repaired), Vec::<String>::new());
}

/// The site folder of a month (`2019-03` → `2019/mar/`).
fn month_folder(month: &str) -> String {
    let month: gid_core::Month = month.parse().unwrap();
    format!("{}/{}/", month.year(), month.abbreviation())
}

/// The keys under a bucket folder but the index.
fn walk(bucket: &Path) -> Vec<String> {
    fn visit(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                visit(base, &path, out);
            } else {
                let key = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                if key != "index.html" {
                    out.push(key);
                }
            }
        }
    }
    let mut out = Vec::new();
    visit(bucket, bucket, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_never_lose_a_report_from_the_s3_index() {
    let world = World::new(&MONTHS).await;
    let target = world.target().await;
    let (s3_endpoint, sns_endpoint) = (moto_endpoint(), moto_sns_endpoint());
    assert_success(&world.run(
        &target,
        &s3_endpoint,
        &sns_endpoint,
        &[
            "--from",
            "2019-01",
            "--to",
            "2019-12",
            "--jobs",
            "2",
            "--stage",
            "ingest,aggregate,publish",
        ],
    ));
    let store = s3().await;
    let reports = BucketName::new(target.reports.clone()).unwrap();
    for i in 0..150 {
        let key = ObjectKey::new(format!("archive/2015/report-{i:03}.csv")).unwrap();
        store
            .put(
                &reports,
                &key,
                Bytes::from_static(b"a,b\n"),
                &PutOptions::new("text/csv"),
            )
            .await
            .unwrap();
    }
    let publisher = |month: &str, s3_endpoint: &str| {
        let mut command = gid_command("monthly-report", "aws");
        command
            .args(["--config", target.config.to_str().unwrap()])
            .args(["--month", month, "--stage", "publish", "--force"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in world.env(&target, s3_endpoint, &sns_endpoint) {
            command.env(k, v);
        }
        // The held listing must not time out and be retried (fresh) by the SDK.
        command.env("GID__AWS__OPERATION_TIMEOUT_SECS", "120");
        command.spawn().unwrap()
    };
    for round in 0..20 {
        let months: Vec<&str> = (0..4)
            .map(|i| MONTHS[(round * 4 + i) % MONTHS.len()])
            .collect();
        for month in &months {
            let keys: Vec<ObjectKey> = list_all(&store, &reports, &month_folder(month))
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.key)
                .collect();
            store.delete_many(&reports, &keys).await.unwrap();
        }
        // The worst interleaving, every round: the first publisher's listing of the site is
        // answered only after the three others have published, so its index is rendered
        // from a listing that misses their months.
        let (listed_tx, listed) = std::sync::mpsc::channel::<()>();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let hold_listing = Fault::ForwardThenHook(Arc::new(move || {
            let _ = listed_tx.send(());
            let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
        }));
        let whole_site_listing = |r: &ProxyRequest| {
            r.method == "GET" && r.path.contains("list-type=2") && !r.path.contains("prefix=2")
        };
        let proxy = FaultProxy::start(&s3_endpoint, first(whole_site_listing, hold_listing));
        let slow = publisher(months[0], &proxy.endpoint);
        listed
            .recv_timeout(Duration::from_secs(60))
            .expect("the first publisher lists the site");
        let others: Vec<Child> = months[1..]
            .iter()
            .map(|month| publisher(month, &s3_endpoint))
            .collect();
        for run in others {
            assert_success(&run.wait_with_output().unwrap());
        }
        go.send(()).unwrap();
        assert_success(&slow.wait_with_output().unwrap());

        let listed: Vec<String> = list_all(&store, &reports, "")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key.to_string())
            .filter(|k| k != "index.html")
            .collect();
        let index = store
            .get(&reports, &ObjectKey::new("index.html").unwrap())
            .await
            .unwrap();
        let missing = missing_from_index(&listed, &String::from_utf8_lossy(&index.body));
        assert!(
            missing.is_empty(),
            "round {round}: the index lost {missing:?}"
        );
    }
}

/// Runs monthly-report for January on the aws profile through proxies whose rules may
/// send it SIGTERM at a chosen request; returns its output and how long it took.
fn run_signalled(
    world: &World,
    target: &Target,
    s3_rules: impl FnOnce(Fault) -> Vec<Rule>,
    sns_rules: impl FnOnce(Fault) -> Vec<Rule>,
) -> (Output, Duration) {
    let pid = Arc::new(AtomicU32::new(0));
    let terminate = {
        let pid = pid.clone();
        Fault::HookThenForward(Arc::new(move || {
            let pid = pid.load(Ordering::SeqCst);
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
            // Let the signal reach the process before the request it is waiting on
            // answers, so the run sees it at its very next safe point.
            std::thread::sleep(Duration::from_millis(300));
        }))
    };
    let s3 = FaultProxy::start(&moto_endpoint(), s3_rules(terminate.clone()));
    let sns = FaultProxy::start(&moto_sns_endpoint(), sns_rules(terminate));
    let mut command = gid_command("monthly-report", "aws");
    command
        .args(["--config", target.config.to_str().unwrap()])
        .args(["--month", "2019-01"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in world.env(target, &s3.endpoint, &sns.endpoint) {
        command.env(k, v);
    }
    let started = Instant::now();
    let child = command.spawn().unwrap();
    pid.store(child.id(), Ordering::SeqCst);
    let out = child.wait_with_output().unwrap();
    (out, started.elapsed())
}

fn first(
    matcher: impl Fn(&ProxyRequest) -> bool + Send + Sync + 'static,
    fault: Fault,
) -> Vec<Rule> {
    vec![Rule::new(matcher, fault).every(1, u64::MAX).limit(1)]
}

/// The stage's recorded state in its manifest.
async fn manifest_state(target: &Target, stage: &str) -> String {
    let store = s3().await;
    let work = BucketName::new(target.work.clone()).unwrap();
    let key = ObjectKey::new(format!("2019/jan/manifests/{stage}.json")).unwrap();
    let body = store.get(&work, &key).await.unwrap().body;
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    manifest["state"].as_str().unwrap().to_owned()
}

/// What a stopped run must show: the signal's exit code within the deadline, one log line
/// saying it stops, the stage's manifest `interrupted`.
#[allow(
    clippy::print_stderr,
    reason = "the measured stop time, for the person running the test"
)]
async fn assert_stopped(out: &Output, took: Duration, target: &Target, stage: &str) {
    assert_eq!(
        out.status.code(),
        Some(143),
        "SIGTERM exits 143:\n{}\n{}",
        stdout(out),
        stderr(out)
    );
    assert!(
        took < Duration::from_secs(20),
        "stopped within the deadline: {took:?}"
    );
    let err = stderr(out);
    let stop_lines = err.lines().filter(|l| l.contains("stopping:")).count();
    assert_eq!(stop_lines, 1, "{err}");
    assert!(err.contains("SIGTERM"), "{err}");
    assert_eq!(manifest_state(target, stage).await, "interrupted", "{err}");
    eprintln!("{stage}: stopped by SIGTERM, exit 143, {took:?} from start to exit");
}

/// The plain rerun of a stopped run succeeds with one alert per threshold.
fn assert_rerun_completes(world: &World, target: &Target) {
    let out = world.run(
        target,
        &moto_endpoint(),
        &moto_sns_endpoint(),
        &["--month", "2019-01"],
    );
    assert_success(&out);
    for topic in [&target.trash, &target.streets] {
        assert_eq!(sns_messages(topic).len(), 1, "one alert on {topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_runs_at_safe_points_and_reruns_end_as_uninterrupted_runs() {
    let world = World::new(&["2019-01"]).await;
    let expected = world.reference_snapshot(&["--month", "2019-01"]).await;

    // Inside notify, while the first alert is on the wire: it goes out and is recorded;
    // the second is not claimed.
    let target = world.target().await;
    let (out, took) = run_signalled(
        &world,
        &target,
        |_| vec![],
        |term| {
            first(
                |r: &ProxyRequest| r.body_text().contains("Action=Publish"),
                term,
            )
        },
    );
    assert_stopped(&out, took, &target, "notify").await;
    let sent: usize = [&target.trash, &target.streets]
        .iter()
        .map(|t| sns_messages(t).len())
        .sum();
    assert_eq!(
        sent, 1,
        "the alert in flight went out, the next one did not start"
    );
    assert_rerun_completes(&world, &target);
    assert_eq!(snapshot(&target).await, expected);

    // Between claiming the first alert and publishing it: the claim is released, so the
    // rerun sends it without anyone having to decide whether it went out.
    let target = world.target().await;
    let (out, took) = run_signalled(
        &world,
        &target,
        |term| {
            first(
                |r: &ProxyRequest| r.method == "PUT" && r.path.contains("/alerts.json"),
                term,
            )
        },
        |_| vec![],
    );
    assert_stopped(&out, took, &target, "notify").await;
    let store = s3().await;
    let ledger = store
        .get(
            &BucketName::new(target.work.clone()).unwrap(),
            &ObjectKey::new("2019/jan/alerts.json").unwrap(),
        )
        .await
        .unwrap();
    let ledger: serde_json::Value = serde_json::from_slice(&ledger.body).unwrap();
    assert_eq!(
        ledger["alerts"].as_array().unwrap().len(),
        0,
        "claim released: {ledger}"
    );
    assert_rerun_completes(&world, &target);

    // Mid-publish, after the month's first site file: the files it put are removed again
    // and the index never lists a half-published month.
    let target = world.target().await;
    let (out, took) = run_signalled(
        &world,
        &target,
        |term| {
            first(
                |r: &ProxyRequest| r.method == "PUT" && r.path.contains("/2019/jan/final_report"),
                term,
            )
        },
        |_| vec![],
    );
    assert_stopped(&out, took, &target, "publish").await;
    let reports = BucketName::new(target.reports.clone()).unwrap();
    let left: BTreeSet<String> = list_all(&store, &reports, "")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key.to_string())
        .collect();
    assert!(
        left.is_empty(),
        "nothing of the month stays on the site: {left:?}"
    );
    assert_rerun_completes(&world, &target);
    assert_eq!(snapshot(&target).await, expected);
}

#[test]
fn sigterm_during_ingest_stops_within_the_deadline_and_the_rerun_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert_success(&run_local(
        "gid-admin",
        root,
        &[
            "sample", "--month", "2019-01", "--files", "8", "--rows", "20000",
        ],
    ));
    let run = spawn_local(
        "monthly-report",
        root,
        &["--month", "2019-01", "--output", "json"],
    );
    let manifest = root.join("gid-work/2019/jan/manifests/ingest.json");
    let started = Instant::now();
    while !std::fs::read_to_string(&manifest).is_ok_and(|m| m.contains("\"running\"")) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ingest never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let signalled = Instant::now();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status();
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(signalled.elapsed() < Duration::from_secs(20));
    eprintln!("ingest: exit 143 {:?} after SIGTERM", signalled.elapsed());
    let doc = run_summary(&out);
    assert_eq!(doc["stopped_by"], "SIGTERM");
    assert_eq!(summary_month(&doc, "2019-01")["status"], "interrupted");
    let ingest = summary_stage(&doc, "2019-01", "ingest");
    assert_eq!(ingest["status"], "interrupted", "{ingest:#}");
    let recorded = std::fs::read_to_string(&manifest).unwrap();
    assert!(recorded.contains("\"interrupted\""), "{recorded}");
    assert!(!root.join("gid-reports/2019/jan/final_report.csv").exists());
    let runs = run_local("gid-admin", root, &["runs", "--month", "2019-01"]);
    assert!(stdout(&runs).contains("interrupted"), "{}", stdout(&runs));

    let (rerun, doc) = run_local_json("monthly-report", root, &["--month", "2019-01"]);
    assert_success(&rerun);
    assert_eq!(summary_stage(&doc, "2019-01", "ingest")["status"], "ran");
    assert!(root.join("gid-reports/2019/jan/final_report.csv").exists());
}

#[test]
fn a_full_disk_fails_the_run_naming_the_object_and_leaves_no_temp_file() {
    // A data root on a tmpfs (a mount namespace of its own, so nothing outside sees it),
    // filled up after the sample is written but for 64 KiB: manifests fit, the month's
    // table does not. The filler takes whatever the sample left, so the sample's size
    // does not matter.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let script = r#"
        set -u
        mount -t tmpfs -o size=64m tmpfs "$GID__LOCAL__DATA_ROOT" || exit 99
        "$ADMIN" --config-dir "$CFG" --profile local sample --month 2019-01 --files 3 --rows 4000 >/dev/null || exit 98
        dd if=/dev/zero of="$GID__LOCAL__DATA_ROOT/filler" bs=64k 2>/dev/null
        truncate -s -64K "$GID__LOCAL__DATA_ROOT/filler"
        "$REPORT" --config-dir "$CFG" --profile local --month 2019-01 >/dev/null
        echo "exit=$?" >&2
        echo "temp files:" $(ls -A "$GID__LOCAL__DATA_ROOT/.gid/tmp" | grep -v '\.owner$') >&2
        "$ADMIN" --config-dir "$CFG" --profile local runs --month 2019-01 >&2
    "#;
    let out = std::process::Command::new("unshare")
        .args(["--mount", "bash", "-c", script])
        .env("GID__LOCAL__DATA_ROOT", &root)
        .env("GID__NOTIFY__OUTBOX_DIR", dir.path().join("outbox"))
        .env("GID__NOTIFY__ALLOW_UNSUBSCRIBED", "true")
        .env("ADMIN", gid_e2e::bin("gid-admin"))
        .env("REPORT", gid_e2e::bin("monthly-report"))
        .env("CFG", gid_e2e::config_dir())
        .env_remove("RUST_LOG")
        // `make test` exports the sample photos; a photo per request would fill the small
        // disk before the run this test is about starts.
        .env_remove("GID_SAMPLE_IMAGES")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("exit=1"), "the run fails: {err}");
    assert!(
        err.contains("writing s3://gid-work/2019/jan/") && err.contains("No space left on device"),
        "the error names the object and why: {err}"
    );
    assert!(!err.contains(".gid/tmp"), "not the temp file: {err}");
    assert!(
        err.contains("temp files: \n") || err.lines().any(|l| l == "temp files:"),
        "{err}"
    );
    let ingest = err
        .lines()
        .find(|l| l.starts_with("2019-01") && l.contains("ingest"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        ingest.contains("failed"),
        "the failure is recorded: {ingest}"
    );
}
