//! monthly-report end to end on the aws profile against moto_server, with more input
//! keys in one month than one ListObjectsV2 page returns.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::StreamExt;
use gid_core::{Acl, BucketName, Month, ObjectKey};
use gid_e2e::{
    assert_success, http_get, moto_endpoint, moto_sns_endpoint, run_summary, run_with_env, stdout,
    summary_month, summary_stage, unique,
};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{list_all, ObjectAcls, ObjectStore, PutOptions};
use serde_json::Value;

const EXTRA_FILES: usize = 1000;
/// S3 requests of a month's four stages besides reading its inputs: manifests, outputs,
/// the site listing and index, the alert ledger (ARCHITECTURE.md, "Runs, manifests"), and
/// the trends: two more month files, the two trends files, the trends state's GET and PUT,
/// a listing of the site root (files a failed publish must not remove) and, on a site's
/// first publish, one listing to seed the state.
const MONTH_OVERHEAD_REQUESTS: usize = 38;
/// S3 requests of an unchanged rerun besides listing the inputs: each stage's manifest
/// and a HEAD per recorded output.
const RERUN_OVERHEAD_REQUESTS: usize = 16;

/// The S3 requests (attempts, retries included) a run summary counts.
fn s3_requests(doc: &Value) -> usize {
    doc["requests"]["s3"]["attempts"]
        .as_u64()
        .unwrap_or_else(|| panic!("no S3 request count in {doc:#}")) as usize
}

