//! Domain types shared by every gid crate: the [`Month`] that is the unit of work, the
//! [`BucketName`] and [`ObjectKey`] newtypes (validated once, at the edge), the key
//! [`Layout`] that maps a month onto prefixes, and the typed [`Config`].
//!
//! This crate does no I/O beyond reading configuration files; storage, parsing and
//! rendering live in the stage and port crates.
//!
//! ```
//! use gid_core::{Layout, Month};
//! let month: Month = "2019-01".parse().unwrap();
//! let layout = Layout::new("{year}/{mon}/").unwrap();
//! assert_eq!(layout.month_prefix(month), "2019/jan/");
//! assert_eq!(month.to_string(), "2019-01");
//! ```

mod config;
mod failure;
mod layout;
mod month;
mod names;
mod newtype;
mod run;
mod stats;
mod url;

pub use config::{
    Acl, AwsConfig, Buckets, Config, ConfigError, EnrichAwsConfig, EnrichConfig, EnrichPrices,
    IngestConfig, KeyForm, KeyOrigin, LayoutConfig, LocalConfig, NotifyConfig, OutOfMonth, Profile,
    PublishConfig, RetryModeConfig, ScheduleConfig, SiteAccess, SmsConfig, SmsType,
    ThresholdConfig, UnknownKey, UnknownKeys, MAX_TOPIC_PREFIX_LEN,
};
pub use failure::FailureKind;
pub use layout::{Layout, LayoutError, WorkKeys};
pub use month::{Month, MonthError, MonthRange, MonthSpec};
pub use names::{BucketName, NameError, ObjectKey};
pub use run::RunOwner;
pub use stats::RequestStats;
pub use url::{encode_url_component, encode_url_path};

/// serde, for the impls [`validated_string!`] writes in other crates.
#[doc(hidden)]
pub use serde as __serde;
