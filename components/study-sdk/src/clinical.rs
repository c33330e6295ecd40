//! Diagnosis codes as surveillance reads them.
//!
//! The `diagnoses` column holds, per consultation, a list of codes: ICD-10 (CIM-10)
//! codes upper-case without dot (`J11`, `J111` for J11.1), and codes of any other
//! system as `system|code`. A consultation with no code has an empty list.
//!
//! Age classes are not here: the host computes the `age_class` dimension from the
//! bounds the manifest declares (`age_classes`), so a study never needs its own.

/// Whether a stored code is an ICD-10 code (any other system is stored as
/// `system|code`).
#[inline]
pub fn is_icd10_code(code: &str) -> bool {
    !code.is_empty() && !code.contains('|')
}

/// Whether at least one of the codes is an ICD-10 code: the consultation "has a coded
/// diagnosis", the usual denominator of surveillance shares.
pub fn has_icd10_code<'a>(diagnoses: impl IntoIterator<Item = &'a str>) -> bool {
    diagnoses.into_iter().any(is_icd10_code)
}

/// Whether one of the codes starts with one of the ICD-10 prefixes, as stored (upper
/// case, no dot): `has_code_prefix(codes, &["J10", "J11"])` is true for `J11` and
/// `J111` (J11.1), false for `J12` and for `http://example.org|J11`.
#[inline]
pub fn has_code_prefix<'a>(
    diagnoses: impl IntoIterator<Item = &'a str>,
    prefixes: &[&str],
) -> bool {
    diagnoses
        .into_iter()
        .any(|code| prefixes.iter().any(|prefix| code.starts_with(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_prefixes_match_stored_icd10_codes_only() {
        let codes = ["R50", "J111", "http://snomed.info/sct|J11"];
        assert!(has_code_prefix(codes, &["J10", "J11"]));
        assert!(!has_code_prefix(["J12", "|J11", "x|J10"], &["J10", "J11"]));
        assert!(!has_code_prefix([], &["J10"]));
    }

    #[test]
    fn a_consultation_is_coded_when_one_code_is_icd10() {
        assert!(has_icd10_code(["x|1", "A09"]));
        assert!(!has_icd10_code(["x|1", "|J11"]));
        assert!(!has_icd10_code([]));
        assert!(!is_icd10_code(""));
    }
}
