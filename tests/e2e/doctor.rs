//! `gid-admin doctor`, the operator's preflight, through the binary: on moto_server (aws
//! profile: `scripts/with-moto.sh cargo test -p gid-e2e --test doctor`) and on the local
//! backend. Every run asks for `--output json` and reads the document, so the assertions
//! hold whatever the table's layout.

use std::path::{Path, PathBuf};
use std::process::Output;

use gid_e2e::{
    assert_success, moto_endpoint, run_with_env, stderr, stdout, unique, StubResponse, StubServer,
};
use serde_json::Value;

use crate::enrich_aws::translate_error;

/// Endpoints standing in for the AWS engine services (moto has no Translate), each
/// answering every request with `answers` (Translate, Comprehend, Rekognition).
struct EngineStubs([StubServer; 3]);

impl EngineStubs {
    fn answering(answers: [StubResponse; 3]) -> Self {
        Self(answers.map(|answer| StubServer::start(vec![answer])))
    }

    /// What an authorised caller meets with the doctor's empty requests: refused as invalid.
    fn authorised() -> Self {
        Self::answering([
            translate_error(400, "ValidationException", "Text must not be empty"),
            StubResponse::json_error(400, "ValidationException", "TextList is empty"),
            StubResponse::json_error(400, "InvalidImageFormatException", "not an image"),
        ])
    }

    fn env(&self) -> Vec<(String, String)> {
        ["TRANSLATE", "COMPREHEND", "REKOGNITION"]
            .iter()
            .zip(&self.0)
            .map(|(service, stub)| (format!("AWS_ENDPOINT_URL_{service}"), stub.endpoint.clone()))
            .collect()
    }

    fn requests(&self) -> usize {
        self.0.iter().map(|s| s.requests().len()).sum()
    }
}

/// The document of `gid-admin doctor --output json`, after checking its shape: a version,
/// the profile, the verdict, and checks each with an id, a name, a status, a one-line
/// detail and an action exactly when it warns or fails.
fn document(out: &Output, profile: &str) -> Value {
    let doc: Value = serde_json::from_str(&stdout(out)).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON document ({e}):\n{}\n--- stderr\n{}",
            stdout(out),
            stderr(out)
        )
    });
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["profile"], profile);
    let checks = doc["checks"].as_array().expect("checks is a list");
    assert!(!checks.is_empty());
    for check in checks {
        for field in ["id", "name", "detail"] {
            let text = check[field]
                .as_str()
                .unwrap_or_else(|| panic!("{field} in {check}"));
            assert!(!text.is_empty() && !text.contains('\n'), "{check}");
        }
        let status = check["status"].as_str().unwrap();
        assert!(
            ["ok", "warn", "fail", "skipped"].contains(&status),
            "{check}"
        );
        let has_action = check["action"].is_string();
        assert_eq!(
            has_action,
            status == "warn" || status == "fail",
            "an action comes with every warning and failure, and only then: {check}"
        );
    }
    let failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(doc["ok"], !failed);
    assert_eq!(
        out.status.code(),
        Some(if failed { 1 } else { 0 }),
        "{doc:#}"
    );
    doc
}

/// The check with this id.
fn check<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {doc:#}"))
}

