//! The SMS attributes every message gid sends carries, so SMS never go out with whatever
//! the account's defaults happen to be (Promotional unless someone changed them: cheapest
//! route, no reliability retries — wrong for a crew's alert).
//!
//! A notifier holds one [`SmsAttributes`] value and applies it to every publish (a topic's
//! SMS subscribers get them; email ignores them) and every direct SMS, as SNS message
//! attributes `AWS.SNS.SMS.SMSType`, `AWS.SNS.SMS.SenderID` and
//! `AWS.MM.SMS.OriginationNumber`.

use std::fmt;

use gid_core::SmsType;
use serde::Serialize;

use crate::{InvalidInput, PhoneNumber};

/// The message attribute naming the SMS type.
pub const SMS_TYPE_ATTRIBUTE: &str = "AWS.SNS.SMS.SMSType";
/// The message attribute naming the sender ID.
pub const SENDER_ID_ATTRIBUTE: &str = "AWS.SNS.SMS.SenderID";
/// The message attribute naming the origination number.
pub const ORIGINATION_NUMBER_ATTRIBUTE: &str = "AWS.MM.SMS.OriginationNumber";

/// An alphabetic sender ID: 1 to 11 ASCII letters and digits, at least one letter (SNS's
/// rule; carriers show it instead of a number where the country allows).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SenderId(String);

impl SenderId {
    /// Validates `value`: 1 to 11 letters and digits, at least one a letter.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidInput> {
        let value = value.into();
        let fail = |reason| {
            Err(InvalidInput::SenderId {
                value: value.clone(),
                reason,
            })
        };
        if value.is_empty() || value.len() > 11 {
            return fail("it must be 1 to 11 characters");
        }
        if !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return fail("it contains a character other than letters and digits");
        }
        if !value.bytes().any(|b| b.is_ascii_alphabetic()) {
            return fail("it has no letter");
        }
        Ok(Self(value))
    }

    /// The sender ID as SNS takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SenderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What every SMS gid sends is marked with (`[notify.sms]` in config).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmsAttributes {
    /// Transactional or promotional.
    pub sms_type: SmsType,
    /// The alphabetic sender shown on the phone; `None`: the account's default.
    pub sender_id: Option<SenderId>,
    /// The number that sends; `None`: one SNS picks from the account's.
    pub origination_number: Option<PhoneNumber>,
}

impl SmsAttributes {
    /// Validated attributes from their configured text.
    pub fn new(
        sms_type: SmsType,
        sender_id: Option<&str>,
        origination_number: Option<&str>,
    ) -> Result<Self, InvalidInput> {
        Ok(Self {
            sms_type,
            sender_id: sender_id.map(SenderId::new).transpose()?,
            origination_number: origination_number.map(PhoneNumber::new).transpose()?,
        })
    }

    /// The attributes from `[notify.sms]`.
    pub fn from_config(config: &gid_core::SmsConfig) -> Result<Self, InvalidInput> {
        Self::new(
            config.sms_type,
            config.sender_id.as_deref(),
            config.origination_number.as_deref(),
        )
    }

    /// The SNS message attributes (name, string value), in a fixed order.
    pub fn message_attributes(&self) -> Vec<(&'static str, &str)> {
        let mut attributes = vec![(SMS_TYPE_ATTRIBUTE, self.sms_type.as_str())];
        if let Some(sender_id) = &self.sender_id {
            attributes.push((SENDER_ID_ATTRIBUTE, sender_id.as_str()));
        }
        if let Some(number) = &self.origination_number {
            attributes.push((ORIGINATION_NUMBER_ATTRIBUTE, number.as_str()));
        }
        attributes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_ids_are_one_to_eleven_letters_and_digits_with_a_letter() {
        for good in ["GID", "SanDiegoGID", "City311", "a"] {
            SenderId::new(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["", "SanDiegoCity", "311", "San Diego", "Ciudad-1", "Café"] {
            let err = SenderId::new(bad).expect_err(bad);
            assert!(err.to_string().contains("sender ID"), "{err}");
        }
    }

    #[test]
    fn attributes_default_to_transactional_and_carry_what_is_configured() {
        let default = SmsAttributes::default();
        assert_eq!(
            default.message_attributes(),
            [("AWS.SNS.SMS.SMSType", "Transactional")]
        );
        let all = SmsAttributes::new(
            SmsType::Promotional,
            Some("SanDiegoGID"),
            Some("+1 619 555 0100"),
        )
        .unwrap();
        assert_eq!(
            all.message_attributes(),
            [
                ("AWS.SNS.SMS.SMSType", "Promotional"),
                ("AWS.SNS.SMS.SenderID", "SanDiegoGID"),
                ("AWS.MM.SMS.OriginationNumber", "+16195550100"),
            ]
        );
        assert!(SmsAttributes::new(SmsType::Transactional, None, Some("6195550100")).is_err());
    }
}
