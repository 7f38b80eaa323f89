use gid_core::{BucketName, NameError};

use crate::local::DataRootRefusal;

/// What went wrong with a storage operation; every variant names the bucket (and key).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: BucketName },
    #[error("s3://{bucket}/{key} does not exist")]
    NoSuchKey { bucket: BucketName, key: String },
    #[error("bucket {bucket} is not empty")]
    BucketNotEmpty { bucket: BucketName },
    #[error("bucket {bucket} has ACLs disabled (Object Ownership = BucketOwnerEnforced)")]
    AclNotSupported { bucket: BucketName },
    #[error("s3://{bucket}/{key} changed since it was read (precondition failed)")]
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
    #[error("{}", not_a_data_root(path, *reason))]
    NotADataRoot {
        path: String,
        reason: DataRootRefusal,
    },
    /// Writing an object's bytes on the local backend failed (a full disk, a read-only
    /// folder); nothing of the write is left behind.
    #[error("writing s3://{bucket}/{key} on the local backend: {source}")]
    LocalWrite {
        bucket: BucketName,
        key: String,
        #[source]
        source: std::io::Error,
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
    #[error("{operation} s3://{bucket}/{key}: {kind}")]
    Service {
        operation: &'static str,
        bucket: String,
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
