//! Buckets as folders: `<root>/<bucket>/<key>`. Metadata (Content-Type, ACL, ETag,
//! last-modified, size) lives in `<root>/.gid/meta/<bucket>/<key>.json`, outside every bucket
//! folder, so it is never listed as an object. Bucket names cannot start with '.', so
//! `.gid` never collides with a bucket.
//!
//! **Several processes share a data root** (a backfill Job, an overlapping CronJob, an
//! operator rerunning by hand), so every guarantee holds across processes, not only across
//! threads: a put takes an exclusive OS file lock (`flock`) on the key's lock stripe
//! (`<root>/.gid/locks/NN.lock`) for its precondition check and its two renames; a get or
//! head takes the shared lock, so it never pairs one version's metadata with another's
//! bytes. `If-Match`/`If-None-Match` are therefore as atomic as on S3. The locks are
//! released by the kernel when a process dies, so a crash never leaves one held.
//!
//! **A data root is gid's own**: [`LocalStore::open`] refuses `/`, the home folder and any
//! non-empty folder without the `.gid/data-root` marker it writes when it creates a root, so
//! a mistyped `local.data_root` can never list or delete an operator's files as buckets.
//!
//! **Temp files never outlive their writer**: each process names its temp files after an
//! owner file it keeps locked while it runs; [`LocalStore::open`] removes the temp files of
//! owners whose lock is free (a crash, a full disk).

mod transfer;

use std::fs::{self, File, OpenOptions};
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
    BucketAdmin, BucketInfo, ListPage, ObjectAcls, ObjectMeta, ObjectStore, ObjectStream,
    PutCondition, PutOptions, StorageError, StoredObject, UrlSigner, WrittenObject,
};

/// The longest file name (in bytes) of the usual Linux file systems (ext4, xfs, btrfs, tmpfs).
const MAX_FILE_NAME: usize = 255;

/// Keys share this many lock files: enough that unrelated keys rarely wait for each other,
/// few enough that the lock folder stays small whatever the number of objects.
const LOCK_STRIPES: u64 = 256;

/// The marker that makes a folder a gid data root (relative to the root).
pub const DATA_ROOT_MARKER: &str = ".gid/data-root";

/// Temp files without an owner file (written by gid versions before owner files) are
/// removed once they are this old: no put takes an hour between its write and its rename.
const ORPHAN_TEMP_AGE: Duration = Duration::from_secs(3600);

/// The local-disk backend of [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    temp_counter: AtomicU64,
    /// This process's temp-file prefix (`<pid>-<random>`).
    temp_owner: String,
    /// The owner file, locked for as long as this store lives (created on the first write,
    /// under this mutex so two threads never race to create it).
    owner_lock: std::sync::Mutex<Option<File>>,
}

