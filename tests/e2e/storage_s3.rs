//! The S3 backend: the shared conformance suite against moto_server, multipart uploads and
//! resumed downloads (through the fault proxy), and the behaviours moto does not emulate
//! (ACL-less buckets, throttling, presign signatures) against a stub endpoint that answers
//! like S3.

use std::time::Duration;

use bytes::Bytes;
use gid_core::{Acl, BucketName, ObjectKey};
use gid_e2e::fault_proxy::{Fault, FaultProxy, ProxyRequest, Rule};
use gid_e2e::{moto_endpoint, unique, StubResponse, StubServer};
use gid_storage::{
    conformance, BucketAdmin, MultipartSettings, ObjectStore, PutOptions, S3Settings, S3Store,
    StorageError, UrlSigner,
};

fn settings(endpoint: String, max_attempts: u32) -> S3Settings {
    S3Settings {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint),
        force_path_style: None,
        checksums_when_required: false,
        max_attempts,
        operation_timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

fn bucket() -> BucketName {
    BucketName::new("gid-stub").unwrap()
}

fn key() -> ObjectKey {
    ObjectKey::new("2019/jan/final_report.csv").unwrap()
}

#[tokio::test]
async fn s3_backend_passes_the_conformance_suite_on_moto() {
    let store = S3Store::connect(&settings(moto_endpoint(), 3))
        .await
        .expect("AWS configuration");
    let bucket = BucketName::new(unique("gid-conformance")).unwrap();
    conformance::run_all(&store, &bucket).await;
}

#[tokio::test]
async fn public_read_objects_are_readable_anonymously_and_private_ones_are_not() {
    let store = S3Store::connect(&settings(moto_endpoint(), 3))
        .await
        .expect("AWS configuration");
    let bucket = BucketName::new(unique("gid-anon")).unwrap();
    store.create_bucket(&bucket).await.unwrap();
    let public = ObjectKey::new("public.csv").unwrap();
    let private = ObjectKey::new("private.csv").unwrap();
    let options = PutOptions::new("text/csv").with_acl(Some(Acl::PublicRead));
    store
        .put(&bucket, &public, Bytes::from_static(b"a,b\n"), &options)
        .await
        .unwrap();
    store
        .put(
            &bucket,
            &private,
            Bytes::from_static(b"secret"),
            &options.clone().with_acl(None),
        )
        .await
        .unwrap();
    let base = moto_endpoint();
    let (status, body) = gid_e2e::http_get(&format!("{base}/{bucket}/public.csv"));
    assert_eq!((status, body.as_slice()), (200, b"a,b\n".as_slice()));
    let (status, _) = gid_e2e::http_get(&format!("{base}/{bucket}/private.csv"));
    assert_eq!(status, 403, "a private object is not readable anonymously");
}

#[tokio::test]
async fn a_bucket_without_acls_is_reported_as_acl_not_supported() {
    let stub = StubServer::start(vec![StubResponse::s3_error(
        400,
        "AccessControlListNotSupported",
        "The bucket does not allow ACLs",
    )]);
    let store = S3Store::connect(&settings(stub.endpoint.clone(), 3))
        .await
        .expect("AWS configuration");
    let options = PutOptions::new("text/csv").with_acl(Some(Acl::PublicRead));
    let err = store
        .put(&bucket(), &key(), Bytes::from_static(b"x"), &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StorageError::AclNotSupported { .. }),
        "{err:?}"
    );
    let sent = stub.requests();
    assert_eq!(sent.len(), 1, "a client error is not retried");
    assert_eq!(sent[0].header("x-amz-acl"), Some("public-read"));
}

#[tokio::test]
async fn delete_objects_carries_the_content_md5_s3_compatible_stores_require() {
    use md5::Digest;
    for checksums_when_required in [false, true] {
        let stub = StubServer::start(vec![StubResponse::ok(
            &[("content-type", "application/xml")],
            "<DeleteResult></DeleteResult>",
        )]);
        let store = S3Store::connect(&S3Settings {
            checksums_when_required,
            ..settings(stub.endpoint.clone(), 1)
        })
        .await
        .expect("AWS configuration");
        let keys = [key(), ObjectKey::new("2019/jan/chart.html").unwrap()];
        store.delete_many(&bucket(), &keys).await.unwrap();
        let sent = stub.requests();
        assert_eq!(sent.len(), 1);
        let expected = aws_smithy_types::base64::encode(md5::Md5::digest(&sent[0].body));
        assert_eq!(
            sent[0].header("content-md5"),
            Some(expected.as_str()),
            "checksums_when_required = {checksums_when_required}"
        );
    }
}

