//! Who the process is to AWS: which source of the standard chain gave the credentials
//! (never the credentials themselves: the access key id only masked) and the account and
//! ARN STS answers for them. `gid-admin doctor` prints both, so an operator sees which
//! identity a run would use before it runs.

use std::fmt;
use std::time::SystemTime;

use aws_config::retry::RetryConfig;
use aws_credential_types::credential_feature::AwsCredentialFeature;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::failure::credential_trouble;
use crate::{AwsContext, FailureKind, SdkDetail, Service};

/// Where the standard credential chain found the credentials in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
    Environment,
    /// Static keys of a profile in the shared config or credentials file.
    Profile,
    /// An IAM Identity Center (SSO) session of a profile.
    Sso,
    /// A web identity token exchanged with STS (EKS IRSA, `web_identity_token_file`).
    WebIdentityToken,
    /// The container credentials endpoint (ECS task role, EKS Pod Identity).
    EcsContainer,
    /// The EC2 instance metadata service (an instance profile).
    Ec2InstanceMetadata,
    /// A profile's `credential_process` helper.
    CredentialProcess,
    /// A profile's `role_arn`, assumed through STS.
    AssumeRole,
    /// A provider that did not say which it is.
    Unknown,
}

impl CredentialSource {
    /// The source as the SDK's providers name themselves (`Environment`, `SSO`, …).
    pub fn name(self) -> &'static str {
        match self {
            CredentialSource::Environment => "Environment",
            CredentialSource::Profile => "Profile",
            CredentialSource::Sso => "SSO",
            CredentialSource::WebIdentityToken => "WebIdentityToken",
            CredentialSource::EcsContainer => "EcsContainer",
            CredentialSource::Ec2InstanceMetadata => "Ec2InstanceMetadata",
            CredentialSource::CredentialProcess => "CredentialProcess",
            CredentialSource::AssumeRole => "AssumeRole",
            CredentialSource::Unknown => "Unknown",
        }
    }

    /// The source from the features the SDK's providers record on the credentials they
    /// return, innermost first (an SSO profile records SSO, then Profile). The most
    /// specific one names the source: a profile is only the way to an SSO session, a
    /// role or a helper.
    pub fn from_features(features: &[AwsCredentialFeature]) -> Self {
        use AwsCredentialFeature as F;
        let has = |wanted: &[AwsCredentialFeature]| features.iter().any(|f| wanted.contains(f));
        if has(&[F::CredentialsSso, F::CredentialsProfileSso]) {
            CredentialSource::Sso
        } else if has(&[
            F::CredentialsProfileStsWebIdToken,
            F::CredentialsEnvVarsStsWebIdToken,
            F::CredentialsStsAssumeRoleWebId,
        ]) {
            CredentialSource::WebIdentityToken
        } else if has(&[F::CredentialsProcess, F::CredentialsProfileProcess]) {
            CredentialSource::CredentialProcess
        } else if has(&[
            F::CredentialsStsAssumeRole,
            F::CredentialsProfileSourceProfile,
        ]) {
            CredentialSource::AssumeRole
        } else if has(&[F::CredentialsHttp]) {
            CredentialSource::EcsContainer
        } else if has(&[F::CredentialsImds]) {
            CredentialSource::Ec2InstanceMetadata
        } else if has(&[F::CredentialsEnvVars]) {
            CredentialSource::Environment
        } else if has(&[F::CredentialsProfile]) {
            CredentialSource::Profile
        } else {
            CredentialSource::Unknown
        }
    }
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialSource::Environment => {
                "environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            }
            CredentialSource::Profile => "static keys of the AWS profile",
            CredentialSource::Sso => "an SSO (IAM Identity Center) session of the AWS profile",
            CredentialSource::WebIdentityToken => {
                "a web identity token exchanged with STS (EKS IRSA, web_identity_token_file)"
            }
            CredentialSource::EcsContainer => {
                "the container credentials endpoint (ECS task role, EKS Pod Identity)"
            }
            CredentialSource::Ec2InstanceMetadata => {
                "the EC2 instance metadata service (instance profile)"
            }
            CredentialSource::CredentialProcess => "the AWS profile's credential_process",
            CredentialSource::AssumeRole => "a role assumed through the AWS profile's role_arn",
            CredentialSource::Unknown => "a credentials provider that does not name itself",
        })
    }
}

