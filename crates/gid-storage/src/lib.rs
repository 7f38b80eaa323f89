//! The object-storage port and its backends.
//!
//! [`ObjectStore`] is the one trait every stage writes and reads through: list a page,
//! get, head, put (with Content-Type, Cache-Control, ACL and an optional precondition),
//! delete. Buckets ([`BucketAdmin`]), ACLs ([`ObjectAcls`]) and URLs ([`UrlSigner`]) are
//! traits of their own; a [`Backend`] is all of them. Two backends implement them (the S3
//! one behind the default feature `s3`):
//!
//! * [`LocalStore`]: buckets are folders under a data root; metadata lives beside the
//!   bucket folders and is never listed as an object; writes are atomic renames.
//! * [`S3Store`]: `aws-sdk-s3` against AWS or any S3-compatible endpoint.
//!
//! Both pass the same conformance suite (`conformance`, behind the feature of that name),
//! as does [`MemoryStore`], the in-memory backend for unit tests, so a stage cannot tell
//! which one runs.
//! This crate knows nothing of months or reports.
//!
//! ```
//! # async fn demo() -> Result<(), gid_storage::StorageError> {
//! use gid_core::{BucketName, ObjectKey};
//! use gid_storage::{list_all, BucketAdmin, LocalStore, ObjectStore, PutOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let store = LocalStore::new(dir.path());
//! let bucket = BucketName::new("gid-reports").unwrap();
//! store.create_bucket(&bucket).await?;
//! let key = ObjectKey::new("2019/jan/final_report.csv").unwrap();
//! store.put(&bucket, &key, "a,b\n".into(), &PutOptions::new("text/csv")).await?;
//! assert_eq!(list_all(&store, &bucket, "2019/").await?.len(), 1);
//! # Ok(()) }
//! ```

mod error;
mod instrumented;
mod local;
mod memory;
#[cfg(feature = "s3")]
mod s3;
mod types;

/// The behaviour every backend must show (feature `conformance`, for backends' tests).
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::StorageError;
pub use instrumented::{InstrumentedStore, RequestCounts};
pub use local::{DataRootRefusal, LocalStore, DATA_ROOT_MARKER};
pub use memory::MemoryStore;
#[cfg(feature = "s3")]
pub use s3::inspect::{
    AclMode, BucketExposure, BucketReach, PolicyJudge, PolicyVerdict, PublicAccessBlock,
};
#[cfg(feature = "s3")]
pub use s3::site::{website_endpoint, BucketSiteState};
#[cfg(feature = "s3")]
pub use s3::{MultipartSettings, S3Options, S3Settings, S3Store};
pub use types::{
    content_type_for, download_to_file, list, list_all, Backend, BucketAdmin, BucketInfo, ListPage,
    ObjectAcls, ObjectMeta, ObjectStore, ObjectStream, PutCondition, PutOptions, SignedStore,
    StoredObject, UrlSigner, WrittenObject,
};
