//! What every gid binary shares: the common flags ([`CommonArgs`], [`MonthArgs`]),
//! configuration loading, logging (text or JSON, to stderr, never interleaved with
//! progress bars) and [`ProgressBars`] (drawn only on a TTY); for the binaries that run
//! months, `--output` ([`OutputArgs`]) and the exit codes ([`RunExit`], [`block_on_run`]).
//!
//! Binaries stay thin: parse flags with these, load the config, open the backend, call
//! the stage crates, print the summary.

mod stdout;

pub use stdout::{is_closed_reader, write_stdout};

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use gid_core::{Config, Month, MonthRange, MonthSpec, Profile};
use gid_runs::{Progress, Shutdown, Stage, StopReason};
use gid_storage::ObjectMeta;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::fmt::MakeWriter;

pub use indicatif::MultiProgress;

pub mod advice;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, for schedulers and log shippers.
    Json,
}

/// Flags every gid binary takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Extra config file, applied over config/default.toml and config/<profile>.toml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Backend profile (default: GID__PROFILE, else local).
    #[arg(long, global = true, value_parser = parse_profile)]
    pub profile: Option<Profile>,
    /// Directory holding default.toml and <profile>.toml; must exist when given.
    /// Default: ./config when it is a directory, else only the built-in defaults.
    #[arg(long, global = true, value_name = "DIR", env = "GID_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// More detail in logs (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log line format: `json` for schedulers and log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse().map_err(|e: gid_core::ConfigError| e.to_string())
}

/// What a month-running binary sets up before its first month: the configuration, the
/// object store, the months asked for and, unless it is a dry run, the buckets runs write
/// to. An error here is a setup error (exit 2, see [`RunExit::before_months`]).
pub struct RunSetup {
    /// The configuration `--config-dir`, `--config` and `--profile` point at.
    pub config: Config,
    /// The configured backend.
    pub store: std::sync::Arc<dyn gid_storage::Backend>,
    /// The months to run, in calendar order.
    pub months: Vec<Month>,
}

impl RunSetup {
    /// Loads the configuration, opens the store, resolves the months and prepares the
    /// buckets (not in a dry run, which writes nothing).
    pub async fn open(
        common: &CommonArgs,
        months: &MonthArgs,
        dry_run: bool,
    ) -> anyhow::Result<Self> {
        let config = common.load_config()?;
        let store = gid_runs::open_store(&config)
            .await
            .context("opening the object store")?;
        let months = months.resolve(&config, store.as_ref()).await?;
        if !dry_run {
            gid_runs::prepare_buckets(&config, store.as_ref()).await?;
        }
        Ok(Self {
            config,
            store,
            months,
        })
    }
}

/// The config directory used when neither `--config-dir` nor `GID_CONFIG_DIR` names one.
const DEFAULT_CONFIG_DIR: &str = "config";

impl CommonArgs {
    /// Loads the configuration these flags point at. A directory named by `--config-dir`
    /// or `GID_CONFIG_DIR` must exist; without one, `./config` is read when present.
    ///
    /// No context is added: every [`gid_core::ConfigError`] already names the file,
    /// variable or key at fault, and wrapping it would print the same fact twice.
    pub fn load_config(&self) -> anyhow::Result<Config> {
        let default_dir = Path::new(DEFAULT_CONFIG_DIR);
        let config_dir = match &self.config_dir {
            Some(dir) => Some(dir.as_path()),
            None => default_dir.is_dir().then_some(default_dir),
        };
        Ok(Config::load(
            config_dir,
            self.profile,
            self.config.as_deref(),
        )?)
    }
}

/// What a run binary prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A summary line per month, for people.
    Text,
    /// One JSON document per run, on one line (docs/run-summary.schema.json).
    Json,
}

/// The `--output` flag of the binaries that run months (monthly-report, scooter-pickups).
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// What stdout carries: a summary line per month (text), or one JSON document
    /// describing the whole run (json; see docs/run-summary.schema.json). Logs go to
    /// stderr either way.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// How a run of months ended, and the exit code that says so (README, "Exit codes").
