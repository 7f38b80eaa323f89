//! Column names of the GID export that gid's stages rely on.

/// One request's id: the month keeps one row per id.
pub const SERVICE_REQUEST_ID: &str = "service_request_id";
pub const SERVICE_NAME: &str = "service_name";
pub const DATE_REQUESTED: &str = "date_requested";
pub const STATUS: &str = "status";
pub const COUNCIL_DISTRICT: &str = "council_district";
