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
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectCannedAcl, ObjectIdentifier,
    Permission, Type,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use gid_aws::{
    AwsContext, AwsSettings, AwsSetupError, FailureKind, RequestCounter, SdkDetail, Service,
};
use gid_core::{Acl, AwsConfig, BucketName, ObjectKey};

pub(crate) mod inspect;

use crate::{
    BucketInfo, ListPage, ObjectMeta, ObjectStore, PutCondition, PutOptions, StorageError,
    StoredObject,
};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// Attempts at reading a response body that breaks after the headers arrived.
const BODY_ATTEMPTS: u32 = 3;

/// S3 specifics on top of the shared [`AwsContext`].
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `None`: path style exactly when S3 has a custom endpoint (`aws.endpoint_url`,
    /// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's).
    pub force_path_style: Option<bool>,
    pub checksums_when_required: bool,
}

impl S3Options {
    pub fn from_config(aws: &AwsConfig) -> Self {
        Self {
            force_path_style: aws.force_path_style,
            checksums_when_required: aws.checksums_when_required,
        }
    }
}

/// Everything to reach S3 alone (tests, tools): the AWS settings and the S3 options.
/// Programs that use other AWS services too share one [`AwsContext`] via [`S3Store::new`].
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

/// The S3 backend of [`ObjectStore`].
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    region: String,
    /// The custom endpoint S3 is reached at (`None`: AWS's own).
    endpoint: Option<String>,
    path_style: bool,
    counter: RequestCounter,
}

impl S3Store {
    /// The S3 client of the process's shared AWS configuration.
    pub fn new(aws: &AwsContext, options: &S3Options) -> Self {
        let endpoint = aws.endpoint(Service::S3);
        let path_style = options.force_path_style.unwrap_or(endpoint.is_some());
        let mut builder = aws_sdk_s3::config::Builder::from(aws.sdk()).force_path_style(path_style);
        if options.checksums_when_required {
            builder = builder
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        let counter = RequestCounter::default();
        builder = builder.interceptor(counter.clone());
        tracing::debug!(
            region = aws.region(),
            path_style,
            ?endpoint,
            "s3 client ready"
        );
        Self {
            client: Client::from_conf(builder.build()),
            region: aws.region().to_owned(),
            endpoint,
            path_style,
            counter,
        }
    }

    /// A store of its own AWS configuration, loaded from `settings` and the standard chain.
    pub async fn connect(settings: &S3Settings) -> Result<Self, AwsSetupError> {
        let aws = AwsContext::load(&AwsSettings {
            region: settings.region.clone(),
            endpoint_url: settings.endpoint_url.clone(),
            max_attempts: Some(settings.max_attempts),
            retry_mode: None,
            operation_timeout: settings.operation_timeout,
        })
        .await?;
        Ok(Self::new(
            &aws,
            &S3Options {
                force_path_style: settings.force_path_style,
                checksums_when_required: settings.checksums_when_required,
            },
        ))
    }

    /// The object's URL as the store is addressed: `<endpoint>/<bucket>/<key>` (path style)
    /// or `https://<bucket>.<host>/<key>` (virtual-hosted; on AWS the region's host).
    fn url_of(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        let key = percent_encode_key(key.as_str());
        match (&self.endpoint, self.path_style) {
            (Some(endpoint), true) => {
                format!("{}/{bucket}/{key}", endpoint.trim_end_matches('/'))
            }
            (Some(endpoint), false) => {
                let (scheme, host) = endpoint
                    .split_once("://")
                    .unwrap_or(("https", endpoint.as_str()));
                format!("{scheme}://{bucket}.{}/{key}", host.trim_end_matches('/'))
            }
            (None, true) => format!("https://s3.{}.amazonaws.com/{bucket}/{key}", self.region),
            (None, false) => format!("https://{bucket}.s3.{}.amazonaws.com/{key}", self.region),
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

/// Keys in URLs: every byte but unreserved characters and '/' percent-encoded.
fn percent_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Maps an SDK error onto the port's errors by S3 error code and HTTP status; `endpoint`
/// is where the store sends requests (`None`: AWS's own), for "connection refused by …".
fn classify<E>(
    endpoint: Option<&str>,
    operation: &'static str,
    bucket: &BucketName,
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
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
        _ => StorageError::Service {
            operation,
            bucket: bucket.to_string(),
            key: key.to_owned(),
            kind: gid_aws::describe(operation, &format!("s3://{bucket}/{key}"), &err, endpoint),
            detail: Some(Box::new(SdkDetail::new(err))),
        },
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

    fn request_stats(&self) -> gid_core::RequestStats {
        self.counter.stats()
    }

    fn public_url(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        self.url_of(bucket, key)
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
            Err(e) => Err(classify(
                self.endpoint.as_deref(),
                "create bucket",
                bucket,
                "",
                e,
            )),
        }
    }

    async fn list_buckets(&self) -> Result<Vec<BucketInfo>, StorageError> {
        let placeholder = BucketName::new("all-buckets").expect("valid");
        let output = self.client.list_buckets().send().await.map_err(|e| {
            classify(
                self.endpoint.as_deref(),
                "list buckets",
                &placeholder,
                "",
                e,
            )
        })?;
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
            .map_err(|e| classify(self.endpoint.as_deref(), "delete bucket", bucket, "", e))
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
            .map_err(|e| classify(self.endpoint.as_deref(), "list", bucket, prefix, e))?;
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
                .map_err(|e| classify(self.endpoint.as_deref(), "get", bucket, key.as_str(), e))?;
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
                        kind: FailureKind::BrokenResponse {
                            attempts: BODY_ATTEMPTS,
                        },
                        detail: Some(Box::new(e)),
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
            .map_err(|e| classify(self.endpoint.as_deref(), "head", bucket, key.as_str(), e))?;
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
            .map_err(|e| classify(self.endpoint.as_deref(), "put", bucket, key.as_str(), e))?;
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
            .map_err(|e| classify(self.endpoint.as_deref(), "delete", bucket, key.as_str(), e))
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
                .map_err(|e| classify(self.endpoint.as_deref(), "delete objects", bucket, "", e))?;
            if let Some(first) = output.errors().first() {
                return Err(StorageError::Service {
                    operation: "delete objects",
                    bucket: bucket.to_string(),
                    key: first.key().unwrap_or_default().to_owned(),
                    kind: FailureKind::Rejected {
                        code: first.code().unwrap_or("DeleteObjects").to_owned(),
                        message: format!(
                            "{} of {} keys not deleted, first: {}",
                            output.errors().len(),
                            chunk.len(),
                            first.message().unwrap_or_default()
                        ),
                    },
                    detail: None,
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
            .map_err(|e| classify(self.endpoint.as_deref(), "get acl", bucket, key.as_str(), e))?;
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
            .map_err(|e| classify(self.endpoint.as_deref(), "put acl", bucket, key.as_str(), e))
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
            kind: FailureKind::Rejected {
                code: "InvalidExpiry".into(),
                message: "presigned URLs expire after 1 second to 7 days".into(),
            },
            detail: Some(Box::new(e)),
        })?;
        let request = self
            .client
            .get_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .presigned(config)
            .await
            .map_err(|e| classify(self.endpoint.as_deref(), "presign", bucket, key.as_str(), e))?;
        Ok(request.uri().to_string())
    }
}
