//! Percent-encoding for the URLs gid builds itself (object URLs, `file://` paths, site links)
//! and for recognising secrets that appear encoded in a URL's query string.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Every byte but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`): what a single
/// component (a query value, one path segment) must escape to stay one component.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// [`COMPONENT`] with `/` kept: an S3 key or a file path whose `/` separate segments.
const PATH: &AsciiSet = &COMPONENT.remove(b'/');

/// Percent-encodes `value` as one URL component: every byte but the unreserved characters,
/// upper-case hex (`a b/c` → `a%20b%2Fc`), the form AWS signs and S3 expects.
pub fn encode_url_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// Percent-encodes `path` for a URL's path, keeping `/` as the separator
/// (`2019/jan/a b#1.csv` → `2019/jan/a%20b%231.csv`).
pub fn encode_url_path(path: &str) -> String {
    utf8_percent_encode(path, PATH).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_their_separators_and_unreserved_characters() {
        assert_eq!(
            encode_url_path("/a b/#x~_.-é.csv"),
            "/a%20b/%23x~_.-%C3%A9.csv"
        );
    }

    #[test]
    fn components_escape_the_separator_too() {
        assert_eq!(encode_url_component("a/b+c=d"), "a%2Fb%2Bc%3Dd");
    }
}
