use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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
    /// The name as `--profile` and `GID__PROFILE` take it.
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
    /// Only the bucket owner reads the object.
    #[default]
    Private,
    /// Anyone reads the object (needs a bucket with ACLs enabled).
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

/// How the public reads the report site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SiteAccess {
    /// Objects without ACLs, read through a bucket policy granting `s3:GetObject` on the
    /// site's keys (`gid-admin site init`): how buckets created since April 2023 (ACLs
    /// disabled, Block Public Access on) are made public.
    BucketPolicy,
    /// Objects put `public-read`: buckets with ACLs enabled and public ACLs allowed.
    Acl,
    /// A private site: objects without ACLs, the index links to presigned URLs that expire.
    Presign,
}

impl SiteAccess {
    /// The value as `publish.access` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SiteAccess::BucketPolicy => "bucket-policy",
            SiteAccess::Acl => "acl",
            SiteAccess::Presign => "presign",
        }
    }
}

impl std::str::FromStr for SiteAccess {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bucket-policy" => Ok(SiteAccess::BucketPolicy),
            "acl" => Ok(SiteAccess::Acl),
            "presign" => Ok(SiteAccess::Presign),
            other => Err(format!(
                "unknown site access `{other}`: use bucket-policy, acl or presign"
            )),
        }
    }
}

/// The buckets gid reads and writes (`[buckets]`).
#[derive(Debug, Clone, Deserialize)]
pub struct Buckets {
    /// The raw monthly CSV exports.
    pub requests: BucketName,
    /// The public report site.
    pub reports: BucketName,
    /// The requests' photos, for enrichment.
    pub images: BucketName,
    /// Operator inputs such as contacts.csv.
    pub staging: BucketName,
    /// The stages' outputs, quarantine, manifests and ledgers.
    pub work: BucketName,
}

/// Where a month lives inside a bucket (`[layout]`).
#[derive(Debug, Clone, Deserialize)]
pub struct LayoutConfig {
    /// The month's prefix template, e.g. `{year}/{mon}/` (see [`Layout`]).
    pub month_prefix: String,
}

/// The local backend (`[local]`).
#[derive(Debug, Clone, Deserialize)]
pub struct LocalConfig {
    /// The folder whose subfolders are the buckets.
    pub data_root: PathBuf,
}

/// AWS settings that are not credentials. Credentials come only from the standard chain.
#[derive(Debug, Clone, Deserialize)]
pub struct AwsConfig {
    /// `None`: the SDK's region chain (`AWS_REGION`, the profile).
    pub region: Option<String>,
    /// An S3-compatible endpoint (moto, MinIO) instead of AWS's.
    pub endpoint_url: Option<String>,
    /// Path-style bucket addressing; `None`: on exactly when `endpoint_url` is set.
    pub force_path_style: Option<bool>,
    /// Send request checksums only when an operation requires them (for stores that
    /// reject the SDK's default CRC32 aws-chunked uploads).
    pub checksums_when_required: bool,
    /// `None`: `AWS_MAX_ATTEMPTS`, else the profile's `max_attempts`, else the SDK's 3.
    pub max_attempts: Option<u32>,
    /// `None`: `AWS_RETRY_MODE`, else the profile's `retry_mode`, else standard.
    pub retry_mode: Option<RetryModeConfig>,
    /// Longest one operation may take, retries included, in seconds.
    pub operation_timeout_secs: u64,
    /// Uploads of files larger than this many MiB are multipart uploads.
    pub multipart_threshold_mb: u64,
    /// The part size of a multipart upload, in MiB (S3: at least 5).
    pub multipart_part_mb: u64,
}

/// The SDK's retry strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryModeConfig {
    /// Exponential backoff with jitter.
    Standard,
    /// Standard, plus a client-side rate limiter that slows down after throttling.
    Adaptive,
}

/// What ingest does with a row whose `date_requested` is empty or outside the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutOfMonth {
    /// Refuse the row: it goes to the month's quarantine with its reason.
    #[default]
    Quarantine,
    /// Count the row in the month anyway (the ingest report still counts such rows).
    Keep,
}

impl OutOfMonth {
    /// The value as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            OutOfMonth::Quarantine => "quarantine",
            OutOfMonth::Keep => "keep",
        }
    }
}

/// The ingest stage (`[ingest]`).
#[derive(Debug, Clone, Deserialize)]
pub struct IngestConfig {
    /// Objects downloaded and parsed at once for one month.
    pub concurrency: usize,
    /// Bytes (MiB) of a month's exports downloaded and not yet parsed at any time: a file
    /// is requested only when its size fits (raised per month to one of its largest files
    /// per core, so that every core has a file to parse).
    pub max_inflight_mb: u64,
    /// Only keys ending with this are exports (e.g. `.csv`).
    pub suffix: String,
    /// Header columns a file must have to be read as an export (after trimming and
    /// lowercasing, as headers are); a file without one of them is skipped whole.
    pub required_columns: Vec<String>,
    /// A file whose header has more columns than this is skipped whole.
    pub max_columns: usize,
    /// What happens to rows dated outside the month.
    pub out_of_month: OutOfMonth,
    /// Exports of at least this many bytes keep their parsed rows in the work bucket,
    /// keyed by their ETag, so a rerun reads only the files that changed.
    pub part_min_bytes: u64,
}

/// The publish stage and the report site (`[publish]`).
#[derive(Debug, Clone, Deserialize)]
pub struct PublishConfig {
    /// How the public reads the site.
    pub access: SiteAccess,
    /// The reports bucket serves a static website (`gid-admin site init --website`): runs
    /// print the website endpoint as the site's URL.
    pub website: bool,
    /// How long the index's presigned links work (`access = "presign"`), in seconds.
    pub presign_expires_secs: u64,
    /// `Cache-Control` of index.html, which changes with every month published.
    pub index_cache_control: String,
    /// `Cache-Control` of a month's report files.
    pub report_cache_control: String,
    /// Service name → the city's information page for it, linked from the HTML report
    /// (names matched without regard to case). Empty by default: a TOML table with no
    /// keys does not survive the merge of sources.
    #[serde(default)]
    pub service_info: BTreeMap<String, String>,
    /// The information page of every service `service_info` does not name.
    pub service_info_default: String,
    /// Languages the month pages are published in: `en`, the source, at the usual keys;
    /// each other one translated through the Translator port under its own folder
    /// (`es/2019/jan/final_report.html`).
    pub languages: Vec<String>,
}

