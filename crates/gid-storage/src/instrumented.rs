//! A wrapper [`ObjectStore`] that counts requests and can add latency, in the spirit of
//! object_store's `ThrottledStore`: tests use the latency to make concurrency observable,
//! runs use the counts to report how many requests a stage made. It can also drop put
//! conditions, as S3-compatible servers that ignore `If-None-Match` do, so checks of that
//! failure run without such a server.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use gid_core::{Acl, BucketName, ObjectKey};

use crate::{
    Backend, BucketAdmin, BucketInfo, ListPage, ObjectAcls, ObjectMeta, ObjectStore, ObjectStream,
    PutOptions, StorageError, StoredObject, UrlSigner, WrittenObject,
};

/// Request counts of an [`InstrumentedStore`].
#[derive(Debug, Default)]
pub struct RequestCounts {
    /// List requests.
    pub lists: AtomicU64,
    /// Get requests.
    pub gets: AtomicU64,
    /// Head requests.
    pub heads: AtomicU64,
    /// Put requests.
    pub puts: AtomicU64,
    /// Delete requests (one per key).
    pub deletes: AtomicU64,
    /// Every other request.
    pub other: AtomicU64,
    /// Bytes returned by gets.
    pub bytes_read: AtomicU64,
    /// Gets in progress now.
    pub gets_in_flight: AtomicU64,
    /// The most gets that were in progress at once.
    pub most_gets_in_flight: AtomicU64,
}

impl RequestCounts {
    /// Every request counted.
    pub fn total(&self) -> u64 {
        [
            &self.lists,
            &self.gets,
            &self.heads,
            &self.puts,
            &self.deletes,
            &self.other,
        ]
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
    }
}

/// Counts every request to the inner store; optionally delays reads and writes.
#[derive(Debug, Clone)]
pub struct InstrumentedStore {
    inner: Arc<dyn Backend>,
    counts: Arc<RequestCounts>,
    latency: Duration,
    ignore_put_conditions: bool,
}

impl InstrumentedStore {
    /// Counts every request `inner` gets.
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            counts: Arc::default(),
            latency: Duration::ZERO,
            ignore_put_conditions: false,
        }
    }

    /// Adds `latency` before every get and put (as a slow network would).
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Puts without their `If-Match`/`If-None-Match` condition, as a store that ignores
    /// preconditions answers: every conditional write succeeds.
    pub fn ignoring_put_conditions(mut self) -> Self {
        self.ignore_put_conditions = true;
        self
    }

    /// What the inner store is asked to do with a put's `options`.
    fn put_options<'a>(&self, options: &'a PutOptions) -> std::borrow::Cow<'a, PutOptions> {
        if self.ignore_put_conditions {
            std::borrow::Cow::Owned(PutOptions {
                condition: crate::PutCondition::None,
                ..options.clone()
            })
        } else {
            std::borrow::Cow::Borrowed(options)
        }
    }

    /// The counts, shared with the store.
    pub fn counts(&self) -> Arc<RequestCounts> {
        Arc::clone(&self.counts)
    }

    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl ObjectStore for InstrumentedStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn request_stats(&self) -> gid_core::RequestStats {
        self.inner.request_stats()
    }

    async fn list_page(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<ListPage, StorageError> {
        Self::count(&self.counts.lists);
        self.inner
            .list_page(bucket, prefix, continuation, max_keys)
            .await
    }

    async fn get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<StoredObject, StorageError> {
        Self::count(&self.counts.gets);
        let now = self.counts.gets_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.counts
            .most_gets_in_flight
            .fetch_max(now, Ordering::SeqCst);
        self.delay().await;
        let object = self.inner.get(bucket, key).await;
        self.counts.gets_in_flight.fetch_sub(1, Ordering::SeqCst);
        let object = object?;
        self.counts
            .bytes_read
            .fetch_add(object.body.len() as u64, Ordering::Relaxed);
        Ok(object)
    }

    async fn get_stream(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<ObjectStream, StorageError> {
        Self::count(&self.counts.gets);
        self.delay().await;
        let object = self.inner.get_stream(bucket, key).await?;
        let counts = Arc::clone(&self.counts);
        let body = object
            .body
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    counts
                        .bytes_read
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            })
            .boxed();
        Ok(ObjectStream {
            meta: object.meta,
            body,
        })
    }

    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        Self::count(&self.counts.heads);
        self.inner.head(bucket, key).await
    }

    async fn put(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<WrittenObject, StorageError> {
        Self::count(&self.counts.puts);
        self.delay().await;
        self.inner
            .put(bucket, key, body, &self.put_options(options))
            .await
    }

    async fn put_file(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        source: &Path,
        options: &PutOptions,
    ) -> Result<WrittenObject, StorageError> {
        Self::count(&self.counts.puts);
        self.delay().await;
        self.inner
            .put_file(bucket, key, source, &self.put_options(options))
            .await
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), StorageError> {
        Self::count(&self.counts.deletes);
        self.inner.delete(bucket, key).await
    }

    async fn delete_many(
        &self,
        bucket: &BucketName,
        keys: &[ObjectKey],
    ) -> Result<(), StorageError> {
        Self::count(&self.counts.deletes);
        self.inner.delete_many(bucket, keys).await
    }
}

