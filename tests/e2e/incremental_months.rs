//! A month re-delivered with one changed file: the rerun downloads only that file (the
//! others come from the per-file parts the last run kept, keyed by their ETags) and
//! publishes exactly what a run from scratch publishes.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gid_core::{BucketName, Month, ObjectKey};
use gid_e2e::fault_proxy::{Fault, FaultProxy, ProxyRequest, Rule};
use gid_e2e::{assert_success, moto_endpoint, moto_sns_endpoint, run_with_env, unique};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{list_all, BucketAdmin, ObjectStore, PutOptions};

use crate::support_aws::{s3, snapshot, Target, World};

/// The exports of the month (plus the sample's empty file, which is skipped).
const EXPORTS: usize = 8;

/// The objects GET from the requests bucket through a proxy, by key (listings aside).
#[derive(Default, Clone)]
struct ExportGets(Arc<Mutex<Vec<String>>>);

impl ExportGets {
    /// A pass-through rule that records the GETs of objects in `bucket` and faults nothing.
    fn rule(&self, bucket: &str) -> Rule {
        let (seen, prefix) = (self.0.clone(), format!("/{bucket}/"));
        Rule::new(
            move |r: &ProxyRequest| {
                if r.method == "GET" && !r.path.contains("list-type") {
                    if let Some(key) = r.path.strip_prefix(&prefix) {
                        let key = key.split_once('?').map_or(key, |(k, _)| k);
                        seen.lock().unwrap().push(key.to_owned());
                    }
                }
                false
            },
            Fault::SlowDown,
        )
    }

    fn keys(&self) -> Vec<String> {
        let mut keys = self.0.lock().unwrap().clone();
        keys.sort();
        keys
    }
}

fn run(world: &World, target: &Target, s3_endpoint: &str, args: &[&str]) {
    let sns = moto_sns_endpoint();
    let mut env = world.env(target, s3_endpoint, &sns);
    // The sample's files are small; every export gets a part here.
    env.push(("GID__INGEST__PART_MIN_BYTES", "0"));
    let mut all = vec!["--config", target.config.to_str().unwrap()];
    all.extend_from_slice(args);
    assert_success(&run_with_env("monthly-report", &all, &env, "aws"));
}

/// The work bucket's ingest report and quarantine objects, by key.
async fn ingest_outputs(target: &Target) -> BTreeMap<String, String> {
    let store = s3().await;
    let work = BucketName::new(target.work.clone()).unwrap();
    let mut outputs = BTreeMap::new();
    for o in list_all(&store, &work, "").await.unwrap() {
        let key = o.key.as_str();
        if key == "2019/jan/ingest.json" || key.starts_with("quarantine/") {
            let body = store.get(&work, &o.key).await.unwrap().body;
            outputs.insert(key.to_owned(), String::from_utf8_lossy(&body).into_owned());
        }
    }
    outputs
}

#[tokio::test]
async fn a_rerun_after_one_of_eight_files_changed_downloads_only_that_file_and_publishes_what_a_full_run_does(
) {
    let store = s3().await;
    let requests = unique("gid-req");
    let bucket = BucketName::new(requests.clone()).unwrap();
    store.create_bucket(&bucket).await.unwrap();
    let month = Month::new(2019, 1).unwrap();
    let spec = SampleSpec {
        files_per_month: EXPORTS,
        ..SampleSpec::default()
    };
    let sample = generate_month(month, &spec);
    let put = |name: &str, body: Vec<u8>| {
        let (store, bucket) = (&store, &bucket);
        let key = ObjectKey::new(format!("2019/jan/{name}")).unwrap();
        async move {
            store
                .put(
                    bucket,
                    &key,
                    Bytes::from(body),
                    &PutOptions::new("text/csv"),
                )
                .await
                .unwrap()
        }
    };
    for file in &sample.files {
        put(&file.name, file.bytes.clone()).await;
    }
    let world = World {
        requests: requests.clone(),
        dir: tempfile::tempdir().unwrap(),
    };
    let incremental = world.target().await;
    run(
        &world,
        &incremental,
        &moto_endpoint(),
        &["--month", "2019-01"],
    );

    // The city re-delivers one export with a request re-filed under another service.
    let changed = sample
        .files
        .iter()
        .filter(|f| !f.bytes.is_empty())
        .nth(EXPORTS / 2)
        .unwrap();
    put(&changed.name, refile_first_request(&changed.bytes)).await;

    let (gets, requests_seen) =
        run_counting_gets(&world, &incremental, &requests, &["--month", "2019-01"]);
    assert_eq!(
        gets.keys(),
        [format!("2019/jan/{}", changed.name)],
        "only the changed export is downloaded ({requests_seen} S3 requests in all)"
    );

    // A run from scratch over the same exports publishes the same month.
    let scratch = world.target().await;
    run(&world, &scratch, &moto_endpoint(), &["--month", "2019-01"]);
    assert_eq!(snapshot(&incremental).await, snapshot(&scratch).await);
    assert_eq!(
        ingest_outputs(&incremental).await,
        ingest_outputs(&scratch).await
    );

    // The changed file's old part is gone: the parts are exactly the files'.
    let work = BucketName::new(incremental.work.clone()).unwrap();
    let parts = list_all(&store, &work, "2019/jan/parts/")
        .await
        .unwrap()
        .len();
    assert_eq!(parts, EXPORTS);

    // --force reads every file again, but for the empty one: its listing says so.
    let (gets, _) = run_counting_gets(
        &world,
        &incremental,
        &requests,
        &["--month", "2019-01", "--force"],
    );
    let mut non_empty: Vec<String> = sample
        .files
        .iter()
        .filter(|f| !f.bytes.is_empty())
        .map(|f| format!("2019/jan/{}", f.name))
        .collect();
    non_empty.sort();
    assert_eq!(gets.keys(), non_empty);
    assert!(
        non_empty.len() < sample.files.len(),
        "the sample has an empty export"
    );
}

/// Runs monthly-report through a proxy that records which exports of `requests` it
/// downloads; answers those and how many S3 requests the run made in all.
fn run_counting_gets(
    world: &World,
    target: &Target,
    requests: &str,
    args: &[&str],
) -> (ExportGets, u64) {
    let gets = ExportGets::default();
    let proxy = FaultProxy::start(&moto_endpoint(), vec![gets.rule(requests)]);
    run(world, target, &proxy.endpoint, args);
    let seen = proxy.stats.requests.load(Ordering::SeqCst);
    (gets, seen)
}

/// The export with its first request re-filed under another service (every other byte
/// of every other row as it was, dirty rows included).
fn refile_first_request(export: &[u8]) -> Vec<u8> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(export);
    let mut rows: Vec<csv::ByteRecord> = reader.byte_records().map(Result::unwrap).collect();
    let service = rows[0]
        .iter()
        .position(|c| c.trim_ascii().eq_ignore_ascii_case(b"service_name"))
        .unwrap();
    let first: Vec<&[u8]> = rows[1]
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == service {
                &b"Graffiti - Public"[..]
            } else {
                f
            }
        })
        .collect();
    assert_ne!(
        csv::ByteRecord::from(first.clone()),
        rows[1],
        "the row changes"
    );
    rows[1] = csv::ByteRecord::from(first);
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in &rows {
        writer.write_byte_record(row).unwrap();
    }
    writer.into_inner().unwrap()
}
