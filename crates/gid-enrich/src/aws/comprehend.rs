//! Amazon Comprehend behind the [`LanguageDetector`] and [`SentimentAnalyzer`] ports.

use async_trait::async_trait;
use aws_sdk_comprehend::types::{
    BatchItemError, LanguageCode as ComprehendLanguage, SentimentScore, SentimentType,
};
use aws_sdk_comprehend::Client;
use futures::{StreamExt, TryStreamExt};

use super::gate::Gate;
use super::{
    client_config, connect_and_counters, malformed, preflight_answer, service_error,
    AwsEnrichSettings,
};
use crate::ports::{
    truncate_utf8, DetectedLanguage, EngineId, LanguageCode, LanguageDetector, Sentiment,
    SentimentAnalyzer, SentimentResult, SentimentScores, COMPREHEND_MAX_TEXT_BYTES,
};
use crate::EnrichError;

const ENGINE: &str = "aws-comprehend";
const LANGUAGE: &str = "BatchDetectDominantLanguage";
const SENTIMENT: &str = "BatchDetectSentiment";
const BATCH_SIZE: usize = super::COMPREHEND_BATCH_SIZE;

/// Amazon Comprehend behind the [`LanguageDetector`] (`BatchDetectDominantLanguage`) and
/// [`SentimentAnalyzer`] (`BatchDetectSentiment`, LanguageCode `en`) ports.
///
/// Texts go in batches of 25 (Comprehend's maximum), each cut to 5,000 bytes at a
/// character boundary (with a warning); batches run concurrently within the settings'
/// bound and pace, and answers come back in input order, whatever order Comprehend lists
/// them in.
///
/// Blank texts are not sent, because Comprehend refuses an empty document and would fail
/// the whole batch. They are answered here, with what the local engines answer for text
/// without words: language `en` with score 0, sentiment NEUTRAL with all four scores 0
/// (zero scores mark that nothing was measured).
///
/// A document Comprehend lists in its `ErrorList` fails the whole call with an
/// [`EnrichError::Service`] naming the text's index and the error code: the ports have no
/// per-text failure, and a partial answer would be cached as if complete.
#[derive(Debug)]
pub struct AwsComprehend {
    client: Client,
    gate: Gate,
    settings: AwsEnrichSettings,
}

/// The texts of one batch call: (index in the caller's slice, text to send).
type Batch<'a> = [(usize, &'a str)];

impl AwsComprehend {
    /// The client of the process's shared AWS configuration, with the adapter's own
    /// endpoint, retries, timeouts and pace.
    pub fn new(aws: &gid_aws::AwsContext, settings: &AwsEnrichSettings) -> Self {
        let (settings, gate) = settings.admission(aws, gid_aws::Service::Comprehend);
        let config = client_config!(aws_sdk_comprehend, aws, settings, gate);
        Self {
            client: Client::from_conf(config),
            gate,
            settings,
        }
    }

    connect_and_counters!("Batch operations issued so far, language and sentiment together (at most one per 25 non-blank texts).");

    /// Whether both batch operations can be used (endpoint, credentials, permissions),
    /// asked with empty batches Comprehend refuses as invalid, so nothing is billed.
    pub async fn preflight(&self) -> Result<(), EnrichError> {
        let language = self
            .client
            .batch_detect_dominant_language()
            .set_text_list(Some(Vec::new()))
            .send()
            .await;
        preflight_answer(ENGINE, LANGUAGE, &self.settings, language)?;
        let sentiment = self
            .client
            .batch_detect_sentiment()
            .language_code(ComprehendLanguage::En)
            .set_text_list(Some(Vec::new()))
            .send()
            .await;
        preflight_answer(ENGINE, SENTIMENT, &self.settings, sentiment)
    }

