//! `gid-admin doctor`: the preflight, run before any backend is opened.

use std::process::ExitCode;

use clap::ValueEnum;
use gid_cli::CommonArgs;

/// What `gid-admin doctor` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DoctorOutput {
    Text,
    Json,
}

/// Exit code of `doctor` when the configuration cannot be used (as the other binaries).
pub(crate) const EXIT_CONFIG: u8 = 2;

/// Runs the preflight before anything else opens a backend: its job is to report what
/// opening would fail on. A configuration that cannot be loaded prints nothing on stdout
/// (never half a document) and exits 2.
pub(crate) async fn doctor(common: &CommonArgs, output: DoctorOutput) -> anyhow::Result<ExitCode> {
    let report = match common.load_config() {
        Ok(config) => gid_runs::doctor::examine(&config).await.map_err(Into::into),
        Err(e) => Err(e),
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            gid_cli::report_error(AsRef::<dyn std::error::Error>::as_ref(&e));
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    match output {
        DoctorOutput::Text => gid_cli::out!("{}", report.table()),
        DoctorOutput::Json => gid_cli::outln!("{}", report.to_json()),
    }
    Ok(ExitCode::from(report.exit_code()))
}
