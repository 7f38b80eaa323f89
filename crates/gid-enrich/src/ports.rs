//! The enrichment ports: one trait per AWS service capability, each with a local engine
//! and an AWS adapter behind it. Every method takes a batch, because both sides are
//! cheaper in batches (one Apertium process per batch; Comprehend's batch APIs take 25
//! texts), and every answer carries what Comprehend/Rekognition would report.
//!
//! Both backends read only the beginning of a long text, up to the AWS service's limit
//! ([`COMPREHEND_MAX_TEXT_BYTES`], [`TRANSLATE_MAX_TEXT_BYTES`], cut by
//! [`truncate_utf8`]): AWS refuses longer texts, and the local engines would otherwise
//! spend a minute on a 6 MB description that AWS answers from its first 5,000 bytes.

use std::fmt;

use async_trait::async_trait;
use gid_core::{BucketName, ObjectKey};
use serde::{Deserialize, Serialize};

use crate::EnrichError;

/// Which engine (and model/version) produced an answer: part of every cache key, so a
/// new model or a different backend never reuses old answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EngineId(pub String);

impl fmt::Display for EngineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 639-1 language code (`en`, `es`), optionally with a region (`fr-CA`, `zh-TW`)
/// as Translate names some languages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct LanguageCode(pub String);

/// A language code that is not two or three lowercase letters with an optional region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a language code: use an ISO 639-1 code such as `en` or `es` \
     (with a region where Translate needs one, such as `fr-CA`)"
)]
pub struct InvalidLanguageCode(
    /// The code as given.
    pub String,
);

impl std::str::FromStr for LanguageCode {
    type Err = InvalidLanguageCode;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let (language, region) = match code.split_once('-') {
            Some((language, region)) => (language, Some(region)),
            None => (code, None),
        };
        let language_ok =
            (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
        let region_ok = region.is_none_or(|r| {
            (2..=4).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if language_ok && region_ok {
            Ok(Self(code.to_owned()))
        } else {
            Err(InvalidLanguageCode(code.to_owned()))
        }
    }
}

impl LanguageCode {
    /// `en`: the language the pipeline translates into.
    pub fn english() -> Self {
        Self("en".into())
    }
    /// `es`: the other language of the city's requests.
    pub fn spanish() -> Self {
        Self("es".into())
    }
    /// The code as the services take it, e.g. `en` or `fr-CA`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether this is plain `en` (a regional English such as `en-GB` is not).
    pub fn is_english(&self) -> bool {
        self.0 == "en"
    }
}

impl fmt::Display for LanguageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Comprehend's DetectDominantLanguage answer for one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectedLanguage {
    /// The dominant language.
    pub code: LanguageCode,
    /// 0.0 to 1.0.
    pub score: f32,
}

/// A translation (into English for the pipeline, into any target for `gid-admin translate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Translation {
    /// The translated text.
    pub text: String,
    /// The language translated from: the one given, or the one detected for `auto`.
    pub source_language: LanguageCode,
}

/// Comprehend's four sentiment classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sentiment {
    /// Mostly positive.
    Positive,
    /// Mostly negative.
    Negative,
    /// Neither.
    Neutral,
    /// Both positive and negative.
    Mixed,
}

impl Sentiment {
    /// The class as Comprehend spells it (`POSITIVE`, …), as written to the tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Positive => "POSITIVE",
            Sentiment::Negative => "NEGATIVE",
            Sentiment::Neutral => "NEUTRAL",
            Sentiment::Mixed => "MIXED",
        }
    }
}

/// Comprehend's SentimentScore: four probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SentimentScores {
    /// Probability of [`Sentiment::Positive`], 0.0 to 1.0.
    pub positive: f32,
    /// Probability of [`Sentiment::Negative`], 0.0 to 1.0.
    pub negative: f32,
    /// Probability of [`Sentiment::Neutral`], 0.0 to 1.0.
    pub neutral: f32,
    /// Probability of [`Sentiment::Mixed`], 0.0 to 1.0.
    pub mixed: f32,
}

/// Comprehend's DetectSentiment answer for one text.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SentimentResult {
    /// The most likely class.
    pub sentiment: Sentiment,
    /// The probability of each class.
    pub scores: SentimentScores,
}

/// An image in the images bucket, as Rekognition's S3Object names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// The images bucket.
    pub bucket: BucketName,
    /// The image's key in it.
    pub key: ObjectKey,
}

/// Rekognition's DetectLabels answer: one label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageLabel {
    /// What the image shows, e.g. `Mountain Bike` (see [`crate::local::labels`]).
    pub name: String,
    /// 0 to 100, like Rekognition.
    pub confidence: f32,
}

/// Rekognition's TextDetection kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TextKind {
    /// A line of words.
    Line,
    /// One word of a line.
    Word,
}

/// A box as fractions of the image's width and height (Rekognition's BoundingBox).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// Left edge, from the image's left, 0.0 to 1.0.
    pub left: f32,
    /// Top edge, from the image's top, 0.0 to 1.0.
    pub top: f32,
    /// Width as a fraction of the image's.
    pub width: f32,
    /// Height as a fraction of the image's.
    pub height: f32,
}

