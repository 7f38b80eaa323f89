//! Amazon Rekognition behind the [`ImageLabeler`] and [`TextDetector`] ports.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_rekognition::config::http::HttpResponse;
use aws_sdk_rekognition::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rekognition::primitives::Blob;
use aws_sdk_rekognition::types::{Image, S3Object, TextTypes};
use aws_sdk_rekognition::Client;
use gid_storage::{ObjectStore, StorageError};

use super::gate::Gate;
use super::{
    client_config, connect_and_counters, malformed, preflight_answer, service_error,
    AwsEnrichSettings,
};
use crate::ports::{
    BoundingBox, EngineId, ImageLabel, ImageLabeler, ImageRef, TextDetection, TextDetector,
    TextKind,
};
use crate::EnrichError;

const ENGINE: &str = "aws-rekognition";
const LABELS: &str = "DetectLabels";
const TEXT: &str = "DetectText";
/// Rekognition's limit on an image sent as bytes (an `S3Object` may be up to 15 MB).
pub const REKOGNITION_MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// Amazon Rekognition behind the [`ImageLabeler`] (`DetectLabels`) and [`TextDetector`]
/// (`DetectText`) ports. Rekognition reads the image from S3 itself (`Image.S3Object`), so
/// the image must be in a bucket of the client's region that the caller's credentials can
/// read; gid never downloads it. Images in a store Rekognition cannot reach (the local
/// backend's folders) are read through that store and sent as bytes instead
/// ([`AwsRekognition::sending_bytes_from`]), up to [`REKOGNITION_MAX_IMAGE_BYTES`].
///
/// Errors: an object Rekognition cannot fetch (`InvalidS3ObjectException`: missing key,
/// but also no read permission or another region — Rekognition does not tell them apart)
/// is [`StorageError::NoSuchKey`], as the local labeller reports a missing object; an
/// image it cannot decode or that is too large is [`EnrichError::Unsupported`].
#[derive(Debug)]
pub struct AwsRekognition {
    client: Client,
    gate: Gate,
    settings: AwsEnrichSettings,
    /// Where images are read when Rekognition cannot fetch them itself.
    images: Option<Arc<dyn ObjectStore>>,
}

impl AwsRekognition {
    /// The client of the process's shared AWS configuration, with the adapter's own
    /// endpoint, retries, timeouts and pace.
    pub fn new(aws: &gid_aws::AwsContext, settings: &AwsEnrichSettings) -> Self {
        let (settings, gate) = settings.admission(aws, gid_aws::Service::Rekognition);
        let config = client_config!(aws_sdk_rekognition, aws, settings, gate);
        Self {
            client: Client::from_conf(config),
            gate,
            settings,
            images: None,
        }
    }

    /// Reads each image through `store` and sends its bytes, for images Rekognition
    /// cannot fetch from S3 itself (the local backend's folders).
    pub fn sending_bytes_from(mut self, store: Arc<dyn ObjectStore>) -> Self {
        self.images = Some(store);
        self
    }

    /// The image as Rekognition receives it: an `S3Object` it fetches, or the bytes read
    /// here. A photo over the bytes limit is refused as Rekognition would refuse it
    /// (`ImageTooLargeException`: not transient), so a run records that photo as
    /// unreadable and goes on with the others.
    async fn image(&self, operation: &'static str, image: &ImageRef) -> Result<Image, EnrichError> {
        let Some(store) = &self.images else {
            return Ok(s3_image(image));
        };
        let object = store.get(&image.bucket, &image.key).await?;
        if object.body.len() > REKOGNITION_MAX_IMAGE_BYTES {
            return Err(EnrichError::Service {
                engine: ENGINE.to_owned(),
                operation,
                message: format!(
                    "{} is {} bytes, over the 5 MB Rekognition accepts as bytes: store the photos in S3 (Rekognition reads up to 15 MB there) or make this one smaller",
                    s3_url(image),
                    object.body.len()
                ),
                transient: false,
                detail: None,
            });
        }
        Ok(Image::builder()
            .bytes(Blob::new(object.body.to_vec()))
            .build())
    }

    connect_and_counters!(
        "`DetectLabels` and `DetectText` operations issued so far (one per image and operation)."
    );

    /// Whether `DetectLabels` can be used (endpoint, credentials, permission), asked with
    /// one byte that is no image, which Rekognition refuses as invalid without billing.
    pub async fn preflight(&self) -> Result<(), EnrichError> {
        let answer = self
            .client
            .detect_labels()
            .image(Image::builder().bytes(Blob::new(vec![0])).build())
            .send()
            .await;
        preflight_answer(ENGINE, LABELS, &self.settings, answer)
    }

