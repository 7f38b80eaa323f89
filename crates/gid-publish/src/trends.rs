//! The site's trends: `trends.html` and `trends.csv` at the site root, built from every
//! published month's summary — never from raw rows.
//!
//! Publish keeps a [`TrendsState`] in the work bucket ([`TRENDS_STATE_KEY`]): each
//! published month's summary (without its map cells, which trends do not use) and the
//! ETag of the `summary.json` it came from. Publishing a month replaces that month's
//! entry only, so rebuilding trends after one month is republished reads one small
//! object, whatever the number of months, and never re-reads the other summaries. The
//! months in the state are the months on the site: a month aggregated but not published
//! is not in the trends.
//!
//! `trends.csv` is tidy (one value per row): `month,service,dimension,group,metric,value`
//! — see [`trends_csv`].

use std::collections::{BTreeMap, BTreeSet};

use gid_aggregate::{GroupCount, MapPoints, MonthSummary};
use gid_core::{Layout, Month, ObjectKey};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use crate::render::{
    lang_folder, language_name, neutralise_formula, page_in, relative_href, PageText, SOURCE_LANG,
    TRENDS_BACKLOG_NOTE, TRENDS_DOWNLOADS_NOTE,
};
use crate::RenderedFile;

/// The trends page at the site root.
pub const TRENDS_HTML: &str = "trends.html";
/// The trends as tidy CSV at the site root.
pub const TRENDS_CSV: &str = "trends.csv";
/// Where publish keeps the [`TrendsState`], in the work bucket.
pub const TRENDS_STATE_KEY: &str = "trends.json";
/// Risers and fallers listed for the latest month.
const MOVERS: usize = 5;

/// Why the trends could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TrendsError {
    /// The persisted state does not parse (edited by hand, or cut short).
    #[error(
        "the trends state at {location} is unreadable ({source}); delete it and republish the \
         months (`monthly-report --all --stage publish --force`) to rebuild it"
    )]
    Corrupt {
        /// `s3://bucket/key` of the state.
        location: String,
        /// The JSON parser's complaint (line and column).
        #[source]
        source: serde_json::Error,
    },
}

/// One published month as the trends know it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendsMonth {
    /// The ETag of the `summary.json` this entry was taken from.
    pub summary_etag: String,
    /// That summary, without map cells.
    pub summary: MonthSummary,
}

/// Every published month's summary, by `YYYY-MM` (so in calendar order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrendsState {
    /// The published months.
    pub months: BTreeMap<String, TrendsMonth>,
}

impl TrendsState {
    /// Reads a persisted state; `location` names it in the error.
    pub fn from_json(location: &str, bytes: &[u8]) -> Result<Self, TrendsError> {
        serde_json::from_slice(bytes).map_err(|source| TrendsError::Corrupt {
            location: location.to_owned(),
            source,
        })
    }

    /// The state's bytes (compact: only gid reads it).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the trends state serialises")
    }

    /// Records a month's summary as published from the `summary.json` with `summary_etag`;
    /// false when the state already held exactly that.
    pub fn record(&mut self, summary_etag: &str, summary: &MonthSummary) -> bool {
        let entry = TrendsMonth {
            summary_etag: summary_etag.to_owned(),
            summary: MonthSummary {
                map: MapPoints::default(),
                ..summary.clone()
            },
        };
        let changed = self.months.get(&summary.month) != Some(&entry);
        self.months.insert(summary.month.clone(), entry);
        changed
    }

    /// Every service of the published months, once each, in order (what the trends page
    /// names, and so what a translation of it translates).
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.summaries()
            .flat_map(|s| s.services.iter().map(|g| g.name.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
    }

    fn summaries(&self) -> impl Iterator<Item = &MonthSummary> {
        self.months.values().map(|m| &m.summary)
    }
}

/// `trends.csv` and a `trends.html` per text of `texts` (English at the root, another
/// language under its folder: `es/trends.html`) for the months of `state`. The CSV is
/// data, so there is one whatever the languages.
pub fn render_trends(
    layout: &Layout,
    state: &TrendsState,
    texts: &[PageText],
) -> Vec<RenderedFile> {
    let langs: Vec<String> = texts.iter().map(|t| t.lang().to_owned()).collect();
    let mut files = vec![RenderedFile::csv(
        ObjectKey::new(TRENDS_CSV).expect("valid key"),
        trends_csv(state),
    )];
    files.extend(texts.iter().map(|text| {
        RenderedFile::html(
            trends_key(text.lang()),
            trends_html(layout, state, text, &langs),
        )
    }));
    files
}