/// One place decides it, so every binary that runs months answers schedulers alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunExit {
    /// 0: every month ran to its end.
    Ok,
    /// 1: some month failed (the others completed), or a service could not be reached
    /// before any month ran: a retry may succeed and redoes only what is missing.
    Failed,
    /// 2: a usage or configuration error; nothing ran, and a retry fails the same way.
    Usage,
    /// 3: alerts are left in doubt (claimed by a run that died): an operator checks the
    /// topic and reruns with `--resend-in-doubt` or `--confirm-in-doubt`; retrying alone
    /// cannot settle them. Wins over 1: the operator's rerun retries failed months too.
    AlertsInDoubt,
    /// 143 (SIGTERM) or 130 (SIGINT): stopped at a safe point; rerun to resume. Wins over
    /// everything else: the scheduler that stopped the run decides what comes next.
    Stopped(StopReason),
}

impl RunExit {
    /// Decides the exit code of a run whose months ran (or started to) from its summary,
    /// and records it there.
    pub fn settle(summary: &mut gid_runs::report::RunSummary) -> Self {
        use gid_runs::report::MonthStatus;
        let exit = if let Some(signal) = summary.stopped_by {
            RunExit::Stopped(signal.into())
        } else if summary.alerts_in_doubt() > 0 {
            RunExit::AlertsInDoubt
        } else if summary.months.iter().any(|m| m.status != MonthStatus::Ok) {
            RunExit::Failed
        } else {
            RunExit::Ok
        };
        summary.exit_code = exit.code();
        exit
    }

    /// The exit code of a run that failed before any month ran: a configuration, a month
    /// range, a data root or a bucket that cannot work (2), unless a service answered
    /// that it is busy or could not be reached (1, worth retrying).
    pub fn before_months(error: &anyhow::Error) -> Self {
        let transient = error.chain().any(|cause| {
            matches!(
                cause.downcast_ref::<gid_storage::StorageError>(),
                Some(gid_storage::StorageError::Service { kind, .. }) if kind.is_transient()
            )
        });
        if transient {
            RunExit::Failed
        } else {
            RunExit::Usage
        }
    }

    /// The process exit code: scripts and schedulers branch on it (see the README's exit codes).
    pub fn code(self) -> u8 {
        match self {
            RunExit::Ok => 0,
            RunExit::Failed => 1,
            RunExit::Usage => 2,
            RunExit::AlertsInDoubt => 3,
            RunExit::Stopped(reason) => reason.exit_code(),
        }
    }
}

/// Which months to run: one, an inclusive range, or every month with exports.
#[derive(Debug, Args)]
pub struct MonthArgs {
    /// One month: YYYY-MM, `previous` (the last complete month) or `current`, on the
    /// calendar of schedule.time_zone (America/Los_Angeles by default).
    #[arg(long, conflicts_with_all = ["from", "to", "all"])]
    pub month: Option<MonthSpec>,
    /// First month of a range, YYYY-MM.
    #[arg(long, requires = "to", conflicts_with = "all")]
    pub from: Option<Month>,
    /// Last month of a range (inclusive), YYYY-MM.
    #[arg(long, requires = "from", conflicts_with = "all")]
    pub to: Option<Month>,
    /// Every month that has objects in the requests bucket.
    #[arg(long)]
    pub all: bool,
    /// Run only the N-th month (0-based) of the range: one month per worker of a
    /// Kubernetes Indexed Job (JOB_COMPLETION_INDEX) or an AWS Batch array job
    /// (AWS_BATCH_JOB_ARRAY_INDEX).
    #[arg(long, env = "GID_MONTH_INDEX")]
    pub month_index: Option<usize>,
}

