//! The site in English and Spanish on the local profile (`publish.languages = ["en",
//! "es"]`): the month pages are published again under `es/`, translated through Apertium
//! eng-spa, linked both ways with `hreflang`, and a rerun answers every translation from
//! the month's cache — proven by running it with no Apertium on the PATH.

use std::path::Path;

use gid_e2e::{assert_success, run_summary, run_with_env, stderr, summary_stage, JANUARY_SITE};

fn run(name: &str, root: &Path, args: &[&str], path: Option<&str>) -> std::process::Output {
    // Beside the data root, which holds only gid's buckets.
    let config = root.with_extension("toml");
    std::fs::write(&config, "[publish]\nlanguages = [\"en\", \"es\"]\n").unwrap();
    let mut args: Vec<&str> = args.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    let data_root = root.to_str().unwrap().to_owned();
    let outbox = root.join("outbox").to_str().unwrap().to_owned();
    let mut env = vec![
        ("GID__LOCAL__DATA_ROOT", data_root.as_str()),
        ("GID__NOTIFY__OUTBOX_DIR", outbox.as_str()),
    ];
    if let Some(path) = path {
        env.push(("PATH", path));
    }
    run_with_env(name, &args, &env, "local")
}

fn read(root: &Path, key: &str) -> String {
    std::fs::read_to_string(root.join("gid-reports").join(key))
        .unwrap_or_else(|e| panic!("{key}: {e}"))
}

#[test]
fn spanish_pages_are_translated_linked_both_ways_and_a_rerun_asks_no_engine() {
    let dir = tempfile::tempdir().unwrap();
    let root = &dir.path().join("data");
    assert_success(&run(
        "gid-admin",
        root,
        &["sample", "--from", "2019-01", "--to", "2019-01"],
        None,
    ));
    let json: Vec<&str> = JANUARY_SITE
        .iter()
        .copied()
        .chain(["--output", "json"])
        .collect();
    let first = run("monthly-report", root, &json, None);
    assert_success(&first);
    // The run summary counts the month's pages' and the trends' translations together.
    let cost = |out| {
        summary_stage(&run_summary(out), "2019-01", "publish")["counts"]["site_translations"]
            .clone()
    };
    let paid = cost(&first);
    assert_eq!(paid["engine_calls"], 2, "{paid:#}");
    assert_eq!(paid["cache_hits"], 0, "{paid:#}");
    assert!(
        stderr(&first).contains("engine_calls=1"),
        "one Apertium call for the month: {}",
        stderr(&first)
    );

    let es = read(root, "es/2019/jan/final_report.html");
    assert!(es.contains("<html lang=\"es\">"), "{es}");
    // Service names and fixed text in Spanish; the counts are the English page's.
    assert!(es.contains(">Bache</a>"), "Pothole is translated: {es}");
    assert!(es.contains("Peticiones por servicio"), "{es}");
    assert!(
        es.contains("hreflang=\"en\" href=\"../../../2019/jan/final_report.html\""),
        "{es}"
    );
    let en = read(root, "2019/jan/final_report.html");
    assert!(en.contains(">Pothole</a>") && !en.contains("Bache"), "{en}");
    assert!(
        en.contains("hreflang=\"es\" href=\"../../es/2019/jan/final_report.html\""),
        "{en}"
    );
    let chart = read(root, "es/2019/jan/chart.html");
    assert!(
        chart.contains("<html lang=\"es\">") && chart.contains("Bache"),
        "{chart}"
    );
    let index = read(root, "index.html");
    assert!(
        index.contains("href=\"./es/2019/jan/final_report.html\" hreflang=\"es\""),
        "the index header links the Spanish pages: {index}"
    );
    assert!(
        index.contains("href=\"./es/trends.html\" hreflang=\"es\""),
        "the index header links the Spanish trends: {index}"
    );

    // The trends in Spanish, linking the Spanish month pages and the English trends.
    let trends = read(root, "es/trends.html");
    assert!(trends.contains("<html lang=\"es\">"), "{trends}");
    assert!(
        trends.contains(">Bache<"),
        "Pothole is translated: {trends}"
    );
    for (href, target) in [
        (
            "./2019/jan/final_report.html",
            "es/2019/jan/final_report.html",
        ),
        ("../2019/jan/map.html", "2019/jan/map.html"),
        ("../trends.html", "trends.html"),
        ("../index.html", "index.html"),
    ] {
        assert!(
            trends.contains(&format!("href=\"{href}\"")),
            "{href}: {trends}"
        );
        assert!(
            root.join("gid-reports").join(target).is_file(),
            "{href} from es/trends.html is broken"
        );
    }
    assert!(
        read(root, "trends.html").contains("hreflang=\"es\" href=\"./es/trends.html\""),
        "the English trends name their Spanish version"
    );

    // Rerun without any engine reachable: every translation comes from the cache.
    let no_engine = dir.path().join("empty-path");
    std::fs::create_dir_all(&no_engine).unwrap();
    let no_engine = no_engine.to_str().unwrap();
    let args: Vec<&str> = json.iter().copied().chain(["--force"]).collect();
    let rerun = run("monthly-report", root, &args, Some(no_engine));
    assert_success(&rerun);
    // Both caches answer: the month's pages' and the site's trends'.
    let said = stderr(&rerun);
    assert!(
        said.matches("engine_calls=0").count() == 2 && said.matches("engine_calls=").count() == 2,
        "{said}"
    );
    assert_eq!(read(root, "es/2019/jan/final_report.html"), es);
    assert_eq!(read(root, "es/trends.html"), trends);
    let cached = cost(&rerun);
    assert_eq!(cached["engine_calls"], 0, "{cached:#}");
    assert_eq!(cached["cache_hits"], paid["texts_sent"], "{cached:#}");

    // The same rerun without the cache needs the engine, and says how to check it.
    std::fs::remove_file(root.join("gid-work/2019/jan/site-translations.json")).unwrap();
    let uncached = run("monthly-report", root, &args, Some(no_engine));
    assert!(!uncached.status.success());
    let said = stderr(&uncached);
    assert!(
        said.contains("translating the 2019-01 pages into `es`")
            && said.contains("gid-admin translate --to es"),
        "{said}"
    );
}

