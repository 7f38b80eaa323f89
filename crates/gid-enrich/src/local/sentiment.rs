//! Sentiment with VADER (`vader_sentiment`, an English lexicon embedded in the crate),
//! run on the English text (translations included) — its first 5,000 bytes, as Comprehend
//! reads ([`COMPREHEND_MAX_TEXT_BYTES`]).
//!
//! Mapping onto Comprehend's four classes, with VADER's usual cut-offs:
//! * NEGATIVE when compound ≤ −0.05, POSITIVE when compound ≥ 0.05, else NEUTRAL;
//! * MIXED when both the positive and the negative share are at least 0.2 and the
//!   compound is between −0.5 and 0.5 (both feelings are strong and neither wins).
//!
//! Scores: Positive, Negative and Neutral are VADER's pos/neg/neu shares (they sum to 1);
//! Mixed is `2·min(pos, neg)`, then all four are renormalised to sum to 1, as Comprehend's do.

use async_trait::async_trait;
use vader_sentiment::SentimentIntensityAnalyzer;

use crate::ports::{
    truncate_utf8, EngineId, Sentiment, SentimentAnalyzer, SentimentResult, SentimentScores,
    COMPREHEND_MAX_TEXT_BYTES,
};
use crate::EnrichError;

/// VADER behind the [`SentimentAnalyzer`] port.
pub struct VaderSentiment {
    analyzer: SentimentIntensityAnalyzer<'static>,
}

impl std::fmt::Debug for VaderSentiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaderSentiment").finish_non_exhaustive()
    }
}

impl Default for VaderSentiment {
    fn default() -> Self {
        Self {
            analyzer: SentimentIntensityAnalyzer::new(),
        }
    }
}

/// Maps VADER's scores onto Comprehend's answer.
pub fn classify(pos: f64, neg: f64, neu: f64, compound: f64) -> SentimentResult {
    let mixed_share = 2.0 * pos.min(neg);
    let sentiment = if pos >= 0.2 && neg >= 0.2 && compound.abs() < 0.5 {
        Sentiment::Mixed
    } else if compound <= -0.05 {
        Sentiment::Negative
    } else if compound >= 0.05 {
        Sentiment::Positive
    } else {
        Sentiment::Neutral
    };
    let total = (pos + neg + neu + mixed_share).max(f64::EPSILON);
    SentimentResult {
        sentiment,
        scores: SentimentScores {
            positive: (pos / total) as f32,
            negative: (neg / total) as f32,
            neutral: (neu / total) as f32,
            mixed: (mixed_share / total) as f32,
        },
    }
}

#[async_trait]
impl SentimentAnalyzer for VaderSentiment {
    fn engine(&self) -> EngineId {
        EngineId("vader-0.1.1".into())
    }

    async fn sentiment(&self, english: &[String]) -> Result<Vec<SentimentResult>, EnrichError> {
        Ok(english
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let text = truncate_utf8(
                    "vader",
                    "DetectSentiment",
                    index,
                    text,
                    COMPREHEND_MAX_TEXT_BYTES,
                );
                let s = self.analyzer.polarity_scores(text);
                let get = |k: &str| s.get(k).copied().unwrap_or(0.0);
                classify(get("pos"), get("neg"), get("neu"), get("compound"))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clear_texts_get_clear_classes() {
        let v = VaderSentiment::default();
        let got = v
            .sentiment(&[
                "Two scooters dumped in the bushes, this is terrible".into(),
                "Thank you for the quick cleanup, great job".into(),
                "Trash bins were not collected on Tuesday".into(),
            ])
            .await
            .unwrap();
        let classes: Vec<Sentiment> = got.iter().map(|r| r.sentiment).collect();
        assert_eq!(
            classes,
            [Sentiment::Negative, Sentiment::Positive, Sentiment::Neutral]
        );
        let s = got[0].scores;
        assert!((s.positive + s.negative + s.neutral + s.mixed - 1.0).abs() < 1e-4);
        assert!(s.negative > s.positive);
    }

    #[tokio::test]
    async fn a_multi_megabyte_text_is_judged_by_its_first_5000_bytes_as_on_aws() {
        // Praise up to the limit exactly, two megabytes of complaints after it.
        let mut text = "Thank you for the quick cleanup, great job. ".repeat(110);
        text.push_str(&" ".repeat(COMPREHEND_MAX_TEXT_BYTES - text.len()));
        while text.len() < 2_000_000 {
            text.push_str("Terrible, awful, disgusting mess dumped again. ");
        }
        let got = VaderSentiment::default().sentiment(&[text]).await.unwrap();
        assert_eq!(got[0].sentiment, Sentiment::Positive, "{got:?}");
    }

    #[test]
    fn strong_opposite_feelings_are_mixed() {
        assert_eq!(classify(0.35, 0.3, 0.35, 0.1).sentiment, Sentiment::Mixed);
        assert_eq!(
            classify(0.35, 0.3, 0.35, 0.7).sentiment,
            Sentiment::Positive
        );
    }
}
