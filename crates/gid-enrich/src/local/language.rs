//! Dominant-language detection with `lingua` (statistical n-gram models embedded in the
//! binary). Only the languages San Diego requests are commonly written in are compiled in,
//! which keeps the binary small; anything else is reported as the closest of those.

use async_trait::async_trait;
use lingua::{Language, LanguageDetector as Lingua, LanguageDetectorBuilder};

use crate::ports::{DetectedLanguage, EngineId, LanguageCode, LanguageDetector};
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
        Ok(texts.iter().map(|t| self.detect_one(t)).collect())
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
}
