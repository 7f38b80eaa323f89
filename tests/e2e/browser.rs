//! The report site as a person sees it: headless Chromium opens the generated site from
//! disk (local profile) and over HTTP from moto_server (aws profile, read through the bucket
//! policy `gid-admin site init` puts):
//! the index, then each month's table, chart and scooter page. On every page: no console
//! message, no request leaving the machine (DNS answers NOTFOUND for every name, and the
//! net log lists every URL Chromium asked for), no script or external URL in the DOM, and
//! every link resolves. Each chart is screenshotted and must show its bars.
//!
//! Needs Debian's `chromium` (`make browser-deps`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gid_e2e::html::{executable_content, hrefs, landing, link_with};

/// Where the report's service names link by default (`publish.service_info_default`): a
/// link out of the site, never requested by the page (the net log proves that).
const SERVICE_PAGES: &str = "https://www.sandiego.gov/";
use gid_e2e::{assert_success, http_get, moto_endpoint, run_with_env, unique, JANUARY_SITE};

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
        .expect("chromium is not installed: run `make browser-deps`")
}

/// What Chromium did with one page.
struct Visit {
    dom: String,
    /// `CONSOLE` lines of Chromium's log (console messages and errors of the page).
    console: Vec<String>,
    /// Every URL in the net log (what Chromium requested or tried to).
    urls: Vec<String>,
}

/// Opens `url` in a fresh headless Chromium (`--dump-dom`, or `--screenshot=<png>`).
fn open(url: &str, screenshot: Option<&Path>) -> Visit {
    let profile = tempfile::tempdir().unwrap();
    let net_log = profile.path().join("netlog.json");
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,900",
            "--enable-logging=stderr",
            "--v=0",
            // Any host name resolves to nothing (but the local moto_server): an external
            // request cannot succeed.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--log-net-log={}", net_log.display()));
    match screenshot {
        Some(png) => command.arg(format!("--screenshot={}", png.display())),
        None => command.arg("--dump-dom"),
    };
    let mut child = command
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Drained while it runs: a DOM larger than the pipe's buffer (64 KiB, a map page)
    // would otherwise block Chromium's write, and it would never exit.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).map(|_| bytes)
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    // Bounded: a hung browser fails the test instead of hanging it.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(90) {
            child.kill().unwrap();
            panic!("chromium did not finish {url} within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::process::Output {
        status,
        stdout: stdout.join().unwrap().unwrap(),
        stderr: stderr.join().unwrap().unwrap(),
    };
    assert!(
        output.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    let console = log
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .map(str::to_owned)
        .collect();
    let urls = page_requests(&net_log);
    Visit {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        console,
        urls,
    }
}

/// The URLs the page asked for, from Chromium's net log: requests with an initiator (the
/// page's origin, `null` for a file). The browser's own background requests (update
/// checks, network time) have none ("not an origin"); the resolver rules fail them anyway.
fn page_requests(net_log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log).expect("chromium wrote its net log");
    let log: serde_json::Value = serde_json::from_str(&text).expect("a complete net log");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"].clone();
    log["events"]
        .as_array()
        .expect("net log events")
        .iter()
        .filter(|e| e["type"] == start_job)
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_owned))
        .collect()
}

/// A request Chromium made that leaves the site: anything but the page's own origin.
fn external(urls: &[String], origin: &str) -> Vec<String> {
    urls.iter()
        .filter(|u| !u.starts_with(origin) && !u.starts_with("data:") && !u.starts_with("chrome"))
        .cloned()
        .collect()
}

/// Pixels of the chart's bar colour (#2b6cb0) and of any ink at all in a screenshot.
fn chart_pixels(png: &Path) -> (usize, usize) {
    let image = image::open(png).expect("a PNG screenshot").to_rgb8();
    let (mut bars, mut ink) = (0, 0);
    for p in image.pixels() {
        let [r, g, b] = p.0;
        if r.abs_diff(0x2b) < 24 && g.abs_diff(0x6c) < 24 && b.abs_diff(0xb0) < 24 {
            bars += 1;
        }
        if r < 200 || g < 200 || b < 200 {
            ink += 1;
        }
    }
    (bars, ink)
}