impl MonthArgs {
    /// The months named on the command line (`--all` needs [`MonthArgs::resolve`]);
    /// `previous`/`current` on the calendar of `config.schedule.time_zone`.
    pub fn months(&self, config: &Config) -> anyhow::Result<Vec<Month>> {
        let range = match (self.month, self.from, self.to) {
            (Some(m), _, _) => {
                MonthRange::single(m.at(chrono::Utc::now(), config.schedule.time_zone))
            }
            (None, Some(from), Some(to)) => MonthRange::new(from, to)?,
            _ => bail!(
                "say which months to run: --month YYYY-MM, --from YYYY-MM --to YYYY-MM, or --all"
            ),
        };
        self.pick(range.months().collect())
    }

    /// The months to run, discovering them from the requests bucket for `--all`.
    pub async fn resolve(
        &self,
        config: &Config,
        store: &dyn gid_storage::ObjectStore,
    ) -> anyhow::Result<Vec<Month>> {
        if !self.all {
            return self.months(config);
        }
        let layout = config.layout()?;
        let months = gid_runs::discover_months(store, &config.buckets.requests, &layout)
            .await
            .context("discovering months from the requests bucket")?;
        if months.is_empty() {
            bail!(
                "no months under s3://{}/ match layout.month_prefix `{}`",
                config.buckets.requests,
                config.layout.month_prefix
            );
        }
        self.pick(months)
    }

    fn pick(&self, months: Vec<Month>) -> anyhow::Result<Vec<Month>> {
        match self.month_index {
            None => Ok(months),
            Some(i) => match months.get(i) {
                Some(m) => Ok(vec![*m]),
                None => bail!(
                    "--month-index {i} is outside the {} months of the range (indices 0 to {})",
                    months.len(),
                    months.len().saturating_sub(1)
                ),
            },
        }
    }
}

/// Writes log lines to stderr, pausing progress bars so the two never interleave.
#[derive(Clone)]
struct SuspendingStderr {
    bars: MultiProgress,
}

struct SuspendingWriter {
    bars: MultiProgress,
    buffer: Vec<u8>,
}

impl Write for SuspendingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SuspendingWriter {
    fn drop(&mut self) {
        let buffer = redact(std::mem::take(&mut self.buffer));
        self.bars.suspend(|| {
            let _ = std::io::stderr().lock().write_all(&buffer);
        });
    }
}

/// Credentials the environment holds, as they could appear in a log line: verbatim and
/// percent-encoded (presigned URLs and canonical requests carry the session token in the
/// query string).
fn secrets_in_environment() -> &'static [(String, String)] {
    static SECRETS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut secrets = Vec::new();
        for name in [
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ACCESS_KEY_ID",
        ] {
            let Some(value) = std::env::var(name).ok().filter(|v| v.len() >= 8) else {
                continue;
            };
            let encoded = gid_core::encode_url_component(&value);
            let marker = format!("** {name} redacted **");
            secrets.push((value.clone(), marker.clone()));
            if encoded != value {
                secrets.push((encoded, marker));
            }
        }
        secrets
    })
}

/// Scrubs credentials from a formatted log line. The SDK's trace output (`-vv`) prints
/// resolved identities and canonical requests; the filter in [`init_logging`] keeps those
/// targets quiet, and this is the second line of defence for whatever else might echo them.
fn redact(buffer: Vec<u8>) -> Vec<u8> {
    let secrets = secrets_in_environment();
    let text = String::from_utf8_lossy(&buffer);
    if !secrets
        .iter()
        .any(|(value, _)| text.contains(value.as_str()))
    {
        return buffer;
    }
    let mut text = text.into_owned();
    for (value, marker) in secrets {
        text = text.replace(value.as_str(), marker);
    }
    text.into_bytes()
}

/// Log targets that print credentials at trace level (the access key id of the resolved
/// identity, canonical requests with the session token of presigned URLs): capped at
/// debug when a filter would otherwise trace them (`-vv`, `RUST_LOG=trace`).
const CREDENTIAL_TARGETS: [&str; 3] = [
    "aws_smithy_runtime::client::orchestrator::auth=debug",
    "aws_smithy_runtime::client::identity=debug",
    "aws_sigv4=debug",
];

