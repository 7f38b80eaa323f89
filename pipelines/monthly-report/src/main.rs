//! `monthly-report`: chains ingest → aggregate → publish for one month or a range.
//! Wiring only: the stages live in their crates, the sequencing in `gid-runs`.

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
use gid_runs::site::site_url;
use gid_runs::{open_notifier, run_months, MonthRun, RunOptions, Stage, StageOutcome};

/// Build the monthly "Get It Done" report site from the month's CSV exports.
#[derive(Debug, Parser)]
#[command(name = "monthly-report", version)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    months: MonthArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Run only these stages (repeatable or comma-separated: --stage aggregate,publish).
    /// Default: all (ingest, aggregate, publish, notify).
    #[arg(long = "stage", value_name = "STAGE", value_parser = parse_stage, value_delimiter = ',')]
    stages: Vec<Stage>,
    /// Say what would be read and written, without writing anything.
    #[arg(long)]
    dry_run: bool,
    /// Rerun stages even when their inputs and configuration are unchanged.
    #[arg(long)]
    force: bool,
    /// Continue an interrupted backfill: skip stages whose last run succeeded, without
    /// re-listing their inputs.
    #[arg(long, conflicts_with = "force")]
    resume: bool,
    /// Send alerts that a crashed run left "in doubt" (claimed, maybe not sent); check
    /// first that they did not go out.
    #[arg(long, conflicts_with = "force")]
    resend_in_doubt: bool,
    /// Alerts that a crashed run left "in doubt" did go out (you saw them on the topic):
    /// record them as sent, without sending them again.
    #[arg(long, conflicts_with_all = ["force", "resend_in_doubt"])]
    confirm_in_doubt: bool,
    /// Months processed at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bars = init_logging(&cli.common);
    gid_cli::block_on_run(run(cli, bars))
}

/// Everything before the first month is setup: an error there returns `Err` (exit 2, see
/// [`RunExit::before_months`]); from the first month on, every failure is a month's.
async fn run(cli: Cli, bars: MultiProgress) -> anyhow::Result<RunExit> {
    let clock = RunClock::start(Tool::MonthlyReport);
    let RunSetup {
        config,
        store,
        months,
    } = RunSetup::open(&cli.common, &cli.months, cli.dry_run).await?;
    let stages = if cli.stages.is_empty() {
        Stage::ALL.to_vec()
    } else {
        cli.stages.clone()
    };
    let profile = config.profile;
    let options = RunOptions {
        dry_run: cli.dry_run,
        force: cli.force,
        resume: cli.resume,
        resend_in_doubt: cli.resend_in_doubt,
        confirm_in_doubt: cli.confirm_in_doubt,
    };
    let notifier = open_notifier(&config).await?;
    // Pages in other languages than English go through the Translator port.
    let translator = if !config.publish.translated_languages().is_empty() {
        Some(
            gid_runs::engine::translator(&config)
                .await
                .context("opening the translation engine for publish.languages")?,
        )
    } else {
        None
    };
    let mut run = MonthRun::new(config, Arc::clone(&store), options)?
        .with_notifier(notifier.clone())
        .with_shutdown(gid_cli::shutdown().clone());
    if let Some(translator) = translator {
        run = run.with_translator(translator);
    }
    let progress = ProgressBars::new(bars, months.len());
    tracing::info!(
        months = months.len(),
        stages = ?stages,
        backend = store.backend(),
        dry_run = cli.dry_run,
        "monthly-report starting"
    );
    let outcomes = run_months(&run, &months, &stages, usize::from(cli.jobs), &progress).await;
    progress.finish();

    // The local backend counts no requests.
    let requests: BTreeMap<String, _> = match profile {
        Profile::Aws => [
            ("s3", run.store.request_stats()),
            ("sns", notifier.request_stats()),
        ]
        .into_iter()
        .map(|(service, stats)| (service.to_owned(), stats.into()))
        .collect(),
        Profile::Local => BTreeMap::new(),
    };
    let mut summary = clock.finish(
        profile,
        cli.dry_run,
        outcomes.iter().map(MonthReport::from).collect(),
        requests,
        gid_cli::shutdown().reason(),
    );
    let published = outcomes.iter().any(|o| {
        o.stages
            .iter()
            .any(|s| matches!(s, StageOutcome::Published(_)))
    });
    // Asked once the months are done, so a presigned index URL lives as long as the links
    // the run just signed.
    if published {
        match site_url(&run.config, run.store.as_ref()).await {
            Ok(url) => summary.site_url = Some(url),
            Err(e) => tracing::warn!("the site's URL: {e}"),
        }
    }
    // The library's errors say what failed; what to do about it is the command's to say.
    gid_cli::advice::advise_summary(&mut summary, &outcomes);
    let exit = RunExit::settle(&mut summary);

    // Failed months go to stderr in either format: people read them there.
    gid_cli::report_failed_months(
        outcomes.iter().filter_map(|o| o.failure.as_ref()),
        outcomes.len(),
    );
    if cli.output.output == OutputFormat::Json {
        gid_cli::outln!("{}", summary.to_json_line());
        return Ok(exit);
    }
    for outcome in outcomes.iter().filter(|o| o.is_ok()) {
        gid_cli::outln!("{}", outcome.summary_line());
        for stage in &outcome.stages {
            if let StageOutcome::Planned {
                stage,
                reads,
                writes,
            } = stage
            {
                for r in reads {
                    gid_cli::outln!("  {stage}: would read  {r}");
                }
                for w in writes {
                    gid_cli::outln!("  {stage}: would write {w}");
                }
            }
        }
    }
    // Retries and throttling are what an operator needs to see before they become failures.
    for (service, stats) in [
        ("s3", run.store.request_stats()),
        ("sns", notifier.request_stats()),
    ] {
        if !stats.is_empty() {
            gid_cli::outln!("{service}: {stats}");
        }
    }
    if let Some(url) = &summary.site_url {
        gid_cli::outln!("site: {url}");
    }
    Ok(exit)
}
