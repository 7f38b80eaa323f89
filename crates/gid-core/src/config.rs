use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{BucketName, Layout, LayoutError};

/// The defaults shipped inside the binary, so gid runs from any directory.
const EMBEDDED_DEFAULTS: &str = include_str!("../../../config/default.toml");

/// Which backend family runs the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Offline: buckets are folders on disk.
    #[default]
    Local,
    /// AWS or any S3-compatible endpoint, through the AWS SDK.
    Aws,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Local => "local",
            Profile::Aws => "aws",
        }
    }
}

impl std::str::FromStr for Profile {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "local" => Ok(Profile::Local),
            "aws" => Ok(Profile::Aws),
            other => Err(ConfigError::Profile(other.to_owned())),
        }
    }
}

/// Canned access for published objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Acl {
    #[default]
    Private,
    PublicRead,
}

impl Acl {
    /// The canned-ACL header value S3 uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Acl::Private => "private",
            Acl::PublicRead => "public-read",
        }
    }
}

impl std::str::FromStr for Acl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "private" => Ok(Acl::Private),
            "public-read" => Ok(Acl::PublicRead),
            other => Err(format!("unknown ACL `{other}`: use private or public-read")),
        }
    }
}

/// What publishing does when the bucket refuses ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AclFallback {
    /// Publish without ACLs; the index links to presigned URLs.
    Presign,
    /// Publish without ACLs; plain links, readable through a bucket policy.
    BucketPolicy,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Buckets {
    pub requests: BucketName,
    pub reports: BucketName,
    pub images: BucketName,
    pub staging: BucketName,
    pub work: BucketName,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LayoutConfig {
    pub month_prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LocalConfig {
    pub data_root: PathBuf,
}

/// AWS settings that are not credentials. Credentials come only from the standard chain.
#[derive(Debug, Clone, Deserialize)]
pub struct AwsConfig {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub force_path_style: Option<bool>,
    pub checksums_when_required: bool,
    pub max_attempts: u32,
    pub operation_timeout_secs: u64,
    /// Uploads of files larger than this many MiB are multipart uploads.
    pub multipart_threshold_mb: u64,
    /// The part size of a multipart upload, in MiB (S3: at least 5).
    pub multipart_part_mb: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IngestConfig {
    pub concurrency: usize,
    pub suffix: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PublishConfig {
    pub acl: Acl,
    pub acl_fallback: AclFallback,
    pub presign_expires_secs: u64,
    pub index_cache_control: String,
    pub report_cache_control: String,
}

/// One alert threshold as configured (validated into `gid_notify::Threshold` by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ThresholdConfig {
    pub service_name: String,
    pub above: u64,
    pub topic: String,
    pub label: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NotifyConfig {
    pub outbox_dir: PathBuf,
    pub contacts_key: String,
    pub ledger_name: String,
    pub keep_topics: Vec<String>,
    pub sns_endpoint_url: Option<String>,
    pub thresholds: Vec<ThresholdConfig>,
}

/// List prices for the `--dry-run` cost estimate of enrichment on AWS.
#[derive(Debug, Clone, Deserialize)]
pub struct EnrichPrices {
    pub translate_per_million_characters: f64,
    pub comprehend_per_unit: f64,
    pub rekognition_per_image: f64,
}

/// Pacing of the AWS enrichment adapters (region, attempts and timeout come from `[aws]`).
#[derive(Debug, Clone, Deserialize)]
pub struct EnrichAwsConfig {
    pub endpoint_url: Option<String>,
    pub max_concurrency: usize,
    /// 0: unpaced.
    pub requests_per_second: u32,
    pub initial_backoff_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnrichConfig {
    pub service_name: String,
    pub max_labels: usize,
    pub min_confidence: f32,
    pub scooter_labels: Vec<String>,
    pub scooter_confidence: f32,
    pub language_min_score: f32,
    pub image_concurrency: usize,
    pub cache_name: String,
    pub prices: EnrichPrices,
    pub aws: EnrichAwsConfig,
}

/// The whole configuration, loaded once at start-up.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub profile: Profile,
    pub buckets: Buckets,
    pub layout: LayoutConfig,
    pub local: LocalConfig,
    pub aws: AwsConfig,
    pub ingest: IngestConfig,
    pub publish: PublishConfig,
    pub notify: NotifyConfig,
    pub enrich: EnrichConfig,
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown profile `{0}`: use local or aws")]
    Profile(String),
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("configuration: {key} must be {expected}")]
    Invalid {
        key: &'static str,
        expected: &'static str,
    },
}

impl Config {
    /// Loads, lowest precedence first: the embedded defaults, `config/default.toml` and
    /// `config/<profile>.toml` under `config_dir` (when present), `file` (must exist),
    /// then `GID__…` environment variables. `profile` (from the command line) wins over all.
    pub fn load(
        config_dir: &Path,
        profile: Option<Profile>,
        file: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        let profile = match profile {
            Some(p) => p,
            None => match std::env::var("GID__PROFILE") {
                Ok(p) => p.parse()?,
                Err(_) => Profile::Local,
            },
        };
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::from(config_dir.join("default.toml")).required(false))
            .add_source(
                config::File::from(config_dir.join(format!("{}.toml", profile.as_str())))
                    .required(false),
            );
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            builder = builder.add_source(config::File::from(file));
        }
        let config: Config = builder
            .add_source(
                config::Environment::with_prefix("GID")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .set_override("profile", profile.as_str())?
            .build()?
            .try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.layout()?;
        if self.ingest.concurrency == 0 {
            return Err(ConfigError::Invalid {
                key: "ingest.concurrency",
                expected: "at least 1",
            });
        }
        for (key, name) in [
            ("notify.ledger_name", &self.notify.ledger_name),
            ("enrich.cache_name", &self.enrich.cache_name),
        ] {
            if name.contains('/') || crate::ObjectKey::new(name.clone()).is_err() {
                return Err(ConfigError::Invalid {
                    key,
                    expected: "a plain file name such as alerts.json",
                });
            }
        }
        if self.enrich.aws.max_concurrency == 0 || self.enrich.image_concurrency == 0 {
            return Err(ConfigError::Invalid {
                key: "enrich.aws.max_concurrency / enrich.image_concurrency",
                expected: "at least 1",
            });
        }
        if self.aws.max_attempts == 0 {
            return Err(ConfigError::Invalid {
                key: "aws.max_attempts",
                expected: "at least 1",
            });
        }
        Ok(())
    }

    /// The key layout, parsed from `layout.month_prefix`.
    pub fn layout(&self) -> Result<Layout, LayoutError> {
        Layout::new(self.layout.month_prefix.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_name_the_course_buckets() {
        let dir = Path::new("/nonexistent");
        let c = Config::load(dir, Some(Profile::Local), None).unwrap();
        assert_eq!(c.buckets.requests.as_str(), "gid-requests");
        assert_eq!(c.buckets.reports.as_str(), "gid-reports");
        assert_eq!(c.buckets.images.as_str(), "gid-images");
        assert_eq!(c.buckets.staging.as_str(), "gid-staging");
        assert_eq!(c.publish.acl, Acl::PublicRead);
        let t = &c.notify.thresholds;
        assert_eq!(
            (t[0].service_name.as_str(), t[0].above, t[0].topic.as_str()),
            ("Illegal Dumping", 100, "trash")
        );
        assert_eq!(
            (t[1].service_name.as_str(), t[1].above, t[1].topic.as_str()),
            ("Pothole", 30, "streets")
        );
        assert_eq!(c.profile, Profile::Local);
    }

    #[test]
    fn a_config_file_overrides_defaults_and_bad_values_are_named() {
        let dir = std::env::temp_dir().join(format!("gid-core-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("custom.toml");
        std::fs::write(&file, "[buckets]\nreports = \"city-reports\"\n").unwrap();
        let c = Config::load(&dir, Some(Profile::Aws), Some(&file)).unwrap();
        assert_eq!(c.buckets.reports.as_str(), "city-reports");
        assert_eq!(c.profile, Profile::Aws);

        std::fs::write(&file, "[buckets]\nreports = \"Bad_Name\"\n").unwrap();
        let err = Config::load(&dir, None, Some(&file))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Bad_Name"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = Config::load(Path::new("."), None, Some(Path::new("/no/such.toml")));
        assert!(matches!(err, Err(ConfigError::MissingFile(_))));
    }
}