/// An access key id with all but its first and last four characters hidden
/// (`AKIA…MPLE`), so an operator can tell keys apart without a log holding one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedKeyId(String);

impl MaskedKeyId {
    /// Keys shorter than 12 characters show nothing but their length: four and four would
    /// give most of them away.
    pub fn new(access_key_id: &str) -> Self {
        let chars: Vec<char> = access_key_id.chars().collect();
        if chars.len() < 12 {
            return Self(format!("({} characters, hidden)", chars.len()));
        }
        let head: String = chars[..4].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        Self(format!("{head}…{tail}"))
    }

    /// The masked id, e.g. `AKIA…WXYZ`: safe to print and log.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MaskedKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The credentials the chain resolved, described without the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCredentials {
    /// Where the chain found them (environment, profile, SSO, instance role, …).
    pub source: CredentialSource,
    /// Enough of the access key id to tell keys apart, never the whole id.
    pub access_key: MaskedKeyId,
    /// Session credentials (a session token): they expire and are refreshed by the chain.
    pub temporary: bool,
    /// When temporary credentials expire, if the source says.
    pub expires: Option<SystemTime>,
}

impl ResolvedCredentials {
    fn describe(credentials: &Credentials) -> Self {
        let features = credentials
            .get_property::<Vec<AwsCredentialFeature>>()
            .map(Vec::as_slice)
            .unwrap_or_default();
        Self {
            source: CredentialSource::from_features(features),
            access_key: MaskedKeyId::new(credentials.access_key_id()),
            temporary: credentials.session_token().is_some(),
            expires: credentials.expiry(),
        }
    }
}

/// The account and principal STS reports for the credentials in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The 12-digit account id: which account the buckets and topics are created in.
    pub account: String,
    /// `arn:aws:iam::123456789012:user/gid` or an assumed role's session ARN.
    pub arn: String,
}

/// Why the identity could not be told.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The chain found no credentials, or a source of it failed.
    #[error("resolving AWS credentials: {kind}")]
    Credentials {
        /// The failure as gid classifies every AWS failure (retryable or not, and why).
        kind: FailureKind,
        /// The chain's own error, shown at `-v`.
        #[source]
        detail: Option<SdkDetail>,
    },
    /// STS GetCallerIdentity failed.
    #[error("STS GetCallerIdentity at {endpoint}: {kind}")]
    Sts {
        /// Where STS was asked (a custom endpoint, or `AWS` for its own).
        endpoint: String,
        /// `true` when STS was asked at a custom endpoint (an emulator or an
        /// S3-compatible store, which may not implement STS at all).
        custom_endpoint: bool,
        /// The failure as gid classifies every AWS failure.
        kind: FailureKind,
        /// The SDK's error, shown at `-v`.
        #[source]
        detail: SdkDetail,
    },
}

impl AwsContext {
    /// Resolves credentials through the same chain every client uses and describes them.
    /// The chain is asked directly (not through the clients' identity cache), so this
    /// costs one resolution (an IMDS or SSO request where those are the source).
    pub async fn resolve_credentials(&self) -> Result<ResolvedCredentials, IdentityError> {
        let Some(provider) = self.sdk().credentials_provider() else {
            return Err(IdentityError::Credentials {
                kind: FailureKind::NoCredentials,
                detail: None,
            });
        };
        match provider.provide_credentials().await {
            Ok(credentials) => Ok(ResolvedCredentials::describe(&credentials)),
            Err(error) => Err(IdentityError::Credentials {
                kind: credentials_failure(&error),
                detail: Some(SdkDetail::new(error)),
            }),
        }
    }

