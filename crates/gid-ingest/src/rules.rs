//! What makes a file an export and a row part of the month, and why a file was not read.

use gid_core::{IngestConfig, Month, OutOfMonth};
use serde::{Deserialize, Serialize};

/// The rules a file and its rows must meet to be counted.
///
/// ```
/// use gid_core::OutOfMonth;
/// use gid_ingest::ExportRules;
/// let rules = ExportRules::new(["Service_Request_ID ", "service_name"], 1000, OutOfMonth::Quarantine)
///     .in_month("2019-01".parse().unwrap());
/// assert_eq!(rules.required_columns(), ["service_request_id", "service_name"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRules {
    /// Normalised like header names (trimmed, lowercased).
    required_columns: Vec<String>,
    max_columns: usize,
    out_of_month: OutOfMonth,
    /// Rows must be dated in this month; `None` accepts any date, and none.
    month: Option<Month>,
}

impl ExportRules {
    /// Files must have `required_columns` (matched as header names are normalised) and at
    /// most `max_columns` columns; rows of any date are accepted until [`Self::in_month`].
    pub fn new(
        required_columns: impl IntoIterator<Item = impl AsRef<str>>,
        max_columns: usize,
        out_of_month: OutOfMonth,
    ) -> Self {
        Self {
            required_columns: required_columns
                .into_iter()
                .map(|c| normalise_name(c.as_ref()))
                .collect(),
            max_columns,
            out_of_month,
            month: None,
        }
    }

    /// The rules of the `[ingest]` configuration.
    pub fn from_config(config: &IngestConfig) -> Self {
        Self::new(
            &config.required_columns,
            config.max_columns,
            config.out_of_month,
        )
    }

    /// The same rules for the rows of one month: a row dated elsewhere, or not dated, is
    /// handled by the `out_of_month` policy.
    pub fn in_month(mut self, month: Month) -> Self {
        self.month = Some(month);
        self
    }

    /// The columns a file's header must have to count as an export
    /// (`ingest.required_columns`).
    pub fn required_columns(&self) -> &[String] {
        &self.required_columns
    }

    /// Headers wider than this are skipped whole (`ingest.max_columns`).
    pub fn max_columns(&self) -> usize {
        self.max_columns
    }

    /// What happens to rows dated outside the month (`ingest.out_of_month`).
    pub fn out_of_month(&self) -> OutOfMonth {
        self.out_of_month
    }

    /// The month rows must be dated in; `None` until [`ExportRules::in_month`].
    pub fn month(&self) -> Option<Month> {
        self.month
    }
}

/// A header name as gid compares it: trimmed and lowercased.
pub(crate) fn normalise_name(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// Why a whole file contributed nothing to the month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SkipReason {
    /// No bytes, or only whitespace.
    Empty,
    /// The key does not end with the export suffix (`ingest.suffix`).
    NotAnExport {
        /// The suffix an export's key ends with.
        suffix: String,
    },
    /// The header holds NUL bytes or bytes that are not UTF-8: a binary file, or a UTF-16
    /// or Latin-1 export.
    NotText,
    /// The header has more columns than `ingest.max_columns`.
    TooManyColumns {
        /// Columns in the header.
        columns: usize,
        /// The limit.
        max: usize,
    },
    /// The header lacks columns of `ingest.required_columns`.
    MissingColumns {
        /// The required columns the header lacks.
        missing: Vec<String>,
        /// The header's names, shortened for the report.
        header: String,
    },
    /// The header itself cannot be read (e.g. a quoted name that never closes).
    UnreadableHeader {
        /// The CSV reader's complaint.
        message: String,
    },
}

impl SkipReason {
    /// A few words for the month's summary line.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::NotAnExport { .. } => "not an export by name",
            Self::NotText => "not text",
            Self::TooManyColumns { .. } => "over the column cap",
            Self::MissingColumns { .. } => "without the export's key columns",
            Self::UnreadableHeader { .. } => "unreadable header",
        }
    }

    /// The reason for a header that lacks required columns; `header` is listed up to a
    /// few hundred characters (a report line must not grow with a hostile header).
    pub(crate) fn missing_columns(missing: Vec<String>, header: &[String]) -> Self {
        const SHOWN: usize = 200;
        let mut listed = String::new();
        for (i, name) in header.iter().enumerate() {
            if listed.len() + name.len() > SHOWN {
                listed.push_str(&format!(", … ({} columns in all)", header.len()));
                break;
            }
            if i > 0 {
                listed.push_str(", ");
            }
            listed.push_str(name);
        }
        Self::MissingColumns {
            missing,
            header: listed,
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("empty file"),
            Self::NotAnExport { suffix } => write!(
                f,
                "its key does not end in {suffix}, so it is not read as an export (ingest.suffix)"
            ),
            Self::NotText => f.write_str(
                "not a text CSV: its header holds NUL bytes or bytes that are not UTF-8 \
                 (a binary file, or a UTF-16 or Latin-1 export: re-export it as UTF-8 CSV, \
                 or move it out of the month's folder)",
            ),
            Self::TooManyColumns { columns, max } => write!(
                f,
                "its header has {columns} columns, more than ingest.max_columns = {max} \
                 (raise ingest.max_columns if this file really is an export)"
            ),
            Self::MissingColumns { missing, header } => write!(
                f,
                "not an export: its header lacks {} (it has: {header}); every export has \
                 the columns of ingest.required_columns",
                missing.join(", ")
            ),
            Self::UnreadableHeader { message } => {
                write!(f, "its header cannot be read: {message}")
            }
        }
    }
}
