//! Shared set-up of the fault, crash and integrity tests (`crate::support_aws`): a month
//! of sample exports in moto, unique buckets and topics per run, and snapshots of what a
//! run published.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use gid_core::{BucketName, Month, ObjectKey};
use gid_e2e::{assert_success, http_get, moto_endpoint, moto_sns_endpoint, run_with_env, unique};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{list_all, BucketAdmin, ObjectStore, PutOptions, S3Settings, S3Store};

/// Creates `buckets` with `gid-admin bucket create`, as an operator does, under `env`.
pub(crate) fn create_buckets(env: &[(&str, &str)], buckets: &[&str]) {
    for bucket in buckets {
        let out = run_with_env("gid-admin", &["bucket", "create", bucket], env, "aws");
        gid_e2e::assert_success(&out);
    }
}

pub(crate) async fn s3() -> S3Store {
    S3Store::connect(&S3Settings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(moto_endpoint()),
        force_path_style: None,
        checksums_when_required: false,
        max_attempts: 3,
        operation_timeout: Duration::from_secs(30),
        ..Default::default()
    })
    .await
    .expect("AWS configuration")
}

/// One isolated run target: its own work and reports buckets and alert topics.
pub(crate) struct Target {
    pub work: String,
    pub reports: String,
    pub trash: String,
    pub streets: String,
    pub config: PathBuf,
}

/// Sample exports in moto, shared read-only by every run of a test.
pub(crate) struct World {
    pub requests: String,
    pub dir: tempfile::TempDir,
}

impl World {
    pub(crate) async fn new(months: &[&str]) -> World {
        let store = s3().await;
        let requests = unique("gid-req");
        let bucket = BucketName::new(requests.clone()).unwrap();
        store.create_bucket(&bucket).await.unwrap();
        for m in months {
            let month: Month = m.parse().unwrap();
            for file in generate_month(month, &SampleSpec::default()).files {
                let key = format!("{}/{}/{}", month.year(), month.abbreviation(), file.name);
                store
                    .put(
                        &bucket,
                        &ObjectKey::new(key).unwrap(),
                        Bytes::from(file.bytes),
                        &PutOptions::new("text/csv"),
                    )
                    .await
                    .unwrap();
            }
        }
        World {
            requests,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Fresh buckets and topics for one run.
    pub(crate) async fn target(&self) -> Target {
        let store = s3().await;
        let work = unique("gid-work");
        let reports = unique("gid-rep");
        for b in [&work, &reports] {
            store
                .create_bucket(&BucketName::new(b.clone()).unwrap())
                .await
                .unwrap();
        }
        let trash = unique("trash");
        let streets = unique("streets");
        let config = self.dir.path().join(format!("{trash}.toml"));
        std::fs::write(
            &config,
            format!(
                "[[notify.thresholds]]\nservice_name = \"Illegal Dumping\"\nabove = 100\ntopic = \"{trash}\"\nlabel = \"Trash violations\"\n\n\
                 [[notify.thresholds]]\nservice_name = \"Pothole\"\nabove = 30\ntopic = \"{streets}\"\nlabel = \"Pothole\"\n"
            ),
        )
        .unwrap();
        Target {
            work,
            reports,
            trash,
            streets,
            config,
        }
    }

    /// Runs monthly-report on the aws profile through the given S3 and SNS endpoints.
    pub(crate) fn run(
        &self,
        target: &Target,
        s3_endpoint: &str,
        sns_endpoint: &str,
        args: &[&str],
    ) -> std::process::Output {
        let mut all = vec!["--config", target.config.to_str().unwrap()];
        all.extend_from_slice(args);
        run_with_env(
            "monthly-report",
            &all,
            &self.env(target, s3_endpoint, sns_endpoint),
            "aws",
        )
    }

    /// What a fault-free run of `args` on fresh buckets publishes (see [`snapshot`]):
    /// the reference a run under faults or crashes must end up matching.
    pub(crate) async fn reference_snapshot(
        &self,
        args: &[&str],
    ) -> (BTreeMap<String, String>, BTreeSet<String>) {
        let reference = self.target().await;
        let out = self.run(&reference, &moto_endpoint(), &moto_sns_endpoint(), args);
        assert_success(&out);
        snapshot(&reference).await
    }

    pub(crate) fn env<'a>(
        &'a self,
        target: &'a Target,
        s3_endpoint: &'a str,
        sns_endpoint: &'a str,
    ) -> Vec<(&'a str, &'a str)> {
        vec![
            ("AWS_ENDPOINT_URL", s3_endpoint),
            ("GID__NOTIFY__SNS_ENDPOINT_URL", sns_endpoint),
            ("GID__BUCKETS__REQUESTS", self.requests.as_str()),
            ("GID__BUCKETS__WORK", target.work.as_str()),
            ("GID__BUCKETS__REPORTS", target.reports.as_str()),
            ("GID__AWS__MAX_ATTEMPTS", "6"),
            ("GID__AWS__OPERATION_TIMEOUT_SECS", "4"),
        ]
    }
}

/// Everything a run published or computed that must not depend on faults: the site's
/// objects (bytes) but the index, the index's links, and the month summaries.
/// Objects are compared by size and a hash, so a failing comparison stays readable.
pub(crate) async fn snapshot(target: &Target) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let store = s3().await;
    let mut objects = BTreeMap::new();
    let reports = BucketName::new(target.reports.clone()).unwrap();
    for o in list_all(&store, &reports, "").await.unwrap() {
        if o.key.as_str() != "index.html" {
            let body = store.get(&reports, &o.key).await.unwrap().body;
            objects.insert(format!("reports/{}", o.key), fingerprint(&body));
        }
    }
    let work = BucketName::new(target.work.clone()).unwrap();
    for o in list_all(&store, &work, "").await.unwrap() {
        if o.key.as_str().ends_with("summary.json") {
            let body = store.get(&work, &o.key).await.unwrap().body;
            objects.insert(format!("work/{}", o.key), fingerprint(&body));
        }
    }
    (objects, index_links(target).await.unwrap_or_default())
}

