//! scooter-pickups end to end on the local profile: real engines on the sample's real
//! photos (a motorcycle that the ImageNet model calls a scooter, a cat, coffee, an
//! astronaut) and its English and Spanish descriptions.

use std::path::{Path, PathBuf};

use gid_e2e::{assert_success, run_summary, run_with_env, summary_month, summary_stage};
use serde_json::Value;

fn photos_dir() -> PathBuf {
    let dir = std::env::var("GID_SAMPLE_IMAGES").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gid-sample-images",
            std::env::var("HOME").unwrap()
        )
    });
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("motorcycle_left.png").exists(),
        "{} has no sample photos: run `make sample-images`",
        dir.display()
    );
    dir
}

/// Runs scooter-pickups with `--output json`; returns its run summary, after checking it
/// succeeded.
fn pickups(root: &Path, args: &[&str]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--output", "json"]).collect();
    let out = run("scooter-pickups", root, &args);
    assert_success(&out);
    run_summary(&out)
}

fn run(name: &str, root: &Path, args: &[&str]) -> std::process::Output {
    let data_root = root.to_str().unwrap().to_owned();
    let outbox = root.join("outbox").to_str().unwrap().to_owned();
    let photos = photos_dir().to_str().unwrap().to_owned();
    run_with_env(
        name,
        args,
        &[
            ("GID__LOCAL__DATA_ROOT", &data_root),
            ("GID__NOTIFY__OUTBOX_DIR", &outbox),
            ("GID_SAMPLE_IMAGES", &photos),
        ],
        "local",
    )
}

#[test]
fn pickups_are_scooter_photos_with_negative_descriptions_and_reruns_call_no_engine() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    crate::fixtures::seed_default(root, "2019-01", "2019-01");

    // A dry run before anything was ingested says what a real run would do first.
    let dry = pickups(root, &["--month", "2019-01", "--dry-run"]);
    let enrich = summary_stage(&dry, "2019-01", "enrich");
    assert_eq!(enrich["status"], "planned");
    assert!(
        enrich["reason"]
            .as_str()
            .unwrap()
            .starts_with("not ingested yet"),
        "{enrich:#}"
    );

    let doc = pickups(root, &["--month", "2019-01"]);
    let stages: Vec<(&Value, &Value)> = summary_month(&doc, "2019-01")["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (&s["stage"], &s["status"]))
        .collect();
    assert_eq!(
        stages,
        [
            (&"ingest".into(), &"ran".into()),
            (&"enrich".into(), &"ran".into()),
            (&"publish".into(), &"ran".into())
        ],
        "ingested first"
    );
    let counts = &summary_stage(&doc, "2019-01", "enrich")["counts"];
    let pickups_found = counts["pickups"].as_u64().unwrap() as usize;
    assert!(
        pickups_found > 0,
        "the sample has scooter photos with negative descriptions: {counts:#}"
    );

    // Every pickup: a photo the sample stored as the motorcycle, and a NEGATIVE description.
    let photos: Vec<String> = {
        let mut names: Vec<String> = std::fs::read_dir(photos_dir())
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().into_string().ok())
            .filter(|n| n.ends_with(".png"))
            .collect();
        names.sort();
        names
    };
    let motorcycle = photos
        .iter()
        .position(|p| p == "motorcycle_left.png")
        .unwrap();
    let csv = std::fs::read(root.join("gid-reports/2019/jan/scooter_pickups.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        rows += 1;
        assert_eq!(&record[column("sentiment")], "NEGATIVE", "{record:?}");
        assert_eq!(&record[column("pickup")], "yes");
        let image = record[column("image")]
            .split(' ')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(
            gid_sample::photo_for(&image, photos.len()),
            Some(motorcycle),
            "{record:?}"
        );
        assert!(
            record[column("image_labels")].contains("Scooter"),
            "{record:?}"
        );
    }
    assert_eq!(rows, pickups_found);

    // Spanish descriptions are translated before sentiment; missing photos are recorded.
    let page =
        std::fs::read_to_string(root.join("gid-reports/2019/jan/scooter_pickups.html")).unwrap();
    assert!(
        page.contains("The electrical scooter is blocking the footpath"),
        "no translation on the page"
    );
    assert!(page.contains("(missing)"), "missing photos are listed");
    let index = std::fs::read_to_string(root.join("gid-reports/index.html")).unwrap();
    assert!(index.contains("href=\"./2019/jan/scooter_pickups.html\""));
    assert!(root.join("gid-work/2019/jan/enriched.parquet").exists());

    // Unchanged rerun: the manifests say there is nothing to do.
    let again = pickups(root, &["--month", "2019-01"]);
    for stage in ["enrich", "publish"] {
        let skipped = summary_stage(&again, "2019-01", stage);
        assert_eq!(skipped["status"], "skipped_unchanged", "{skipped:#}");
    }
    // Forced: enrich runs again, and every answer comes from the cache.
    let forced = pickups(root, &["--month", "2019-01", "--force"]);
    let counts = &summary_stage(&forced, "2019-01", "enrich")["counts"];
    assert_eq!(counts["engine_calls"], serde_json::json!([]), "{counts:#}");
    assert!(counts["cache_hits"].as_u64().unwrap() > 0, "{counts:#}");
    let dry = pickups(root, &["--month", "2019-01", "--dry-run"]);
    let plan = &summary_stage(&dry, "2019-01", "enrich")["counts"];
    for asked in [
        "language_texts",
        "translate_texts",
        "sentiment_texts",
        "photos",
    ] {
        assert_eq!(plan[asked], 0, "{plan:#}");
    }
    assert_eq!(plan["estimated_cost_usd"], Value::Null, "no prices offline");
}
