use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::StreamExt;
use gid_core::{Acl, BucketName, ObjectKey};
use tokio::io::AsyncWriteExt;

use crate::StorageError;

/// What a listing or a head returns about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub last_modified: DateTime<Utc>,
    /// The entity tag, without quotes. Changes whenever the content changes.
    pub etag: String,
    /// Known from head/get; listings do not carry it.
    pub content_type: Option<String>,
    /// Its `Cache-Control`, when stored.
    pub cache_control: Option<String>,
}

/// An object as a put left it (the put's result): enough for a run manifest to notice
/// later that it changed, without asking the store again (a HEAD per output is a request
/// per output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenObject {
    /// Its key.
    pub key: ObjectKey,
    /// The ETag the put returned, without quotes.
    pub etag: String,
    /// Its size in bytes.
    pub size: u64,
}

impl From<ObjectMeta> for WrittenObject {
    fn from(meta: ObjectMeta) -> Self {
        Self {
            key: meta.key,
            etag: meta.etag,
            size: meta.size,
        }
    }
}

/// An object's bytes with its metadata.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// What is stored about it.
    pub meta: ObjectMeta,
    /// Its bytes.
    pub body: Bytes,
}

/// An object's bytes as they arrive, with its metadata: what a download of an object of
/// any size reads, a chunk at a time.
pub struct ObjectStream {
    /// What the put stored.
    pub meta: ObjectMeta,
    /// The chunks in order; an error ends the stream.
    pub body: BoxStream<'static, Result<Bytes, StorageError>>,
}

impl fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStream")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// One page of a listing, in key order.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// The objects of this page, in key order.
    pub objects: Vec<ObjectMeta>,
    /// Pass back to get the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A bucket as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Its name.
    pub name: BucketName,
    /// When it was created, when the backend knows.
    pub created: Option<DateTime<Utc>>,
}

/// Write only if the object is in the expected state (S3 conditional writes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutCondition {
    #[default]
    /// No condition.
    None,
    /// Only create: fail if the key exists.
    IfNoneMatch,
    /// Only replace the version with this ETag.
    IfMatch(String),
}

/// Headers and access for a put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOptions {
    /// The `Content-Type` stored with the object.
    pub content_type: String,
    /// The `Cache-Control` stored with it.
    pub cache_control: Option<String>,
    /// `None` leaves the bucket's default (and is what buckets without ACLs require).
    pub acl: Option<Acl>,
    /// When the put may happen.
    pub condition: PutCondition,
}

impl PutOptions {
    /// A put of `content_type`, with no ACL, cache control or condition.
    pub fn new(content_type: impl Into<String>) -> Self {
        Self {
            content_type: content_type.into(),
            cache_control: None,
            acl: None,
            condition: PutCondition::None,
        }
    }

    /// With a canned ACL (or none).
    pub fn with_acl(mut self, acl: Option<Acl>) -> Self {
        self.acl = acl;
        self
    }

    /// With a `Cache-Control` header.
    pub fn with_cache_control(mut self, value: impl Into<String>) -> Self {
        self.cache_control = Some(value.into());
        self
    }

    /// With a precondition.
    pub fn with_condition(mut self, condition: PutCondition) -> Self {
        self.condition = condition;
        self
    }
}

