//! What every AWS client of gid shares: one SDK configuration per process
//! ([`AwsContext`]: the standard credential chain and its single identity cache, the
//! region, retries, timeouts, each service's resolved endpoint), one request counter type
//! ([`RequestCounter`]) and one reading of SDK errors ([`classify`] → [`FailureKind`],
//! with the SDK's error kept as [`SdkDetail`]).
//!
//! The service adapters (S3 in `gid-storage`, SNS in `gid-notify`, Translate, Comprehend and
//! Rekognition in `gid-enrich`) build their clients from an [`AwsContext`]; nothing else in
//! gid reads AWS configuration. Credentials are never read or logged here: the chain finds
//! them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), gid_aws::AwsSetupError> {
//! use gid_aws::{AwsContext, AwsSettings, Service};
//! let aws = AwsContext::load(&AwsSettings::default()).await?;
//! println!("region {}, S3 at {:?}", aws.region(), aws.endpoint(Service::S3));
//! # Ok(()) }
//! ```

mod context;
mod counter;
mod failure;
mod identity;

pub use aws_config::retry::RetryMode;
pub use context::{AwsContext, AwsSettings, AwsSetupError, ProfileNote, Service, FALLBACK_REGION};
pub use counter::RequestCounter;
pub use failure::{classify, describe, FailureKind, SdkDetail};
pub use identity::{
    CallerIdentity, CredentialSource, IdentityError, MaskedKeyId, ResolvedCredentials,
};
