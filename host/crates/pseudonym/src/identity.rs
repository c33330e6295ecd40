//! What a patient's pseudonym is the keyed hash of: the one normalisation shared by the
//! pseudonymiser (every consultation it stores) and the host (every objection it
//! registers, every batch it checks), so that an objection matches exactly the rows the
//! pseudonymiser wrote for that patient.

use carrel_fhir::{IdentifiedPatient, NirError, validate_nir};

use crate::{KeyedHasher, PATIENT_DOMAIN, PseudonymiseError, hash_all, rules};

/// The identity key of a NIR: the NIR normalised (no spaces, `2A`/`2B` upper-case), or
/// why it does not check.
pub fn nir_identity(nir: &str) -> Result<String, NirError> {
    validate_nir(nir).map(|nir| nir.into_string())
}

/// The identity key of the traits `FAMILY|FIRSTGIVEN|YYYY-MM-DD|sex`, each normalised
/// ([`rules::normalise_name`], [`rules::sex_code`]); `None` when the patient has no
/// name and no birth date at all.
pub fn traits_identity(patient: &IdentifiedPatient) -> Option<String> {
    let family = patient
        .family
        .as_deref()
        .map(rules::normalise_name)
        .unwrap_or_default();
    let given = patient
        .given
        .as_deref()
        .map(rules::normalise_name)
        .unwrap_or_default();
    let birth_date = patient
        .birth_date
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if family.is_empty() && given.is_empty() && birth_date.is_empty() {
        return None;
    }
    let sex = rules::sex_code(patient.sex.as_deref());
    Some(format!("{family}|{given}|{birth_date}|{sex}"))
}

/// The identity key the pseudonymiser hashes for a patient's consultations: the NIR when
/// it checks, else the traits ([`traits_identity`]); `None` when there is neither.
pub fn identity_key(patient: &IdentifiedPatient) -> Option<String> {
    patient
        .nir
        .as_deref()
        .and_then(|nir| nir_identity(nir).ok())
        .or_else(|| traits_identity(patient))
}

/// Why an objection's identifiers cannot be turned into pseudonyms. Never repeats a
/// value it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectionIdentityError {
    #[error("the NIR does not check: {0}")]
    InvalidNir(NirError),
    #[error(
        "without a NIR, the identity traits must give the family name, the first given name and the full birth date (YYYY-MM-DD); missing: {0}"
    )]
    IncompleteTraits(String),
}

/// Every identity key under which a patient's consultations may be stored, from the
/// identifiers of their objection: the NIR's when a NIR is given (it must check), and the
/// traits' when family name, first given name and full birth date are all given (a source
/// that sends no NIR stores the patient under those). At least one form is required; a
/// partial set of traits is refused rather than hashed, since it could match another
/// person's rows.
pub fn objection_identities(
    patient: &IdentifiedPatient,
) -> Result<Vec<String>, ObjectionIdentityError> {
    let mut keys = Vec::new();
    if let Some(nir) = patient.nir.as_deref().filter(|n| !n.trim().is_empty()) {
        keys.push(nir_identity(nir).map_err(ObjectionIdentityError::InvalidNir)?);
    }
    let full_birth_date = patient.birth_date.as_deref().is_some_and(|date| {
        carrel_fhir::date::parse_date(date.trim()).is_ok_and(|d| d.day.is_some())
    });
    let names_letters = |value: &Option<String>| {
        value
            .as_deref()
            .is_some_and(|v| !rules::normalise_name(v).is_empty())
    };
    let mut missing = Vec::new();
    if !names_letters(&patient.family) {
        missing.push("family name");
    }
    if !names_letters(&patient.given) {
        missing.push("given name");
    }
    if !full_birth_date {
        missing.push("birth date");
    }
    if missing.is_empty() {
        keys.extend(traits_identity(patient));
    } else if keys.is_empty() {
        // Traits that were partly given are an incomplete objection, as is nothing at all.
        return Err(ObjectionIdentityError::IncompleteTraits(missing.join(", ")));
    }
    Ok(keys)
}

/// The patient pseudonyms (`patient_id`) of identity keys, in order: the keyed hash of
/// domain [`PATIENT_DOMAIN`], one call for all of them.
pub fn patient_pseudonyms<H: KeyedHasher>(
    hasher: &mut H,
    identity_keys: &[Vec<u8>],
) -> Result<Vec<String>, PseudonymiseError> {
    if identity_keys.is_empty() {
        return Ok(Vec::new());
    }
    hash_all(hasher, PATIENT_DOMAIN, identity_keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient(nir: Option<&str>, family: Option<&str>, birth: Option<&str>) -> IdentifiedPatient {
        IdentifiedPatient {
            nir: nir.map(str::to_owned),
            family: family.map(str::to_owned),
            given: Some("Maëlle".into()),
            birth_date: birth.map(str::to_owned),
            sex: Some("female".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_nir_is_the_identity_when_it_checks_and_the_traits_otherwise() {
        let with_nir = patient(
            Some("2 69 05 49 588 157 80"),
            Some("Kerjean"),
            Some("1969-05-02"),
        );
        assert_eq!(identity_key(&with_nir).unwrap(), "269054958815780");
        let without = patient(None, Some("Kerjean"), Some("1969-05-02"));
        assert_eq!(
            identity_key(&without).unwrap(),
            "KERJEAN|MAELLE|1969-05-02|F"
        );
        let bad_nir = patient(Some("269054958815781"), Some("Kerjean"), Some("1969-05-02"));
        assert_eq!(identity_key(&bad_nir), identity_key(&without));
        let nobody = IdentifiedPatient::default();
        assert_eq!(identity_key(&nobody), None);
    }

    #[test]
    fn an_objection_with_nir_and_full_traits_names_both_identities() {
        let both = patient(
            Some("269054958815780"),
            Some("Lefèvre-Kerjean"),
            Some("1969-05-02"),
        );
        assert_eq!(
            objection_identities(&both).unwrap(),
            ["269054958815780", "LEFEVRE KERJEAN|MAELLE|1969-05-02|F"]
        );
        let nir_only = IdentifiedPatient {
            nir: Some("269054958815780".into()),
            ..Default::default()
        };
        assert_eq!(
            objection_identities(&nir_only).unwrap(),
            ["269054958815780"]
        );
    }

    #[test]
    fn an_objection_with_a_bad_nir_or_partial_traits_is_refused_without_repeating_them() {
        let bad = patient(Some("269054958815781"), Some("Kerjean"), Some("1969-05-02"));
        let error = objection_identities(&bad).unwrap_err().to_string();
        assert!(error.contains("does not check"), "{error}");
        assert!(!error.contains("269054958815781"), "{error}");
        let partial = patient(None, Some("Kerjean"), Some("1969"));
        let error = objection_identities(&partial).unwrap_err().to_string();
        assert!(error.contains("birth date"), "{error}");
        assert!(!error.contains("Kerjean"), "{error}");
        let digits_only = patient(None, Some("123"), Some("1969-05-02"));
        assert!(
            objection_identities(&digits_only)
                .unwrap_err()
                .to_string()
                .contains("family name")
        );
    }
}
