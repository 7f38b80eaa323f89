//! Dominant-language detection with `lingua` (statistical n-gram models embedded in the
//! binary). Only the languages San Diego requests are commonly written in are compiled in,
//! which keeps the binary small; anything else is reported as the closest of those. Like
//! Comprehend, it reads a text's first 5,000 bytes ([`COMPREHEND_MAX_TEXT_BYTES`]).

use async_trait::async_trait;
use lingua::{Language, LanguageDetector as Lingua, LanguageDetectorBuilder};

use crate::ports::{
    truncate_utf8, DetectedLanguage, EngineId, LanguageCode, LanguageDetector,
    COMPREHEND_MAX_TEXT_BYTES,
};
use crate::EnrichError;

const LANGUAGES: [Language; 8] = [
    Language::English,
    Language::Spanish,
    Language::Tagalog,
    Language::Vietnamese,
    Language::Chinese,
    Language::Arabic,
    Language::French,
    Language::Portuguese,
];

/// lingua behind the [`LanguageDetector`] port.
pub struct LinguaDetector {
    detector: Lingua,
}

impl std::fmt::Debug for LinguaDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinguaDetector").finish_non_exhaustive()
    }
}

impl Default for LinguaDetector {
    fn default() -> Self {
        Self {
            detector: LanguageDetectorBuilder::from_languages(&LANGUAGES).build(),
        }
    }
}

impl LinguaDetector {
    fn detect_one(&self, text: &str) -> DetectedLanguage {
        match self
            .detector
            .compute_language_confidence_values(text)
            .first()
        {
            Some((language, score)) => DetectedLanguage {
                code: LanguageCode(language.iso_code_639_1().to_string().to_lowercase()),
                score: *score as f32,
            },
            // No letters at all: nothing to translate, so call it English.
            None => DetectedLanguage {
                code: LanguageCode::english(),
                score: 0.0,
            },
        }
    }
}

#[async_trait]
impl LanguageDetector for LinguaDetector {
    fn engine(&self) -> EngineId {
        EngineId("lingua-1.8/8-languages".into())
    }

    async fn detect(&self, texts: &[String]) -> Result<Vec<DetectedLanguage>, EnrichError> {
        Ok(texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                self.detect_one(truncate_utf8(
                    "lingua",
                    "DetectDominantLanguage",
                    index,
                    text,
                    COMPREHEND_MAX_TEXT_BYTES,
                ))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tells_spanish_from_english() {
        let d = LinguaDetector::default();
        let got = d
            .detect(&[
                "El patinete eléctrico está bloqueando la acera".into(),
                "Scooter left lying across the sidewalk, blocking the ramp".into(),
            ])
            .await
            .unwrap();
        assert_eq!(got[0].code.as_str(), "es");
        assert!(got[0].score > 0.5, "{got:?}");
        assert_eq!(got[1].code.as_str(), "en");
    }

    #[tokio::test]
    async fn a_multi_megabyte_text_is_judged_by_its_first_5000_bytes_as_on_aws() {
        // English up to the limit exactly, Spanish for two megabytes after it.
        let mut text = "The scooter is blocking the sidewalk near the library. ".repeat(90);
        text.push_str(&" ".repeat(COMPREHEND_MAX_TEXT_BYTES - text.len()));
        while text.len() < 2_000_000 {
            text.push_str("El patinete eléctrico está bloqueando la acera otra vez. ");
        }
        let got = LinguaDetector::default().detect(&[text]).await.unwrap();
        assert_eq!(got[0].code.as_str(), "en", "{got:?}");
    }
}
