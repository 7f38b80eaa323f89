//! SDK errors in words: one classification for every AWS client gid uses, so each says
//! what failed, why (connection refused, access denied, credentials expired, …) and what to
//! do, and keeps the SDK's own error as its source for `-v`.

use std::error::Error as StdError;
use std::fmt;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
pub use gid_core::FailureKind;

/// The SDK's own error, kept as the source of gid's errors: the chain `-v` prints. The
/// CLI stops at this boundary at default verbosity, so SDK internals never reach an
/// operator's terminal unasked.
#[derive(Debug)]
pub struct SdkDetail(Box<dyn StdError + Send + Sync + 'static>);

impl SdkDetail {
    /// Wraps an SDK error, to be shown only at `-v` (see the type's docs).
    pub fn new(error: impl StdError + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }
}

impl fmt::Display for SdkDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", DisplayErrorContext(&*self.0))
    }
}

impl StdError for SdkDetail {}

/// Classifies an SDK error. `endpoint` is the endpoint the client was talking to (for
/// "connection refused by …"); `None` for AWS's own.
pub fn classify<E>(error: &SdkError<E, HttpResponse>, endpoint: Option<&str>) -> FailureKind
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let endpoint = endpoint.map(str::to_owned);
    let chain = DisplayErrorContext(error).to_string();
    if let Some(kind) = credential_trouble(&chain) {
        return kind;
    }
    match error {
        SdkError::TimeoutError(_) => FailureKind::TimedOut,
        SdkError::DispatchFailure(failure) => {
            let lower = chain.to_ascii_lowercase();
            if failure.is_timeout() {
                FailureKind::TimedOut
            } else if lower.contains("connection refused") {
                FailureKind::ConnectionRefused { endpoint }
            } else if lower.contains("dns error") || lower.contains("failed to lookup address") {
                FailureKind::UnknownHost { endpoint }
            } else {
                FailureKind::Other
            }
        }
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let status = error.raw_response().map(|r| r.status().as_u16());
            let code = error.code().unwrap_or_default().to_owned();
            let message = error.message().unwrap_or_default().to_owned();
            from_service(status, code, message)
        }
        _ => FailureKind::Other,
    }
}

/// What a service's error code and HTTP status mean.
fn from_service(status: Option<u16>, code: String, message: String) -> FailureKind {
    match code.as_str() {
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" | "TokenRefreshRequired" => {
            FailureKind::CredentialsExpired
        }
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "InvalidSignatureException"
        | "AuthFailure" => FailureKind::CredentialsRejected,
        "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "Forbidden"
        | "AllAccessDisabled" => FailureKind::AccessDenied,
        "PreconditionFailed" => FailureKind::PreconditionFailed,
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "TooManyRequestsException"
        | "ProvisionedThroughputExceededException"
        | "RequestLimitExceeded" => FailureKind::Throttled,
        _ if code.starts_with("NoSuch")
            || code.ends_with("NotFound")
            || code == "NotFoundException" =>
        {
            FailureKind::NotFound { code }
        }
        _ => match status {
            Some(403) => FailureKind::AccessDenied,
            Some(404) => FailureKind::NotFound {
                code: if code.is_empty() { "404".into() } else { code },
            },
            Some(412) => FailureKind::PreconditionFailed,
            Some(429 | 503) => FailureKind::Throttled,
            Some(s) if s >= 500 => FailureKind::ServerError { status: s },
            _ if !code.is_empty() => FailureKind::Rejected {
                code,
                message: message.into(),
            },
            _ => FailureKind::Other,
        },
    }
}

/// Credential problems surface as whatever error the request was building when the
/// provider chain failed; their text is the only reliable signal across SDK versions.
pub(crate) fn credential_trouble(chain: &str) -> Option<FailureKind> {
    let lower = chain.to_ascii_lowercase();
    if lower.contains("sso") && (lower.contains("token") || lower.contains("session")) {
        return Some(FailureKind::SsoLoginRequired {
            profile: std::env::var("AWS_PROFILE").ok(),
        });
    }
    if lower.contains("no credentials")
        || lower.contains("credentialsnotloaded")
        || lower.contains("no providers in chain provided credentials")
        || lower.contains("the credential provider was not enabled")
    {
        return Some(FailureKind::NoCredentials);
    }
    if lower.contains("credentials") && lower.contains("expired") {
        return Some(FailureKind::CredentialsExpired);
    }
    None
}

/// Logs the SDK's full error at debug (`-v`) and classifies it.
pub fn describe<E>(
    operation: &str,
    target: &str,
    error: &SdkError<E, HttpResponse>,
    endpoint: Option<&str>,
) -> FailureKind
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    tracing::debug!(operation, target, error = %DisplayErrorContext(error), "AWS request failed");
    classify(error, endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_codes_read_as_what_an_operator_does_about_them() {
        let kind = |status, code: &str| from_service(status, code.into(), String::new());
        assert_eq!(
            kind(Some(400), "ExpiredToken"),
            FailureKind::CredentialsExpired
        );
        assert_eq!(kind(Some(403), "AccessDenied"), FailureKind::AccessDenied);
        assert_eq!(kind(Some(403), ""), FailureKind::AccessDenied);
        assert_eq!(
            kind(Some(403), "InvalidAccessKeyId"),
            FailureKind::CredentialsRejected
        );
        assert!(matches!(
            kind(Some(404), "NoSuchBucket"),
            FailureKind::NotFound { .. }
        ));
        assert_eq!(kind(Some(503), "SlowDown"), FailureKind::Throttled);
        assert_eq!(
            kind(Some(500), "InternalError"),
            FailureKind::ServerError { status: 500 }
        );
        assert_eq!(kind(Some(412), ""), FailureKind::PreconditionFailed);
        assert!(matches!(
            kind(Some(400), "InvalidParameter"),
            FailureKind::Rejected { .. }
        ));
    }

    #[test]
    fn a_missing_sso_token_asks_for_aws_sso_login() {
        // What aws-config's SSO provider reports when the token cache has no token.
        let chain = "dispatch failure: other: an error occurred while loading credentials: \
                     failed to load SSO token: ... ~/.aws/sso/cache/...json: No such file or directory";
        let kind = credential_trouble(chain).unwrap();
        let FailureKind::SsoLoginRequired { .. } = kind else {
            panic!("{kind:?}")
        };
        assert!(kind.to_string().contains("aws sso login --profile"));
    }

    #[test]
    fn every_kind_reads_as_a_sentence_without_debug_text() {
        for kind in [
            FailureKind::ConnectionRefused {
                endpoint: Some("http://127.0.0.1:5999".into()),
            },
            FailureKind::TimedOut,
            FailureKind::NoCredentials,
            FailureKind::CredentialsExpired,
            FailureKind::AccessDenied,
            FailureKind::Throttled,
        ] {
            let text = kind.to_string();
            assert!(!text.contains('{') && !text.contains("Some("), "{text}");
        }
        assert!(FailureKind::ConnectionRefused {
            endpoint: Some("http://127.0.0.1:5999".into())
        }
        .to_string()
        .contains("connection refused by http://127.0.0.1:5999"));
    }
}
