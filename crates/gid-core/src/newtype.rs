//! Validated string newtypes, declared once.
//!
//! Bucket names, object keys, topic names, ARNs, phone numbers and sender IDs are each a
//! `String` that only a validating `new` can build. What surrounds that constructor — the
//! derives, `as_str`, `Display`, `FromStr`, and serde going through `new` so that a value
//! read from config or a ledger is checked like one typed on the command line — is the
//! same for all of them, so it is written here and not re-spelled beside every rule.

/// Declares `pub struct $name(String)`: derives, `as_str`, `Display`, `FromStr` and serde
/// (transparent on the way out, through `new` on the way in).
///
/// With `rule` and `refused`, `new` is generated too: the rule answers the canonical text
/// or the reason it refuses, and `refused` builds the error from the value and that reason.
/// Without them the type writes its own `new(&str) -> Result<Self, $err>`.
///
/// ```
/// #[derive(Debug, thiserror::Error)]
/// #[error("`{value}` is refused: {reason}")]
/// pub struct Refused {
///     value: String,
///     reason: &'static str,
/// }
///
/// fn shout_rule(word: &str) -> Result<String, &'static str> {
///     if word.is_empty() {
///         return Err("it is empty");
///     }
///     Ok(word.to_ascii_uppercase())
/// }
///
/// gid_core::validated_string! {
///     /// An upper-case word.
///     pub struct Shout, error Refused,
///     rule shout_rule, refused |value, reason| Refused { value, reason };
/// }
///
/// let shout: Shout = "hey".parse().unwrap();
/// assert_eq!(shout.to_string(), "HEY");
/// assert_eq!("".parse::<Shout>().unwrap_err().to_string(), "`` is refused: it is empty");
/// ```
#[macro_export]
macro_rules! validated_string {
    (
        $(#[$meta:meta])* $vis:vis struct $name:ident, error $err:ty,
        rule $rule:path, refused |$value:ident, $reason:ident| $refused:expr;
    ) => {
        $crate::validated_string! { $(#[$meta])* $vis struct $name, error $err; }

        impl $name {
            /// Checks `value` against the type's rule and keeps its canonical form; the
            /// error names the value and the rule it breaks.
            pub fn new(value: impl AsRef<str>) -> ::std::result::Result<Self, $err> {
                let value = value.as_ref();
                match $rule(value) {
                    Ok(canonical) => Ok(Self(canonical)),
                    Err($reason) => {
                        let $value = value.to_owned();
                        Err($refused)
                    }
                }
            }
        }
    };
    ($(#[$meta:meta])* $vis:vis struct $name:ident, error $err:ty;) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis struct $name(String);

        impl $name {
            /// The text as the services and the files take it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $err;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl $crate::__serde::Serialize for $name {
            fn serialize<S: $crate::__serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> $crate::__serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let text = <String as $crate::__serde::Deserialize>::deserialize(deserializer)?;
                Self::new(text.as_str()).map_err(<D::Error as $crate::__serde::de::Error>::custom)
            }
        }
    };
}
