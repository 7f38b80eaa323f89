//! The [`ImageLabeler`] port on the local backend: images come from the object store,
//! the [`ImageClassifier`] labels them off the async executor.

use std::sync::Arc;

use async_trait::async_trait;
use gid_storage::ObjectStore;

use crate::local::labels::ImageClassifier;
use crate::ports::{EngineId, ImageLabel, ImageLabeler, ImageRef};
use crate::EnrichError;

/// EfficientNet-Lite0 behind the [`ImageLabeler`] port.
#[derive(Debug, Clone)]
pub struct LocalImageLabeler {
    store: Arc<dyn ObjectStore>,
    classifier: Arc<ImageClassifier>,
}

impl LocalImageLabeler {
    /// Reads images from `store` and labels them with `classifier`.
    pub fn new(store: Arc<dyn ObjectStore>, classifier: ImageClassifier) -> Self {
        Self {
            store,
            classifier: Arc::new(classifier),
        }
    }
}

#[async_trait]
impl ImageLabeler for LocalImageLabeler {
    fn engine(&self) -> EngineId {
        EngineId(self.classifier.model_id().to_owned())
    }

    async fn labels(
        &self,
        image: &ImageRef,
        max_labels: usize,
        min_confidence: f32,
    ) -> Result<Vec<ImageLabel>, EnrichError> {
        let object = self.store.get(&image.bucket, &image.key).await?;
        let classifier = Arc::clone(&self.classifier);
        let labels = tokio::task::spawn_blocking(move || {
            classifier.classify(&object.body, max_labels, min_confidence)
        })
        .await
        .expect("image classifier panicked")?;
        Ok(labels
            .into_iter()
            .map(|l| ImageLabel {
                name: l.name,
                confidence: l.confidence,
            })
            .collect())
    }
}
