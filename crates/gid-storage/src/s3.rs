//! `aws-sdk-s3` behind the [`ObjectStore`] port, for AWS or any S3-compatible endpoint.
//!
//! Credentials come only from the SDK's standard chain (environment, shared profile, SSO,
//! instance/container role); gid never reads or logs them. Retries with exponential
//! backoff (throttling, 5xx, timeouts) are the SDK's standard retry strategy with the
//! configured attempt budget; bodies that break mid-stream are retried here too, since the
//! SDK has already returned by then.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectCannedAcl, ObjectIdentifier,
    Permission, Type,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use gid_core::{Acl, AwsConfig, BucketName, ObjectKey};

use crate::{
    BucketInfo, ListPage, ObjectMeta, ObjectStore, PutCondition, PutOptions, StorageError,
    StoredObject,
};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// Attempts at reading a response body that breaks after the headers arrived.
const BODY_ATTEMPTS: u32 = 3;

/// Connection settings for [`S3Store`] (never credentials).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    /// `None`: path style exactly when a custom endpoint is set.
    pub force_path_style: Option<bool>,
    pub checksums_when_required: bool,
    pub max_attempts: u32,
    pub operation_timeout: Duration,
}

impl S3Settings {
    pub fn from_config(aws: &AwsConfig) -> Self {
        Self {
            region: aws.region.clone(),
            endpoint_url: aws.endpoint_url.clone(),
            force_path_style: aws.force_path_style,
            checksums_when_required: aws.checksums_when_required,
            max_attempts: aws.max_attempts,
            operation_timeout: Duration::from_secs(aws.operation_timeout_secs),
        }
    }
}

/// The S3 backend of [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    region: String,
    counter: crate::RequestCounter,
}

impl S3Store {
    /// Loads the SDK configuration (standard chain) and builds the client.
    pub async fn connect(settings: &S3Settings) -> Self {
        let sdk = crate::sdk::load_sdk_config(&crate::SdkSettings {
            region: settings.region.as_deref(),
            endpoint_url: settings.endpoint_url.as_deref(),
            max_attempts: settings.max_attempts,
            initial_backoff: Duration::from_millis(200),
            operation_timeout: settings.operation_timeout,
        })
        .await;
        let region = sdk
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| crate::sdk::FALLBACK_REGION.to_owned());
        let path_style = settings
            .force_path_style
            .unwrap_or(sdk.endpoint_url().is_some());
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk).force_path_style(path_style);
        if settings.checksums_when_required {
            builder = builder
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let counter = crate::RequestCounter::default();
        builder = builder.interceptor(counter.clone());
        tracing::debug!(region, path_style, endpoint = ?sdk.endpoint_url(), "s3 client ready");
        Self {
            client: Client::from_conf(builder.build()),
            region,
            counter,
        }
    }

    /// The SDK client, for operations outside the port (tests, admin).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn to_chrono(t: Option<&aws_smithy_types::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_owned()
}

/// Maps an SDK error onto the port's errors by S3 error code and HTTP status.
fn classify<E, R>(
    operation: &'static str,
    bucket: &BucketName,
    key: &str,
    err: SdkError<E, R>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let status = err.raw_response().map(HasStatus::status);
    let code = err.code().map(str::to_owned);
    match (code.as_deref(), status) {
        (Some("NoSuchBucket"), _) => StorageError::NoSuchBucket {
            bucket: bucket.clone(),
        },
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => StorageError::NoSuchKey {
            bucket: bucket.clone(),
            key: key.to_owned(),
        },
        (Some("BucketNotEmpty"), _) => StorageError::BucketNotEmpty {
            bucket: bucket.clone(),
        },
        (Some("AccessControlListNotSupported"), _) => StorageError::AclNotSupported {
            bucket: bucket.clone(),
        },
        (Some("PreconditionFailed" | "ConditionalRequestConflict"), _) | (_, Some(412)) => {
            StorageError::PreconditionFailed {
                bucket: bucket.clone(),
                key: key.to_owned(),
            }
        }
        _ => {
            let transient = matches!(
                err,
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
            ) || status.is_some_and(|s| s == 429 || s >= 500);
            StorageError::Service {
                operation,
                bucket: bucket.to_string(),
                key: key.to_owned(),
                message: DisplayErrorContext(&err).to_string(),
                transient,
            }
        }
    }
}