/// Whether `url` can be a link of the public site: http or https, with a host, and no
/// character a browser would have to guess at.
fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

impl PublishConfig {
    /// The languages pages are translated into: `languages` but English (the pages' source
    /// language), in the configured order.
    pub fn translated_languages(&self) -> Vec<&str> {
        self.languages
            .iter()
            .map(String::as_str)
            .filter(|l| *l != "en")
            .collect()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let codes_ok = self
            .languages
            .iter()
            .all(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_lowercase()));
        let mut distinct = self.languages.clone();
        distinct.sort();
        distinct.dedup();
        if !codes_ok
            || distinct.len() != self.languages.len()
            || !self.languages.iter().any(|l| l == "en")
        {
            return Err(ConfigError::Invalid {
                key: "publish.languages",
                expected: "a list of distinct ISO 639-1 codes that includes \"en\" (the pages' source language), e.g. [\"en\", \"es\"]",
            });
        }
        let bad = std::iter::once((
            "publish.service_info_default".to_owned(),
            &self.service_info_default,
        ))
        .chain(
            self.service_info
                .iter()
                .map(|(name, url)| (format!("publish.service_info.\"{name}\""), url)),
        )
        .find(|(_, url)| !is_web_url(url));
        match bad {
            Some((key, url)) => Err(ConfigError::NotAWebUrl {
                key,
                value: url.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// One alert threshold as configured (validated into `gid_notify::Threshold` by the caller).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ThresholdConfig {
    /// The service counted, as the exports spell it.
    pub service_name: String,
    /// Alert when a month's count is strictly above this.
    pub above: u64,
    /// The short name (without `notify.topic_prefix`) of the topic alerted.
    pub topic: String,
    /// The name the message uses; `None`: the service name.
    pub label: Option<String>,
}

/// Alerts, topics and contacts (`[notify]`).
#[derive(Debug, Clone, Deserialize)]
pub struct NotifyConfig {
    /// Local profile: the folder of topics, subscriptions and delivered messages.
    pub outbox_dir: PathBuf,
    /// The contacts CSV's key in the staging bucket.
    pub contacts_key: String,
    /// The file name of a month's alert ledger in the work bucket.
    pub ledger_name: String,
    /// Short names (without the prefix) of gid's topics that `topic prune` keeps.
    pub keep_topics: Vec<String>,
    /// An SNS-compatible endpoint (moto) instead of AWS's.
    pub sns_endpoint_url: Option<String>,
    /// The alerts checked against each month's counts.
    pub thresholds: Vec<ThresholdConfig>,
    /// Send alerts to topics nobody has a confirmed subscription to.
    pub allow_unsubscribed: bool,
    /// How long an alert's claim holds without renewal.
    pub claim_lease_secs: u64,
    /// Put before every topic name gid creates or looks up (`trash` → `gid-trash`), so
    /// gid's topics are told apart from everyone else's in a shared account.
    pub topic_prefix: String,
    /// Department (as contacts.csv writes it; matched without regard to case and spaces)
    /// → the short name of the topic its contacts are subscribed to.
    pub departments: BTreeMap<String, String>,
    /// The topic of every department that `departments` does not name.
    pub default_topic: String,
    /// The attributes of every SMS sent.
    pub sms: SmsConfig,
}

/// The longest `notify.topic_prefix`: SNS names have 256 characters, the rest is the name's.
pub const MAX_TOPIC_PREFIX_LEN: usize = 64;

impl NotifyConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let prefix = &self.topic_prefix;
        let prefix_ok = (1..=MAX_TOPIC_PREFIX_LEN).contains(&prefix.len())
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && (prefix.ends_with('-') || prefix.ends_with('_'));
        if !prefix_ok {
            return Err(ConfigError::Invalid {
                key: "notify.topic_prefix",
                expected: "1 to 64 characters of A-Z, a-z, 0-9, '_' and '-' ending in '-' or '_' (e.g. \"gid-\"), so that topic prune can tell gid's topics from the others in the account",
            });
        }
        if let Some(sender_id) = &self.sms.sender_id {
            let ok = (1..=11).contains(&sender_id.len())
                && sender_id.bytes().all(|b| b.is_ascii_alphanumeric())
                && sender_id.bytes().any(|b| b.is_ascii_alphabetic());
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "notify.sms.sender_id",
                    expected: "1 to 11 letters and digits with at least one letter (e.g. \"SanDiegoGID\"), or left out",
                });
            }
        }
        if let Some(number) = &self.sms.origination_number {
            let digits = number.strip_prefix('+').unwrap_or_default();
            let ok = (8..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "notify.sms.origination_number",
                    expected: "a phone number in E.164 form ('+', the country code and the number, no spaces, e.g. \"+16195550100\"), or left out",
                });
            }
        }
        Ok(())
    }
}

/// How SNS treats an SMS: the `AWS.SNS.SMS.SMSType` message attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum SmsType {
    /// Critical messages, delivered with the highest reliability (and price).
    #[default]
    Transactional,
    /// Non-critical messages, delivered at the lowest cost; the account's default.
    Promotional,
}

impl SmsType {
    /// The value as SNS takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsType::Transactional => "Transactional",
            SmsType::Promotional => "Promotional",
        }
    }
}

impl fmt::Display for SmsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The attributes every SMS gid sends carries, directly or through a topic.
#[derive(Debug, Clone, Deserialize)]
pub struct SmsConfig {
    /// Transactional or promotional delivery.
    pub sms_type: SmsType,
    /// The alphabetic sender shown on the phone, where the country supports it.
    pub sender_id: Option<String>,
    /// The number (of the account's) that sends the SMS, in E.164.
    pub origination_number: Option<String>,
}

/// List prices for the `--dry-run` cost estimate of enrichment on AWS.
#[derive(Debug, Clone, Deserialize)]
pub struct EnrichPrices {
    /// Amazon Translate, USD per million characters.
    pub translate_per_million_characters: f64,
    /// Amazon Comprehend, USD per unit of 100 characters (at least 3 units a text).
    pub comprehend_per_unit: f64,
    /// Amazon Rekognition, USD per image.
    pub rekognition_per_image: f64,
}

/// Pacing of the AWS enrichment adapters (region, attempts and timeout come from `[aws]`).
#[derive(Debug, Clone, Deserialize)]
pub struct EnrichAwsConfig {
    /// An endpoint for the three services instead of AWS's; `None`: the SDK's
    /// (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Operations in flight per adapter.
    pub max_concurrency: usize,
    /// 0: unpaced.
    pub requests_per_second: u32,
    /// The first retry's backoff, in milliseconds (the SDK backs off exponentially from it).
    pub initial_backoff_ms: u64,
}