/// Why a folder cannot be used as a data root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataRootRefusal {
    /// `/`: every system folder would be a bucket.
    FileSystemRoot,
    /// The user's home folder.
    Home,
    /// A folder holding files without gid's marker.
    NotGids,
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
    /// A store rooted at `root` (created on first write), trusted to be gid's: for tests and
    /// folders the caller made. Operators' configured roots go through [`LocalStore::open`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: root.into(),
                temp_counter: AtomicU64::new(0),
                temp_owner: format!("{}-{:08x}", std::process::id(), fastrand::u32(..)),
                owner_lock: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Opens the data root at `root`: creates it (with its marker) when it does not exist or
    /// is empty, accepts it when it carries the marker (or the `.gid/meta` folder of a root
    /// written before markers existed), and refuses anything else. Removes the temp files
    /// that writers which are no longer running left behind.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root: PathBuf = root.into();
        let refuse = |reason| StorageError::NotADataRoot {
            path: root.display().to_string(),
            reason,
        };
        let absolute = std::path::absolute(&root).map_err(io_err("resolve", &root))?;
        let resolved = absolute.canonicalize().unwrap_or_else(|_| absolute.clone());
        if resolved.parent().is_none() {
            return Err(refuse(DataRootRefusal::FileSystemRoot));
        }
        if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            let home = Path::new(&home);
            if home.canonicalize().unwrap_or_else(|_| home.to_owned()) == resolved {
                return Err(refuse(DataRootRefusal::Home));
            }
        }
        let marker = root.join(DATA_ROOT_MARKER);
        let marked = marker.is_file() || root.join(".gid/meta").is_dir();
        if !marked {
            match fs::read_dir(&root) {
                Ok(mut entries) => {
                    if entries.next().is_some() {
                        return Err(refuse(DataRootRefusal::NotGids));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("open data root", &root)(e)),
            }
        }
        if !marker.is_file() {
            let parent = marker.parent().expect("the marker is in .gid/");
            fs::create_dir_all(parent).map_err(io_err("create data root", parent))?;
            fs::write(
                &marker,
                "This folder is a gid data root: buckets are its folders (gid-admin bucket list).\n",
            )
            .map_err(io_err("mark data root", &marker))?;
        }
        let store = Self::new(root);
        store.sweep_abandoned_temp_files();
        Ok(store)
    }

    /// The data root: one folder per bucket.
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

    fn temp_dir(&self) -> PathBuf {
        self.inner.root.join(".gid").join("tmp")
    }

    /// The next temp file of this process, after making sure its owner file is held.
    fn temp_path(&self) -> Result<PathBuf, StorageError> {
        let dir = self.temp_dir();
        let mut owner_lock = self.inner.owner_lock.lock().expect("not poisoned");
        if owner_lock.is_none() {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
            // Locked before it gets its final name, so a sweeping process never sees an
            // unlocked owner file of a live writer.
            let staging = dir.join(format!("{}.owner-new", self.inner.temp_owner));
            let file = File::create(&staging).map_err(io_err("create", &staging))?;
            file.lock().map_err(io_err("lock", &staging))?;
            let owner = dir.join(format!("{}.owner", self.inner.temp_owner));
            fs::rename(&staging, &owner).map_err(io_err("create", &owner))?;
            *owner_lock = Some(file);
        }
        drop(owner_lock);
        let n = self.inner.temp_counter.fetch_add(1, Ordering::Relaxed);
        Ok(dir.join(format!("{}-{n}", self.inner.temp_owner)))
    }

    /// Removes temp files whose writer no longer runs: those of owner files nobody holds,
    /// and old ones that no owner file claims. Best effort: a sweep that fails changes nothing.
    fn sweep_abandoned_temp_files(&self) {
        let dir = self.temp_dir();
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        let names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        let owners: Vec<&str> = names
            .iter()
            .filter_map(|n| n.strip_suffix(".owner"))
            .collect();
        let mut removed = 0usize;
        for owner in &owners {
            let path = dir.join(format!("{owner}.owner"));
            let Ok(file) = File::open(&path) else {
                continue;
            };
            // Free: its process is gone (the kernel released the lock when it ended).
            if file.try_lock().is_ok() {
                for temp in names.iter().filter(|n| is_temp_of(n, owner)) {
                    removed += usize::from(fs::remove_file(dir.join(temp)).is_ok());
                }
                let _ = fs::remove_file(&path);
            }
        }
        for name in &names {
            if name.ends_with(".owner") || owners.iter().any(|owner| is_temp_of(name, owner)) {
                continue;
            }
            let path = dir.join(name);
            let old = fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > ORPHAN_TEMP_AGE);
            if old {
                removed += usize::from(fs::remove_file(&path).is_ok());
            }
        }
        if removed > 0 {
            tracing::info!(root = %self.inner.root.display(), removed, "removed temp files left by writers that are no longer running");
        }
    }

    /// Holds the lock stripe of `bucket/key` until the returned file is dropped: shared for
    /// reads, exclusive for writes. Separate opens conflict even inside one process, so
    /// this orders threads and processes alike.
    fn lock_key(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        exclusive: bool,
    ) -> Result<Option<File>, StorageError> {
        let dir = self.inner.root.join(".gid").join("locks");
        let path = dir.join(format!("{:02x}.lock", stripe_of(bucket, key)));
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        };
        let file = match open() {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
                open().map_err(io_err("create lock", &path))?
            }
            // A read-only data root: nobody can write, so readers need no lock.
            Err(e) if !exclusive && is_read_only(&e) => return Ok(None),
            Err(e) => return Err(io_err("create lock", &path)(e)),
        };
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.map_err(io_err("lock", &path))?;
        Ok(Some(file))
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

    /// Writes `bytes` to a new temp file. On failure (a full disk) the partial file is
    /// removed and the error names the object being written, not the temp file.
    fn write_temp(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        bytes: &[u8],
    ) -> Result<PathBuf, StorageError> {
        let object_error = |source| StorageError::LocalWrite {
            bucket: bucket.clone(),
            key: key.to_string(),
            source,
        };
        let path = self.temp_path().map_err(|e| match e {
            StorageError::Io { source, .. } => object_error(source),
            other => other,
        })?;
        let written = File::create(&path).and_then(|mut file| file.write_all(bytes));
        if let Err(source) = written {
            let _ = fs::remove_file(&path);
            return Err(object_error(source));
        }
        Ok(path)
    }

    fn rename_into(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        from: &Path,
        to: &Path,
    ) -> Result<(), StorageError> {
        let parent = to.parent().expect("object paths have a parent");
        fs::create_dir_all(parent)
            .and_then(|()| fs::rename(from, to))
            .map_err(|source| StorageError::LocalWrite {
                bucket: bucket.clone(),
                key: key.to_string(),
                source,
            })
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

    /// The object's metadata, read under the key's shared lock.
    fn stat_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<(ObjectMeta, Acl), StorageError> {
        self.require_bucket(bucket)?;
        let _lock = self.lock_key(bucket, key, false)?;
        self.stat_unlocked(bucket, key)
    }

    /// The object's metadata; the caller holds the key's lock, or (listings) accepts an
    /// answer that a concurrent put may have overtaken, as S3 listings do.
    fn stat_unlocked(
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
        // Refused before anything is written: a file name (with the sidecar's ".json")
        // longer than the file system allows would fail half-way through the put.
        transfer::check_storable(bucket, key)?;
        let etag = hex::encode(Md5::digest(body));
        let sidecar = Sidecar {
            content_type: options.content_type.clone(),
            cache_control: options.cache_control.clone(),
            acl: options.acl.unwrap_or(Acl::Private),
            etag: etag.clone(),
            size: body.len() as u64,
            last_modified: Utc::now(),
        };
        // The bytes go to temp files before the lock is taken: the lock covers only the
        // precondition check and the renames, a few microseconds.
        let data_tmp = self.write_temp(bucket, key, body)?;
        let meta_tmp = match self.write_temp(
            bucket,
            key,
            &serde_json::to_vec(&sidecar).expect("sidecar serialises"),
        ) {
            Ok(path) => path,
            Err(e) => {
                let _ = fs::remove_file(&data_tmp);
                return Err(e);
            }
        };
        let committed = self.commit(bucket, key, &options.condition, &data_tmp, &meta_tmp);
        if committed.is_err() {
            let _ = fs::remove_file(&data_tmp);
            let _ = fs::remove_file(&meta_tmp);
        }
        committed.map(|()| etag)
    }

    /// Checks the precondition and moves the written temp files into place, under the
    /// key's exclusive lock.
    fn commit(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        condition: &PutCondition,
        data_tmp: &Path,
        meta_tmp: &Path,
    ) -> Result<(), StorageError> {
        let _lock = self.lock_key(bucket, key, true)?;
        let current = match condition {
            PutCondition::None => None,
            PutCondition::IfNoneMatch | PutCondition::IfMatch(_) => {
                match self.stat_unlocked(bucket, key) {
                    Ok((meta, _)) => Some(meta.etag),
                    Err(StorageError::NoSuchKey { .. }) => None,
                    Err(e) => return Err(e),
                }
            }
        };
        let holds = match condition {
            PutCondition::None => true,
            PutCondition::IfNoneMatch => current.is_none(),
            PutCondition::IfMatch(expected) => current.as_deref() == Some(expected.as_str()),
        };
        if !holds {
            return Err(StorageError::PreconditionFailed {
                bucket: bucket.clone(),
                key: key.to_string(),
            });
        }
        // Metadata first: a crash between the renames leaves a sidecar whose size does not
        // match the old file, which read_meta then ignores.
        self.rename_into(bucket, key, meta_tmp, &self.meta_path(bucket, key))?;
        self.rename_into(bucket, key, data_tmp, &self.object_path(bucket, key))
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
            match self.stat_unlocked(bucket, &key) {
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

/// Whether `name` is a temp file of `owner` (`<owner>-<n>`).
fn is_temp_of(name: &str, owner: &str) -> bool {
    name.strip_prefix(owner)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The lock stripe of a key: FNV-1a, stable across processes and gid versions (two versions
/// sharing a root must agree on it).
fn stripe_of(bucket: &BucketName, key: &ObjectKey) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bucket
        .as_str()
        .bytes()
        .chain([b'/'])
        .chain(key.as_str().bytes())
    {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % LOCK_STRIPES
}

fn is_read_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ReadOnlyFilesystem | io::ErrorKind::PermissionDenied
    )
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
            s.require_bucket(&bucket)?;
            // Metadata and bytes of the same version: a put renames both under the
            // exclusive lock.
            let _lock = s.lock_key(&bucket, &key, false)?;
            let (meta, _) = s.stat_unlocked(&bucket, &key)?;
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
    ) -> Result<WrittenObject, StorageError> {
        let size = body.len() as u64;
        let (bucket, key, options) = (bucket.clone(), key.clone(), options.clone());
        self.blocking(move |s| {
            let etag = s.put_sync(&bucket, &key, &body, &options)?;
            Ok(WrittenObject { key, etag, size })
        })
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
            let _lock = s.lock_key(&bucket, &key, true)?;
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
}

#[async_trait]
impl BucketAdmin for LocalStore {
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
}

#[async_trait]
impl ObjectAcls for LocalStore {
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
            s.require_bucket(&bucket)?;
            let _lock = s.lock_key(&bucket, &key, true)?;
            let (meta, _) = s.stat_unlocked(&bucket, &key)?;
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
            let tmp = s.write_temp(
                &bucket,
                &key,
                &serde_json::to_vec(&sidecar).expect("sidecar serialises"),
            )?;
            let moved = s.rename_into(&bucket, &key, &tmp, &s.meta_path(&bucket, &key));
            if moved.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            moved
        })
        .await
    }
}

