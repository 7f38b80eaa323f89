//! The scooter-pickups transform: e-scooter requests in, each with its language, English
//! description, sentiment and photo labels out, and `pickup` set where a photo shows a
//! scooter and the description is negative.
//!
//! Every engine question goes through the [`AnswerCache`], in one batch per kind of
//! question, so a month costs one call per engine batch and an unchanged rerun costs none.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use gid_core::{BucketName, ObjectKey};
use gid_storage::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::cache::AnswerCache;
use crate::ports::{
    DetectedLanguage, ImageLabel, ImageLabeler, ImageRef, LanguageDetector, Sentiment,
    SentimentAnalyzer, SentimentResult, Translation, Translator,
};
use crate::EnrichError;

/// One e-scooter request as ingest left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScooterRequest {
    /// The request's `service_request_id`.
    pub id: String,
    /// The requester's free text, in any language; `None` when empty.
    pub description: Option<String>,
    /// Key of the request's photo in the images bucket.
    pub image: Option<String>,
}

/// What happened with a request's photo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum ImageStatus {
    /// The request has no photo.
    NoImage,
    /// The `image` value is not a usable key.
    InvalidKey(String),
    /// The photo is not in the images bucket.
    Missing,
    /// The engine could not read the photo (not an image, corrupt).
    Unreadable(String),
    /// The photo was labelled (its labels may still show no scooter).
    Labelled,
}

impl ImageStatus {
    /// The status as the enriched table's `image_status` column spells it.
    pub fn as_str(&self) -> &'static str {
        match self {
            ImageStatus::NoImage => "no_image",
            ImageStatus::InvalidKey(_) => "invalid_key",
            ImageStatus::Missing => "missing",
            ImageStatus::Unreadable(_) => "unreadable",
            ImageStatus::Labelled => "labelled",
        }
    }
}

/// A request with everything the engines said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichedRequest {
    /// The request's `service_request_id`.
    pub id: String,
    /// The description as requested.
    pub description: Option<String>,
    /// Its detected language; `None` without a description.
    pub language: Option<DetectedLanguage>,
    /// The English text sentiment was judged on (the description itself when English).
    pub description_en: Option<String>,
    /// Whether `description_en` is a translation.
    pub translated: bool,
    /// The sentiment of `description_en`; `None` without a description.
    pub sentiment: Option<SentimentResult>,
    /// Key of the request's photo in the images bucket, as requested.
    pub image: Option<String>,
    /// What happened with the photo.
    pub image_status: ImageStatus,
    /// The photo's labels (empty unless [`ImageStatus::Labelled`]).
    pub image_labels: Vec<ImageLabel>,
    /// Whether a scooter label reached `scooter_confidence`.
    pub img_scooter: bool,
    /// Whether the request is selected for pickup.
    pub pickup: bool,
}

/// The engines a month is enriched with.
#[derive(Debug, Clone)]
pub struct Engines {
    /// Detects each description's language.
    pub language: Arc<dyn LanguageDetector>,
    /// Translates non-English descriptions into English.
    pub translator: Arc<dyn Translator>,
    /// Judges the English text's sentiment.
    pub sentiment: Arc<dyn SentimentAnalyzer>,
    /// Labels the photos.
    pub labeler: Arc<dyn ImageLabeler>,
}

/// How requests are judged.
#[derive(Debug, Clone)]
pub struct PickupRules {
    /// Where the requests' photos are.
    pub images_bucket: BucketName,
    /// Rekognition's MaxLabels / MinConfidence.
    pub max_labels: usize,
    /// Labels below this confidence (0-100) are not returned.
    pub min_confidence: f32,
    /// Label names that mean "a scooter is in the photo".
    pub scooter_labels: Vec<String>,
    /// Confidence (0-100) a scooter label needs to set `img_scooter`.
    pub scooter_confidence: f32,
    /// Below this detection score a text is treated as English (short texts like "ok"
    /// are guessed poorly; translating them would do harm).
    pub language_min_score: f32,
    /// Photos read and labelled at once.
    pub image_concurrency: usize,
}

/// A photo's labels, or why it could not be labelled (cached like any answer).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum LabelAnswer {
    Labels(Vec<ImageLabel>),
    Unreadable(String),
}

