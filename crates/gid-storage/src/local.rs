//! Buckets as folders: `<root>/<bucket>/<key>`. Metadata (Content-Type, ACL, ETag,
//! last-modified, size) lives in `<root>/.gid/meta/<bucket>/<key>.json`, outside every bucket
//! folder, so it is never listed as an object. Bucket names cannot start with '.', so
//! `.gid` never collides with a bucket.

mod transfer;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use gid_core::{Acl, BucketName, ObjectKey};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::{
    BucketInfo, ListPage, ObjectMeta, ObjectStore, ObjectStream, PutCondition, PutOptions,
    StorageError, StoredObject, WrittenObject,
};

/// The longest file name (in bytes) of the usual Linux file systems (ext4, xfs, btrfs, tmpfs).
const MAX_FILE_NAME: usize = 255;

/// The local-disk backend of [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    temp_counter: AtomicU64,
    /// Serialises read-compare-write for `If-Match` puts inside this process.
    conditional: std::sync::Mutex<()>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    content_type: String,
    #[serde(default)]
    cache_control: Option<String>,
    acl: Acl,
    etag: String,
    size: u64,
    last_modified: DateTime<Utc>,
}

fn io_err<'p>(
    operation: &'static str,
    path: &'p Path,
) -> impl FnOnce(io::Error) -> StorageError + 'p {
    move |source| StorageError::Io {
        operation,
        path: path.display().to_string(),
        source,
    }
}

