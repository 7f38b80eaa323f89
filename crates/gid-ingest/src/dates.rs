//! The timestamp formats seen in city exports, normalised to ISO 8601.

use std::borrow::Cow;

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
    normalised(value).map(Cow::into_owned)
}

/// [`normalise_timestamp`], borrowing `value` when it is canonical already (every row of
/// most exports): no allocation per row.
pub(crate) fn normalised(value: &str) -> Option<Cow<'_, str>> {
    let value = value.trim();
    // Exports write `2019-01-05T13:22:00` or `2019-01-05 13:22:00` on every row: read
    // those by position (chrono's format strings cost ~10x more, twice per row). Anything
    // else, or any value this does not accept, goes through the formats.
    iso_by_position(value).or_else(|| by_formats(value))
}

/// The formats one after the other (`value` is trimmed).
fn by_formats(value: &str) -> Option<Cow<'_, str>> {
    // The common case, already canonical, is checked without allocating a parse.
    if value.len() == 19 && value.as_bytes()[10] == b'T' {
        if NaiveDateTime::parse_from_str(value, DATETIME_FORMATS[0]).is_ok() {
            return Some(Cow::Borrowed(value));
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
        .map(|dt| Cow::Owned(canonical(dt)))
}

/// `YYYY-MM-DD[T ]HH:MM:SS` with two-digit fields, a real calendar date and a time
/// without a leap second → the canonical text; `None` for anything else (the caller then
/// tries every format, so this only decides how fast a value is read, never whether).
fn iso_by_position(value: &str) -> Option<Cow<'_, str>> {
    let b = value.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let digits = |at: usize, n: usize| -> Option<u32> {
        b[at..at + n].iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(digits(0, 4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(5, 2)?, digits(8, 2)?)?;
    date.and_hms_opt(digits(11, 2)?, digits(14, 2)?, digits(17, 2)?)?;
    if b[10] == b'T' {
        return Some(Cow::Borrowed(value));
    }
    let mut canonical = value.to_owned();
    canonical.replace_range(10..11, "T");
    Some(Cow::Owned(canonical))
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
    fn reading_by_position_agrees_with_the_formats() {
        for value in [
            "2019-01-05T13:22:00",
            "2019-01-05 13:22:00",
            "2020-02-29 23:59:59",
            "0001-01-01T00:00:00",
            " 2019-12-31T00:00:00 ",
            "2019-02-29 10:00:00",
            "2019-01-05T24:00:00",
            "2019-01-05T23:59:60",
            "2019-01-05 23:59:60",
            "2019-01-05T13:22:0x",
            "2019-1-05T13:22:00 ",
            "2019-01-05X13:22:00",
            "+019-01-05T13:22:00",
            "+019-01-05 13:22:00",
            "2019-01-05T13:22:00.5",
            "2019-01-05",
        ] {
            assert_eq!(
                normalise_timestamp(value),
                by_formats(value.trim()).map(Cow::into_owned),
                "{value:?}"
            );
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
