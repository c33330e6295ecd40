//! A guard against deeply nested JSON, run before any parser sees the bytes.
//!
//! serde_json stops at 128 levels on its own, but a clear problem naming the place is
//! better for the sender than its generic error, and FHIR resources never come close:
//! the deepest real ones (Questionnaire items) stay under 30 levels.

/// Deepest nesting of objects and arrays the reader accepts.
pub const MAX_DEPTH: usize = 64;

/// Where the nesting first went deeper than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooDeep {
    /// 1-based line and column (in bytes) within the scanned text.
    pub line: usize,
    pub column: usize,
}

/// Scans `text` once, skipping strings (with their escapes), and reports the first
/// bracket that opens level `limit + 1`.
pub(crate) fn find_too_deep(text: &[u8], limit: usize) -> Option<TooDeep> {
    let mut depth = 0usize;
    let mut offset = 0;
    while let Some(&byte) = text.get(offset) {
        match byte {
            b'"' => {
                // Most of a FHIR resource's bytes are inside strings: jump to the next
                // quote or backslash instead of looking at each byte.
                let mut cursor = offset + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &text[cursor.min(text.len())..]) {
                        Some(found) if text[cursor + found] == b'\\' => cursor += found + 2,
                        Some(found) => {
                            offset = cursor + found;
                            break;
                        }
                        // An unterminated string is the parser's to report.
                        None => return None,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Some(position_of(text, offset));
                }
            }
            // Unbalanced closers are the parser's to report.
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        offset += 1;
    }
    None
}

/// The 1-based line and byte column of `offset` in `text`.
pub(crate) fn position_of(text: &[u8], offset: usize) -> TooDeep {
    let before = &text[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    TooDeep {
        line,
        column: offset - line_start + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_within_the_limit_passes() {
        let text = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert_eq!(find_too_deep(text.as_bytes(), MAX_DEPTH), None);
    }

    #[test]
    fn the_first_bracket_past_the_limit_is_located() {
        let text = format!("{{\"a\":\n{}", "[".repeat(100));
        assert_eq!(
            find_too_deep(text.as_bytes(), MAX_DEPTH),
            Some(TooDeep {
                line: 2,
                column: 64
            })
        );
    }

    #[test]
    fn escaped_quotes_and_unterminated_strings_do_not_end_the_scan_wrongly() {
        let escaped = format!("{{\"a\":\"\\\\\",\"b\":{}", "[".repeat(65));
        assert!(find_too_deep(escaped.as_bytes(), MAX_DEPTH).is_some());
        let unterminated = format!("{}\"{}", "[".repeat(3), "[".repeat(100));
        assert_eq!(find_too_deep(unterminated.as_bytes(), MAX_DEPTH), None);
        let trailing_backslash = "[\"\\";
        assert_eq!(
            find_too_deep(trailing_backslash.as_bytes(), MAX_DEPTH),
            None
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = format!(
            "{{\"text\":\"{}\\\"{}\"}}",
            "[".repeat(100),
            "{".repeat(100)
        );
        assert_eq!(find_too_deep(text.as_bytes(), MAX_DEPTH), None);
    }
}
