//! The runner's decisions — run, skip unchanged, resume, force, dry run, stop, a missing
//! input — on the in-memory store, without spawning a binary.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use gid_core::{BucketName, Config, Month, ObjectKey, Profile};
use gid_notify::LocalOutbox;
use gid_sample::{generate_month, SampleSpec};
use gid_storage::{list_all, Backend, MemoryStore, ObjectStore, PutOptions};

use super::*;

pub(super) fn january() -> Month {
    Month::new(2019, 1).unwrap()
}

pub(super) fn config(root: &Path) -> Config {
    // At run time when cargo runs the test: see gid-core's `repo_config_dir`.
    let repo_config = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../../config");
    let env = [
        ("GID__LOCAL__DATA_ROOT", root.join("data")),
        ("GID__NOTIFY__OUTBOX_DIR", root.join("outbox")),
    ]
    .map(|(k, v)| (OsString::from(k), v.into_os_string()))
    .into_iter()
    .chain([(
        OsString::from("GID__NOTIFY__ALLOW_UNSUBSCRIBED"),
        OsString::from("true"),
    )]);
    Config::load_with_env(Some(&repo_config), Some(Profile::Local), None, env).unwrap()
}

/// A data root with January's sample exports and the buckets a run writes to.
pub(super) async fn world(root: &Path) -> (Config, Arc<dyn Backend>) {
    let config = config(root);
    let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
    for bucket in [
        &config.buckets.requests,
        &config.buckets.work,
        &config.buckets.reports,
    ] {
        store.create_bucket(bucket).await.unwrap();
    }
    let spec = SampleSpec {
        files_per_month: 3,
        rows_per_file: 40,
        ..SampleSpec::default()
    };
    for file in generate_month(january(), &spec).files {
        put(
            store.as_ref(),
            &config.buckets.requests,
            &format!("2019/jan/{}", file.name),
            file.bytes,
        )
        .await;
    }
    (config, store)
}

pub(super) async fn put(store: &dyn ObjectStore, bucket: &BucketName, key: &str, body: Vec<u8>) {
    store
        .put(
            bucket,
            &ObjectKey::new(key).unwrap(),
            Bytes::from(body),
            &PutOptions::new("text/csv"),
        )
        .await
        .unwrap();
}

pub(super) fn runner(config: &Config, store: &Arc<dyn Backend>, options: RunOptions) -> MonthRun {
    let outbox = Arc::new(LocalOutbox::new(&config.notify.outbox_dir));
    MonthRun::new(config.clone(), Arc::clone(store), options)
        .unwrap()
        .with_notifier(outbox)
}

async fn run(config: &Config, store: &Arc<dyn Backend>, options: RunOptions) -> MonthOutcome {
    runner(config, store, options)
        .run_month(january(), &Stage::ALL, &())
        .await
}

/// Each stage's outcome in a word: ran, unchanged, resume or planned.
pub(super) fn kinds(outcome: &MonthOutcome) -> Vec<(Stage, &'static str)> {
    outcome
        .stages
        .iter()
        .map(|s| {
            let kind = match s {
                StageOutcome::Skipped {
                    kind: SkipKind::Unchanged,
                    ..
                } => "unchanged",
                StageOutcome::Skipped {
                    kind: SkipKind::Resume,
                    ..
                } => "resume",
                StageOutcome::Planned { .. } => "planned",
                _ => "ran",
            };
            (s.stage(), kind)
        })
        .collect()
}

/// What the stage plans in a dry run of January, with nothing run before.
pub(super) async fn plan_of<S: runner::StageRun>(stage: &S) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = world(dir.path()).await;
    let run = runner(&config, &store, RunOptions::default());
    let ctx = MonthContext::new(&run, january(), &());
    match stage.plan(&ctx).await.unwrap() {
        StageOutcome::Planned {
            stage,
            reads,
            writes,
        } => {
            assert_eq!(stage, S::STAGE);
            (reads, writes)
        }
        other => panic!("{other:?}"),
    }
}