/// gid's own log targets (crates and binaries): what default verbosity shows at INFO.
const GID_TARGETS: [&str; 14] = [
    "gid_aws",
    "gid_cli",
    "gid_core",
    "gid_storage",
    "gid_ingest",
    "gid_aggregate",
    "gid_publish",
    "gid_notify",
    "gid_enrich",
    "gid_runs",
    "gid_sample",
    "monthly_report",
    "scooter_pickups",
    "gid_admin",
];

/// The filter of a verbosity: gid's INFO/WARN/ERROR (and only the libraries' errors) by
/// default; gid's DEBUG and the libraries' INFO at `-v`; everything at `-vv`.
fn default_filter(verbose: u8) -> String {
    let (gid, others) = match verbose {
        0 => ("info", "error"),
        1 => ("debug", "info"),
        _ => return "trace".to_owned(),
    };
    let mut directives = vec![others.to_owned()];
    directives.extend(GID_TARGETS.iter().map(|t| format!("{t}={gid}")));
    directives.join(",")
}

/// The log filter: `RUST_LOG` if set, else the verbosity's, with the credential-printing
/// targets capped at debug whenever the filter would trace them. (Adding the caps to a
/// quieter filter would *enable* those targets at debug: directives add, they do not cap.)
fn log_filter(verbose: u8) -> EnvFilter {
    let mut filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(verbose)));
    if filter.max_level_hint() == Some(tracing_subscriber::filter::LevelFilter::TRACE) {
        for directive in CREDENTIAL_TARGETS {
            filter = filter.add_directive(directive.parse().expect("valid directive"));
        }
    }
    filter
}

/// How errors are printed: set once by [`init_logging`].
#[derive(Debug, Clone, Copy)]
struct Reporting {
    verbose: u8,
    format: LogFormat,
}

static REPORTING: OnceLock<Reporting> = OnceLock::new();

/// An error as one readable line: each layer's message, without the repeats of wrapped
/// errors whose text a layer already includes, and — unless `-v` — without the client
/// libraries' internal detail (the SDK's error chain), which `-v` adds; then what to do
/// about it ([`advice`]).
pub fn error_line(error: &(dyn std::error::Error + 'static)) -> String {
    let verbose = REPORTING.get().is_some_and(|r| r.verbose > 0);
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        if !verbose && e.is::<gid_aws::SdkDetail>() {
            break;
        }
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    advice::with_advice(line, error)
}

/// Prints an error for the operator: `gid: <line>` on stderr, or one JSON log record with
/// `--log-format json` (so stderr holds nothing but JSON lines).
pub fn report_error(error: &(dyn std::error::Error + 'static)) {
    report_line(&error_line(error));
}

/// Reports each failed month (one line each) and how many of `months` failed; nothing when
/// none did. In either output format: people read failures on stderr.
pub fn report_failed_months<'a, E: std::error::Error + 'static>(
    failures: impl IntoIterator<Item = &'a E>,
    months: usize,
) {
    let mut failed = 0;
    for error in failures {
        report_error(error);
        failed += 1;
    }
    if failed > 0 {
        report_line(&format!("{failed} of {months} months failed"));
    }
}

/// Prints one line for the operator on stderr, as [`report_error`] does.
#[allow(
    clippy::print_stderr,
    reason = "the binaries' one error line goes to stderr"
)]
pub fn report_line(line: &str) {
    match REPORTING.get().map(|r| r.format) {
        Some(LogFormat::Json) => tracing::error!("{line}"),
        _ => eprintln!("gid: {line}"),
    }
}

impl<'a> MakeWriter<'a> for SuspendingStderr {
    type Writer = SuspendingWriter;
    fn make_writer(&'a self) -> Self::Writer {
        SuspendingWriter {
            bars: self.bars.clone(),
            buffer: Vec::new(),
        }
    }
}

