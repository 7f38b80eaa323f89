//! The timestamp formats seen in city exports, normalised to ISO 8601.

use chrono::{NaiveDate, NaiveDateTime};

const DATETIME_FORMATS: [&str; 6] = [
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
];
const DATE_FORMATS: [&str; 2] = ["%Y-%m-%d", "%m/%d/%Y"];

/// `2019-01-05 13:22:00`, `2019-01-05T13:22:00.000`, `01/05/2019 13:22` or `2019-01-05`
/// → `2019-01-05T13:22:00`; `None` if the value is not a timestamp.
pub fn normalise_timestamp(value: &str) -> Option<String> {
    let value = value.trim();
    // The common case, already canonical, is checked without allocating a parse.
    if value.len() == 19 && value.as_bytes()[10] == b'T' {
        if NaiveDateTime::parse_from_str(value, DATETIME_FORMATS[0]).is_ok() {
            return Some(value.to_owned());
        }
        return None;
    }
    let canonical = |dt: NaiveDateTime| dt.format("%Y-%m-%dT%H:%M:%S").to_string();
    DATETIME_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
        .or_else(|| {
            DATE_FORMATS
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(value, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_export_formats() {
        for (input, want) in [
            ("2019-01-05T13:22:00", "2019-01-05T13:22:00"),
            ("2019-01-05 13:22:00", "2019-01-05T13:22:00"),
            ("2019-01-05T13:22:00.000", "2019-01-05T13:22:00"),
            ("01/05/2019 13:22", "2019-01-05T13:22:00"),
            ("2019-01-05", "2019-01-05T00:00:00"),
        ] {
            assert_eq!(normalise_timestamp(input).as_deref(), Some(want), "{input}");
        }
    }

    #[test]
    fn refuses_impossible_dates() {
        for bad in [
            "31/02/2019 25:61",
            "2019-02-30T00:00:00",
            "yesterday",
            "2019-13-01",
        ] {
            assert_eq!(normalise_timestamp(bad), None, "{bad}");
        }
    }
}
