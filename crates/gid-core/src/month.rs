use std::fmt;
use std::str::FromStr;

const ABBREVIATIONS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// A calendar month, the unit of work: every stage runs on one month at a time.
///
/// Parsed from `YYYY-MM` (as typed on the command line) and rendered the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: u16,
    month: u8,
}

/// Why a month could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MonthError {
    /// The text (given) is not `YYYY-MM`.
    #[error("`{0}` is not a month: expected YYYY-MM, e.g. 2019-01")]
    Syntax(String),
    /// The month number (in the `YYYY-MM` given) is not 1 to 12.
    #[error("`{0}` is not a month: the month must be 01 to 12")]
    MonthOutOfRange(String),
    /// `from` is after `to`.
    #[error("empty month range: {from} is after {to}")]
    EmptyRange {
        /// The first month asked for.
        from: Month,
        /// The last month asked for.
        to: Month,
    },
    /// The range is longer than [`MonthRange::MAX_MONTHS`].
    #[error("the range {from} to {to} is {months} months long, more than the {max} (50 years) one run takes", max = MonthRange::MAX_MONTHS)]
    RangeTooLong {
        /// The first month asked for.
        from: Month,
        /// The last month asked for.
        to: Month,
        /// Months in the range.
        months: usize,
    },
}

impl Month {
    /// Builds a month; `month` is 1-based.
    pub fn new(year: u16, month: u8) -> Result<Self, MonthError> {
        if !(1..=12).contains(&month) {
            return Err(MonthError::MonthOutOfRange(format!("{year}-{month:02}")));
        }
        Ok(Self { year, month })
    }

    /// The year, e.g. 2019.
    pub fn year(self) -> u16 {
        self.year
    }

    /// 1-based month number.
    pub fn number(self) -> u8 {
        self.month
    }

