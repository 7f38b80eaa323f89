//! The transform stage: a month's request table → a [`MonthSummary`] (requests per
//! `service_name` as `request_count`, sorted descending, with the month, the total and
//! breakdowns by status and council district).
//!
//! The summary is small and is persisted as JSON, which the publish and notify stages
//! read without polars. Ties are ordered by name so reruns are byte-identical.
//!
//! It also holds what the site's trends page and the month's map need, so neither ever
//! reads raw rows: requests per status × service and council district × service, open
//! versus closed requests, case-age quantiles (overall and per service) and the requests
//! placed on a bounded grid of map cells ([`MapPoints`]). Those fields are
//! `#[serde(default)]`: a `summary.json` written before them still reads (as empty).
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

mod tally;
pub use tally::Tally;

/// The column requests are counted by for `final_report.csv` (and thresholds compare).
pub const SERVICE_NAME: &str = "service_name";
/// The column of the per-status table (open, closed, …).
pub const STATUS: &str = "status";
/// The column of the per-district table.
pub const COUNCIL_DISTRICT: &str = "council_district";
/// Days a request has been (or was) open: the backlog's case-age quantiles.
pub const CASE_AGE_DAYS: &str = "case_age_days";
/// Latitude in degrees (WGS 84), for the map.
pub const LAT: &str = "lat";
/// Longitude in degrees (WGS 84), for the map.
pub const LONG: &str = "long";

/// Statuses that mean the city is done with a request (compared ignoring case and
/// surrounding spaces); every other status, an empty one included, counts as open. The
/// exports use `Closed`, `In Process`, `New` and `Referred`: a referred request was handed
/// to another agency and leaves the city's queue, so it is not backlog.
pub const CLOSED_STATUSES: [&str; 2] = ["closed", "referred"];

/// The side of the finest map cell in degrees: 0.01° is about 1.1 km north–south (0.9 km
/// east–west at San Diego's latitude), fine enough to see streets of complaints.
pub const MAP_CELL_DEGREES: f64 = 0.01;

/// At most this many map cells (cell × service × district) are kept, which bounds
/// summary.json (each cell is ~190 bytes of JSON) whatever the month's size. A month with
/// more at the finest grid gets a coarser one (the side doubled until it fits, see
/// [`MapPoints::coarsening`]), so every request with coordinates is still placed; only
/// when even a coarse grid cannot fit (more service × district pairs than the cap) are the
/// least busy cells dropped and their requests counted in [`MapPoints::beyond_cap`].
pub const MAP_CELL_CAP: usize = 1500;
/// How often the grid may double (0.01° → 10.24°) before cells are dropped instead.
const MAX_COARSENING: u32 = 10;

/// The shape of [`MonthSummary`]: raised when a field is added, so that summaries of
/// an older shape are rebuilt (the aggregate stage hashes it into its configuration).
/// 2: the breakdowns for trends and the map.
pub const SUMMARY_VERSION: u32 = 2;

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

/// Requests of one service with one value of another column (a status or a district).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossCount {
    /// The other column's value, trimmed; [`NOT_SPECIFIED`] for empty values.
    pub group: String,
    /// The service, trimmed; [`NOT_SPECIFIED`] for empty values.
    pub service: String,
    /// Requests with both values.
    pub request_count: u64,
}

/// Requests whose status is closed (see [`CLOSED_STATUSES`]) and the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenClosed {
    /// Requests the city still works on (any status not in [`CLOSED_STATUSES`]).
    pub open: u64,
    /// Requests closed or referred elsewhere.
    pub closed: u64,
}

/// Nearest-rank quantiles of `case_age_days` over the requests that have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseAge {
    /// Requests with a usable age (a number of days ≥ 0); the others are left out.
    pub requests: u64,
    /// The median age in days (the ⌈n/2⌉-th smallest).
    pub median_days: u32,
    /// The 90th percentile in days (the ⌈0.9·n⌉-th smallest).
    pub p90_days: u32,
}

/// [`CaseAge`] of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCaseAge {
    /// The service, as in [`MonthSummary::services`].
    pub service: String,
    /// Its requests' case-age quantiles.
    #[serde(flatten)]
    pub age: CaseAge,
}

