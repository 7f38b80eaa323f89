//! The course's enrichment operations, one command each, on the configured engines
//! (`enrich.engines`, by default the profile's) (local: Apertium, Lingua, VADER, EfficientNet-Lite0, Tesseract; aws: Translate,
//! Comprehend, Rekognition): `translate`, `detect-language`, `sentiment`, `labels`,
//! `detect-text`. Each prints a line or two for people, or one JSON document with
//! `--output json`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use gid_core::{BucketName, Config, ObjectKey};
use gid_enrich::ports::{ImageRef, LanguageCode, TextDetection, TextKind};
use gid_runs::engine;
use gid_storage::ObjectStore;
use serde_json::json;

/// The enrichment commands (flattened into gid-admin's command list).
#[derive(Debug, Subcommand)]
pub(crate) enum EngineCommand {
    /// Translate a text (Translate's TranslateText; local: Apertium, Spanish ↔ English).
    Translate {
        #[command(flatten)]
        input: TextInput,
        /// The target language (ISO 639-1, e.g. es, en).
        #[arg(long, value_parser = language_code)]
        to: LanguageCode,
        /// The source language, or `auto` to detect it (local: the one installed pair
        /// into --to).
        #[arg(long, default_value = "auto", value_parser = source_language)]
        from: SourceLanguage,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The dominant language of a text (Comprehend's DetectDominantLanguage; local: Lingua).
    DetectLanguage {
        #[command(flatten)]
        input: TextInput,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// The sentiment of an English text (Comprehend's DetectSentiment; local: VADER).
    Sentiment {
        #[command(flatten)]
        input: TextInput,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Labels of an image in a bucket (Rekognition's DetectLabels; local: EfficientNet-Lite0).
    Labels {
        bucket: BucketName,
        key: ObjectKey,
        /// At most this many labels (default: enrich.max_labels).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        max_labels: Option<u16>,
        /// Only labels with at least this confidence, 0 to 100 (default: enrich.min_confidence).
        #[arg(long, value_parser = confidence)]
        min_confidence: Option<f32>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Text in an image in a bucket, as LINE and WORD detections (Rekognition's DetectText;
    /// local: Tesseract).
    DetectText {
        bucket: BucketName,
        key: ObjectKey,
        /// Only lines or only words (default: both, counted separately).
        #[arg(long = "type", value_enum)]
        kind: Option<DetectionType>,
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// What a command prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// A line or two for people.
    Text,
    /// One JSON document.
    Json,
}

/// Rekognition's two kinds of text detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DetectionType {
    Line,
    Word,
}

impl DetectionType {
    fn kind(self) -> TextKind {
        match self {
            DetectionType::Line => TextKind::Line,
            DetectionType::Word => TextKind::Word,
        }
    }
}

/// `--from`: a language, or `auto` (Translate detects it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceLanguage {
    Auto,
    Language(LanguageCode),
}

/// The text of a command: given on the command line or read from a file.
#[derive(Debug, Args)]
pub(crate) struct TextInput {
    /// The text.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    text: Option<String>,
    /// Read the text from this UTF-8 file instead (the whole file is one text).
    #[arg(long)]
    file: Option<PathBuf>,
}

impl TextInput {
    /// The text, refused when blank: every service refuses empty input, and an answer
    /// about nothing would only mislead.
    fn read(self) -> anyhow::Result<String> {
        let text = match (self.text, self.file) {
            (Some(text), _) => text,
            (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the text file {} ({e}): pass a readable UTF-8 text file to --file",
                    path.display()
                )
            })?,
            (None, None) => unreachable!("clap requires TEXT or --file"),
        };
        if text.trim().is_empty() {
            bail!("the text is empty: pass a TEXT with some words, or a --file that has some");
        }
        Ok(text)
    }
}

fn language_code(value: &str) -> Result<LanguageCode, String> {
    value.parse().map_err(|e| format!("{e}"))
}

fn source_language(value: &str) -> Result<SourceLanguage, String> {
    if value == "auto" {
        return Ok(SourceLanguage::Auto);
    }
    language_code(value).map(SourceLanguage::Language)
}

fn confidence(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(c) if (0.0..=100.0).contains(&c) => Ok(c),
        _ => Err(format!(
            "`{value}` is not a confidence: give a number from 0 to 100"
        )),
    }
}

/// Prints one command's JSON document, naming the storage `profile` and the `engines`
/// that answered (`enrich.engines`, by default the profile's).
fn print_json(config: &Config, mut document: serde_json::Value) {
    if let Some(fields) = document.as_object_mut() {
        fields.insert("profile".into(), config.profile.as_str().into());
        fields.insert("engines".into(), config.engines().as_str().into());
    }
    gid_cli::outln!("{document:#}");
}

/// The engine's one answer to a batch of one text.
fn only_answer<T>(
    answers: Result<Vec<T>, gid_enrich::EnrichError>,
    doing: &str,
) -> anyhow::Result<T> {
    answers
        .with_context(|| format!("{doing} failed"))?
        .pop()
        .with_context(|| format!("{doing}: the engine returned no answer"))
}

/// Prints an answer as its line of text or as its JSON document, as asked.
fn print_answer(config: &Config, output: Output, line: String, document: serde_json::Value) {
    match output {
        Output::Text => gid_cli::outln!("{line}"),
        Output::Json => print_json(config, document),
    }
}

/// Runs one enrichment command on the configured engine (`enrich.engines`).
pub(crate) async fn run(
    config: &Config,
    store: Arc<dyn ObjectStore>,
    command: EngineCommand,
) -> anyhow::Result<()> {
    match command {
        EngineCommand::Translate {
            input,
            to,
            from,
            output,
        } => {
            let text = input.read()?;
            let source = match &from {
                SourceLanguage::Auto => None,
                SourceLanguage::Language(code) => Some(code),
            };
            let translator = engine::translator(config).await?;
            let answers = translator
                .translate(std::slice::from_ref(&text), source, &to)
                .await;
            let answer = only_answer(answers, &format!("translating the text into `{to}`"))?;
            let document = json!({
                "source_language": answer.source_language,
                "target_language": to,
                "translated_text": answer.text,
            });
            print_answer(config, output, answer.text, document);
        }
        EngineCommand::DetectLanguage { input, output } => {
            let text = input.read()?;
            let detector = engine::language_detector(config).await?;
            let answer = only_answer(detector.detect(&[text]).await, "detecting the language")?;
            let line = format!("{} (score {:.2})", answer.code, answer.score);
            let document = json!({
                "language_code": answer.code,
                "score": answer.score,
            });
            print_answer(config, output, line, document);
        }
        EngineCommand::Sentiment { input, output } => {
            let text = input.read()?;
            let analyzer = engine::sentiment_analyzer(config).await?;
            let answer = only_answer(analyzer.sentiment(&[text]).await, "judging the sentiment")?;
            let s = answer.scores;
            let line = format!(
                "{} (positive {:.2}, negative {:.2}, neutral {:.2}, mixed {:.2})",
                answer.sentiment.as_str(),
                s.positive,
                s.negative,
                s.neutral,
                s.mixed
            );
            let document = json!({
                "sentiment": answer.sentiment,
                "scores": answer.scores,
            });
            print_answer(config, output, line, document);
        }
        EngineCommand::Labels {
            bucket,
            key,
            max_labels,
            min_confidence,
            output,
        } => {
            let max_labels = max_labels.map_or(config.enrich.max_labels, usize::from);
            let min_confidence = min_confidence.unwrap_or(config.enrich.min_confidence);
            let labeler = engine::image_labeler(config, store).await?;
            let image = ImageRef {
                bucket: bucket.clone(),
                key: key.clone(),
            };
            let labels = labeler
                .labels(&image, max_labels, min_confidence)
                .await
                .with_context(|| format!("labelling s3://{bucket}/{key} failed"))?;
            match output {
                Output::Text => {
                    if labels.is_empty() {
                        gid_cli::outln!("no label reaches confidence {min_confidence}");
                    }
                    for label in &labels {
                        gid_cli::outln!("{:>6.2}  {}", label.confidence, label.name);
                    }
                }
                Output::Json => print_json(
                    config,
                    json!({
                        "bucket": bucket.as_str(),
                        "key": key.as_str(),
                        "max_labels": max_labels,
                        "min_confidence": min_confidence,
                        "labels": labels,
                    }),
                ),
            }
        }
        EngineCommand::DetectText {
            bucket,
            key,
            kind,
            output,
        } => {
            let detector = engine::text_detector(config, store).await?;
            let image = ImageRef {
                bucket: bucket.clone(),
                key: key.clone(),
            };
            let detections: Vec<TextDetection> = detector
                .detect_text(&image)
                .await
                .with_context(|| format!("detecting text in s3://{bucket}/{key} failed"))?
                .into_iter()
                .filter(|d| kind.is_none_or(|k| d.kind == k.kind()))
                .collect();
            let count = |kind| detections.iter().filter(|d| d.kind == kind).count();
            let (lines, words) = (count(TextKind::Line), count(TextKind::Word));
            match output {
                Output::Text => {
                    for d in &detections {
                        let kind = match d.kind {
                            TextKind::Line => "LINE",
                            TextKind::Word => "WORD",
                        };
                        gid_cli::outln!("{kind:<4}  {:>6.2}  {}", d.confidence, d.text);
                    }
                    gid_cli::outln!("{lines} lines, {words} words");
                }
                Output::Json => print_json(
                    config,
                    json!({
                        "bucket": bucket.as_str(),
                        "key": key.as_str(),
                        "lines": lines,
                        "words": words,
                        "detections": detections,
                    }),
                ),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_takes_auto_or_a_language_code() {
        assert_eq!(source_language("auto").unwrap(), SourceLanguage::Auto);
        assert_eq!(
            source_language("es").unwrap(),
            SourceLanguage::Language(LanguageCode::spanish())
        );
        assert!(source_language("Spanish")
            .unwrap_err()
            .contains("ISO 639-1"));
    }

    #[test]
    fn min_confidence_is_a_percentage() {
        assert_eq!(confidence("72.5").unwrap(), 72.5);
        for bad in ["-1", "100.5", "high"] {
            assert!(confidence(bad).unwrap_err().contains("0 to 100"), "{bad}");
        }
    }
}