impl LocalStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: root.into(),
                temp_counter: AtomicU64::new(0),
                conditional: std::sync::Mutex::new(()),
            }),
        }
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The file holding an object's bytes (what `file://` URLs point at).
    pub fn object_path(&self, bucket: &BucketName, key: &ObjectKey) -> PathBuf {
        self.bucket_dir(bucket).join(key.as_str())
    }

    fn bucket_dir(&self, bucket: &BucketName) -> PathBuf {
        self.inner.root.join(bucket.as_str())
    }

    fn meta_dir(&self, bucket: &BucketName) -> PathBuf {
        self.inner
            .root
            .join(".gid")
            .join("meta")
            .join(bucket.as_str())
    }

    fn meta_path(&self, bucket: &BucketName, key: &ObjectKey) -> PathBuf {
        self.meta_dir(bucket).join(format!("{}.json", key.as_str()))
    }

    fn temp_path(&self) -> PathBuf {
        let n = self.inner.temp_counter.fetch_add(1, Ordering::Relaxed);
        self.inner
            .root
            .join(".gid")
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalStore) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .expect("local storage task panicked")
    }

    fn require_bucket(&self, bucket: &BucketName) -> Result<PathBuf, StorageError> {
        let dir = self.bucket_dir(bucket);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(StorageError::NoSuchBucket {
                bucket: bucket.clone(),
            })
        }
    }

    fn write_temp(&self, bytes: &[u8]) -> Result<PathBuf, StorageError> {
        let path = self.temp_path();
        let parent = path.parent().expect("temp path has a parent");
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        let mut file = fs::File::create(&path).map_err(io_err("create", &path))?;
        file.write_all(bytes).map_err(io_err("write", &path))?;
        Ok(path)
    }

    fn rename_into(&self, from: &Path, to: &Path) -> Result<(), StorageError> {
        let parent = to.parent().expect("object paths have a parent");
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        fs::rename(from, to).map_err(io_err("rename into", to))
    }

    /// Reads the sidecar if it still describes the file on disk; files dropped into a
    /// bucket folder by hand (or a crash between the two renames of a put) get derived
    /// metadata instead.
    fn read_meta(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        data: &fs::Metadata,
    ) -> Result<(ObjectMeta, Acl), StorageError> {
        let sidecar = fs::read(self.meta_path(bucket, key))
            .ok()
            .and_then(|b| serde_json::from_slice::<Sidecar>(&b).ok())
            .filter(|s| s.size == data.len());
        Ok(match sidecar {
            Some(s) => (
                ObjectMeta {
                    key: key.clone(),
                    size: s.size,
                    last_modified: s.last_modified,
                    etag: s.etag,
                    content_type: Some(s.content_type),
                    cache_control: s.cache_control,
                },
                s.acl,
            ),
            None => {
                let modified: DateTime<Utc> = data
                    .modified()
                    .map(DateTime::from)
                    .unwrap_or_else(|_| Utc::now());
                (
                    ObjectMeta {
                        key: key.clone(),
                        size: data.len(),
                        last_modified: modified,
                        etag: format!(
                            "{:x}-{:x}",
                            data.len(),
                            modified.timestamp_nanos_opt().unwrap_or_default()
                        ),
                        content_type: Some(crate::content_type_for(key).to_owned()),
                        cache_control: None,
                    },
                    Acl::Private,
                )
            }
        })
    }

    fn stat_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(ObjectMeta, Acl), StorageError> {
        self.require_bucket(bucket)?;
        if key.as_str().ends_with('/') {
            return Err(no_such_key(bucket, key));
        }
        let path = self.object_path(bucket, key);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => self.read_meta(bucket, key, &m),
            Ok(_) => Err(no_such_key(bucket, key)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(no_such_key(bucket, key)),
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    fn put_sync(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: &[u8],
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        self.require_bucket(bucket)?;
        if key.as_str().ends_with('/') {
            return Err(StorageError::Unsupported {
                operation: "put",
                bucket: bucket.clone(),
                key: key.to_string(),
                detail: "folder-marker keys ending in '/' cannot be stored on the local backend",
            });
        }
        // Refused before anything is written: a file name (with the sidecar's ".json")
        // longer than the file system allows would fail half-way through the put.
        if key
            .as_str()
            .split('/')
            .any(|segment| segment.len() + ".json".len() > MAX_FILE_NAME)
        {
            return Err(StorageError::Unsupported {
                operation: "put",
                bucket: bucket.clone(),
                key: key.to_string(),
                detail: "a path segment longer than 250 bytes cannot be stored on the local backend (file names are limited to 255 bytes)",
            });
        }
        let _guard = match options.condition {
            PutCondition::IfMatch(_) => Some(self.inner.conditional.lock().expect("not poisoned")),
            _ => None,
        };
        if let PutCondition::IfMatch(expected) = &options.condition {
            let current = self.stat_object(bucket, key).map(|(m, _)| m.etag);
            if current.as_deref().ok() != Some(expected.as_str()) {
                return Err(StorageError::PreconditionFailed {
                    bucket: bucket.clone(),
                    key: key.to_string(),
                });
            }
        }
        let etag = hex::encode(Md5::digest(body));
        let sidecar = Sidecar {
            content_type: options.content_type.clone(),
            cache_control: options.cache_control.clone(),
            acl: options.acl.unwrap_or(Acl::Private),
            etag: etag.clone(),
            size: body.len() as u64,
            last_modified: Utc::now(),
        };
        let data_tmp = self.write_temp(body)?;
        let meta_tmp =
            self.write_temp(&serde_json::to_vec(&sidecar).expect("sidecar serialises"))?;
        let target = self.object_path(bucket, key);
        if options.condition == PutCondition::IfNoneMatch {
            // A hard link fails if the target exists: create-if-absent, atomic even across
            // processes.
            let parent = target.parent().expect("object paths have a parent");
            fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            let linked = fs::hard_link(&data_tmp, &target);
            let _ = fs::remove_file(&data_tmp);
            return match linked {
                Ok(()) => {
                    self.rename_into(&meta_tmp, &self.meta_path(bucket, key))?;
                    Ok(etag)
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let _ = fs::remove_file(&meta_tmp);
                    Err(StorageError::PreconditionFailed {
                        bucket: bucket.clone(),
                        key: key.to_string(),
                    })
                }
                Err(e) => Err(io_err("link", &target)(e)),
            };
        }
        // Metadata first: a crash between the renames leaves a sidecar whose size does not
        // match the old file, which read_meta then ignores.
        self.rename_into(&meta_tmp, &self.meta_path(bucket, key))?;
        self.rename_into(&data_tmp, &target)?;
        Ok(etag)
    }

    fn list_sync(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<ListPage, StorageError> {
        let bucket_dir = self.require_bucket(bucket)?;
        // Walk only the deepest folder the prefix pins down.
        let start = match prefix.rfind('/') {
            Some(i) => bucket_dir.join(&prefix[..i]),
            None => bucket_dir.clone(),
        };
        let mut keys = Vec::new();
        collect_files(&bucket_dir, &start, &mut keys)?;
        keys.retain(|k| {
            k.starts_with(prefix)
                && continuation
                    .as_deref()
                    .is_none_or(|after| k.as_str() > after)
        });
        keys.sort_unstable();
        let max = max_keys.clamp(1, 1000) as usize;
        let truncated = keys.len() > max;
        keys.truncate(max);
        let mut objects = Vec::with_capacity(keys.len());
        for key in &keys {
            // A file dropped in by hand whose name gid refuses as a key (a newline, a
            // backslash, a look-alike of '/') is not an object: skipping it keeps one stray
            // file from failing every listing (ingest, the site index) of the bucket.
            let key = match ObjectKey::new(key.clone()) {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(%bucket, error = %e, "file in the bucket folder skipped");
                    continue;
                }
            };
            match self.stat_object(bucket, &key) {
                Ok((meta, _)) => objects.push(meta),
                // Deleted between the walk and the stat: S3 listings are not snapshots either.
                Err(StorageError::NoSuchKey { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let next = truncated.then(|| keys.last().cloned()).flatten();
        Ok(ListPage { objects, next })
    }
}

fn no_such_key(bucket: &BucketName, key: &ObjectKey) -> StorageError {
    StorageError::NoSuchKey {
        bucket: bucket.clone(),
        key: key.to_string(),
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), StorageError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.kind() == io::ErrorKind::NotADirectory =>
        {
            return Ok(())
        }
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let kind = entry.file_type().map_err(io_err("stat", &entry.path()))?;
        let path = entry.path();
        if kind.is_dir() {
            collect_files(root, &path, out)?;
        } else if kind.is_file() {
            let relative = path.strip_prefix(root).expect("walk stays under the root");
            // Names that are not UTF-8 cannot be S3 keys; such files are not objects.
            if let Some(key) = relative.to_str() {
                out.push(key.to_owned());
            }
        }
    }
    Ok(())
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let bucket = bucket.clone();
        self.blocking(move |s| {
            let dir = s.bucket_dir(&bucket);
            fs::create_dir_all(&dir).map_err(io_err("create bucket", &dir))
        })
        .await
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StorageError> {
        self.blocking(|s| {
            let root = &s.inner.root;
            let entries = match fs::read_dir(root) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io_err("list buckets", root)(e)),
            };
            let mut buckets = Vec::new();
            for entry in entries {
                let entry = entry.map_err(io_err("list buckets", root))?;
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
                let name = entry.file_name();
                let Some(name) = name.to_str().filter(|_| is_dir) else {
                    continue;
                };
                if let Ok(name) = BucketName::new(name) {
                    let created = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .ok()
                        .map(DateTime::from);
                    buckets.push(BucketInfo { name, created });
                }
            }
            buckets.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(buckets)
        })
        .await
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let bucket = bucket.clone();
        self.blocking(move |s| {
            let dir = s.require_bucket(&bucket)?;
            let mut files = Vec::new();
            collect_files(&dir, &dir, &mut files)?;
            if !files.is_empty() {
                return Err(StorageError::BucketNotEmpty { bucket });
            }
            fs::remove_dir_all(&dir).map_err(io_err("delete bucket", &dir))?;
            let meta = s.meta_dir(&bucket);
            if meta.exists() {
                fs::remove_dir_all(&meta).map_err(io_err("delete bucket metadata", &meta))?;
            }
            Ok(())
        })
        .await
    }

    async fn list_page(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<ListPage, StorageError> {
        let bucket = bucket.clone();
        let prefix = prefix.to_owned();
        self.blocking(move |s| s.list_sync(&bucket, &prefix, continuation, max_keys))
            .await
    }

    async fn get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<StoredObject, StorageError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |s| {
            let (meta, _) = s.stat_object(&bucket, &key)?;
            let path = s.object_path(&bucket, &key);
            let body = fs::read(&path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => no_such_key(&bucket, &key),
                _ => io_err("read", &path)(e),
            })?;
            Ok(StoredObject {
                meta,
                body: Bytes::from(body),
            })
        })
        .await
    }

    async fn get_stream(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<ObjectStream, StorageError> {
        transfer::get_stream(self, bucket, key).await
    }

    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |s| s.stat_object(&bucket, &key).map(|(m, _)| m))
            .await
    }

    async fn put(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        let (bucket, key, options) = (bucket.clone(), key.clone(), options.clone());
        self.blocking(move |s| s.put_sync(&bucket, &key, &body, &options))
            .await
    }

    async fn put_file(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        source: &Path,
        options: &PutOptions,
    ) -> Result<WrittenObject, StorageError> {
        let (bucket, key, source, options) = (
            bucket.clone(),
            key.clone(),
            source.to_owned(),
            options.clone(),
        );
        self.blocking(move |s| transfer::put_file(s, &bucket, &key, &source, &options))
            .await
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), StorageError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |s| {
            s.require_bucket(&bucket)?;
            for path in [s.object_path(&bucket, &key), s.meta_path(&bucket, &key)] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) if e.kind() == io::ErrorKind::IsADirectory => {}
                    Err(e) => return Err(io_err("delete", &path)(e)),
                }
            }
            Ok(())
        })
        .await
    }

    async fn get_acl(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Acl, StorageError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |s| s.stat_object(&bucket, &key).map(|(_, acl)| acl))
            .await
    }

    async fn put_acl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        acl: Acl,
    ) -> Result<(), StorageError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |s| {
            let (meta, _) = s.stat_object(&bucket, &key)?;
            let sidecar = Sidecar {
                content_type: meta
                    .content_type
                    .unwrap_or_else(|| crate::content_type_for(&key).to_owned()),
                cache_control: meta.cache_control,
                acl,
                etag: meta.etag,
                size: meta.size,
                last_modified: meta.last_modified,
            };
            let tmp = s.write_temp(&serde_json::to_vec(&sidecar).expect("sidecar serialises"))?;
            s.rename_into(&tmp, &s.meta_path(&bucket, &key))
        })
        .await
    }

    async fn presign_get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        _expires: Duration,
    ) -> Result<String, StorageError> {
        let (bucket, key) = (bucket.clone(), key.clone());
        self.blocking(move |s| {
            s.stat_object(&bucket, &key)?;
            let path = s.object_path(&bucket, &key);
            let absolute = std::path::absolute(&path).map_err(io_err("resolve", &path))?;
            Ok(format!(
                "file://{}",
                percent_encode_path(&absolute.to_string_lossy())
            ))
        })
        .await
    }
}

