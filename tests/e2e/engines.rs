//! gid-admin's enrichment commands (`translate`, `detect-language`, `sentiment`, `labels`,
//! `detect-text`) on the local profile's real engines (Apertium, Lingua, VADER,
//! EfficientNet-Lite0, Tesseract), asserting what those engines answer stably; and
//! `translate` on the aws profile against a stub Translate endpoint (moto has no
//! Translate), asserting the languages the request carries; and the engines chosen apart
//! from storage (`enrich.engines`): scooter-pickups with the offline engines over S3
//! (moto).

use std::path::{Path, PathBuf};
use std::process::Output;

use gid_core::{BucketName, ObjectKey};
use gid_e2e::run_local;
use gid_e2e::{
    assert_failure_says, assert_success, moto_endpoint, run_summary, run_with_env, stderr, stdout,
    summary_stage, unique, StubResponse, StubServer,
};
use gid_storage::ObjectStore;
use serde_json::Value;

use crate::enrich_aws::cbor_body;

const BUCKET: &str = "gid-engine-photos";

fn admin(root: &Path, args: &[&str]) -> Output {
    run_local("gid-admin", root, args)
}

/// Runs a command with `--output json`, checks it succeeded and returns its one document.
fn admin_json(root: &Path, args: &[&str]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--output", "json"]).collect();
    let out = admin(root, &args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", stdout(&out)))
}

/// A scratch data root whose photos bucket holds `file` under `key`.
fn root_with_image(file: &Path, key: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    assert_success(&admin(root.path(), &["bucket", "create", BUCKET]));
    let file = file.to_str().unwrap();
    assert_success(&admin(
        root.path(),
        &["object", "upload", file, BUCKET, "--key", key],
    ));
    root
}

fn cat_photo() -> PathBuf {
    gid_e2e::repo_root().join("crates/gid-enrich/tests/data/chelsea.jpg")
}

fn sample_images() -> PathBuf {
    let dir = std::env::var("GID_SAMPLE_IMAGES").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gid-sample-images",
            std::env::var("HOME").unwrap()
        )
    });
    PathBuf::from(dir)
}

fn scanned_page() -> PathBuf {
    let page = sample_images().join("ocr/page.png");
    assert!(
        page.exists(),
        "{} is missing: run `make sample-images`",
        page.display()
    );
    page
}

#[test]
fn translate_turns_spanish_into_english_and_english_into_spanish() {
    let root = tempfile::tempdir().unwrap();
    let out = admin(
        root.path(),
        &[
            "translate",
            "El patinete está bloqueando la acera",
            "--to",
            "en",
        ],
    );
    assert_success(&out);
    assert!(stdout(&out).contains("scooter"), "{}", stdout(&out));

    let doc = admin_json(
        root.path(),
        &[
            "translate",
            "The street is dirty",
            "--to",
            "es",
            "--from",
            "en",
        ],
    );
    assert_eq!(doc["profile"], "local");
    assert_eq!(doc["source_language"], "en");
    assert_eq!(doc["target_language"], "es");
    let spanish = doc["translated_text"].as_str().unwrap();
    assert!(spanish.contains("calle"), "{spanish}");
}