/// Where the trends page in `lang` lives: `trends.html`, `es/trends.html`.
pub fn trends_key(lang: &str) -> ObjectKey {
    ObjectKey::new(format!("{}{TRENDS_HTML}", lang_folder(lang))).expect("valid key")
}

/// One key's monthly counts, aligned with [`Trends::months`].
struct Series {
    key: String,
    counts: Vec<u64>,
}

/// A month's count against the month before and the year so far.
struct Change {
    /// Against the previous calendar month, when that month is published.
    change: Option<i64>,
    /// The year's published months up to this one.
    year_to_date: u64,
}

/// The published months and their series.
struct Trends<'a> {
    months: Vec<Month>,
    summaries: Vec<&'a MonthSummary>,
}

impl<'a> Trends<'a> {
    fn new(state: &'a TrendsState) -> Self {
        let summaries: Vec<&MonthSummary> = state.summaries().collect();
        Self {
            months: summaries.iter().map(|s| s.month()).collect(),
            summaries,
        }
    }

    /// A series per key of `groups`, most requests in the latest month first.
    fn series(&self, groups: impl Fn(&MonthSummary) -> &[GroupCount]) -> Vec<Series> {
        let keys: BTreeSet<&str> = self
            .summaries
            .iter()
            .flat_map(|s| groups(s).iter().map(|g| g.name.as_str()))
            .collect();
        let mut series: Vec<Series> = keys
            .into_iter()
            .map(|key| Series {
                key: key.to_owned(),
                counts: self
                    .summaries
                    .iter()
                    .map(|s| {
                        groups(s)
                            .iter()
                            .find(|g| g.name == key)
                            .map_or(0, |g| g.request_count)
                    })
                    .collect(),
            })
            .collect();
        series.sort_by(|a, b| {
            b.counts
                .last()
                .cmp(&a.counts.last())
                .then_with(|| a.key.cmp(&b.key))
        });
        series
    }

    fn totals(&self) -> Series {
        Series {
            key: "all services".into(),
            counts: self.summaries.iter().map(|s| s.total_requests).collect(),
        }
    }

    /// Each month's change and year-to-date total of `counts`.
    fn changes(&self, counts: &[u64]) -> Vec<Change> {
        let mut out: Vec<Change> = Vec::with_capacity(counts.len());
        for (i, (&month, &count)) in self.months.iter().zip(counts).enumerate() {
            let previous = (i > 0 && self.months[i - 1] == month.previous()).then(|| counts[i - 1]);
            let before_in_year = match out.last() {
                Some(last) if self.months[i - 1].year() == month.year() => last.year_to_date,
                _ => 0,
            };
            out.push(Change {
                change: previous.map(|p| count as i64 - p as i64),
                year_to_date: before_in_year + count,
            });
        }
        out
    }
}

fn signed(change: Option<i64>) -> String {
    match change {
        Some(c) if c > 0 => format!("+{c}"),
        Some(c) => c.to_string(),
        None => "—".into(),
    }
}

fn days(value: Option<u32>) -> String {
    value.map_or_else(|| "—".into(), |d| d.to_string())
}

/// A line over the months, a dot per month with its count as tooltip.
fn line_chart(
    text: &PageText,
    months: &[Month],
    counts: &[u64],
    label: &str,
    width: f64,
    height: f64,
) -> Markup {
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let pad = 4.0;
    let step = if months.len() > 1 {
        (width - 2.0 * pad) / (months.len() - 1) as f64
    } else {
        0.0
    };
    let points: Vec<(f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let x = pad + i as f64 * step;
            let y = height - pad - (c as f64 / max) * (height - 2.0 * pad);
            ((x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0)
        })
        .collect();
    let polyline: Vec<String> = points.iter().map(|(x, y)| format!("{x},{y}")).collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(height)
            viewBox=(format!("0 0 {width} {height}")) {
            title { (label) " " (text.t("per month")) }
            polyline points=(polyline.join(" ")) fill="none" stroke="#2b6cb0" stroke-width="1.5" {}
            @for ((x, y), (month, count)) in points.iter().zip(months.iter().zip(counts)) {
                circle cx=(x) cy=(y) r="2.5" fill="#2b6cb0" { title { (label) ", " (month) ": " (count) } }
            }
        }
    }
}

