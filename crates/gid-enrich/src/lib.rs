//! Enrichment of service requests: the [`ports`] (translation, language, sentiment, image
//! labels, text in images — batches in, Comprehend/Rekognition-shaped answers out), their
//! offline engines in [`local`] (lingua, Apertium, VADER, an ImageNet-1k EfficientNet-Lite0
//! in pure Rust, Tesseract) and AWS adapters in [`aws`] (Comprehend, Translate,
//! Rekognition), the [`cache`] that makes an unchanged rerun ask no engine anything, and
//! the [`pickups`] transform that selects e-scooter requests to pick up.
//!
//! It does not read tables or render reports: callers hand it requests and get enriched
//! requests back. The image model only knows ImageNet's 1000 classes — there is no
//! kick-scooter among them (see [`local::labels`] for what it can and cannot see).
//!
//! ```no_run
//! use gid_enrich::local::labels::{ImageClassifier, SCOOTER};
//! // `make models` writes the weights; GID_IMAGE_MODEL overrides the path.
//! let classifier = ImageClassifier::load_default()?;
//! let photo = std::fs::read("request-1234.jpg").unwrap();
//! let labels = classifier.classify(&photo, 10, 50.0)?;
//! let has_scooter = labels.iter().any(|l| l.name == SCOOTER);
//! # let _ = has_scooter;
//! # Ok::<(), gid_enrich::EnrichError>(())
//! ```

#[cfg(feature = "aws")]
pub mod aws;
pub mod cache;
mod error;
pub mod local;
pub mod pickups;
pub mod ports;

pub use error::EnrichError;
