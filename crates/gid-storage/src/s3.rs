//! `aws-sdk-s3` behind the [`ObjectStore`] port, for AWS or any S3-compatible endpoint.
//!
//! Credentials come only from the SDK's standard chain (environment, shared profile, SSO,
//! instance/container role); gid never reads or logs them. Retries with exponential
//! backoff (throttling, 5xx, timeouts) are the SDK's standard retry strategy with the
//! configured attempt budget; bodies that break mid-stream are retried here too, since the
//! SDK has already returned by then.
//!
//! Files move without being held in memory: [`ObjectStore::put_file`] streams a file up as
//! one PutObject, or above [`MultipartSettings::threshold_mib`] as a multipart upload whose
//! parts are read from the file as they are sent (aborted on any failure, so no parts stay
//! stored and billed); [`ObjectStore::get_stream`] hands on GetObject's body as it arrives
//! and resumes a body that breaks off with a range request for the rest of the same
//! version.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    BucketLocationConstraint, CompletedMultipartUpload, CompletedPart, CreateBucketConfiguration,
    Delete, ObjectCannedAcl, ObjectIdentifier, Permission, Type,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use gid_aws::{
    AwsContext, AwsSettings, AwsSetupError, FailureKind, RequestCounter, SdkDetail, Service,
};
use gid_core::{Acl, AwsConfig, BucketName, ObjectKey};
use md5::{Digest, Md5};

use crate::types::file_error;
pub(crate) mod inspect;
pub(crate) mod site;

use crate::{
    BucketAdmin, BucketInfo, ListPage, ObjectAcls, ObjectMeta, ObjectStore, ObjectStream,
    PutCondition, PutOptions, StorageError, StoredObject, UrlSigner, WrittenObject,
};

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// Attempts at reading a response body that breaks after the headers arrived.
const BODY_ATTEMPTS: u32 = 3;
const MIB: u64 = 1024 * 1024;
/// S3's smallest part (all but the last), largest part count and largest part.
const MIN_PART_MIB: u64 = 5;
const MAX_PARTS: u64 = 10_000;
const MAX_PART_BYTES: u64 = 5 * 1024 * MIB;
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Read buffer of a file streamed into a request body.
const FILE_BUFFER: usize = 256 * 1024;

/// When [`S3Store`] uploads a file in parts, and how large the parts are (in MiB, as the
/// `aws.multipart_threshold_mb` and `aws.multipart_part_mb` settings give them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultipartSettings {
    /// Files larger than this go up as a multipart upload, smaller ones as one PutObject.
    pub threshold_mib: u64,
    /// The size of each part but the last (at least 5, S3's minimum); grown for a file that
    /// would otherwise need more than S3's 10,000 parts.
    pub part_mib: u64,
}

impl Default for MultipartSettings {
    fn default() -> Self {
        Self {
            threshold_mib: 64,
            part_mib: 16,
        }
    }
}

impl MultipartSettings {
    /// The part size for a file of `size` bytes, or why the settings cannot be used.
    fn part_bytes(&self, size: u64) -> Result<u64, StorageError> {
        if self.part_mib < MIN_PART_MIB {
            return Err(StorageError::InvalidSetting {
                setting: "aws.multipart_part_mb",
                value: self.part_mib.to_string(),
                expected: "S3 takes parts of at least 5 MiB; set it to 5 or more",
            });
        }
        Ok((self.part_mib * MIB)
            .max(size.div_ceil(MAX_PARTS))
            .min(MAX_PART_BYTES))
    }
}

/// Connection settings for [`S3Store`] (never credentials).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// The region (`None`: the standard chain's).
    pub region: Option<String>,
    /// A custom endpoint (moto, MinIO).
    pub endpoint_url: Option<String>,
    /// `None`: path style exactly when a custom endpoint is set.
    pub force_path_style: Option<bool>,
    /// Send and check checksums only when S3 requires them (for stores without CRC32 support).
    pub checksums_when_required: bool,
    /// Attempts per operation, the first included.
    pub max_attempts: u32,
    /// The time one operation may take, retries included.
    pub operation_timeout: Duration,
    /// When and how uploads go in parts.
    pub multipart: MultipartSettings,
}