/// Escapes what a `file://` URL cannot carry literally; '/' stays a separator.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketName {
        BucketName::new("gid-test").unwrap()
    }

    #[tokio::test]
    async fn local_backend_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        crate::conformance::run_all(&store, &bucket()).await;
    }

    #[tokio::test]
    async fn metadata_never_appears_in_listings_or_inside_bucket_folders() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.create_bucket(&bucket()).await.unwrap();
        let key = ObjectKey::new("a/b.csv").unwrap();
        store
            .put(
                &bucket(),
                &key,
                Bytes::from_static(b"x"),
                &PutOptions::new("text/csv"),
            )
            .await
            .unwrap();
        let mut on_disk = Vec::new();
        let bucket_dir = dir.path().join("gid-test");
        collect_files(&bucket_dir, &bucket_dir, &mut on_disk).unwrap();
        assert_eq!(on_disk, ["a/b.csv"]);
        let buckets = store.list_buckets().await.unwrap();
        assert_eq!(buckets.len(), 1, "the .gid folder is not a bucket");
    }

    #[tokio::test]
    async fn files_dropped_in_by_hand_are_objects_with_derived_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.create_bucket(&bucket()).await.unwrap();
        fs::create_dir_all(dir.path().join("gid-test/2019/jan")).unwrap();
        fs::write(dir.path().join("gid-test/2019/jan/x.csv"), "a\n1\n").unwrap();
        let key = ObjectKey::new("2019/jan/x.csv").unwrap();
        let meta = store.head(&bucket(), &key).await.unwrap();
        assert_eq!(meta.size, 4);
        assert_eq!(
            meta.content_type.as_deref(),
            Some("text/csv; charset=utf-8")
        );
    }

    #[tokio::test]
    async fn a_stale_sidecar_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.create_bucket(&bucket()).await.unwrap();
        let key = ObjectKey::new("k.txt").unwrap();
        store
            .put(
                &bucket(),
                &key,
                Bytes::from_static(b"one"),
                &PutOptions::new("text/plain"),
            )
            .await
            .unwrap();
        // Simulate a crash after the sidecar rename of a later, longer put.
        fs::write(store.object_path(&bucket(), &key), "three").unwrap();
        let meta = store.head(&bucket(), &key).await.unwrap();
        assert_eq!(meta.size, 5);
    }

    #[tokio::test]
    async fn hostile_keys_never_write_outside_the_bucket_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let store = LocalStore::new(&root);
        store.create_bucket(&bucket()).await.unwrap();
        // Every key the type lets through lands inside <root>/gid-test or is refused
        // before a byte is written.
        let long_segment = format!("{}.csv", "s".repeat(300));
        for key in [
            "...",
            "a/.../b",
            "-",
            "~/x",
            "%2e%2e/x",
            "a b/ c ",
            long_segment.as_str(),
        ] {
            let key = ObjectKey::new(key).unwrap();
            let put = store
                .put(
                    &bucket(),
                    &key,
                    Bytes::from_static(b"x"),
                    &PutOptions::new("text/plain"),
                )
                .await;
            if put.is_ok() {
                let path = store.object_path(&bucket(), &key).canonicalize().unwrap();
                assert!(
                    path.starts_with(root.join("gid-test").canonicalize().unwrap()),
                    "{path:?}"
                );
            } else {
                assert!(key.as_str().len() > 255, "{key}: {put:?}");
            }
        }
        let mut everything = Vec::new();
        collect_files(dir.path(), dir.path(), &mut everything).unwrap();
        for path in &everything {
            assert!(
                path.starts_with("data/gid-test/") || path.starts_with("data/.gid/"),
                "{path}"
            );
        }
        let tmp = root.join(".gid/tmp");
        let leftovers = fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
        assert_eq!(leftovers, 0, "a refused put leaves no temp files");
    }

    #[tokio::test]
    async fn a_file_with_an_unusable_name_does_not_break_listings() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.create_bucket(&bucket()).await.unwrap();
        fs::write(dir.path().join("gid-test/evil\nname.csv"), "x").unwrap();
        fs::write(dir.path().join("gid-test/back\\slash.csv"), "x").unwrap();
        fs::write(dir.path().join("gid-test/good.csv"), "x").unwrap();
        let page = store.list_page(&bucket(), "", None, 1000).await.unwrap();
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["good.csv"]);
    }

    #[test]
    fn file_urls_escape_spaces_and_hashes() {
        assert_eq!(percent_encode_path("/a b/#x.csv"), "/a%20b/%23x.csv");
    }
}
