//! Backfills run months with bounded concurrency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gid_core::{Config, Month, MonthRange, Profile};
use gid_runs::{prepare_buckets, run_months, MonthRun, Progress, RunOptions, Stage};
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{Backend, InstrumentedStore, LocalStore, PutOptions};

#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Progress for InFlight {
    fn stage_started(&self, _month: Month, stage: Stage) {
        if stage == Stage::Ingest {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.max.fetch_max(now, Ordering::SeqCst);
        }
    }
    fn month_finished(&self, _month: Month, _ok: bool) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn backfill_with(jobs: usize) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::load(None, Some(Profile::Local), None).unwrap();
    config.local.data_root = dir.path().to_owned();
    let layout = config.layout().unwrap();
    let local: Arc<dyn Backend> = Arc::new(LocalStore::new(dir.path()));
    let spec = SampleSpec {
        rows_per_file: 20,
        ..SampleSpec::default()
    };
    let months: Vec<Month> =
        MonthRange::new("2019-01".parse().unwrap(), "2019-06".parse().unwrap())
            .unwrap()
            .months()
            .collect();
    local.create_bucket(&config.buckets.requests).await.unwrap();
    for &month in &months {
        for file in generate_month(month, &spec).files {
            let key = layout.month_key(month, &file.name);
            local
                .put(
                    &config.buckets.requests,
                    &key,
                    Bytes::from(file.bytes),
                    &PutOptions::new("text/csv"),
                )
                .await
                .unwrap();
        }
    }
    // Slow requests make months overlap whenever the bound allows it.
    let store: Arc<dyn Backend> =
        Arc::new(InstrumentedStore::new(local).with_latency(Duration::from_millis(20)));
    prepare_buckets(&config, store.as_ref()).await.unwrap();
    let outbox = Arc::new(gid_notify::LocalOutbox::new(dir.path().join("outbox")));
    let run = MonthRun::new(config, store, RunOptions::default())
        .unwrap()
        .with_notifier(outbox);
    let progress = InFlight::default();
    let results = run_months(&run, &months, &Stage::ALL, jobs, &progress).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        results.iter().map(|r| r.month).collect::<Vec<_>>(),
        months,
        "calendar order"
    );
    progress.max.load(Ordering::SeqCst)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_never_run_more_months_at_once_than_jobs() {
    assert_eq!(backfill_with(1).await, 1);
    assert_eq!(
        backfill_with(3).await,
        3,
        "three slow months overlap under --jobs 3"
    );
}