fn statuses(doc: &Value) -> Vec<(String, String)> {
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// An aws-profile setup of its own in the shared moto_server: unique buckets and
/// threshold topics.
struct Aws {
    dir: tempfile::TempDir,
    config: PathBuf,
    buckets: Vec<(&'static str, String)>,
    trash: String,
    streets: String,
    engines: EngineStubs,
}

impl Aws {
    /// Unique names for every bucket and topic; creates the buckets in `create`.
    fn new(create: &[&str]) -> Aws {
        let dir = tempfile::tempdir().unwrap();
        let trash = unique("trash");
        let streets = unique("streets");
        let config = dir.path().join("thresholds.toml");
        std::fs::write(
            &config,
            format!(
                "[notify]\ndefault_topic = \"{streets}\"\n\n\
                 [notify.departments]\n\"{trash}\" = \"{trash}\"\n\n\
                 [[notify.thresholds]]\nservice_name = \"Illegal Dumping\"\nabove = 100\ntopic = \"{trash}\"\n\n\
                 [[notify.thresholds]]\nservice_name = \"Pothole\"\nabove = 30\ntopic = \"{streets}\"\n"
            ),
        )
        .unwrap();
        let buckets = ["requests", "work", "reports", "staging", "images"]
            .into_iter()
            .map(|key| (key, unique(&format!("gid-doc-{key}"))))
            .collect();
        let aws = Aws {
            dir,
            config,
            buckets,
            trash,
            streets,
            engines: EngineStubs::authorised(),
        };
        for key in create {
            assert_success(&aws.admin(&["bucket", "create", aws.bucket(key)]));
        }
        aws
    }

    fn bucket(&self, key: &str) -> &str {
        &self.buckets.iter().find(|(k, _)| *k == key).unwrap().1
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("AWS_ENDPOINT_URL".to_owned(), moto_endpoint())];
        env.extend(self.engines.env());
        for (key, name) in &self.buckets {
            env.push((
                format!("GID__BUCKETS__{}", key.to_uppercase()),
                name.clone(),
            ));
        }
        env
    }

    fn admin(&self, args: &[&str]) -> Output {
        self.admin_with(&[], args)
    }

    /// gid-admin with `extra` variables besides the setup's.
    fn admin_with(&self, extra: &[(&str, &str)], args: &[&str]) -> Output {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        let env = self.env();
        let mut env: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.extend_from_slice(extra);
        run_with_env("gid-admin", &all, &env, "aws")
    }

    /// Subscribes an email address to each topic (moto confirms email at once).
    fn subscribe(&self, topics: &[&str]) {
        let mut csv = "Name,Department,Email,Phone\n".to_owned();
        for (i, topic) in topics.iter().enumerate() {
            // The config maps department {trash} to its topic, every other to {streets}.
            csv.push_str(&format!("Crew {i},{topic},crew{i}@example.org,\n"));
        }
        let file = self.dir.path().join("contacts.csv");
        std::fs::write(&file, csv).unwrap();
        assert_success(&self.admin(&["subscribe", "--file", file.to_str().unwrap()]));
    }

    fn doctor(&self) -> Output {
        self.admin(&["doctor", "--output", "json"])
    }
}

const ALL_BUCKETS: [&str; 5] = ["requests", "work", "reports", "staging", "images"];

#[test]
fn doctor_passes_a_healthy_aws_setup_and_leaves_no_probe_behind() {
    let aws = Aws::new(&ALL_BUCKETS);
    aws.subscribe(&[&aws.trash, &aws.streets]);
    // A new bucket is not public: the doctor says so and names the command.
    let before = document(&aws.doctor(), "aws");
    let reads = check(&before, "bucket.reports.public-reads");
    assert_eq!(reads["status"], "warn", "{reads:#}");
    assert!(reads["action"]
        .as_str()
        .unwrap()
        .contains("gid-admin site init"));
    assert_success(&aws.admin(&["site", "init"]));

    let out = aws.doctor();
    let doc = document(&out, "aws");

    let mut expected: Vec<(String, String)> = [
        ("aws.region", "ok"),
        ("aws.credentials", "ok"),
        ("aws.identity", "ok"),
        ("bucket.requests", "ok"),
        ("bucket.work", "ok"),
        ("bucket.reports", "ok"),
        ("bucket.staging", "ok"),
        ("bucket.images", "ok"),
        ("bucket.work.write", "ok"),
        ("bucket.work.conditional-writes", "ok"),
        ("bucket.reports.public-reads", "ok"),
        ("sns", "ok"),
        // moto lacks GetSMSSandboxAccountStatus.
        ("sns.sms-sandbox", "skipped"),
        // The engines of the aws profile (enrich.engines defaults to it), at the stubs.
        ("engine.translate", "ok"),
        ("engine.comprehend", "ok"),
        ("engine.rekognition", "ok"),
    ]
    .iter()
    .map(|(id, s)| (id.to_string(), s.to_string()))
    .collect();
    expected.insert(12, (format!("topic.{}", aws.trash), "ok".into()));
    expected.insert(13, (format!("topic.{}", aws.streets), "ok".into()));
    assert_eq!(statuses(&doc), expected, "{doc:#}");
    assert!(check(&doc, "aws.identity")["detail"]
        .as_str()
        .unwrap()
        .contains("account 123456789012"));
    assert!(check(&doc, "bucket.reports.public-reads")["detail"]
        .as_str()
        .unwrap()
        .starts_with("public reads by bucket policy"));

    // The credentials' source is named, the key itself never printed whole.
    let credentials = check(&doc, "aws.credentials")["detail"].as_str().unwrap();
    assert!(
        credentials.starts_with("environment variables"),
        "{credentials}"
    );
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap();
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap();
    for text in [stdout(&out), stderr(&out)] {
        assert!(!text.contains(&key) && !text.contains(&secret), "{text}");
    }

    let probes = aws.admin(&[
        "object",
        "list",
        aws.bucket("work"),
        "--prefix",
        ".gid-doctor/",
    ]);
    assert_success(&probes);
    assert_eq!(stdout(&probes), "", "the probe object is deleted again");

    let table = aws.admin(&["doctor"]);
    assert_success(&table);
    assert!(
        stdout(&table).ends_with("\nready: no check failed or warned (1 check skipped).\n"),
        "{}",
        stdout(&table)
    );
}

#[test]
fn on_the_aws_profile_with_local_engines_the_doctor_checks_the_offline_engines_only() {
    let aws = Aws::new(&ALL_BUCKETS);

    let out = aws.admin_with(
        &[("GID__ENRICH__ENGINES", "local")],
        &["doctor", "--output", "json"],
    );

    let doc = document(&out, "aws");
    let ids: Vec<String> = statuses(&doc).into_iter().map(|(id, _)| id).collect();
    let engines: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| id.starts_with("engine."))
        .collect();
    assert_eq!(
        engines,
        ["engine.apertium", "engine.tesseract", "engine.image-model"],
        "{doc:#}"
    );
    assert_eq!(aws.engines.requests(), 0, "no AWS engine was asked");
}