/// A table of series: sparkline, latest month, change and year to date. `name` is a
/// series' key as the reader sees it.
fn series_table<'a>(
    text: &PageText,
    trends: &Trends,
    (caption, header): (&str, &str),
    series: &'a [Series],
    name: impl Fn(&'a str) -> &'a str,
) -> Markup {
    html! {
        table {
            caption { (text.t(caption)) }
            thead { tr {
                th { (header) } th { (text.t("per month")) } th.n { (text.t("latest month")) }
                th.n { (text.t("change")) } th.n { (text.t("year to date")) }
            } }
            tbody {
                @for s in series {
                    @let latest = trends.changes(&s.counts).pop();
                    @let key = name(&s.key);
                    tr {
                        td { (key) }
                        td { (line_chart(text, &trends.months, &s.counts, key, 180.0, 36.0)) }
                        td.n { (s.counts.last().copied().unwrap_or(0)) }
                        td.n { (signed(latest.as_ref().and_then(|c| c.change))) }
                        td.n { (latest.map_or(0, |c| c.year_to_date)) }
                    }
                }
            }
        }
    }
}

/// Risers and fallers of the latest month among `series` (`name`: a key as the reader
/// sees it).
fn movers<'a>(
    text: &PageText,
    trends: &Trends,
    series: &'a [Series],
    name: impl Fn(&'a str) -> &'a str,
) -> Markup {
    let mut changed: Vec<(&str, i64)> = series
        .iter()
        .filter_map(|s| Some((name(&s.key), trends.changes(&s.counts).pop()?.change?)))
        .collect();
    changed.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let risers: Vec<_> = changed.iter().filter(|c| c.1 > 0).take(MOVERS).collect();
    let fallers: Vec<_> = changed
        .iter()
        .rev()
        .filter(|c| c.1 < 0)
        .take(MOVERS)
        .collect();
    html! {
        @if changed.is_empty() {
            p { (text.t("The month before the latest is not published: nothing to compare with.")) }
        } @else {
            h3 { (text.t("Top risers")) }
            @if risers.is_empty() { p { (text.t("None.")) } }
            ol { @for (key, c) in &risers { li { (key) " " (signed(Some(*c))) } } }
            h3 { (text.t("Top fallers")) }
            @if fallers.is_empty() { p { (text.t("None.")) } }
            ol { @for (key, c) in &fallers { li { (key) " " (signed(Some(*c))) } } }
        }
    }
}

/// Open (top) and closed (bottom) requests per month as stacked bars.
fn backlog_chart(text: &PageText, trends: &Trends) -> Markup {
    const BAR: f64 = 28.0;
    const GAP: f64 = 12.0;
    const HEIGHT: f64 = 160.0;
    let counts: Vec<(u64, u64)> = trends
        .summaries
        .iter()
        .map(|s| s.open_closed.map_or((0, 0), |oc| (oc.open, oc.closed)))
        .collect();
    let max = counts.iter().map(|(o, c)| o + c).max().unwrap_or(0).max(1) as f64;
    let width = GAP + counts.len() as f64 * (BAR + GAP);
    let h = |n: u64| ((n as f64 / max) * HEIGHT * 10.0).round() / 10.0;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" width=(width) height=(HEIGHT + 20.0)
            viewBox=(format!("0 0 {width} {}", HEIGHT + 20.0)) {
            title { (text.t("Open and closed requests per month")) }
            @for (i, (month, (open, closed))) in trends.months.iter().zip(&counts).enumerate() {
                @let x = GAP + i as f64 * (BAR + GAP);
                rect x=(x) y=(HEIGHT - h(*closed)) width=(BAR) height=(h(*closed)) fill="#9bbbe0" {
                    title { (month) ": " (closed) " " (text.t("closed")) }
                }
                rect x=(x) y=(HEIGHT - h(*closed) - h(*open)) width=(BAR) height=(h(*open)) fill="#d55e00" {
                    title { (month) ": " (open) " " (text.t("open")) }
                }
                text x=(x + BAR / 2.0) y=(HEIGHT + 14.0) text-anchor="middle" font-size="10" { (month) }
            }
        }
    }
}