/// The HTTP status of a raw response, whatever its type.
trait HasStatus {
    fn status(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

fn canned(acl: Acl) -> ObjectCannedAcl {
    match acl {
        Acl::Private => ObjectCannedAcl::Private,
        Acl::PublicRead => ObjectCannedAcl::PublicRead,
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn backend(&self) -> &'static str {
        "s3"
    }

    fn request_stats(&self) -> crate::RequestStats {
        self.counter.stats()
    }

    async fn create_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        let mut request = self.client.create_bucket().bucket(bucket.as_str());
        // us-east-1 is the one region that refuses an explicit location constraint.
        if self.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(classify("create bucket", bucket, "", e)),
        }
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StorageError> {
        let placeholder = BucketName::new("all-buckets").expect("valid");
        let output = self
            .client
            .list_buckets()
            .send()
            .await
            .map_err(|e| classify("list buckets", &placeholder, "", e))?;
        Ok(output
            .buckets()
            .iter()
            .filter_map(|b| {
                let name = BucketName::new(b.name()?.to_owned()).ok()?;
                Some(BucketInfo {
                    name,
                    created: b.creation_date().map(|d| to_chrono(Some(d))),
                })
            })
            .collect())
    }

    async fn delete_bucket(&self, bucket: &BucketName) -> Result<(), StorageError> {
        self.client
            .delete_bucket()
            .bucket(bucket.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("delete bucket", bucket, "", e))
    }

    async fn list_page(
        &self,
        bucket: &BucketName,
        prefix: &str,
        continuation: Option<String>,
        max_keys: u32,
    ) -> Result<ListPage, StorageError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket.as_str())
            .prefix(prefix)
            .max_keys(max_keys.clamp(1, 1000) as i32)
            .set_continuation_token(continuation)
            .send()
            .await
            .map_err(|e| classify("list", bucket, prefix, e))?;
        let mut objects = Vec::with_capacity(output.contents().len());
        for o in output.contents() {
            // An object someone uploaded under a name gid refuses as a key (a newline, a
            // backslash, a look-alike of '/') is skipped, as the local store skips such a
            // file: one stray upload must not fail every listing of the bucket.
            let key = match ObjectKey::new(o.key().unwrap_or_default()) {
                Ok(key) => key,
                Err(e) => {
                    tracing::warn!(%bucket, error = %e, "object with an unusable key skipped");
                    continue;
                }
            };
            objects.push(ObjectMeta {
                key,
                size: o.size().unwrap_or_default().max(0) as u64,
                last_modified: to_chrono(o.last_modified()),
                etag: unquote(o.e_tag()),
                content_type: None,
                cache_control: None,
            });
        }
        let next = if output.is_truncated() == Some(true) {
            output.next_continuation_token().map(str::to_owned)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }

