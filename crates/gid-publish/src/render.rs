//! Pure rendering: a [`MonthSummary`] or a listing in, bytes out. maud escapes every
//! interpolated value, so user text (service names, descriptions, keys) cannot become
//! markup; links are built from percent-encoded key segments behind `./`, so a key can
//! never become a `javascript:` URL.

use chrono::{DateTime, Utc};
use gid_aggregate::{GroupCount, MonthSummary};
use gid_core::{Layout, Month};
use maud::{html, Markup, PreEscaped, DOCTYPE};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1b1b}\
table{border-collapse:collapse}th,td{padding:.3rem .8rem;text-align:left}\
th{border-bottom:2px solid #444}td.n,th.n{text-align:right}tfoot td{border-top:1px solid #444;font-weight:bold}\
tr:nth-child(even) td{background:#f3f3f3}a{color:#0b57d0}";

/// Cells that a spreadsheet would run as a formula get a leading `'`: CSVs from a public
/// site are opened in Excel by someone, and `=HYPERLINK(...)` there is an attack. Leading
/// spaces do not hide a formula (LibreOffice's import can trim them).
pub fn neutralise_formula(cell: &str) -> std::borrow::Cow<'_, str> {
    let first = cell.trim_start_matches(' ').chars().next();
    match first {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '\n') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// A cell as it was before [`neutralise_formula`] (for reading gid's own CSVs back).
pub(crate) fn restore_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if neutralise_formula(rest).len() != rest.len() => rest,
        _ => cell,
    }
}

/// A CSV writer for files meant for spreadsheets: formula cells neutralised, and cells
/// holding a `;` quoted too, because Excel in locales whose list separator is `;` splits
/// unquoted lines there (`x;=HYPERLINK(...)` would start a new cell with a formula).
fn spreadsheet_csv<'a>(
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<std::borrow::Cow<'a, str>>>,
) -> Vec<u8> {
    // The csv writer quotes a cell holding its comment byte anywhere, which is the `;` rule;
    // nothing reads these files back with comments.
    let mut writer = csv::WriterBuilder::new()
        .comment(Some(b';'))
        .from_writer(Vec::new());
    let written = writer.write_record(headers).and_then(|()| {
        rows.into_iter().try_for_each(|row| {
            writer.write_record(row.iter().map(|cell| neutralise_formula(cell).into_owned()))
        })
    });
    written.expect("writing CSV to memory cannot fail");
    writer
        .into_inner()
        .expect("flushing CSV to memory cannot fail")
}

/// `final_report.csv`: month, service_name, request_count; most requests first.
pub fn final_report_csv(summary: &MonthSummary) -> Vec<u8> {
    spreadsheet_csv(
        &["month", "service_name", "request_count"],
        summary.services.iter().map(|g| {
            vec![
                summary.month.as_str().into(),
                g.name.as_str().into(),
                g.request_count.to_string().into(),
            ]
        }),
    )
}

pub(crate) fn page(title: &str, body: Markup) -> String {
    page_in(SOURCE_LANG, &[], title, body)
}

/// A page in `lang`, naming its versions in every language (`hreflang`, itself included,
/// as search engines expect).
pub(crate) fn page_in(
    lang: &str,
    alternates: &[(String, String)],
    title: &str,
    body: Markup,
) -> String {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                @for (code, href) in alternates {
                    link rel="alternate" hreflang=(code) href=(href);
                }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

fn counts_table(
    text: &PageText,
    caption: &'static str,
    first_header: &str,
    groups: &[GroupCount],
    total: u64,
) -> Markup {
    counts_table_linked(text, caption, first_header, groups, total, None)
}

fn counts_table_linked(
    text: &PageText,
    caption: &'static str,
    first_header: &str,
    groups: &[GroupCount],
    total: u64,
    info: Option<&ServiceInfo>,
) -> Markup {
    html! {
        table {
            caption { (text.t(caption)) }
            thead { tr { th { (first_header) } th.n { "request_count" } } }
            tbody {
                @for g in groups {
                    tr {
                        td {
                            @if let Some(info) = info {
                                a href=(info.page_for(&g.name)) rel="external" { (text.service(&g.name)) }
                            } @else {
                                (g.name)
                            }
                        }
                        td.n { (g.request_count) }
                    }
                }
            }
            tfoot { tr { td { (text.t("Total")) } td.n { (total) } } }
        }
    }
}

/// The city's information page for each service, linked from the HTML report
/// (`publish.service_info`, `publish.service_info_default`). URLs are checked (http or
/// https) when the configuration is loaded; they are escaped when rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Lower-cased service name → its page, so the table matches however an export
    /// capitalises a name.
    pages: std::collections::BTreeMap<String, String>,
    default: String,
}

impl ServiceInfo {
    /// The course's Get It Done page: where every service links without a table.
    pub const GET_IT_DONE: &'static str = "https://www.sandiego.gov/get-it-done";

