//! Amazon Translate behind the [`Translator`] port.

use async_trait::async_trait;
use aws_sdk_translate::error::ProvideErrorMetadata;
use aws_sdk_translate::Client;
use futures::{StreamExt, TryStreamExt};

use super::gate::Gate;
use super::{
    client_config, connect_and_counters, preflight_answer, service_error, AwsEnrichSettings,
};
use crate::ports::{
    truncate_utf8, EngineId, LanguageCode, Translation, Translator, TRANSLATE_MAX_TEXT_BYTES,
};
use crate::EnrichError;

const ENGINE: &str = "aws-translate";
const OPERATION: &str = "TranslateText";

/// Amazon Translate's `TranslateText` (SourceLanguageCode and TargetLanguageCode as the
/// caller asks; `auto` when no source is given) behind the [`Translator`] port.
///
/// One request per text, since Translate has no batch operation for plain text; requests
/// run concurrently within the settings' bound and pace. Texts over 10,000 bytes are cut
/// at a character boundary (with a warning). A blank text is not sent (Translate refuses
/// empty input): it comes back unchanged, as English, like the local detector's answer for
/// text without letters.
#[derive(Debug)]
pub struct AwsTranslator {
    client: Client,
    gate: Gate,
    settings: AwsEnrichSettings,
}

impl AwsTranslator {
    /// The client of the process's shared AWS configuration, with the adapter's own
    /// endpoint, retries, timeouts and pace.
    pub fn new(aws: &gid_aws::AwsContext, settings: &AwsEnrichSettings) -> Self {
        let (settings, gate) = settings.admission(aws, gid_aws::Service::Translate);
        let config = client_config!(aws_sdk_translate, aws, settings, gate);
        Self {
            client: Client::from_conf(config),
            gate,
            settings,
        }
    }

    connect_and_counters!("`TranslateText` operations issued so far (one per non-blank text).");

    /// Whether `TranslateText` can be used (endpoint, credentials, permission), asked with
    /// an empty text Translate refuses as invalid, so nothing is translated or billed.
    pub async fn preflight(&self) -> Result<(), EnrichError> {
        let answer = self
            .client
            .translate_text()
            .text("")
            .source_language_code("auto")
            .target_language_code("en")
            .send()
            .await;
        preflight_answer(ENGINE, OPERATION, &self.settings, answer)
    }

    async fn translate_one(
        &self,
        index: usize,
        text: &str,
        source: Option<&LanguageCode>,
        target: &LanguageCode,
    ) -> Result<Translation, EnrichError> {
        if text.trim().is_empty() {
            return Ok(Translation {
                text: text.to_owned(),
                source_language: source.unwrap_or(target).clone(),
            });
        }
        let text = truncate_utf8(ENGINE, OPERATION, index, text, TRANSLATE_MAX_TEXT_BYTES);
        let _permit = self.gate.enter().await;
        let answer = self
            .client
            .translate_text()
            .text(text)
            .source_language_code(source.map_or("auto", LanguageCode::as_str))
            .target_language_code(target.as_str())
            .send()
            .await
            .map_err(|err| {
                let subject = format!("text #{index}");
                match err.code() {
                    // The text itself is the problem: retrying cannot help, and the caller
                    // may want to record it and go on.
                    Some(
                        code @ ("DetectedLanguageLowConfidenceException"
                        | "UnsupportedLanguagePairException"),
                    ) => EnrichError::Unsupported {
                        engine: ENGINE.to_owned(),
                        what: format!(
                            "{subject}: Translate cannot translate it into `{target}` ({code}: {})",
                            err.message().unwrap_or("no message")
                        ),
                    },
                    _ => service_error(ENGINE, OPERATION, &subject, &self.settings, err),
                }
            })?;
        Ok(Translation {
            text: answer.translated_text().to_owned(),
            source_language: LanguageCode(answer.source_language_code().to_owned()),
        })
    }
}

#[async_trait]
impl Translator for AwsTranslator {
    fn engine(&self) -> EngineId {
        EngineId(ENGINE.into())
    }

    async fn translate(
        &self,
        texts: &[String],
        source: Option<&LanguageCode>,
        target: &LanguageCode,
    ) -> Result<Vec<Translation>, EnrichError> {
        // Futures built up front (they are lazy): a closure inside the stream would not be
        // `Send` for every lifetime, which `async_trait` requires. `buffered` keeps the
        // input order and stops at the first error.
        let calls: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| self.translate_one(index, text, source, target))
            .collect();
        futures::stream::iter(calls)
            .buffered(self.settings.max_concurrency.get())
            .try_collect()
            .await
    }
}
