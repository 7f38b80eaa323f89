//! Text in images with Tesseract OCR (Debian `tesseract-ocr`), run as a subprocess:
//! `tesseract stdin stdout tsv` gives per-word boxes and confidences, which map onto
//! Rekognition's DetectText (WORD and LINE detections, boxes as fractions of the image).

use std::sync::Arc;

use async_trait::async_trait;
use gid_storage::ObjectStore;

use crate::ports::{BoundingBox, EngineId, ImageRef, TextDetection, TextDetector, TextKind};
use crate::EnrichError;

/// Tesseract behind the [`TextDetector`] port; images are read from the object store.
#[derive(Debug, Clone)]
pub struct TesseractTextDetector {
    store: Arc<dyn ObjectStore>,
    program: String,
}

impl TesseractTextDetector {
    /// Reads images from `store`; runs `tesseract` found on the `PATH`.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            program: "tesseract".into(),
        }
    }

    /// OCR of image bytes (PNG, JPEG, TIFF, ...).
    pub async fn detect_in_bytes(&self, image: &[u8]) -> Result<Vec<TextDetection>, EnrichError> {
        let engine_error = |message: String| EnrichError::Engine {
            engine: "tesseract".into(),
            message,
        };
        let stdout = super::process::run_engine(
            &self.program,
            &["stdin", "stdout", "-l", "eng", "tsv"],
            image.to_vec(),
            "tesseract-ocr tesseract-ocr-eng",
        )
        .await
        .map_err(engine_error)?;
        Ok(parse_tsv(&String::from_utf8_lossy(&stdout)))
    }
}

/// Block, paragraph and line numbers: the words of one line share them.
type LineId = (u32, u32, u32);

/// One word row of Tesseract's TSV.
struct Word {
    line: LineId,
    left: f32,
    top: f32,
    width: f32,
    height: f32,
    confidence: f32,
    text: String,
}

/// Turns Tesseract's TSV into LINE detections followed by WORD detections, as
/// Rekognition orders them.
pub fn parse_tsv(tsv: &str) -> Vec<TextDetection> {
    let mut page = (1.0f32, 1.0f32);
    let mut words = Vec::new();
    for row in tsv.lines().skip(1) {
        let f: Vec<&str> = row.split('\t').collect();
        if f.len() < 12 {
            continue;
        }
        let num = |i: usize| f[i].trim().parse::<f32>().unwrap_or(0.0);
        match f[0] {
            "1" => page = (num(8).max(1.0), num(9).max(1.0)),
            "5" if !f[11].trim().is_empty() && num(10) >= 0.0 => words.push(Word {
                line: (num(2) as u32, num(3) as u32, num(4) as u32),
                left: num(6),
                top: num(7),
                width: num(8),
                height: num(9),
                confidence: num(10),
                text: f[11].trim().to_owned(),
            }),
            _ => {}
        }
    }
    let (w, h) = page;
    let fraction = |left: f32, top: f32, width: f32, height: f32| BoundingBox {
        left: left / w,
        top: top / h,
        width: width / w,
        height: height / h,
    };
    let mut lines: Vec<TextDetection> = Vec::new();
    let mut current: Option<(LineId, Vec<&Word>)> = None;
    let flush = |group: &[&Word], lines: &mut Vec<TextDetection>| {
        if group.is_empty() {
            return;
        }
        let left = group.iter().map(|w| w.left).fold(f32::MAX, f32::min);
        let top = group.iter().map(|w| w.top).fold(f32::MAX, f32::min);
        let right = group.iter().map(|w| w.left + w.width).fold(0.0, f32::max);
        let bottom = group.iter().map(|w| w.top + w.height).fold(0.0, f32::max);
        lines.push(TextDetection {
            text: group
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            kind: TextKind::Line,
            confidence: group.iter().map(|w| w.confidence).sum::<f32>() / group.len() as f32,
            bounding_box: fraction(left, top, right - left, bottom - top),
        });
    };
    for word in &words {
        match &mut current {
            Some((line, group)) if *line == word.line => group.push(word),
            _ => {
                if let Some((_, group)) = current.take() {
                    flush(&group, &mut lines);
                }
                current = Some((word.line, vec![word]));
            }
        }
    }
    if let Some((_, group)) = current.take() {
        flush(&group, &mut lines);
    }
    lines.extend(words.iter().map(|word| TextDetection {
        text: word.text.clone(),
        kind: TextKind::Word,
        confidence: word.confidence,
        bounding_box: fraction(word.left, word.top, word.width, word.height),
    }));
    lines
}

#[async_trait]
impl TextDetector for TesseractTextDetector {
    fn engine(&self) -> EngineId {
        EngineId("tesseract-5/eng".into())
    }

    async fn detect_text(&self, image: &ImageRef) -> Result<Vec<TextDetection>, EnrichError> {
        let object = self.store.get(&image.bucket, &image.key).await?;
        self.detect_in_bytes(&object.body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_words_group_into_lines_with_fractional_boxes() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t200\t100\t-1\t\n\
                   4\t1\t1\t1\t1\t0\t10\t10\t120\t20\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t10\t10\t50\t20\t96.5\tNO\n\
                   5\t1\t1\t1\t1\t2\t70\t12\t60\t18\t91.5\tPARKING\n\
                   5\t1\t1\t1\t2\t1\t10\t50\t40\t20\t88\tZONE\n";
        let d = parse_tsv(tsv);
        let texts: Vec<(&str, TextKind)> = d.iter().map(|t| (t.text.as_str(), t.kind)).collect();
        assert_eq!(
            texts,
            [
                ("NO PARKING", TextKind::Line),
                ("ZONE", TextKind::Line),
                ("NO", TextKind::Word),
                ("PARKING", TextKind::Word),
                ("ZONE", TextKind::Word),
            ]
        );
        assert!((d[0].confidence - 94.0).abs() < 1e-3);
        assert_eq!(
            d[0].bounding_box,
            BoundingBox {
                left: 0.05,
                top: 0.1,
                width: 0.6,
                height: 0.2
            }
        );
    }
}