/// S3 specifics on top of the shared [`AwsContext`].
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `None`: path style exactly when S3 has a custom endpoint (`aws.endpoint_url`,
    /// `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's).
    pub force_path_style: Option<bool>,
    /// Send and check checksums only when S3 requires them.
    pub checksums_when_required: bool,
    /// When and how uploads go in parts.
    pub multipart: MultipartSettings,
}

impl S3Options {
    /// The options `[aws]` sets.
    pub fn from_config(aws: &AwsConfig) -> Self {
        Self {
            force_path_style: aws.force_path_style,
            checksums_when_required: aws.checksums_when_required,
            multipart: MultipartSettings {
                threshold_mib: aws.multipart_threshold_mb,
                part_mib: aws.multipart_part_mb,
            },
        }
    }
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
    multipart: MultipartSettings,
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
            multipart: options.multipart,
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
                multipart: settings.multipart,
            },
        ))
    }

    /// The object's URL as the store is addressed: `<endpoint>/<bucket>/<key>` (path style)
    /// or `https://<bucket>.<host>/<key>` (virtual-hosted; on AWS the region's host).
    fn url_of(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        let key = gid_core::encode_url_path(key.as_str());
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

    /// One PutObject of `body`; returns the new ETag.
    async fn put_body(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: ByteStream,
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
            .body(body);
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

    /// Uploads the `size` bytes of `source` in parts of `part` bytes, a few at a time,
    /// each read from the file as it is sent. Any failure aborts the upload.
    async fn put_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        source: &Path,
        size: u64,
        part: u64,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type(&options.content_type)
            .set_cache_control(options.cache_control.clone())
            .set_acl(options.acl.map(canned))
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.endpoint.as_deref(),
                    "start multipart upload of",
                    bucket,
                    key.as_str(),
                    e,
                )
            })?;
        let Some(upload_id) = created.upload_id() else {
            return Err(StorageError::Service {
                operation: "start multipart upload of",
                bucket: bucket.to_string(),
                key: key.to_string(),
                kind: FailureKind::Rejected {
                    code: "IncompleteAnswer".into(),
                    message: "the answer carried no UploadId".into(),
                },
                detail: None,
            });
        };
        tracing::debug!(%bucket, %key, size, part, upload_id, "multipart upload started");
        let completed = async {
            let parts = (0..size.div_ceil(part)).map(|index| {
                let offset = index * part;
                let part = Part {
                    number: index as i32 + 1,
                    offset,
                    length: part.min(size - offset),
                };
                self.upload_part(bucket, key, upload_id, source, part)
            });
            let mut parts: Vec<CompletedPart> = futures::stream::iter(parts)
                .buffer_unordered(PARTS_IN_FLIGHT)
                .try_collect()
                .await?;
            parts.sort_by_key(|p| p.part_number());
            let expected = multipart_etag(&parts);
            let answer = self
                .client
                .complete_multipart_upload()
                .bucket(bucket.as_str())
                .key(key.as_str())
                .upload_id(upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await;
            match answer {
                Ok(output) => Ok(unquote(output.e_tag())),
                // A 200 whose body the SDK cannot read (moto names the answer's root
                // element CompleteMultipartUploadResponse, not ...Result): the upload is
                // complete if the object now carries the ETag its parts make.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 200) => {
                    let found = self.head(bucket, key).await?.etag;
                    match expected {
                        Some(expected) if found == expected => Ok(found),
                        _ => Err(classify(
                            self.endpoint.as_deref(),
                            "complete multipart upload of",
                            bucket,
                            key.as_str(),
                            e,
                        )),
                    }
                }
                Err(e) => Err(classify(
                    self.endpoint.as_deref(),
                    "complete multipart upload of",
                    bucket,
                    key.as_str(),
                    e,
                )),
            }
        }
        .await;
        if completed.is_err() {
            // Stored parts are billed until the upload is completed or aborted.
            let aborted = self
                .client
                .abort_multipart_upload()
                .bucket(bucket.as_str())
                .key(key.as_str())
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(e) = aborted {
                tracing::warn!(
                    %bucket, %key, upload_id, error = %aws_sdk_s3::error::DisplayErrorContext(&e),
                    "could not abort the failed multipart upload; its parts stay stored until \
                     a lifecycle rule (AbortIncompleteMultipartUpload) or an abort removes them"
                );
            }
        }
        completed
    }

    /// Sends `part` of `source`.
    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        source: &Path,
        part: Part,
    ) -> Result<CompletedPart, StorageError> {
        let Part {
            number,
            offset,
            length,
        } = part;
        // A path-backed body is re-read from the file when the SDK retries the part.
        let body = ByteStream::read_from()
            .path(source)
            .offset(offset)
            .length(Length::Exact(length))
            .buffer_size(FILE_BUFFER)
            .build()
            .await
            .map_err(|e| file_error("read", source)(std::io::Error::other(e)))?;
        let output = self
            .client
            .upload_part()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .upload_id(upload_id)
            .part_number(number)
            .content_length(length as i64)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                classify(
                    self.endpoint.as_deref(),
                    "upload a part of",
                    bucket,
                    key.as_str(),
                    e,
                )
            })?;
        Ok(CompletedPart::builder()
            .set_e_tag(output.e_tag().map(str::to_owned))
            .part_number(number)
            .build())
    }
}