/// Requests of one service and district in one map cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapCell {
    /// ⌊lat / side⌋ ([`MapPoints::cell_degrees`]): the cell's south edge in cell units.
    pub lat_cell: i32,
    /// ⌊long / side⌋: the cell's west edge in cell units.
    pub long_cell: i32,
    /// The requests' service.
    pub service: String,
    /// The requests' council district ([`NOT_SPECIFIED`] when empty).
    pub council_district: String,
    /// Requests in the cell with that service and district.
    pub request_count: u64,
}

/// Where the month's requests were, on a grid of [`MapPoints::cell_degrees`] cells.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapPoints {
    /// How often the finest grid ([`MAP_CELL_DEGREES`]) was doubled to fit the cap.
    #[serde(default)]
    pub coarsening: u32,
    /// The cells (at most [`MAP_CELL_CAP`]), most requests first.
    pub cells: Vec<MapCell>,
    /// Requests without usable coordinates (missing, not numbers, out of range, or 0,0):
    /// counted, not placed.
    pub without_coordinates: u64,
    /// Requests with coordinates in cells beyond the cap: counted, not placed.
    pub beyond_cap: u64,
}

impl MapPoints {
    /// The side of this month's cells in degrees.
    pub fn cell_degrees(&self) -> f64 {
        MAP_CELL_DEGREES * f64::from(1u32 << self.coarsening.min(MAX_COARSENING))
    }

    /// A cell's centre, (lat, long) in degrees.
    pub fn centre(&self, cell: &MapCell) -> (f64, f64) {
        let side = self.cell_degrees();
        (
            (f64::from(cell.lat_cell) + 0.5) * side,
            (f64::from(cell.long_cell) + 0.5) * side,
        )
    }
}

/// The aggregates of one month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Requests per status × service, most first (empty without a `status` column).
    #[serde(default)]
    pub status_by_service: Vec<CrossCount>,
    /// Requests per council district × service, most first (empty without the column).
    #[serde(default)]
    pub district_by_service: Vec<CrossCount>,
    /// Open versus closed requests (`None` without a `status` column).
    #[serde(default)]
    pub open_closed: Option<OpenClosed>,
    /// Case-age quantiles of all requests with an age (`None` without any).
    #[serde(default)]
    pub case_age: Option<CaseAge>,
    /// Case-age quantiles per service, in the order of [`Self::services`].
    #[serde(default)]
    pub case_age_by_service: Vec<ServiceCaseAge>,
    /// The requests placed on the map.
    #[serde(default)]
    pub map: MapPoints,
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

/// Per-group totals sorted most requests first, ties by name.
fn group_counts(names: &[&str], counts: &[u64]) -> Vec<GroupCount> {
    let mut groups: Vec<GroupCount> = names
        .iter()
        .zip(counts)
        .filter(|(_, n)| **n > 0)
        .map(|(name, &request_count)| GroupCount {
            name: (*name).to_owned(),
            request_count,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.request_count
            .cmp(&a.request_count)
            .then_with(|| a.name.cmp(&b.name))
    });
    groups
}

/// A column's values as text, or `None` when the table has no such column.
fn text_column(frame: &DataFrame, column: &str) -> Result<Option<StringChunked>, AggregateError> {
    match frame.column(column) {
        Ok(values) => Ok(Some(values.cast(&DataType::String)?.str()?.clone())),
        Err(_) => Ok(None),
    }
}

/// An optional text column, read row after row from its arrays.
///
/// A column's `iter()` is a boxed iterator, one dynamic call per value (8 % of a month's
/// tally for six columns); its arrays are indexed directly instead, chunk after chunk (a
/// table read back from several row groups has a chunk each; rechunking would copy them).
struct Values<'a> {
    arrays: Vec<&'a <StringType as PolarsDataType>::Array>,
    chunk: usize,
    row: usize,
}

impl<'a> Values<'a> {
    fn of(column: &'a Option<StringChunked>) -> Self {
        Self {
            arrays: column
                .iter()
                .flat_map(|values| values.downcast_iter())
                .collect(),
            chunk: 0,
            row: 0,
        }
    }

    /// The next row's value (`None` when null, or when the column is absent).
    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        while let Some(array) = self.arrays.get(self.chunk) {
            if self.row < array.len() {
                self.row += 1;
                return array.get(self.row - 1);
            }
            self.chunk += 1;
            self.row = 0;
        }
        None
    }
}