    /// Pages by service name (matched without regard to case), and the page of every
    /// other service.
    pub fn new<'a>(
        pages: impl IntoIterator<Item = (&'a String, &'a String)>,
        default: impl Into<String>,
    ) -> Self {
        Self {
            pages: pages
                .into_iter()
                .map(|(name, url)| (name.trim().to_lowercase(), url.clone()))
                .collect(),
            default: default.into(),
        }
    }

    /// The page a service's name links to.
    pub fn page_for(&self, service: &str) -> &str {
        self.pages
            .get(&service.trim().to_lowercase())
            .unwrap_or(&self.default)
    }
}

impl Default for ServiceInfo {
    fn default() -> Self {
        Self::new([], Self::GET_IT_DONE)
    }
}

/// Where a month's page sits on the site, for its links: back to the index, and to the
/// previous and next published month.
///
/// The neighbours are links to anchors of `index.html` (`#before-2019-02`,
/// `#after-2019-02`) rather than to the neighbours' pages: the index is rebuilt from a full
/// listing on every publish, so its anchors always sit on the month actually published
/// before or after this one, while a direct link would go stale (or 404) as soon as a
/// month is published later, or a gap is filled, unless every neighbour's pages were
/// rewritten too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthNav {
    month: Month,
    /// The month's folder (`2019/jan/`).
    folder: String,
    /// The language of the page, and every language the site publishes.
    lang: String,
    langs: Vec<String>,
}

impl MonthNav {
    /// The links of `month`'s pages under `layout`, in English only.
    pub fn new(layout: &Layout, month: Month) -> Self {
        Self {
            month,
            folder: layout.month_prefix(month),
            lang: SOURCE_LANG.to_owned(),
            langs: vec![SOURCE_LANG.to_owned()],
        }
    }

    /// The page in `lang`, on a site published in `langs` (whose versions it links).
    pub fn in_language(mut self, lang: &str, langs: &[String]) -> Self {
        self.lang = lang.to_owned();
        self.langs = langs.to_vec();
        self
    }

    /// From the page's folder back to the site root (`../../` for `{year}/{mon}/`,
    /// one more under a language's folder).
    fn root(&self) -> String {
        "../"
            .repeat(self.folder.matches('/').count() + lang_folder(&self.lang).matches('/').count())
    }

    /// The site index, relative to the month's folder.
    pub fn index_href(&self) -> String {
        format!("{}{INDEX_FILE}", self.root())
    }

    /// The index entry of the month published before this one.
    pub fn previous_href(&self) -> String {
        format!("{}{INDEX_FILE}#{}", self.root(), before_anchor(self.month))
    }

    /// The index entry of the month published after this one (the top of the month list
    /// when none is yet).
    pub fn next_href(&self) -> String {
        format!("{}{INDEX_FILE}#{}", self.root(), after_anchor(self.month))
    }

    /// `file` of this month in every language of the site (relative hrefs).
    fn alternates(&self, file: &str) -> Vec<(String, String)> {
        if self.langs.len() < 2 {
            return Vec::new();
        }
        let root = self.root();
        self.langs
            .iter()
            .map(|l| {
                (
                    l.clone(),
                    format!("{root}{}{}{file}", lang_folder(l), self.folder),
                )
            })
            .collect()
    }

    fn links(&self, text: &PageText, file: &str, siblings: &[(&str, &'static str)]) -> Markup {
        let others: Vec<(String, String)> = self
            .alternates(file)
            .into_iter()
            .filter(|(l, _)| *l != self.lang)
            .collect();
        html! {
            nav.months {
                a href=(self.index_href()) { (text.t("All reports")) }
                @for (href, label) in siblings { " · " a href=(href) { (text.t(label)) } }
                " · " a href=(self.previous_href()) rel="prev" { "← " (text.t("Previous month")) }
                " · " a href=(self.next_href()) rel="next" { (text.t("Next month")) " →" }
                @for (lang, href) in &others {
                    " · " a href=(href) hreflang=(lang) lang=(lang) { (language_name(lang)) }
                }
            }
        }
    }

    fn page(&self, file: &str, title: &str, body: Markup) -> String {
        page_in(&self.lang, &self.alternates(file), title, body)
    }
}

/// The language the site is written in; other languages are translated from it.
pub const SOURCE_LANG: &str = "en";

/// The folder a language's pages live under: none for English, `es/` for Spanish.
pub fn lang_folder(lang: &str) -> String {
    if lang == SOURCE_LANG {
        String::new()
    } else {
        format!("{lang}/")
    }
}

/// A language as its own speakers name it (the link to a page's version in it).
pub(crate) fn language_name(lang: &str) -> &str {
    match lang {
        "en" => "English",
        "es" => "Español",
        other => other,
    }
}

/// The fixed text of the site's pages in one language, with the service names in it.
/// English is the source; another language's text comes from the Translator port (the
/// caller translates [`PageText::PHRASES`] and the month's service names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageText {
    lang: String,
    phrases: std::collections::BTreeMap<&'static str, String>,
    services: std::collections::BTreeMap<String, String>,
}

impl PageText {
    /// Every fixed phrase of the month pages, in English.
    pub const PHRASES: &'static [&'static str] = &[
        "All reports",
        "Chart",
        "Table",
        "Previous month",
        "Next month",
        "Requests",
        "Requests per service",
        "Requests per status",
        "Requests per council district",
        "By status",
        "By council district",
        "Total",
        "Total requests",
        "None.",
    ];

