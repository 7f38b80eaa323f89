//! The SMS attributes every message gid sends carries, so SMS never go out with whatever
//! the account's defaults happen to be (Promotional unless someone changed them: cheapest
//! route, no reliability retries — wrong for a crew's alert).
//!
//! A notifier holds one [`SmsAttributes`] value and applies it to every publish (a topic's
//! SMS subscribers get them; email ignores them) and every direct SMS, as SNS message
//! attributes `AWS.SNS.SMS.SMSType`, `AWS.SNS.SMS.SenderID` and
//! `AWS.MM.SMS.OriginationNumber`.

use gid_core::SmsType;

use crate::{InvalidInput, PhoneNumber};

/// The message attribute naming the SMS type.
pub const SMS_TYPE_ATTRIBUTE: &str = "AWS.SNS.SMS.SMSType";
/// The message attribute naming the sender ID.
pub const SENDER_ID_ATTRIBUTE: &str = "AWS.SNS.SMS.SenderID";
/// The message attribute naming the origination number.
pub const ORIGINATION_NUMBER_ATTRIBUTE: &str = "AWS.MM.SMS.OriginationNumber";

gid_core::validated_string! {
    /// An alphabetic sender ID: 1 to 11 ASCII letters and digits, at least one letter (SNS's
    /// rule; carriers show it instead of a number where the country allows).
    pub struct SenderId, error InvalidInput,
    rule sender_id_rule, refused |value, reason| InvalidInput::SenderId { value, reason };
}

/// Validates `value`: 1 to 11 letters and digits, at least one a letter.
fn sender_id_rule(value: &str) -> Result<String, &'static str> {
    if value.is_empty() || value.len() > 11 {
        return Err("it must be 1 to 11 characters");
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("it contains a character other than letters and digits");
    }
    if !value.bytes().any(|b| b.is_ascii_alphabetic()) {
        return Err("it has no letter");
    }
    Ok(value.to_owned())
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