#[tokio::test]
async fn a_listing_skips_an_object_whose_key_gid_refuses_and_keeps_the_rest() {
    // Someone uploaded `2019/jan/a\b.csv` with another tool: a backslash is refused as a
    // key (it reads as a path separator on the local backend), but one stray upload must
    // not fail the month's ingest or the site index.
    let listing = |key: &str| {
        format!(
            "<Contents><Key>{key}</Key><LastModified>2019-02-01T00:00:00.000Z</LastModified>\
             <ETag>&quot;e&quot;</ETag><Size>4</Size></Contents>"
        )
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <Name>gid-stub</Name><Prefix>2019/jan/</Prefix><KeyCount>3</KeyCount>\
         <MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{}{}{}</ListBucketResult>",
        listing("2019/jan/a.csv"),
        listing("2019/jan/a\\b.csv"),
        listing("2019/jan/b.csv"),
    );
    let stub = StubServer::start(vec![StubResponse::ok(
        &[("Content-Type", "application/xml")],
        &body,
    )]);
    let store = S3Store::connect(&settings(stub.endpoint.clone(), 1))
        .await
        .expect("AWS configuration");
    let page = store
        .list_page(&bucket(), "2019/jan/", None, 1000)
        .await
        .unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["2019/jan/a.csv", "2019/jan/b.csv"]);
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_until_it_passes() {
    let stub = StubServer::start(vec![
        StubResponse::s3_error(503, "SlowDown", "Please reduce your request rate."),
        StubResponse::s3_error(500, "InternalError", "We encountered an internal error."),
        StubResponse::ok(&[("ETag", "\"0cc175b9c0f1b6a831c399e269772661\"")], ""),
    ]);
    let store = S3Store::connect(&settings(stub.endpoint.clone(), 4))
        .await
        .expect("AWS configuration");
    let etag = store
        .put(
            &bucket(),
            &key(),
            Bytes::from_static(b"a"),
            &PutOptions::new("text/csv"),
        )
        .await
        .unwrap()
        .etag;
    assert_eq!(etag, "0cc175b9c0f1b6a831c399e269772661");
    assert_eq!(stub.requests().len(), 3);
}

#[tokio::test]
async fn throttling_past_the_retry_budget_is_a_clear_transient_error() {
    let stub = StubServer::start(vec![StubResponse::s3_error(
        503,
        "SlowDown",
        "Please reduce your request rate.",
    )]);
    let store = S3Store::connect(&settings(stub.endpoint.clone(), 2))
        .await
        .expect("AWS configuration");
    let err = store.get(&bucket(), &key()).await.unwrap_err();
    match &err {
        StorageError::Service { kind, .. } => {
            assert!(kind.is_transient(), "{err}");
            assert_eq!(kind, &gid_core::FailureKind::Throttled, "{err}");
        }
        other => panic!("expected a service error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .contains("get s3://gid-stub/2019/jan/final_report.csv"),
        "{err}"
    );
    assert_eq!(stub.requests().len(), 2, "exactly the configured attempts");
}

#[tokio::test]
async fn presigned_urls_are_signed_for_the_requested_lifetime() {
    // moto accepts any signature, so check what the URL carries instead.
    let store = S3Store::connect(&settings(moto_endpoint(), 3))
        .await
        .expect("AWS configuration");
    let url = store
        .presign_get(&bucket(), &key(), Duration::from_secs(3600))
        .await
        .unwrap();
    for part in [
        "X-Amz-Expires=3600",
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "/gid-stub/2019/jan/final_report.csv",
    ] {
        assert!(url.contains(part), "{part} missing from {url}");
    }
    let err = store
        .presign_get(&bucket(), &key(), Duration::from_secs(8 * 24 * 3600))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("7 days"), "{err}");
}

/// A file of `mib` MiB whose every MiB differs from the others.
fn patterned_file(dir: &std::path::Path, mib: usize) -> (std::path::PathBuf, Vec<u8>) {
    let bytes: Vec<u8> = (0..mib * 1024 * 1024)
        .map(|i| ((i / 1024 / 1024) as u8).wrapping_mul(31) ^ (i % 253) as u8)
        .collect();
    let path = dir.join("large.bin");
    std::fs::write(&path, &bytes).unwrap();
    (path, bytes)
}

/// Uploads `source` as an opaque binary object.
async fn upload(
    store: &S3Store,
    bucket: &BucketName,
    key: &ObjectKey,
    source: &std::path::Path,
) -> Result<gid_storage::WrittenObject, StorageError> {
    store
        .put_file(
            bucket,
            key,
            source,
            &PutOptions::new("application/octet-stream"),
        )
        .await
}

