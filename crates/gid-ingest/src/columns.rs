//! Column names of the GID export that gid's stages rely on.

pub const SERVICE_NAME: &str = "service_name";
pub const DATE_REQUESTED: &str = "date_requested";
pub const STATUS: &str = "status";
pub const COUNCIL_DISTRICT: &str = "council_district";
