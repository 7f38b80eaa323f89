use std::path::PathBuf;

/// What went wrong in an enrichment engine; every variant says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrichError {
    /// The image model's weights file is not where it was looked for.
    #[error(
        "image model weights not found at {}: run `make models` to install them \
         (or set GID_IMAGE_MODEL to the .safetensors file)",
        path.display()
    )]
    ModelNotFound {
        /// Where the weights were looked for.
        path: PathBuf,
    },
    /// The weights file exists but could not be read.
    #[error("could not read image model weights at {}: {source}", path.display())]
    ModelRead {
        /// The weights file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The weights file is not the one `scripts/prepare-image-model.py` writes.
    #[error(
        "image model weights at {} are not usable: {reason}; run `make models` to regenerate them",
        path.display()
    )]
    ModelInvalid {
        /// The weights file.
        path: PathBuf,
        /// What is wrong with it (a missing tensor, a wrong shape).
        reason: String,
    },
    /// The image bytes are not a JPEG or PNG this build can decode (or exceed the size limits).
    #[error("could not decode the image ({bytes} bytes; JPEG or PNG expected): {source}")]
    ImageDecode {
        /// The image's size.
        bytes: usize,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// A local engine failed (not installed, crashed, answered nonsense).
    #[error("{engine}: {message}")]
    Engine {
        /// The engine, e.g. `tesseract`.
        engine: String,
        /// What went wrong, in its words.
        message: String,
    },
    /// The engine cannot do this at all (e.g. no translation pair for a language).
    #[error("{engine}: {what}")]
    Unsupported {
        /// The engine.
        engine: String,
        /// What it cannot do, e.g. the language pair.
        what: String,
    },
    /// Reading an image or the cache from the object store failed.
    #[error(transparent)]
    Storage(#[from] gid_storage::StorageError),
    /// An AWS service refused or failed a request, after retries.
    #[error("{engine} {operation}: {message}")]
    Service {
        /// The service, e.g. `Comprehend`.
        engine: String,
        /// The API call, e.g. `DetectSentiment`.
        operation: &'static str,
        /// The service's reason.
        message: String,
        /// Whether retrying later may help (throttling, 5xx, timeouts).
        transient: bool,
        /// The client's own error (the SDK's detail, printed at `-v`).
        #[source]
        detail: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}