    fn error<E>(
        &self,
        operation: &'static str,
        image: &ImageRef,
        err: SdkError<E, HttpResponse>,
    ) -> EnrichError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match err.code() {
            Some("InvalidS3ObjectException") => StorageError::NoSuchKey {
                bucket: image.bucket.clone(),
                key: image.key.as_str().to_owned(),
            }
            .into(),
            Some(code @ ("InvalidImageFormatException" | "ImageTooLargeException")) => {
                EnrichError::Unsupported {
                    engine: ENGINE.to_owned(),
                    what: format!(
                        "{}: Rekognition cannot read this image ({code}: {})",
                        s3_url(image),
                        err.message().unwrap_or("no message")
                    ),
                }
            }
            _ => service_error(ENGINE, operation, &s3_url(image), &self.settings, err),
        }
    }
}

fn s3_url(image: &ImageRef) -> String {
    format!("s3://{}/{}", image.bucket, image.key.as_str())
}

fn s3_image(image: &ImageRef) -> Image {
    Image::builder()
        .s3_object(
            S3Object::builder()
                .bucket(image.bucket.as_str())
                .name(image.key.as_str())
                .build(),
        )
        .build()
}

#[async_trait]
impl ImageLabeler for AwsRekognition {
    fn engine(&self) -> EngineId {
        EngineId(ENGINE.into())
    }

    async fn labels(
        &self,
        image: &ImageRef,
        max_labels: usize,
        min_confidence: f32,
    ) -> Result<Vec<ImageLabel>, EnrichError> {
        let sent = self.image(LABELS, image).await?;
        let _permit = self.gate.enter().await;
        let answer = self
            .client
            .detect_labels()
            .image(sent)
            .max_labels(i32::try_from(max_labels).unwrap_or(i32::MAX))
            .min_confidence(min_confidence)
            .send()
            .await
            .map_err(|err| self.error(LABELS, image, err))?;
        answer
            .labels()
            .iter()
            .map(|label| match (label.name(), label.confidence()) {
                (Some(name), Some(confidence)) => Ok(ImageLabel {
                    name: name.to_owned(),
                    confidence,
                }),
                _ => Err(malformed(
                    ENGINE,
                    LABELS,
                    format!("{}: a label without Name or Confidence", s3_url(image)),
                )),
            })
            .collect()
    }
}

#[async_trait]
impl TextDetector for AwsRekognition {
    fn engine(&self) -> EngineId {
        EngineId(ENGINE.into())
    }

    async fn detect_text(&self, image: &ImageRef) -> Result<Vec<TextDetection>, EnrichError> {
        let sent = self.image(TEXT, image).await?;
        let _permit = self.gate.enter().await;
        let answer = self
            .client
            .detect_text()
            .image(sent)
            .send()
            .await
            .map_err(|err| self.error(TEXT, image, err))?;
        answer
            .text_detections()
            .iter()
            .enumerate()
            .map(|(n, detection)| {
                let missing = |what: &str| {
                    malformed(
                        ENGINE,
                        TEXT,
                        format!("{}: text detection {n} has no {what}", s3_url(image)),
                    )
                };
                let kind = match detection.r#type().ok_or_else(|| missing("Type"))? {
                    TextTypes::Line => TextKind::Line,
                    TextTypes::Word => TextKind::Word,
                    other => {
                        return Err(malformed(
                            ENGINE,
                            TEXT,
                            format!("{}: unknown text type {other}", s3_url(image)),
                        ))
                    }
                };
                let bounds = detection
                    .geometry()
                    .and_then(|g| g.bounding_box())
                    .ok_or_else(|| missing("Geometry.BoundingBox"))?;
                let bounding_box =
                    match (bounds.left(), bounds.top(), bounds.width(), bounds.height()) {
                        (Some(left), Some(top), Some(width), Some(height)) => BoundingBox {
                            left,
                            top,
                            width,
                            height,
                        },
                        _ => return Err(missing("complete BoundingBox")),
                    };
                Ok(TextDetection {
                    text: detection
                        .detected_text()
                        .ok_or_else(|| missing("DetectedText"))?
                        .to_owned(),
                    kind,
                    confidence: detection
                        .confidence()
                        .ok_or_else(|| missing("Confidence"))?,
                    bounding_box,
                })
            })
            .collect()
    }
}