    /// Every fixed phrase of the trends page (`trends.html`), in English.
    pub const TRENDS_PHRASES: &'static [&'static str] = &[
        "Trends",
        "All reports",
        "published month",
        "published months",
        "to",
        "Requests per month",
        "per month",
        "All requests",
        "requests",
        "all services",
        "Per service",
        "Latest month against the month before",
        "Top risers",
        "Top fallers",
        "None.",
        "The month before the latest is not published: nothing to compare with.",
        "Requests per service",
        "Per council district",
        "Requests per council district",
        "latest month",
        "change",
        "year to date",
        "Backlog",
        TRENDS_BACKLOG_NOTE,
        "Open and closed requests per month",
        "open",
        "closed",
        "Open and closed requests, and case age in days",
        "month",
        "median case age",
        "90th percentile",
        "Downloads",
        TRENDS_DOWNLOADS_NOTE,
        "Each month's files",
        "report",
        "map",
        "summary",
        "No month is published yet.",
    ];

    /// The English text (no translation).
    pub fn english() -> Self {
        Self::translated(SOURCE_LANG, Default::default(), Default::default())
    }

    /// Text in `lang`: English phrase → translation, English service name → translation.
    /// Anything missing stays in English.
    pub fn translated(
        lang: &str,
        phrases: std::collections::BTreeMap<&'static str, String>,
        services: std::collections::BTreeMap<String, String>,
    ) -> Self {
        Self {
            lang: lang.to_owned(),
            phrases,
            services,
        }
    }

    /// The language code (`en`, `es`).
    pub fn lang(&self) -> &str {
        &self.lang
    }

    /// A fixed phrase in this language.
    pub fn t<'a>(&'a self, english: &'a str) -> &'a str {
        self.phrases.get(english).map_or(english, String::as_str)
    }

    /// A service name in this language.
    pub fn service<'a>(&'a self, name: &'a str) -> &'a str {
        self.services.get(name).map_or(name, String::as_str)
    }
}

const INDEX_FILE: &str = "index.html";

/// The index anchor a month page's "previous month" link targets: on the entry of the
/// latest month published before `month`.
fn before_anchor(month: Month) -> String {
    format!("before-{month}")
}

/// The index anchor a month page's "next month" link targets: on the entry of the
/// earliest month published after `month`.
fn after_anchor(month: Month) -> String {
    format!("after-{month}")
}

/// `final_report.html`: the per-service table (no border, each service linked to its
/// information page), plus the breakdowns.
pub fn final_report_html(
    summary: &MonthSummary,
    nav: &MonthNav,
    info: &ServiceInfo,
    text: &PageText,
) -> String {
    // "Get It Done" is the service's name, never translated.
    let title = if text.lang() == SOURCE_LANG {
        format!("Get It Done requests, {}", summary.month)
    } else {
        format!("{} (Get It Done), {}", text.t("Requests"), summary.month)
    };
    nav.page(
        "final_report.html",
        &title,
        html! {
            (nav.links(text, "final_report.html", &[("chart.html", "Chart")]))
            h1 { (title) }
            (counts_table_linked(text, "Requests per service", "service_name", &summary.services, summary.total_requests, Some(info)))
            @if !summary.by_status.is_empty() {
                h2 { (text.t("By status")) }
                (counts_table(text, "Requests per status", "status", &summary.by_status, summary.total_requests))
            }
            @if !summary.by_council_district.is_empty() {
                h2 { (text.t("By council district")) }
                (counts_table(text, "Requests per council district", "council_district", &summary.by_council_district, summary.total_requests))
            }
        },
    )
}

/// `chart.html`: a horizontal bar chart of requests per service as inline SVG: no
/// script, no CDN, renders offline.
pub fn chart_html(summary: &MonthSummary, nav: &MonthNav, text: &PageText) -> String {
    const BAR: u32 = 22;
    const GAP: u32 = 6;
    const LABEL: u32 = 260;
    const WIDTH: u32 = 560;
    let max = summary
        .services
        .iter()
        .map(|g| g.request_count)
        .max()
        .unwrap_or(1)
        .max(1);
    let height = (summary.services.len() as u32) * (BAR + GAP) + GAP;
    let title = format!("{}, {}", text.t("Requests per service"), summary.month);
    nav.page(
        "chart.html",
        &title,
        html! {
            (nav.links(text, "chart.html", &[("final_report.html", "Table")]))
            h1 { (title) }
            svg xmlns="http://www.w3.org/2000/svg" role="img" width=(LABEL + WIDTH + 80) height=(height)
                viewBox=(format!("0 0 {} {height}", LABEL + WIDTH + 80)) {
                title { (title) }
                @for (i, g) in summary.services.iter().enumerate() {
                    @let y = GAP + i as u32 * (BAR + GAP);
                    @let w = ((g.request_count as f64 / max as f64) * f64::from(WIDTH)).round().max(1.0);
                    text x=(LABEL - 8) y=(y + BAR / 2 + 5) text-anchor="end" font-size="13" { (text.service(&g.name)) }
                    rect x=(LABEL) y=(y) width=(w) height=(BAR) fill="#2b6cb0" { title { (text.service(&g.name)) ": " (g.request_count) } }
                    text x=(f64::from(LABEL) + w + 6.0) y=(y + BAR / 2 + 5) font-size="13" { (g.request_count) }
                }
            }
            p { (text.t("Total requests")) ": " (summary.total_requests) }
        },
    )
}