/// Asserts that `ours` (a change to the stage's own settings) changes the stage's config
/// hash, so the stage reruns, and `theirs` (another stage's settings) does not.
pub(super) fn assert_hash_follows<S: runner::StageRun>(
    stage: &S,
    ours: impl Fn(&mut Config),
    theirs: impl Fn(&mut Config),
) {
    let dir = tempfile::tempdir().unwrap();
    let base = config(dir.path());
    let hash_with = |change: &dyn Fn(&mut Config)| {
        let mut config = base.clone();
        change(&mut config);
        stage.config_hash(&config)
    };
    let before = stage.config_hash(&base);
    assert_ne!(hash_with(&ours), before, "a change to its own settings");
    assert_eq!(
        hash_with(&theirs),
        before,
        "a change to another stage's settings"
    );
}

fn all(kind: &'static str) -> Vec<(Stage, &'static str)> {
    Stage::ALL.iter().map(|s| (*s, kind)).collect()
}

#[tokio::test]
async fn a_rerun_skips_every_unchanged_stage_and_force_reruns_them() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = world(dir.path()).await;
    let first = run(&config, &store, RunOptions::default()).await;
    assert!(first.is_ok(), "{:?}", first.failure);
    assert_eq!(kinds(&first), all("ran"));

    let again = run(&config, &store, RunOptions::default()).await;
    assert_eq!(kinds(&again), all("unchanged"));

    let forced = run(
        &config,
        &store,
        RunOptions {
            force: true,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(kinds(&forced), all("ran"));
}

#[tokio::test]
async fn a_streamed_month_is_summarised_from_its_tallies_as_from_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, store) = world(dir.path()).await;
    // Every export gets a part: the month is streamed (its table never built) and
    // aggregate, in the same run, finishes the tallies ingest merged.
    config.ingest.part_min_bytes = 0;
    let stages = [Stage::Ingest, Stage::Aggregate];
    let outcome = runner(&config, &store, RunOptions::default())
        .run_month(january(), &stages, &())
        .await;
    assert!(outcome.is_ok(), "{:?}", outcome.failure);
    let keys = WorkKeys::new(&config.layout().unwrap(), january());
    let work = &config.buckets.work;
    let summary = store.get(work, &keys.summary()).await.unwrap().body;
    let streamed = gid_aggregate::MonthSummary::from_json("summary", &summary).unwrap();
    let table = gid_ingest::load_table(store.as_ref(), work, &keys)
        .await
        .unwrap();
    assert_eq!(
        streamed,
        gid_aggregate::summarise(january(), &table).unwrap()
    );
    assert_eq!(streamed.total_requests, table.height() as u64);
    assert!(streamed.total_requests > 100);
    let report = gid_ingest::load_report(store.as_ref(), work, &keys)
        .await
        .unwrap();
    assert_eq!(
        report.duplicates_dropped, 0,
        "no repeated id: the month was streamed"
    );
    assert!(report
        .files
        .iter()
        .filter(|f| f.skipped.is_none())
        .all(|f| f.part.is_some()));
}

#[tokio::test]
async fn a_changed_export_reruns_the_month_and_resume_does_not_look() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = world(dir.path()).await;
    let first = run(&config, &store, RunOptions::default()).await;
    let StageOutcome::Ingested(before) = &first.stages[0] else {
        panic!("{:?}", first.stages[0])
    };
    let extra = "service_request_id,service_name,date_requested\nx-1,Pothole,2019-01-05T08:00:00\n";
    put(
        store.as_ref(),
        &config.buckets.requests,
        "2019/jan/late.csv",
        extra.into(),
    )
    .await;

    // --resume trusts the manifests: the new file is not even listed.
    let resumed = run(
        &config,
        &store,
        RunOptions {
            resume: true,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(kinds(&resumed), all("resume"));

    let rerun = run(&config, &store, RunOptions::default()).await;
    assert_eq!(
        kinds(&rerun)[..3],
        all("ran")[..3],
        "ingest, aggregate, publish"
    );
    let StageOutcome::Ingested(ingested) = &rerun.stages[0] else {
        panic!("{:?}", rerun.stages[0])
    };
    assert_eq!(
        ingested.tally.files,
        before.tally.files + 1,
        "the late file is read"
    );
    assert_eq!(ingested.tally.rows, before.tally.rows + 1);
}

#[tokio::test]
async fn a_dry_run_plans_every_stage_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = world(dir.path()).await;
    let planned = run(
        &config,
        &store,
        RunOptions {
            dry_run: true,
            ..RunOptions::default()
        },
    )
    .await;
    assert!(planned.is_ok(), "{:?}", planned.failure);
    assert_eq!(kinds(&planned)[..3], all("planned")[..3]);
    for bucket in [&config.buckets.work, &config.buckets.reports] {
        let written = list_all(store.as_ref(), bucket, "").await.unwrap();
        assert!(written.is_empty(), "{bucket}: {written:?}");
    }
}

