//! Characters that must not reach a person's screen as they are: control characters
//! (ESC starts a terminal escape sequence, C1's U+009B is one on its own) and the
//! bidirectional and invisible formatting characters (U+202E shows the text after it
//! reversed). The host refuses them in what it accepts and escapes them in what it
//! prints; here, the audit log's JSON export escapes them.

/// What kind of unsafe character `c` is, if it is one.
pub fn unsafe_char(c: char) -> Option<&'static str> {
    if c.is_control() {
        Some("a control character")
    } else if matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}'
    ) {
        Some("a bidirectional or invisible formatting character")
    } else {
        None
    }
}

/// JSON text with every unsafe character that is not a line break written as a `\uXXXX`
/// escape: the same JSON value, safe to print. (serde_json escapes only U+0000..U+001F,
/// inside strings; every unsafe character lies in the Basic Multilingual Plane.)
pub fn escape_json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c != '\n' && unsafe_char(c).is_some() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_json_is_the_same_value_without_unsafe_characters() {
        let value = serde_json::json!({"log": "a\u{9b}31m b\u{202e}c \u{1b}[2J", "n": 1});
        let text = serde_json::to_string_pretty(&value).unwrap();
        let safe = escape_json_for_terminal(&text);
        assert!(
            !safe.chars().any(|c| c != '\n' && unsafe_char(c).is_some()),
            "{safe}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&safe).unwrap(),
            value
        );
    }
}
