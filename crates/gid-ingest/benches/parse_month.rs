//! The ingest hot path on one generated month (8 files x 25k rows, ~32 MB, as `make bench`):
//!
//! - `parse_month/parse_export+combine`: every file through [`gid_ingest::parse_export`]
//!   (header checks, records, date normalisation) one after the other, then
//!   [`gid_ingest::combine`] (duplicate ids, the month's columns) — the CPU cost of a month
//!   on one core.
//! - `parse_month/ingest_month_local`: the whole source stage on the local backend (list,
//!   concurrent reads, parses on the blocking pool, concat), as monthly-report runs it.
//! - `parse_month/to_parquet`: serialising the month's table.
//! - `parse_month/ingest_month_keeping_parts`: `ingest_month_local` that also keeps each
//!   file's part (a full run with `ingest.part_min_bytes` below the files' size).
//! - `parse_month/ingest_month_from_parts`: the rerun of an unchanged month's ingest, every
//!   file taken from its part instead of parsed (what an incremental rerun does for the
//!   files that did not change).
//!
//! `cargo bench -p gid-ingest` measures; under `cargo test --all-targets` criterion runs
//! each routine once, and the month shrinks to 8 x 500 rows so tests stay quick.

// criterion_main! defines an undocumented `pub fn main`: a bench has no API to document.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gid_core::{BucketName, Layout, Month, ObjectKey, OutOfMonth, WorkKeys};
use gid_ingest::{
    combine, parse_export, ExportRules, FileParts, IngestSource, ParsedFile, PreviousIngest,
    SourcedExport,
};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{BucketAdmin, LocalStore, ObjectStore, PutOptions};
use polars_core::prelude::DataFrame;

/// `cargo bench` passes `--bench`; `cargo test` runs benches without it.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn month_files() -> (Month, Vec<(ObjectKey, Bytes)>) {
    let month: Month = "2019-01".parse().expect("valid month");
    let rows = if benchmarking() { 25_000 } else { 500 };
    let spec = SampleSpec {
        files_per_month: 8,
        rows_per_file: rows,
        dirty: true,
        seed: 2019,
    };
    let files = generate_month(month, &spec)
        .files
        .into_iter()
        .map(|f| {
            let key = ObjectKey::new(format!("2019/jan/{}", f.name)).expect("valid key");
            (key, Bytes::from(f.bytes))
        })
        .collect();
    (month, files)
}

fn rules(month: Month) -> ExportRules {
    ExportRules::new(
        ["service_request_id", "date_requested", "service_name"],
        1000,
        OutOfMonth::Quarantine,
    )
    .in_month(month)
}

/// Every file through `parse_export`, then `combine` (what ingest does per month).
fn parse_and_combine(month: Month, files: &[(ObjectKey, Bytes)]) -> DataFrame {
    let rules = rules(month);
    let exports: Vec<_> = files
        .iter()
        .filter_map(
            |(key, bytes)| match parse_export(key, bytes.clone(), &rules) {
                ParsedFile::Export(export) => Some(SourcedExport {
                    key: key.clone(),
                    last_modified: chrono::DateTime::UNIX_EPOCH,
                    rows: export.rows,
                }),
                ParsedFile::Skipped(_) => None,
            },
        )
        .collect();
    combine(exports).expect("combines").frame
}

fn bench_month(c: &mut Criterion) {
    let (month, files) = month_files();
    let bytes: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    let mut group = c.benchmark_group("parse_month");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Bytes(bytes));

    group.bench_function("parse_export+combine", |b| {
        b.iter(|| parse_and_combine(month, &files).height())
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::new(dir.path());
    let bucket = BucketName::new("gid-requests").expect("valid bucket");
    runtime.block_on(async {
        store.create_bucket(&bucket).await.expect("bucket");
        for (key, body) in &files {
            store
                .put(&bucket, key, body.clone(), &PutOptions::new("text/csv"))
                .await
                .expect("put");
        }
    });
    let source = IngestSource {
        bucket: bucket.clone(),
        prefix: "2019/jan/".into(),
        suffix: ".csv".into(),
        concurrency: 8,
        max_inflight_bytes: 256 << 20,
        rules: rules(month),
    };
    group.bench_function("ingest_month_local", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let listing = gid_ingest::list_inputs(&store, &source)
                    .await
                    .expect("listing");
                gid_ingest::ingest_month(&store, &source, month, listing, &|_| {})
                    .await
                    .expect("ingest")
                    .report
                    .rows
            })
        })
    });

    let work = BucketName::new("gid-work").expect("valid bucket");
    runtime
        .block_on(store.create_bucket(&work))
        .expect("bucket");
    let layout = Layout::new("{year}/{mon}/").expect("valid layout");
    let parts = FileParts {
        bucket: work.clone(),
        keys: WorkKeys::new(&layout, month),
        month_prefix: layout.month_prefix(month),
        min_bytes: 0,
        fingerprint: "bench".into(),
    };
    let with_parts = |previous: &PreviousIngest| {
        runtime.block_on(async {
            let listing = gid_ingest::list_inputs(&store, &source)
                .await
                .expect("listing");
            gid_ingest::ingest_month_with_parts(
                &store,
                &source,
                month,
                listing,
                &parts,
                previous,
                &|_| {},
            )
            .await
            .expect("ingest")
        })
    };
    let none = PreviousIngest::none();
    group.bench_function("ingest_month_keeping_parts", |b| {
        b.iter(|| with_parts(&none).report.rows)
    });
    let mut first = with_parts(&none);
    runtime
        .block_on(gid_ingest::persist(&store, &work, &parts.keys, &mut first))
        .expect("persist");
    let previous = runtime
        .block_on(parts.previous(&store))
        .expect("previous ingest");
    group.bench_function("ingest_month_from_parts", |b| {
        b.iter(|| {
            let table = with_parts(&previous);
            assert_eq!(
                table.reused_files,
                files.len(),
                "every file, the empty one by its reason"
            );
            table.report.rows
        })
    });

    let table = parse_and_combine(month, &files);
    group.bench_function("to_parquet", |b| {
        b.iter_batched(
            || table.clone(),
            |mut frame| gid_ingest::to_parquet(&mut frame).expect("parquet").len(),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_month);
criterion_main!(benches);
