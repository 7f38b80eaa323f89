//! Pure rendering: a [`MonthSummary`] or a listing in, bytes out. maud escapes every
//! interpolated value, so user text (service names, descriptions, keys) cannot become
//! markup; links are built from percent-encoded key segments behind `./`, so a key can
//! never become a `javascript:` URL.

use chrono::{DateTime, Utc};
use gid_aggregate::{GroupCount, MonthSummary};
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
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

fn counts_table(caption: &str, first_header: &str, groups: &[GroupCount], total: u64) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th { (first_header) } th.n { "request_count" } } }
            tbody {
                @for g in groups {
                    tr { td { (g.name) } td.n { (g.request_count) } }
                }
            }
            tfoot { tr { td { "Total" } td.n { (total) } } }
        }
    }
}

/// `final_report.html`: the per-service table (no border), plus the breakdowns.
pub fn final_report_html(summary: &MonthSummary) -> String {
    let title = format!("Get It Done requests, {}", summary.month);
    page(
        &title,
        html! {
            p { a href="../../index.html" { "All reports" } " · " a href="chart.html" { "Chart" } }
            h1 { (title) }
            (counts_table("Requests per service", "service_name", &summary.services, summary.total_requests))
            @if !summary.by_status.is_empty() {
                h2 { "By status" }
                (counts_table("Requests per status", "status", &summary.by_status, summary.total_requests))
            }
            @if !summary.by_council_district.is_empty() {
                h2 { "By council district" }
                (counts_table("Requests per council district", "council_district", &summary.by_council_district, summary.total_requests))
            }
        },
    )
}

/// `chart.html`: a horizontal bar chart of requests per service as inline SVG: no
/// script, no CDN, renders offline.
pub fn chart_html(summary: &MonthSummary) -> String {
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
    let title = format!("Requests per service, {}", summary.month);
    page(
        &title,
        html! {
            p { a href="../../index.html" { "All reports" } " · " a href="final_report.html" { "Table" } }
            h1 { (title) }
            svg xmlns="http://www.w3.org/2000/svg" role="img" width=(LABEL + WIDTH + 80) height=(height)
                viewBox=(format!("0 0 {} {height}", LABEL + WIDTH + 80)) {
                title { (title) }
                @for (i, g) in summary.services.iter().enumerate() {
                    @let y = GAP + i as u32 * (BAR + GAP);
                    @let w = ((g.request_count as f64 / max as f64) * f64::from(WIDTH)).round().max(1.0);
                    text x=(LABEL - 8) y=(y + BAR / 2 + 5) text-anchor="end" font-size="13" { (g.name) }
                    rect x=(LABEL) y=(y) width=(w) height=(BAR) fill="#2b6cb0" { title { (g.name) ": " (g.request_count) } }
                    text x=(f64::from(LABEL) + w + 6.0) y=(y + BAR / 2 + 5) font-size="13" { (g.request_count) }
                }
            }
            p { "Total requests: " (summary.total_requests) }
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
pub fn table_page(title: &str, paragraphs: &[String], tables: &[TextTable]) -> String {
    page(
        title,
        html! {
            p { a href="../../index.html" { "All reports" } }
            h1 { (title) }
            @for text in paragraphs { p { (text) } }
            @for table in tables {
                h2 { (table.caption) }
                @if table.rows.is_empty() {
                    p { "None." }
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

/// `index.html`: every object of the site, as listed.
pub fn index_html(title: &str, entries: &[IndexEntry]) -> String {
    page(
        title,
        html! {
            h1 { (title) }
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
        for page in [
            final_report_html(&summary(evil)),
            chart_html(&summary(evil)),
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
        let html = table_page("Scooters", &["5 < 6".into()], &[table]);
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
        let page = index_html("Reports", &entries);
        assert!(page.contains("href=\"./2019/jan/%3Cb%3E.csv\""), "{page}");
        assert!(page.contains("2019/jan/&lt;b&gt;.csv"), "{page}");
        assert!(page.contains("2019-02-01 00:00:00 UTC"));
        assert!(page.contains("2.0 KiB"));
    }
}