    /// The non-blank texts, cut to Comprehend's size limit, with their indexes.
    fn sendable<'a>(operation: &'static str, texts: &'a [String]) -> Vec<(usize, &'a str)> {
        texts
            .iter()
            .enumerate()
            .filter(|(_, text)| !text.trim().is_empty())
            .map(|(index, text)| {
                (
                    index,
                    truncate_utf8(ENGINE, operation, index, text, COMPREHEND_MAX_TEXT_BYTES),
                )
            })
            .collect()
    }

    /// Runs the batch calls, at most `max_concurrency` at once, and puts their answers back
    /// in input order (blank texts get `blank`).
    async fn gather<T: Clone>(
        &self,
        operation: &'static str,
        texts: &[String],
        blank: T,
        calls: Vec<impl std::future::Future<Output = Result<Vec<(usize, T)>, EnrichError>>>,
    ) -> Result<Vec<T>, EnrichError> {
        let batches = futures::stream::iter(calls)
            .buffered(self.settings.max_concurrency.get())
            .try_collect()
            .await?;
        assemble(operation, texts, blank, batches)
    }

    async fn detect_batch(
        &self,
        batch: &Batch<'_>,
    ) -> Result<Vec<(usize, DetectedLanguage)>, EnrichError> {
        let _permit = self.gate.enter().await;
        let answer = self
            .client
            .batch_detect_dominant_language()
            .set_text_list(Some(batch.iter().map(|(_, t)| (*t).to_owned()).collect()))
            .send()
            .await
            .map_err(|err| {
                service_error(ENGINE, LANGUAGE, &batch_subject(batch), &self.settings, err)
            })?;
        check_item_errors(LANGUAGE, batch, answer.error_list())?;
        answer
            .result_list()
            .iter()
            .map(|item| {
                let index = original_index(LANGUAGE, batch, item.index())?;
                // Comprehend lists candidate languages; the dominant one has the top score.
                // No candidate at all (digits, punctuation) reads as English with score 0,
                // as for blank text: there is nothing to translate.
                let best = item.languages().iter().max_by(|a, b| {
                    a.score()
                        .unwrap_or(0.0)
                        .total_cmp(&b.score().unwrap_or(0.0))
                });
                let language = match best {
                    Some(language) => DetectedLanguage {
                        code: LanguageCode(
                            language
                                .language_code()
                                .ok_or_else(|| {
                                    malformed(
                                        ENGINE,
                                        LANGUAGE,
                                        format!("text #{index}: a language without a code"),
                                    )
                                })?
                                .to_owned(),
                        ),
                        score: language.score().ok_or_else(|| {
                            malformed(
                                ENGINE,
                                LANGUAGE,
                                format!("text #{index}: a language without a score"),
                            )
                        })?,
                    },
                    None => DetectedLanguage {
                        code: LanguageCode::english(),
                        score: 0.0,
                    },
                };
                Ok((index, language))
            })
            .collect()
    }

    async fn sentiment_batch(
        &self,
        batch: &Batch<'_>,
    ) -> Result<Vec<(usize, SentimentResult)>, EnrichError> {
        let _permit = self.gate.enter().await;
        let answer = self
            .client
            .batch_detect_sentiment()
            .language_code(ComprehendLanguage::En)
            .set_text_list(Some(batch.iter().map(|(_, t)| (*t).to_owned()).collect()))
            .send()
            .await
            .map_err(|err| {
                service_error(
                    ENGINE,
                    SENTIMENT,
                    &batch_subject(batch),
                    &self.settings,
                    err,
                )
            })?;
        check_item_errors(SENTIMENT, batch, answer.error_list())?;
        answer
            .result_list()
            .iter()
            .map(|item| {
                let index = original_index(SENTIMENT, batch, item.index())?;
                let missing =
                    |what: &str| malformed(ENGINE, SENTIMENT, format!("text #{index}: no {what}"));
                let sentiment = match item.sentiment().ok_or_else(|| missing("Sentiment"))? {
                    SentimentType::Positive => Sentiment::Positive,
                    SentimentType::Negative => Sentiment::Negative,
                    SentimentType::Neutral => Sentiment::Neutral,
                    SentimentType::Mixed => Sentiment::Mixed,
                    other => {
                        return Err(malformed(
                            ENGINE,
                            SENTIMENT,
                            format!("text #{index}: unknown sentiment {other}"),
                        ))
                    }
                };
                let scores = item
                    .sentiment_score()
                    .ok_or_else(|| missing("SentimentScore"))?;
                Ok((
                    index,
                    SentimentResult {
                        sentiment,
                        scores: to_scores(scores)
                            .ok_or_else(|| missing("score for every class"))?,
                    },
                ))
            })
            .collect()
    }
}

fn to_scores(s: &SentimentScore) -> Option<SentimentScores> {
    Some(SentimentScores {
        positive: s.positive()?,
        negative: s.negative()?,
        neutral: s.neutral()?,
        mixed: s.mixed()?,
    })
}