/// The scooter-pickups enrichment (`[enrich]`).
#[derive(Debug, Clone, Deserialize)]
pub struct EnrichConfig {
    /// The service whose requests are enriched, as the exports spell it.
    pub service_name: String,
    /// Labels asked per photo (Rekognition's MaxLabels).
    pub max_labels: usize,
    /// Labels below this confidence (0-100) are not returned (MinConfidence).
    pub min_confidence: f32,
    /// Label names that mean "a scooter is in the photo".
    pub scooter_labels: Vec<String>,
    /// Confidence (0-100) a scooter label needs to count.
    pub scooter_confidence: f32,
    /// Below this language-detection score (0.0-1.0) a description is treated as English.
    pub language_min_score: f32,
    /// Photos labelled at once.
    pub image_concurrency: usize,
    /// The file name of a month's engine-answer cache in the work bucket.
    pub cache_name: String,
    /// Which engines answer, apart from where the data is stored: `None` (the default)
    /// follows `profile`. `local` runs the offline engines over an S3 store (no per-call
    /// cost); `aws` asks Translate, Comprehend and Rekognition about a local folder.
    pub engines: Option<Profile>,
    /// List prices for the dry-run cost estimate.
    pub prices: EnrichPrices,
    /// Pacing of the AWS adapters.
    pub aws: EnrichAwsConfig,
}

/// When scheduled runs happen.
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleConfig {
    /// The time zone whose calendar `--month previous` and `--month current` follow (the
    /// city's: a run at 00:30 on the 1st in San Diego still belongs to the old month in UTC).
    pub time_zone: chrono_tz::Tz,
}

/// The whole configuration, loaded once at start-up.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The backend the ports run on.
    pub profile: Profile,
    /// `[buckets]`.
    pub buckets: Buckets,
    /// `[layout]`.
    pub layout: LayoutConfig,
    /// `[local]`.
    pub local: LocalConfig,
    /// `[aws]`.
    pub aws: AwsConfig,
    /// `[ingest]`.
    pub ingest: IngestConfig,
    /// `[publish]`.
    pub publish: PublishConfig,
    /// `[notify]`.
    pub notify: NotifyConfig,
    /// `[enrich]`.
    pub enrich: EnrichConfig,
    /// `[schedule]`.
    pub schedule: ScheduleConfig,
}

/// Why configuration could not be loaded. Each message is one complete sentence naming
/// the key, file or variable at fault; none carries a `source()`, so printing the error
/// with its causes (`{:#}`) shows it once.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--profile` or `GID__PROFILE` names no backend.
    #[error("unknown profile `{0}`: use local or aws")]
    Profile(String),
    /// The config crate's own message names the key and where its value came from.
    #[error("invalid configuration: {0}")]
    Load(config::ConfigError),
    /// The `--config FILE` is missing.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// The config directory named by the user is missing.
    #[error("config directory {0} does not exist: create it, or name the directory that holds default.toml and <profile>.toml")]
    MissingDir(PathBuf),
    /// The config directory named by the user is a file.
    #[error("config directory {0} is not a directory: name the directory that holds default.toml and <profile>.toml")]
    NotADir(PathBuf),
    /// A `GID__…` variable's value cannot be read as text.
    #[error("environment variable {0} is not valid UTF-8: set it to a UTF-8 value or unset it")]
    EnvNotUnicode(String),
    /// `layout.month_prefix` is not a usable template.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A value out of its range.
    #[error("configuration key {key} must be {expected}")]
    Invalid {
        /// The key, e.g. `notify.topic_prefix`.
        key: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
    },
    /// A link of the public site that is not an http(s) URL.
    #[error("configuration key {key} is `{value}`, which is not a web page: give an http:// or https:// URL such as \"https://www.sandiego.gov/get-it-done\"")]
    NotAWebUrl {
        /// The key, e.g. `publish.service_info."Pothole"`.
        key: String,
        /// The value as configured.
        value: String,
    },
    /// Keys that no part of gid reads.
    #[error("{0}")]
    UnknownKeys(UnknownKeys),
    /// Two bucket keys name one bucket whose contents would then mix.
    #[error("{first} and {second} are both `{bucket}`: {why}; give {second} a bucket of its own")]
    OverlappingBuckets {
        /// The first key, e.g. `buckets.requests`.
        first: &'static str,
        /// The key that should change.
        second: &'static str,
        /// The bucket both name.
        bucket: BucketName,
        /// What would go wrong.
        why: &'static str,
    },
}

/// Where a configuration key was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// A TOML file: config/default.toml, config/<profile>.toml or `--config FILE`.
    File(PathBuf),
    /// The defaults built into the binary (config/default.toml at build time).
    Embedded,
    /// A `GID__…` environment variable, by name.
    Env(String),
}

/// How an unknown key was written, so the message can spell the fix the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyForm {
    /// `key = value`, or an environment variable.
    Key,
    /// A table: `[section]`.
    Section,
    /// An array of tables: `[[section]]`.
    ArrayOfTables,
}

/// A key that no part of gid reads (a typo, or a setting that does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The file or variable that set it.
    pub origin: KeyOrigin,
    /// The key as gid reads it: `notify.thresholds[0].lable`, `bucket.reports`.
    pub key: String,
    /// Whether a file wrote it as a key or as a section.
    pub form: KeyForm,
    /// The nearest valid spelling, written the way the origin writes keys: `label`
    /// (the corrected name in a file), `[buckets]` (a section), `GID__BUCKETS__REPORTS`
    /// (a variable). `None` when no valid key is close.
    pub suggestion: Option<String>,
    /// The valid keys at the level where the key went wrong, listed when nothing is close.
    pub valid_here: Vec<&'static str>,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let file = match &self.origin {
            KeyOrigin::Env(var) => {
                write!(f, "environment variable {var} sets unknown key {key}")?;
                None
            }
            KeyOrigin::File(path) => Some(path.display().to_string()),
            KeyOrigin::Embedded => Some("the built-in defaults".to_owned()),
        };
        if let Some(file) = file {
            match self.form {
                KeyForm::Key => write!(f, "{file}: unknown key {key}")?,
                KeyForm::Section => write!(f, "{file}: unknown section [{key}]")?,
                KeyForm::ArrayOfTables => write!(f, "{file}: unknown section [[{key}]]")?,
            }
        }
        match &self.suggestion {
            Some(suggestion) => write!(f, ": did you mean {suggestion}?"),
            None => write!(
                f,
                ": remove it, or use one of {}",
                self.valid_here.join(", ")
            ),
        }
    }
}