fn assert_page(name: &str, visit: &Visit, origin: &str) {
    assert!(
        visit.console.is_empty(),
        "{name}: console output {:#?}",
        visit.console
    );
    let outside = external(&visit.urls, origin);
    assert!(
        outside.is_empty(),
        "{name}: requests leaving the site {outside:#?}"
    );
    assert!(visit.dom.contains("<html"), "{name}: no DOM: {}", visit.dom);
    let problems = executable_content(&visit.dom);
    assert!(problems.is_empty(), "{name}: {problems:#?}");
    for (attr, value) in gid_e2e::html::parse(&visit.dom)
        .0
        .iter()
        .flat_map(|t| t.attributes.iter())
    {
        if ["src", "href", "xlink:href"].contains(&attr.as_str()) {
            let info_link = attr == "href" && value.starts_with(SERVICE_PAGES);
            assert!(
                !value.contains("://") || value.starts_with(origin) || info_link,
                "{name}: external URL {value} in the DOM"
            );
        }
    }
}

#[test]
fn the_checks_catch_console_errors_and_external_requests() {
    // A page that does both (never a gid page): the detectors must see them.
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bad.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>console.error('gid-canary')</script>\
         <img src=\"http://gid-canary.example/x.png\"></body></html>",
    )
    .unwrap();
    let visit = open(&format!("file://{}", page.display()), None);
    assert!(
        visit.console.iter().any(|l| l.contains("gid-canary")),
        "console detector: {:?}",
        visit.console
    );
    let origin = format!("file://{}", dir.path().display());
    assert!(
        external(&visit.urls, &origin)
            .iter()
            .any(|u| u.contains("gid-canary.example")),
        "request detector: {:?}",
        visit.urls
    );
}

fn local_env(root: &Path) -> Vec<(String, String)> {
    let photos = std::env::var("GID_SAMPLE_IMAGES").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gid-sample-images",
            std::env::var("HOME").unwrap()
        )
    });
    vec![
        (
            "GID__LOCAL__DATA_ROOT".into(),
            root.to_str().unwrap().into(),
        ),
        (
            "GID__NOTIFY__OUTBOX_DIR".into(),
            root.join("outbox").to_str().unwrap().into(),
        ),
        ("GID_SAMPLE_IMAGES".into(), photos),
    ]
}

fn run(name: &str, env: &[(String, String)], profile: &str, args: &[&str]) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_success(&run_with_env(name, args, &env, profile));
}

