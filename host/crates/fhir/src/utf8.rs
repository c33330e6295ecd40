//! FHIR JSON is UTF-8 (RFC 8259 requires it between systems). serde_json checks the
//! strings it builds, but skips the others unchecked, so an element the reader ignores
//! could carry any bytes; the whole text is checked first instead, and the problem names
//! the first bad byte.

use crate::depth::position_of;

/// Why a text is not UTF-8, and where.
pub(crate) fn not_utf8(text: &[u8]) -> Option<String> {
    let error = std::str::from_utf8(text).err()?;
    let offset = error.valid_up_to();
    let at = position_of(text, offset);
    let what = match error.error_len() {
        Some(_) => format!("byte 0x{:02X}", text[offset]),
        None => "a truncated character".to_owned(),
    };
    Some(format!(
        "not UTF-8: {what} at line {}, column {}; FHIR JSON must be sent as UTF-8",
        at.line, at.column
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_byte_that_is_not_utf8_is_named_with_its_place() {
        assert_eq!(not_utf8("{\"a\":\"é\"}".as_bytes()), None);
        assert_eq!(
            not_utf8(b"{\n \"a\": \"\xff\"}").unwrap(),
            "not UTF-8: byte 0xFF at line 2, column 8; FHIR JSON must be sent as UTF-8"
        );
        assert!(
            not_utf8(b"\"\xc3")
                .unwrap()
                .contains("a truncated character")
        );
    }
}
