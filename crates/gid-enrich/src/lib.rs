//! Enrichment engines for service requests: what the AWS services (Rekognition, Translate,
//! Comprehend) answer in the cloud, done offline on this machine for the local backend.
//!
//! So far it holds the image labeller, [`local::labels::ImageClassifier`]: an ImageNet-1k
//! EfficientNet-Lite0 run in pure Rust, whose labels carry Rekognition-style names and 0–100
//! confidences (`Scooter`, `Cat`, `Trash Can`, …). It does not fetch images (callers pass
//! bytes), keep a cache, or talk to AWS; and it only knows ImageNet's 1000 classes — there is
//! no kick-scooter among them (see the module docs for what it can and cannot see).
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

mod error;
pub mod local;

pub use error::EnrichError;