#[async_trait]
impl BucketAdmin for InstrumentedStore {
    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        Self::count(&self.counts.other);
        self.inner.create_bucket(bucket).await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StorageError> {
        Self::count(&self.counts.other);
        self.inner.list_buckets().await
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        Self::count(&self.counts.other);
        self.inner.delete_bucket(bucket).await
    }
}

#[async_trait]
impl ObjectAcls for InstrumentedStore {
    async fn get_acl(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Acl, StorageError> {
        Self::count(&self.counts.other);
        self.inner.get_acl(bucket, key).await
    }

    async fn put_acl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        acl: Acl,
    ) -> Result<(), StorageError> {
        Self::count(&self.counts.other);
        self.inner.put_acl(bucket, key, acl).await
    }
}

#[async_trait]
impl UrlSigner for InstrumentedStore {
    fn public_url(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        self.inner.public_url(bucket, key)
    }

    async fn presign_get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<String, StorageError> {
        self.inner.presign_get(bucket, key, expires).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LocalStore;

    #[tokio::test]
    async fn counts_requests_and_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = InstrumentedStore::new(Arc::new(LocalStore::new(dir.path())));
        let counts = store.counts();
        crate::conformance::run_all(&store, &BucketName::new("gid-test").unwrap()).await;
        assert!(counts.puts.load(Ordering::Relaxed) >= 30);
        assert!(counts.gets.load(Ordering::Relaxed) >= 3);
        assert!(counts.total() > counts.puts.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_listing_streams_page_by_page_and_asks_only_for_the_pages_read() {
        use futures::TryStreamExt;
        let memory = Arc::new(crate::MemoryStore::new());
        let bucket = BucketName::new("gid-test").unwrap();
        memory.create_bucket(&bucket).await.unwrap();
        for i in 0..2_500 {
            let key = ObjectKey::new(format!("2019/jan/{i:05}.csv")).unwrap();
            memory
                .put(&bucket, &key, Bytes::new(), &PutOptions::new("text/csv"))
                .await
                .unwrap();
        }
        let store = InstrumentedStore::new(memory);
        let counts = store.counts();
        let keys: Vec<String> = crate::list(&store, &bucket, "2019/")
            .map_ok(|o| o.key.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(keys.len(), 2_500);
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "key order");
        assert_eq!(counts.lists.load(Ordering::Relaxed), 3, "pages of 1,000");

        let first = crate::list(&store, &bucket, "2019/")
            .try_next()
            .await
            .unwrap();
        assert_eq!(first.unwrap().key.as_str(), "2019/jan/00000.csv");
        assert_eq!(
            counts.lists.load(Ordering::Relaxed),
            4,
            "one page for one key"
        );
        assert!(crate::list(&store, &bucket, "2020/")
            .try_next()
            .await
            .unwrap()
            .is_none());
    }
}
