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

crate::validated_string! {
    /// An S3 bucket name, validated against S3's naming rules.
    pub struct BucketName, error NameError,
    rule bucket_name_rule, refused |value, reason| NameError::Bucket { name: value, reason };
}

/// Validates `name` against S3's naming rules.
fn bucket_name_rule(name: &str) -> Result<String, &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("length must be 3 to 63");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !edge_ok(name.as_bytes()[0]) || !edge_ok(name.as_bytes()[name.len() - 1]) {
        return Err("must start and end with a letter or digit");
    }
    if name.contains("..") {
        return Err("must not contain '..'");
    }
    Ok(name.to_owned())
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

crate::validated_string! {
    /// An object key that is safe on every backend: it is a relative, normalised path of
    /// non-empty segments, so it can never escape a local data root.
    ///
    /// Refused: empty keys, keys over 1024 bytes (the S3 limit), a leading `/`, `.`/`..` or empty
    /// segments, backslashes, control characters including NUL, Unicode look-alikes of `.`
    /// and `/`, and invisible characters that reorder or hide text.
    pub struct ObjectKey, error NameError,
    rule object_key_rule, refused |value, reason| NameError::Key { key: value, reason };
}

/// Validates `key`: not empty or absolute, at most [`ObjectKey::MAX_LEN`] bytes, no
/// control, invisible or look-alike characters, no backslash and no empty, `.` or
/// `..` segment (a key that could escape a local bucket or mislead a reader).
fn object_key_rule(key: &str) -> Result<String, &'static str> {
    if key.is_empty() {
        return Err("it is empty");
    }
    if key.len() > ObjectKey::MAX_LEN {
        return Err("it is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return Err("it is absolute (starts with '/')");
    }
    if key.chars().any(char::is_control) {
        return Err("it contains a control character (NUL, newline, ...)");
    }
    if key.contains('\\') {
        return Err("it contains a backslash");
    }
    if key.chars().any(|c| LOOKALIKES.contains(&c)) {
        return Err("it contains a Unicode look-alike of '.' or '/'");
    }
    if key.chars().any(is_invisible_format) {
        return Err("it contains an invisible or text-reordering character (bidi override, zero-width space, ...)");
    }
    for segment in key.split('/') {
        match segment {
            "." | ".." => return Err("it has a '.' or '..' segment"),
            "" if !key.ends_with('/') => return Err("it has an empty segment ('//')"),
            _ => {}
        }
    }
    if key.contains("//") {
        return Err("it has an empty segment ('//')");
    }
    Ok(key.to_owned())
}

impl ObjectKey {
    /// S3's maximum key length in bytes.
    pub const MAX_LEN: usize = 1024;

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
