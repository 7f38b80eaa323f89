//! `scooter-pickups`: for each month, the e-scooter requests whose photo shows a scooter
//! and whose description is negative — translated, scored and labelled by the configured
//! engines (`enrich.engines`: offline or AWS, by default the profile's), published as
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
    RunExit, RunSetup,
};
use gid_core::Profile;
use gid_runs::report::{MonthReport, RunClock, Tool};
use gid_runs::scooter::scooter_months;
use gid_runs::{counted_requests, open_engines, MonthRun, RunOptions};

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
    /// Say how many engine calls (characters, photos) a run would make, and for the AWS
    /// engines what they would cost; call nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Rerun enrich and its publish even when their inputs and configuration are
    /// unchanged (the engines' cached answers are still used).
    #[arg(long)]
    force: bool,
    /// Continue an interrupted backfill: skip stages whose last run succeeded, without
    /// checking their inputs again.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
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
    let RunSetup {
        config,
        store,
        months,
    } = RunSetup::open(&cli.common, &cli.months, cli.dry_run).await?;
    // The local engines read photos through the object port only.
    let photos: Arc<dyn gid_storage::ObjectStore> = store.clone();
    let engines = open_engines(&config, photos)
        .await
        .context("opening the enrichment engines")?;
    let profile = config.profile;
    let options = RunOptions {
        dry_run: cli.dry_run,
        force: cli.force,
        resume: cli.resume,
        ..RunOptions::default()
    };
    let translator = engines.translator.clone();
    let run = MonthRun::new(config, Arc::clone(&store), options)?
        .with_engines(engines)
        .with_shutdown(gid_cli::shutdown().clone())
        .with_translator(translator);
    let progress = ProgressBars::new(bars, months.len());
    let results = scooter_months(&run, &months, usize::from(cli.jobs), &progress).await;
    progress.finish();
    // The local backend counts no requests; the AWS engines count theirs on either
    // profile (`enrich.engines = "aws"` over folders still calls AWS).
    let store_requests = match profile {
        Profile::Aws => vec![("s3", run.store.request_stats())],
        Profile::Local => Vec::new(),
    };
    let requests: BTreeMap<String, _> = store_requests
        .into_iter()
        .chain(counted_requests())
        .map(|(service, stats)| (service.to_owned(), stats.into()))
        .collect();
    let mut summary = clock.finish(
        profile,
        cli.dry_run,
        results.iter().map(MonthReport::from).collect(),
        requests,
        gid_cli::shutdown().reason(),
    );
    // The library's errors say what failed; what to do about it is the command's to say.
    gid_cli::advice::advise_summary(&mut summary, &results);
    let exit = RunExit::settle(&mut summary);

    // Failed months go to stderr in either format: people read them there.
    gid_cli::report_failed_months(
        results.iter().filter_map(|m| m.failure.as_ref()),
        results.len(),
    );
    match cli.output.output {
        OutputFormat::Json => gid_cli::outln!("{}", summary.to_json_line()),
        OutputFormat::Text => {
            for outcome in results.iter().filter(|m| m.is_ok()) {
                gid_cli::outln!("{}", outcome.summary_line());
            }
        }
    }
    Ok(exit)
}