fn fingerprint(bytes: &[u8]) -> String {
    // FNV-1a is enough to tell two versions of a small file apart.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{} bytes, fnv {hash:016x}", bytes.len())
}

/// The relative links of the site index, if there is one.
pub(crate) async fn index_links(target: &Target) -> Option<BTreeSet<String>> {
    let store = s3().await;
    let reports = BucketName::new(target.reports.clone()).unwrap();
    let index = store
        .get(&reports, &ObjectKey::new("index.html").unwrap())
        .await
        .ok()?;
    let text = String::from_utf8(index.body.to_vec()).unwrap();
    Some(
        text.split("href=\"./")
            .skip(1)
            .map(|l| l[..l.find('"').unwrap()].to_owned())
            .collect(),
    )
}

/// Asserts every link of the index points at an existing object.
pub(crate) async fn assert_index_complete(target: &Target) {
    let Some(links) = index_links(target).await else {
        return;
    };
    let store = s3().await;
    let reports = BucketName::new(target.reports.clone()).unwrap();
    for link in links {
        let key = ObjectKey::new(link.clone()).unwrap();
        assert!(
            store.head(&reports, &key).await.is_ok(),
            "index references missing {link}"
        );
    }
}

/// Messages moto's SNS recorded for a threshold's topic, by its short name: the SNS
/// topic carries gid's default prefix (read back through moto's own API).
pub(crate) fn sns_messages(topic: &str) -> Vec<String> {
    let (status, body) = http_get(&format!("{}/moto-api/data.json", moto_sns_endpoint()));
    assert_eq!(status, 200, "moto data.json");
    let state: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let mut seen = BTreeSet::new();
    let mut messages = Vec::new();
    for t in state["sns"]["Topic"].as_array().into_iter().flatten() {
        let arn = t["arn"].as_str().unwrap_or_default();
        if !arn.ends_with(&format!(":gid-{topic}")) {
            continue;
        }
        for n in t["sent_notifications"].as_array().into_iter().flatten() {
            let id = n[0].as_str().unwrap_or_default().to_owned();
            // moto lists a topic once per create_topic call: merge by message id.
            if seen.insert(id) {
                messages.push(n[1].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    messages
}