/// `text` without surrounding whitespace: [`str::trim`], skipped when the text starts
/// and ends with printable ASCII (every whitespace character is either ≤ `' '` or not
/// ASCII). Most values need no trimming, and `trim` decodes characters from both ends.
fn trim(text: &str) -> &str {
    let printable = |b: Option<&u8>| b.is_some_and(|&b| (b'!'..=b'~').contains(&b));
    let bytes = text.as_bytes();
    if printable(bytes.first()) && printable(bytes.last()) {
        text
    } else {
        text.trim()
    }
}

/// `text` as a number, as `str::parse::<f64>` reads it.
///
/// A plain decimal (`-117.126724`, `111`: at most 19 digits, a value below 2^53 once the
/// point is dropped and at most 22 digits after it) is the digits as an integer divided
/// by a power of ten: both are exact in an f64 and a division is correctly rounded, so the
/// result is the one `parse` gives (Clinger's fast path, also `parse`'s first), without
/// its general scanning. Anything else is left to `parse`.
fn decimal(text: &str) -> Option<f64> {
    /// The powers of ten exact in an f64.
    const POWERS: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let plain = || -> Option<f64> {
        let (negative, digits) = match text.as_bytes() {
            [b'-', rest @ ..] => (true, rest),
            all => (false, all),
        };
        if digits.is_empty() || digits.len() > 20 {
            return None;
        }
        let (mut mantissa, mut scale, mut point, mut count) = (0u64, 0usize, false, 0usize);
        for (i, &b) in digits.iter().enumerate() {
            match b {
                // Nineteen digits always fit a u64; a twentieth may not.
                b'0'..=b'9' if count == 19 => return None,
                b'0'..=b'9' => {
                    mantissa = mantissa * 10 + u64::from(b - b'0');
                    count += 1;
                    scale += usize::from(point);
                }
                // A point between digits only (`1.` and `.5` are left to `parse`).
                b'.' if !point && i > 0 && i + 1 < digits.len() => point = true,
                _ => return None,
            }
        }
        if mantissa > 1 << 53 || scale >= POWERS.len() {
            return None;
        }
        let value = mantissa as f64 / POWERS[scale];
        Some(if negative { -value } else { value })
    };
    plain().or_else(|| text.parse().ok())
}

/// The name a value is grouped under: trimmed, [`NOT_SPECIFIED`] when empty.
fn label(value: Option<&str>) -> &str {
    match value.map(trim) {
        Some(v) if !v.is_empty() => v,
        _ => NOT_SPECIFIED,
    }
}

/// Whether a status means the request is closed ([`CLOSED_STATUSES`]).
pub fn is_closed(status: &str) -> bool {
    let status = status.trim();
    CLOSED_STATUSES
        .iter()
        .any(|closed| status.eq_ignore_ascii_case(closed))
}

/// A case age in whole days, when the text is one (`12`, `12.0`); negative or non-numeric
/// ages are left out of the quantiles.
fn parse_age(value: Option<&str>) -> Option<u32> {
    let days = decimal(trim(value?))?;
    (days.is_finite() && days >= 0.0 && days <= f64::from(u32::MAX)).then(|| days.round() as u32)
}

/// Usable coordinates: numbers, within range, and not the 0,0 that exports write for "none".
fn parse_position(lat: Option<&str>, long: Option<&str>) -> Option<(f64, f64)> {
    let lat = decimal(trim(lat?))?;
    let long = decimal(trim(long?))?;
    let usable = (-90.0..=90.0).contains(&lat)
        && (-180.0..=180.0).contains(&long)
        && !(lat == 0.0 && long == 0.0);
    usable.then_some((lat, long))
}

/// Nearest-rank quantiles of `ages` (reordered here); `None` when empty.
fn case_age(ages: &mut [u32]) -> Option<CaseAge> {
    if ages.is_empty() {
        return None;
    }
    let n = ages.len();
    let index = |q: f64| ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
    let (median, p90) = (index(0.5), index(0.9));
    // Two selections, not a sort: linear, where sorting a 1 GB month's 6 million ages took
    // a tenth of its aggregate stage. The 90th percentile is at or after the median, so it
    // is selected among the ages the first selection left after it.
    let (_, &mut median_days, after) = ages.select_nth_unstable(median);
    let p90_days = if p90 == median {
        median_days
    } else {
        *after.select_nth_unstable(p90 - median - 1).1
    };
    Some(CaseAge {
        requests: n as u64,
        median_days,
        p90_days,
    })
}