#[tokio::test]
async fn publish_alone_without_a_summary_names_the_stage_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = world(dir.path()).await;
    let outcome = runner(&config, &store, RunOptions::default())
        .run_month(january(), &[Stage::Publish], &())
        .await;
    let failure = outcome.failure.expect("no summary to publish");
    assert_eq!(failure.stage, Stage::Publish);
    assert!(
        matches!(
            failure.source,
            StageError::MissingInput {
                needs: Stage::Aggregate,
                ..
            }
        ),
        "{failure}"
    );
}

#[tokio::test]
async fn a_stop_requested_before_a_stage_ends_the_month_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = world(dir.path()).await;
    let shutdown = Shutdown::new();
    shutdown.request(StopReason::Terminate);
    let outcome = runner(&config, &store, RunOptions::default())
        .with_shutdown(shutdown)
        .run_month(january(), &Stage::ALL, &())
        .await;
    let failure = outcome.failure.expect("stopped");
    assert_eq!(failure.stage, Stage::Ingest);
    assert!(failure.source.is_interrupted(), "{failure}");
    assert!(outcome.stages.is_empty());
}

#[tokio::test]
async fn a_threshold_that_cannot_work_stops_the_run_before_any_month() {
    let dir = tempfile::tempdir().unwrap();
    let (mut config, store) = world(dir.path()).await;
    config.notify.thresholds[0].topic = "trash alerts!".into();
    let err = MonthRun::new(config, store, RunOptions::default()).unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains("notify.thresholds") && said.contains("trash alerts!"),
        "{said}"
    );
}

/// A computing stage that is asked to stop while it runs and would never end on its own.
struct StoppedWhileComputing;

impl runner::StageRun for StoppedWhileComputing {
    const STAGE: Stage = Stage::Aggregate;
    const ON_STOP: runner::OnStop = runner::OnStop::Abandon;
    type Found = ();

    fn config_hash(&self, _config: &Config) -> String {
        String::new()
    }

    async fn inputs(&self, _ctx: &MonthContext<'_>) -> Result<(Vec<ObjectRef>, ()), StageError> {
        Ok((vec![], ()))
    }

    async fn plan(&self, _ctx: &MonthContext<'_>) -> Result<StageOutcome, StageError> {
        unreachable!("not a dry run")
    }

    async fn run(&self, ctx: &mut MonthContext<'_>, (): ()) -> Result<runner::Ran, StageError> {
        ctx.run.shutdown.request(StopReason::Terminate);
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_stop_abandons_a_computing_stage_at_once_and_its_manifest_says_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (config, store) = world(dir.path()).await;
    let run = runner(&config, &store, RunOptions::default());
    let mut ctx = MonthContext::new(&run, january(), &());
    // Bounded: a runner that waited for the stage would otherwise hang the test.
    let ran = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        run.run_stage(&StoppedWhileComputing, &mut ctx),
    )
    .await
    .expect("the stage was abandoned, not waited for");
    let err = ran.unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    let key = ctx.keys.manifest("aggregate");
    let recorded = crate::manifest::load(store.as_ref(), &config.buckets.work, &key)
        .await
        .unwrap()
        .expect("a manifest");
    assert_eq!(recorded.state, crate::manifest::RunState::Interrupted);
}
