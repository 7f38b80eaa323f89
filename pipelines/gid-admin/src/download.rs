//! Reading an operator's input from a URL: `subscribe --file https://…`, where the course
//! hands out the contacts list as a presigned S3 URL.
//!
//! A presigned URL's query string is its signature and works as a password until it
//! expires, so a [`SourceUrl`] displays (and every message names) only its scheme, host
//! and path.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail};
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The most a download may take, connection to last byte.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The largest body read (a million contacts are ~100 MB).
const MAX_BYTES: usize = 512 * 1024 * 1024;

/// An `https://` URL, or an `http://` one on this machine (127.0.0.1, localhost, ::1):
/// plain HTTP elsewhere would send the list, and the URL's signature, in clear text.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SourceUrl(Uri);

impl SourceUrl {
    /// Whether `value` is meant as a URL rather than a path (it has a scheme).
    pub(crate) fn looks_like_url(value: &str) -> bool {
        value.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic())
        })
    }

    /// Parses and checks a URL; the error never repeats its query string.
    pub(crate) fn parse(value: &str) -> Result<Self, String> {
        let shown = without_query(value);
        let uri: Uri = value
            .parse()
            .map_err(|e| format!("{shown} is not a URL ({e})"))?;
        let host = uri.host().unwrap_or_default();
        match uri.scheme_str() {
            Some("https") if !host.is_empty() => Ok(Self(uri)),
            Some("http") if is_loopback(host) => Ok(Self(uri)),
            Some("http") => Err(format!(
                "{shown}: plain http:// is read only from this machine (127.0.0.1, localhost); use the https:// URL"
            )),
            _ => Err(format!(
                "{shown}: only https:// URLs (and local paths) can be read; for a presigned S3 URL pass it whole, in quotes"
            )),
        }
    }

    /// Downloads the body (a 2xx answer only; redirects are not followed).
    pub(crate) async fn fetch(&self) -> anyhow::Result<Bytes> {
        let failed = |why: String| anyhow!("downloading {self} failed: {why}");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| {
                failed(format!(
                    "the system's TLS root certificates cannot be read ({e})"
                ))
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector);
        let download = async {
            let response = client.get(self.0.clone()).await.map_err(|e| {
                failed(format!(
                    "{}; check the URL and that this machine can reach its host",
                    connection_error(&e)
                ))
            })?;
            let status = response.status();
            if !status.is_success() {
                let hint = match status.as_u16() {
                    403 => " (a presigned URL that expired or was cut short answers this: ask for a new one)",
                    404 => " (check the URL)",
                    _ => "",
                };
                bail!(failed(format!("the server answered HTTP {status}{hint}")));
            }
            let body = Limited::new(response.into_body(), MAX_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    failed(format!(
                        "the body broke off or is over {MAX_BYTES} bytes ({e})"
                    ))
                })?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(TIMEOUT, download)
            .await
            .map_err(|_| failed(format!("no complete answer within {} s", TIMEOUT.as_secs())))?
    }
}

/// The connection error's innermost cause ("connection refused", "invalid peer
/// certificate"), without the URL the client may have put in its own message.
fn connection_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

fn is_loopback(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

fn without_query(value: &str) -> &str {
    value.split(['?', '#']).next().unwrap_or(value)
}

impl fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.0.scheme_str().unwrap_or("https");
        let authority = self.0.authority().map(|a| a.as_str()).unwrap_or_default();
        // An authority may carry `user:password@`: never shown either.
        let host = authority.rsplit('@').next().unwrap_or(authority);
        write!(f, "{scheme}://{host}{}", self.0.path())
    }
}

/// Shows what Display shows, so a `{:?}` of a containing value cannot leak the signature.
impl fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRESIGNED: &str = "https://gid-staging.s3.amazonaws.com/contacts.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef";

    #[test]
    fn a_presigned_url_is_shown_without_its_signature() {
        let url = SourceUrl::parse(PRESIGNED).unwrap();
        assert_eq!(
            url.to_string(),
            "https://gid-staging.s3.amazonaws.com/contacts.csv"
        );
        assert!(!format!("{url:?}").contains("Signature"));
    }

    #[test]
    fn plain_http_is_read_only_from_this_machine() {
        assert!(SourceUrl::parse("http://127.0.0.1:8080/contacts.csv").is_ok());
        assert!(SourceUrl::parse("http://localhost/contacts.csv").is_ok());
        let err =
            SourceUrl::parse("http://example.org/contacts.csv?X-Amz-Signature=secret").unwrap_err();
        assert!(err.contains("use the https:// URL"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let err = SourceUrl::parse("ftp://example.org/contacts.csv").unwrap_err();
        assert!(err.contains("only https://"), "{err}");
    }

    #[test]
    fn only_values_with_a_scheme_are_urls() {
        assert!(SourceUrl::looks_like_url(PRESIGNED));
        assert!(!SourceUrl::looks_like_url("contacts.csv"));
        assert!(!SourceUrl::looks_like_url("./odd://name.csv"));
    }
}
