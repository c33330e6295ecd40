//! NIR validation and the NIR detector the host runs over every stored string.

use carrel_fhir::{IdentifiedConsultation, IdentifiedPatient, looks_like_valid_nir, validate_nir};
use carrel_pseudonym::patient_key;

pub fn nir(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match validate_nir(text) {
        Ok(nir) => {
            let compact = nir.as_str();
            assert_eq!(compact.len(), 15, "{compact}");
            assert!(
                compact
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'A' || b == b'B')
            );
            assert_eq!(validate_nir(compact).as_ref(), Ok(&nir), "not idempotent");
            assert!(looks_like_valid_nir(compact), "{compact} not detected");
            // The patient pseudonym is computed from the normalised NIR, however it was
            // written.
            let consultation = IdentifiedConsultation {
                source_encounter_id: "e1".to_owned(),
                start: "2024-01-15".to_owned(),
                class_code: None,
                diagnoses: Vec::new(),
                discharge_disposition: None,
                patient: IdentifiedPatient {
                    nir: Some(text.to_owned()),
                    ..IdentifiedPatient::default()
                },
            };
            assert_eq!(patient_key("sos-fuzz", &consultation), compact);
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
    // Spaces around the text start and end no word: the verdict cannot change.
    assert_eq!(
        looks_like_valid_nir(text),
        looks_like_valid_nir(&format!(" {text} ")),
        "{text:?}"
    );
}
