//! Labels image files with the offline classifier and reports the time per image.
//!
//! `cargo run --release -p gid-enrich --example label-image -- photo.jpg [more.png …]`
//! (weights from `$GID_IMAGE_MODEL` or `~/.cache/gid-models/`, see `make models`).

// A command-line program: stdout carries its answers, stderr its one-line errors.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Instant;

use gid_enrich::local::labels::ImageClassifier;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        return Err("usage: label-image IMAGE [IMAGE …]".into());
    }
    let started = Instant::now();
    let classifier = ImageClassifier::load_default()?;
    println!(
        "loaded {} in {:.0} ms",
        classifier.model_id(),
        started.elapsed().as_secs_f64() * 1e3
    );
    for path in &paths {
        let bytes = std::fs::read(path)?;
        classifier.classify(&bytes, 5, 0.0)?; // warm-up: first-touch allocations, thread pool
        let runs = 20;
        let mut times = Vec::with_capacity(runs);
        let mut labels = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            labels = classifier.classify(&bytes, 5, 1.0)?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{path}: {:.1} ms/image median, {:.1} min (decode + preprocess + forward, {runs} runs)",
            times[runs / 2],
            times[0]
        );
        for label in labels {
            println!(
                "  {:<14} {:5.1}  [{} {}]",
                label.name, label.confidence, label.imagenet_index, label.imagenet_class
            );
        }
    }
    Ok(())
}
