//! Files in and out of the local store a chunk at a time, so moving a large object takes
//! memory for a buffer, not for the object: an upload is copied into the store's temp
//! area with its MD5 ETag computed on the way, then renamed into place like any put; a
//! download reads the object's file in chunks.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use bytes::BytesMut;
use chrono::Utc;
use futures::StreamExt;
use gid_core::{Acl, BucketName, ObjectKey};
use md5::{Digest, Md5};
use tokio::io::AsyncReadExt;

use super::{io_err, LocalStore, Sidecar, MAX_FILE_NAME};
use crate::types::file_error;
use crate::{ObjectStream, PutCondition, PutOptions, StorageError, WrittenObject};

/// Bytes read or written at a time.
const CHUNK: usize = 1024 * 1024;

/// [`ObjectStore::put_file`](crate::ObjectStore::put_file) on the local backend.
pub(super) fn put_file(
    store: &LocalStore,
    bucket: &BucketName,
    key: &ObjectKey,
    source: &Path,
    options: &PutOptions,
) -> Result<WrittenObject, StorageError> {
    if options.condition != PutCondition::None {
        // Conditional writes are small records (the alert ledger); the buffered put holds
        // the lock that makes them safe.
        let body = fs::read(source).map_err(file_error("read", source))?;
        let etag = store.put_sync(bucket, key, &body, options)?;
        return Ok(WrittenObject {
            key: key.clone(),
            etag,
            size: body.len() as u64,
        });
    }
    store.require_bucket(bucket)?;
    check_storable(bucket, key)?;
    let data_tmp = store.temp_path().map_err(|e| match e {
        StorageError::Io { source, .. } => StorageError::LocalWrite {
            bucket: bucket.clone(),
            key: key.to_string(),
            source,
        },
        other => other,
    })?;
    let mut meta_tmp = None;
    let committed = copy_with_md5(bucket, key, source, &data_tmp).and_then(|(etag, size)| {
        let sidecar = Sidecar {
            content_type: options.content_type.clone(),
            cache_control: options.cache_control.clone(),
            acl: options.acl.unwrap_or(Acl::Private),
            etag: etag.clone(),
            size,
            last_modified: Utc::now(),
        };
        let meta = meta_tmp.insert(store.write_temp(
            bucket,
            key,
            &serde_json::to_vec(&sidecar).expect("sidecar serialises"),
        )?);
        store.commit(bucket, key, &PutCondition::None, &data_tmp, meta)?;
        Ok(WrittenObject {
            key: key.clone(),
            etag,
            size,
        })
    });
    if committed.is_err() {
        let _ = fs::remove_file(&data_tmp);
        if let Some(meta) = meta_tmp {
            let _ = fs::remove_file(meta);
        }
    }
    committed
}

/// What put refuses on this backend, refused before a byte is copied.
pub(super) fn check_storable(bucket: &BucketName, key: &ObjectKey) -> Result<(), StorageError> {
    let unsupported = |detail| StorageError::Unsupported {
        operation: "put",
        bucket: bucket.clone(),
        key: key.to_string(),
        detail,
    };
    if key.as_str().ends_with('/') {
        return Err(unsupported(
            "folder-marker keys ending in '/' cannot be stored on the local backend",
        ));
    }
    if key
        .as_str()
        .split('/')
        .any(|segment| segment.len() + ".json".len() > MAX_FILE_NAME)
    {
        return Err(unsupported(
            "a path segment longer than 250 bytes cannot be stored on the local backend (file names are limited to 255 bytes)",
        ));
    }
    Ok(())
}

/// Copies `source` to `target` (a temp file of the object `bucket/key`) a chunk at a time;
/// returns the hex MD5 and the size. A failed write (a full disk) names the object.
fn copy_with_md5(
    bucket: &BucketName,
    key: &ObjectKey,
    source: &Path,
    target: &Path,
) -> Result<(String, u64), StorageError> {
    let object_error = |source| StorageError::LocalWrite {
        bucket: bucket.clone(),
        key: key.to_string(),
        source,
    };
    let mut input = fs::File::open(source).map_err(file_error("read", source))?;
    let mut output = fs::File::create(target).map_err(object_error)?;
    let mut hash = Md5::new();
    let mut buffer = vec![0; CHUNK];
    let mut size = 0u64;
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(file_error("read", source)(e)),
        };
        hash.update(&buffer[..read]);
        output.write_all(&buffer[..read]).map_err(object_error)?;
        size += read as u64;
    }
    Ok((hex::encode(hash.finalize()), size))
}

/// [`ObjectStore::get_stream`](crate::ObjectStore::get_stream) on the local backend.
pub(super) async fn get_stream(
    store: &LocalStore,
    bucket: &BucketName,
    key: &ObjectKey,
) -> Result<ObjectStream, StorageError> {
    let (bucket, key) = (bucket.clone(), key.clone());
    let (meta, file, path) = store
        .blocking(move |s| {
            // Validates the bucket and key and says NoSuchKey as head does.
            s.stat_object(&bucket, &key)?;
            let path = s.object_path(&bucket, &key);
            let file = fs::File::open(&path).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => super::no_such_key(&bucket, &key),
                _ => io_err("read", &path)(e),
            })?;
            // The metadata of the file actually opened: a put that replaced the object
            // since the stat above does not mix old metadata with new bytes.
            let data = file.metadata().map_err(io_err("stat", &path))?;
            let (meta, _) = s.read_meta(&bucket, &key, &data)?;
            Ok((meta, file, path))
        })
        .await?;
    let reader = tokio::fs::File::from_std(file).take(meta.size);
    let body = futures::stream::try_unfold((reader, path), |(mut reader, path)| async move {
        let mut chunk = BytesMut::with_capacity(CHUNK);
        let read = reader
            .read_buf(&mut chunk)
            .await
            .map_err(io_err("read", &path))?;
        Ok::<_, StorageError>((read > 0).then(|| (chunk.freeze(), (reader, path))))
    })
    .boxed();
    Ok(ObjectStream { meta, body })
}