fn multipart_store_settings(endpoint: String, max_attempts: u32) -> S3Settings {
    S3Settings {
        multipart: MultipartSettings {
            threshold_mib: 5,
            part_mib: 5,
        },
        ..settings(endpoint, max_attempts)
    }
}

/// The multipart uploads moto still holds for the bucket (unfinished ones are billed on S3).
fn open_uploads(bucket: &BucketName) -> usize {
    let (status, body) = gid_e2e::http_get(&format!("{}/{bucket}?uploads", moto_endpoint()));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8_lossy(&body).matches("<UploadId>").count()
}

#[tokio::test]
async fn a_file_above_the_threshold_goes_up_in_parts_and_comes_down_whole() {
    let store = S3Store::connect(&multipart_store_settings(moto_endpoint(), 3))
        .await
        .expect("AWS configuration");
    let bucket = BucketName::new(unique("gid-multipart")).unwrap();
    store.create_bucket(&bucket).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (source, bytes) = patterned_file(dir.path(), 12);
    let key = ObjectKey::new("exports/large.bin").unwrap();
    let written = upload(&store, &bucket, &key, &source).await.unwrap();
    assert!(
        written.etag.ends_with("-3"),
        "5 + 5 + 2 MiB parts: {}",
        written.etag
    );
    assert_eq!(written.size, bytes.len() as u64);
    let head = store.head(&bucket, &key).await.unwrap();
    assert_eq!(
        (head.size, head.etag.as_str()),
        (written.size, written.etag.as_str())
    );
    assert_eq!(
        head.content_type.as_deref(),
        Some("application/octet-stream")
    );
    let target = dir.path().join("back.bin");
    gid_storage::download_to_file(&store, &bucket, &key, &target)
        .await
        .unwrap();
    assert!(std::fs::read(&target).unwrap() == bytes, "bytes differ");
    assert_eq!(open_uploads(&bucket), 0);
}

#[tokio::test]
async fn a_failed_part_aborts_the_multipart_upload_so_no_parts_stay_stored() {
    let proxy = FaultProxy::start(
        &moto_endpoint(),
        vec![Rule::new(
            |r: &ProxyRequest| r.method == "PUT" && r.path.contains("partNumber=2"),
            Fault::InternalError,
        )],
    );
    let bucket = BucketName::new(unique("gid-multipart-abort")).unwrap();
    S3Store::connect(&settings(moto_endpoint(), 3))
        .await
        .expect("AWS configuration")
        .create_bucket(&bucket)
        .await
        .unwrap();
    let store = S3Store::connect(&multipart_store_settings(proxy.endpoint.clone(), 2))
        .await
        .expect("AWS configuration");
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = patterned_file(dir.path(), 12);
    let key = ObjectKey::new("exports/large.bin").unwrap();
    let err = upload(&store, &bucket, &key, &source).await.unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("s3://{bucket}/exports/large.bin"))
            && message.contains("the service failed (HTTP 500)"),
        "{message}"
    );
    assert_eq!(open_uploads(&bucket), 0, "the upload was aborted");
    assert!(store.head(&bucket, &key).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn a_download_whose_body_breaks_off_resumes_where_it_stopped() {
    let bucket = BucketName::new(unique("gid-resume")).unwrap();
    let direct = S3Store::connect(&settings(moto_endpoint(), 3))
        .await
        .expect("AWS configuration");
    direct.create_bucket(&bucket).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (source, bytes) = patterned_file(dir.path(), 3);
    let key = ObjectKey::new("large.bin").unwrap();
    upload(&direct, &bucket, &key, &source).await.unwrap();

    let get = |r: &ProxyRequest| r.method == "GET";
    let proxy = FaultProxy::start(
        &moto_endpoint(),
        vec![Rule::new(get, Fault::CloseMidBody).limit(1)],
    );
    let store = S3Store::connect(&settings(proxy.endpoint.clone(), 3))
        .await
        .expect("AWS configuration");
    let target = dir.path().join("back.bin");
    gid_storage::download_to_file(&store, &bucket, &key, &target)
        .await
        .unwrap();
    assert!(
        std::fs::read(&target).unwrap() == bytes,
        "bytes differ after resuming"
    );

    // A body that keeps breaking off ends in an error, and no file under the target's name.
    let proxy = FaultProxy::start(&moto_endpoint(), vec![Rule::new(get, Fault::CloseMidBody)]);
    let store = S3Store::connect(&settings(proxy.endpoint.clone(), 3))
        .await
        .expect("AWS configuration");
    let broken = dir.path().join("broken.bin");
    let err = gid_storage::download_to_file(&store, &bucket, &key, &broken)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("broke off before it was complete (3 attempt(s))"),
        "{err}"
    );
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["back.bin", "large.bin"], "no partial file is left");
}