/// Every unknown key of one load, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKeys(pub Vec<UnknownKey>);

impl fmt::Display for UnknownKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} unknown configuration keys:", all.len())?;
                for key in all {
                    write!(f, "\n  {key}")?;
                }
                Ok(())
            }
        }
    }
}

/// The environment variables that configure gid: `GID__` then the key's levels joined by
/// `__` (`GID__BUCKETS__REPORTS`). `GID_CONFIG_DIR`, `GID_MONTH_INDEX` and other
/// single-underscore `GID_` variables are flags of the binaries, not configuration.
const ENV_PREFIX: &str = "GID__";
const ENV_SEPARATOR: &str = "__";

/// The `GID__…` variables of an environment, by name, in name order.
fn config_variables(
    env: impl IntoIterator<Item = (OsString, OsString)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut vars = BTreeMap::new();
    for (name, value) in env {
        let name = name.to_string_lossy();
        // The same test the config crate makes: the prefix in any case.
        let is_config = name
            .get(..ENV_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX));
        if !is_config {
            continue;
        }
        let value = value
            .into_string()
            .map_err(|_| ConfigError::EnvNotUnicode(name.to_string()))?;
        vars.insert(name.into_owned(), value);
    }
    Ok(vars)
}

/// The configuration key an environment variable sets, one segment per level.
fn env_key(var: &str) -> Vec<String> {
    var[ENV_PREFIX.len()..]
        .to_lowercase()
        .split(ENV_SEPARATOR)
        .map(str::to_owned)
        .collect()
}

impl Config {
    /// The engine family that answers enrichment questions: `enrich.engines` when set,
    /// else the storage `profile`.
    pub fn engines(&self) -> Profile {
        self.enrich.engines.unwrap_or(self.profile)
    }

    /// Loads, lowest precedence first: the embedded defaults, `config/default.toml` and
    /// `config/<profile>.toml` under `config_dir`, `file`, then `GID__…` environment
    /// variables of this process. `profile` (from the command line) wins over all.
    ///
    /// `config_dir` was named by the user and must exist; `None` loads no files but
    /// `file` (the caller decides whether `./config` stands in). Keys that no part of
    /// gid reads are errors, all of them reported at once.
    pub fn load(
        config_dir: Option<&Path>,
        profile: Option<Profile>,
        file: Option<&Path>,
    ) -> Result<Self, ConfigError> {
        Self::load_with_env(config_dir, profile, file, std::env::vars_os())
    }

    /// [`Config::load`] with the environment given instead of read from the process,
    /// so tests need not change the process environment.
    pub fn load_with_env(
        config_dir: Option<&Path>,
        profile: Option<Profile>,
        file: Option<&Path>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Self, ConfigError> {
        let vars = config_variables(env)?;
        let profile = match profile {
            Some(p) => p,
            None => match vars.iter().find(|(name, _)| env_key(name) == ["profile"]) {
                Some((_, p)) => p.parse()?,
                None => Profile::Local,
            },
        };
        let mut files = Vec::new();
        if let Some(dir) = config_dir {
            if !dir.exists() {
                return Err(ConfigError::MissingDir(dir.to_owned()));
            }
            if !dir.is_dir() {
                return Err(ConfigError::NotADir(dir.to_owned()));
            }
            for name in [
                "default.toml".to_owned(),
                format!("{}.toml", profile.as_str()),
            ] {
                let path = dir.join(name);
                if path.is_file() {
                    files.push(path);
                }
            }
        }
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            files.push(file.to_owned());
        }

        let shape = config_shape();
        let mut unknown = Vec::new();
        let mut check = |source: &dyn config::Source, origin: KeyOrigin| {
            let table = source.collect().map_err(ConfigError::Load)?;
            unknown_in_table(shape, &table, &origin, &mut Vec::new(), &mut unknown);
            Ok::<_, ConfigError>(())
        };
        let embedded = config::File::from_str(EMBEDDED_DEFAULTS, config::FileFormat::Toml);
        check(&embedded, KeyOrigin::Embedded)?;
        let mut builder = config::Config::builder().add_source(embedded);
        for path in &files {
            let source = config::File::from(path.as_path()).format(config::FileFormat::Toml);
            check(&source, KeyOrigin::File(path.clone()))?;
            builder = builder.add_source(source);
        }
        for var in vars.keys() {
            if let Some(key) = unknown_in_env(shape, var) {
                unknown.push(key);
            }
        }
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownKeys(UnknownKeys(unknown)));
        }
        let config: Config = builder
            .add_source(
                config::Environment::with_prefix("GID")
                    .prefix_separator(ENV_SEPARATOR)
                    .separator(ENV_SEPARATOR)
                    .try_parsing(true)
                    .source(Some(vars.into_iter().collect())),
            )
            .set_override("profile", profile.as_str())
            .and_then(|b| b.build())
            .and_then(|c| c.try_deserialize())
            .map_err(ConfigError::Load)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.layout()?;
        if self.ingest.max_inflight_mb == 0 {
            return Err(ConfigError::Invalid {
                key: "ingest.max_inflight_mb",
                expected: "at least 1 (MiB of exports downloaded and not yet parsed)",
            });
        }
        if self.ingest.concurrency == 0 {
            return Err(ConfigError::Invalid {
                key: "ingest.concurrency",
                expected: "at least 1",
            });
        }
        if self
            .ingest
            .required_columns
            .iter()
            .any(|c| c.trim().is_empty())
        {
            return Err(ConfigError::Invalid {
                key: "ingest.required_columns",
                expected: "a list of column names without empty names, e.g. [\"service_request_id\", \"date_requested\", \"service_name\"]",
            });
        }
        if self.ingest.max_columns == 0
            || self.ingest.max_columns < self.ingest.required_columns.len()
        {
            return Err(ConfigError::Invalid {
                key: "ingest.max_columns",
                expected: "at least 1 and at least the number of ingest.required_columns",
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
        self.notify.validate()?;
        self.publish.validate()?;
        if self.notify.claim_lease_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "notify.claim_lease_secs",
                expected: "at least 1",
            });
        }
        if self.aws.max_attempts == Some(0) {
            return Err(ConfigError::Invalid {
                key: "aws.max_attempts",
                expected: "at least 1",
            });
        }
        self.check_buckets_apart()
    }

    /// Buckets whose contents would mix: ingest lists every object of a month's prefix in
    /// the requests bucket, and publish indexes every object of the reports bucket.
    fn check_buckets_apart(&self) -> Result<(), ConfigError> {
        let b = &self.buckets;
        let pairs = [
            (
                "buckets.requests",
                &b.requests,
                "buckets.reports",
                &b.reports,
                "gid would ingest its own outputs (the month's reports land under the month's export prefix)",
            ),
            (
                "buckets.requests",
                &b.requests,
                "buckets.work",
                &b.work,
                "gid would ingest its own outputs (the month's Parquet table, manifests and quarantine land under the month's export prefix)",
            ),
            (
                "buckets.reports",
                &b.reports,
                "buckets.work",
                &b.work,
                "the public site index would list gid's working files (manifests, and quarantined rows with their contents)",
            ),
        ];
        for (first, a, second, other, why) in pairs {
            if a == other {
                return Err(ConfigError::OverlappingBuckets {
                    first,
                    second,
                    bucket: a.clone(),
                    why,
                });
            }
        }
        Ok(())
    }

    /// The key layout, parsed from `layout.month_prefix`.
    pub fn layout(&self) -> Result<Layout, LayoutError> {
        Layout::new(self.layout.month_prefix.clone())
    }
}

