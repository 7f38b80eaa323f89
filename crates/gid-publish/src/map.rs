//! `map.html`: a month's requests placed by `lat`/`long` as inline SVG — no tiles, no
//! script, no network — coloured by service, each council district labelled at the
//! centre of its requests with its count, and a table of requests per district that is
//! the report's own district table (the same numbers as `final_report.html`).
//!
//! It draws what the aggregate stage kept ([`gid_aggregate::MapPoints`]): one circle per
//! grid cell × service × district, sized by its count. Requests without usable
//! coordinates are counted under the table, not drawn.

use std::collections::BTreeMap;

use gid_aggregate::{MapPoints, MonthSummary};
use maud::html;

use crate::render::page;

/// Service colours (Okabe–Ito and Tableau hues, distinguishable for most colour-blind
/// readers); services past the palette share the last, grey, and say so in the legend.
const PALETTE: [&str; 11] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#8c564b", "#f0e442",
    "#17becf", "#7f3c8d", "#888888",
];
const WIDTH: f64 = 760.0;
const MAX_HEIGHT: f64 = 760.0;
const MARGIN: f64 = 24.0;

/// The colour of the `i`-th service of the month (most requests first).
fn colour(i: usize) -> &'static str {
    PALETTE[i.min(PALETTE.len() - 1)]
}

/// A legend's colour dot (an SVG circle: pages carry no `style` attributes).
fn swatch(fill: &str) -> maud::Markup {
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" { circle cx="5" cy="5" r="5" fill=(fill) {} }
    }
}

/// Degrees → SVG pixels: equirectangular, longitude scaled by cos(latitude) so a city
/// keeps its shape.
struct Projection {
    north: f64,
    west: f64,
    x_scale: f64,
    y_scale: f64,
    height: f64,
}

impl Projection {
    fn fit(map: &MapPoints) -> Self {
        let centres = map.cells.iter().map(|c| map.centre(c));
        let (mut south, mut north, mut west, mut east) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for (lat, long) in centres {
            south = south.min(lat);
            north = north.max(lat);
            west = west.min(long);
            east = east.max(long);
        }
        let pad = map.cell_degrees();
        let (south, north, west, east) = (south - pad, north + pad, west - pad, east + pad);
        let shrink = ((south + north) / 2.0).to_radians().cos().max(0.05);
        let (span_x, span_y) = ((east - west) * shrink, north - south);
        let inner = WIDTH - 2.0 * MARGIN;
        let scale = (inner / span_x).min((MAX_HEIGHT - 2.0 * MARGIN) / span_y);
        Self {
            north,
            west,
            x_scale: scale * shrink,
            y_scale: scale,
            height: span_y * scale + 2.0 * MARGIN,
        }
    }

    /// A cell's side in pixels (north–south).
    fn cell_pixels(&self, degrees: f64) -> f64 {
        degrees * self.y_scale
    }

    fn point(&self, lat: f64, long: f64) -> (f64, f64) {
        let x = MARGIN + (long - self.west) * self.x_scale;
        let y = MARGIN + (self.north - lat) * self.y_scale;
        ((x * 10.0).round() / 10.0, (y * 10.0).round() / 10.0)
    }
}

/// Requests placed per district and the weighted centre of its cells.
#[derive(Default)]
struct DistrictPlace {
    placed: u64,
    lat_sum: f64,
    long_sum: f64,
}

