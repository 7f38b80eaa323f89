//! A backend held in memory: the fast, deterministic store for unit tests of the code above
//! the port (the runner, stages, the site). It passes the same conformance suite as the
//! local folders and S3, so what a test shows on it holds on them.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use gid_core::{Acl, BucketName, ObjectKey};
use md5::{Digest, Md5};

use crate::{
    BucketAdmin, BucketInfo, ListPage, ObjectAcls, ObjectMeta, ObjectStore, PutCondition,
    PutOptions, StorageError, StoredObject, UrlSigner, WrittenObject,
};

/// S3's largest listing page.
const MAX_KEYS: u32 = 1000;

/// Buckets and objects in memory; nothing outlives the value.
#[derive(Debug, Default)]
pub struct MemoryStore {
    buckets: Mutex<BTreeMap<BucketName, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    created: DateTime<Utc>,
    objects: BTreeMap<String, Stored>,
}

#[derive(Debug, Clone)]
struct Stored {
    body: Bytes,
    meta: ObjectMeta,
    acl: Acl,
}

impl MemoryStore {
    /// An empty store: no buckets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the bucket, or says it does not exist.
    fn with_bucket<T>(
        &self,
        bucket: &BucketName,
        f: impl FnOnce(&mut Bucket) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut buckets = self.buckets.lock().expect("not poisoned");
        let found = buckets
            .get_mut(bucket)
            .ok_or_else(|| StorageError::NoSuchBucket {
                bucket: bucket.clone(),
            })?;
        f(found)
    }

    fn object<'b>(
        found: &'b mut Bucket,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<&'b mut Stored, StorageError> {
        found
            .objects
            .get_mut(key.as_str())
            .ok_or_else(|| StorageError::NoSuchKey {
                bucket: bucket.clone(),
                key: key.to_string(),
            })
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn list_page(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<ListPage, StorageError> {
        let max_keys = max_keys.clamp(1, MAX_KEYS) as usize;
        self.with_bucket(bucket, |found| {
            let after = continuation.as_deref().unwrap_or("");
            let mut matching = found
                .objects
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .filter(|(key, _)| key.starts_with(prefix))
                .map(|(_, stored)| stored.meta.clone());
            let objects: Vec<ObjectMeta> = matching.by_ref().take(max_keys).collect();
            let next = match matching.next() {
                Some(_) => objects.last().map(|o| o.key.to_string()),
                None => None,
            };
            Ok(ListPage { objects, next })
        })
    }

    async fn get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<StoredObject, StorageError> {
        self.with_bucket(bucket, |found| {
            let stored = Self::object(found, bucket, key)?;
            Ok(StoredObject {
                meta: stored.meta.clone(),
                body: stored.body.clone(),
            })
        })
    }

    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        self.with_bucket(bucket, |found| {
            Ok(Self::object(found, bucket, key)?.meta.clone())
        })
    }

    async fn put(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<WrittenObject, StorageError> {
        self.with_bucket(bucket, |found| {
            let current = found.objects.get(key.as_str());
            let holds = match (&options.condition, current) {
                (PutCondition::None, _) => true,
                (PutCondition::IfNoneMatch, existing) => existing.is_none(),
                (PutCondition::IfMatch(etag), Some(existing)) => &existing.meta.etag == etag,
                (PutCondition::IfMatch(_), None) => false,
            };
            if !holds {
                return Err(StorageError::PreconditionFailed {
                    bucket: bucket.clone(),
                    key: key.to_string(),
                });
            }
            let etag = hex::encode(Md5::digest(&body));
            let meta = ObjectMeta {
                key: key.clone(),
                size: body.len() as u64,
                last_modified: Utc::now(),
                etag: etag.clone(),
                content_type: Some(options.content_type.clone()),
                cache_control: options.cache_control.clone(),
            };
            let acl = options.acl.unwrap_or(Acl::Private);
            let written = WrittenObject::from(meta.clone());
            found
                .objects
                .insert(key.to_string(), Stored { body, meta, acl });
            Ok(written)
        })
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), StorageError> {
        self.with_bucket(bucket, |found| {
            found.objects.remove(key.as_str());
            Ok(())
        })
    }
}

#[async_trait]
impl BucketAdmin for MemoryStore {
    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let mut buckets = self.buckets.lock().expect("not poisoned");
        buckets.entry(bucket.clone()).or_insert_with(|| Bucket {
            created: Utc::now(),
            objects: BTreeMap::new(),
        });
        Ok(())
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StorageError> {
        let buckets = self.buckets.lock().expect("not poisoned");
        Ok(buckets
            .iter()
            .map(|(name, bucket)| BucketInfo {
                name: name.clone(),
                created: Some(bucket.created),
            })
            .collect())
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let mut buckets = self.buckets.lock().expect("not poisoned");
        match buckets.get(bucket) {
            None => Err(StorageError::NoSuchBucket {
                bucket: bucket.clone(),
            }),
            Some(found) if !found.objects.is_empty() => Err(StorageError::BucketNotEmpty {
                bucket: bucket.clone(),
            }),
            Some(_) => {
                buckets.remove(bucket);
                Ok(())
            }
        }
    }
}

#[async_trait]
impl ObjectAcls for MemoryStore {
    async fn get_acl(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Acl, StorageError> {
        self.with_bucket(bucket, |found| Ok(Self::object(found, bucket, key)?.acl))
    }

    async fn put_acl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        acl: Acl,
    ) -> Result<(), StorageError> {
        self.with_bucket(bucket, |found| {
            Self::object(found, bucket, key)?.acl = acl;
            Ok(())
        })
    }
}

#[async_trait]
impl UrlSigner for MemoryStore {
    /// `memory://bucket/key`: nothing outside the process can read it.
    fn public_url(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        format!(
            "memory://{bucket}/{}",
            gid_core::encode_url_path(key.as_str())
        )
    }

    async fn presign_get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<String, StorageError> {
        Ok(format!(
            "{}?expires={}",
            self.public_url(bucket, key),
            expires.as_secs()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_passes_the_conformance_suite() {
        let store = MemoryStore::new();
        crate::conformance::run_all(&store, &BucketName::new("gid-conformance").unwrap()).await;
    }
}