/// Rekognition's DetectText answer: one detected line or word.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextDetection {
    /// The text read.
    pub text: String,
    /// A line or one of its words.
    pub kind: TextKind,
    /// 0 to 100.
    pub confidence: f32,
    /// Where in the image the text is.
    pub bounding_box: BoundingBox,
}

/// Translate's TranslateText: from a source language (`None`: SourceLanguageCode `auto`)
/// into a target language.
#[async_trait]
pub trait Translator: Send + Sync + fmt::Debug {
    /// Which engine answers: part of the cache key, so a changed engine asks again.
    fn engine(&self) -> EngineId;
    /// One translation per text, in order, from `source` (`None`: detected, as Translate's
    /// `auto`; an engine that cannot detect takes the one source it has for `target`) into
    /// `target`. A pair the engine does not have is [`EnrichError::Unsupported`].
    async fn translate(
        &self,
        texts: &[String],
        source: Option<&LanguageCode>,
        target: &LanguageCode,
    ) -> Result<Vec<Translation>, EnrichError>;

    /// One translation into English per text, in order (the pipeline's question).
    async fn to_english(&self, texts: &[String]) -> Result<Vec<Translation>, EnrichError> {
        self.translate(texts, None, &LanguageCode::english()).await
    }
}

/// Comprehend's DetectDominantLanguage.
#[async_trait]
pub trait LanguageDetector: Send + Sync + fmt::Debug {
    /// Which engine answers: part of the cache key, so a changed engine asks again.
    fn engine(&self) -> EngineId;
    /// The dominant language of each text, in order.
    async fn detect(&self, texts: &[String]) -> Result<Vec<DetectedLanguage>, EnrichError>;
}

/// Comprehend's (Batch)DetectSentiment, on English text.
#[async_trait]
pub trait SentimentAnalyzer: Send + Sync + fmt::Debug {
    /// Which engine answers: part of the cache key, so a changed engine asks again.
    fn engine(&self) -> EngineId;
    /// The sentiment of each English text, in order; texts longer than
    /// [`COMPREHEND_MAX_TEXT_BYTES`] are judged on their start.
    async fn sentiment(&self, english: &[String]) -> Result<Vec<SentimentResult>, EnrichError>;
}

/// Rekognition's DetectLabels (MaxLabels, MinConfidence).
#[async_trait]
pub trait ImageLabeler: Send + Sync + fmt::Debug {
    /// Which engine answers: part of the cache key, so a changed engine asks again.
    fn engine(&self) -> EngineId;
    /// At most `max_labels` labels of the image with a confidence (0-100) of at least
    /// `min_confidence`, most confident first; an image that is not one is
    /// [`EnrichError::ImageDecode`] (or the service's refusal).
    async fn labels(
        &self,
        image: &ImageRef,
        max_labels: usize,
        min_confidence: f32,
    ) -> Result<Vec<ImageLabel>, EnrichError>;
}

/// Rekognition's DetectText.
#[async_trait]
pub trait TextDetector: Send + Sync + fmt::Debug {
    /// Which engine answers.
    fn engine(&self) -> EngineId;
    /// The lines and words of text in the image.
    async fn detect_text(&self, image: &ImageRef) -> Result<Vec<TextDetection>, EnrichError>;
}

/// Comprehend's limit per text (language and sentiment), in bytes of UTF-8; longer texts
/// are cut to it, by the local engines as well.
pub const COMPREHEND_MAX_TEXT_BYTES: usize = 5_000;
/// Translate's limit on one `TranslateText` text, in bytes of UTF-8; longer texts are cut
/// to it, by the local engine as well.
pub const TRANSLATE_MAX_TEXT_BYTES: usize = 10_000;

/// Cuts `text` to at most `max_bytes` bytes of UTF-8 without splitting a character, and
/// warns when it had to: AWS would refuse the whole request otherwise, and the local
/// engines answer for the same beginning so both backends agree.
///
/// `index` is the text's position in its batch, for the warning.
pub fn truncate_utf8<'a>(
    engine: &str,
    operation: &'static str,
    index: usize,
    text: &'a str,
    max_bytes: usize,
) -> &'a str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    tracing::warn!(
        engine,
        operation,
        text = index,
        bytes = text.len(),
        kept = end,
        limit = max_bytes,
        "text is over the service's size limit: only its beginning is sent"
    );
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        // "ab" + three-byte euro signs: byte 10 falls inside the fourth euro sign.
        let text = format!("ab{}", "€".repeat(5));
        let cut = truncate_utf8("test", "Op", 0, &text, 10);
        assert_eq!(cut, "ab€€");
        assert_eq!(truncate_utf8("test", "Op", 0, "short", 10), "short");
        assert_eq!(truncate_utf8("test", "Op", 0, "€", 2), "");
    }

    #[test]
    fn language_codes_are_iso_codes_with_an_optional_region() {
        for good in ["en", "es", "fil", "fr-CA", "zh-TW"] {
            assert_eq!(good.parse::<LanguageCode>().unwrap().as_str(), good);
        }
        for bad in ["", "e", "EN", "english", "es-", "es_MX", "auto"] {
            let err = bad.parse::<LanguageCode>().unwrap_err().to_string();
            assert!(err.contains("ISO 639-1"), "{bad}: {err}");
        }
    }
}
