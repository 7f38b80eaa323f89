//! The behaviour every [`ObjectStore`] backend must share, as one suite of checks.
//!
//! Backends call [`run_all`] from their own tests (the local backend on a temp folder,
//! the S3 backend against moto_server), so "local and AWS behave the same" is a tested
//! property rather than a hope. Each check panics with a message naming what differed.

use std::time::Duration;

use bytes::Bytes;
use gid_core::{Acl, BucketName, ObjectKey};

use crate::{list_all, Backend, PutCondition, PutOptions, StorageError};

fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).expect("suite keys are valid")
}

/// Runs every check against `store`, using (and finally deleting) `bucket`, which must
/// not exist yet or be empty.
pub async fn run_all(store: &dyn Backend, bucket: &BucketName) {
    buckets_are_created_idempotently_and_listed(store, bucket).await;
    put_then_get_round_trips_bytes_and_headers(store, bucket).await;
    files_stream_up_and_down_unchanged(store, bucket).await;
    missing_objects_are_not_found(store, bucket).await;
    listing_is_ordered_prefixed_and_paginated(store, bucket).await;
    acls_are_stored_and_returned(store, bucket).await;
    conditional_puts_refuse_stale_writers(store, bucket).await;
    presigned_urls_name_the_object(store, bucket).await;
    deletes_are_idempotent_and_batchable(store, bucket).await;
    only_empty_buckets_can_be_deleted(store, bucket).await;
}

/// Creating a bucket twice is fine, and the listing shows it.
pub async fn buckets_are_created_idempotently_and_listed(store: &dyn Backend, bucket: &BucketName) {
    store.create_bucket(bucket).await.expect("create bucket");
    store
        .create_bucket(bucket)
        .await
        .expect("create bucket again is a no-op");
    let buckets = store.list_buckets().await.expect("list buckets");
    assert!(
        buckets.iter().any(|b| &b.name == bucket),
        "{bucket} missing from {buckets:?}"
    );
}