/// Sets up logging and returns the progress-bar set log lines are coordinated with.
pub fn init_logging(args: &CommonArgs) -> MultiProgress {
    let bars = MultiProgress::with_draw_target(if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let _ = REPORTING.set(Reporting {
        verbose: args.verbose,
        format: args.log_format,
    });
    let filter = log_filter(args.verbose);
    let writer = SuspendingStderr { bars: bars.clone() };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(args.verbose > 0);
    match args.log_format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // One flat object per line: the event's fields at the top level, no span lists.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
    bars
}

/// Progress bars for a run of months: one overall bar, one per month in flight.
pub struct ProgressBars {
    bars: MultiProgress,
    overall: ProgressBar,
    months: Mutex<Vec<(Month, ProgressBar)>>,
}

impl ProgressBars {
    /// An overall bar of `months` in `bars`; month bars are added as months start.
    pub fn new(bars: MultiProgress, months: usize) -> Self {
        let overall = bars.add(ProgressBar::new(months as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} months {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix("total");
        Self {
            bars,
            overall,
            months: Mutex::new(Vec::new()),
        }
    }

    fn bar(&self, month: Month) -> ProgressBar {
        let mut months = self.months.lock().expect("not poisoned");
        if let Some((_, bar)) = months.iter().find(|(m, _)| *m == month) {
            return bar.clone();
        }
        let bar = self.bars.insert_before(&self.overall, ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>10} {msg:10} [{bar:30}] {pos}/{len} files")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(month.to_string());
        months.push((month, bar.clone()));
        bar
    }

    /// Clears the overall bar, so the summary lines after the run stand alone.
    pub fn finish(&self) {
        self.overall.finish_and_clear();
    }
}

impl Progress for ProgressBars {
    fn stage_started(&self, month: Month, stage: Stage) {
        self.bar(month).set_message(stage.to_string());
    }
    fn files_found(&self, month: Month, files: usize) {
        self.bar(month).set_length(files as u64);
    }
    fn file_done(&self, month: Month, _meta: &ObjectMeta) {
        self.bar(month).inc(1);
    }
    fn month_finished(&self, month: Month, _ok: bool) {
        self.bar(month).finish_and_clear();
        self.overall.inc(1);
    }
}

/// One malloc arena for every thread, and blocks up to 64 MiB served from it.
///
/// glibc gives each thread that allocates its own arena and keeps what is freed there: a
/// 12-month backfill then peaked at 188 MB at `--jobs 1` where one month takes 110 MB.
/// Mapping every block above 256 KiB on its own (the previous setting) fixed that, but
/// each month-sized buffer was then mapped, zero-filled page by page and unmapped again:
/// a quarter of the run's CPU was the kernel's (1.6 of 6.9 CPU-s over 12 months). One
/// shared arena keeps the memory in one place that every month reuses: 0.83x CPU and
/// 0.83x wall, peak RSS +5 % for one month, +10 % at `--jobs 1`, +25 % at `--jobs 2`
/// (ARCHITECTURE.md, "One malloc arena"). The heap's free top is kept up to the same
/// 64 MiB: with the mmap threshold set by hand glibc no longer raises its trim threshold
/// (128 KiB) to match, so the top was given back after each large free and faulted in
/// again by the next file (12 months: 55 k → 23 k page faults, 0.98x CPU, 0.97x wall, 10
/// pairs; peak RSS unchanged for one month, `--jobs 1` and `--jobs 2`).
/// `MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_` and `MALLOC_TRIM_THRESHOLD_` in the
/// environment still decide when set.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    const MMAP_THRESHOLD: libc::c_int = 64 * 1024 * 1024;
    // SAFETY: mallopt sets one malloc parameter under glibc's own lock; no pointers involved.
    unsafe {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
        if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
            libc::mallopt(libc::M_TRIM_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

/// How long a run may take to stop after SIGTERM or SIGINT before it exits whatever it is
/// doing: inside Kubernetes' default 30 s grace period (and AWS Batch's), so the scheduler's
/// SIGKILL never comes first.
pub const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// The stop request every gid binary's run observes; SIGTERM and SIGINT set it.
pub fn shutdown() -> &'static Shutdown {
    static SHUTDOWN: OnceLock<Shutdown> = OnceLock::new();
    SHUTDOWN.get_or_init(Shutdown::new)
}

/// On the first SIGTERM or SIGINT: one log line, a stop request the run honours at its
/// next safe point, and a deadline after which the process exits anyway. A second SIGINT
/// (Ctrl-C pressed again) exits at once.
#[allow(
    clippy::print_stderr,
    reason = "the process exits on the next line: these words go straight to the terminal"
)]
fn stop_on_signals() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT: a stop signal ends the process at once");
        return;
    };
    tokio::spawn(async move {
        loop {
            let reason = tokio::select! {
                _ = terminate.recv() => StopReason::Terminate,
                _ = interrupt.recv() => StopReason::Interrupt,
            };
            if shutdown().is_requested() {
                if reason == StopReason::Interrupt {
                    eprintln!(
                        "gid: second {reason}: exiting now; rerun the same command to resume"
                    );
                    std::process::exit(i32::from(reason.exit_code()));
                }
                continue;
            }
            tracing::warn!(
                signal = %reason,
                "stopping: no new month or stage starts, writes in flight finish or roll back, unsent alerts are released, manifests record the interruption; exiting within {} s",
                STOP_DEADLINE.as_secs()
            );
            shutdown().request(reason);
            std::thread::spawn(move || {
                std::thread::sleep(STOP_DEADLINE);
                eprintln!(
                    "gid: still busy {} s after {reason}: exiting now; rerun the same command to resume",
                    STOP_DEADLINE.as_secs()
                );
                std::process::exit(i32::from(reason.exit_code()));
            });
        }
    });
}

