//! Forms, queries and links: `application/x-www-form-urlencoded` decoded by
//! form_urlencoded, path segments and link parts by percent-encoding. The pages and the
//! study API both read their queries here.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything but the unreserved characters of RFC 3986 is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a query or path component.
pub fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// Decodes a percent-encoded path segment (`+` stays a `+`, as in a path).
pub fn url_decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// `application/x-www-form-urlencoded` text (a form's body or a query) as pairs, decoded;
/// empty values are kept.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

/// The first non-empty value of `name` in `pairs`.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.trim().is_empty())
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_queries_decode() {
        let pairs = parse_form("token=carrel_ab%5Fc&action=study.approve&x=a+b&empty=&bad=%zz%4");
        assert_eq!(field(&pairs, "token"), Some("carrel_ab_c"));
        assert_eq!(field(&pairs, "action"), Some("study.approve"));
        assert_eq!(field(&pairs, "x"), Some("a b"));
        assert_eq!(field(&pairs, "empty"), None);
        assert_eq!(field(&pairs, "bad"), Some("%zz%4"));
        assert_eq!(
            url_decode(&url_encode("study:ili weekly/é+")),
            "study:ili weekly/é+"
        );
        assert_eq!(url_encode("a b/c~"), "a%20b%2Fc~");
    }
}