/// A TranslateText answer in Smithy RPC v2 CBOR (what aws-sdk-translate speaks).
fn translated(text: &str) -> gid_e2e::StubResponse {
    let mut cbor = aws_smithy_cbor::Encoder::new(Vec::new());
    cbor.map(3)
        .str("TranslatedText")
        .str(text)
        .str("SourceLanguageCode")
        .str("en")
        .str("TargetLanguageCode")
        .str("es");
    gid_e2e::StubResponse::cbor(200, cbor.into_writer())
}

#[tokio::test]
async fn on_aws_the_pages_ask_translate_for_spanish_once_per_text_and_never_again() {
    use gid_core::{BucketName, Month, ObjectKey};
    use gid_storage::{ObjectStore, PutOptions};

    let stub = gid_e2e::StubServer::start(vec![translated("Texto <en> español")]);
    let endpoint = gid_e2e::moto_endpoint();
    let (requests, reports, work) = (
        gid_e2e::unique("gid-req"),
        gid_e2e::unique("gid-rep"),
        gid_e2e::unique("gid-work"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("languages.toml");
    std::fs::write(&config, "[publish]\nlanguages = [\"en\", \"es\"]\n").unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("GID__ENRICH__AWS__ENDPOINT_URL", stub.endpoint.as_str()),
        ("GID__BUCKETS__REQUESTS", requests.as_str()),
        ("GID__BUCKETS__REPORTS", reports.as_str()),
        ("GID__BUCKETS__WORK", work.as_str()),
    ];
    crate::support_aws::create_buckets(&env, &[&requests, &reports, &work]);
    let store = crate::support_aws::s3().await;
    let sample = gid_sample::generate_month(
        Month::new(2019, 1).unwrap(),
        &gid_sample::SampleSpec::default(),
    );
    for f in &sample.files {
        store
            .put(
                &BucketName::new(requests.clone()).unwrap(),
                &ObjectKey::new(format!("2019/jan/{}", f.name)).unwrap(),
                bytes::Bytes::from(f.bytes.clone()),
                &PutOptions::new("text/csv"),
            )
            .await
            .unwrap();
    }
    let mut args: Vec<&str> = JANUARY_SITE.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    assert_success(&run_with_env("monthly-report", &args, &env, "aws"));

    let sent = stub.requests();
    // The fixed phrases and the month's services, each asked once, English into Spanish.
    assert!(sent.len() > 14, "{} TranslateText requests", sent.len());
    let mut texts = std::collections::BTreeSet::new();
    for request in &sent {
        let body = crate::enrich_aws::cbor_body(request);
        assert_eq!(body["TargetLanguageCode"], "es");
        assert_eq!(body["SourceLanguageCode"], "en");
        assert!(texts.insert(body["Text"].as_str().unwrap().to_owned()));
    }
    assert!(texts.contains("Pothole") && texts.contains("Requests per service"));
    let page = store
        .get(
            &BucketName::new(reports.clone()).unwrap(),
            &ObjectKey::new("es/2019/jan/final_report.html").unwrap(),
        )
        .await
        .unwrap();
    let page = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(page.contains("<html lang=\"es\">"), "{page}");
    assert!(page.contains("Texto &lt;en&gt; español"), "escaped: {page}");

    args.push("--force");
    assert_success(&run_with_env("monthly-report", &args, &env, "aws"));
    assert_eq!(
        stub.requests().len(),
        sent.len(),
        "the rerun asked Translate nothing"
    );
}