/// The ETag S3 gives an object completed from `parts`: the MD5 of the parts' MD5s, then
/// `-<parts>`. `None` when a part's ETag is not an MD5 (SSE-KMS objects).
fn multipart_etag(parts: &[CompletedPart]) -> Option<String> {
    let mut digests = Vec::with_capacity(parts.len() * 16);
    for part in parts {
        let digest = hex::decode(unquote(part.e_tag())).ok()?;
        if digest.len() != 16 {
            return None;
        }
        digests.extend_from_slice(&digest);
    }
    Some(format!(
        "{}-{}",
        hex::encode(Md5::digest(&digests)),
        parts.len()
    ))
}

/// One part of a multipart upload: its number (from 1) and its bytes in the file.
#[derive(Debug, Clone, Copy)]
struct Part {
    number: i32,
    offset: u64,
    length: u64,
}

/// What a GetObject answer says about the object.
fn object_meta(key: &ObjectKey, output: &GetObjectOutput) -> ObjectMeta {
    ObjectMeta {
        key: key.clone(),
        size: output.content_length().unwrap_or_default().max(0) as u64,
        last_modified: to_chrono(output.last_modified()),
        etag: unquote(output.e_tag()),
        content_type: output.content_type().map(str::to_owned),
        cache_control: output.cache_control().map(str::to_owned),
    }
}

/// A GetObject body being handed on, and what it takes to resume it.
struct BodyReader {
    client: Client,
    endpoint: Option<String>,
    bucket: BucketName,
    key: ObjectKey,
    /// The version being read: a resumed read must not splice in a newer one.
    etag: String,
    received: u64,
    attempt: u32,
    body: ByteStream,
}

impl BodyReader {
    /// The next chunk; a body that breaks off is requested again from the first byte not
    /// yet received (up to [`BODY_ATTEMPTS`] reads in all).
    async fn next_chunk(mut self) -> Result<Option<(Bytes, Self)>, StorageError> {
        loop {
            match self.body.next().await {
                None => return Ok(None),
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    return Ok(Some((chunk, self)));
                }
                Some(Err(e)) if self.attempt < BODY_ATTEMPTS => {
                    let (bucket, key) = (&self.bucket, &self.key);
                    tracing::warn!(%bucket, %key, attempt = self.attempt, received = self.received, error = %e, "response body broke off; resuming");
                    self.attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(self.attempt))).await;
                    let resume = Some((self.received, self.etag.as_str()));
                    let endpoint = self.endpoint.as_deref();
                    self.body = get_object(&self.client, endpoint, bucket, key, resume)
                        .await?
                        .body;
                }
                Some(Err(e)) => return Err(body_broke_off(&self.bucket, &self.key, e)),
            }
        }
    }
}

/// GetObject of `key`; with `resume`, only the bytes from the given offset on, and only
/// of the version with the given ETag.
async fn get_object(
    client: &Client,
    endpoint: Option<&str>,
    bucket: &BucketName,
    key: &ObjectKey,
    resume: Option<(u64, &str)>,
) -> Result<GetObjectOutput, StorageError> {
    client
        .get_object()
        .bucket(bucket.as_str())
        .key(key.as_str())
        .set_range(resume.map(|(from, _)| format!("bytes={from}-")))
        .set_if_match(resume.map(|(_, etag)| format!("\"{etag}\"")))
        .send()
        .await
        .map_err(|e| classify(endpoint, "get", bucket, key.as_str(), e))
}

