//! Why a call to a remote service (S3, SNS, an AWS engine) failed, in the terms an
//! operator acts on. The AWS adapters classify SDK errors into it (`gid-aws`); stage
//! errors carry it, so every backend's failures read the same way.

use std::fmt;

/// Why a service request failed, in the terms an operator acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing listens at the endpoint.
    ConnectionRefused {
        /// The endpoint tried, when known.
        endpoint: Option<String>,
    },
    /// The endpoint's host name does not resolve.
    UnknownHost {
        /// The endpoint tried, when known.
        endpoint: Option<String>,
    },
    /// No answer in time (connect, attempt or operation timeout).
    TimedOut,
    /// No credentials anywhere in the standard chain.
    NoCredentials,
    /// An SSO profile without a valid cached token.
    SsoLoginRequired {
        /// The AWS profile, when known.
        profile: Option<String>,
    },
    /// The credentials were valid once and have expired.
    CredentialsExpired,
    /// The service does not know the access key or the signature does not match.
    CredentialsRejected,
    /// Valid credentials without the permission.
    AccessDenied,
    /// The bucket, key, topic or other resource does not exist.
    NotFound {
        /// The service's error code, e.g. `NoSuchKey`.
        code: String,
    },
    /// An `If-Match`/`If-None-Match` precondition did not hold.
    PreconditionFailed,
    /// Still throttled after every retry.
    Throttled,
    /// The service failed (5xx) after every retry.
    ServerError {
        /// The HTTP status of the last attempt.
        status: u16,
    },
    /// The service refused the request as invalid (4xx with a code).
    /// (`message` is boxed to keep errors that carry a kind small.)
    Rejected {
        /// The service's error code.
        code: String,
        /// The service's message.
        message: Box<str>,
    },
    /// The response broke off after its headers, every time it was read.
    BrokenResponse {
        /// Reads tried.
        attempts: u32,
    },
    /// Anything else (the SDK's detail is in the source).
    Other,
}

impl FailureKind {
    /// Whether retrying later may help (transient network or service trouble).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            FailureKind::ConnectionRefused { .. }
                | FailureKind::TimedOut
                | FailureKind::Throttled
                | FailureKind::ServerError { .. }
        )
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |endpoint: &Option<String>| {
            endpoint
                .as_deref()
                .map_or_else(|| "the AWS endpoint".to_owned(), str::to_owned)
        };
        match self {
            FailureKind::ConnectionRefused { endpoint } => write!(
                f,
                "connection refused by {}: is the endpoint right (aws.endpoint_url, AWS_ENDPOINT_URL) and the service running?",
                at(endpoint)
            ),
            FailureKind::UnknownHost { endpoint } => write!(
                f,
                "the host of {} does not resolve: check the endpoint (aws.endpoint_url, AWS_ENDPOINT_URL_<SERVICE>) and, for S3-compatible stores on localhost, path-style addressing (aws.force_path_style)",
                at(endpoint)
            ),
            FailureKind::TimedOut => f.write_str(
                "no answer in time (aws.operation_timeout_secs): the endpoint may be unreachable or overloaded",
            ),
            FailureKind::NoCredentials => f.write_str(
                "no AWS credentials found: set AWS_PROFILE (a profile in ~/.aws/config), AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run where a role is attached (EKS, ECS, EC2)",
            ),
            FailureKind::SsoLoginRequired { profile } => match profile {
                Some(profile) => write!(
                    f,
                    "the SSO session of AWS profile {profile} has no valid token: run `aws sso login --profile {profile}`"
                ),
                None => f.write_str(
                    "the SSO session has no valid token: run `aws sso login --profile <your profile>`",
                ),
            },
            FailureKind::CredentialsExpired => f.write_str(
                "the AWS credentials have expired: refresh them (`aws sso login`, a new session token) and rerun",
            ),
            FailureKind::CredentialsRejected => f.write_str(
                "the AWS credentials were rejected (unknown access key or bad signature): check AWS_PROFILE / the keys in use",
            ),
            FailureKind::AccessDenied => f.write_str(
                "access denied: the credentials in use lack this permission (deploy/iam/ has the policies gid needs; `gid-admin doctor` shows which identity is used)",
            ),
            FailureKind::NotFound { code } => write!(f, "not found ({code})"),
            FailureKind::PreconditionFailed => {
                f.write_str("it changed since it was read (precondition failed)")
            }
            FailureKind::Throttled => f.write_str(
                "still throttled after every retry: lower the request rate or raise aws.max_attempts",
            ),
            FailureKind::ServerError { status } => {
                write!(f, "the service failed (HTTP {status}) after every retry; rerun later")
            }
            FailureKind::Rejected { code, message } if message.is_empty() => {
                write!(f, "refused: {code}")
            }
            FailureKind::Rejected { code, message } => write!(f, "refused: {code}: {message}"),
            FailureKind::BrokenResponse { attempts } => write!(
                f,
                "the response broke off before it was complete ({attempts} attempt(s)); rerun later"
            ),
            FailureKind::Other => f.write_str("the request failed (run with -v for the SDK's detail)"),
        }
    }
}
