//! gid end to end: one test binary driving the built binaries (local backend, moto_server,
//! stub endpoints, headless Chromium). One module per area; `support_aws` is the shared
//! set-up of the fault, crash and integrity tests. One binary links the workspace once
//! instead of once per file.

mod aws_setup;
mod browser;
mod crashes;
mod doctor;
mod engines;
mod enrich_aws;
mod faults;
mod fixtures;
mod gid_admin;
mod hostile_input;
mod incremental_months;
mod integrity;
mod monthly_report_aws;
mod monthly_report_local;
mod notify_local;
mod operations;
mod run_summary;
mod scooter_local;
mod secrets;
mod site_languages;
mod storage_s3;
mod support_aws;
mod trends_local;