/// A table of text cells for [`table_page`].
#[derive(Debug, Clone, Default)]
pub struct TextTable {
    /// Shown above the table.
    pub caption: String,
    /// Column titles.
    pub headers: Vec<String>,
    /// Cells, escaped when rendered, so they may hold anyone's text.
    pub rows: Vec<Vec<String>>,
}

/// A page of paragraphs and tables; every cell is escaped. For reports whose columns
/// are decided by the caller (e.g. the scooter pickups).
/// `file` is the page's file name in the month folder (for its links to its versions in
/// other languages); `text` supplies the navigation's words, while the title, paragraphs
/// and tables come already in the page's language.
pub fn table_page(
    file: &str,
    title: &str,
    nav: &MonthNav,
    text: &PageText,
    paragraphs: &[String],
    tables: &[TextTable],
) -> String {
    nav.page(
        file,
        title,
        html! {
            (nav.links(text, file, &[]))
            h1 { (title) }
            @for text in paragraphs { p { (text) } }
            @for table in tables {
                h2 { (table.caption) }
                @if table.rows.is_empty() {
                    p { (text.t("None.")) }
                } @else {
                    table {
                        thead { tr { @for h in &table.headers { th { (h) } } } }
                        tbody {
                            @for row in &table.rows {
                                tr { @for cell in row { td { (cell) } } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A CSV of text cells for spreadsheets (formula-like cells neutralised, see
/// [`neutralise_formula`]).
pub fn table_csv(headers: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    spreadsheet_csv(
        headers,
        rows.iter()
            .map(|row| row.iter().map(|c| c.as_str().into()).collect()),
    )
}

/// One row of the site index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// The object key, shown as the link text.
    pub key: String,
    /// Where the link points: a relative `./…` path or a presigned URL.
    pub href: String,
    /// The object's LastModified.
    pub last_modified: DateTime<Utc>,
    /// The object's size in bytes (shown rounded, exact in the cell's title).
    pub size: u64,
}

/// A relative link to a key that works from disk and from a bucket website alike.
pub fn relative_href(key: &str) -> String {
    format!("./{}", gid_core::encode_url_path(key))
}

/// Human-readable size (the exact byte count is in the cell's title).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// What `index.html` holds for a listed key (its link text, escaped as the page has it):
/// how a later run checks that the index lists an object without parsing the page.
pub fn index_link_text(key: &str) -> String {
    format!(">{}</a>", html! { (key) }.into_string())
}

/// The pages of a month folder that the index header links, with their link text.
const MONTH_PAGES: &[(&str, &str)] = &[
    ("final_report.html", "Report"),
    ("chart.html", "Chart"),
    ("map.html", "Map"),
    ("scooter_pickups.html", "Scooter pickups"),
];

/// The site-wide page of trends across months, linked from the header when published.
pub const TRENDS_FILE: &str = "trends.html";

/// The trends page's note on what the backlog counts.
pub(crate) const TRENDS_BACKLOG_NOTE: &str = "Open requests have any status but Closed or Referred. Case ages are the exports' case_age_days (nearest-rank median and 90th percentile) over the requests that have one.";
/// The trends page's note on `trends.csv` (after its link).
pub(crate) const TRENDS_DOWNLOADS_NOTE: &str =
    "every number of this page, one per row (month, service, dimension, group, metric, value).";

/// Whether a key's first folder names a language (`es`), as translations' folders do.
fn is_lang_code(folder: &str) -> bool {
    (2..=3).contains(&folder.len()) && folder.bytes().all(|b| b.is_ascii_lowercase())
}

/// A page of the site as the index header links it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitePage {
    /// The link text.
    pub label: &'static str,
    /// The page's language when it is a translation (`es`), `None` for the English page.
    pub lang: Option<String>,
    /// Where it points: the same href as the page's row of the listing.
    pub href: String,
}

/// A published month and its pages, as the index header lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteMonth {
    /// The month.
    pub month: Month,
    /// Its pages that exist, in [`MONTH_PAGES`] order.
    pub pages: Vec<SitePage>,
}

/// The latest month's headline numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headline {
    /// The month they are for.
    pub month: Month,
    /// Requests in the month.
    pub total_requests: u64,
    /// Services with at least one request.
    pub services: usize,
    /// The services with the most requests, most first (at most three).
    pub top: Vec<GroupCount>,
}

impl Headline {
    /// The headline of a month's summary.
    pub fn of(summary: &MonthSummary) -> Self {
        Self {
            month: summary.month(),
            total_requests: summary.total_requests,
            services: summary.services.len(),
            top: summary.services.iter().take(3).cloned().collect(),
        }
    }
}

/// What the index shows above its object listing: the months newest first with links to
/// each one's pages, the latest month's numbers, and the trends page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteHeader {
    /// Published months, newest first.
    pub months: Vec<SiteMonth>,
    /// The latest month's numbers, when they could be read.
    pub headline: Option<Headline>,
    /// The trends page, when it is published.
    pub trends: Option<String>,
    /// The trends page's translations: language and href, by language.
    pub translated_trends: Vec<(String, String)>,
}

impl SiteHeader {
    /// The header for a listing: a month is listed when at least one of its pages is, and
    /// only pages that exist are linked (each with its row's href, so a presigned site
    /// links presigned URLs here too).
    pub fn from_entries(layout: &Layout, entries: &[IndexEntry]) -> Self {
        let mut months: std::collections::BTreeMap<Month, Vec<SitePage>> = Default::default();
        let mut trends = None;
        let mut translated_trends = Vec::new();
        for e in entries {
            if e.key == TRENDS_FILE {
                trends = Some(e.href.clone());
                continue;
            }
            if let Some(lang) = e
                .key
                .strip_suffix(TRENDS_FILE)
                .and_then(|folder| folder.strip_suffix('/'))
                .filter(|lang| is_lang_code(lang))
            {
                translated_trends.push((lang.to_owned(), e.href.clone()));
                continue;
            }
            // A translation lives under its language's folder: `es/2019/jan/chart.html`.
            let (lang, key) = match e.key.split_once('/') {
                Some((lang, rest)) if is_lang_code(lang) && layout.month_of_key(rest).is_some() => {
                    (Some(lang.to_owned()), rest)
                }
                _ => (None, e.key.as_str()),
            };
            let Some(month) = layout.month_of_key(key) else {
                continue;
            };
            let file = &key[layout.month_prefix(month).len().min(key.len())..];
            if let Some((_, label)) = MONTH_PAGES.iter().find(|(name, _)| *name == file) {
                months.entry(month).or_default().push(SitePage {
                    label,
                    lang,
                    href: e.href.clone(),
                });
            }
        }
        let months = months
            .into_iter()
            .rev()
            .map(|(month, mut pages)| {
                pages.sort_by_key(|p| {
                    (
                        p.lang.clone(),
                        MONTH_PAGES.iter().position(|(_, l)| *l == p.label),
                    )
                });
                SiteMonth { month, pages }
            })
            .collect();
        translated_trends.sort();
        Self {
            months,
            headline: None,
            trends,
            translated_trends,
        }
    }

    fn render(&self) -> Markup {
        let newest = self.months.first().map(|m| m.month);
        let oldest = self.months.last().map(|m| m.month);
        html! {
            header {
                @if let Some(h) = &self.headline {
                    p.headline {
                        "Latest month, " strong { (h.month) } ": " (h.total_requests) " requests across "
                        (h.services) " services"
                        @if !h.top.is_empty() {
                            "; most requested: "
                            @for (i, g) in h.top.iter().enumerate() {
                                @if i > 0 { ", " }
                                (g.name) " (" (g.request_count) ")"
                            }
                        }
                        "."
                    }
                }
                @if let Some(href) = &self.trends {
                    p {
                        a href=(href) { "Trends across months" }
                        @for (lang, href) in &self.translated_trends {
                            " · " a href=(href) hreflang=(lang) lang=(lang) { (language_name(lang)) }
                        }
                    }
                }
                @if !self.months.is_empty() {
                    // The newest month's "next" and the oldest's "previous" have no month to
                    // land on: they land on the list itself.
                    h2 #months {
                        @if let Some(m) = newest { span id=(after_anchor(m)) {} }
                        @if let Some(m) = oldest { span id=(before_anchor(m)) {} }
                        "Months"
                    }
                    ul.months {
                        @for (i, m) in self.months.iter().enumerate() {
                            li id=(format!("m-{}", m.month)) {
                                @if let Some(older) = self.months.get(i + 1) {
                                    span id=(after_anchor(older.month)) {}
                                }
                                @if let Some(newer) = i.checked_sub(1).and_then(|j| self.months.get(j)) {
                                    span id=(before_anchor(newer.month)) {}
                                }
                                strong { (m.month) } ": "
                                @for (j, p) in m.pages.iter().enumerate() {
                                    @if j > 0 { " · " }
                                    @if let Some(lang) = &p.lang {
                                        @if j.checked_sub(1).and_then(|k| m.pages.get(k)).is_none_or(|before| before.lang != p.lang) {
                                            (lang) ": "
                                        }
                                        a href=(p.href) hreflang=(lang) { (p.label) }
                                    } @else {
                                        a href=(p.href) { (p.label) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `index.html`: the site header (months, the latest numbers, links to every month's
/// pages), then every object of the site, as listed.
pub fn index_html(title: &str, header: &SiteHeader, entries: &[IndexEntry]) -> String {
    page(
        title,
        html! {
            h1 { (title) }
            (header.render())
            h2 { "Every file" }
            p { (entries.len()) " objects." }
            table {
                thead { tr { th { "Link" } th { "LastModified" } th.n { "Size" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td { a href=(e.href) { (e.key) } }
                            td { time datetime=(e.last_modified.to_rfc3339()) { (e.last_modified.format("%Y-%m-%d %H:%M:%S UTC")) } }
                            td.n title=(format!("{} bytes", e.size)) { (human_size(e.size)) }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new("{year}/{mon}/").unwrap()
    }

    fn entry(key: &str) -> IndexEntry {
        IndexEntry {
            key: key.into(),
            href: relative_href(key),
            last_modified: "2019-02-01T00:00:00Z".parse().unwrap(),
            size: 10,
        }
    }

    /// The index page of a bucket holding `keys`.
    fn index_of(keys: &[&str]) -> String {
        let entries: Vec<IndexEntry> = keys.iter().copied().map(entry).collect();
        let header = SiteHeader::from_entries(&layout(), &entries);
        index_html("Reports", &header, &entries)
    }

    /// The `id`s of the index element that holds `anchor`'s span, i.e. the `li` it sits in.
    fn entry_holding<'p>(page: &'p str, anchor: &str) -> &'p str {
        let at = page
            .find(&format!("id=\"{anchor}\""))
            .unwrap_or_else(|| panic!("no anchor {anchor}: {page}"));
        let start = page[..at]
            .rfind("<li ")
            .or(page[..at].rfind("<h2 "))
            .unwrap();
        let end = start + page[start..].find('>').unwrap();
        &page[start..=end]
    }

    #[test]
    fn month_pages_link_the_index_and_the_neighbouring_months_through_its_anchors() {
        let nav = MonthNav::new(&layout(), "2019-02".parse().unwrap());
        for page in [
            final_report_html(
                &summary("Pothole"),
                &nav,
                &ServiceInfo::default(),
                &PageText::english(),
            ),
            chart_html(&summary("Pothole"), &nav, &PageText::english()),
            table_page("p.html", "Scooters", &nav, &PageText::english(), &[], &[]),
        ] {
            assert!(page.contains("href=\"../../index.html\""), "{page}");
            assert!(
                page.contains("href=\"../../index.html#before-2019-02\""),
                "{page}"
            );
            assert!(
                page.contains("href=\"../../index.html#after-2019-02\""),
                "{page}"
            );
        }
        let deeper = Layout::new("reports/{year}/{mm}/").unwrap();
        let nav = MonthNav::new(&deeper, "2019-02".parse().unwrap());
        assert_eq!(nav.next_href(), "../../../index.html#after-2019-02");
    }

    #[test]
    fn the_index_puts_each_months_neighbour_anchors_on_the_months_actually_published() {
        // March is missing: January's "next" lands on April, April's "previous" on January.
        let page = index_of(&[
            "2019/apr/final_report.html",
            "2019/apr/chart.html",
            "2019/feb/final_report.html",
            "2019/jan/final_report.html",
            "2019/jan/scooter_pickups.html",
        ]);
        assert!(entry_holding(&page, "after-2019-01").contains("m-2019-02"));
        assert!(entry_holding(&page, "after-2019-02").contains("m-2019-04"));
        assert!(entry_holding(&page, "before-2019-04").contains("m-2019-02"));
        assert!(entry_holding(&page, "before-2019-02").contains("m-2019-01"));
        // The ends land on the month list itself.
        assert!(entry_holding(&page, "after-2019-04").contains("id=\"months\""));
        assert!(entry_holding(&page, "before-2019-01").contains("id=\"months\""));
    }

    #[test]
    fn the_index_header_lists_months_newest_first_linking_only_pages_that_exist() {
        let entries: Vec<IndexEntry> = [
            "trends.html",
            "2019/jan/chart.html",
            "2019/jan/final_report.html",
            "2019/jan/scooter_pickups.html",
            "2019/feb/final_report.html",
            "2019/feb/final_report.csv",
            "notes.txt",
        ]
        .into_iter()
        .map(entry)
        .collect();
        let mut header = SiteHeader::from_entries(&layout(), &entries);
        let months: Vec<String> = header.months.iter().map(|m| m.month.to_string()).collect();
        assert_eq!(months, ["2019-02", "2019-01"]);
        let jan: Vec<(&str, &str)> = header.months[1]
            .pages
            .iter()
            .map(|p| (p.label, p.href.as_str()))
            .collect();
        assert_eq!(
            jan,
            [
                ("Report", "./2019/jan/final_report.html"),
                ("Chart", "./2019/jan/chart.html"),
                ("Scooter pickups", "./2019/jan/scooter_pickups.html"),
            ]
        );
        assert_eq!(header.months[0].pages.len(), 1, "February has no chart yet");
        assert_eq!(header.trends.as_deref(), Some("./trends.html"));
        header.headline = Some(Headline::of(&summary("<b>Graffiti</b>")));
        let page = index_html("Reports", &header, &entries);
        assert!(page.contains("href=\"./trends.html\""), "{page}");
        assert!(
            page.contains("3 requests across 2 services; most requested: &lt;b&gt;Graffiti&lt;/b&gt; (2), Pothole (1)"),
            "{page}"
        );
        // The object listing stays below the header, every object in it.
        assert!(page.contains("7 objects."), "{page}");
        assert!(page.contains(">notes.txt</a>"), "{page}");
    }

    #[test]
    fn each_service_links_to_its_information_page_and_the_rest_to_get_it_done() {
        let nav = MonthNav::new(&layout(), "2019-01".parse().unwrap());
        let info = ServiceInfo::new(
            [(
                &"pothole".to_owned(),
                &"https://www.sandiego.gov/pothole?a=1&b=2".to_owned(),
            )],
            ServiceInfo::GET_IT_DONE,
        );
        let page = final_report_html(&summary("Graffiti"), &nav, &info, &PageText::english());
        assert!(
            page.contains("<a href=\"https://www.sandiego.gov/pothole?a=1&amp;b=2\" rel=\"external\">Pothole</a>"),
            "{page}"
        );
        assert!(
            page.contains(
                "<a href=\"https://www.sandiego.gov/get-it-done\" rel=\"external\">Graffiti</a>"
            ),
            "{page}"
        );
    }

    fn spanish() -> PageText {
        PageText::translated(
            "es",
            [
                ("Total requests", "Solicitudes totales".to_owned()),
                ("Next month", "Mes siguiente".to_owned()),
            ]
            .into_iter()
            .collect(),
            [("Pothole".to_owned(), "Bache <b>".to_owned())]
                .into_iter()
                .collect(),
        )
    }

    #[test]
    fn translated_pages_carry_their_language_the_translations_and_hreflang_links_to_each_version() {
        let langs = ["en".to_owned(), "es".to_owned()];
        let es = MonthNav::new(&layout(), "2019-01".parse().unwrap()).in_language("es", &langs);
        let page = chart_html(&summary("Graffiti"), &es, &spanish());
        assert!(page.contains("<html lang=\"es\">"), "{page}");
        assert!(page.contains("Solicitudes totales: 3"), "{page}");
        assert!(page.contains("Mes siguiente →"), "{page}");
        // Translated service names are escaped like any other text.
        assert!(
            page.contains("Bache &lt;b&gt;") && !page.contains("<b>"),
            "{page}"
        );
        assert!(
            page.contains(
                "<link rel=\"alternate\" hreflang=\"en\" href=\"../../../2019/jan/chart.html\">"
            ),
            "{page}"
        );
        assert!(
            page.contains(
                "<link rel=\"alternate\" hreflang=\"es\" href=\"../../../es/2019/jan/chart.html\">"
            ),
            "{page}"
        );
        assert!(
            page.contains("href=\"../../../index.html#after-2019-01\""),
            "{page}"
        );
        let en = MonthNav::new(&layout(), "2019-01".parse().unwrap()).in_language("en", &langs);
        let page = final_report_html(
            &summary("Graffiti"),
            &en,
            &ServiceInfo::default(),
            &PageText::english(),
        );
        assert!(page.contains("<html lang=\"en\">"), "{page}");
        assert!(
            page.contains("<a href=\"../../es/2019/jan/final_report.html\" hreflang=\"es\" lang=\"es\">Español</a>"),
            "{page}"
        );
        // A site in one language names no alternates.
        let only = MonthNav::new(&layout(), "2019-01".parse().unwrap());
        let page = chart_html(&summary("Graffiti"), &only, &PageText::english());
        assert!(!page.contains("hreflang"), "{page}");
    }

    #[test]
    fn the_index_header_links_each_months_translated_pages() {
        let page = index_of(&[
            "2019/jan/final_report.html",
            "es/2019/jan/final_report.html",
            "es/2019/jan/chart.html",
            "es/notes.txt",
        ]);
        assert!(
            page.contains("<a href=\"./2019/jan/final_report.html\">Report</a> · es: <a href=\"./es/2019/jan/final_report.html\" hreflang=\"es\">Report</a> · <a href=\"./es/2019/jan/chart.html\" hreflang=\"es\">Chart</a>"),
            "{page}"
        );
    }

    #[test]
    fn the_index_header_links_the_spanish_trends_next_to_the_english() {
        let page = index_of(&["trends.html", "es/trends.html", "es/2019/trends.html"]);
        assert!(
            page.contains("<p><a href=\"./trends.html\">Trends across months</a> · <a href=\"./es/trends.html\" hreflang=\"es\" lang=\"es\">Español</a></p>"),
            "{page}"
        );
    }

    #[test]
    fn csv_cells_read_back_as_they_were_before_neutralising() {
        for cell in ["=1+1", "Pothole", "'quoted", "-2"] {
            assert_eq!(restore_formula(&neutralise_formula(cell)), cell);
        }
    }

    fn summary(name: &str) -> MonthSummary {
        MonthSummary {
            month: "2019-01".into(),
            total_requests: 3,
            services: vec![
                GroupCount {
                    name: name.into(),
                    request_count: 2,
                },
                GroupCount {
                    name: "Pothole".into(),
                    request_count: 1,
                },
            ],
            by_status: vec![],
            by_council_district: vec![],
            ..Default::default()
        }
    }

    #[test]
    fn html_pages_escape_user_text() {
        let evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
        let nav = MonthNav::new(&layout(), "2019-01".parse().unwrap());
        let info = ServiceInfo::new(
            [(
                &evil.to_owned(),
                &"https://x.example/?a=1&b=\"><script>".to_owned(),
            )],
            ServiceInfo::GET_IT_DONE,
        );
        for page in [
            final_report_html(&summary(evil), &nav, &info, &PageText::english()),
            chart_html(&summary(evil), &nav, &PageText::english()),
        ] {
            assert!(!page.contains("<script>alert"), "{page}");
            assert!(!page.contains("<img"), "{page}");
            assert!(page.contains("&lt;script&gt;"), "{page}");
        }
    }

    #[test]
    fn csv_neutralises_formulas_and_quotes_commas() {
        let csv = String::from_utf8(final_report_csv(&summary("=HYPERLINK(\"x\",\"y\")"))).unwrap();
        assert!(csv.contains("'=HYPERLINK"), "{csv}");
        assert!(csv.starts_with("month,service_name,request_count\n"));
        assert!(csv.contains("2019-01,Pothole,1\n"));
    }

    #[test]
    fn table_pages_escape_every_cell_and_csvs_neutralise_formulas() {
        let table = TextTable {
            caption: "Pickups <b>".into(),
            headers: vec!["description".into()],
            rows: vec![vec!["<script>alert(1)</script> \"quoted\"".into()]],
        };
        let nav = MonthNav::new(&layout(), "2019-01".parse().unwrap());
        let html = table_page(
            "p.html",
            "Scooters",
            &nav,
            &PageText::english(),
            &["5 < 6".into()],
            &[table],
        );
        assert!(
            !html.contains("<script>alert") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("5 &lt; 6"));
        let csv = String::from_utf8(table_csv(&["a"], &[vec!["@SUM(A1)".into()]])).unwrap();
        assert_eq!(csv, "a\n'@SUM(A1)\n");
    }

    #[test]
    fn spreadsheet_csvs_defuse_formulas_behind_spaces_and_semicolons() {
        let cells = [
            "=1+1",
            "  =HYPERLINK(\"http://x\")",
            "+cmd",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\nx",
            "ok;=HYPERLINK(\"http://x\")",
            "Pothole",
        ];
        let rows: Vec<Vec<String>> = cells.iter().map(|c| vec![c.to_string()]).collect();
        let csv = String::from_utf8(table_csv(&["c"], &rows)).unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let got: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
        assert_eq!(got.len(), cells.len(), "{csv}");
        for (cell, read) in cells.iter().zip(&got) {
            let starts_formula = read
                .trim_start()
                .starts_with(['=', '+', '-', '@', '\t', '\n', '\r']);
            assert!(!starts_formula, "{read:?} in {csv}");
            assert!(read.ends_with(cell.trim_start_matches(' ')), "{read:?}");
        }
        assert!(csv.contains("\"ok;=HYPERLINK(\"\"http://x\"\")\""), "{csv}");
        assert!(csv.ends_with("\nPothole\n"), "{csv}");
    }

    #[test]
    fn relative_links_cannot_become_scripts() {
        assert_eq!(
            relative_href("javascript:alert(1)"),
            "./javascript%3Aalert%281%29"
        );
        assert_eq!(
            relative_href("2019/jan/final_report.csv"),
            "./2019/jan/final_report.csv"
        );
        assert_eq!(relative_href("a b/\"q\".html"), "./a%20b/%22q%22.html");
    }

    #[test]
    fn index_lists_link_date_and_size() {
        let entries = vec![IndexEntry {
            key: "2019/jan/<b>.csv".into(),
            href: relative_href("2019/jan/<b>.csv"),
            last_modified: "2019-02-01T00:00:00Z".parse().unwrap(),
            size: 2048,
        }];
        let page = index_html("Reports", &SiteHeader::default(), &entries);
        assert!(page.contains("href=\"./2019/jan/%3Cb%3E.csv\""), "{page}");
        assert!(page.contains("2019/jan/&lt;b&gt;.csv"), "{page}");
        assert!(page.contains("2019-02-01 00:00:00 UTC"));
        assert!(page.contains("2.0 KiB"));
    }
}
