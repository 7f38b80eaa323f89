//! Column names of the GID export that gid's stages rely on.

/// One request's id: the month keeps one row per id.
pub const SERVICE_REQUEST_ID: &str = "service_request_id";
/// The kind of request (e.g. "Graffiti - Public"): what the summary counts by.
pub const SERVICE_NAME: &str = "service_name";
/// When the request was made: decides the month a row belongs to.
pub const DATE_REQUESTED: &str = "date_requested";
/// The request's state (e.g. "Closed"), counted per service.
pub const STATUS: &str = "status";
/// The council district (1 to 9, or empty) the request is in.
pub const COUNCIL_DISTRICT: &str = "council_district";
