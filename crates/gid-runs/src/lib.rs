//! Runs gid's stages over months: the part every pipeline binary shares.
//!
//! [`open_store`] wires the configured backend behind the [`ObjectStore`] port;
//! [`MonthRun`] chains the stages of one month (ingest → aggregate → publish), each
//! reading the previous stage's persisted output when it was not run in the same
//! invocation, so any stage of any month can run alone; [`run_months`] runs many months
//! with bounded concurrency where one failing month never stops the others;
//! [`report`] turns their outcomes into the run summary of `--output json`.
//!
//! Stages are in their own crates; this crate only sequences them and reports.

mod backend;
pub mod doctor;
pub mod manifest;
mod month;
pub mod report;
#[cfg(feature = "enrich")]
pub mod scooter;
mod shutdown;
pub mod site;

pub use backend::{
    aws_context, counted_requests, departments, open_notifier, open_store, prepare_buckets,
    sms_attributes, thresholds, topic_prefix, BackendError,
};
#[cfg(feature = "enrich")]
pub use backend::{engine, open_engines};
pub use manifest::{Manifest, ObservedState, RunState};
pub use month::{
    discover_months, for_each_month, run_months, Aggregated, Ingested, MonthEnd, MonthOutcome,
    MonthRun, Notified, Progress, Published, RunError, RunOptions, SiteTranslations, SkipKind,
    Stage, StageError, StageOutcome, StageStatus,
};
#[cfg(feature = "enrich")]
pub use month::{EnrichPlanned, Enriched};
pub use shutdown::{Shutdown, StopReason};