/// `texts #25–#49`: which of the caller's texts a batch call carried.
fn batch_subject(batch: &Batch<'_>) -> String {
    match (batch.first(), batch.last()) {
        (Some((first, _)), Some((last, _))) if first != last => format!("texts #{first}–#{last}"),
        (Some((first, _)), _) => format!("text #{first}"),
        _ => "no texts".to_owned(),
    }
}

/// The caller's index of the batch document Comprehend's `Index` points at.
fn original_index(
    operation: &'static str,
    batch: &Batch<'_>,
    index: Option<i32>,
) -> Result<usize, EnrichError> {
    index
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| batch.get(i))
        .map(|(original, _)| *original)
        .ok_or_else(|| {
            malformed(
                ENGINE,
                operation,
                format!(
                    "result Index {} outside the batch of {} ({})",
                    index.map_or_else(|| "missing".to_owned(), |i| i.to_string()),
                    batch.len(),
                    batch_subject(batch)
                ),
            )
        })
}

/// Fails on the first document Comprehend could not process, naming the caller's index.
fn check_item_errors(
    operation: &'static str,
    batch: &Batch<'_>,
    errors: &[BatchItemError],
) -> Result<(), EnrichError> {
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let index = original_index(operation, batch, first.index())?;
    let code = first.error_code().unwrap_or("no error code");
    let more = match errors.len() - 1 {
        0 => String::new(),
        n => format!(" (and {n} more text(s) of the same batch)"),
    };
    Err(EnrichError::Service {
        engine: ENGINE.to_owned(),
        operation,
        message: format!(
            "text #{index} was refused ({code}: {}){more}",
            first.error_message().unwrap_or("no message")
        ),
        // An internal error on one document may pass on a later run; a refused text not.
        transient: code == "INTERNAL_SERVER_ERROR",
        detail: None,
    })
}

/// Puts batch answers back in input order; blank texts get `blank`.
fn assemble<T: Clone>(
    operation: &'static str,
    texts: &[String],
    blank: T,
    batches: Vec<Vec<(usize, T)>>,
) -> Result<Vec<T>, EnrichError> {
    let mut answers: Vec<Option<T>> = texts
        .iter()
        .map(|t| t.trim().is_empty().then(|| blank.clone()))
        .collect();
    for (index, answer) in batches.into_iter().flatten() {
        answers[index] = Some(answer);
    }
    answers
        .into_iter()
        .enumerate()
        .map(|(index, answer)| {
            answer
                .ok_or_else(|| malformed(ENGINE, operation, format!("no answer for text #{index}")))
        })
        .collect()
}

#[async_trait]
impl LanguageDetector for AwsComprehend {
    fn engine(&self) -> EngineId {
        EngineId(ENGINE.into())
    }

    async fn detect(&self, texts: &[String]) -> Result<Vec<DetectedLanguage>, EnrichError> {
        let pending = Self::sendable(LANGUAGE, texts);
        // Futures built up front (they are lazy): a closure inside the stream would not
        // be `Send` for every lifetime, which `async_trait` requires.
        let calls: Vec<_> = pending
            .chunks(BATCH_SIZE)
            .map(|batch| self.detect_batch(batch))
            .collect();
        let blank = DetectedLanguage {
            code: LanguageCode::english(),
            score: 0.0,
        };
        self.gather(LANGUAGE, texts, blank, calls).await
    }
}

#[async_trait]
impl SentimentAnalyzer for AwsComprehend {
    fn engine(&self) -> EngineId {
        EngineId(ENGINE.into())
    }

    async fn sentiment(&self, english: &[String]) -> Result<Vec<SentimentResult>, EnrichError> {
        let pending = Self::sendable(SENTIMENT, english);
        // Futures built up front (they are lazy): a closure inside the stream would not
        // be `Send` for every lifetime, which `async_trait` requires.
        let calls: Vec<_> = pending
            .chunks(BATCH_SIZE)
            .map(|batch| self.sentiment_batch(batch))
            .collect();
        let blank = SentimentResult {
            sentiment: Sentiment::Neutral,
            scores: SentimentScores {
                positive: 0.0,
                negative: 0.0,
                neutral: 0.0,
                mixed: 0.0,
            },
        };
        self.gather(SENTIMENT, english, blank, calls).await
    }
}