/// `map.html` of a month.
pub fn map_html(summary: &MonthSummary) -> String {
    let title = format!("Where requests came from, {}", summary.month);
    let map = &summary.map;
    let service_index: BTreeMap<&str, usize> = summary
        .services
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.as_str(), i))
        .collect();
    let mut districts: BTreeMap<&str, DistrictPlace> = BTreeMap::new();
    for cell in &map.cells {
        let (lat, long) = map.centre(cell);
        let place = districts.entry(cell.council_district.as_str()).or_default();
        let n = cell.request_count as f64;
        place.placed += cell.request_count;
        place.lat_sum += lat * n;
        place.long_sum += long * n;
    }
    let placed: u64 = districts.values().map(|d| d.placed).sum();
    let projection = (!map.cells.is_empty()).then(|| Projection::fit(map));
    let max_count = map.cells.iter().map(|c| c.request_count).max().unwrap_or(1);
    page(
        &title,
        html! {
            p {
                a href="../../index.html" { "All reports" } " · "
                a href="final_report.html" { "Table" } " · "
                a href="chart.html" { "Chart" } " · "
                a href="../../trends.html" { "Trends" }
            }
            h1 { (title) }
            @if let Some(projection) = &projection {
                svg xmlns="http://www.w3.org/2000/svg" role="img" width=(WIDTH) height=(projection.height.round())
                    viewBox=(format!("0 0 {WIDTH} {}", projection.height.round())) {
                    title { (title) }
                    rect width="100%" height="100%" fill="#f7f7f4" {}
                    // Busiest first (the cells come most first), so small circles stay
                    // visible on top.
                    @for cell in &map.cells {
                        @let (lat, long) = map.centre(cell);
                        @let (x, y) = projection.point(lat, long);
                        @let r = 2.0 + 8.0 * (cell.request_count as f64 / max_count as f64).sqrt();
                        @let i = service_index.get(cell.service.as_str()).copied().unwrap_or(usize::MAX);
                        // Each service sits at its own angle around the cell's centre, so
                        // the services of one cell do not hide each other.
                        @let angle = (i.min(PALETTE.len() - 1) as f64) * std::f64::consts::TAU / PALETTE.len() as f64;
                        @let spread = projection.cell_pixels(map.cell_degrees()) * 0.3;
                        @let (x, y) = ((x + spread * angle.cos()).round(), (y + spread * angle.sin()).round());
                        circle cx=(x) cy=(y) r=(format!("{r:.1}")) fill=(colour(i)) fill-opacity="0.7" {
                            title { (cell.service) ", district " (cell.council_district) ": " (cell.request_count) }
                        }
                    }
                    @for (district, place) in &districts {
                        @let n = place.placed as f64;
                        @let (x, y) = projection.point(place.lat_sum / n, place.long_sum / n);
                        text x=(x) y=(y) text-anchor="middle" font-size="13" font-weight="bold"
                            stroke="#fff" stroke-width="3" paint-order="stroke" {
                            "District " (district) ": " (place.placed)
                        }
                    }
                }
                p {
                    @for (i, g) in summary.services.iter().enumerate().take(PALETTE.len() - 1) {
                        (swatch(colour(i))) " " (g.name) " "
                    }
                    @if summary.services.len() >= PALETTE.len() {
                        (swatch(colour(usize::MAX))) " other services"
                    }
                }
            } @else {
                p { "No request of this month has usable coordinates." }
            }
            table {
                caption { "Requests per council district" }
                thead { tr { th { "council_district" } th.n { "request_count" } th.n { "on the map" } } }
                tbody {
                    @for g in &summary.by_council_district {
                        tr {
                            td { (g.name) }
                            td.n { (g.request_count) }
                            td.n { (districts.get(g.name.as_str()).map_or(0, |d| d.placed)) }
                        }
                    }
                }
                tfoot { tr { td { "Total" } td.n { (summary.total_requests) } td.n { (placed) } } }
            }
            p {
                (map.without_coordinates) " requests without usable coordinates are counted, not placed."
                @if map.beyond_cap > 0 {
                    " " (map.beyond_cap) " requests in the month's least busy cells are counted, not placed (the map keeps the busiest "
                    (gid_aggregate::MAP_CELL_CAP) " cells)."
                }
                " Each circle is a cell of " (format!("{:.2}", map.cell_degrees())) "° × " (format!("{:.2}", map.cell_degrees())) "°."

            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use gid_aggregate::{GroupCount, MapCell};

    fn cell(lat_cell: i32, service: &str, district: &str, request_count: u64) -> MapCell {
        MapCell {
            lat_cell,
            long_cell: -11716,
            service: service.into(),
            council_district: district.into(),
            request_count,
        }
    }

    fn summary(evil: &str) -> MonthSummary {
        MonthSummary {
            month: "2019-01".into(),
            total_requests: 6,
            services: vec![
                GroupCount {
                    name: evil.into(),
                    request_count: 4,
                },
                GroupCount {
                    name: "Pothole".into(),
                    request_count: 2,
                },
            ],
            by_council_district: vec![
                GroupCount {
                    name: "3".into(),
                    request_count: 4,
                },
                GroupCount {
                    name: evil.into(),
                    request_count: 2,
                },
            ],
            map: MapPoints {
                coarsening: 0,
                cells: vec![cell(3271, evil, "3", 3), cell(3275, "Pothole", evil, 1)],
                without_coordinates: 2,
                beyond_cap: 0,
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_map_counts_every_district_and_places_only_requests_with_coordinates() {
        let page = map_html(&summary("Graffiti"));
        // One circle per cell; the legend's dots are the others.
        assert_eq!(page.matches("fill-opacity=\"0.7\"").count(), 2, "{page}");
        assert!(page.contains("District 3: 3"), "{page}");
        assert!(
            page.contains("<td>3</td><td class=\"n\">4</td><td class=\"n\">3</td>"),
            "{page}"
        );
        assert!(
            page.contains("<td>Total</td><td class=\"n\">6</td><td class=\"n\">4</td>"),
            "{page}"
        );
        assert!(page.contains("2 requests without usable coordinates are counted, not placed"));
    }

    #[test]
    fn the_map_escapes_service_and_district_names() {
        let evil = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>";
        let page = map_html(&summary(evil));
        assert!(
            !page.contains("<script>alert") && !page.contains("<img"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;"), "{page}");
    }

    #[test]
    fn a_month_without_coordinates_says_so_instead_of_drawing_an_empty_map() {
        let mut s = summary("Graffiti");
        s.map.cells.clear();
        let page = map_html(&s);
        assert!(!page.contains("<svg"), "{page}");
        assert!(page.contains("No request of this month has usable coordinates."));
    }
}