/// The object-storage port: what stages need of a store — list, read, write, delete
/// objects. Six required methods; the rest have defaults built on them that backends
/// override only to do better (streaming, batching). Bucket administration, ACLs and URLs
/// are separate traits ([`BucketAdmin`], [`ObjectAcls`], [`UrlSigner`]) that only the code
/// needing them asks for; a [`Backend`] is all four. Implementations must behave
/// identically as far as the conformance suite (feature `conformance`) can tell.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// A short name for logs (`local`, `s3`).
    fn backend(&self) -> &'static str;

    /// What this store sent on the wire so far (zero for stores that send nothing).
    fn request_stats(&self) -> gid_core::RequestStats {
        gid_core::RequestStats::default()
    }

    /// One page of the keys starting with `prefix`, in key order, at most `max_keys`
    /// (capped at 1000 as S3 does).
    async fn list_page(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<ListPage, StorageError>;

    /// The object's bytes and metadata (whole: for month-sized objects).
    async fn get(&self, bucket: &BucketName, key: &ObjectKey)
        -> Result<StoredObject, StorageError>;
    /// The object's bytes chunk by chunk as they arrive, so that reading it takes memory
    /// for a chunk, not for the object. This default holds the whole object (one
    /// [`Self::get`]); the backends override it.
    async fn get_stream(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<ObjectStream, StorageError> {
        let object = self.get(bucket, key).await?;
        Ok(ObjectStream {
            meta: object.meta,
            body: futures::stream::once(async move { Ok(object.body) }).boxed(),
        })
    }
    /// The object's metadata, without its bytes.
    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta, StorageError>;
    /// Writes the whole object atomically: readers see the old or the new bytes, never a mix.
    /// Answers with what a run manifest records of the new object (its ETag and size).
    async fn put(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<WrittenObject, StorageError>;

    /// Uploads the file at `source` as the object, as atomically as [`Self::put`]. This
    /// default reads the whole file into memory; the backends override it to read the file
    /// a piece at a time (S3 sends large files as a multipart upload).
    async fn put_file(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        source: &Path,
        options: &PutOptions,
    ) -> Result<WrittenObject, StorageError> {
        let body = tokio::fs::read(source)
            .await
            .map_err(file_error("read", source))?;
        self.put(bucket, key, Bytes::from(body), options).await
    }

    /// Deletes the object; deleting a missing key succeeds (as on S3).
    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), StorageError>;
    /// Deletes many keys (S3 DeleteObjects, in batches of 1000).
    async fn delete_many(
        &self,
        bucket: &BucketName,
        keys: &[ObjectKey],
    ) -> Result<(), StorageError> {
        for key in keys {
            self.delete(bucket, key).await?;
        }
        Ok(())
    }
}

/// Buckets: what `gid-admin bucket` and the local backend's set-up need.
#[async_trait]
pub trait BucketAdmin: Send + Sync {
    /// Creates the bucket; succeeds if it already exists and is ours.
    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError>;
    /// Every bucket the credentials can see, with its creation time where known.
    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StorageError>;
    /// Deletes an empty bucket; a non-empty one is [`StorageError::BucketNotEmpty`].
    async fn delete_bucket(&self, bucket: &BucketName) -> Result<(), StorageError>;
}

/// Object ACLs (`gid-admin acl`); publishing sets them through [`PutOptions`] instead.
#[async_trait]
pub trait ObjectAcls: Send + Sync {
    /// The object's canned ACL as far as gid's two values can say it.
    async fn get_acl(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Acl, StorageError>;
    /// Replaces the object's ACL.
    async fn put_acl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        acl: Acl,
    ) -> Result<(), StorageError>;
}

/// URLs of objects: plain ones and presigned ones.
#[async_trait]
pub trait UrlSigner: Send + Sync {
    /// The object's plain URL as this store is addressed (it answers only when the object
    /// is readable without credentials): the endpoint's or AWS's URL on S3, a `file://`
    /// URL on the local backend.
    fn public_url(&self, bucket: &BucketName, key: &ObjectKey) -> String;

    /// A URL that lets anyone holding it GET the object until it expires
    /// (`file://` on the local backend, where expiry does not apply).
    async fn presign_get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<String, StorageError>;
}

/// A whole backend (the local folders, S3): every storage trait at once, for the wiring
/// that opens one and hands each part on. `Arc<dyn Backend>` coerces to
/// `Arc<dyn ObjectStore>` where only objects are needed.
pub trait Backend: SignedStore + BucketAdmin + ObjectAcls {}

impl<T: SignedStore + BucketAdmin + ObjectAcls + ?Sized> Backend for T {}

/// Objects and their URLs: what the report site needs (a private site's index links
/// presigned URLs).
pub trait SignedStore: ObjectStore + UrlSigner {}

impl<T: ObjectStore + UrlSigner + ?Sized> SignedStore for T {}

/// Every object under `prefix` in key order, as a stream that asks for the next page of
/// 1,000 only when the previous one is consumed: a caller that stops early (or a listing
/// of millions of keys read as it goes) never holds more than a page.
pub fn list<'a>(
    store: &'a dyn ObjectStore,
    bucket: &'a BucketName,
    prefix: &'a str,
) -> futures::stream::BoxStream<'a, Result<ObjectMeta, StorageError>> {
    use futures::{StreamExt, TryStreamExt};
    // `Some(token)`: a page to ask for (`None` inside: the first); `None`: listing done.
    futures::stream::try_unfold(Some(None), move |next: Option<Option<String>>| async move {
        let Some(continuation) = next else {
            return Ok::<_, StorageError>(None);
        };
        let page = store.list_page(bucket, prefix, continuation, 1000).await?;
        let objects = futures::stream::iter(page.objects.into_iter().map(Ok));
        Ok(Some((objects, page.next.map(Some))))
    })
    .try_flatten()
    .boxed()
}