    async fn get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<StoredObject, StorageError> {
        let mut attempt = 1;
        loop {
            let output = self
                .client
                .get_object()
                .bucket(bucket.as_str())
                .key(key.as_str())
                .send()
                .await
                .map_err(|e| classify("get", bucket, key.as_str(), e))?;
            let meta = ObjectMeta {
                key: key.clone(),
                size: output.content_length().unwrap_or_default().max(0) as u64,
                last_modified: to_chrono(output.last_modified()),
                etag: unquote(output.e_tag()),
                content_type: output.content_type().map(str::to_owned),
                cache_control: output.cache_control().map(str::to_owned),
            };
            match output.body.collect().await {
                Ok(data) => {
                    let body: Bytes = data.into_bytes();
                    return Ok(StoredObject { meta, body });
                }
                Err(e) if attempt < BODY_ATTEMPTS => {
                    tracing::warn!(%bucket, %key, attempt, error = %e, "response body broke off; retrying");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => {
                    return Err(StorageError::Service {
                        operation: "get",
                        bucket: bucket.to_string(),
                        key: key.to_string(),
                        message: format!("response body broke off {BODY_ATTEMPTS} times: {e}"),
                        transient: true,
                    })
                }
            }
        }
    }

    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        let output = self
            .client
            .head_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| classify("head", bucket, key.as_str(), e))?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: output.content_length().unwrap_or_default().max(0) as u64,
            last_modified: to_chrono(output.last_modified()),
            etag: unquote(output.e_tag()),
            content_type: output.content_type().map(str::to_owned),
            cache_control: output.cache_control().map(str::to_owned),
        })
    }

    async fn put(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        let mut request = self
            .client
            .put_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type(&options.content_type)
            .set_cache_control(options.cache_control.clone())
            .set_acl(options.acl.map(canned))
            .body(ByteStream::from(body));
        request = match &options.condition {
            PutCondition::None => request,
            PutCondition::IfNoneMatch => request.if_none_match("*"),
            PutCondition::IfMatch(etag) => request.if_match(format!("\"{etag}\"")),
        };
        let output = request
            .send()
            .await
            .map_err(|e| classify("put", bucket, key.as_str(), e))?;
        Ok(unquote(output.e_tag()))
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("delete", bucket, key.as_str(), e))
    }

    async fn delete_many(
        &self,
        bucket: &BucketName,
        keys: &[ObjectKey],
    ) -> Result<(), StorageError> {
        // DeleteObjects takes at most 1000 keys per request.
        for chunk in keys.chunks(1000) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(k.as_str()).build())
                .collect::<Result<Vec<_>, _>>()
                .expect("a key is all an identifier needs");
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .expect("objects are set");
            let output = self
                .client
                .delete_objects()
                .bucket(bucket.as_str())
                .delete(delete)
                .send()
                .await
                .map_err(|e| classify("delete objects", bucket, "", e))?;
            if let Some(first) = output.errors().first() {
                return Err(StorageError::Service {
                    operation: "delete objects",
                    bucket: bucket.to_string(),
                    key: first.key().unwrap_or_default().to_owned(),
                    message: format!(
                        "{} of {} keys not deleted, first: {} {}",
                        output.errors().len(),
                        chunk.len(),
                        first.code().unwrap_or_default(),
                        first.message().unwrap_or_default()
                    ),
                    transient: false,
                });
            }
        }
        Ok(())
    }

    async fn get_acl(&self, bucket: &BucketName, key: &ObjectKey) -> Result<Acl, StorageError> {
        let output = self
            .client
            .get_object_acl()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| classify("get acl", bucket, key.as_str(), e))?;
        let public = output.grants().iter().any(|g| {
            let everyone = g
                .grantee()
                .is_some_and(|who| who.r#type() == &Type::Group && who.uri() == Some(ALL_USERS));
            everyone
                && matches!(
                    g.permission(),
                    Some(Permission::Read | Permission::FullControl)
                )
        });
        Ok(if public {
            Acl::PublicRead
        } else {
            Acl::Private
        })
    }

    async fn put_acl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        acl: Acl,
    ) -> Result<(), StorageError> {
        self.client
            .put_object_acl()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .acl(canned(acl))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify("put acl", bucket, key.as_str(), e))
    }

    async fn presign_get(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        expires: Duration,
    ) -> Result<String, StorageError> {
        let config = PresigningConfig::expires_in(expires).map_err(|e| StorageError::Service {
            operation: "presign",
            bucket: bucket.to_string(),
            key: key.to_string(),
            message: format!("{e} (presigned URLs expire after 1 second to 7 days)"),
            transient: false,
        })?;
        let request = self
            .client
            .get_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .presigned(config)
            .await
            .map_err(|e| classify("presign", bucket, key.as_str(), e))?;
        Ok(request.uri().to_string())
    }
}
