//! The NIR (French social security number, also the INS identifier): 13 characters and a
//! 2-digit key, key = 97 − (number mod 97), with Corsica's `2A`/`2B` in the département
//! position counted as 19/18.

/// A NIR whose key checks, normalised: 15 characters, no spaces, `2A`/`2B` upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nir(String);

impl Nir {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Nir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NirError {
    #[error("a NIR has 15 characters (13 and a 2-digit key), not {0}")]
    Length(usize),
    #[error("a NIR starts with 1 or 2 (3, 4, 7 or 8 for a temporary number), not `{0}`")]
    FirstDigit(char),
    #[error("character {position} of the NIR is `{found}`, not a digit")]
    NotADigit { position: usize, found: char },
    #[error("the NIR key is {found} but its first 13 characters give {expected}")]
    KeyMismatch { expected: u8, found: u8 },
}

/// The first characters that NIRs (and temporary NIA numbers) start with.
const FIRST_DIGITS: &[u8] = b"123478";

/// Checks a NIR, spaces allowed (`1 84 12 76 451 089 46`).
pub fn validate_nir(text: &str) -> Result<Nir, NirError> {
    let mut compact = [0u8; 15];
    let mut length = 0;
    for character in text.chars().filter(|c| !c.is_whitespace()) {
        if length < compact.len() {
            if !character.is_ascii() {
                return Err(NirError::NotADigit {
                    position: length + 1,
                    found: character,
                });
            }
            compact[length] = character.to_ascii_uppercase() as u8;
        }
        length += 1;
    }
    if length != compact.len() {
        return Err(NirError::Length(length));
    }
    check_compact(&compact)?;
    // Only ASCII was stored, so this cannot fail.
    let normalised = String::from_utf8_lossy(&compact).into_owned();
    Ok(Nir(normalised))
}

/// Checks 15 upper-case ASCII bytes.
fn check_compact(nir: &[u8; 15]) -> Result<(), NirError> {
    if !FIRST_DIGITS.contains(&nir[0]) {
        return Err(NirError::FirstDigit(char::from(nir[0])));
    }
    let mut number: u64 = 0;
    for (index, &byte) in nir[..13].iter().enumerate() {
        let value = match (index, byte) {
            (_, b'0'..=b'9') => u64::from(byte - b'0'),
            // Corsica: 2A and 2B in the département position (characters 6 and 7).
            (6, b'A' | b'B') if nir[5] == b'2' => {
                // Counted as 19 and 18: the 2 already added becomes a 1, then 9 or 8.
                number -= 1;
                if byte == b'A' { 9 } else { 8 }
            }
            _ => {
                return Err(NirError::NotADigit {
                    position: index + 1,
                    found: char::from(byte),
                });
            }
        };
        number = number * 10 + value;
    }
    let mut found = 0u8;
    for (index, &byte) in nir[13..].iter().enumerate() {
        if !byte.is_ascii_digit() {
            return Err(NirError::NotADigit {
                position: 14 + index,
                found: char::from(byte),
            });
        }
        found = found * 10 + (byte - b'0');
    }
    let expected = (97 - number % 97) as u8;
    if found != expected {
        return Err(NirError::KeyMismatch { expected, found });
    }
    Ok(())
}

/// Characters that may separate the groups of a NIR written out for people.
fn is_group_separator(character: char) -> bool {
    matches!(character, ' ' | '.' | '-' | '\u{a0}')
}

/// Whether `text` contains a valid NIR, written compact or in groups separated by spaces,
/// dots or dashes. The NIR must stand as its own word (bounded by the ends of the text or
/// by non-alphanumeric characters): a 64-character hex pseudonym holds a run of 15
/// digits with a valid key about once in 4,000 hashes, and the host refuses a whole
/// batch on a match, so windows inside longer words are not looked at.
pub fn looks_like_valid_nir(text: &str) -> bool {
    // A NIR is 15 alphanumeric characters, so a text with fewer cannot hold one, and a
    // text that is one alphanumeric word holds one only if it is 15 long. Most cells the
    // host checks are short codes or 64-digit pseudonyms: they are settled here, in one
    // pass over the bytes (the full scan was 3% of ingestion's time).
    let alphanumerics = text.bytes().filter(u8::is_ascii_alphanumeric).count();
    if alphanumerics < 15 || (alphanumerics == text.len() && text.len() != 15) {
        return false;
    }
    // Alphanumeric words, each with whether a single group separator follows it directly
    // and joins it to the next word.
    let mut words: Vec<(&str, bool)> = Vec::new();
    let mut start = None;
    let mut characters = text.char_indices().peekable();
    while let Some((index, character)) = characters.next() {
        if character.is_ascii_alphanumeric() {
            start.get_or_insert(index);
            continue;
        }
        if let Some(word_start) = start.take() {
            let joined = is_group_separator(character)
                && characters
                    .peek()
                    .is_some_and(|(_, next)| next.is_ascii_alphanumeric());
            words.push((&text[word_start..index], joined));
        }
    }
    if let Some(word_start) = start {
        words.push((&text[word_start..], false));
    }
    for first in 0..words.len() {
        let mut compact = [0u8; 15];
        let mut length = 0;
        for &(word, joined) in &words[first..] {
            if length + word.len() > compact.len() {
                break;
            }
            for (slot, byte) in compact[length..].iter_mut().zip(word.bytes()) {
                *slot = byte.to_ascii_uppercase();
            }
            length += word.len();
            if length == compact.len() && check_compact(&compact).is_ok() {
                return true;
            }
            if !joined {
                break;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nir_whose_key_checks_is_accepted_and_normalised() {
        assert_eq!(
            validate_nir("184127645108946").unwrap().as_str(),
            "184127645108946"
        );
        assert_eq!(
            validate_nir("2 69 05 49 588 157 80").unwrap().as_str(),
            "269054958815780"
        );
    }

    #[test]
    fn a_nir_with_a_wrong_key_is_refused_with_the_expected_key() {
        assert_eq!(
            validate_nir("184127645108947"),
            Err(NirError::KeyMismatch {
                expected: 46,
                found: 47
            })
        );
    }

    #[test]
    fn corsican_nirs_count_2a_as_19_and_2b_as_18() {
        assert_eq!(
            validate_nir("155122A12345663").unwrap().as_str(),
            "155122A12345663"
        );
        assert_eq!(
            validate_nir("2 70 05 2b 001 234 68").unwrap().as_str(),
            "270052B00123468"
        );
        // The key computed with 2A read as 20 does not check.
        assert!(matches!(
            validate_nir("155122A12345636"),
            Err(NirError::KeyMismatch { expected: 63, .. })
        ));
        // A and B are only allowed after a 2 in the département position.
        assert!(matches!(
            validate_nir("155123A12345663"),
            Err(NirError::NotADigit { position: 7, .. })
        ));
        assert!(matches!(
            validate_nir("1552A1234567878"),
            Err(NirError::NotADigit { position: 5, .. })
        ));
    }

    #[test]
    fn temporary_numbers_are_accepted_and_other_first_digits_refused() {
        assert!(validate_nir("384059912345653").is_ok());
        assert_eq!(
            validate_nir("584059912345653"),
            Err(NirError::FirstDigit('5'))
        );
    }

    #[test]
    fn wrong_lengths_and_letters_are_refused() {
        assert_eq!(validate_nir("18412764510894"), Err(NirError::Length(14)));
        assert_eq!(validate_nir("1841276451089460"), Err(NirError::Length(16)));
        assert!(matches!(
            validate_nir("18412764510X946"),
            Err(NirError::NotADigit { position: 12, .. })
        ));
        assert!(validate_nir("18412764510894é").is_err());
    }

    #[test]
    fn a_nir_is_found_inside_text_compact_or_in_groups() {
        assert!(looks_like_valid_nir("184127645108946"));
        assert!(looks_like_valid_nir("NIR: 1 84 12 76 451 089 46, vu"));
        assert!(looks_like_valid_nir("patient=1.84.12.76.451.089.46"));
        assert!(looks_like_valid_nir("x 155122a12345663"));
    }

    #[test]
    fn text_without_a_valid_nir_is_not_flagged() {
        assert!(!looks_like_valid_nir("184127645108947"));
        assert!(!looks_like_valid_nir("2024-01-15"));
        assert!(!looks_like_valid_nir(""));
        // A valid NIR's digits inside a longer word (here a hex digest) are not a NIR.
        assert!(!looks_like_valid_nir(
            "ab184127645108946cdef0123456789abcdef0123456789abcdef0123456789"
        ));
    }
}