/// What a month would ask the engines (for `--dry-run` and cost estimates).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichPlan {
    /// E-scooter requests in the month.
    pub requests: usize,
    /// Texts (and their characters) language detection would be asked about.
    pub language_texts: usize,
    /// Characters of those texts.
    pub language_characters: usize,
    /// Texts not yet translated or sentiment-scored (upper bound: English texts are
    /// only known after detection).
    pub translate_texts: usize,
    /// Characters of the texts to translate.
    pub translate_characters: usize,
    /// Texts sentiment would be asked about.
    pub sentiment_texts: usize,
    /// Characters of those texts.
    pub sentiment_characters: usize,
    /// Photos not yet labelled.
    pub images: usize,
}

fn texts(requests: &[ScooterRequest]) -> Vec<String> {
    requests
        .iter()
        .filter_map(|r| r.description.as_deref())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn image_key(value: &str) -> Result<ObjectKey, String> {
    ObjectKey::new(value.trim()).map_err(|e| e.to_string())
}

/// Counts what enrichment would ask the engines, given what the cache already holds.
/// Exact where the cache knows a text's language; an upper bound where it does not (a
/// text of unknown language may need translating). Photos are looked up (HEAD) so a
/// replaced photo counts as new.
pub async fn plan(
    engines: &Engines,
    rules: &PickupRules,
    store: &dyn ObjectStore,
    cache: &AnswerCache,
    requests: &[ScooterRequest],
) -> Result<EnrichPlan, EnrichError> {
    let texts = texts(requests);
    let chars = |v: &[String]| v.iter().map(|t| t.chars().count()).sum::<usize>();
    let (language_engine, translate_engine) =
        (engines.language.engine(), engines.translator.engine());
    let language = cache.misses(&language_engine, "language", &texts);
    let mut to_translate = Vec::new();
    let mut english = Vec::new();
    for text in &texts {
        match cache.peek::<DetectedLanguage>(&language_engine, "language", text) {
            Some(l) if l.code.is_english() || l.score < rules.language_min_score => {
                english.push(text.clone())
            }
            Some(_) => match cache.peek::<Translation>(&translate_engine, "translate", text) {
                Some(t) => english.push(t.text),
                None => to_translate.push(text.clone()),
            },
            // Unknown language: it may need translating, and its English text is unknown.
            None => to_translate.push(text.clone()),
        }
    }
    let mut sentiment = cache.misses(&engines.sentiment.engine(), "sentiment", &english);
    sentiment.extend(to_translate.iter().cloned());
    let mut image_inputs = Vec::new();
    for value in requests.iter().filter_map(|r| r.image.as_deref()) {
        let Ok(key) = image_key(value) else { continue };
        match store.head(&rules.images_bucket, &key).await {
            Ok(meta) => image_inputs.push(format!("{}/{}#{}", rules.images_bucket, key, meta.etag)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let images = cache.misses(&engines.labeler.engine(), "labels", &image_inputs);
    Ok(EnrichPlan {
        requests: requests.len(),
        language_texts: language.len(),
        language_characters: chars(&language),
        translate_texts: to_translate.len(),
        translate_characters: chars(&to_translate),
        sentiment_texts: sentiment.len(),
        sentiment_characters: chars(&sentiment),
        images: images.len(),
    })
}

/// Enriches a month's e-scooter requests. Missing or unreadable photos are recorded per
/// request; an engine that fails as a whole (not installed, throttled past its retries)
/// fails the month, so nothing half-enriched is published.
pub async fn enrich_requests(
    engines: &Engines,
    rules: &PickupRules,
    store: &dyn ObjectStore,
    cache: &mut AnswerCache,
    requests: &[ScooterRequest],
) -> Result<Vec<EnrichedRequest>, EnrichError> {
    let texts = texts(requests);

    let language_engine = engines.language.engine();
    let detector = Arc::clone(&engines.language);
    let languages: Vec<DetectedLanguage> = cache
        .answers(&language_engine, "language", &texts, |batch| async move {
            detector.detect(&batch).await
        })
        .await?;

    let foreign: Vec<String> = texts
        .iter()
        .zip(&languages)
        .filter(|(_, l)| !l.code.is_english() && l.score >= rules.language_min_score)
        .map(|(t, _)| t.clone())
        .collect();
    let translator = Arc::clone(&engines.translator);
    let translations: Vec<Translation> = cache
        .answers(
            &engines.translator.engine(),
            "translate",
            &foreign,
            |batch| async move { translator.to_english(&batch).await },
        )
        .await?;

    let english_of = |text: &str| -> (String, bool) {
        match foreign.iter().position(|f| f == text) {
            Some(i) => (translations[i].text.clone(), true),
            None => (text.to_owned(), false),
        }
    };
    let english: Vec<String> = texts.iter().map(|t| english_of(t).0).collect();
    let analyzer = Arc::clone(&engines.sentiment);
    let sentiments: Vec<SentimentResult> = cache
        .answers(
            &engines.sentiment.engine(),
            "sentiment",
            &english,
            |batch| async move { analyzer.sentiment(&batch).await },
        )
        .await?;

    // Photos: check each exists (and take its ETag, so a replaced photo is relabelled).
    let mut statuses: Vec<ImageStatus> = Vec::with_capacity(requests.len());
    let mut present: Vec<(usize, ImageRef, String)> = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        let Some(value) = request.image.as_deref().filter(|v| !v.trim().is_empty()) else {
            statuses.push(ImageStatus::NoImage);
            continue;
        };
        let key = match image_key(value) {
            Ok(key) => key,
            Err(reason) => {
                statuses.push(ImageStatus::InvalidKey(reason));
                continue;
            }
        };
        match store.head(&rules.images_bucket, &key).await {
            Ok(meta) => {
                let image = ImageRef {
                    bucket: rules.images_bucket.clone(),
                    key,
                };
                let input = format!("{}/{}#{}", image.bucket, image.key, meta.etag);
                present.push((i, image, input));
                statuses.push(ImageStatus::Labelled);
            }
            Err(e) if e.is_not_found() => {
                tracing::warn!(request = %request.id, bucket = %rules.images_bucket, key = %key, "photo not found; recorded as missing");
                statuses.push(ImageStatus::Missing);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let inputs: Vec<String> = present.iter().map(|(_, _, input)| input.clone()).collect();
    let by_input: std::collections::HashMap<String, ImageRef> = present
        .iter()
        .map(|(_, image, input)| (input.clone(), image.clone()))
        .collect();
    let labeler = Arc::clone(&engines.labeler);
    let (max_labels, min_confidence) = (rules.max_labels, rules.min_confidence);
    let concurrency = rules.image_concurrency.max(1);
    let answers: Vec<LabelAnswer> = cache
        .answers(
            &engines.labeler.engine(),
            "labels",
            &inputs,
            |batch| async move {
                futures::stream::iter(batch)
                    .map(|input| {
                        let image = by_input[&input].clone();
                        let labeler = Arc::clone(&labeler);
                        async move {
                            match labeler.labels(&image, max_labels, min_confidence).await {
                                Ok(labels) => Ok(LabelAnswer::Labels(labels)),
                                Err(e @ EnrichError::ImageDecode { .. }) => {
                                    Ok(LabelAnswer::Unreadable(e.to_string()))
                                }
                                Err(EnrichError::Service {
                                    message,
                                    transient: false,
                                    ..
                                }) => Ok(LabelAnswer::Unreadable(message)),
                                Err(e) => Err(e),
                            }
                        }
                    })
                    .buffered(concurrency)
                    .try_collect()
                    .await
            },
        )
        .await?;
    let mut labels_of: Vec<Vec<ImageLabel>> = vec![Vec::new(); requests.len()];
    for ((i, _, _), answer) in present.iter().zip(answers) {
        match answer {
            LabelAnswer::Labels(labels) => labels_of[*i] = labels,
            LabelAnswer::Unreadable(reason) => statuses[*i] = ImageStatus::Unreadable(reason),
        }
    }

    let mut text_index = 0;
    let mut enriched = Vec::with_capacity(requests.len());
    for ((request, status), labels) in requests.iter().zip(statuses).zip(labels_of) {
        let text = request
            .description
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let (language, description_en, translated, sentiment) = match text {
            Some(text) => {
                let (english, translated) = english_of(text);
                let at = text_index;
                text_index += 1;
                (
                    Some(languages[at].clone()),
                    Some(english),
                    translated,
                    Some(sentiments[at]),
                )
            }
            None => (None, None, false, None),
        };
        let img_scooter = labels.iter().any(|l| {
            rules.scooter_labels.iter().any(|s| s == &l.name)
                && l.confidence >= rules.scooter_confidence
        });
        let negative = sentiment.is_some_and(|s| s.sentiment == Sentiment::Negative);
        enriched.push(EnrichedRequest {
            id: request.id.clone(),
            description: request.description.clone(),
            language,
            description_en,
            translated,
            sentiment,
            image: request.image.clone(),
            image_status: status,
            image_labels: labels,
            img_scooter,
            pickup: img_scooter && negative,
        });
    }
    Ok(enriched)
}
