//! Per-file parts: a rerun takes unchanged files from the parts the last run kept, reads
//! the changed ones, and builds the same month as a run from scratch.

use bytes::Bytes;
use gid_core::{BucketName, Layout, Month, ObjectKey, OutOfMonth, WorkKeys};
use gid_ingest::{
    ingest_month, ingest_month_with_parts, list_inputs, load_table, persist, ExportRules,
    FileParts, IngestSource, MonthTable, PreviousIngest,
};
use gid_storage::{BucketAdmin, LocalStore, ObjectStore, PutOptions};
use polars_core::prelude::DataFrame;

const HEADER: &str = "service_request_id,date_requested,service_name";

fn month() -> Month {
    "2019-01".parse().unwrap()
}

fn requests() -> BucketName {
    BucketName::new("gid-requests").unwrap()
}

fn work() -> BucketName {
    BucketName::new("gid-work").unwrap()
}

fn parts() -> FileParts {
    let layout = Layout::new("{year}/{mon}/").unwrap();
    FileParts {
        bucket: work(),
        keys: WorkKeys::new(&layout, month()),
        month_prefix: layout.month_prefix(month()),
        min_bytes: 0,
        fingerprint: "test".into(),
    }
}

async fn put(store: &LocalStore, name: &str, text: &str) {
    let key = ObjectKey::new(format!("2019/jan/{name}")).unwrap();
    let body = Bytes::from(text.to_owned());
    store
        .put(&requests(), &key, body, &PutOptions::new("text/csv"))
        .await
        .unwrap();
}

/// One ingest of the month as the stage runs it (`reuse`: look at what the last run kept).
async fn ingest(store: &LocalStore, reuse: bool) -> MonthTable {
    let mut table = read(store, reuse).await;
    persist(store, &work(), &parts().keys, &mut table)
        .await
        .unwrap();
    table
}

/// The month read, not yet persisted.
async fn read(store: &LocalStore, reuse: bool) -> MonthTable {
    let source = source();
    let parts = parts();
    let previous = if reuse {
        parts.previous(store).await.unwrap()
    } else {
        PreviousIngest::none()
    };
    let listing = list_inputs(store, &source).await.unwrap();
    ingest_month_with_parts(store, &source, month(), listing, &parts, &previous, &|_| {})
        .await
        .unwrap()
}

fn source() -> IngestSource {
    IngestSource {
        bucket: requests(),
        prefix: "2019/jan/".into(),
        suffix: ".csv".into(),
        concurrency: 4,
        max_inflight_bytes: 256 << 20,
        rules: ExportRules::new(
            ["service_request_id", "date_requested", "service_name"],
            1000,
            OutOfMonth::Quarantine,
        ),
    }
}

/// Persists the month and reads its table back.
async fn persisted(store: &LocalStore, table: &mut MonthTable) -> DataFrame {
    let keys = parts().keys;
    persist(store, &work(), &keys, table).await.unwrap();
    load_table(store, &work(), &keys).await.unwrap()
}

/// The month as a run without parts reads it: combined as a table.
async fn combined(store: &LocalStore) -> DataFrame {
    let source = source();
    let listing = list_inputs(store, &source).await.unwrap();
    let table = ingest_month(store, &source, month(), listing, &|_| {})
        .await
        .unwrap();
    assert!(table.tally.is_none(), "without parts nothing is streamed");
    table.frame.expect("combined")
}

#[tokio::test]
async fn a_month_whose_files_all_have_parts_is_streamed_and_persists_the_combined_table() {
    let (_dir, store) = store().await;
    let expected = combined(&store).await;
    let mut first = read(&store, true).await;
    assert!(first.frame.is_none(), "streamed: the table is never built");
    assert_eq!(
        first.parts_in_order.as_ref().map(Vec::len),
        Some(3),
        "every file has a part and none lost rows"
    );
    assert_eq!(first.report.rows, 4);
    let tally = first.tally.take().expect("counted as read");
    assert_eq!(
        tally.finish(month()),
        gid_aggregate::summarise(month(), &expected).unwrap()
    );
    assert!(persisted(&store, &mut first)
        .await
        .equals_missing(&expected));

    // Taken from the parts the first run kept: streamed again.
    let mut rerun = read(&store, true).await;
    assert_eq!(rerun.reused_files, 3);
    assert!(rerun.frame.is_none());
    assert_eq!(rerun.parts_in_order.as_ref().map(Vec::len), Some(3));
    assert!(persisted(&store, &mut rerun)
        .await
        .equals_missing(&expected));

    // b.csv now repeats request 1: a.csv loses a row, so the month is combined as a table.
    put(
        &store,
        "b.csv",
        &format!("{HEADER}\n3,2019-01-07,Pothole\n1,2019-01-05,Sidewalk\n"),
    )
    .await;
    let mut dropped = read(&store, true).await;
    assert_eq!(dropped.parts_in_order, None);
    assert!(dropped.tally.is_none());
    let frame = dropped.frame.clone().expect("combined");
    assert_eq!(frame.height(), 4);
    assert!(frame.equals_missing(&combined(&store).await));
    assert!(persisted(&store, &mut dropped).await.equals_missing(&frame));
}

async fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    for b in [requests(), work()] {
        store.create_bucket(&b).await.unwrap();
    }
    put(
        &store,
        "a.csv",
        &format!("{HEADER}\n1,2019-01-05,Pothole\n2,2019-01-06,Graffiti\n2,bad-date,Graffiti\n"),
    )
    .await;
    put(
        &store,
        "b.csv",
        &format!("{HEADER}\n3,2019-01-07,Pothole\n"),
    )
    .await;
    put(
        &store,
        "c.csv",
        &format!("{HEADER}\n4,2019-01-08,Pothole\n"),
    )
    .await;
    (dir, store)
}

#[tokio::test]
async fn a_rerun_takes_unchanged_files_from_their_parts_and_builds_the_month_a_full_run_builds() {
    let (_dir, store) = store().await;
    ingest(&store, true).await;
    // b.csv is re-delivered: request 3 re-filed, request 1 repeated (newer: this copy wins).
    put(
        &store,
        "b.csv",
        &format!("{HEADER}\n3,2019-01-07,Graffiti\n1,2019-01-05,Sidewalk\n"),
    )
    .await;

    let rerun = ingest(&store, true).await;
    assert_eq!(
        rerun.reused_files, 2,
        "a.csv and c.csv come from their parts"
    );
    let scratch = ingest(&store, false).await;
    assert_eq!(scratch.reused_files, 0);
    let (rerun_frame, scratch_frame) = (rerun.frame.unwrap(), scratch.frame.unwrap());
    assert!(
        rerun_frame.equals_missing(&scratch_frame),
        "{rerun_frame}\n{scratch_frame}"
    );
    assert_eq!(rerun.report, scratch.report);
    assert_eq!(rerun.report.quarantined, 1, "a.csv's bad row still counts");
}

#[tokio::test]
async fn a_part_that_is_gone_only_costs_its_files_download() {
    let (_dir, store) = store().await;
    let first = ingest(&store, true).await;
    let table = load_table(&store, &work(), &parts().keys).await.unwrap();
    let part = first.report.files[0].part.clone().unwrap();
    store
        .delete(&work(), &ObjectKey::new(part).unwrap())
        .await
        .unwrap();

    let rerun = ingest(&store, true).await;
    assert_eq!(
        rerun.reused_files, 2,
        "a.csv is read again, b and c are not"
    );
    let again = load_table(&store, &work(), &parts().keys).await.unwrap();
    assert!(again.equals_missing(&table));
    assert_eq!(rerun.report, first.report, "and its part is kept again");
}
