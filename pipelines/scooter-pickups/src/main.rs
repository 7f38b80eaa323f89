//! `scooter-pickups`: for each month, the e-scooter requests whose photo shows a scooter
//! and whose description is negative — translated, scored and labelled by the configured
//! engines (offline on the local profile, AWS on the aws profile), published as
//! `scooter_pickups.{csv,html}` on the report site. Wiring only: the transform lives in
//! `gid-enrich`, the month sequencing in `gid-runs`.

// A command-line program: stdout carries its answers, stderr its one-line errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gid_cli::{
    init_logging, CommonArgs, MonthArgs, MultiProgress, OutputArgs, OutputFormat, ProgressBars,
    RunExit,
};
use gid_core::Profile;
use gid_runs::report::{MonthReport, RunClock, Tool};
use gid_runs::scooter::scooter_months;
use gid_runs::{open_engines, open_notifier, open_store, prepare_buckets, MonthRun, RunOptions};

/// Select e-scooter requests to pick up: a scooter in the photo and a negative description.
#[derive(Debug, Parser)]
#[command(name = "scooter-pickups", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    months: MonthArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Say how many engine calls (characters, photos) a run would make, and on the aws
    /// profile what they would cost; call nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Months processed at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bars = init_logging(&cli.common);
    gid_cli::block_on_run(run(cli, bars))
}

/// Everything before the first month is setup: an error there returns `Err` (exit 2, see
/// [`RunExit::before_months`]); from the first month on, every failure is a month's.
async fn run(cli: Cli, bars: MultiProgress) -> anyhow::Result<RunExit> {
    let clock = RunClock::start(Tool::ScooterPickups);
    let config = cli.common.load_config()?;
    let store = open_store(&config)
        .await
        .context("opening the object store")?;
    let months = cli.months.resolve(&config, store.as_ref()).await?;
    if !cli.dry_run {
        prepare_buckets(&config, store.as_ref()).await?;
    }
    // The local engines read photos through the object port only.
    let photos: Arc<dyn gid_storage::ObjectStore> = store.clone();
    let engines = open_engines(&config, photos)
        .await
        .context("opening the enrichment engines")?;
    let notifier = open_notifier(&config).await?;
    let profile = config.profile;
    let options = RunOptions {
        dry_run: cli.dry_run,
        ..RunOptions::default()
    };
    let run = MonthRun::new(config, Arc::clone(&store), notifier, options)?
        .with_shutdown(gid_cli::shutdown().clone())
        .with_translator(engines.translator.clone());
    let progress = ProgressBars::new(bars, months.len());
    let results = scooter_months(&run, &engines, &months, usize::from(cli.jobs), &progress).await;
    progress.finish();
    // The local backend counts no requests. Comprehend, Translate and Rekognition are
    // not listed: their adapters do not expose their counters (each month's enrich
    // counts have the engine calls).
    let requests: BTreeMap<String, _> = match profile {
        Profile::Aws => BTreeMap::from([("s3".to_owned(), run.store.request_stats().into())]),
        Profile::Local => BTreeMap::new(),
    };
    let mut summary = clock.finish(
        profile,
        cli.dry_run,
        results.iter().map(MonthReport::from).collect(),
        requests,
        gid_cli::shutdown().reason(),
    );
    let exit = RunExit::settle(&mut summary);

    // Failed months go to stderr in either format: people read them there.
    gid_cli::report_failed_months(
        results.iter().filter_map(|m| m.result.as_ref().err()),
        results.len(),
    );
    match cli.output.output {
        OutputFormat::Json => println!("{}", summary.to_json_line()),
        OutputFormat::Text => {
            for outcome in results.iter().filter_map(|m| m.result.as_ref().ok()) {
                println!("{}", outcome.summary_line());
            }
        }
    }
    Ok(exit)
}
