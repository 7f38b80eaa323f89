use std::fmt;

/// Why a bucket name or object key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    /// A bucket name S3 would refuse.
    #[error("bucket name `{name}` is invalid: {reason} (S3 rules: 3-63 chars of a-z, 0-9, '.', '-', starting and ending with a letter or digit)")]
    Bucket {
        /// The name as given.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A key gid refuses to read or write (too long, control characters, `..`).
    #[error("object key {key:?} is refused: {reason}")]
    Key {
        /// The key as given.
        key: String,
        /// The rule it breaks.
        reason: &'static str,
    },
}

/// An S3 bucket name, validated against S3's naming rules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct BucketName(String);

impl BucketName {
    /// Validates `name` against S3's naming rules.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        let fail = |reason| {
            Err(NameError::Bucket {
                name: name.clone(),
                reason,
            })
        };
        if !(3..=63).contains(&name.len()) {
            return fail("length must be 3 to 63");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        {
            return fail("only lowercase letters, digits, '.' and '-' are allowed");
        }
        let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !edge_ok(name.as_bytes()[0]) || !edge_ok(name.as_bytes()[name.len() - 1]) {
            return fail("must start and end with a letter or digit");
        }
        if name.contains("..") {
            return fail("must not contain '..'");
        }
        Ok(Self(name))
    }

    /// The name as S3 takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for BucketName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for BucketName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BucketName::new(s).map_err(serde::de::Error::custom)
    }
}

/// Characters that render like `.`, `..`, `/` or `\\` and would let a key *look* like it
/// climbs directories (`2019∕jan`, `．．/`, `‥/`) in listings and on disk.
const LOOKALIKES: [char; 16] = [
    '\u{2024}', // one dot leader
    '\u{2025}', // two dot leader (looks like "..")
    '\u{2026}', // horizontal ellipsis
    '\u{FF0E}', // fullwidth full stop
    '\u{FE52}', // small full stop
    '\u{2215}', // division slash
    '\u{2044}', // fraction slash
    '\u{FF0F}', // fullwidth solidus
    '\u{29F8}', // big solidus
    '\u{2571}', // box drawings light diagonal upper right to lower left
    '\u{0338}', // combining long solidus overlay
    '\u{FF3C}', // fullwidth reverse solidus
    '\u{2216}', // set minus
    '\u{29F5}', // reverse solidus operator
    '\u{29F9}', // big reverse solidus
    '\u{FE68}', // small reverse solidus
];

/// Invisible characters that reorder or hide text: a key `report\u{202E}lmth.csv` is listed
/// as `reportvsc.html`. Bidirectional overrides and isolates, zero-width characters, BOM.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
        | '\u{061C}' | '\u{FEFF}' | '\u{00AD}')
}

/// An object key that is safe on every backend: it is a relative, normalised path of
/// non-empty segments, so it can never escape a local data root.
///
/// Refused: empty keys, keys over 1024 bytes (the S3 limit), a leading `/`, `.`/`..` or empty
/// segments, backslashes, control characters including NUL, Unicode look-alikes of `.`
/// and `/`, and invisible characters that reorder or hide text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// S3's maximum key length in bytes.
    pub const MAX_LEN: usize = 1024;

    /// Validates `key`: not empty or absolute, at most [`ObjectKey::MAX_LEN`] bytes, no
    /// control, invisible or look-alike characters, no backslash and no empty, `.` or
    /// `..` segment (a key that could escape a local bucket or mislead a reader).
    pub fn new(key: impl Into<String>) -> Result<Self, NameError> {
        let key = key.into();
        let fail = |reason| {
            Err(NameError::Key {
                key: key.clone(),
                reason,
            })
        };
        if key.is_empty() {
            return fail("it is empty");
        }
        if key.len() > Self::MAX_LEN {
            return fail("it is longer than 1024 bytes");
        }
        if key.starts_with('/') {
            return fail("it is absolute (starts with '/')");
        }
        if key.chars().any(char::is_control) {
            return fail("it contains a control character (NUL, newline, ...)");
        }
        if key.contains('\\') {
            return fail("it contains a backslash");
        }
        if key.chars().any(|c| LOOKALIKES.contains(&c)) {
            return fail("it contains a Unicode look-alike of '.' or '/'");
        }
        if key.chars().any(is_invisible_format) {
            return fail("it contains an invisible or text-reordering character (bidi override, zero-width space, ...)");
        }
        for segment in key.split('/') {
            match segment {
                "." | ".." => return fail("it has a '.' or '..' segment"),
                "" if !key.ends_with('/') => return fail("it has an empty segment ('//')"),
                _ => {}
            }
        }
        if key.contains("//") {
            return fail("it has an empty segment ('//')");
        }
        Ok(Self(key))
    }

    /// The key as S3 takes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (the file name).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The key's extension, lowercased, without the dot.
    pub fn extension(&self) -> Option<String> {
        let name = self.file_name();
        name.rsplit_once('.')
            .filter(|(stem, _)| !stem.is_empty())
            .map(|(_, ext)| ext.to_ascii_lowercase())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ObjectKey {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> serde::Deserialize<'de> for ObjectKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ObjectKey::new(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_export_keys() {
        for k in [
            "2019/jan/part-001.csv",
            "index.html",
            "a b/c (1).csv",
            "año/ñ.csv",
            "dir/",
        ] {
            ObjectKey::new(k).unwrap_or_else(|e| panic!("{k}: {e}"));
        }
    }

    #[test]
    fn refuses_keys_that_could_escape_a_folder() {
        let long = "a".repeat(1025);
        for k in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a\0b",
            "a\nb",
            "a\\..\\b",
            "\u{FF0E}\u{FF0E}/x",
            "2019\u{2215}jan",
            "\u{2025}/x",
            "a\u{2571}b",
            "report\u{202E}lmth.csv",
            "a\u{200B}b",
            "\u{FEFF}index.html",
            "a\u{0338}b",
            long.as_str(),
        ] {
            assert!(ObjectKey::new(k).is_err(), "{k:?} should be refused");
        }
    }

    #[test]
    fn key_error_names_the_key_and_reason() {
        let err = ObjectKey::new("../x").unwrap_err().to_string();
        assert!(err.contains("\"../x\"") && err.contains(".."), "{err}");
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(BucketName::new("gid-reports").is_ok());
        for bad in ["ab", "Gid", "gid_reports", "-gid", "gid..x", ".gid"] {
            assert!(BucketName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn extension_is_lowercased() {
        assert_eq!(
            ObjectKey::new("a/B.CSV").unwrap().extension().as_deref(),
            Some("csv")
        );
        assert_eq!(ObjectKey::new("a/.hidden").unwrap().extension(), None);
    }
}
