use gid_core::{BucketName, NameError};

/// What went wrong with a storage operation; every variant names the bucket (and key).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("bucket {bucket} does not exist (create it with `gid-admin bucket create {bucket}`)")]
    NoSuchBucket { bucket: BucketName },
    #[error("s3://{bucket}/{key} does not exist")]
    NoSuchKey { bucket: BucketName, key: String },
    #[error("bucket {bucket} is not empty (use --force to empty it first)")]
    BucketNotEmpty { bucket: BucketName },
    #[error("bucket {bucket} has ACLs disabled (Object Ownership = BucketOwnerEnforced)")]
    AclNotSupported { bucket: BucketName },
    #[error("s3://{bucket}/{key} changed since it was read (precondition failed); rerun to retry")]
    PreconditionFailed { bucket: BucketName, key: String },
    #[error(transparent)]
    InvalidName(#[from] NameError),
    #[error("{operation} s3://{bucket}/{key}: {detail}")]
    Unsupported {
        operation: &'static str,
        bucket: BucketName,
        key: String,
        detail: &'static str,
    },
    /// A file the caller named (an upload's source, a download's target) could not be
    /// read or written. The I/O error is part of the message, not a separate cause, so the
    /// one-line report does not repeat it.
    #[error("cannot {operation} {path}: {error}")]
    File {
        operation: &'static str,
        path: String,
        error: std::io::Error,
    },
    /// A setting the backend cannot work with (found when it is first needed).
    #[error("{setting} = {value} cannot be used: {expected}")]
    InvalidSetting {
        setting: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("local storage: {operation} {path}: {source}")]
    Io {
        operation: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{operation} s3://{bucket}/{key}: {message}")]
    Service {
        operation: &'static str,
        bucket: String,
        key: String,
        message: String,
        /// Whether retrying later may help (throttling, 5xx, timeouts).
        transient: bool,
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