    /// Asks STS who the credentials belong to. Against a custom endpoint it asks once,
    /// without retries: emulators and S3-compatible stores often lack STS and answer 500.
    pub async fn caller_identity(&self) -> Result<CallerIdentity, IdentityError> {
        let endpoint = self.endpoint(Service::Sts);
        let client = aws_sdk_sts::Client::new(self.sdk());
        let mut request = client.get_caller_identity().customize();
        if endpoint.is_some() {
            request = request.config_override(
                aws_sdk_sts::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(1)),
            );
        }
        match request.send().await {
            Ok(output) => Ok(CallerIdentity {
                account: output.account().unwrap_or_default().to_owned(),
                arn: output.arn().unwrap_or_default().to_owned(),
            }),
            Err(error) => Err(IdentityError::Sts {
                endpoint: endpoint.clone().unwrap_or_else(|| "AWS".to_owned()),
                custom_endpoint: endpoint.is_some(),
                kind: crate::describe("GetCallerIdentity", "sts", &error, endpoint.as_deref()),
                detail: SdkDetail::new(error),
            }),
        }
    }
}

/// A credentials provider's failure in an operator's terms.
fn credentials_failure(error: &CredentialsError) -> FailureKind {
    if let CredentialsError::CredentialsNotLoaded(_) = error {
        return FailureKind::NoCredentials;
    }
    let chain = DisplayErrorContext(error).to_string();
    credential_trouble(&chain).unwrap_or(match error {
        CredentialsError::ProviderTimedOut(_) => FailureKind::TimedOut,
        _ => FailureKind::Rejected {
            code: "CredentialsProvider".into(),
            message: "a source of the credential chain failed (run with -v for its detail)".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AwsCredentialFeature as F;

    #[test]
    fn access_key_ids_show_only_their_ends() {
        assert_eq!(
            MaskedKeyId::new("AKIAIOSFODNN7EXAMPLE").as_str(),
            "AKIA…MPLE"
        );
        assert_eq!(MaskedKeyId::new("gid-test-key").as_str(), "gid-…-key");
        assert!(!MaskedKeyId::new("short-key").as_str().contains("short"));
    }

    #[test]
    fn the_most_specific_provider_names_the_source() {
        assert_eq!(
            CredentialSource::from_features(&[F::CredentialsEnvVars]),
            CredentialSource::Environment
        );
        // What aws-config records for an SSO profile (its own test asserts this list).
        assert_eq!(
            CredentialSource::from_features(&[F::CredentialsSso, F::CredentialsProfile]),
            CredentialSource::Sso
        );
        assert_eq!(
            CredentialSource::from_features(&[F::CredentialsProcess, F::CredentialsProfile]),
            CredentialSource::CredentialProcess
        );
        assert_eq!(
            CredentialSource::from_features(&[F::CredentialsProfile]),
            CredentialSource::Profile
        );
        assert_eq!(
            CredentialSource::from_features(&[F::CredentialsImds]),
            CredentialSource::Ec2InstanceMetadata
        );
        assert_eq!(
            CredentialSource::from_features(&[]),
            CredentialSource::Unknown
        );
    }

    #[tokio::test]
    async fn keys_in_the_environment_are_named_as_the_environment_source() {
        // The only test of this crate that sets credentials in the environment.
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "gid-unit-secret");
        std::env::remove_var("AWS_SESSION_TOKEN");
        let aws = AwsContext::load(&crate::AwsSettings {
            region: Some("us-east-1".into()),
            ..Default::default()
        })
        .await
        .unwrap();
        let resolved = aws.resolve_credentials().await.unwrap();
        assert_eq!(resolved.source, CredentialSource::Environment);
        assert_eq!(resolved.access_key.as_str(), "AKIA…MPLE");
        assert!(!resolved.temporary);
    }

    #[test]
    fn a_missing_sso_token_reads_as_a_login_to_do() {
        let error = CredentialsError::provider_error(
            "failed to load SSO token for profile city: session token not found or invalid",
        );
        assert!(matches!(
            credentials_failure(&error),
            FailureKind::SsoLoginRequired { .. }
        ));
        assert_eq!(
            credentials_failure(&CredentialsError::not_loaded("nothing")),
            FailureKind::NoCredentials
        );
    }
}
