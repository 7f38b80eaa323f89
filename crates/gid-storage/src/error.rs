use gid_core::{BucketName, NameError};

use crate::local::DataRootRefusal;

/// What went wrong with a storage operation; every variant names the bucket (and key).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("bucket {bucket} does not exist")]
    /// The bucket does not exist.
    NoSuchBucket {
        /// The bucket.
        bucket: BucketName,
    },
    #[error("s3://{bucket}/{key} does not exist")]
    /// The object does not exist.
    NoSuchKey {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: String,
    },
    #[error("bucket {bucket} is not empty")]
    /// A bucket to delete still holds objects.
    BucketNotEmpty {
        /// The bucket.
        bucket: BucketName,
    },
    #[error("bucket {bucket} has ACLs disabled (Object Ownership = BucketOwnerEnforced)")]
    /// The bucket refuses object ACLs.
    AclNotSupported {
        /// The bucket.
        bucket: BucketName,
    },
    #[error("s3://{bucket}/{key} changed since it was read (precondition failed)")]
    /// A conditional write lost: the object changed since it was read.
    PreconditionFailed {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: String,
    },
    #[error(transparent)]
    /// A bucket or key name is not valid.
    InvalidName(#[from] NameError),
    #[error("{operation} s3://{bucket}/{key}: {detail}")]
    /// The backend cannot do this operation (e.g. an ACL on a folder store).
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// Its bucket.
        bucket: BucketName,
        /// Its key.
        key: String,
        /// Why not.
        detail: &'static str,
    },
    #[error("{}", not_a_data_root(path, *reason))]
    /// The local data root is not one gid made (or may write to).
    NotADataRoot {
        /// The folder.
        path: String,
        /// Why it is refused.
        reason: DataRootRefusal,
    },
    /// Writing an object's bytes on the local backend failed (a full disk, a read-only
    /// folder); nothing of the write is left behind.
    #[error("writing s3://{bucket}/{key} on the local backend: {source}")]
    LocalWrite {
        /// The bucket.
        bucket: BucketName,
        /// The key.
        key: String,
        #[source]
        /// The file system's error.
        source: std::io::Error,
    },
    /// A file the caller named (an upload's source, a download's target) could not be
    /// read or written. The I/O error is part of the message, not a separate cause, so the
    /// one-line report does not repeat it.
    #[error("cannot {operation} {path}: {error}")]
    File {
        /// What was being done (`read`, `create`).
        operation: &'static str,
        /// The file.
        path: String,
        /// The file system's error.
        error: std::io::Error,
    },
    /// A setting the backend cannot work with (found when it is first needed).
    #[error("{setting} = {value} cannot be used: {expected}")]
    InvalidSetting {
        /// The setting's key.
        setting: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        expected: &'static str,
    },
    #[error("local storage: {operation} {path}: {source}")]
    /// A local store's file operation failed.
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or folder.
        path: String,
        #[source]
        /// The file system's error.
        source: std::io::Error,
    },
    #[error("{operation} s3://{bucket}/{key}: {kind}")]
    /// S3 refused or failed the operation, after retries.
    Service {
        /// The S3 operation.
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The key (empty for bucket operations).
        key: String,
        /// Why, in words an operator acts on (`kind.is_transient()`: retrying may help).
        kind: gid_core::FailureKind,
        /// The client's own error (the SDK's detail, printed at `-v`).
        #[source]
        detail: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl StorageError {
    /// True when the object or bucket simply is not there (callers often treat it as "absent").
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            StorageError::NoSuchKey { .. } | StorageError::NoSuchBucket { .. }
        )
    }
}

fn not_a_data_root(path: &str, reason: DataRootRefusal) -> String {
    let what = match reason {
        DataRootRefusal::FileSystemRoot => {
            format!("refusing {path} as the local data root: every folder of the system would be a bucket")
        }
        DataRootRefusal::Home => {
            format!("refusing {path} (the home folder) as the local data root: its folders would be buckets")
        }
        DataRootRefusal::NotGids => format!(
            "{path} is not a gid data root: it holds files but no {} marker, so its folders are not gid's buckets",
            crate::local::DATA_ROOT_MARKER
        ),
    };
    let mark = match reason {
        DataRootRefusal::NotGids => format!(
            "; if it really holds gid's buckets, mark it: mkdir -p '{path}/.gid' && touch '{path}/{}'",
            crate::local::DATA_ROOT_MARKER
        ),
        _ => String::new(),
    };
    format!("{what}. Set local.data_root (GID__LOCAL__DATA_ROOT) to a new or empty folder such as ./gid-data (gid marks it){mark}")
}