/// The error of a body that broke off on every attempt.
fn body_broke_off(
    bucket: &BucketName,
    key: &ObjectKey,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StorageError {
    StorageError::Service {
        operation: "get",
        bucket: bucket.to_string(),
        key: key.to_string(),
        kind: FailureKind::BrokenResponse {
            attempts: BODY_ATTEMPTS,
        },
        detail: Some(Box::new(e)),
    }
}

fn to_chrono(t: Option<&aws_smithy_types::DateTime>) -> DateTime<Utc> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

fn unquote(etag: Option<&str>) -> String {
    etag.unwrap_or_default().trim_matches('"').to_owned()
}

/// Maps an SDK error onto the port's errors by S3 error code and HTTP status; `endpoint`
/// is where the store sends requests (`None`: AWS's own), for "connection refused by …".
/// Adds `Content-MD5` of the body. S3 requires an integrity header on DeleteObjects and
/// accepts the SDK's CRC32 in its place, but MinIO, Ceph and other S3-compatible stores
/// accept only Content-MD5 (with `aws.checksums_when_required` the SDK would send none).
fn add_content_md5(request: &mut aws_sdk_s3::config::http::HttpRequest) {
    if let Some(body) = request.body().bytes() {
        let digest = aws_smithy_types::base64::encode(Md5::digest(body));
        request.headers_mut().insert("Content-MD5", digest);
    }
}

pub(crate) fn classify<E>(
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
            let output =
                get_object(&self.client, self.endpoint.as_deref(), bucket, key, None).await?;
            let meta = object_meta(key, &output);
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
                Err(e) => return Err(body_broke_off(bucket, key, e)),
            }
        }
    }

    async fn get_stream(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<ObjectStream, StorageError> {
        let output = get_object(&self.client, self.endpoint.as_deref(), bucket, key, None).await?;
        let meta = object_meta(key, &output);
        let reader = BodyReader {
            client: self.client.clone(),
            endpoint: self.endpoint.clone(),
            bucket: bucket.clone(),
            key: key.clone(),
            etag: meta.etag.clone(),
            received: 0,
            attempt: 1,
            body: output.body,
        };
        Ok(ObjectStream {
            meta,
            body: futures::stream::try_unfold(reader, BodyReader::next_chunk).boxed(),
        })
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
    ) -> Result<WrittenObject, StorageError> {
        let size = body.len() as u64;
        let etag = self
            .put_body(bucket, key, ByteStream::from(body), options)
            .await?;
        Ok(WrittenObject {
            key: key.clone(),
            etag,
            size,
        })
    }

    async fn put_file(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        source: &Path,
        options: &PutOptions,
    ) -> Result<WrittenObject, StorageError> {
        let size = tokio::fs::metadata(source)
            .await
            .map_err(file_error("read", source))?
            .len();
        let part = self.multipart.part_bytes(size)?;
        // A conditional write must be one request (the alert ledger's are small).
        let etag = if size > self.multipart.threshold_mib * MIB
            && options.condition == PutCondition::None
        {
            self.put_multipart(bucket, key, source, size, part, options)
                .await?
        } else {
            let body = ByteStream::read_from()
                .path(source)
                .length(Length::Exact(size))
                .buffer_size(FILE_BUFFER)
                .build()
                .await
                .map_err(|e| file_error("read", source)(std::io::Error::other(e)))?;
            self.put_body(bucket, key, body, options).await?
        };
        Ok(WrittenObject {
            key: key.clone(),
            etag,
            size,
        })
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
                .customize()
                .mutate_request(add_content_md5)
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
                        )
                        .into(),
                    },
                    detail: None,
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl BucketAdmin for S3Store {
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
                let name = BucketName::new(b.name()?).ok()?;
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
}

#[async_trait]
impl ObjectAcls for S3Store {
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
}

#[async_trait]
impl UrlSigner for S3Store {
    fn public_url(&self, bucket: &BucketName, key: &ObjectKey) -> String {
        self.url_of(bucket, key)
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