/// Bytes, content type and cache control come back as they were put.
pub async fn put_then_get_round_trips_bytes_and_headers(store: &dyn Backend, bucket: &BucketName) {
    let k = key("rt/report.csv");
    let body = Bytes::from_static(b"service_name,request_count\nPothole,3\n");
    let options = PutOptions::new("text/csv; charset=utf-8").with_cache_control("max-age=60");
    let written = store
        .put(bucket, &k, body.clone(), &options)
        .await
        .expect("put");
    assert_eq!(written.key, k);
    assert_eq!(
        written.size,
        body.len() as u64,
        "the put answers with the size"
    );
    let etag = written.etag;
    let got = store.get(bucket, &k).await.expect("get");
    assert_eq!(got.body, body, "bytes differ after round trip");
    assert_eq!(got.meta.size, body.len() as u64);
    assert_eq!(got.meta.etag, etag, "get returns the put's ETag");
    let head = store.head(bucket, &k).await.expect("head");
    assert_eq!(
        head.content_type.as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(head.cache_control.as_deref(), Some("max-age=60"));
    assert_eq!(head.size, body.len() as u64);
    let etag2 = store
        .put(bucket, &k, Bytes::from_static(b"changed"), &options)
        .await
        .expect("overwrite")
        .etag;
    assert_ne!(etag, etag2, "ETag changes with content");
    store.delete(bucket, &k).await.expect("cleanup");
}

/// `put_file` and `download_to_file` (through `get_stream`) move a file of several chunks
/// byte for byte; a download replaces its target whole, and a failed one leaves the target
/// and its folder as they were.
pub async fn files_stream_up_and_down_unchanged(store: &dyn Backend, bucket: &BucketName) {
    // Unique per run: several backends run the suite at once in one test process.
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "gid-conformance-{}-{run}-{bucket}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let source = dir.join("upload.bin");
    std::fs::write(&source, &bytes).expect("source file");
    let k = key("files/upload.bin");
    let options = PutOptions::new("application/octet-stream");
    let written = store
        .put_file(bucket, &k, &source, &options)
        .await
        .expect("put_file");
    assert_eq!(written.size, bytes.len() as u64);
    use md5::Digest;
    let md5 = hex::encode(md5::Md5::digest(&bytes));
    assert_eq!(written.etag, md5, "a single-part upload's ETag is its MD5");
    assert_eq!(store.head(bucket, &k).await.expect("head").etag, md5);

    let target = dir.join("download.bin");
    std::fs::write(&target, b"old").expect("existing target");
    let meta = crate::download_to_file(store, bucket, &k, &target)
        .await
        .expect("download");
    assert_eq!(meta.size, bytes.len() as u64);
    assert!(
        std::fs::read(&target).expect("target") == bytes,
        "bytes differ after download"
    );
    let missing = crate::download_to_file(store, bucket, &key("files/missing.bin"), &target)
        .await
        .expect_err("missing object");
    assert!(missing.is_not_found(), "{missing}");
    assert!(
        std::fs::read(&target).expect("target") == bytes,
        "a failed download changed the target"
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .expect("scratch folder")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 2, "temporary files left behind: {names:?}");

    let err = store
        .put_file(
            bucket,
            &key("files/none.bin"),
            &dir.join("none.bin"),
            &options,
        )
        .await
        .expect_err("a missing source file");
    assert!(err.to_string().contains("none.bin"), "{err}");
    store.delete(bucket, &k).await.expect("cleanup");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// A get or head of a key that is not there is `NoSuchKey`, in any bucket.
pub async fn missing_objects_are_not_found(store: &dyn Backend, bucket: &BucketName) {
    let k = key("nope/missing.csv");
    let err = store
        .get(bucket, &k)
        .await
        .expect_err("get of a missing key");
    assert!(matches!(err, StorageError::NoSuchKey { .. }), "{err:?}");
    let err = store
        .head(bucket, &k)
        .await
        .expect_err("head of a missing key");
    assert!(err.is_not_found(), "{err:?}");
    let other = BucketName::new("gid-no-such-bucket-xyz").unwrap();
    let err = store.get(&other, &k).await.expect_err("missing bucket");
    assert!(err.is_not_found(), "{err:?}");
}

/// Listings come in key order, filtered by prefix, page by page.
pub async fn listing_is_ordered_prefixed_and_paginated(store: &dyn Backend, bucket: &BucketName) {
    let mut expected = Vec::new();
    for i in (0..25).rev() {
        let k = key(&format!("list/2019/jan/part-{i:03}.csv"));
        store
            .put(
                bucket,
                &k,
                Bytes::from(vec![b'x'; i]),
                &PutOptions::new("text/csv"),
            )
            .await
            .expect("put for listing");
        expected.push(k.to_string());
    }
    store
        .put(
            bucket,
            &key("list/2019/feb/other.csv"),
            Bytes::new(),
            &PutOptions::new("text/csv"),
        )
        .await
        .expect("put outside prefix");
    expected.sort();

    let mut pages = Vec::new();
    let mut continuation = None;
    loop {
        let page = store
            .list_page(bucket, "list/2019/jan/", continuation, 10)
            .await
            .expect("list page");
        pages.push(
            page.objects
                .iter()
                .map(|o| o.key.to_string())
                .collect::<Vec<_>>(),
        );
        match page.next {
            Some(t) => continuation = Some(t),
            None => break,
        }
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [10, 10, 5], "pages of 10 over 25 keys");
    assert_eq!(
        pages.concat(),
        expected,
        "pages concatenate to the ordered key set"
    );

    let all = list_all(store, bucket, "list/").await.expect("list all");
    assert_eq!(all.len(), 26);
    let one = all
        .iter()
        .find(|o| o.key.as_str().ends_with("part-007.csv"))
        .unwrap();
    assert_eq!(one.size, 7, "listing reports sizes");
    assert!(list_all(store, bucket, "list/2020/")
        .await
        .unwrap()
        .is_empty());

    let keys: Vec<ObjectKey> = all.into_iter().map(|o| o.key).collect();
    store.delete_many(bucket, &keys).await.expect("cleanup");
}

/// A canned ACL given on put is what the object's ACL reads back.
pub async fn acls_are_stored_and_returned(store: &dyn Backend, bucket: &BucketName) {
    let k = key("acl/public.html");
    let options = PutOptions::new("text/html").with_acl(Some(Acl::PublicRead));
    store
        .put(bucket, &k, Bytes::from_static(b"<p>hi</p>"), &options)
        .await
        .expect("put");
    assert_eq!(
        store.get_acl(bucket, &k).await.expect("get acl"),
        Acl::PublicRead
    );
    store
        .put_acl(bucket, &k, Acl::Private)
        .await
        .expect("put acl");
    assert_eq!(
        store.get_acl(bucket, &k).await.expect("get acl"),
        Acl::Private
    );
    let private = key("acl/private.html");
    store
        .put(
            bucket,
            &private,
            Bytes::from_static(b"x"),
            &PutOptions::new("text/html"),
        )
        .await
        .expect("put");
    assert_eq!(store.get_acl(bucket, &private).await.unwrap(), Acl::Private);
    store
        .delete_many(bucket, &[k, private])
        .await
        .expect("cleanup");
}

/// `If-None-Match` and `If-Match` puts refuse a writer whose view is stale.
pub async fn conditional_puts_refuse_stale_writers(store: &dyn Backend, bucket: &BucketName) {
    let k = key("cond/ledger.json");
    let create = PutOptions::new("application/json").with_condition(PutCondition::IfNoneMatch);
    let etag = store
        .put(bucket, &k, Bytes::from_static(b"[1]"), &create)
        .await
        .expect("create")
        .etag;
    let err = store
        .put(bucket, &k, Bytes::from_static(b"[2]"), &create)
        .await
        .expect_err("second create must fail");
    assert!(
        matches!(err, StorageError::PreconditionFailed { .. }),
        "{err:?}"
    );

    let stale = PutOptions::new("application/json").with_condition(PutCondition::IfMatch(
        "0123456789abcdef0123456789abcdef".into(),
    ));
    let err = store
        .put(bucket, &k, Bytes::from_static(b"[3]"), &stale)
        .await
        .expect_err("stale If-Match must fail");
    assert!(
        matches!(err, StorageError::PreconditionFailed { .. }),
        "{err:?}"
    );

    let fresh = PutOptions::new("application/json").with_condition(PutCondition::IfMatch(etag));
    store
        .put(bucket, &k, Bytes::from_static(b"[4]"), &fresh)
        .await
        .expect("fresh If-Match");
    assert_eq!(
        store.get(bucket, &k).await.unwrap().body,
        Bytes::from_static(b"[4]")
    );
    store.delete(bucket, &k).await.expect("cleanup");
}

/// Public and presigned URLs name the bucket and key.
pub async fn presigned_urls_name_the_object(store: &dyn Backend, bucket: &BucketName) {
    let k = key("presign/final report.csv");
    store
        .put(
            bucket,
            &k,
            Bytes::from_static(b"a"),
            &PutOptions::new("text/csv"),
        )
        .await
        .expect("put");
    let url = store
        .presign_get(bucket, &k, Duration::from_secs(3600))
        .await
        .expect("presign");
    assert!(url.contains("final%20report.csv"), "{url}");
    store.delete(bucket, &k).await.expect("cleanup");
}

/// Deleting a missing key succeeds; `delete_many` deletes each key given.
pub async fn deletes_are_idempotent_and_batchable(store: &dyn Backend, bucket: &BucketName) {
    let keys: Vec<ObjectKey> = (0..5).map(|i| key(&format!("del/{i}.txt"))).collect();
    for k in &keys {
        store
            .put(
                bucket,
                k,
                Bytes::from_static(b"x"),
                &PutOptions::new("text/plain"),
            )
            .await
            .expect("put");
    }
    store.delete(bucket, &keys[0]).await.expect("delete");
    store
        .delete(bucket, &keys[0])
        .await
        .expect("deleting twice succeeds");
    store
        .delete_many(bucket, &keys)
        .await
        .expect("delete many, one already gone");
    assert!(list_all(store, bucket, "del/").await.unwrap().is_empty());
}

/// Deleting a bucket that holds objects is `BucketNotEmpty`.
pub async fn only_empty_buckets_can_be_deleted(store: &dyn Backend, bucket: &BucketName) {
    let k = key("last.txt");
    store
        .put(
            bucket,
            &k,
            Bytes::from_static(b"x"),
            &PutOptions::new("text/plain"),
        )
        .await
        .expect("put");
    let err = store
        .delete_bucket(bucket)
        .await
        .expect_err("non-empty bucket");
    assert!(
        matches!(err, StorageError::BucketNotEmpty { .. }),
        "{err:?}"
    );
    store.delete(bucket, &k).await.expect("empty it");
    store
        .delete_bucket(bucket)
        .await
        .expect("delete empty bucket");
    let buckets = store.list_buckets().await.expect("list buckets");
    assert!(
        !buckets.iter().any(|b| &b.name == bucket),
        "bucket still listed"
    );
}