/// `trends.html` in `text`'s language: every published month, per service and per
/// council district, with the backlog and the downloads. Inline SVG, no script.
///
/// On a site published in `langs` (more than one) the page names its versions
/// (`hreflang`) and links them; a translation links the month reports in its own
/// language, and the data (maps, summaries, `trends.csv`) it shares with English.
pub fn trends_html(
    layout: &Layout,
    state: &TrendsState,
    text: &PageText,
    langs: &[String],
) -> String {
    // "Get It Done" is the service's name, never translated.
    let title = if text.lang() == SOURCE_LANG {
        "Get It Done trends".to_owned()
    } else {
        format!("{} (Get It Done)", text.t("Trends"))
    };
    let title = title.as_str();
    let trends = Trends::new(state);
    let services = trends.series(|s| &s.services);
    let districts = trends.series(|s| &s.by_council_district);
    let totals = trends.totals();
    let lang = text.lang();
    // From the page's folder (`es/`) back to the site root.
    let root = match lang_folder(lang).matches('/').count() {
        0 => "./".to_owned(),
        depth => "../".repeat(depth),
    };
    let at_root = |key: &str| format!("{root}{}", &relative_href(key)[2..]);
    // The report in the page's language sits beside the page: relative to its folder.
    let report_link =
        |month: Month| relative_href(layout.month_key(month, "final_report.html").as_str());
    let data_link = |month: Month, file: &str| at_root(layout.month_key(month, file).as_str());
    let alternates: Vec<(String, String)> = if langs.len() > 1 {
        langs
            .iter()
            .map(|l| (l.clone(), at_root(trends_key(l).as_str())))
            .collect()
    } else {
        Vec::new()
    };
    let service = |name| text.service(name);
    let as_is = |name| name;
    page_in(
        lang,
        &alternates,
        title,
        html! {
            p {
                a href=(at_root("index.html")) { (text.t("All reports")) }
                " · " a href=(at_root(TRENDS_CSV)) { "trends.csv" }
                @for (other, href) in alternates.iter().filter(|(l, _)| l != lang) {
                    " · " a href=(href) hreflang=(other) lang=(other) { (language_name(other)) }
                }
            }
            h1 { (title) }
            @match (trends.months.first(), trends.months.last()) {
                (Some(first), Some(latest)) => {
                    p {
                        (trends.months.len()) " "
                        @if trends.months.len() == 1 { (text.t("published month")) } @else { (text.t("published months")) }
                        ", " (first) " " (text.t("to")) " " (latest) "."
                    }
                    h2 { (text.t("Requests per month")) }
                    (line_chart(text, &trends.months, &totals.counts, text.t(&totals.key), 640.0, 160.0))
                    (series_table(text, &trends, ("All requests", text.t("requests")), std::slice::from_ref(&totals), |k| text.t(k)))
                    h2 { (text.t("Per service")) }
                    h3 { (text.t("Latest month against the month before")) " (" (latest) ")" }
                    (movers(text, &trends, &services, service))
                    (series_table(text, &trends, ("Requests per service", "service_name"), &services, service))
                    h2 { (text.t("Per council district")) }
                    (movers(text, &trends, &districts, as_is))
                    (series_table(text, &trends, ("Requests per council district", "council_district"), &districts, as_is))
                    h2 { (text.t("Backlog")) }
                    p { (text.t(TRENDS_BACKLOG_NOTE)) }
                    (backlog_chart(text, &trends))
                    table {
                        caption { (text.t("Open and closed requests, and case age in days")) }
                        thead { tr {
                            th { (text.t("month")) } th.n { (text.t("requests")) } th.n { (text.t("open")) } th.n { (text.t("closed")) }
                            th.n { (text.t("median case age")) } th.n { (text.t("90th percentile")) }
                        } }
                        tbody {
                            @for s in &trends.summaries {
                                tr {
                                    td { (s.month) }
                                    td.n { (s.total_requests) }
                                    td.n { (s.open_closed.map_or("—".into(), |oc| oc.open.to_string())) }
                                    td.n { (s.open_closed.map_or("—".into(), |oc| oc.closed.to_string())) }
                                    td.n { (days(s.case_age.map(|a| a.median_days))) }
                                    td.n { (days(s.case_age.map(|a| a.p90_days))) }
                                }
                            }
                        }
                    }
                    h2 { (text.t("Downloads")) }
                    p { a href=(at_root(TRENDS_CSV)) { "trends.csv" } ": " (text.t(TRENDS_DOWNLOADS_NOTE)) }
                    table {
                        caption { (text.t("Each month's files")) }
                        thead { tr { th { (text.t("month")) } th { (text.t("report")) } th { (text.t("map")) } th { (text.t("summary")) } } }
                        tbody {
                            @for month in trends.months.iter().rev() {
                                tr {
                                    td { (month) }
                                    td { a href=(report_link(*month)) { "final_report.html" } }
                                    td { a href=(data_link(*month, "map.html")) { "map.html" } }
                                    td { a href=(data_link(*month, "summary.json")) { "summary.json" } }
                                }
                            }
                        }
                    }
                }
                _ => { p { (text.t("No month is published yet.")) } }
            }
        },
    )
}