/// Runs a binary's async body on a multi-threaded runtime and turns its result into the
/// process exit code: an error becomes one `gid: …` line (with its causes) and exit 1; a
/// run stopped by a signal exits 143 (SIGTERM) or 130 (SIGINT).
pub fn block_on(body: impl std::future::Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
    tune_malloc();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        stop_on_signals();
        body.await
    });
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            report_error(AsRef::<dyn std::error::Error>::as_ref(&e));
            ExitCode::FAILURE
        }
    };
    match shutdown().reason() {
        Some(reason) => ExitCode::from(reason.exit_code()),
        None => code,
    }
}

/// [`block_on`] for the binaries that run months (monthly-report, scooter-pickups): the
/// body's [`RunExit`] is the exit code, as its run summary already said; an error, which
/// such a body returns only before any month ran, is printed as [`block_on`] prints it
/// and exits as [`RunExit::before_months`] decides (143/130 when a signal came first).
pub fn block_on_run(body: impl std::future::Future<Output = anyhow::Result<RunExit>>) -> ExitCode {
    let decided: Mutex<Option<Result<RunExit, RunExit>>> = Mutex::new(None);
    let code = block_on(async {
        let result = body.await;
        *decided.lock().unwrap_or_else(|e| e.into_inner()) = Some(match &result {
            Ok(exit) => Ok(*exit),
            Err(e) => Err(RunExit::before_months(e)),
        });
        result.map(|_| ExitCode::SUCCESS)
    });
    match decided.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(Ok(exit)) => ExitCode::from(exit.code()),
        Some(Err(exit)) if shutdown().reason().is_none() => ExitCode::from(exit.code()),
        _ => code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_never_carry_the_environment_credentials() {
        // The only test of this crate that touches the environment, before the first read.
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "gid/unit/secret+key");
        std::env::set_var("AWS_SESSION_TOKEN", "GIDUNITTOKEN/abc==");
        let line = "canonical_request=GET /?X-Amz-Security-Token=GIDUNITTOKEN%2Fabc%3D%3D secret gid/unit/secret+key\n";
        let out = String::from_utf8(redact(line.as_bytes().to_vec())).unwrap();
        assert!(
            !out.contains("GIDUNITTOKEN") && !out.contains("gid/unit/secret"),
            "{out}"
        );
        assert!(out.contains("** AWS_SESSION_TOKEN redacted **"), "{out}");
        assert_eq!(redact(b"plain line\n".to_vec()), b"plain line\n");
    }
}