/// What a configuration key holds, as the `Deserialize` impls of [`Config`] read it.
#[derive(Debug)]
enum Shape {
    /// A string, number, boolean or enum.
    Value,
    /// A struct: its field names, in declaration order.
    Table(Vec<(&'static str, Shape)>),
    /// A list (`keep_topics`, `[[notify.thresholds]]`).
    List(Box<Shape>),
}

impl Shape {
    fn fields(&self) -> &[(&'static str, Shape)] {
        match self {
            Shape::Table(fields) => fields,
            _ => &[],
        }
    }

    fn field(&self, name: &str) -> Option<&Shape> {
        self.fields()
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, shape)| shape)
    }

    fn names(&self) -> Vec<&'static str> {
        self.fields().iter().map(|(name, _)| *name).collect()
    }
}

/// The valid keys, traced once from the types so they cannot drift from what is read.
fn config_shape() -> &'static Shape {
    static SHAPE: OnceLock<Shape> = OnceLock::new();
    SHAPE.get_or_init(|| trace::shape_of::<Config>(&mut Vec::new()))
}

/// Learns the shape of a `Deserialize` type without a value of it: a deserializer that
/// follows one path into the type and stops where the path ends, reporting what the type
/// asked for there (a struct and its field names, a sequence, or anything else).
/// Stopping with an error means no leaf ever needs a valid value.
mod trace {
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::Deserialize;

    use super::Shape;

    #[derive(Clone, Copy)]
    pub(super) enum Step {
        Field(&'static str),
        Element,
    }

    #[derive(Debug)]
    pub(super) enum Stop {
        Table(&'static [&'static str]),
        List,
        Value,
        /// Any other error (a type that deserializes in a way the tracer does not follow).
        Other,
    }

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("tracing stopped")
        }
    }

    impl std::error::Error for Stop {}

    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop::Other
        }
    }

    pub(super) fn shape_of<'de, T: Deserialize<'de>>(path: &mut Vec<Step>) -> Shape {
        match T::deserialize(Tracer { follow: path }) {
            Err(Stop::Table(fields)) => Shape::Table(
                fields
                    .iter()
                    .map(|field| {
                        path.push(Step::Field(field));
                        let shape = shape_of::<T>(path);
                        path.pop();
                        (*field, shape)
                    })
                    .collect(),
            ),
            Err(Stop::List) => {
                path.push(Step::Element);
                let element = shape_of::<T>(path);
                path.pop();
                Shape::List(Box::new(element))
            }
            Err(Stop::Value | Stop::Other) | Ok(_) => Shape::Value,
        }
    }

    struct Tracer<'a> {
        follow: &'a [Step],
    }

    impl<'de> Deserializer<'de> for Tracer<'_> {
        type Error = Stop;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(if self.follow.is_empty() {
                Stop::Value
            } else {
                Stop::Other
            })
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Stop> {
            match self.follow.split_first() {
                None => Err(Stop::Table(fields)),
                Some((Step::Field(field), rest)) => visitor.visit_map(OneField {
                    field: Some(field),
                    value: Some(Tracer { follow: rest }),
                }),
                Some((Step::Element, _)) => Err(Stop::Other),
            }
        }

        fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            match self.follow.split_first() {
                None => Err(Stop::List),
                Some((Step::Element, rest)) => visitor.visit_seq(OneElement {
                    element: Some(Tracer { follow: rest }),
                }),
                Some((Step::Field(_), _)) => Err(Stop::Other),
            }
        }

        fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            visitor.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, Stop> {
            visitor.visit_newtype_struct(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf unit unit_struct tuple tuple_struct map enum identifier ignored_any
        }
    }

    struct OneField<'a> {
        field: Option<&'static str>,
        value: Option<Tracer<'a>>,
    }

    impl<'de> MapAccess<'de> for OneField<'_> {
        type Error = Stop;

        fn next_key_seed<K: DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, Stop> {
            match self.field.take() {
                Some(field) => seed
                    .deserialize(de::value::BorrowedStrDeserializer::new(field))
                    .map(Some),
                None => Ok(None),
            }
        }

        fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
            seed.deserialize(self.value.take().ok_or(Stop::Other)?)
        }
    }

    struct OneElement<'a> {
        element: Option<Tracer<'a>>,
    }

    impl<'de> SeqAccess<'de> for OneElement<'_> {
        type Error = Stop;

        fn next_element_seed<T: DeserializeSeed<'de>>(
            &mut self,
            seed: T,
        ) -> Result<Option<T::Value>, Stop> {
            match self.element.take() {
                Some(tracer) => seed.deserialize(tracer).map(Some),
                None => Ok(None),
            }
        }
    }
}

/// One step of a key as written: a name, or an index into an array of tables.
#[derive(Debug, Clone)]
enum Segment {
    Name(String),
    Index(usize),
}

