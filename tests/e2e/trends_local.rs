//! Trends and the district map end to end on the local backend: three sample months
//! published, one republished with more requests, and every number of `trends.csv`
//! checked against the sample generator's ground truth; each month's map counts the
//! districts exactly as its report does.

use std::collections::BTreeMap;
use std::path::Path;

use gid_core::Month;
use gid_e2e::{assert_success, run_local, run_local_json, summary_stage, SITE_STAGES};
use gid_sample::{generate_month, SampleSpec};

const MONTHS: [(&str, &str); 3] = [
    ("2019-01", "2019/jan"),
    ("2019-02", "2019/feb"),
    ("2019-03", "2019/mar"),
];
/// The requests added to February before it is republished.
const LATE_POTHOLES: u64 = 3;

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `trends.csv` as `(month, service, dimension, group, metric) → value`.
fn trends(root: &Path) -> BTreeMap<[String; 5], i64> {
    let text = read(root, "gid-reports/trends.csv");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let key = [0, 1, 2, 3, 4].map(|i| r[i].to_owned());
            (key, r[5].parse().unwrap_or_else(|e| panic!("{r:?}: {e}")))
        })
        .collect()
}

fn value(trends: &BTreeMap<[String; 5], i64>, key: [&str; 5]) -> Option<i64> {
    trends.get(&key.map(str::to_owned)).copied()
}

/// The rows of a page's table with this caption: first cell → the numbers after it.
fn table(page: &str, caption: &str) -> BTreeMap<String, Vec<u64>> {
    let start = page
        .find(&format!("<caption>{caption}</caption>"))
        .unwrap_or_else(|| panic!("no table {caption:?} in {page}"));
    let body = &page[start..];
    let body = &body[body.find("<tbody>").unwrap()..body.find("</tbody>").unwrap()];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let cells: Vec<&str> = row
                .split("<td")
                .skip(1)
                .map(|c| {
                    let c = &c[c.find('>').unwrap() + 1..];
                    &c[..c.find("</td>").unwrap()]
                })
                .collect();
            let numbers = cells[1..].iter().map(|c| c.parse().unwrap()).collect();
            (cells[0].to_owned(), numbers)
        })
        .collect()
}

#[test]
fn trends_add_up_to_the_ground_truth_and_each_map_counts_districts_as_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert_success(&run_local(
        "gid-admin",
        root,
        &["sample", "--from", "2019-01", "--to", "2019-03"],
    ));
    let args: Vec<&str> = ["--from", "2019-01", "--to", "2019-03"]
        .into_iter()
        .chain(SITE_STAGES.iter().copied())
        .collect();
    let (out, document) = run_local_json("monthly-report", root, &args);
    assert_success(&out);
    let written: Vec<String> = summary_stage(&document, "2019-03", "publish")["counts"]
        ["objects_written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect();
    for key in [
        "2019/mar/map.html",
        "2019/mar/summary.json",
        "trends.html",
        "trends.csv",
    ] {
        assert!(
            written.iter().any(|k| k == key),
            "the run summary lists {key}: {written:?}"
        );
    }

    // February gets a late export and is republished alone.
    let late: String = (1..=LATE_POTHOLES)
        .map(|i| format!("late-{i},Pothole,2019-02-20T09:00:00,Closed,3\n"))
        .collect();
    std::fs::write(
        root.join("gid-requests/2019/feb/late.csv"),
        format!("service_request_id,service_name,date_requested,status,council_district\n{late}"),
    )
    .unwrap();
    let args: Vec<&str> = ["--month", "2019-02"]
        .into_iter()
        .chain(SITE_STAGES.iter().copied())
        .collect();
    assert_success(&run_local("monthly-report", root, &args));

    let trends = trends(root);
    let mut summed: BTreeMap<String, i64> = BTreeMap::new();
    let mut total = 0;
    for (month, _) in MONTHS {
        let mut truth =
            generate_month(month.parse::<Month>().unwrap(), &SampleSpec::default()).truth;
        if month == "2019-02" {
            *truth.service_counts.get_mut("Pothole").unwrap() += LATE_POTHOLES;
            truth.total_rows += LATE_POTHOLES;
        }
        for (service, count) in &truth.service_counts {
            assert_eq!(
                value(&trends, [month, service, "all", "", "requests"]),
                Some(*count as i64),
                "{month} {service}"
            );
            *summed.entry(service.clone()).or_default() += *count as i64;
        }
        assert_eq!(
            value(&trends, [month, "", "all", "", "requests"]),
            Some(truth.total_rows as i64)
        );
        total += truth.total_rows as i64;
        let open = value(&trends, [month, "", "all", "", "open"]).unwrap();
        let closed = value(&trends, [month, "", "all", "", "closed"]).unwrap();
        assert_eq!(
            open + closed,
            truth.total_rows as i64,
            "{month}: open + closed"
        );
    }
    // Year to date, in the latest month, is the ground truth summed over the months.
    for (service, count) in &summed {
        assert_eq!(
            value(&trends, ["2019-03", service, "all", "", "requests_ytd"]),
            Some(*count),
            "{service}"
        );
    }
    assert_eq!(
        value(&trends, ["2019-03", "", "all", "", "requests_ytd"]),
        Some(total)
    );

    for (month, folder) in MONTHS {
        let report = read(root, &format!("gid-reports/{folder}/final_report.html"));
        let map = read(root, &format!("gid-reports/{folder}/map.html"));
        let reported = table(&report, "Requests per council district");
        let mapped = table(&map, "Requests per council district");
        assert_eq!(reported.len(), 9, "{month}: nine districts");
        for (district, counts) in &reported {
            let on_map = &mapped[district];
            assert_eq!(on_map[0], counts[0], "{month} district {district}");
        }
        // Every sample request has coordinates, but February's late ones do not.
        let placed: u64 = mapped.values().map(|c| c[1]).sum();
        let unplaced = if month == "2019-02" { LATE_POTHOLES } else { 0 };
        let requests: u64 = reported.values().map(|c| c[0]).sum();
        assert_eq!(placed + unplaced, requests, "{month}: placed on the map");
        assert!(
            map.contains(&format!(
                "{unplaced} requests without usable coordinates are counted, not placed"
            )),
            "{month}"
        );
        // Each month's summary is published as a download, byte for byte.
        assert_eq!(
            read(root, &format!("gid-reports/{folder}/summary.json")),
            read(root, &format!("gid-work/{folder}/summary.json")),
        );
    }
    let page = read(root, "gid-reports/trends.html");
    assert!(
        page.contains("3 published months, 2019-01 to 2019-03."),
        "{page}"
    );
}