fn cross_counts(counts: PlHashMap<(&str, &str), u64>) -> Vec<CrossCount> {
    let mut cross: Vec<CrossCount> = counts
        .into_iter()
        .map(|((group, service), request_count)| CrossCount {
            group: group.to_owned(),
            service: service.to_owned(),
            request_count,
        })
        .collect();
    cross.sort_by(|a, b| {
        b.request_count
            .cmp(&a.request_count)
            .then_with(|| a.group.cmp(&b.group))
            .then_with(|| a.service.cmp(&b.service))
    });
    cross
}

/// A request's cell on the finest grid, with its service and district ids.
type GridPoint = (i32, i32, u32, u32);

/// The finest grid whose cells (per service and district) fit [`MAP_CELL_CAP`], as the
/// number of doublings of [`MAP_CELL_DEGREES`] and its counts; the coarsest grid
/// ([`MAX_COARSENING`]) when none fits.
///
/// The number of cells only falls as the grid coarsens, so the level is found by a
/// binary search in which a level stops being counted as soon as it has too many cells:
/// every map stays small enough for the cache. Counting the finest grid whole first and
/// merging it level by level (as before) hashed one cell per request into a map as large
/// as the month (most of the aggregate stage: cache misses).
fn grid(points: &[GridPoint]) -> (u32, PlHashMap<GridPoint, u64>) {
    let (mut finer, mut coarser) = (0, MAX_COARSENING);
    let mut fitting = None;
    while finer < coarser {
        let level = (finer + coarser) / 2;
        match cells_at(points, level, Some(MAP_CELL_CAP)) {
            Some(cells) => {
                coarser = level;
                fitting = Some(cells);
            }
            None => finer = level + 1,
        }
    }
    // `fitting` holds the level the search ended on; when no level fitted, that is the
    // coarsest, counted whatever its size.
    let cells = fitting.unwrap_or_else(|| cells_at(points, finer, None).expect("no cap"));
    (finer, cells)
}

/// The cells of `points` on the grid `level` doublings coarser than the finest; `None`
/// as soon as there are more than `cap`.
fn cells_at(
    points: &[GridPoint],
    level: u32,
    cap: Option<usize>,
) -> Option<PlHashMap<GridPoint, u64>> {
    let side = 1i32 << level;
    let mut cells: PlHashMap<GridPoint, u64> = PlHashMap::default();
    for &(lat, long, service, district) in points {
        *cells
            .entry((
                lat.div_euclid(side),
                long.div_euclid(side),
                service,
                district,
            ))
            .or_default() += 1;
        if cap.is_some_and(|cap| cells.len() > cap) {
            return None;
        }
    }
    Some(cells)
}