fn render_key(path: &[Segment]) -> String {
    let mut key = String::new();
    for segment in path {
        match segment {
            Segment::Name(name) if key.is_empty() => key.push_str(name),
            Segment::Name(name) => {
                key.push('.');
                key.push_str(name);
            }
            Segment::Index(i) => {
                let _ = write!(key, "[{i}]");
            }
        }
    }
    key
}

/// The valid name closest to `written`, if it is close enough to be the intended one.
fn nearest(written: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let written = written.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&written, c), *c))
        .filter(|(distance, c)| {
            let allowed = if c.len() <= 4 {
                1
            } else {
                (c.len() / 3).max(2)
            };
            *distance <= allowed
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// Collects the keys of one file's `table` (at `path`) that `shape` does not have.
fn unknown_in_table(
    shape: &Shape,
    table: &config::Map<String, config::Value>,
    origin: &KeyOrigin,
    path: &mut Vec<Segment>,
    out: &mut Vec<UnknownKey>,
) {
    use config::ValueKind;
    // The config crate's tables are hash maps: report in key order, the same every run.
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(name, _)| name.as_str());
    for (name, value) in entries {
        path.push(Segment::Name(name.clone()));
        match shape.field(name) {
            Some(field @ Shape::Table(_)) => {
                if let ValueKind::Table(inner) = &value.kind {
                    unknown_in_table(field, inner, origin, path, out);
                }
            }
            Some(Shape::List(element)) => {
                if let ValueKind::Array(items) = &value.kind {
                    for (i, item) in items.iter().enumerate() {
                        if let ValueKind::Table(inner) = &item.kind {
                            path.push(Segment::Index(i));
                            unknown_in_table(element, inner, origin, path, out);
                            path.pop();
                        }
                    }
                }
            }
            // A value of the wrong kind is the deserializer's error to report, with its key.
            Some(Shape::Value) => {}
            None => {
                let form = match &value.kind {
                    ValueKind::Table(_) => KeyForm::Section,
                    ValueKind::Array(items)
                        if !items.is_empty()
                            && items.iter().all(|i| matches!(i.kind, ValueKind::Table(_))) =>
                    {
                        KeyForm::ArrayOfTables
                    }
                    _ => KeyForm::Key,
                };
                let valid_here = shape.names();
                let suggestion = nearest(name, &valid_here).map(|fixed| {
                    // A section is named by its whole path, a key by its name in its table.
                    let mut fixed_path = path.clone();
                    *fixed_path.last_mut().expect("just pushed") = Segment::Name(fixed.into());
                    match form {
                        KeyForm::Key => fixed.to_owned(),
                        KeyForm::Section => format!("[{}]", render_key(&fixed_path)),
                        KeyForm::ArrayOfTables => format!("[[{}]]", render_key(&fixed_path)),
                    }
                });
                out.push(UnknownKey {
                    origin: origin.clone(),
                    key: render_key(path),
                    form,
                    suggestion,
                    valid_here,
                });
            }
        }
        path.pop();
    }
}

/// The unknown key an environment variable sets, if it sets one.
fn unknown_in_env(root: &Shape, var: &str) -> Option<UnknownKey> {
    let segments = env_key(var);
    let mut shape = root;
    for (depth, segment) in segments.iter().enumerate() {
        match shape.field(segment) {
            // Deeper levels under a value or a list are the deserializer's type error.
            Some(inner @ Shape::Table(_)) => shape = inner,
            Some(_) => return None,
            None => {
                let valid_here = shape.names();
                let suggestion = fix_env_key(shape, &segments[depth..]).map(|fixed| {
                    let levels: Vec<String> = segments[..depth]
                        .iter()
                        .chain(&fixed)
                        .map(|s| s.to_uppercase())
                        .collect();
                    format!("{ENV_PREFIX}{}", levels.join(ENV_SEPARATOR))
                });
                return Some(UnknownKey {
                    origin: KeyOrigin::Env(var.to_owned()),
                    key: segments.join("."),
                    form: KeyForm::Key,
                    suggestion,
                    valid_here,
                });
            }
        }
    }
    None
}

/// The valid key nearest to `rest` under `shape`, level by level: each name kept when
/// valid, else replaced by the nearest one; `None` when a level has nothing close.
fn fix_env_key(shape: &Shape, rest: &[String]) -> Option<Vec<String>> {
    let (first, tail) = rest.split_first()?;
    let name = match shape.field(first) {
        Some(_) => first.as_str(),
        None => nearest(first, &shape.names())?,
    };
    let inner = shape.field(name)?;
    let mut fixed = vec![name.to_owned()];
    match inner {
        Shape::Table(_) if !tail.is_empty() => fixed.extend(fix_env_key(inner, tail)?),
        // A variable must end on a value: naming a table alone, or going past a value,
        // is no key to suggest.
        Shape::Table(_) => return None,
        _ if !tail.is_empty() => return None,
        _ => {}
    }
    Some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        vars.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    /// A config directory holding `local.toml` with `text`.
    fn dir_with_local_toml(text: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("local.toml"), text).unwrap();
        dir
    }

    fn load_dir(dir: &Path, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_with_env(Some(dir), Some(Profile::Local), None, env(vars))
    }

    fn repo_config_dir() -> PathBuf {
        // At run time when cargo runs the test (a shared target dir may hold a build made
        // in another clone, with that clone's compile-time path).
        std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
            .join("../../config")
    }

    #[test]
    fn embedded_defaults_name_the_course_buckets() {
        let c = Config::load_with_env(None, Some(Profile::Local), None, env(&[])).unwrap();
        assert_eq!(c.buckets.requests.as_str(), "gid-requests");
        assert_eq!(c.buckets.reports.as_str(), "gid-reports");
        assert_eq!(c.buckets.images.as_str(), "gid-images");
        assert_eq!(c.buckets.staging.as_str(), "gid-staging");
        assert_eq!(c.publish.access, SiteAccess::BucketPolicy);
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
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("custom.toml");
        std::fs::write(&file, "[buckets]\nreports = \"city-reports\"\n").unwrap();
        let c = Config::load_with_env(Some(dir.path()), Some(Profile::Aws), Some(&file), env(&[]))
            .unwrap();
        assert_eq!(c.buckets.reports.as_str(), "city-reports");
        assert_eq!(c.profile, Profile::Aws);

        std::fs::write(&file, "[buckets]\nreports = \"Bad_Name\"\n").unwrap();
        let err = Config::load_with_env(Some(dir.path()), None, Some(&file), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("Bad_Name"), "{err}");
    }

    #[test]
    fn environment_variables_set_keys_and_choose_the_profile() {
        let c = Config::load_with_env(
            None,
            None,
            None,
            env(&[
                ("GID__PROFILE", "aws"),
                ("GID__BUCKETS__REPORTS", "city-reports"),
                ("GID__INGEST__CONCURRENCY", "16"),
            ]),
        )
        .unwrap();
        assert_eq!(c.profile, Profile::Aws);
        assert_eq!(c.buckets.reports.as_str(), "city-reports");
        assert_eq!(c.ingest.concurrency, 16);
    }

    #[test]
    fn ingest_reads_exports_by_their_key_columns_with_a_column_cap_by_default() {
        let c = Config::load_with_env(None, Some(Profile::Local), None, env(&[])).unwrap();
        assert_eq!(
            c.ingest.required_columns,
            ["service_request_id", "date_requested", "service_name"]
        );
        assert_eq!(c.ingest.max_columns, 1000);
        assert_eq!(c.ingest.out_of_month, OutOfMonth::Quarantine);
    }

    #[test]
    fn bad_ingest_rules_are_refused_naming_the_key() {
        let dir = std::env::temp_dir().join(format!("gid-core-ingest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("custom.toml");
        for (toml, key) in [
            ("[ingest]\nmax_columns = 2\n", "ingest.max_columns"),
            (
                "[ingest]\nrequired_columns = [\" \"]\n",
                "ingest.required_columns",
            ),
            ("[ingest]\nout_of_month = \"drop\"\n", "out_of_month"),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Config::load_with_env(Some(&dir), None, Some(&file), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        std::fs::write(&file, "[ingest]\nout_of_month = \"keep\"\n").unwrap();
        let c = Config::load_with_env(Some(&dir), None, Some(&file), env(&[])).unwrap();
        assert_eq!(c.ingest.out_of_month, OutOfMonth::Keep);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn service_information_pages_must_be_web_urls_and_languages_include_english() {
        let dir = std::env::temp_dir().join(format!("gid-core-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("custom.toml");
        for (toml, key) in [
            (
                "[publish.service_info]\n\"Pothole\" = \"javascript:alert(1)\"\n",
                "publish.service_info.\"Pothole\" is `javascript:alert(1)`",
            ),
            (
                "[publish.service_info]\n\"Graffiti\" = \"https://\"\n",
                "publish.service_info.\"Graffiti\"",
            ),
            (
                "[publish]\nservice_info_default = \"www.sandiego.gov\"\n",
                "publish.service_info_default",
            ),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Config::load_with_env(Some(&dir), None, Some(&file), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(key) && err.contains("https://"),
                "{toml}: {err}"
            );
        }
        std::fs::write(
            &file,
            "[publish.service_info]\n\"Pothole\" = \"HTTPS://www.sandiego.gov/pothole?x=1\"\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&dir), None, Some(&file), env(&[])).unwrap();
        assert_eq!(c.publish.service_info.len(), 1);
        assert_eq!(c.publish.languages, ["en"]);
        for languages in ["[\"es\"]", "[\"en\", \"en\"]", "[\"en\", \"es/x\"]"] {
            std::fs::write(&file, format!("[publish]\nlanguages = {languages}\n")).unwrap();
            let err = Config::load_with_env(Some(&dir), None, Some(&file), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("publish.languages"), "{languages}: {err}");
        }
        assert_eq!(
            c.publish.service_info_default,
            "https://www.sandiego.gov/get-it-done"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn notify_sharing_settings_are_checked_at_load_naming_the_key() {
        let dir = std::env::temp_dir().join(format!("gid-core-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("custom.toml");
        for (toml, key) in [
            ("[notify]\ntopic_prefix = \"\"\n", "notify.topic_prefix"),
            ("[notify]\ntopic_prefix = \"gid\"\n", "notify.topic_prefix"),
            ("[notify]\ntopic_prefix = \"g.d-\"\n", "notify.topic_prefix"),
            (
                "[notify.sms]\nsender_id = \"SanDiegoCity\"\n",
                "notify.sms.sender_id",
            ),
            (
                "[notify.sms]\nsender_id = \"311\"\n",
                "notify.sms.sender_id",
            ),
            (
                "[notify.sms]\norigination_number = \"6195550100\"\n",
                "notify.sms.origination_number",
            ),
        ] {
            std::fs::write(&file, toml).unwrap();
            let err = Config::load_with_env(Some(&dir), None, Some(&file), env(&[]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        std::fs::write(
            &file,
            "[notify]\ntopic_prefix = \"city_gid_\"\n[notify.departments]\n\"Streets & Sidewalks\" = \"streets\"\n[notify.sms]\nsms_type = \"Promotional\"\nsender_id = \"SanDiegoGID\"\n",
        )
        .unwrap();
        let c = Config::load_with_env(Some(&dir), None, Some(&file), env(&[])).unwrap();
        assert_eq!(c.notify.topic_prefix, "city_gid_");
        assert_eq!(c.notify.sms.sms_type, SmsType::Promotional);
        assert_eq!(c.notify.default_topic, "streets");
        // Departments keep their case (suggestions quote them) and merge with the defaults.
        assert_eq!(
            c.notify
                .departments
                .get("Streets & Sidewalks")
                .map(String::as_str),
            Some("streets")
        );
        assert_eq!(
            c.notify.departments.get("Trash").map(String::as_str),
            Some("trash")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let err = Config::load_with_env(None, None, Some(Path::new("/no/such.toml")), env(&[]));
        assert!(matches!(err, Err(ConfigError::MissingFile(_))));
    }

    #[test]
    fn a_named_config_dir_that_does_not_exist_is_an_error_naming_it() {
        let err = load_dir(Path::new("/nonexistent/gid-config"), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::MissingDir(_)), "{err}");
        assert!(err.to_string().contains("/nonexistent/gid-config"), "{err}");

        let dir = dir_with_local_toml("");
        let err = load_dir(&dir.path().join("local.toml"), &[]).unwrap_err();
        assert!(matches!(err, ConfigError::NotADir(_)), "{err}");
    }

    #[test]
    fn an_unknown_key_in_an_array_of_tables_names_its_file_and_the_nearest_key() {
        let dir = dir_with_local_toml(
            "[[notify.thresholds]]\nservice_name = \"Pothole\"\nabove = 3\ntopic = \"streets\"\nlable = \"Holes\"\n",
        );
        let err = load_dir(dir.path(), &[]).unwrap_err();
        let file = dir.path().join("local.toml");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: unknown key notify.thresholds[0].lable: did you mean label?",
                file.display()
            )
        );
    }

    #[test]
    fn an_unknown_section_suggests_the_section_it_resembles() {
        let dir = dir_with_local_toml("[bucket]\nreports = \"city-reports\"\n");
        let err = load_dir(dir.path(), &[]).unwrap_err().to_string();
        assert!(
            err.ends_with("local.toml: unknown section [bucket]: did you mean [buckets]?"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_environment_key_is_named_and_corrected_as_a_variable() {
        let err = Config::load_with_env(
            None,
            Some(Profile::Local),
            None,
            env(&[("GID__BUCKET__REPORTS", "city-reports")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable GID__BUCKET__REPORTS sets unknown key bucket.reports: \
             did you mean GID__BUCKETS__REPORTS?"
        );
    }

    #[test]
    fn single_underscore_gid_variables_are_not_configuration() {
        let c = Config::load_with_env(
            None,
            Some(Profile::Local),
            None,
            env(&[
                ("GID_CONFIG_DIR", "/etc/gid/config"),
                ("GID_MONTH_INDEX", "3"),
                ("GID_SAMPLE_IMAGES", "/tmp/photos"),
                ("GID_IMAGE_MODEL", "/tmp/model.safetensors"),
                ("GID_TEST_MOTO_ENDPOINT", "http://127.0.0.1:5000"),
            ]),
        );
        assert!(c.is_ok(), "{:?}", c.err().map(|e| e.to_string()));
    }

    #[test]
    fn optional_keys_that_default_toml_only_mentions_in_comments_are_valid() {
        let dir = dir_with_local_toml(
            "[aws]\nregion = \"eu-west-1\"\nendpoint_url = \"http://127.0.0.1:5000\"\nforce_path_style = true\n\
             [notify]\nsns_endpoint_url = \"http://127.0.0.1:5001\"\n\
             [enrich.aws]\nendpoint_url = \"http://127.0.0.1:5002\"\n",
        );
        let c = load_dir(dir.path(), &[]).unwrap();
        assert_eq!(c.aws.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.aws.force_path_style, Some(true));
        assert_eq!(
            c.notify.sns_endpoint_url.as_deref(),
            Some("http://127.0.0.1:5001")
        );
        assert_eq!(
            c.enrich.aws.endpoint_url.as_deref(),
            Some("http://127.0.0.1:5002")
        );
    }

    #[test]
    fn enrich_engines_follow_the_profile_unless_set_apart_from_storage() {
        let dir = dir_with_local_toml("");
        let follows = load_dir(dir.path(), &[]).unwrap();
        assert_eq!(follows.engines(), follows.profile);
        let apart = load_dir(dir.path(), &[("GID__ENRICH__ENGINES", "aws")]).unwrap();
        assert_eq!(apart.profile, Profile::Local);
        assert_eq!(apart.engines(), Profile::Aws);
        let err = load_dir(dir.path(), &[("GID__ENRICH__ENGINES", "cloud")]).unwrap_err();
        assert!(err.to_string().contains("enrich.engines"), "{err}");
    }

    #[test]
    fn every_unknown_key_of_a_load_is_reported_one_per_line() {
        let dir =
            dir_with_local_toml("[aws]\nregoin = \"eu-west-1\"\n[ingest]\nsufix = \".txt\"\n");
        let err = load_dir(dir.path(), &[("GID__INGEST__CONCURENCY", "4")]).unwrap_err();
        let ConfigError::UnknownKeys(UnknownKeys(keys)) = &err else {
            panic!("{err}");
        };
        let found: Vec<(&str, Option<&str>)> = keys
            .iter()
            .map(|k| (k.key.as_str(), k.suggestion.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("aws.regoin", Some("region")),
                ("ingest.sufix", Some("suffix")),
                ("ingest.concurency", Some("GID__INGEST__CONCURRENCY")),
            ]
        );
        let text = err.to_string();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.starts_with("3 unknown configuration keys:"), "{text}");
    }

    #[test]
    fn a_key_close_to_no_valid_key_lists_the_valid_ones() {
        let dir = dir_with_local_toml("[publish]\nwatermark = \"draft\"\n");
        let err = load_dir(dir.path(), &[]).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "unknown key publish.watermark: remove it, or use one of access, website, \
                 presign_expires_secs, index_cache_control, report_cache_control, service_info, \
                 service_info_default, languages"
            ),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_config_files_hold_only_known_keys() {
        for profile in [Profile::Local, Profile::Aws] {
            let loaded =
                Config::load_with_env(Some(&repo_config_dir()), Some(profile), None, env(&[]));
            assert!(loaded.is_ok(), "{:?}", loaded.err().map(|e| e.to_string()));
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_once_with_its_key() {
        let err = Config::load_with_env(
            None,
            Some(Profile::Local),
            None,
            env(&[("GID__INGEST__CONCURRENCY", "many")]),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ingest.concurrency"), "{text}");
        // `{:#}` prints the causes after the message: there must be none to repeat it.
        assert!(std::error::Error::source(&err).is_none(), "{text}");
    }

    #[test]
    fn out_of_range_values_are_refused_naming_the_key() {
        let err = Config::load_with_env(
            None,
            Some(Profile::Local),
            None,
            env(&[("GID__INGEST__CONCURRENCY", "0")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration key ingest.concurrency must be at least 1"
        );
    }

    #[test]
    fn buckets_whose_contents_would_mix_are_refused_naming_both_keys() {
        let refused = |var: &str, bucket: &str| {
            Config::load_with_env(None, Some(Profile::Local), None, env(&[(var, bucket)]))
                .unwrap_err()
                .to_string()
        };
        let err = refused("GID__BUCKETS__REPORTS", "gid-requests");
        assert!(
            err.starts_with("buckets.requests and buckets.reports are both `gid-requests`: gid would ingest its own outputs"),
            "{err}"
        );
        assert!(
            err.ends_with("give buckets.reports a bucket of its own"),
            "{err}"
        );
        let err = refused("GID__BUCKETS__WORK", "gid-requests");
        assert!(
            err.starts_with("buckets.requests and buckets.work are both `gid-requests`: gid would ingest its own outputs"),
            "{err}"
        );
        let err = refused("GID__BUCKETS__WORK", "gid-reports");
        assert!(
            err.starts_with(
                "buckets.reports and buckets.work are both `gid-reports`: the public site index"
            ),
            "{err}"
        );
    }
}