    /// Lowercase three-letter name, as the export layout uses (`jan`).
    pub fn abbreviation(self) -> &'static str {
        ABBREVIATIONS[usize::from(self.month - 1)]
    }

    /// Parses a lowercase three-letter month name (`jan`) back into its number.
    pub fn number_from_abbreviation(abbreviation: &str) -> Option<u8> {
        ABBREVIATIONS
            .iter()
            .position(|a| *a == abbreviation)
            .map(|i| i as u8 + 1)
    }

    /// Number of days in the month (leap years included).
    pub fn days(self) -> u8 {
        let y = self.year;
        match self.month {
            2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    /// The following month.
    pub fn succ(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before (January 0000 has none and stays itself).
    pub fn previous(self) -> Self {
        match (self.year, self.month) {
            (0, 1) => self,
            (year, 1) => Self {
                year: year - 1,
                month: 12,
            },
            (year, month) => Self {
                year,
                month: month - 1,
            },
        }
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = MonthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || MonthError::Syntax(s.to_owned());
        let (year, month) = s.trim().split_once('-').ok_or_else(syntax)?;
        if year.len() != 4 || month.len() != 2 {
            return Err(syntax());
        }
        let year: u16 = year.parse().map_err(|_| syntax())?;
        let month: u8 = month.parse().map_err(|_| syntax())?;
        Month::new(year, month).map_err(|_| MonthError::MonthOutOfRange(s.to_owned()))
    }
}

/// An inclusive range of months, iterated in calendar order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthRange {
    from: Month,
    to: Month,
}

impl MonthRange {
    /// The longest range one run takes. Every month of a range is planned (and on S3
    /// listed) before anything runs, so `--from 0000-01 --to 9999-12` would spend minutes
    /// on 120,000 empty months; 50 years covers any real backfill.
    pub const MAX_MONTHS: usize = 600;

    /// The months from `from` to `to`, both included; refused when empty or longer than
    /// [`MonthRange::MAX_MONTHS`].
    pub fn new(from: Month, to: Month) -> Result<Self, MonthError> {
        if from > to {
            return Err(MonthError::EmptyRange { from, to });
        }
        let range = Self { from, to };
        if range.len() > Self::MAX_MONTHS {
            return Err(MonthError::RangeTooLong {
                from,
                to,
                months: range.len(),
            });
        }
        Ok(range)
    }

    /// The range of one month.
    pub fn single(month: Month) -> Self {
        Self {
            from: month,
            to: month,
        }
    }

    /// The months, oldest first, both ends included.
    pub fn months(self) -> impl Iterator<Item = Month> {
        std::iter::successors(Some(self.from), move |m| {
            let next = m.succ();
            (next <= self.to).then_some(next)
        })
    }

    /// Months in the range: at least 1, at most [`MonthRange::MAX_MONTHS`].
    pub fn len(self) -> usize {
        let span = |m: Month| usize::from(m.year) * 12 + usize::from(m.month);
        span(self.to) - span(self.from) + 1
    }

    /// Always `false`: [`MonthRange::new`] refuses an empty range.
    pub fn is_empty(self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_year_month() {
        let m: Month = "2019-01".parse().unwrap();
        assert_eq!((m.year(), m.number(), m.abbreviation()), (2019, 1, "jan"));
        assert_eq!(m.to_string(), "2019-01");
    }

    #[test]
    fn rejects_bad_months_with_a_hint() {
        assert!(matches!(
            "2019-13".parse::<Month>(),
            Err(MonthError::MonthOutOfRange(_))
        ));
        let err = "jan-2019".parse::<Month>().unwrap_err();
        assert!(err.to_string().contains("YYYY-MM"), "{err}");
        assert!("2019-1".parse::<Month>().is_err());
    }

    #[test]
    fn range_crosses_year_boundaries() {
        let r = MonthRange::new("2018-11".parse().unwrap(), "2019-02".parse().unwrap()).unwrap();
        let names: Vec<String> = r.months().map(|m| m.to_string()).collect();
        assert_eq!(names, ["2018-11", "2018-12", "2019-01", "2019-02"]);
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn days_follow_the_gregorian_calendar() {
        let days = |s: &str| s.parse::<Month>().unwrap().days();
        assert_eq!(
            [
                days("2019-02"),
                days("2020-02"),
                days("1900-02"),
                days("2000-02")
            ],
            [28, 29, 28, 29]
        );
        assert_eq!([days("2019-04"), days("2019-12")], [30, 31]);
    }

    #[test]
    fn ranges_longer_than_fifty_years_are_refused_with_their_length_and_the_way_out() {
        let month = |s: &str| s.parse::<Month>().unwrap();
        let longest = MonthRange::new(month("1970-01"), month("2019-12")).unwrap();
        assert_eq!(longest.len(), MonthRange::MAX_MONTHS);
        let err = MonthRange::new(month("0000-01"), month("9999-12")).unwrap_err();
        assert_eq!(
            err,
            MonthError::RangeTooLong {
                from: month("0000-01"),
                to: month("9999-12"),
                months: 120_000
            }
        );
        let text = err.to_string();
        assert!(text.contains("120000 months long"), "{text}");
        assert!(MonthRange::new(month("1970-01"), month("2020-01")).is_err());
    }

    #[test]
    fn reversed_range_is_an_error() {
        let err = MonthRange::new("2019-02".parse().unwrap(), "2019-01".parse().unwrap());
        assert!(err.is_err());
    }
}

/// A month as a scheduler names it: a fixed `YYYY-MM`, or relative to today in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonthSpec {
    /// This month, whatever the date.
    Fixed(Month),
    /// The last complete month (what a run on the 1st or 2nd of a month reports).
    Previous,
    /// The month in progress.
    Current,
}

impl MonthSpec {
    /// The month this names at `now`, on the calendar of `zone`.
    pub fn at(self, now: chrono::DateTime<chrono::Utc>, zone: chrono_tz::Tz) -> Month {
        use chrono::Datelike;
        let today = now.with_timezone(&zone).date_naive();
        let current = Month::new(today.year() as u16, today.month() as u8)
            .expect("a calendar date has a valid month");
        match self {
            MonthSpec::Fixed(month) => month,
            MonthSpec::Current => current,
            MonthSpec::Previous => current.previous(),
        }
    }
}

impl std::str::FromStr for MonthSpec {
    type Err = MonthError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "previous" => Ok(MonthSpec::Previous),
            "current" => Ok(MonthSpec::Current),
            other => other.parse().map(MonthSpec::Fixed),
        }
    }
}

#[cfg(test)]
mod spec_tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn previous_and_current_follow_the_city_calendar_not_utc() {
        let la = chrono_tz::America::Los_Angeles;
        // 2019-02-01 05:30 UTC is still January 31st in San Diego.
        let now = chrono::Utc.with_ymd_and_hms(2019, 2, 1, 5, 30, 0).unwrap();
        assert_eq!(MonthSpec::Current.at(now, la).to_string(), "2019-01");
        assert_eq!(MonthSpec::Previous.at(now, la).to_string(), "2018-12");
        assert_eq!(
            MonthSpec::Current.at(now, chrono_tz::UTC).to_string(),
            "2019-02"
        );
        // January's previous month is last year's December.
        let now = chrono::Utc.with_ymd_and_hms(2020, 1, 15, 12, 0, 0).unwrap();
        assert_eq!(MonthSpec::Previous.at(now, la).to_string(), "2019-12");
        assert_eq!(
            "2019-07"
                .parse::<MonthSpec>()
                .unwrap()
                .at(now, la)
                .to_string(),
            "2019-07"
        );
        assert!("last".parse::<MonthSpec>().is_err());
    }
}
