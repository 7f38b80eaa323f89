//! Translation between Spanish and English with Apertium (rule-based, Debian
//! `apertium-eng-spa`, which installs both directions: `spa-eng` and `eng-spa`).
//!
//! A batch goes through ONE `apertium` process, one text per line: starting a process per
//! text costs ~110 ms, a batch of 1000 lines ~0.3 s. Apertium translates literally and
//! passes unknown words through (`patineta`, `estacionado`), so a small glossary of
//! Latin-American words that San Diego residents use is mapped to the Spain-Spanish words
//! the dictionary knows before translating. Like Translate, it takes a text's first 10,000
//! bytes ([`TRANSLATE_MAX_TEXT_BYTES`]).

use async_trait::async_trait;

use crate::ports::{
    truncate_utf8, EngineId, LanguageCode, Translation, Translator, TRANSLATE_MAX_TEXT_BYTES,
};
use crate::EnrichError;

/// An Apertium mode installed by `make engines`: source, target, mode name.
struct Pair {
    source: &'static str,
    target: &'static str,
    mode: &'static str,
}

const PAIRS: [Pair; 2] = [
    Pair {
        source: "es",
        target: "en",
        mode: "spa-eng",
    },
    Pair {
        source: "en",
        target: "es",
        mode: "eng-spa",
    },
];

