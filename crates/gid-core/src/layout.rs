use crate::{Month, ObjectKey};

/// Why a month-prefix template was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// The template (given) lacks a placeholder or the closing `/`.
    #[error("layout.month_prefix `{0}` must contain {{year}} and one of {{mon}} or {{mm}}, and end with '/'")]
    Template(String),
}

/// Maps a month onto key prefixes, from a template such as `{year}/{mon}/`
/// (placeholders `{year}` → `2019`, `{mon}` → `jan`, `{mm}` → `01`).
///
/// The same layout is used in every bucket, so `2019/jan/` names the month's exports in
/// the requests bucket, its reports in the reports bucket and its stage outputs in the
/// work bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    template: String,
}

impl Layout {
    /// Validates `template`: it must hold `{year}`, one of `{mon}` or `{mm}`, and end
    /// with `/`, so that every month gets a prefix of its own.
    pub fn new(template: impl Into<String>) -> Result<Self, LayoutError> {
        let template = template.into();
        let has_month = template.contains("{mon}") || template.contains("{mm}");
        if !template.contains("{year}") || !has_month || !template.ends_with('/') {
            return Err(LayoutError::Template(template));
        }
        let probe = Self {
            template: template.clone(),
        };
        // The rendered prefix must itself be a valid key, or every key under it would fail later.
        ObjectKey::new(probe.month_prefix(Month::new(2019, 1).expect("valid month")))
            .map_err(|_| LayoutError::Template(template))?;
        Ok(probe)
    }

    /// The template the layout was made from (`{year}/{mon}/`).
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The month's prefix, e.g. `2019/jan/`.
    pub fn month_prefix(&self, month: Month) -> String {
        self.template
            .replace("{year}", &format!("{:04}", month.year()))
            .replace("{mon}", month.abbreviation())
            .replace("{mm}", &format!("{:02}", month.number()))
    }

    /// A key under the month's prefix.
    pub fn month_key(&self, month: Month, name: &str) -> ObjectKey {
        ObjectKey::new(format!("{}{name}", self.month_prefix(month)))
            .expect("layout prefixes and gid's own file names are valid keys")
    }

    /// Recognises the month a key belongs to, if the key sits under a month prefix.
    /// Used to discover months from a bucket listing.
    pub fn month_of_key(&self, key: &str) -> Option<Month> {
        // Templates are short; trying every month of a plausible year range would be
        // wasteful, so match the template segment by segment instead.
        let mut year = None;
        let mut number = None;
        let mut rest = key;
        let mut template = self.template.as_str();
        while !template.is_empty() {
            if let Some(t) = template.strip_prefix("{year}") {
                let digits = rest.get(..4)?;
                year = Some(digits.parse::<u16>().ok()?);
                rest = &rest[4..];
                template = t;
            } else if let Some(t) = template.strip_prefix("{mon}") {
                let abbreviation = rest.get(..3)?;
                number = Some(Month::number_from_abbreviation(abbreviation)?);
                rest = &rest[3..];
                template = t;
            } else if let Some(t) = template.strip_prefix("{mm}") {
                number = Some(rest.get(..2)?.parse::<u8>().ok()?);
                rest = &rest[2..];
                template = t;
            } else {
                let c = template.chars().next()?;
                rest = rest.strip_prefix(c)?;
                template = &template[c.len_utf8()..];
            }
        }
        Month::new(year?, number?).ok()
    }
}

/// Keys of one month's stage outputs in the work bucket.
#[derive(Debug, Clone)]
pub struct WorkKeys {
    layout: Layout,
    month: Month,
}

impl WorkKeys {
    /// The keys of `month` under `layout`.
    pub fn new(layout: &Layout, month: Month) -> Self {
        Self {
            layout: layout.clone(),
            month,
        }
    }

    /// The month's combined request table (ingest output).
    pub fn requests(&self) -> ObjectKey {
        self.layout.month_key(self.month, "requests.parquet")
    }

    /// The ingest report: files read, rows kept, rows quarantined.
    pub fn ingest_report(&self) -> ObjectKey {
        self.layout.month_key(self.month, "ingest.json")
    }

    /// The month's aggregates (aggregate output).
    pub fn summary(&self) -> ObjectKey {
        self.layout.month_key(self.month, "summary.json")
    }

    /// The run manifest of one stage of the month (e.g. `2019/jan/manifests/ingest.json`).
    pub fn manifest(&self, stage: &str) -> ObjectKey {
        self.layout
            .month_key(self.month, &format!("manifests/{stage}.json"))
    }

    /// The month's enriched e-scooter requests (scooter-pickups output).
    pub fn enriched(&self) -> ObjectKey {
        self.layout.month_key(self.month, "enriched.parquet")
    }

    /// The month's enrichment answer cache.
    pub fn enrich_cache(&self, cache_name: &str) -> ObjectKey {
        self.layout.month_key(self.month, cache_name)
    }

    /// The month's alert ledger (which threshold alerts were sent).
    pub fn alerts(&self, ledger_name: &str) -> ObjectKey {
        self.layout.month_key(self.month, ledger_name)
    }

    /// Prefix under which the month's quarantined rows are kept.
    pub fn quarantine_prefix(&self) -> String {
        format!("quarantine/{}", self.layout.month_prefix(self.month))
    }

    /// Quarantine object for rows refused from one source file.
    pub fn quarantine_for(&self, source: &ObjectKey) -> ObjectKey {
        ObjectKey::new(format!(
            "{}{}.quarantine.csv",
            self.quarantine_prefix(),
            source.file_name()
        ))
        .expect("a valid file name under a valid prefix is a valid key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_course_layout() {
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let m = Month::new(2019, 12).unwrap();
        assert_eq!(layout.month_prefix(m), "2019/dec/");
        let numeric = Layout::new("exports/{year}-{mm}/").unwrap();
        assert_eq!(numeric.month_prefix(m), "exports/2019-12/");
    }

    #[test]
    fn refuses_templates_without_a_month() {
        assert!(Layout::new("{year}/").is_err());
        assert!(Layout::new("{year}/{mon}").is_err());
        assert!(Layout::new("../{year}/{mon}/").is_err());
    }

    #[test]
    fn discovers_months_from_keys() {
        let layout = Layout::new("{year}/{mon}/").unwrap();
        assert_eq!(
            layout.month_of_key("2016/may/part-1.csv"),
            Some(Month::new(2016, 5).unwrap())
        );
        assert_eq!(layout.month_of_key("2016/xyz/part-1.csv"), None);
        assert_eq!(layout.month_of_key("contacts.csv"), None);
        let numeric = Layout::new("x/{year}-{mm}/").unwrap();
        assert_eq!(
            numeric.month_of_key("x/2020-02/a.csv"),
            Some(Month::new(2020, 2).unwrap())
        );
    }

    #[test]
    fn quarantine_keys_name_the_source_file() {
        let layout = Layout::new("{year}/{mon}/").unwrap();
        let keys = WorkKeys::new(&layout, Month::new(2019, 1).unwrap());
        let src = ObjectKey::new("2019/jan/part-003.csv").unwrap();
        assert_eq!(
            keys.quarantine_for(&src).as_str(),
            "quarantine/2019/jan/part-003.csv.quarantine.csv"
        );
    }
}
