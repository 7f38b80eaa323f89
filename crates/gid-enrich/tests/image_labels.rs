//! The offline image labeller on real photographs (see `tests/data/README.md`), with the real
//! EfficientNet-Lite0 weights that `make models` installs. Without them these tests fail —
//! they never skip — because a labeller that was never run on a photo proves nothing.

use std::sync::OnceLock;

use gid_enrich::local::labels::{ImageClassifier, Label, MODEL_PATH_ENV};

fn classifier() -> &'static ImageClassifier {
    static CLASSIFIER: OnceLock<ImageClassifier> = OnceLock::new();
    CLASSIFIER.get_or_init(|| {
        let path = ImageClassifier::default_model_path();
        ImageClassifier::load(&path).unwrap_or_else(|e| {
            panic!(
                "{e}\nThe image-label tests need the real model weights: run `make models` \
                 (or point {MODEL_PATH_ENV} at efficientnet-lite0.safetensors)."
            )
        })
    })
}

fn photo(name: &str) -> Vec<u8> {
    // At run time when cargo runs the test: a shared target dir may hold another clone's build.
    let root =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{root}/tests/data/{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn describe(labels: &[Label]) -> String {
    labels
        .iter()
        .map(|l| {
            format!(
                "{} {:.1} [{} {}]",
                l.name, l.confidence, l.imagenet_index, l.imagenet_class
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn a_cat_photo_is_labelled_cat_with_high_confidence() {
    let labels = classifier()
        .classify(&photo("chelsea.jpg"), 5, 0.0)
        .unwrap();
    let top = &labels[0];
    assert_eq!(top.name, "Cat", "{}", describe(&labels));
    assert!(
        (281..=285).contains(&top.imagenet_index),
        "{}",
        describe(&labels)
    );
    // tabby + tiger cat + Egyptian cat ≈ 92 %; broken weights, padding or channel order
    // scatter the probability over unrelated classes.
    assert!(top.confidence > 80.0, "{}", describe(&labels));
}

#[test]
fn an_espresso_photo_is_labelled_espresso() {
    let labels = classifier().classify(&photo("coffee.png"), 5, 0.0).unwrap();
    let top = &labels[0];
    assert_eq!(
        (
            top.name.as_str(),
            top.imagenet_index,
            top.imagenet_class.as_str()
        ),
        ("Espresso", 967, "espresso"),
        "{}",
        describe(&labels)
    );
    // ≈ 94 % with the (v - 127) / 128 input scaling the weights were trained with; ImageNet
    // mean/std scaling gives ≈ 74 % and BGR channel order ≈ 85 %, so this guards both.
    assert!(top.confidence > 90.0, "{}", describe(&labels));
}

#[test]
fn max_labels_and_min_confidence_filter_like_rekognition() {
    let c = classifier();
    let bytes = photo("chelsea.jpg");
    let two = c.classify(&bytes, 2, 0.0).unwrap();
    assert_eq!(two.len(), 2);
    assert!(two[0].confidence >= two[1].confidence);

    let confident = c.classify(&bytes, 10, 50.0).unwrap();
    assert_eq!(
        confident
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["Cat"]
    );
    assert!(c.classify(&bytes, 10, 99.9).unwrap().is_empty());
    assert!(c.classify(&bytes, 0, 0.0).unwrap().is_empty());
}

#[test]
fn probabilities_cover_the_1000_classes_and_sum_to_one() {
    let p = classifier().probabilities(&photo("coffee.png")).unwrap();
    assert_eq!(p.len(), 1000);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn the_model_id_names_the_weights() {
    assert_eq!(
        classifier().model_id(),
        "efficientnet-lite0/579344248a93/r1"
    );
}

#[test]
fn bytes_that_are_not_an_image_are_a_decode_error() {
    let err = classifier()
        .classify(b"<html>not a photo</html>", 5, 0.0)
        .unwrap_err();
    assert!(
        matches!(err, gid_enrich::EnrichError::ImageDecode { .. }),
        "{err}"
    );
}

#[test]
fn the_classifier_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ImageClassifier>();
    let bytes = photo("coffee.png");
    let tops: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| s.spawn(|| classifier().classify(&bytes, 1, 0.0).unwrap()[0].imagenet_index))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(tops, [967, 967]);
}

#[test]
fn probabilities_match_the_independent_numpy_forward_pass() {
    // Reference: the float64 numpy EfficientNet-Lite0 in scripts/prepare-image-model.py, run on
    // this crate's preprocessed chelsea.jpg (logits agreed to 4e-6). A one-pixel padding
    // shift or a mis-ordered weight moves these far more than the tolerance; a different JPEG
    // decoder or resize in a future `image` release may move them slightly.
    let p = classifier().probabilities(&photo("chelsea.jpg")).unwrap();
    for (class, expected) in [(285, 0.3837), (282, 0.3604), (281, 0.1739)] {
        assert!(
            (p[class] - expected).abs() < 0.005,
            "class {class}: {} vs numpy {expected}",
            p[class]
        );
    }
}
