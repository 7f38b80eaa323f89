//! Offline engines of the local backend: everything runs on this machine, from files that
//! `make models` and `make engines` install; nothing is fetched at run time.

pub mod image_labeler;
pub mod labels;
pub mod language;
mod process;
pub mod sentiment;
pub mod text;
pub mod translate;

pub use image_labeler::LocalImageLabeler;
pub use language::LinguaDetector;
pub use sentiment::VaderSentiment;
pub use text::TesseractTextDetector;
pub use translate::ApertiumTranslator;
