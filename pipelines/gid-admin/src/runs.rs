//! `gid-admin runs`: per month and stage, the last run and whether inputs changed since.

use gid_core::Config;
use gid_runs::{MonthRun, RunOptions};
use gid_storage::Backend;

pub(crate) async fn runs(
    config: Config,
    store: std::sync::Arc<dyn Backend>,
    months: &[gid_core::Month],
) -> anyhow::Result<()> {
    let run = MonthRun::new(config, store, RunOptions::default())?;
    gid_cli::outln!(
        "{:<8} {:<9} {:<10} {:<20} {:>9} {:>11}  inputs",
        "month",
        "stage",
        "state",
        "finished (UTC)",
        "rows",
        "quarantined"
    );
    for month in months {
        for status in run.status(*month).await? {
            let Some(last) = &status.last else {
                gid_cli::outln!(
                    "{:<8} {:<9} {:<10}",
                    month.to_string(),
                    status.stage.as_str(),
                    "never run"
                );
                continue;
            };
            let finished = last
                .finished_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into());
            let count = |v: Option<u64>| v.map_or("-".to_owned(), |n| n.to_string());
            let inputs = match status.inputs_changed {
                Some(true) => "changed since (would run)",
                Some(false) => "unchanged",
                None => "-",
            };
            gid_cli::outln!(
                "{:<8} {:<9} {:<10} {:<20} {:>9} {:>11}  {inputs}",
                month.to_string(),
                status.stage.as_str(),
                last.observed_state().to_string(),
                finished,
                count(last.rows),
                count(last.quarantined)
            );
        }
    }
    Ok(())
}