#[test]
fn a_missing_bucket_fails_the_doctor_and_names_the_command_that_creates_it() {
    let aws = Aws::new(&["requests", "work", "staging", "images"]);
    aws.subscribe(&[&aws.trash, &aws.streets]);
    let reports = aws.bucket("reports").to_owned();

    let out = aws.doctor();
    let doc = document(&out, "aws");

    assert_eq!(out.status.code(), Some(1));
    assert_eq!(doc["ok"], false);
    let missing = check(&doc, "bucket.reports");
    assert_eq!(missing["status"], "fail");
    assert!(missing["detail"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    let create = format!("gid-admin bucket create {reports}");
    assert!(
        missing["action"].as_str().unwrap().contains(&create),
        "{missing}"
    );
    assert_eq!(
        check(&doc, "bucket.reports.public-reads")["status"],
        "skipped"
    );
    assert_eq!(check(&doc, "bucket.work.write")["status"], "ok");

    let table = aws.admin(&["doctor"]);
    assert_eq!(table.status.code(), Some(1));
    let text = stdout(&table);
    assert!(text.contains(&format!("→ create it: {create}")), "{text}");
    assert!(text.contains("a scheduled run would fail"), "{text}");
}

#[test]
fn a_threshold_topic_without_subscribers_is_a_warning_naming_it() {
    let aws = Aws::new(&ALL_BUCKETS);
    aws.subscribe(&[&aws.trash]);
    assert_success(&aws.admin(&["topic", "create", &aws.streets]));

    let out = aws.doctor();
    let doc = document(&out, "aws");

    assert_eq!(out.status.code(), Some(0), "a warning does not block a run");
    assert_eq!(check(&doc, &format!("topic.{}", aws.trash))["status"], "ok");
    let silent = check(&doc, &format!("topic.{}", aws.streets));
    assert_eq!(silent["status"], "warn");
    assert_eq!(silent["name"], format!("topic {}", aws.streets));
    let detail = silent["detail"].as_str().unwrap();
    assert!(
        detail.contains("no confirmed subscription") && detail.contains("Pothole > 30"),
        "{detail}"
    );
    assert!(silent["action"]
        .as_str()
        .unwrap()
        .contains("gid-admin subscribe"));
}

/// Runs gid-admin on the local profile with its data root and outbox under `dir`.
fn local(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let root = dir.join("data");
    let outbox = dir.join("outbox");
    let mut all = vec![
        ("GID__LOCAL__DATA_ROOT", root.to_str().unwrap()),
        ("GID__NOTIFY__OUTBOX_DIR", outbox.to_str().unwrap()),
    ];
    all.extend_from_slice(env);
    run_with_env("gid-admin", args, &all, "local")
}

/// A local setup as the demo makes it: sample exports and contacts, the contacts
/// subscribed, an images bucket.
fn healthy_local(dir: &Path) {
    let spec = gid_sample::SampleSpec {
        files_per_month: 3,
        rows_per_file: 20,
        ..Default::default()
    };
    crate::fixtures::seed_blocking(&dir.join("data"), "2019-01", "2019-01", &spec);
    assert_success(&local(dir, &[], &["subscribe"]));
    assert_success(&local(dir, &[], &["bucket", "create", "gid-images"]));
}

#[test]
fn doctor_passes_a_healthy_local_setup() {
    let dir = tempfile::tempdir().unwrap();
    healthy_local(dir.path());
    let model = dir.path().join("efficientnet-lite0.safetensors");
    std::fs::write(&model, b"weights").unwrap();

    let out = local(
        dir.path(),
        &[("GID_IMAGE_MODEL", model.to_str().unwrap())],
        &["doctor", "--output", "json"],
    );
    let doc = document(&out, "local");

    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    for id in [
        "local.data-root",
        "bucket.requests",
        "bucket.work",
        "bucket.reports",
        "bucket.staging",
        "bucket.images",
        "bucket.work.write",
        "bucket.work.conditional-writes",
        "local.outbox",
        "topic.trash",
        "topic.streets",
        "engine.image-model",
    ] {
        assert_eq!(check(&doc, id)["status"], "ok", "{id}: {doc:#}");
    }
    // Whether Apertium and Tesseract are installed depends on the machine (`make engines`);
    // either way they are never a failure: monthly-report does not need them.
    for id in ["engine.apertium", "engine.tesseract"] {
        assert_ne!(check(&doc, id)["status"], "fail", "{id}");
    }
    let left = std::fs::read_dir(dir.path().join("data/gid-work/.gid-doctor"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "the probe object is deleted again");
}

#[test]
fn a_missing_image_model_is_a_warning_that_names_the_pipeline_needing_it() {
    let dir = tempfile::tempdir().unwrap();
    healthy_local(dir.path());
    let missing = dir.path().join("no-such-model.safetensors");

    let out = local(
        dir.path(),
        &[("GID_IMAGE_MODEL", missing.to_str().unwrap())],
        &["doctor", "--output", "json"],
    );
    let doc = document(&out, "local");

    assert_eq!(
        out.status.code(),
        Some(0),
        "monthly-report runs without the model"
    );
    let model = check(&doc, "engine.image-model");
    assert_eq!(model["status"], "warn");
    let detail = model["detail"].as_str().unwrap();
    assert!(detail.contains(missing.to_str().unwrap()), "{detail}");
    assert!(detail.contains("scooter-pickups"), "{detail}");
    assert!(model["action"].as_str().unwrap().contains("make models"));
}

#[test]
fn on_the_local_profile_with_aws_engines_the_doctor_names_the_permission_an_engine_lacks() {
    let dir = tempfile::tempdir().unwrap();
    healthy_local(dir.path());
    let stubs = EngineStubs::answering([
        translate_error(400, "ValidationException", "Text must not be empty"),
        StubResponse::json_error(
            400,
            "AccessDeniedException",
            "not authorized to perform: comprehend:BatchDetectDominantLanguage",
        ),
        StubResponse::json_error(400, "InvalidImageFormatException", "not an image"),
    ]);
    let env = stubs.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.extend([
        ("GID__ENRICH__ENGINES", "aws"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ]);

    let out = local(dir.path(), &env, &["doctor", "--output", "json"]);

    let doc = document(&out, "local");
    assert_eq!(out.status.code(), Some(0), "monthly-report needs no engine");
    assert_eq!(check(&doc, "engine.translate")["status"], "ok");
    assert_eq!(check(&doc, "engine.rekognition")["status"], "ok");
    let comprehend = check(&doc, "engine.comprehend");
    assert_eq!(comprehend["status"], "warn", "{comprehend:#}");
    let detail = comprehend["detail"].as_str().unwrap();
    assert!(detail.contains("access denied"), "{detail}");
    assert!(detail.contains("scooter-pickups needs it"), "{detail}");
    assert!(comprehend["action"]
        .as_str()
        .unwrap()
        .contains("comprehend:BatchDetectDominantLanguage, comprehend:BatchDetectSentiment"));
    assert!(
        statuses(&doc).iter().all(|(id, _)| id != "engine.apertium"),
        "the offline engines are not the configured ones: {doc:#}"
    );
    // One empty request each (Comprehend stops at the first refusal), nothing retried.
    let sent: Vec<usize> = stubs.0.iter().map(|s| s.requests().len()).collect();
    assert_eq!(sent, [1, 1, 1]);
}

#[test]
fn a_configuration_the_doctor_cannot_use_exits_2_with_nothing_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = local(
        dir.path(),
        &[("GID__BUCKET__REPORTS", "city-reports")],
        &["doctor", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("GID__BUCKET__REPORTS sets unknown key bucket.reports"),
        "{}",
        stderr(&out)
    );
}