#[tokio::test]
async fn monthly_report_on_s3_reads_every_page_and_publishes_public_objects() {
    let endpoint = moto_endpoint();
    let sns_endpoint = moto_sns_endpoint();
    let requests = unique("gid-req");
    let reports = unique("gid-rep");
    let work = unique("gid-work");
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("GID__BUCKETS__REQUESTS", requests.as_str()),
        ("GID__BUCKETS__REPORTS", reports.as_str()),
        ("GID__BUCKETS__WORK", work.as_str()),
        ("GID__INGEST__CONCURRENCY", "16"),
        ("GID__NOTIFY__SNS_ENDPOINT_URL", sns_endpoint.as_str()),
    ];
    crate::support_aws::create_buckets(&env, &[&requests, &reports, &work]);
    // The site is made public the modern way: a bucket policy on the site's files. The dry
    // run shows the policy and changes nothing.
    let dry = run_with_env("gid-admin", &["site", "init", "--dry-run"], &env, "aws");
    assert_success(&dry);
    let said = stdout(&dry);
    assert!(
        said.contains("would change bucket policy")
            && said.contains(&format!("arn:aws:s3:::{reports}/*/*/final_report.csv"))
            && said.contains("dry run: nothing changed"),
        "{said}"
    );
    let init = run_with_env("gid-admin", &["site", "init"], &env, "aws");
    assert_success(&init);
    assert!(
        stdout(&init).contains(&format!("site: {endpoint}/{reports}/index.html")),
        "{}",
        stdout(&init)
    );
    let again = run_with_env("gid-admin", &["site", "init"], &env, "aws");
    assert!(
        stdout(&again).contains("nothing to change"),
        "{}",
        stdout(&again)
    );

    let store = crate::support_aws::s3().await;
    let requests_bucket = BucketName::new(requests.clone()).unwrap();
    let sample = generate_month(Month::new(2019, 1).unwrap(), &SampleSpec::default());
    let mut uploads: Vec<(String, Vec<u8>)> = sample
        .files
        .iter()
        .map(|f| (format!("2019/jan/{}", f.name), f.bytes.clone()))
        .collect();
    for i in 0..EXTRA_FILES {
        let row = format!(
            "service_request_id,service_name,date_requested\nextra-{i},Pothole,2019-01-{:02}T08:00:00\n",
            i % 28 + 1
        );
        uploads.push((format!("2019/jan/extra/e-{i:04}.csv"), row.into_bytes()));
    }
    futures::stream::iter(uploads)
        .map(|(k, body)| {
            let (store, bucket) = (&store, &requests_bucket);
            async move {
                store
                    .put(
                        bucket,
                        &ObjectKey::new(k).unwrap(),
                        Bytes::from(body),
                        &PutOptions::new("text/csv"),
                    )
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;

    let json = ["--month", "2019-01", "--output", "json"];
    let out = run_with_env("monthly-report", &json, &env, "aws");
    assert_success(&out);
    let doc = run_summary(&out);
    assert_eq!(doc["profile"], "aws");
    assert_eq!(
        doc["site_url"].as_str(),
        Some(format!("{endpoint}/{reports}/index.html").as_str())
    );
    let files = sample.files.len() + EXTRA_FILES;
    assert_eq!(
        summary_stage(&doc, "2019-01", "ingest")["counts"]["files"],
        files
    );
    // Requests are what S3 bills and rate-limits: one GET per input file, a LIST per 1000
    // keys, and a fixed number for the month's bookkeeping and outputs.
    let listing_pages = files.div_ceil(1000);
    assert!(
        s3_requests(&doc) <= files + listing_pages + MONTH_OVERHEAD_REQUESTS,
        "{}",
        doc["requests"]
    );
    assert!(
        doc["requests"]["sns"]["operations"].as_u64().unwrap() > 0,
        "alerts went out through SNS: {}",
        doc["requests"]
    );

    let reports_bucket = BucketName::new(reports.clone()).unwrap();
    let csv_key = ObjectKey::new("2019/jan/final_report.csv").unwrap();
    let body = store.get(&reports_bucket, &csv_key).await.unwrap().body;
    let mut reader = csv::Reader::from_reader(body.as_ref());
    let counts: BTreeMap<String, u64> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[1].to_owned(), r[2].parse().unwrap())
        })
        .collect();
    let mut expected = sample.truth.service_counts.clone();
    *expected.entry("Pothole".into()).or_default() += EXTRA_FILES as u64;
    assert_eq!(counts, expected);

    // The objects written are named with the ETags S3 gave them.
    let written = summary_stage(&doc, "2019-01", "publish")["counts"]["objects_written"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(written.len(), 7);
    for object in &written {
        assert_eq!(object["bucket"], reports.as_str());
        let key = ObjectKey::new(object["key"].as_str().unwrap()).unwrap();
        let head = store.head(&reports_bucket, &key).await.unwrap();
        assert_eq!(object["etag"], head.etag.as_str(), "{key}");
        assert_eq!(object["size"], head.size, "{key}");
    }
    for (k, ct) in [
        ("2019/jan/final_report.csv", "text/csv"),
        ("2019/jan/final_report.html", "text/html"),
        ("2019/jan/chart.html", "text/html"),
        ("2019/jan/map.html", "text/html"),
        ("2019/jan/summary.json", "application/json"),
        ("trends.html", "text/html"),
        ("trends.csv", "text/csv"),
        ("index.html", "text/html"),
    ] {
        let key = ObjectKey::new(k).unwrap();
        let head = store.head(&reports_bucket, &key).await.unwrap();
        assert!(
            head.content_type.as_deref().unwrap().starts_with(ct),
            "{k}: {head:?}"
        );
        assert_eq!(
            store.get_acl(&reports_bucket, &key).await.unwrap(),
            Acl::Private,
            "{k}: published without an ACL"
        );
        let (status, _) = http_get(&format!("{endpoint}/{reports}/{k}"));
        assert_eq!(status, 200, "{k} is readable anonymously");
    }
    // The policy covers the site's files, not whatever else the bucket holds.
    let notes = ObjectKey::new("drafts/notes.txt").unwrap();
    store
        .put(
            &reports_bucket,
            &notes,
            Bytes::from_static(b"internal"),
            &PutOptions::new("text/plain"),
        )
        .await
        .unwrap();
    let (status, _) = http_get(&format!("{endpoint}/{reports}/{notes}"));
    assert_eq!(status, 403, "an object outside the site stays private");
    let (status, _) = http_get(&format!("{endpoint}/{work}/2019/jan/manifests/ingest.json"));
    assert_eq!(status, 403, "work data is not public");
    store.delete(&reports_bucket, &notes).await.unwrap();
    let index = store
        .get(&reports_bucket, &ObjectKey::new("index.html").unwrap())
        .await
        .unwrap()
        .body;
    let index = String::from_utf8(index.to_vec()).unwrap();
    for o in list_all(&store, &reports_bucket, "").await.unwrap() {
        if o.key.as_str() != "index.html" {
            assert!(
                index.contains(&format!("href=\"./{}\"", o.key)),
                "index misses {}",
                o.key
            );
        }
    }
    // An unchanged rerun on S3 is skipped stage by stage, from the manifests, without
    // reading a single input file.
    let again = run_with_env("monthly-report", &json, &env, "aws");
    assert_success(&again);
    let doc = run_summary(&again);
    let skipped = summary_month(&doc, "2019-01")["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "skipped_unchanged")
        .count();
    assert_eq!(skipped, 4, "{doc:#}");
    assert!(
        s3_requests(&doc) <= listing_pages + RERUN_OVERHEAD_REQUESTS,
        "{}",
        doc["requests"]
    );

    // The notify stage alerted the trash topic on SNS: read back what moto recorded.
    let (status, state) = http_get(&format!("{sns_endpoint}/moto-api/data.json"));
    assert_eq!(status, 200);
    let dumping = sample.truth.service_counts["Illegal Dumping"];
    let message = format!("Trash violations count is now {dumping} for 2019-01");
    assert!(
        String::from_utf8_lossy(&state).contains(&message),
        "moto has no {message:?}"
    );

    let work_bucket = BucketName::new(work).unwrap();
    let quarantine = list_all(&store, &work_bucket, "quarantine/2019/jan/")
        .await
        .unwrap();
    assert_eq!(
        quarantine.len(),
        1,
        "the dirty part's rows are quarantined: {quarantine:?}"
    );
}