/// Summarises one month. A table without `status`, `council_district`, `case_age_days`
/// or coordinates (older or drifted exports) gets empty breakdowns for them;
/// `service_name` is required.
pub fn summarise(month: Month, frame: &DataFrame) -> Result<MonthSummary, AggregateError> {
    Ok(Tally::of(frame)?.finish(month))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn decimals_and_trimming_read_as_the_standard_library_reads_them() {
        let mut texts: Vec<String> = [
            "",
            "-",
            ".",
            "1.",
            ".5",
            "-.5",
            "1.2.3",
            "--1",
            "+1",
            "1e5",
            "NaN",
            "inf",
            "0",
            "-0",
            "-0.0",
            "00012",
            "32.79",
            "-117.126724",
            "9007199254740993",
            "9007199254740992",
            "12345678901234567890",
            "99999999999999999999",
            "-9999999999999999999.9",
            "0.1234567890123456789012",
            "0.00000000000000000000001",
            "1_000",
            " 12",
            "12 ",
            "\u{a0}12\u{a0}",
            "1\u{2003}",
            "\x0b7\x0b",
            "\t-3.5\n",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Coordinates and ages as exports write them, and their neighbours.
        let mut seed = 2019u64;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let whole = (seed >> 33) % 400;
            let places = (seed >> 20) % 12;
            let fraction = (seed >> 8) % 10u64.pow(places as u32).max(1);
            let sign = if seed.is_multiple_of(3) { "-" } else { "" };
            texts.push(format!(
                "{sign}{whole}.{fraction:0width$}",
                width = places as usize
            ));
            texts.push(format!("{sign}{whole}"));
        }
        for text in &texts {
            let expected = text.trim().parse::<f64>().ok();
            let got = decimal(trim(text));
            assert_eq!(
                got.map(f64::to_bits),
                expected.map(f64::to_bits),
                "{text:?}: {got:?} vs {expected:?}"
            );
            assert_eq!(trim(text), text.trim(), "{text:?}");
        }
    }

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

    fn cross(group: &str, service: &str, request_count: u64) -> CrossCount {
        CrossCount {
            group: group.into(),
            service: service.into(),
            request_count,
        }
    }

    #[test]
    fn statuses_and_districts_are_counted_per_service_and_referred_counts_as_closed() {
        let frame = df!(
            "service_name" => ["Pothole", "Pothole", "Graffiti", "Pothole"],
            "status" => ["Closed", " closed ", "Referred", "In Process"],
            "council_district" => [Some("3"), Some("3"), None, Some("1")]
        )
        .unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert_eq!(
            s.status_by_service,
            [
                cross("Closed", "Pothole", 1),
                cross("In Process", "Pothole", 1),
                cross("Referred", "Graffiti", 1),
                cross("closed", "Pothole", 1),
            ]
        );
        assert_eq!(
            s.district_by_service,
            [
                cross("3", "Pothole", 2),
                cross(NOT_SPECIFIED, "Graffiti", 1),
                cross("1", "Pothole", 1),
            ]
        );
        assert_eq!(s.open_closed, Some(OpenClosed { open: 1, closed: 3 }));
    }

    #[test]
    fn case_age_selection_gives_the_nearest_ranks_of_the_sorted_ages() {
        let mut seed = 7u64;
        for n in (1..=12).chain([97, 1000]) {
            let ages: Vec<u32> = (0..n)
                .map(|_| {
                    // Few distinct values, as case ages in days have: ties everywhere.
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (seed >> 33) as u32 % 40
                })
                .collect();
            let mut sorted = ages.clone();
            sorted.sort_unstable();
            let rank = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
            let expected = CaseAge {
                requests: n as u64,
                median_days: rank(0.5),
                p90_days: rank(0.9),
            };
            assert_eq!(case_age(&mut ages.clone()), Some(expected), "{ages:?}");
        }
        assert_eq!(case_age(&mut []), None);
    }

    #[test]
    fn case_age_quantiles_are_nearest_rank_over_the_rows_that_have_an_age() {
        // Ten ages 1..=10 for Pothole, and a drifted part without ages (nulls), a text
        // and a negative age, none of which count.
        let mut services = vec!["Pothole"; 10];
        let mut ages: Vec<Option<String>> = (1..=10).map(|d| Some(d.to_string())).collect();
        for age in [None, Some("soon".to_owned()), Some("-3".to_owned())] {
            services.push("Graffiti");
            ages.push(age);
        }
        services.push("Graffiti");
        ages.push(Some("40.0".into()));
        let frame = df!("service_name" => services, "case_age_days" => ages).unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert_eq!(
            s.case_age,
            Some(CaseAge {
                requests: 11,
                median_days: 6,
                p90_days: 10
            })
        );
        let pothole = CaseAge {
            requests: 10,
            median_days: 5,
            p90_days: 9,
        };
        let graffiti = CaseAge {
            requests: 1,
            median_days: 40,
            p90_days: 40,
        };
        assert_eq!(
            s.case_age_by_service,
            [
                ServiceCaseAge {
                    service: "Pothole".into(),
                    age: pothole
                },
                ServiceCaseAge {
                    service: "Graffiti".into(),
                    age: graffiti
                },
            ]
        );
    }

    #[test]
    fn a_table_without_the_optional_columns_has_empty_breakdowns_not_an_error() {
        let frame = df!("service_name" => ["Pothole", "Pothole"]).unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert!(s.status_by_service.is_empty() && s.district_by_service.is_empty());
        assert_eq!(s.open_closed, None);
        assert_eq!(s.case_age, None);
        assert!(s.case_age_by_service.is_empty());
        assert!(s.map.cells.is_empty());
        assert_eq!(s.map.without_coordinates, 2);
    }

    #[test]
    fn rows_without_usable_coordinates_are_counted_and_not_placed() {
        let frame = df!(
            "service_name" => ["Pothole", "Pothole", "Pothole", "Pothole", "Pothole"],
            "council_district" => ["3", "3", "3", "3", "3"],
            "lat" => [Some("32.7151"), Some("32.7189"), None, Some("north"), Some("0")],
            "long" => [Some("-117.1611"), Some("-117.1650"), Some("-117.1"), Some("-117.1"), Some("0")]
        )
        .unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert_eq!(s.map.without_coordinates, 3);
        assert_eq!(
            s.map.cells,
            [MapCell {
                lat_cell: 3271,
                long_cell: -11717,
                service: "Pothole".into(),
                council_district: "3".into(),
                request_count: 2,
            }]
        );
        assert_eq!(s.map.coarsening, 0);
        let (lat, long) = s.map.centre(&s.map.cells[0]);
        assert!((lat - 32.715).abs() < 1e-9 && (long + 117.165).abs() < 1e-9);
    }

    #[test]
    fn a_month_with_more_cells_than_the_cap_gets_a_coarser_grid_and_places_every_request() {
        let n = MAP_CELL_CAP + 20;
        let lats: Vec<String> = (0..n)
            .map(|i| format!("{}", 10.0 + i as f64 * 0.01 + 0.005))
            .collect();
        let frame = df!(
            "service_name" => vec!["Pothole"; n],
            "lat" => lats,
            "long" => vec!["-117.1"; n]
        )
        .unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert_eq!(s.map.coarsening, 1);
        assert!((s.map.cell_degrees() - 0.02).abs() < 1e-12);
        assert_eq!(s.map.cells.len(), n.div_ceil(2));
        assert_eq!(s.map.beyond_cap, 0);
        let placed: u64 = s.map.cells.iter().map(|c| c.request_count).sum();
        assert_eq!(placed, n as u64);
        let (lat, _) = s.map.centre(&s.map.cells[0]);
        assert!((10.0..10.0 + n as f64 * 0.01).contains(&lat), "{lat}");
    }

    #[test]
    fn cells_that_no_grid_can_fit_are_counted_so_summaries_stay_small() {
        // More distinct services than the cap, all at one spot: coarsening cannot help.
        let n = MAP_CELL_CAP + 20;
        let services: Vec<String> = (0..n).map(|i| format!("service {i:05}")).collect();
        let frame = df!(
            "service_name" => services,
            "lat" => vec!["32.7"; n],
            "long" => vec!["-117.1"; n]
        )
        .unwrap();
        let s = summarise(month(), &frame).unwrap();
        assert_eq!(s.map.cells.len(), MAP_CELL_CAP);
        assert_eq!(s.map.beyond_cap, 20);
        assert_eq!(s.map.without_coordinates, 0);
    }

    #[test]
    fn the_grid_is_the_finest_that_fits_the_cap_as_merging_level_by_level_finds() {
        // The definition: count the finest grid, then halve every cell index until the
        // cells fit (or the coarsest level is reached).
        fn merged(points: &[GridPoint]) -> (u32, PlHashMap<GridPoint, u64>) {
            let mut cells = cells_at(points, 0, None).unwrap();
            let mut level = 0;
            while cells.len() > MAP_CELL_CAP && level < MAX_COARSENING {
                let mut coarser = PlHashMap::default();
                for ((lat, long, s, d), n) in cells {
                    *coarser
                        .entry((lat.div_euclid(2), long.div_euclid(2), s, d))
                        .or_default() += n;
                }
                cells = coarser;
                level += 1;
            }
            (level, cells)
        }
        // Spreads from one spot to a whole city, and more services than any grid fits.
        let mut seed = 7u64;
        let mut next = move |below: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) % below) as i32
        };
        for (spread, services) in [(1, 3), (40, 5), (400, 12), (5000, 40), (3, 1600)] {
            let points: Vec<GridPoint> = (0..20_000)
                .map(|_| {
                    let lat = 3270 + next(spread) - spread as i32 / 2;
                    let long = -11710 + next(spread) - spread as i32 / 2;
                    (lat, long, next(services) as u32, next(9) as u32)
                })
                .collect();
            assert_eq!(
                grid(&points),
                merged(&points),
                "spread {spread}, services {services}"
            );
        }
        assert_eq!(grid(&[]), (0, PlHashMap::default()));
    }

    #[test]
    fn a_summary_written_before_the_trends_fields_still_reads() {
        let old = br#"{"month":"2019-01","total_requests":2,
            "services":[{"name":"Pothole","request_count":2}],
            "by_status":[],"by_council_district":[]}"#;
        let s = MonthSummary::from_json("2019/jan/summary.json", old).unwrap();
        assert_eq!(s.count_of("Pothole"), 2);
        assert_eq!(s.open_closed, None);
        assert_eq!(s.map, MapPoints::default());
    }
}