#[test]
fn translate_into_a_language_without_a_local_pair_names_the_installed_pairs() {
    let root = tempfile::tempdir().unwrap();
    let out = admin(root.path(), &["translate", "hola", "--to", "fr"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("into `fr`"), "{err}");
    assert!(err.contains("es→en (spa-eng), en→es (eng-spa)"), "{err}");
    assert!(!err.contains("Unsupported {"), "Debug output leaked: {err}");
}

#[test]
fn detect_language_finds_spanish_in_a_file() {
    let (root, texts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let file = texts.path().join("queja.txt");
    std::fs::write(
        &file,
        "Hay un patinete tirado en la banqueta desde hace tres días.\n",
    )
    .unwrap();
    let doc = admin_json(
        root.path(),
        &["detect-language", "--file", file.to_str().unwrap()],
    );
    assert_eq!(doc["language_code"], "es");
    assert!(doc["score"].as_f64().unwrap() > 0.5, "{doc}");
}

#[test]
fn sentiment_of_a_clearly_negative_sentence_is_negative() {
    let root = tempfile::tempdir().unwrap();
    let doc = admin_json(
        root.path(),
        &[
            "sentiment",
            "This is terrible: the worst service ever, I hate it.",
        ],
    );
    assert_eq!(doc["sentiment"], "NEGATIVE");
    let scores = &doc["scores"];
    assert!(
        scores["negative"].as_f64() > scores["positive"].as_f64(),
        "{doc}"
    );
}

#[test]
fn blank_text_is_refused_with_what_to_pass() {
    let root = tempfile::tempdir().unwrap();
    let out = admin(root.path(), &["sentiment", "   "]);
    assert_failure_says(&out, "the text is empty");
}

#[test]
fn labels_of_a_cat_photo_name_the_cat_within_max_labels_and_min_confidence() {
    let root = root_with_image(&cat_photo(), "requests/cat.jpg");
    let doc = admin_json(
        root.path(),
        &[
            "labels",
            BUCKET,
            "requests/cat.jpg",
            "--max-labels",
            "2",
            "--min-confidence",
            "5",
        ],
    );
    let labels = doc["labels"].as_array().unwrap();
    assert!(!labels.is_empty() && labels.len() <= 2, "{doc}");
    assert_eq!(labels[0]["name"], "Cat", "{doc}");
    assert!(labels
        .iter()
        .all(|l| l["confidence"].as_f64().unwrap() >= 5.0));

    // The model is ~92 % sure: a 99 % bar leaves no label.
    let strict = admin_json(
        root.path(),
        &[
            "labels",
            BUCKET,
            "requests/cat.jpg",
            "--min-confidence",
            "99",
        ],
    );
    assert_eq!(strict["labels"], Value::Array(vec![]), "{strict}");

    let missing = admin(root.path(), &["labels", BUCKET, "requests/dog.jpg"]);
    assert_failure_says(&missing, &format!("s3://{BUCKET}/requests/dog.jpg"));
}

#[test]
fn detect_text_counts_lines_and_words_separately_and_filters_by_type() {
    let root = root_with_image(&scanned_page(), "scans/page.png");
    let doc = admin_json(root.path(), &["detect-text", BUCKET, "scans/page.png"]);
    let detections = doc["detections"].as_array().unwrap();
    let count = |kind: &str| detections.iter().filter(|d| d["kind"] == kind).count();
    let (lines, words) = (count("LINE"), count("WORD"));
    assert!(lines > 0 && words > lines, "{lines} lines, {words} words");
    assert_eq!(doc["lines"], lines);
    assert_eq!(doc["words"], words);
    assert!(
        detections
            .iter()
            .any(|d| d["kind"] == "LINE" && d["text"].as_str().unwrap().contains("coins")),
        "{doc}"
    );

    let only_words = admin_json(
        root.path(),
        &["detect-text", BUCKET, "scans/page.png", "--type", "word"],
    );
    assert_eq!(only_words["lines"], 0);
    assert_eq!(only_words["words"], words);
    assert!(only_words["detections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["kind"] == "WORD"));
}

#[test]
fn translate_on_aws_sends_the_target_language_and_auto_or_the_given_source() {
    let stub = StubServer::start(vec![crate::enrich_aws::translated_into(
        "La calle está sucia",
        "en",
        "es",
    )]);
    let env = [
        ("GID__ENRICH__AWS__ENDPOINT_URL", stub.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let run = |args: &[&str]| {
        let out = run_with_env("gid-admin", args, &env, "aws");
        assert_success(&out);
        out
    };
    let out = run(&[
        "translate",
        "The street is dirty",
        "--to",
        "es",
        "--output",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["profile"], "aws");
    assert_eq!(doc["translated_text"], "La calle está sucia");
    assert_eq!(doc["source_language"], "en");
    assert_eq!(doc["target_language"], "es");
    run(&[
        "translate",
        "The street is dirty",
        "--to",
        "es",
        "--from",
        "en",
    ]);

    let requests = stub.requests();
    assert_eq!(requests.len(), 2, "one TranslateText per command");
    let (auto, given) = (cbor_body(&requests[0]), cbor_body(&requests[1]));
    assert_eq!(auto["Text"], "The street is dirty");
    assert_eq!(auto["TargetLanguageCode"], "es");
    assert_eq!(auto["SourceLanguageCode"], "auto");
    assert_eq!(given["TargetLanguageCode"], "es");
    assert_eq!(given["SourceLanguageCode"], "en");
}

#[tokio::test]
async fn scooter_pickups_on_s3_with_local_engines_makes_no_aws_engine_call() {
    let endpoint = moto_endpoint();
    let buckets: Vec<(&str, String)> = ["requests", "reports", "images", "staging", "work"]
        .into_iter()
        .map(|b| (b, unique(&format!("gid-eng-{}", &b[..3]))))
        .collect();
    let vars: Vec<(String, String)> = buckets
        .iter()
        .map(|(key, name)| {
            (
                format!("GID__BUCKETS__{}", key.to_uppercase()),
                name.clone(),
            )
        })
        .chain([
            ("AWS_ENDPOINT_URL".into(), endpoint.clone()),
            ("GID__ENRICH__ENGINES".into(), "local".into()),
            (
                "GID_SAMPLE_IMAGES".into(),
                sample_images().display().to_string(),
            ),
        ])
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let run = |name: &str, args: &[&str]| run_with_env(name, args, &env, "aws");
    for (_, bucket) in &buckets {
        assert_success(&run("gid-admin", &["bucket", "create", bucket]));
    }
    let sample = [
        "sample", "--month", "2019-01", "--files", "3", "--rows", "150",
    ];
    assert_success(&run("gid-admin", &sample));
    assert_success(&run(
        "monthly-report",
        &["--month", "2019-01", "--stage", "ingest"],
    ));

    let dry = run("scooter-pickups", &["--month", "2019-01", "--dry-run"]);
    assert_success(&dry);
    assert!(
        stdout(&dry).contains("local engines: no per-call cost"),
        "{}",
        stdout(&dry)
    );

    let out = run(
        "scooter-pickups",
        &["--month", "2019-01", "--output", "json"],
    );
    assert_success(&out);
    let doc = run_summary(&out);
    let counts = &summary_stage(&doc, "2019-01", "enrich")["counts"];
    let engines: Vec<&str> = counts["engine_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engine"].as_str().unwrap())
        .collect();
    assert!(!engines.is_empty(), "{counts:#}");
    assert!(
        engines.iter().all(|e| !e.starts_with("aws-")),
        "only the offline engines answer: {engines:?}"
    );
    let services: Vec<&String> = doc["requests"].as_object().unwrap().keys().collect();
    assert_eq!(
        services,
        ["s3"],
        "S3 only: no Comprehend, Translate or Rekognition"
    );
    // The offline labeller read the photos from S3: the sample's motorcycle is a Scooter.
    assert!(
        counts["scooter_photos"].as_u64().unwrap() > 0,
        "photos read from S3: {counts:#}"
    );

    // The pickups are published to the S3 site, one row per pickup.
    let store = crate::support_aws::s3().await;
    let reports = BucketName::new(buckets[1].1.clone()).unwrap();
    let csv = store
        .get(
            &reports,
            &ObjectKey::new("2019/jan/scooter_pickups.csv").unwrap(),
        )
        .await
        .unwrap()
        .body;
    let rows = csv::Reader::from_reader(csv.as_ref()).records().count() as u64;
    assert_eq!(rows, counts["pickups"].as_u64().unwrap());
}

#[test]
fn aws_engines_over_a_local_folder_send_photos_as_bytes_and_dry_runs_price_them() {
    let stub = StubServer::start(vec![StubResponse::json(
        r#"{"Labels":[{"Name":"Cat","Confidence":91.5}],"LabelModelVersion":"3.0"}"#,
    )]);
    let root = root_with_image(&cat_photo(), "requests/cat.jpg");
    let data_root = root.path().to_str().unwrap().to_owned();
    let env = [
        ("GID__LOCAL__DATA_ROOT", data_root.as_str()),
        ("GID__NOTIFY__OUTBOX_DIR", data_root.as_str()),
        ("GID__ENRICH__ENGINES", "aws"),
        ("GID__ENRICH__AWS__ENDPOINT_URL", stub.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let run = |name: &str, args: &[&str]| run_with_env(name, args, &env, "local");
    let out = run(
        "gid-admin",
        &["labels", BUCKET, "requests/cat.jpg", "--output", "json"],
    );
    assert_success(&out);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (doc["profile"].as_str(), doc["engines"].as_str()),
        (Some("local"), Some("aws"))
    );
    assert_eq!(doc["labels"][0]["name"], "Cat");
    // Rekognition cannot reach a folder: the photo's bytes go in the request.
    let request: Value = serde_json::from_slice(&stub.requests()[0].body).unwrap();
    let sent = std::fs::read(cat_photo()).unwrap();
    let bytes = request["Image"]["Bytes"].as_str().expect("Image.Bytes");
    assert_eq!(
        bytes.len(),
        sent.len().div_ceil(3) * 4,
        "the whole photo, base64"
    );
    assert!(request["Image"].get("S3Object").is_none(), "{request}");
    // Over Rekognition's 5 MB for bytes: refused here, naming the photo, nothing sent.
    let huge = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(huge.path(), vec![0u8; 5 * 1024 * 1024 + 1]).unwrap();
    let upload = [
        "object",
        "upload",
        huge.path().to_str().unwrap(),
        BUCKET,
        "--key",
        "requests/huge.jpg",
    ];
    assert_success(&run("gid-admin", &upload));
    let refused = run("gid-admin", &["labels", BUCKET, "requests/huge.jpg"]);
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert!(
        err.contains(&format!(
            "s3://{BUCKET}/requests/huge.jpg is 5242881 bytes, over the 5 MB"
        )),
        "{err}"
    );
    assert_eq!(
        stub.requests().len(),
        1,
        "nothing sent for the refused photo"
    );

    assert_success(&run(
        "gid-admin",
        &[
            "sample", "--month", "2019-01", "--files", "3", "--rows", "150",
        ],
    ));
    assert_success(&run(
        "monthly-report",
        &["--month", "2019-01", "--stage", "ingest"],
    ));
    let dry = run("scooter-pickups", &["--month", "2019-01", "--dry-run"]);
    assert_success(&dry);
    assert!(
        stdout(&dry).contains("estimated AWS cost $"),
        "{}",
        stdout(&dry)
    );
    assert_eq!(stub.requests().len(), 1, "a dry run asks no engine");
}

#[tokio::test]
async fn scooter_pickups_on_the_aws_engines_reports_each_engine_services_requests() {
    // One Spanish scooter request with a photo: one language batch and one sentiment batch
    // (Comprehend), one translation, one photo (Rekognition).
    let root = tempfile::tempdir().unwrap();
    let store = gid_storage::LocalStore::new(root.path());
    let put = |bucket: &'static str, key: &'static str, body: Vec<u8>| {
        let store = &store;
        async move {
            let bucket = BucketName::new(bucket).unwrap();
            gid_storage::BucketAdmin::create_bucket(store, &bucket)
                .await
                .unwrap();
            let options = gid_storage::PutOptions::new("application/octet-stream");
            let key = ObjectKey::new(key).unwrap();
            store
                .put(&bucket, &key, body.into(), &options)
                .await
                .unwrap();
        }
    };
    let csv = "service_request_id,service_name,date_requested,status,public_description,image\n\
               s1,Shared Mobility Device,2019-01-05T10:00:00,Open,El patinete bloquea la acera,cat.jpg\n";
    put("gid-requests", "2019/jan/scooters.csv", csv.into()).await;
    put("gid-images", "cat.jpg", std::fs::read(cat_photo()).unwrap()).await;
    // Comprehend answers both batch operations with one shape: each SDK reads its fields.
    let comprehend = StubServer::start(vec![StubResponse::json(
        r#"{"ResultList":[{"Index":0,"Languages":[{"LanguageCode":"es","Score":0.99}],
            "Sentiment":"NEGATIVE","SentimentScore":{"Positive":0.01,"Negative":0.97,
            "Neutral":0.01,"Mixed":0.01}}],"ErrorList":[]}"#,
    )]);
    let translate = StubServer::start(vec![crate::enrich_aws::translated_into(
        "The scooter blocks the sidewalk",
        "es",
        "en",
    )]);
    let rekognition = StubServer::start(vec![StubResponse::json(
        r#"{"Labels":[{"Name":"Scooter","Confidence":95.0}],"LabelModelVersion":"3.0"}"#,
    )]);
    let data_root = root.path().to_str().unwrap();
    let outbox = root.path().join("outbox");
    let env = [
        ("GID__LOCAL__DATA_ROOT", data_root),
        ("GID__NOTIFY__OUTBOX_DIR", outbox.to_str().unwrap()),
        ("GID__ENRICH__ENGINES", "aws"),
        ("AWS_ENDPOINT_URL_COMPREHEND", comprehend.endpoint.as_str()),
        ("AWS_ENDPOINT_URL_TRANSLATE", translate.endpoint.as_str()),
        (
            "AWS_ENDPOINT_URL_REKOGNITION",
            rekognition.endpoint.as_str(),
        ),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];

    let out = run_with_env(
        "scooter-pickups",
        &["--month", "2019-01", "--output", "json"],
        &env,
        "local",
    );

    assert_success(&out);
    let doc = run_summary(&out);
    assert_eq!(
        summary_stage(&doc, "2019-01", "enrich")["counts"]["pickups"],
        1,
        "{doc:#}"
    );
    let requests = &doc["requests"];
    let sent = |service: &str| {
        (
            requests[service]["operations"].as_u64(),
            requests[service]["attempts"].as_u64(),
        )
    };
    assert_eq!(sent("comprehend"), (Some(2), Some(2)), "{requests:#}");
    assert_eq!(sent("translate"), (Some(1), Some(1)), "{requests:#}");
    assert_eq!(sent("rekognition"), (Some(1), Some(1)), "{requests:#}");
    assert!(requests.get("s3").is_none(), "folders count no requests");
    let stubs = [&comprehend, &translate, &rekognition];
    let received: Vec<usize> = stubs.iter().map(|s| s.requests().len()).collect();
    assert_eq!(received, [2, 1, 1], "the counts are what the services got");
}
