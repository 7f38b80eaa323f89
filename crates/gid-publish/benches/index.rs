//! The site index for a bucket of 10k objects (about 35 years of months with their report
//! files, or a long backfill with per-month extras):
//!
//! - `index/entries_10k`: the `IndexEntry` list (a relative, percent-encoded link per key);
//! - `index/index_html_10k`: rendering `index.html` from the entries;
//! - `index/rebuild_index_local_10k`: [`ReportSite::rebuild_index`] on the local backend —
//!   list every object (with its metadata sidecar), sort newest month first, render, put.
//!
//! `cargo bench -p gid-publish` measures; under `cargo test --all-targets` criterion runs
//! each routine once on 100 objects so tests stay quick.

// criterion_main! defines an undocumented `pub fn main`: a bench has no API to document.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gid_core::{BucketName, Layout, ObjectKey, SiteAccess};
use gid_publish::{index_html, relative_href, IndexEntry, ReportSite, SiteSettings};
use gid_storage::{BucketAdmin, LocalStore, ObjectStore, PutOptions};

/// `cargo bench` passes `--bench`; `cargo test` runs benches without it.
fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const FILES: [&str; 4] = [
    "final_report.csv",
    "final_report.html",
    "chart.html",
    "scooter pickups (draft).csv",
];

/// `n` keys shaped like the site's: `2019/jan/final_report.csv`, …
fn keys(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let file = FILES[i % FILES.len()];
            let month = MONTHS[(i / FILES.len()) % 12];
            let year = 1990 + (i / (FILES.len() * 12)) % 60;
            let extra = i / (FILES.len() * 12 * 60);
            if extra == 0 {
                format!("{year}/{month}/{file}")
            } else {
                format!("{year}/{month}/extra-{extra}/{file}")
            }
        })
        .collect()
}

fn entries(keys: &[String]) -> Vec<IndexEntry> {
    let when = Utc.with_ymd_and_hms(2019, 2, 2, 6, 0, 0).unwrap();
    keys.iter()
        .enumerate()
        .map(|(i, key)| IndexEntry {
            key: key.clone(),
            href: relative_href(key),
            last_modified: when,
            size: 1_000 + i as u64 * 37,
        })
        .collect()
}

fn bench_index(c: &mut Criterion) {
    let n = if benchmarking() { 10_000 } else { 100 };
    let keys = keys(n);
    let mut group = c.benchmark_group("index");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(n as u64));

    group.bench_function("entries_10k", |b| b.iter(|| entries(&keys).len()));
    let list = entries(&keys);
    group.bench_function("index_html_10k", |b| {
        b.iter(|| {
            index_html(
                "Get It Done reports",
                &gid_publish::SiteHeader::default(),
                &list,
            )
            .len()
        })
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = LocalStore::new(dir.path());
    let bucket = BucketName::new("gid-reports").expect("valid bucket");
    runtime.block_on(async {
        store.create_bucket(&bucket).await.expect("bucket");
        for key in &keys {
            let key = ObjectKey::new(key.clone()).expect("valid key");
            store
                .put(
                    &bucket,
                    &key,
                    Bytes::from_static(b"x"),
                    &PutOptions::new("text/csv"),
                )
                .await
                .expect("put");
        }
    });
    let site = ReportSite::new(
        &store,
        bucket,
        Layout::new("{year}/{mon}/").expect("valid layout"),
        SiteSettings {
            access: SiteAccess::BucketPolicy,
            presign_expires: Duration::from_secs(3600),
            index_cache_control: "max-age=60".into(),
            report_cache_control: "max-age=300".into(),
        },
    );
    group.sample_size(10);
    group.bench_function("rebuild_index_local_10k", |b| {
        b.iter(|| runtime.block_on(site.rebuild_index()).expect("index"))
    });
    group.finish();
}

criterion_group!(benches, bench_index);
criterion_main!(benches);