/// Lists every object under `prefix`, following continuation tokens across pages.
pub async fn list_all(
    store: &dyn ObjectStore,
    bucket: &BucketName,
    prefix: &str,
) -> Result<Vec<ObjectMeta>, StorageError> {
    use futures::TryStreamExt;
    list(store, bucket, prefix).try_collect().await
}

/// Downloads the object into the file `target` as its bytes arrive
/// ([`ObjectStore::get_stream`]), so memory does not grow with the object. The bytes go to
/// a temporary file beside `target` (`.<name>.gid-download-<random>`), renamed over it once
/// complete: a failed, interrupted or cancelled download never leaves a partial file under
/// the target's name, and an existing target stays as it was.
pub async fn download_to_file(
    store: &dyn ObjectStore,
    bucket: &BucketName,
    key: &ObjectKey,
    target: &Path,
) -> Result<ObjectMeta, StorageError> {
    let ObjectStream { meta, mut body } = store.get_stream(bucket, key).await?;
    // Deleted when dropped: an error below, or the caller dropping this future, removes it.
    let temp = download_temp_file(target)?;
    let handle = temp.as_file().try_clone();
    let mut file = tokio::fs::File::from_std(handle.map_err(file_error("write", target))?);
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        file.write_all(&chunk)
            .await
            .map_err(file_error("write", target))?;
        written += chunk.len() as u64;
    }
    if written != meta.size {
        return Err(StorageError::Service {
            operation: "download",
            bucket: bucket.to_string(),
            key: key.to_string(),
            kind: gid_core::FailureKind::BrokenResponse { attempts: 1 },
            detail: Some(format!("the body ended after {written} of {} bytes", meta.size).into()),
        });
    }
    // On disk before it takes the target's name: a crash must not leave a renamed but empty
    // file.
    file.sync_all().await.map_err(file_error("write", target))?;
    temp.persist(target)
        .map_err(|e| file_error("write", target)(e.error))?;
    Ok(meta)
}

/// A hidden temporary file beside `target` for the download in progress.
fn download_temp_file(target: &Path) -> Result<tempfile::NamedTempFile, StorageError> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".to_owned());
    let prefix = format!(".{name}.gid-download-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    // The downloaded file gets the permissions any new file gets (the umask decides), not
    // tempfile's private 0600.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder
        .tempfile_in(dir)
        .map_err(file_error("write", target))
}

/// Turns an I/O error on a caller's file into [`StorageError::File`].
pub(crate) fn file_error<'p>(
    operation: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> StorageError + 'p {
    move |error| StorageError::File {
        operation,
        path: path.display().to_string(),
        error,
    }
}

/// The Content-Type gid uses for a file extension (falls back to `application/octet-stream`).
pub fn content_type_for(key: &ObjectKey) -> &'static str {
    match key.extension().as_deref() {
        Some("csv") => "text/csv; charset=utf-8",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain; charset=utf-8",
        Some("parquet") => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}