#[cfg(test)]
mod exit_code_tests {
    use gid_runs::report::{
        AlertInDoubt, MonthReport, MonthStatus, NotifyCounts, RunClock, RunSummary, StageCounts,
        StageName, StageReport, StageState, Tool,
    };

    use super::*;

    fn month(status: MonthStatus, in_doubt: usize) -> MonthReport {
        let notify = NotifyCounts {
            thresholds: in_doubt,
            sent: vec![],
            already_sent: vec![],
            being_sent_by_another_run: vec![],
            in_doubt: (0..in_doubt)
                .map(|_| AlertInDoubt {
                    topic: "trash".into(),
                    service: "Illegal Dumping".into(),
                    claimed_at: "2019-02-02T06:00:00.000Z".into(),
                    claimed_by: None,
                })
                .collect(),
            not_sent: vec![],
        };
        MonthReport {
            month: "2019-01".into(),
            status,
            error: None,
            duration_secs: 0.0,
            stages: vec![StageReport {
                stage: StageName::Notify,
                status: StageState::Failed,
                reason: None,
                counts: Some(StageCounts::Notify(notify)),
                planned: None,
            }],
        }
    }

    fn summary(months: Vec<MonthReport>, stopped: Option<StopReason>) -> RunSummary {
        RunClock::start(Tool::MonthlyReport).finish(
            gid_core::Profile::Local,
            false,
            months,
            Default::default(),
            stopped,
        )
    }

    fn settled(months: Vec<MonthReport>, stopped: Option<StopReason>) -> u8 {
        let mut summary = summary(months, stopped);
        let exit = RunExit::settle(&mut summary);
        assert_eq!(summary.exit_code, exit.code(), "the document says the code");
        exit.code()
    }

    #[test]
    fn a_signal_outranks_alerts_in_doubt_which_outrank_failed_months() {
        let ok = || month(MonthStatus::Ok, 0);
        let failed = || month(MonthStatus::Failed, 0);
        let in_doubt = || month(MonthStatus::Failed, 1);
        assert_eq!(settled(vec![ok(), ok()], None), 0);
        assert_eq!(settled(vec![], None), 0);
        assert_eq!(settled(vec![ok(), failed()], None), 1);
        assert_eq!(
            settled(vec![month(MonthStatus::Interrupted, 0)], None),
            1,
            "an interrupted month without a signal of ours is a failure"
        );
        assert_eq!(settled(vec![failed(), in_doubt(), ok()], None), 3);
        assert_eq!(settled(vec![in_doubt()], Some(StopReason::Terminate)), 143);
        assert_eq!(settled(vec![ok()], Some(StopReason::Interrupt)), 130);
    }

    #[test]
    fn only_a_service_that_may_answer_later_makes_a_setup_error_worth_retrying() {
        let bucket = gid_core::BucketName::new("gid-requests").unwrap();
        let service = |transient: bool| {
            let kind = if transient {
                gid_core::FailureKind::ConnectionRefused { endpoint: None }
            } else {
                gid_core::FailureKind::AccessDenied
            };
            anyhow::Error::new(gid_storage::StorageError::Service {
                operation: "list",
                bucket: bucket.to_string(),
                key: String::new(),
                kind,
                detail: None,
            })
            .context("discovering months from the requests bucket")
        };
        assert_eq!(RunExit::before_months(&service(true)), RunExit::Failed);
        assert_eq!(RunExit::before_months(&service(false)), RunExit::Usage);
        let missing = anyhow::Error::new(gid_storage::StorageError::NoSuchBucket { bucket });
        assert_eq!(RunExit::before_months(&missing), RunExit::Usage);
        let range = anyhow::anyhow!("--month-index 3 is outside the 3 months of the range");
        assert_eq!(RunExit::before_months(&range).code(), 2);
    }
}