/// `trends.csv`: one value per row, `month,service,dimension,group,metric,value`.
///
/// - `service` is a service name, or empty for all services;
/// - `dimension` is `all` (group empty), `status` or `council_district` (group: the status
///   or district);
/// - `metric` is `requests`; for all services and for each service across all groups also
///   `requests_change` (against the previous calendar month, when it is published) and
///   `requests_ytd`, and `case_age_median_days`, `case_age_p90_days`, `case_age_requests`;
///   per district (all services) `requests_change` and `requests_ytd` too; for all services
///   `open` and `closed`.
///
/// Text cells are neutralised for spreadsheets; numbers are written as they are, so
/// `pandas.read_csv` reads `value` as integers.
pub fn trends_csv(state: &TrendsState) -> Vec<u8> {
    let trends = Trends::new(state);
    let mut rows: Vec<[String; 6]> = Vec::new();
    let mut push =
        |month: &str, service: &str, dimension: &str, group: &str, metric: &str, value: String| {
            rows.push([
                month.to_owned(),
                service.to_owned(),
                dimension.to_owned(),
                group.to_owned(),
                metric.to_owned(),
                value,
            ]);
        };
    let services = trends.series(|s| &s.services);
    let districts = trends.series(|s| &s.by_council_district);
    let totals = trends.totals();
    let changes_of = |counts: &[u64]| trends.changes(counts);
    let total_changes = changes_of(&totals.counts);
    let service_changes: Vec<Vec<Change>> =
        services.iter().map(|s| changes_of(&s.counts)).collect();
    let district_changes: Vec<Vec<Change>> =
        districts.iter().map(|s| changes_of(&s.counts)).collect();
    for (i, summary) in trends.summaries.iter().enumerate() {
        let month = summary.month.as_str();
        let mut with_change =
            |service: &str, dimension: &str, group: &str, count: u64, change: &Change| {
                push(
                    month,
                    service,
                    dimension,
                    group,
                    "requests",
                    count.to_string(),
                );
                if let Some(c) = change.change {
                    push(
                        month,
                        service,
                        dimension,
                        group,
                        "requests_change",
                        c.to_string(),
                    );
                }
                push(
                    month,
                    service,
                    dimension,
                    group,
                    "requests_ytd",
                    change.year_to_date.to_string(),
                );
            };
        with_change("", "all", "", summary.total_requests, &total_changes[i]);
        for (s, changes) in services.iter().zip(&service_changes) {
            if summary.services.iter().any(|g| g.name == s.key) {
                with_change(&s.key, "all", "", s.counts[i], &changes[i]);
            }
        }
        for (d, changes) in districts.iter().zip(&district_changes) {
            if summary.by_council_district.iter().any(|g| g.name == d.key) {
                with_change("", "council_district", &d.key, d.counts[i], &changes[i]);
            }
        }
        for g in &summary.by_status {
            push(
                month,
                "",
                "status",
                &g.name,
                "requests",
                g.request_count.to_string(),
            );
        }
        for c in &summary.status_by_service {
            push(
                month,
                &c.service,
                "status",
                &c.group,
                "requests",
                c.request_count.to_string(),
            );
        }
        for c in &summary.district_by_service {
            push(
                month,
                &c.service,
                "council_district",
                &c.group,
                "requests",
                c.request_count.to_string(),
            );
        }
        if let Some(oc) = summary.open_closed {
            push(month, "", "all", "", "open", oc.open.to_string());
            push(month, "", "all", "", "closed", oc.closed.to_string());
        }
        let ages = summary.case_age.iter().map(|a| ("", a)).chain(
            summary
                .case_age_by_service
                .iter()
                .map(|s| (s.service.as_str(), &s.age)),
        );
        for (service, age) in ages {
            push(
                month,
                service,
                "all",
                "",
                "case_age_median_days",
                age.median_days.to_string(),
            );
            push(
                month,
                service,
                "all",
                "",
                "case_age_p90_days",
                age.p90_days.to_string(),
            );
            push(
                month,
                service,
                "all",
                "",
                "case_age_requests",
                age.requests.to_string(),
            );
        }
    }
    let mut writer = csv::WriterBuilder::new()
        // Quotes a cell holding `;` anywhere, as the report CSVs do (see render.rs).
        .comment(Some(b';'))
        .from_writer(Vec::new());
    let written = writer
        .write_record(["month", "service", "dimension", "group", "metric", "value"])
        .and_then(|()| {
            rows.iter()
                .try_for_each(|[month, service, dimension, group, metric, value]| {
                    writer.write_record([
                        month.as_str(),
                        &neutralise_formula(service),
                        dimension,
                        &neutralise_formula(group),
                        metric,
                        value,
                    ])
                })
        });
    written.expect("writing CSV to memory cannot fail");
    writer
        .into_inner()
        .expect("flushing CSV to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use gid_aggregate::{CaseAge, CrossCount, OpenClosed};

    fn groups(counts: &[(&str, u64)]) -> Vec<GroupCount> {
        counts
            .iter()
            .map(|(name, request_count)| GroupCount {
                name: (*name).into(),
                request_count: *request_count,
            })
            .collect()
    }

    fn summary(month: &str, services: &[(&str, u64)], districts: &[(&str, u64)]) -> MonthSummary {
        MonthSummary {
            month: month.into(),
            total_requests: services.iter().map(|(_, n)| n).sum(),
            services: groups(services),
            by_council_district: groups(districts),
            ..Default::default()
        }
    }

    fn state(summaries: &[MonthSummary]) -> TrendsState {
        let mut state = TrendsState::default();
        for s in summaries {
            state.record("etag", s);
        }
        state
    }

    fn csv_rows(state: &TrendsState) -> Vec<Vec<String>> {
        let csv = trends_csv(state);
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        assert_eq!(
            reader.headers().unwrap(),
            vec!["month", "service", "dimension", "group", "metric", "value"]
        );
        reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect()
    }

    fn value(rows: &[Vec<String>], wanted: [&str; 5]) -> Option<String> {
        rows.iter().find(|r| r[..5] == wanted).map(|r| r[5].clone())
    }

    fn layout() -> Layout {
        Layout::new("{year}/{mon}/").unwrap()
    }

    #[test]
    fn the_csv_has_each_months_counts_its_change_and_the_year_to_date() {
        let state = state(&[
            summary("2018-12", &[("Pothole", 9)], &[("3", 9)]),
            summary("2019-01", &[("Pothole", 4), ("Graffiti", 2)], &[("3", 6)]),
            summary("2019-02", &[("Pothole", 7)], &[("3", 5), ("1", 2)]),
            summary("2019-04", &[("Pothole", 1)], &[("1", 1)]),
        ]);
        let rows = csv_rows(&state);
        let v = |w| value(&rows, w);
        assert_eq!(
            v(["2019-02", "Pothole", "all", "", "requests"]).as_deref(),
            Some("7")
        );
        assert_eq!(
            v(["2019-02", "Pothole", "all", "", "requests_change"]).as_deref(),
            Some("3")
        );
        assert_eq!(
            v(["2019-01", "Pothole", "all", "", "requests_change"]).as_deref(),
            Some("-5")
        );
        // The year starts again in January; March is not published, so April has no change.
        assert_eq!(
            v(["2019-04", "Pothole", "all", "", "requests_ytd"]).as_deref(),
            Some("12")
        );
        assert_eq!(v(["2019-04", "", "all", "", "requests_change"]), None);
        assert_eq!(
            v(["2019-01", "", "all", "", "requests_ytd"]).as_deref(),
            Some("6")
        );
        assert_eq!(
            v(["2019-02", "", "council_district", "3", "requests_change"]).as_deref(),
            Some("-1")
        );
        // A service absent from a month has no row for it, rather than a made-up zero.
        assert_eq!(v(["2019-02", "Graffiti", "all", "", "requests"]), None);
    }

    #[test]
    fn the_csv_carries_the_backlog_and_the_cross_tables() {
        let mut january = summary("2019-01", &[("Pothole", 3)], &[("3", 3)]);
        january.open_closed = Some(OpenClosed { open: 1, closed: 2 });
        january.case_age = Some(CaseAge {
            requests: 3,
            median_days: 5,
            p90_days: 30,
        });
        january.status_by_service = vec![CrossCount {
            group: "Closed".into(),
            service: "Pothole".into(),
            request_count: 2,
        }];
        january.district_by_service = vec![CrossCount {
            group: "3".into(),
            service: "Pothole".into(),
            request_count: 3,
        }];
        let rows = csv_rows(&state(&[january]));
        let v = |w| value(&rows, w);
        assert_eq!(v(["2019-01", "", "all", "", "open"]).as_deref(), Some("1"));
        assert_eq!(
            v(["2019-01", "", "all", "", "case_age_p90_days"]).as_deref(),
            Some("30")
        );
        assert_eq!(
            v(["2019-01", "Pothole", "status", "Closed", "requests"]).as_deref(),
            Some("2")
        );
        assert_eq!(
            v(["2019-01", "Pothole", "council_district", "3", "requests"]).as_deref(),
            Some("3")
        );
    }

    #[test]
    fn republishing_a_month_replaces_only_that_months_entry() {
        let mut state = state(&[
            summary("2019-01", &[("Pothole", 4)], &[]),
            summary("2019-02", &[("Pothole", 7)], &[]),
        ]);
        let february = state.months["2019-02"].clone();
        assert!(!state.record("etag", &summary("2019-01", &[("Pothole", 4)], &[])));
        assert!(state.record("etag-2", &summary("2019-01", &[("Pothole", 5)], &[])));
        assert_eq!(state.months.len(), 2);
        assert_eq!(state.months["2019-01"].summary.count_of("Pothole"), 5);
        assert_eq!(state.months["2019-01"].summary_etag, "etag-2");
        assert_eq!(state.months["2019-02"], february);
        let read = TrendsState::from_json("s3://gid-work/trends.json", &state.to_json()).unwrap();
        assert_eq!(read, state);
    }

    #[test]
    fn an_unreadable_state_names_where_it_is_and_how_to_rebuild_it() {
        let err = TrendsState::from_json("s3://gid-work/trends.json", b"{\"months\":").unwrap_err();
        let said = err.to_string();
        assert!(
            said.starts_with("the trends state at s3://gid-work/trends.json is unreadable"),
            "{said}"
        );
        assert!(said.contains("--stage publish --force"), "{said}");
    }

    #[test]
    fn the_page_names_the_risers_and_fallers_of_the_latest_month() {
        let state = state(&[
            summary(
                "2019-01",
                &[("Pothole", 4), ("Graffiti", 9), ("Parking", 1)],
                &[],
            ),
            summary(
                "2019-02",
                &[("Pothole", 8), ("Graffiti", 2), ("Parking", 1)],
                &[],
            ),
        ]);
        let page = trends_html(&layout(), &state, &PageText::english(), &[]);
        let risers = page.find("Top risers").unwrap();
        let fallers = page.find("Top fallers").unwrap();
        let pothole = page.find("<li>Pothole +4</li>").expect(&page);
        let graffiti = page.find("<li>Graffiti -7</li>").expect(&page);
        assert!(
            risers < pothole && pothole < fallers && fallers < graffiti,
            "{page}"
        );
        assert!(
            !page.contains("<li>Parking"),
            "unchanged is neither: {page}"
        );
    }

    #[test]
    fn the_page_links_each_months_report_map_and_summary_and_draws_without_script() {
        let state = state(&[summary("2019-01", &[("Pothole", 4)], &[("3", 4)])]);
        let page = trends_html(&layout(), &state, &PageText::english(), &[]);
        for href in [
            "./2019/jan/final_report.html",
            "./2019/jan/map.html",
            "./2019/jan/summary.json",
            "./trends.csv",
            "./index.html",
        ] {
            assert!(page.contains(&format!("href=\"{href}\"")), "{href}: {page}");
        }
        assert!(page.contains("<svg") && !page.contains("<script"), "{page}");
    }

    #[test]
    fn the_page_and_the_csv_defuse_user_text() {
        let evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
        let mut january = summary(
            "2019-01",
            &[(evil, 2), ("=HYPERLINK(\"x\")", 1)],
            &[(evil, 3)],
        );
        january.by_status = groups(&[(evil, 3)]);
        let page = trends_html(
            &layout(),
            &state(&[january.clone()]),
            &PageText::english(),
            &[],
        );
        assert!(
            !page.contains("<script>alert") && !page.contains("<img"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;"), "{page}");
        let rows = csv_rows(&state(&[january]));
        assert!(
            rows.iter().any(|r| r[1] == "'=HYPERLINK(\"x\")"),
            "{rows:?}"
        );
    }

    fn spanish(services: &[(&str, &str)]) -> PageText {
        PageText::translated(
            "es",
            [
                ("Trends", "Tendencias".to_owned()),
                ("Top risers", "Mayores subidas".to_owned()),
            ]
            .into_iter()
            .collect(),
            services
                .iter()
                .map(|(en, es)| ((*en).to_owned(), (*es).to_owned()))
                .collect(),
        )
    }

    fn page_of(files: &[RenderedFile], key: &str) -> String {
        let file = files
            .iter()
            .find(|f| f.key.as_str() == key)
            .unwrap_or_else(|| panic!("{key} is not rendered"));
        String::from_utf8(file.body.to_vec()).unwrap()
    }

    #[test]
    fn the_spanish_trends_page_is_in_spanish_and_links_its_english_version_and_spanish_reports() {
        let state = state(&[
            summary("2019-01", &[("Pothole", 4)], &[("3", 4)]),
            summary("2019-02", &[("Pothole", 6)], &[("3", 6)]),
        ]);
        let files = render_trends(
            &layout(),
            &state,
            &[PageText::english(), spanish(&[("Pothole", "Bache")])],
        );
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["trends.csv", "trends.html", "es/trends.html"]);
        let es = page_of(&files, "es/trends.html");
        assert!(es.contains("<html lang=\"es\">"), "{es}");
        assert!(es.contains("<h1>Tendencias (Get It Done)</h1>"), "{es}");
        assert!(
            es.contains("<li>Bache +2</li>") && !es.contains(">Pothole<"),
            "{es}"
        );
        for link in [
            "rel=\"alternate\" hreflang=\"en\" href=\"../trends.html\"",
            "rel=\"alternate\" hreflang=\"es\" href=\"../es/trends.html\"",
            "href=\"../trends.html\" hreflang=\"en\" lang=\"en\">English</a>",
            // The report in Spanish, beside the page; the data is the English site's.
            "href=\"./2019/feb/final_report.html\"",
            "href=\"../2019/feb/map.html\"",
            "href=\"../2019/feb/summary.json\"",
            "href=\"../index.html\"",
            "href=\"../trends.csv\"",
        ] {
            assert!(es.contains(link), "{link}: {es}");
        }
        let en = page_of(&files, "trends.html");
        assert!(en.contains("<html lang=\"en\">"), "{en}");
        for link in [
            "rel=\"alternate\" hreflang=\"es\" href=\"./es/trends.html\"",
            "href=\"./es/trends.html\" hreflang=\"es\" lang=\"es\">Español</a>",
            "href=\"./2019/feb/final_report.html\"",
        ] {
            assert!(en.contains(link), "{link}: {en}");
        }
    }

    #[test]
    fn an_english_only_site_has_one_trends_page_naming_no_other_version() {
        let state = state(&[summary("2019-01", &[("Pothole", 4)], &[])]);
        let files = render_trends(&layout(), &state, &[PageText::english()]);
        assert_eq!(files.len(), 2);
        assert!(!page_of(&files, "trends.html").contains("hreflang"));
    }

    #[test]
    fn a_hostile_translated_service_name_is_escaped_on_the_spanish_trends_page() {
        let evil = "<script>alert('es')</script><img src=x onerror=alert(1)>";
        let state = state(&[summary("2019-01", &[("Pothole", 4)], &[])]);
        let es = trends_html(
            &layout(),
            &state,
            &spanish(&[("Pothole", evil)]),
            &["en".into(), "es".into()],
        );
        assert!(
            !es.contains("<script>alert") && !es.contains("<img"),
            "{es}"
        );
        assert!(es.contains("&lt;script&gt;alert"), "{es}");
    }
}
