//! `scooter-pickups`: for each month, the e-scooter requests whose photo shows a scooter
//! and whose description is negative — translated, scored and labelled by the configured
//! engines (offline on the local profile, AWS on the aws profile), published as
//! `scooter_pickups.{csv,html}` on the report site. Wiring only: the transform lives in
//! `gid-enrich`, the month sequencing in `gid-runs`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use gid_cli::{init_logging, CommonArgs, MonthArgs, MultiProgress, ProgressBars};
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
    gid_cli::block_on(run(cli, bars))
}

async fn run(cli: Cli, bars: MultiProgress) -> anyhow::Result<ExitCode> {
    let config = cli.common.load_config()?;
    let store = open_store(&config)
        .await
        .context("opening the object store")?;
    let months = cli.months.resolve(&config, store.as_ref()).await?;
    if !cli.dry_run {
        prepare_buckets(&config, store.as_ref()).await?;
    }
    let engines = open_engines(&config, Arc::clone(&store))
        .await
        .context("opening the enrichment engines")?;
    let notifier = open_notifier(&config).await?;
    let options = RunOptions {
        dry_run: cli.dry_run,
        ..RunOptions::default()
    };
    let run = MonthRun::new(config, Arc::clone(&store), notifier, options)
        .with_shutdown(gid_cli::shutdown().clone());
    let progress = ProgressBars::new(bars, months.len());
    let results = scooter_months(&run, &engines, &months, usize::from(cli.jobs), &progress).await;
    progress.finish();
    let mut failed = 0;
    for (_, result) in &results {
        match result {
            Ok(outcome) => println!("{}", outcome.summary_line()),
            Err(e) => {
                failed += 1;
                gid_cli::report_error(e);
            }
        }
    }
    if failed > 0 {
        gid_cli::report_line(&format!("{failed} of {} months failed", results.len()));
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
