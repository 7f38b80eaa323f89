//! The offline text engines on real inputs (installed by `make engines`; the OCR page by
//! `make sample-images`). Missing engines fail these tests with the command to run.

use gid_enrich::local::{ApertiumTranslator, TesseractTextDetector};
use gid_enrich::ports::{TextKind, Translator};

#[tokio::test]
async fn apertium_translates_spanish_requests_into_english() {
    let translator = ApertiumTranslator::default();
    let got = translator
        .to_english(&[
            "El patinete eléctrico está bloqueando la acera".into(),
            "La patineta está estacionada en la banqueta\ndesde ayer".into(),
            "Hay basura y muebles abandonados en la calle".into(),
        ])
        .await
        .expect("apertium runs (install it with `make engines`)");
    assert_eq!(
        got[0].text,
        "The electrical scooter is blocking the footpath"
    );
    assert_eq!(got[0].source_language.as_str(), "es");
    // The glossary turns Mexican-Spanish words the dictionary lacks into ones it knows.
    assert!(
        got[1].text.contains("scooter") && got[1].text.contains("parked"),
        "{:?}",
        got[1]
    );
    assert!(
        got[2].text.contains("rubbish") && got[2].text.contains("furniture"),
        "{:?}",
        got[2]
    );
}

#[tokio::test]
async fn tesseract_reads_a_scanned_page_into_lines_and_words() {
    let dir = std::env::var("GID_SAMPLE_IMAGES").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gid-sample-images",
            std::env::var("HOME").unwrap()
        )
    });
    let page = std::path::Path::new(&dir).join("ocr/page.png");
    let bytes = std::fs::read(&page)
        .unwrap_or_else(|e| panic!("{}: {e}; run `make sample-images`", page.display()));
    let store = std::sync::Arc::new(gid_storage::LocalStore::new(std::env::temp_dir()));
    let detector = TesseractTextDetector::new(store);
    let found = detector
        .detect_in_bytes(&bytes)
        .await
        .expect("tesseract runs (install it with `make engines`)");
    let line = found
        .iter()
        .find(|d| d.kind == TextKind::Line && d.text.contains("markers of the coins"))
        .unwrap_or_else(|| panic!("no line with 'markers of the coins' in {found:?}"));
    assert!(line.confidence > 50.0, "{line:?}");
    let b = line.bounding_box;
    assert!(
        b.left >= 0.0 && b.top > 0.0 && b.left + b.width <= 1.0 && b.top + b.height <= 1.0,
        "{b:?}"
    );
    assert!(found
        .iter()
        .any(|d| d.kind == TextKind::Word && d.text == "coins"));
}
