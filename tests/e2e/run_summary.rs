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
use gid_storage::{BucketAdmin, LocalStore, ObjectStore, PutOptions};
use serde_json::Value;

fn sample(root: &Path, from: &str, to: &str) {
    crate::fixtures::seed_default(root, from, to);
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
    assert_eq!(
        stage_statuses(month),
        [
            ("ingest", "ran"),
            ("aggregate", "ran"),
            ("publish", "ran"),
            ("notify", "ran")
        ]
    );

    let ingest = &summary_stage(&doc, "2019-01", "ingest")["counts"];
    assert_eq!(count(&ingest["rows"]), truth.total_rows);
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
    assert_eq!(count(&aggregate["total_requests"]), truth.total_rows);

    // Objects written carry the ETags the store holds.
    let store = LocalStore::new(root);
    let publish = &summary_stage(&doc, "2019-01", "publish")["counts"];
    let written = list(&publish["objects_written"]);
    assert_eq!(written.len(), 7, "{publish:#}");
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
    assert_eq!(
        stage_statuses(month),
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

/// What is wrong, the environment and arguments that say it, and what stderr must name.
type SetupErrorCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], &'a str);

#[test]
fn errors_before_any_month_runs_exit_2_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    // A folder of someone else's files is no data root.
    let foreign = dir.path().join("home");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "mine").unwrap();
    let cases: [SetupErrorCase; 6] = [
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

#[test]
fn a_service_out_of_reach_before_any_month_exits_1_to_be_retried() {
    // Nothing listens on port 9: listing the requests bucket for --all fails to connect.
    let out = run_with_env(
        "monthly-report",
        &["--all", "--output", "json"],
        &[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_ACCESS_KEY_ID", "gid-test-key"),
            ("AWS_SECRET_ACCESS_KEY", "gid-test-secret"),
            ("AWS_REGION", "us-east-1"),
            ("GID__AWS__MAX_ATTEMPTS", "2"),
        ],
        "aws",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "no document when no month ran");
    assert!(
        stderr(&out).contains("discovering months from the requests bucket"),
        "{}",
        stderr(&out)
    );
}

/// Every outcome a run can report, as the binaries' runs rarely produce them all (an
/// alert another run is sending, ACLs refused, a scooter dry run on AWS prices): the
/// documents built from them must match the schema.
mod every_shape {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use gid_core::RequestStats;
    use gid_core::{Month, OutOfMonth, Profile, RunOwner};
    use gid_enrich::pickups::EnrichPlan;
    use gid_enrich::EnrichError;
    use gid_ingest::{DuplicateCopies, IngestTally, SkipReason};
    use gid_notify::{AlertOutcome, AlertResult, MessageId, Threshold, TopicArn, TopicName};
    use gid_runs::manifest::ObjectRef;
    use gid_runs::report::{MonthReport, RunClock, Tool};
    use gid_runs::{
        Aggregated, EnrichPlanned, Enriched, Ingested, MonthOutcome, Notified, Published, RunError,
        SkipKind, Stage, StageError, StageOutcome, StopReason,
    };

    fn jan() -> Month {
        "2019-01".parse().unwrap()
    }

    fn object(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            etag: "9b2cf535f27731c974343645a3985328".into(),
            size: 1234,
        }
    }

    fn alert(topic: &str, result: AlertResult) -> AlertOutcome {
        AlertOutcome {
            threshold: Threshold::new(
                "Illegal Dumping",
                100,
                TopicName::new(topic).unwrap(),
                "Trash violations",
            )
            .unwrap(),
            count: 123,
            result,
        }
    }

    fn every_alert_result() -> Vec<AlertOutcome> {
        let now = RunOwner::current().started_at;
        let arn = TopicArn::new("arn:aws:sns:us-east-1:123456789012:trash").unwrap();
        vec![
            alert("below", AlertResult::Below),
            alert(
                "sent",
                AlertResult::Sent {
                    topic: arn.clone(),
                    message_id: MessageId::new("m-1"),
                },
            ),
            alert(
                "already",
                AlertResult::AlreadySent {
                    message_id: Some(MessageId::new("m-0")),
                    sent_at: Some(now),
                },
            ),
            alert(
                "confirmed",
                AlertResult::AlreadySent {
                    message_id: None,
                    sent_at: None,
                },
            ),
            alert(
                "elsewhere",
                AlertResult::ClaimedElsewhere {
                    owner: RunOwner::current().clone(),
                    claimed_at: now,
                },
            ),
            alert(
                "doubt",
                AlertResult::InDoubt {
                    claimed_at: now,
                    owner: Some(RunOwner::current().clone()),
                },
            ),
            alert(
                "doubt-old-ledger",
                AlertResult::InDoubt {
                    claimed_at: now,
                    owner: None,
                },
            ),
            alert("nobody", AlertResult::NoSubscribers { topic: arn }),
            alert("stopped", AlertResult::Stopped),
            alert(
                "failed",
                AlertResult::Failed {
                    reason: "SNS said no".into(),
                },
            ),
        ]
    }

    fn every_stage_outcome() -> Vec<StageOutcome> {
        let skipped = [
            SkipReason::Empty,
            SkipReason::NotAnExport {
                suffix: ".csv".into(),
            },
            SkipReason::NotText,
            SkipReason::TooManyColumns {
                columns: 2000,
                max: 1000,
            },
            SkipReason::MissingColumns {
                missing: vec!["service_name".into()],
                header: "name, email".into(),
            },
            SkipReason::UnreadableHeader {
                message: "quote never closes".into(),
            },
        ];
        let tally = IngestTally {
            files: 8,
            bytes: 2_000_000,
            rows: 1197,
            quarantined: 3,
            skipped: vec![("empty", 1)],
            duplicates_dropped: 300,
            duplicates: vec![DuplicateCopies {
                file: "2019/jan/backup/part-001.csv".into(),
                kept_from: "2019/jan/part-001.csv".into(),
                rows: 300,
            }],
            out_of_month: 2,
            out_of_month_policy: OutOfMonth::Quarantine,
            month: "2019-01".into(),
        };
        vec![
            StageOutcome::Ingested(Box::new(Ingested {
                tally,
                skipped_files: skipped
                    .into_iter()
                    .enumerate()
                    .map(|(i, r)| (format!("2019/jan/foreign-{i}.csv"), r))
                    .collect(),
                written: vec![object("gid-work", "2019/jan/requests.parquet")],
            })),
            StageOutcome::Aggregated(Aggregated {
                total_requests: 1197,
                per_service: vec![gid_aggregate::GroupCount {
                    name: "Pothole".into(),
                    request_count: 1197,
                }],
                written: vec![object("gid-work", "2019/jan/summary.json")],
            }),
            StageOutcome::Published(Published {
                objects: vec![object("gid-reports", "2019/jan/final_report.csv")],
                index_entries: 4,
                links_expire_at: Some(chrono::Utc::now()),
                site_translations: Some(gid_runs::SiteTranslations {
                    engine_calls: 2,
                    texts_sent: 60,
                    cache_hits: 0,
                }),
            }),
            StageOutcome::Notified(Notified {
                outcomes: every_alert_result(),
            }),
        ]
    }

    fn month(stages: Vec<StageOutcome>, failure: Option<(Stage, StageError)>) -> MonthOutcome {
        MonthOutcome {
            month: jan(),
            stages,
            failure: failure.map(|(stage, source)| RunError {
                month: jan(),
                stage,
                source,
            }),
            elapsed: Duration::from_millis(1234),
        }
    }

    fn requests() -> BTreeMap<String, gid_runs::report::RequestCounts> {
        let stats = RequestStats {
            operations: 10,
            attempts: 12,
            throttled: 1,
            server_errors: 1,
        };
        ["s3", "sns", "comprehend"]
            .into_iter()
            .map(|s| (s.to_owned(), stats.into()))
            .collect()
    }

    #[test]
    fn every_shape_of_a_monthly_report_document_matches_the_schema() {
        let months = [
            month(every_stage_outcome(), None),
            month(
                vec![
                    StageOutcome::Skipped {
                        stage: Stage::Ingest,
                        kind: SkipKind::Resume,
                        reason: "succeeded before".into(),
                    },
                    StageOutcome::Skipped {
                        stage: Stage::Aggregate,
                        kind: SkipKind::Unchanged,
                        reason: "unchanged since 2019-02-02 06:00:00 UTC".into(),
                    },
                    StageOutcome::Planned {
                        stage: Stage::Publish,
                        reads: vec!["s3://gid-work/2019/jan/summary.json".into()],
                        writes: vec!["s3://gid-reports/index.html (regenerated last)".into()],
                    },
                ],
                Some((
                    Stage::Notify,
                    StageError::AlertsNotSent {
                        count: 5,
                        details: "five".into(),
                        outcomes: every_alert_result(),
                    },
                )),
            ),
            month(
                vec![],
                Some((
                    Stage::Ingest,
                    StageError::Interrupted {
                        reason: StopReason::Terminate,
                    },
                )),
            ),
        ];
        let mut summary = RunClock::start(Tool::MonthlyReport).finish(
            Profile::Aws,
            false,
            months.iter().map(MonthReport::from).collect(),
            requests(),
            Some(StopReason::Terminate),
        );
        summary.exit_code = 143;
        let document: serde_json::Value = serde_json::from_str(&summary.to_json_line()).unwrap();
        gid_e2e::assert_valid_run_summary(&document);
    }

    #[test]
    fn every_shape_of_a_scooter_pickups_document_matches_the_schema() {
        let done = StageOutcome::Enriched(Box::new(Enriched {
            requests: 9,
            pickups: 2,
            engine_calls: BTreeMap::from([("lingua-1.8".to_owned(), 1)]),
            engine_inputs: BTreeMap::from([("lingua-1.8".to_owned(), 9)]),
            written: vec![object("gid-work", "2019/jan/enriched.parquet")],
            ..Enriched::default()
        }));
        let published = StageOutcome::PickupsPublished(Published {
            objects: vec![object("gid-reports", "2019/jan/scooter_pickups.html")],
            index_entries: 2,
            links_expire_at: None,
            site_translations: None,
        });
        let planned = |plan, estimated_cost_usd| {
            StageOutcome::EnrichPlanned(Box::new(EnrichPlanned {
                month: jan(),
                plan,
                estimated_cost_usd,
            }))
        };
        let failed = |stage, source| {
            Some(RunError {
                month: jan(),
                stage,
                source,
            })
        };
        let scooter = |stages, failure| MonthOutcome {
            month: jan(),
            stages,
            failure,
            elapsed: Duration::from_millis(250),
        };
        let ingest = every_stage_outcome().swap_remove(0);
        let interrupted = || StageError::Interrupted {
            reason: StopReason::Interrupt,
        };
        let months = [
            scooter(vec![ingest, done.clone(), published], None),
            scooter(
                vec![planned(Some(EnrichPlan::default()), Some(0.0123))],
                None,
            ),
            scooter(vec![planned(Some(EnrichPlan::default()), None)], None),
            scooter(vec![planned(None, None)], None),
            scooter(
                vec![],
                failed(
                    Stage::Enrich,
                    StageError::Enrich(EnrichError::Engine {
                        engine: "apertium".into(),
                        message: "not installed".into(),
                    }),
                ),
            ),
            scooter(vec![], failed(Stage::Enrich, interrupted())),
            scooter(vec![done], failed(Stage::PickupsPublish, interrupted())),
            scooter(vec![], failed(Stage::Ingest, interrupted())),
        ];
        let mut summary = RunClock::start(Tool::ScooterPickups).finish(
            Profile::Local,
            true,
            months.iter().map(MonthReport::from).collect(),
            BTreeMap::new(),
            None,
        );
        summary.exit_code = 1;
        let document: serde_json::Value = serde_json::from_str(&summary.to_json_line()).unwrap();
        gid_e2e::assert_valid_run_summary(&document);
    }
}

/// Each stage of a month's entry with its status, in order.
fn stage_statuses(month: &serde_json::Value) -> Vec<(&str, &str)> {
    list(&month["stages"])
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect()
}
