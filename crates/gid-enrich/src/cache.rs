//! Every engine answer, keyed by (engine and model version, kind of question, input),
//! so an unchanged rerun asks no engine anything.
//!
//! The cache of a month is one JSON object in the work bucket
//! (`gid-work/2019/jan/enrich-cache.json`): loaded before enrichment, saved after. Keys
//! are MD5 hex digests of `engine \0 kind \0 input`; values are the answers as JSON.
//! A new engine version (its [`EngineId`]) never hits old answers.

use std::collections::BTreeMap;
use std::future::Future;

use bytes::Bytes;
use gid_core::{BucketName, ObjectKey};
use gid_storage::{ObjectStore, PutOptions};
use md5::{Digest, Md5};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ports::EngineId;
use crate::EnrichError;

/// Answers already known, and what this run added or asked.
#[derive(Debug, Default)]
pub struct AnswerCache {
    answers: BTreeMap<String, serde_json::Value>,
    changed: bool,
    /// Engine calls made through this cache this run, per engine id.
    pub calls: BTreeMap<String, u64>,
    /// Inputs sent to engines this run, per engine id (texts or images).
    pub inputs_sent: BTreeMap<String, u64>,
    /// Characters sent to text engines this run, per engine id.
    pub characters_sent: BTreeMap<String, u64>,
    /// Answers taken from the cache instead of an engine this run.
    pub hits: u64,
}

fn cache_key(engine: &EngineId, kind: &str, input: &str) -> String {
    let mut hasher = Md5::new();
    hasher.update(engine.0.as_bytes());
    hasher.update([0]);
    hasher.update(kind.as_bytes());
    hasher.update([0]);
    hasher.update(input.as_bytes());
    hex::encode(hasher.finalize())
}

impl AnswerCache {
    /// Loads the cache object; a missing or unreadable one is an empty cache (the cost of
    /// losing it is re-asking the engines, never a wrong answer).
    pub async fn load(
        store: &dyn ObjectStore,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Self, EnrichError> {
        match store.get(bucket, key).await {
            Ok(object) => Ok(Self {
                answers: serde_json::from_slice(&object.body).unwrap_or_else(|e| {
                    tracing::warn!(%bucket, %key, error = %e, "enrichment cache unreadable; starting empty");
                    BTreeMap::new()
                }),
                ..Self::default()
            }),
            Err(e) if e.is_not_found() => Ok(Self::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Saves the cache if this run added answers.
    pub async fn save(
        &self,
        store: &dyn ObjectStore,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(), EnrichError> {
        if !self.changed {
            return Ok(());
        }
        let body = serde_json::to_vec(&self.answers).expect("answers serialise");
        store
            .put(
                bucket,
                key,
                Bytes::from(body),
                &PutOptions::new("application/json"),
            )
            .await?;
        Ok(())
    }

    /// Answers stored, loaded and new.
    pub fn len(&self) -> usize {
        self.answers.len()
    }

    /// Whether no answer is stored.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// How many of `inputs` are not cached yet (for dry runs and cost estimates).
    pub fn misses(&self, engine: &EngineId, kind: &str, inputs: &[String]) -> Vec<String> {
        let mut seen = std::collections::BTreeSet::new();
        inputs
            .iter()
            .filter(|i| !self.answers.contains_key(&cache_key(engine, kind, i)))
            .filter(|i| seen.insert(i.as_str()))
            .cloned()
            .collect()
    }

    /// The cached answer for one input, if any.
    pub fn peek<T: DeserializeOwned>(
        &self,
        engine: &EngineId,
        kind: &str,
        input: &str,
    ) -> Option<T> {
        self.answers
            .get(&cache_key(engine, kind, input))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Answers for `inputs`, asking `call` (once, with the distinct uncached inputs) for
    /// the rest. `call` must answer one item per input, in order.
    pub async fn answers<T, F, Fut>(
        &mut self,
        engine: &EngineId,
        kind: &str,
        inputs: &[String],
        call: F,
    ) -> Result<Vec<T>, EnrichError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = Result<Vec<T>, EnrichError>>,
    {
        let misses = self.misses(engine, kind, inputs);
        self.hits += (inputs.len() - misses.len()) as u64;
        if !misses.is_empty() {
            *self.calls.entry(engine.0.clone()).or_default() += 1;
            *self.inputs_sent.entry(engine.0.clone()).or_default() += misses.len() as u64;
            *self.characters_sent.entry(engine.0.clone()).or_default() +=
                misses.iter().map(|m| m.chars().count() as u64).sum::<u64>();
            let answered = call(misses.clone()).await?;
            if answered.len() != misses.len() {
                return Err(EnrichError::Engine {
                    engine: engine.to_string(),
                    message: format!(
                        "answered {} items for {} inputs",
                        answered.len(),
                        misses.len()
                    ),
                });
            }
            for (input, answer) in misses.iter().zip(answered) {
                let value = serde_json::to_value(answer).expect("answers serialise");
                self.answers.insert(cache_key(engine, kind, input), value);
            }
            self.changed = true;
        }
        inputs
            .iter()
            .map(|input| {
                let value = self.answers[&cache_key(engine, kind, input)].clone();
                serde_json::from_value(value).map_err(|e| EnrichError::Engine {
                    engine: engine.to_string(),
                    message: format!("cached answer does not parse: {e}"),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_uncached_distinct_inputs_reach_the_engine() {
        let engine = EngineId("upper".into());
        let mut cache = AnswerCache::default();
        let upper = |inputs: Vec<String>| async move {
            Ok::<_, EnrichError>(inputs.iter().map(|s| s.to_uppercase()).collect::<Vec<_>>())
        };
        let first: Vec<String> = cache
            .answers(&engine, "t", &["a".into(), "b".into(), "a".into()], upper)
            .await
            .unwrap();
        assert_eq!(first, ["A", "B", "A"]);
        assert_eq!((cache.calls["upper"], cache.inputs_sent["upper"]), (1, 2));
        let second: Vec<String> = cache
            .answers(&engine, "t", &["b".into(), "a".into()], |_| async {
                Err(EnrichError::Engine {
                    engine: "upper".into(),
                    message: "called although everything is cached".into(),
                })
            })
            .await
            .unwrap();
        assert_eq!(second, ["B", "A"]);
        assert_eq!(cache.calls["upper"], 1);
        let other = EngineId("upper-v2".into());
        assert_eq!(
            cache.misses(&other, "t", &["a".into()]).len(),
            1,
            "a new engine version misses"
        );
    }
}
