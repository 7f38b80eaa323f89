//! Account facts SNS knows and the port does not carry, for a preflight (`gid-admin
//! doctor`): whether the account's SMS are still in the sandbox.

use aws_sdk_sns::config::retry::RetryConfig;

use super::{classify, SnsNotifier};
use crate::NotifyError;

/// Where the account's SMS can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsSandbox {
    /// SMS reach only phone numbers verified in the account's SMS sandbox.
    InSandbox,
    /// SMS reach any number (production access granted).
    Production,
}

impl SnsNotifier {
    /// The custom endpoint SNS is reached at (`None`: AWS's own).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// GetSMSSandboxAccountStatus. Against a custom endpoint it asks once, without retries:
    /// emulators lack the operation and answer 500, which retries would only slow down.
    pub async fn sms_sandbox(&self) -> Result<SmsSandbox, NotifyError> {
        let mut request = self.client.get_sms_sandbox_account_status().customize();
        if self.endpoint.is_some() {
            request = request.config_override(
                aws_sdk_sns::config::Builder::default()
                    .retry_config(RetryConfig::standard().with_max_attempts(1)),
            );
        }
        match request.send().await {
            Ok(output) if output.is_in_sandbox() => Ok(SmsSandbox::InSandbox),
            Ok(_) => Ok(SmsSandbox::Production),
            Err(e) => Err(classify(
                self.endpoint.as_deref(),
                "read the SMS sandbox status of",
                "the account",
                e,
                None,
            )),
        }
    }
}