/// The installed pairs as a user reads them: `es→en (spa-eng), en→es (eng-spa)`.
fn installed_pairs() -> String {
    PAIRS
        .iter()
        .map(|p| format!("{}→{} ({})", p.source, p.target, p.mode))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Words the spa-eng dictionary lacks → words it knows (whole words, lowercase).
const GLOSSARY: [(&str, &str); 8] = [
    ("patineta", "patinete"),
    ("patinetas", "patinetes"),
    ("estacionado", "aparcado"),
    ("estacionada", "aparcada"),
    ("estacionados", "aparcados"),
    ("estacionadas", "aparcadas"),
    ("banqueta", "acera"),
    ("banquetas", "aceras"),
];

/// Apertium behind the [`Translator`] port. Apertium detects nothing: without a source
/// language the port takes the one installed pair into the target (Spanish into English,
/// English into Spanish), so callers tag texts with their language first (see
/// [`ApertiumTranslator::to_english_from`]).
#[derive(Debug, Clone)]
pub struct ApertiumTranslator {
    program: String,
}

impl Default for ApertiumTranslator {
    fn default() -> Self {
        Self {
            program: "apertium".into(),
        }
    }
}

fn apply_glossary(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            let core = word.trim_matches(|c: char| !c.is_alphanumeric());
            let lower = core.to_lowercase();
            match GLOSSARY.iter().find(|(from, _)| *from == lower) {
                Some((_, to)) if !core.is_empty() => {
                    let replacement = if core.starts_with(char::is_uppercase) {
                        let mut c = to.chars();
                        c.next()
                            .map(|f| f.to_uppercase().chain(c).collect())
                            .unwrap_or_default()
                    } else {
                        (*to).to_owned()
                    };
                    word.replacen(core, &replacement, 1)
                }
                _ => word.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl ApertiumTranslator {
    /// Uses another executable (tests point this at a missing one).
    pub fn with_program(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// Whether a local pair exists for `language` → English.
    pub fn supports(language: &LanguageCode) -> bool {
        Self::pair(Some(language), &LanguageCode::english()).is_some()
    }

    /// The installed pair from `source` (any, when `None`, if only one pair leads into
    /// `target`) into `target`.
    fn pair(source: Option<&LanguageCode>, target: &LanguageCode) -> Option<&'static Pair> {
        let mut into_target = PAIRS.iter().filter(|p| p.target == target.as_str());
        match source {
            Some(source) => into_target.find(|p| p.source == source.as_str()),
            None => match (into_target.next(), into_target.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            },
        }
    }

    /// Translates texts in `language` into English through one Apertium process.
    pub async fn to_english_from(
        &self,
        language: &LanguageCode,
        texts: &[String],
    ) -> Result<Vec<Translation>, EnrichError> {
        self.translate(texts, Some(language), &LanguageCode::english())
            .await
    }

    /// Translates texts through one Apertium process in `pair`'s mode.
    async fn run_pair(
        &self,
        pair: &Pair,
        texts: &[String],
    ) -> Result<Vec<Translation>, EnrichError> {
        let mode = pair.mode;
        if texts.is_empty() {
            return Ok(vec![]);
        }
        // One text per line: newlines inside a description become spaces. A blank line
        // between texts: Apertium's transfer moves words across a single line break when a
        // line has no sentence end ("Requests per service\nTotal" came back as
        // "Peticiones por Peticiones\nde servicio por Total"), never across a blank line.
        let mut input = String::new();
        for (index, text) in texts.iter().enumerate() {
            if index > 0 {
                input.push('\n');
            }
            let text = truncate_utf8(
                "apertium",
                "TranslateText",
                index,
                text,
                TRANSLATE_MAX_TEXT_BYTES,
            );
            let line = text.replace(['\r', '\n'], " ");
            // The glossary maps Latin-American Spanish words: only for Spanish input.
            if pair.source == "es" {
                input.push_str(&apply_glossary(&line));
            } else {
                input.push_str(&line);
            }
            input.push('\n');
        }
        let engine_error = |message: String| EnrichError::Engine {
            engine: self.engine().to_string(),
            message,
        };
        let stdout = super::process::run_engine(
            &self.program,
            &["-u", "-f", "txt", mode],
            input.into_bytes(),
            "apertium apertium-eng-spa",
        )
        .await
        .map_err(engine_error)?;
        let text = String::from_utf8_lossy(&stdout);
        let lines: Vec<&str> = text.trim_end_matches('\n').split("\n\n").collect();
        if lines.len() != texts.len() {
            return Err(engine_error(format!(
                "apertium returned {} lines for {} texts",
                lines.len(),
                texts.len()
            )));
        }
        Ok(lines
            .into_iter()
            .map(|line| Translation {
                text: line.trim().to_owned(),
                source_language: LanguageCode(pair.source.to_owned()),
            })
            .collect())
    }
}

#[async_trait]
impl Translator for ApertiumTranslator {
    fn engine(&self) -> EngineId {
        // The id names the pair the pipeline's cached answers came from; changing it
        // would make every cached translation a miss.
        EngineId("apertium/spa-eng".into())
    }

    async fn translate(
        &self,
        texts: &[String],
        source: Option<&LanguageCode>,
        target: &LanguageCode,
    ) -> Result<Vec<Translation>, EnrichError> {
        let Some(pair) = Self::pair(source, target) else {
            let from = source.map_or(String::new(), |s| format!("from `{s}` "));
            return Err(EnrichError::Unsupported {
                engine: "apertium".into(),
                what: format!(
                    "no pair {from}into `{target}` is installed (Apertium does not detect \
                     the source language); the installed pairs are {}",
                    installed_pairs()
                ),
            });
        };
        self.run_pair(pair, texts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glossary_maps_whole_words_and_keeps_case_and_punctuation() {
        assert_eq!(
            apply_glossary("La Patineta está estacionada, en la banqueta."),
            "La Patinete está aparcada, en la acera."
        );
        assert_eq!(apply_glossary("patinetazo"), "patinetazo");
    }

    #[tokio::test]
    async fn a_multi_megabyte_text_is_translated_up_to_10000_bytes_as_on_aws() {
        // Thanks up to the limit exactly, two megabytes about a scooter after it.
        let mut text = "Gracias por limpiar la calle tan rápido. ".repeat(230);
        text.push_str(&" ".repeat(TRANSLATE_MAX_TEXT_BYTES - text.len()));
        while text.len() < 2_000_000 {
            text.push_str("El patinete eléctrico está bloqueando la acera. ");
        }
        let got = ApertiumTranslator::default()
            .to_english(&[text])
            .await
            .unwrap();
        let english = &got[0].text;
        assert!(english.starts_with("Thank you"), "{}", &english[..80]);
        assert!(
            english.len() < 2 * TRANSLATE_MAX_TEXT_BYTES,
            "{} bytes",
            english.len()
        );
        assert!(
            !english.contains("scooter"),
            "the text after the cut was translated"
        );
    }

    #[tokio::test]
    async fn english_is_translated_into_spanish_with_the_eng_spa_pair() {
        let got = ApertiumTranslator::default()
            .translate(
                &["The street is dirty".into()],
                None,
                &LanguageCode::spanish(),
            )
            .await
            .unwrap();
        assert_eq!(got[0].source_language.as_str(), "en");
        assert!(got[0].text.contains("calle"), "{}", got[0].text);
    }

    #[tokio::test]
    async fn short_texts_without_a_sentence_end_keep_their_own_words() {
        let texts: Vec<String> = [
            "Requests per service",
            "Total",
            "",
            "Graffiti - Public",
            "Pothole",
        ]
        .map(String::from)
        .to_vec();
        let got = ApertiumTranslator::default()
            .translate(
                &texts,
                Some(&LanguageCode::english()),
                &LanguageCode::spanish(),
            )
            .await
            .unwrap();
        let got: Vec<&str> = got.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            got,
            [
                "Peticiones por servicio",
                "Total",
                "",
                "Graffiti - Público",
                "Bache"
            ]
        );
    }

    #[tokio::test]
    async fn a_pair_that_is_not_installed_is_refused_naming_the_installed_pairs() {
        let err = ApertiumTranslator::default()
            .translate(
                &["bonjour".into()],
                Some(&LanguageCode("fr".into())),
                &LanguageCode::english(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, EnrichError::Unsupported { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("from `fr` into `en`"), "{message}");
        assert!(
            message.contains("es→en (spa-eng), en→es (eng-spa)"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_missing_engine_says_how_to_install_it() {
        let t = ApertiumTranslator::with_program("/nonexistent/apertium");
        let err = t
            .to_english(&["hola".into()])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("make engines"), "{err}");
    }
}
