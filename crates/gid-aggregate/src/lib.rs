//! The transform stage: a month's request table → a [`MonthSummary`] (requests per
//! `service_name` as `request_count`, sorted descending, with the month, the total and
//! breakdowns by status and council district).
//!
//! The summary is small and is persisted as JSON, which the publish and notify stages
//! read without polars. Ties are ordered by name so reruns are byte-identical.
//!
//! ```
//! use polars_core::prelude::*;
//! let frame = df!("service_name" => ["Pothole", "Graffiti", "Pothole"]).unwrap();
//! let summary = gid_aggregate::summarise("2019-01".parse().unwrap(), &frame).unwrap();
//! assert_eq!(summary.total_requests, 3);
//! assert_eq!(summary.services[0].name, "Pothole");
//! assert_eq!(summary.services[0].request_count, 2);
//! ```

use gid_core::Month;
use polars_core::prelude::*;
use serde::{Deserialize, Serialize};

/// The column requests are counted by for `final_report.csv` (and thresholds compare).
pub const SERVICE_NAME: &str = "service_name";
/// The column of the per-status table (open, closed, …).
pub const STATUS: &str = "status";
/// The column of the per-district table.
pub const COUNCIL_DISTRICT: &str = "council_district";

/// The label for rows whose grouping value is empty or missing.
pub const NOT_SPECIFIED: &str = "(not specified)";

/// Why a month could not be summarised.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// A column the summary groups by is absent: the exports changed shape.
    #[error("the month's table has no `{0}` column (check the export's header)")]
    MissingColumn(&'static str),
    /// polars refused the table (a column of another type than text).
    #[error("aggregating: {0}")]
    Polars(#[from] PolarsError),
    /// A persisted `summary.json` does not parse: rerunning the stage rewrites it (the
    /// binaries say how).
    #[error("the summary in {key} is unreadable ({source})")]
    Corrupt {
        /// The summary's key in the work bucket.
        key: String,
        /// The JSON parser's complaint (line and column).
        #[source]
        source: serde_json::Error,
    },
}

/// One group and its number of requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCount {
    /// The value grouped by, trimmed; [`NOT_SPECIFIED`] for empty values.
    pub name: String,
    /// Requests with that value.
    pub request_count: u64,
}

/// The aggregates of one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthSummary {
    /// `YYYY-MM`: text, so `summary.json` reads as people write months.
    pub month: String,
    /// Every request of the month, whatever its groups.
    pub total_requests: u64,
    /// Requests per service, most first.
    pub services: Vec<GroupCount>,
    /// Requests per status, most first.
    pub by_status: Vec<GroupCount>,
    /// Requests per council district, most first.
    pub by_council_district: Vec<GroupCount>,
}

impl MonthSummary {
    /// The month this summary describes.
    pub fn month(&self) -> Month {
        self.month
            .parse()
            .expect("summaries are built from a Month")
    }

    /// Requests of one service this month (0 if none).
    pub fn count_of(&self, service_name: &str) -> u64 {
        self.services
            .iter()
            .find(|g| g.name == service_name)
            .map_or(0, |g| g.request_count)
    }

    /// `summary.json`'s bytes: pretty-printed, because people read it too.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("summary serialises")
    }

    /// Reads a persisted `summary.json`; `key` names it in the error when it does not parse.
    pub fn from_json(key: &str, bytes: &[u8]) -> Result<Self, AggregateError> {
        serde_json::from_slice(bytes).map_err(|e| AggregateError::Corrupt {
            key: key.to_owned(),
            source: e,
        })
    }
}

/// Counts rows per value of a text column, most first, ties by name.
fn count_by(frame: &DataFrame, column: &'static str) -> Result<Vec<GroupCount>, AggregateError> {
    let values = frame
        .column(column)
        .map_err(|_| AggregateError::MissingColumn(column))?
        .cast(&DataType::String)?;
    // Count the values as they are first (a few distinct ones in 200k rows, hashed with
    // polars' fast hasher), then merge them by trimmed name: trimming and the label for
    // empty values happen once per distinct value, not once per row.
    let mut raw: PlHashMap<Option<&str>, u64> = PlHashMap::default();
    for value in values.str()?.iter() {
        *raw.entry(value).or_default() += 1;
    }
    let mut counts: PlHashMap<&str, u64> = PlHashMap::default();
    for (value, n) in raw {
        let name = match value.map(str::trim) {
            Some(v) if !v.is_empty() => v,
            _ => NOT_SPECIFIED,
        };
        *counts.entry(name).or_default() += n;
    }
    let mut groups: Vec<GroupCount> = counts
        .into_iter()
        .map(|(name, request_count)| GroupCount {
            name: name.to_owned(),
            request_count,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.request_count
            .cmp(&a.request_count)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(groups)
}

/// Summarises one month. A table without `status` or `council_district` (older exports)
/// gets empty breakdowns; `service_name` is required.
pub fn summarise(month: Month, frame: &DataFrame) -> Result<MonthSummary, AggregateError> {
    let services = if frame.height() == 0 && frame.width() == 0 {
        Vec::new()
    } else {
        count_by(frame, SERVICE_NAME)?
    };
    let optional = |column| match count_by(frame, column) {
        Err(AggregateError::MissingColumn(_)) => Ok(Vec::new()),
        other => other,
    };
    Ok(MonthSummary {
        month: month.to_string(),
        total_requests: frame.height() as u64,
        services,
        by_status: optional(STATUS)?,
        by_council_district: optional(COUNCIL_DISTRICT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn an_unreadable_summary_names_its_key_and_keeps_the_parser_error_as_its_source() {
        let err = MonthSummary::from_json("2019/jan/summary.json", b"{\"month\":").unwrap_err();
        let source = err.source().expect("the JSON error is kept as the source");
        assert!(source.is::<serde_json::Error>(), "{source}");
        assert!(
            err.to_string()
                .starts_with("the summary in 2019/jan/summary.json is unreadable (EOF"),
            "{err}"
        );
    }

    fn month() -> Month {
        "2019-01".parse().unwrap()
    }

    #[test]
    fn counts_sort_descending_with_ties_by_name() {
        let frame = df!(
            "service_name" => ["B", "A", "C", "C", "B", "C"],
            "status" => ["Closed", "Closed", "New", "Closed", "New", "Closed"]
        )
        .unwrap();
        let s = summarise(month(), &frame).unwrap();
        let got: Vec<(&str, u64)> = s
            .services
            .iter()
            .map(|g| (g.name.as_str(), g.request_count))
            .collect();
        assert_eq!(got, [("C", 3), ("B", 2), ("A", 1)]);
        assert_eq!(s.total_requests, 6);
        assert_eq!(
            s.by_status[0],
            GroupCount {
                name: "Closed".into(),
                request_count: 4
            }
        );
        assert!(
            s.by_council_district.is_empty(),
            "missing column → no breakdown"
        );
    }

    #[test]
    fn missing_service_names_are_counted_not_dropped() {
        let frame = df!("service_name" => [Some("Pothole"), None, Some("  ")]).unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert_eq!(s.count_of(NOT_SPECIFIED), 2);
        assert_eq!(s.total_requests, 3);
    }

    #[test]
    fn a_table_without_service_name_is_a_clear_error() {
        let frame = df!("status" => ["Closed"]).unwrap();
        let err = summarise(month(), &frame).unwrap_err().to_string();
        assert!(err.contains("service_name"), "{err}");
    }

    #[test]
    fn summaries_round_trip_through_json() {
        let frame = df!("service_name" => ["Pothole"]).unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert_eq!(MonthSummary::from_json("k", &s.to_json()).unwrap(), s);
    }
}