/// The site key a relative `href` on a page in `folder` (`2019/feb`, empty at the root)
/// leads to, as a browser resolves it.
fn follow(folder: &str, href: &str) -> String {
    let mut parts: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    for part in href.split('/') {
        match part {
            "." => {}
            ".." => {
                parts.pop().expect("a link above the site's root");
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

#[test]
fn the_site_on_disk_renders_offline_with_working_links_and_visible_charts() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let env = local_env(root);
    run(
        "gid-admin",
        &env,
        "local",
        &["sample", "--from", "2019-01", "--to", "2019-02"],
    );
    run(
        "monthly-report",
        &env,
        "local",
        &["--from", "2019-01", "--to", "2019-02"],
    );
    run("scooter-pickups", &env, "local", &["--month", "2019-01"]);
    let site = root.join("gid-reports");
    let origin = format!("file://{}", site.display());
    let generated = started.elapsed();

    let index = open(&format!("{origin}/index.html"), None);
    assert_page("index.html", &index, &origin);
    let links = hrefs(&index.dom);
    assert!(links.len() >= 7, "index links: {links:?}");
    // Every link of the index resolves to a file of the site.
    for href in &links {
        let target = site.join(href.strip_prefix("./").expect("relative links"));
        assert!(
            target.is_file(),
            "index link {href} → {} is missing",
            target.display()
        );
    }
    let mut pages = 1;
    for month in ["2019/jan", "2019/feb"] {
        for page in ["final_report.html", "chart.html", "map.html"] {
            let key = format!("{month}/{page}");
            assert!(links.contains(&format!("./{key}")), "the index links {key}");
            let visit = open(&format!("{origin}/{key}"), None);
            assert_page(&key, &visit, &origin);
            // The page's own links (back to the index, table ↔ chart, the neighbouring
            // months' anchors of the index) resolve.
            for href in hrefs(&visit.dom) {
                if href.starts_with(SERVICE_PAGES) {
                    continue;
                }
                let (path, fragment) = href.split_once('#').unwrap_or((&href, ""));
                let target = site.join(month).join(path);
                assert!(target.exists(), "{key}: link {href} is broken");
                if !fragment.is_empty() {
                    assert!(
                        landing(&index.dom, fragment).is_some(),
                        "{key}: link {href} lands nowhere in the index"
                    );
                }
            }
            pages += 1;
        }
        let png = root.join(format!("{}.png", month.replace('/', "-")));
        open(&format!("{origin}/{month}/chart.html"), Some(&png));
        let (bars, ink) = chart_pixels(&png);
        assert!(
            bars > 5_000,
            "{month} chart shows no bars ({bars} bar pixels)"
        );
        assert!(ink > bars, "{month} chart has labels besides its bars");
    }
    let trends = open(&format!("{origin}/trends.html"), None);
    assert_page("trends.html", &trends, &origin);
    assert!(
        links.contains(&"./trends.html".to_owned()),
        "the index links the trends"
    );
    for href in hrefs(&trends.dom) {
        let target = site.join(href.strip_prefix("./").expect("relative links"));
        assert!(target.is_file(), "trends.html: link {href} is broken");
    }
    pages += 1;

    // A reader's walk: index → January's report → next month → February's report →
    // previous month → January's report → back to the index.
    let jan_report = landing(&index.dom, "m-2019-01")
        .expect("the index header lists January")
        .1
        .into_iter()
        .find(|h| h.ends_with("final_report.html"))
        .expect("January's entry links its report");
    let jan = open(&format!("{origin}/{}", &jan_report[2..]), None);
    assert!(jan.dom.contains("requests, 2019-01"), "{}", jan.dom);
    let next = link_with(&jan.dom, "rel", "next").expect("a next-month link");
    let landed = open(&format!("{origin}/2019/jan/{next}"), None);
    let (entry, feb_links) = landing(&landed.dom, next.split_once('#').unwrap().1)
        .unwrap_or_else(|| panic!("{next} lands nowhere"));
    assert_eq!(entry, "m-2019-02", "January's next month is February");
    let feb_report = feb_links
        .iter()
        .find(|h| h.ends_with("final_report.html"))
        .expect("February's entry links its report");
    let feb = open(&format!("{origin}/{}", &feb_report[2..]), None);
    assert!(feb.dom.contains("requests, 2019-02"), "{}", feb.dom);
    let previous = link_with(&feb.dom, "rel", "prev").expect("a previous-month link");
    let (entry, _) = landing(&index.dom, previous.split_once('#').unwrap().1)
        .unwrap_or_else(|| panic!("{previous} lands nowhere"));
    assert_eq!(entry, "m-2019-01", "February's previous month is January");
    assert!(
        hrefs(&feb.dom).contains(&"../../index.html".to_owned()),
        "February's report links back to the index"
    );
    pages += 3;

    // The trends walk, following each page's links as a reader clicks them: index →
    // trends → February's report (from the trends' downloads) → the index again.
    let to_trends =
        link_with(&index.dom, "href", "./trends.html").expect("the index links the trends");
    let trends_url = format!("{origin}/{}", follow("", &to_trends));
    let trends = open(&trends_url, None);
    assert!(trends.dom.contains("Get It Done trends"), "{}", trends.dom);
    let to_report = hrefs(&trends.dom)
        .into_iter()
        .find(|h| h.ends_with("2019/feb/final_report.html"))
        .expect("the trends link February's report");
    let report_key = follow("", &to_report);
    let report = open(&format!("{origin}/{report_key}"), None);
    assert!(report.dom.contains("requests, 2019-02"), "{}", report.dom);
    let back = hrefs(&report.dom)
        .into_iter()
        .find(|h| h.ends_with("index.html") && !h.contains('#'))
        .expect("the report links all reports");
    let index_key = follow(report_key.rsplit_once('/').unwrap().0, &back);
    assert_eq!(index_key, "index.html", "{back} from {report_key}");
    let again = open(&format!("{origin}/{index_key}"), None);
    assert!(
        landing(&again.dom, "m-2019-02").is_some(),
        "back on the index: {}",
        again.dom
    );
    pages += 3;

    let scooter = open(&format!("{origin}/2019/jan/scooter_pickups.html"), None);
    assert_page("scooter_pickups.html", &scooter, &origin);
    assert!(scooter.dom.contains("Pickups"), "{}", scooter.dom);
    pages += 1;
    eprintln!(
        "browser (disk): {pages} pages + 2 screenshots in {:?} (site generated in {generated:?})",
        started.elapsed()
    );
}

#[test]
fn the_site_over_http_from_moto_renders_with_working_links() {
    let started = Instant::now();
    let endpoint = moto_endpoint();
    let names: Vec<String> = ["gid-req", "gid-rep", "gid-img", "gid-stg", "gid-wrk"]
        .iter()
        .map(|p| unique(p))
        .collect();
    let env: Vec<(String, String)> = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("GID__BUCKETS__REQUESTS", &names[0]),
        ("GID__BUCKETS__REPORTS", &names[1]),
        ("GID__BUCKETS__IMAGES", &names[2]),
        ("GID__BUCKETS__STAGING", &names[3]),
        ("GID__BUCKETS__WORK", &names[4]),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for b in &names {
        run("gid-admin", &env, "aws", &["bucket", "create", b]);
    }
    // The public reads the site through the bucket policy site init puts.
    run("gid-admin", &env, "aws", &["site", "init"]);
    run(
        "gid-admin",
        &env,
        "aws",
        &["sample", "--from", "2019-01", "--to", "2019-01"],
    );
    run("monthly-report", &env, "aws", JANUARY_SITE);

    let origin = format!("{endpoint}/{}", names[1]);
    let index = open(&format!("{origin}/index.html"), None);
    assert_page("index.html (http)", &index, &endpoint);
    let links = hrefs(&index.dom);
    assert!(links.len() >= 3, "{links:?}");
    for href in &links {
        let url = format!(
            "{origin}/{}",
            href.strip_prefix("./").expect("relative links")
        );
        let (status, _) = http_get(&url);
        assert_eq!(status, 200, "index link {url} (anonymous GET)");
    }
    for page in ["final_report.html", "chart.html", "map.html"] {
        let visit = open(&format!("{origin}/2019/jan/{page}"), None);
        assert_page(page, &visit, &endpoint);
    }
    let trends = open(&format!("{origin}/trends.html"), None);
    assert_page("trends.html", &trends, &endpoint);
    let png = tempfile::NamedTempFile::with_suffix(".png").unwrap();
    open(&format!("{origin}/2019/jan/chart.html"), Some(png.path()));
    let (bars, _) = chart_pixels(png.path());
    assert!(
        bars > 5_000,
        "the chart served over HTTP shows no bars ({bars})"
    );
    eprintln!(
        "browser (http): 5 pages + 1 screenshot in {:?}",
        started.elapsed()
    );
}