#[async_trait]
impl UrlSigner for LocalStore {
    fn public_url(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        let path = self.object_path(bucket, key);
        let absolute = std::path::absolute(&path).unwrap_or(path);
        format!(
            "file://{}",
            gid_core::encode_url_path(&absolute.to_string_lossy())
        )
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
                gid_core::encode_url_path(&absolute.to_string_lossy())
            ))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketName {
        BucketName::new("gid-test").unwrap()
    }

    /// A store in a fresh folder, its test bucket created.
    async fn store_with_bucket() -> (tempfile::TempDir, LocalStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.create_bucket(&bucket()).await.unwrap();
        (dir, store)
    }

    /// An unconditional put of `body`.
    async fn put_bytes(
        store: &LocalStore,
        bucket: &BucketName,
        key: &ObjectKey,
        body: &'static [u8],
        content_type: &str,
    ) -> WrittenObject {
        let options = PutOptions::new(content_type);
        let body = Bytes::from_static(body);
        store.put(bucket, key, body, &options).await.unwrap()
    }

    #[tokio::test]
    async fn local_backend_passes_the_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        crate::conformance::run_all(&store, &bucket()).await;
    }

    #[tokio::test]
    async fn metadata_never_appears_in_listings_or_inside_bucket_folders() {
        let (dir, store) = store_with_bucket().await;
        let key = ObjectKey::new("a/b.csv").unwrap();
        put_bytes(&store, &bucket(), &key, b"x", "text/csv").await;
        let mut on_disk = Vec::new();
        let bucket_dir = dir.path().join("gid-test");
        collect_files(&bucket_dir, &bucket_dir, &mut on_disk).unwrap();
        assert_eq!(on_disk, ["a/b.csv"]);
        let buckets = store.list_buckets().await.unwrap();
        assert_eq!(buckets.len(), 1, "the .gid folder is not a bucket");
    }

    #[tokio::test]
    async fn files_dropped_in_by_hand_are_objects_with_derived_metadata() {
        let (dir, store) = store_with_bucket().await;
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
        let (_dir, store) = store_with_bucket().await;
        let key = ObjectKey::new("k.txt").unwrap();
        put_bytes(&store, &bucket(), &key, b"one", "text/plain").await;
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
        // Only this process's owner file, which it holds while it runs.
        let leftovers = fs::read_dir(&tmp)
            .map(|d| {
                d.filter(|e| {
                    !e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .ends_with(".owner")
                })
                .count()
            })
            .unwrap_or(0);
        assert_eq!(leftovers, 0, "a refused put leaves no temp files");
    }

    #[tokio::test]
    async fn a_file_with_an_unusable_name_does_not_break_listings() {
        let (dir, store) = store_with_bucket().await;
        fs::write(dir.path().join("gid-test/evil\nname.csv"), "x").unwrap();
        fs::write(dir.path().join("gid-test/back\\slash.csv"), "x").unwrap();
        fs::write(dir.path().join("gid-test/good.csv"), "x").unwrap();
        let page = store.list_page(&bucket(), "", None, 1000).await.unwrap();
        let keys: Vec<&str> = page.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["good.csv"]);
    }

    /// The child side of `conditional_writes_hold_across_processes`: `GID_CAS_ROUNDS` rounds
    /// of an `If-Match` increment of `counter` and an `If-None-Match` claim of
    /// `claims/<round>`; prints how many claims it won.
    #[test]
    #[ignore = "a worker process of conditional_writes_hold_across_processes"]
    fn cas_worker() {
        let (Ok(root), Ok(rounds)) = (
            std::env::var("GID_CAS_ROOT"),
            std::env::var("GID_CAS_ROUNDS"),
        ) else {
            return;
        };
        let rounds: u32 = rounds.parse().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = LocalStore::new(root);
        let counter = ObjectKey::new("counter").unwrap();
        let mut wins = 0;
        runtime.block_on(async {
            for round in 0..rounds {
                loop {
                    let current = store.get(&bucket(), &counter).await.unwrap();
                    let n: u64 = std::str::from_utf8(&current.body).unwrap().parse().unwrap();
                    let options = PutOptions::new("text/plain")
                        .with_condition(PutCondition::IfMatch(current.meta.etag));
                    match store
                        .put(
                            &bucket(),
                            &counter,
                            Bytes::from((n + 1).to_string()),
                            &options,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StorageError::PreconditionFailed { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
                let claim = ObjectKey::new(format!("claims/{round}")).unwrap();
                let options =
                    PutOptions::new("text/plain").with_condition(PutCondition::IfNoneMatch);
                match store
                    .put(
                        &bucket(),
                        &claim,
                        Bytes::from(std::process::id().to_string()),
                        &options,
                    )
                    .await
                {
                    Ok(_) => wins += 1,
                    Err(StorageError::PreconditionFailed { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        });
        println!("wins={wins}");
    }

    #[tokio::test]
    async fn conditional_writes_hold_across_processes() {
        const PROCESSES: u32 = 6;
        const ROUNDS: u32 = 40;
        let (dir, store) = store_with_bucket().await;
        let counter = ObjectKey::new("counter").unwrap();
        put_bytes(&store, &bucket(), &counter, b"0", "text/plain").await;
        let exe = std::env::current_exe().unwrap();
        let children: Vec<_> = (0..PROCESSES)
            .map(|_| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "local::tests::cas_worker",
                        "--ignored",
                        "--nocapture",
                    ])
                    .env("GID_CAS_ROOT", dir.path())
                    .env("GID_CAS_ROUNDS", ROUNDS.to_string())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut wins = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "{text}");
            wins += text
                .lines()
                .find_map(|l| l.strip_prefix("wins="))
                .unwrap_or_else(|| panic!("no result from a worker: {text}"))
                .parse::<u32>()
                .unwrap();
        }
        let total = store.get(&bucket(), &counter).await.unwrap();
        assert_eq!(
            std::str::from_utf8(&total.body).unwrap(),
            (PROCESSES * ROUNDS).to_string(),
            "an If-Match increment was lost"
        );
        assert_eq!(
            wins, ROUNDS,
            "each If-None-Match claim has exactly one winner"
        );
    }

    #[test]
    fn the_first_writes_of_a_store_may_race_without_deadlock() {
        // Every put of a fresh store wants to create its owner file first. A runtime of its
        // own, shut down without waiting, so a deadlocked put fails the test, not hangs it.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        let finished = runtime.block_on(async {
            for _ in 0..20 {
                let dir = tempfile::tempdir().unwrap();
                let store = LocalStore::new(dir.path());
                store.create_bucket(&bucket()).await.unwrap();
                let puts = (0..8).map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let key = ObjectKey::new(format!("k{i}")).unwrap();
                        let options = PutOptions::new("text/plain");
                        store
                            .put(&bucket(), &key, Bytes::from_static(b"x"), &options)
                            .await
                    })
                });
                let all = futures::future::join_all(puts);
                let Ok(done) = tokio::time::timeout(Duration::from_secs(20), all).await else {
                    return false;
                };
                for put in done {
                    put.unwrap().unwrap();
                }
            }
            true
        });
        runtime.shutdown_timeout(Duration::from_millis(100));
        assert!(finished, "a put waited forever on another's owner file");
    }

    #[tokio::test]
    async fn temp_files_of_writers_that_died_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = LocalStore::open(dir.path()).unwrap();
        live.create_bucket(&bucket()).await.unwrap();
        let key = ObjectKey::new("k").unwrap();
        put_bytes(&live, &bucket(), &key, b"x", "text/plain").await;
        let tmp = dir.path().join(".gid/tmp");
        // A live writer's temp file in flight, and a dead writer's leftovers.
        let in_flight = tmp.join(format!("{}-99", live.inner.temp_owner));
        fs::write(&in_flight, "partial").unwrap();
        fs::write(tmp.join("1-deadbeef.owner"), "").unwrap();
        fs::write(tmp.join("1-deadbeef-0"), "left by a crash").unwrap();
        fs::write(tmp.join("1-deadbeef-7"), "left by a full disk").unwrap();
        let _other = LocalStore::open(dir.path()).unwrap();
        let mut left: Vec<String> = fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let owner = format!("{}.owner", live.inner.temp_owner);
        let in_flight_name = format!("{}-99", live.inner.temp_owner);
        assert_eq!(left, [in_flight_name, owner]);
    }

    #[test]
    fn folders_that_are_not_gid_data_roots_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |path: &Path| match LocalStore::open(path) {
            Err(StorageError::NotADataRoot { reason, .. }) => Some(reason),
            Err(e) => panic!("{e}"),
            Ok(_) => None,
        };
        assert_eq!(
            refused(Path::new("/")),
            Some(DataRootRefusal::FileSystemRoot)
        );
        let users = dir.path().join("home");
        fs::create_dir_all(users.join("Documents")).unwrap();
        fs::write(users.join("notes.txt"), "mine").unwrap();
        assert_eq!(refused(&users), Some(DataRootRefusal::NotGids));
        let message = LocalStore::open(&users).unwrap_err().to_string();
        assert!(
            message.contains("GID__LOCAL__DATA_ROOT") && message.contains(".gid/data-root"),
            "{message}"
        );
        assert!(
            !users.join(".gid").exists(),
            "a refused folder is left untouched"
        );
        // New and empty folders become data roots; a marked root opens again.
        let fresh = dir.path().join("new/root");
        assert_eq!(refused(&fresh), None);
        assert!(fresh.join(DATA_ROOT_MARKER).is_file());
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        assert_eq!(refused(&empty), None);
        fs::create_dir(empty.join("gid-requests")).unwrap();
        assert_eq!(refused(&empty), None);
    }

    #[test]
    fn file_urls_escape_spaces_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let url = store.public_url(&bucket(), &ObjectKey::new("2019/a b/#x.csv").unwrap());
        assert!(url.starts_with("file:///"), "{url}");
        assert!(url.ends_with("/2019/a%20b/%23x.csv"), "{url}");
    }
}
