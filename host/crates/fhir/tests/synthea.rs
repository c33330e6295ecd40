//! The Synthea bulk export in tests/fixtures: real FHIR that nobody here wrote.

use std::path::PathBuf;

use carrel_fhir::parse_ndjson;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/synthea-bulk-10")
}

/// The three files as one payload, Conditions first so that references point forward
/// and backward.
fn synthea_payload() -> Vec<u8> {
    let mut payload = Vec::new();
    for file in [
        "Condition.000.ndjson",
        "Patient.000.ndjson",
        "Encounter.000.ndjson",
    ] {
        let path = fixture_dir().join(file);
        let text = std::fs::read(&path)
            .unwrap_or_else(|error| panic!("the fixture {} is missing: {error}", path.display()));
        payload.extend_from_slice(&text);
        if !payload.ends_with(b"\n") {
            payload.push(b'\n');
        }
    }
    payload
}

#[test]
fn the_synthea_export_gives_one_consultation_per_encounter() {
    let ingested = parse_ndjson(&synthea_payload()).expect("Synthea's export is accepted");
    assert_eq!(ingested.consultations.len(), 1215);
    assert_eq!(ingested.patients, 13);
    assert_eq!(ingested.conditions, 555);
    assert!(ingested.ignored.is_empty());
}

#[test]
fn every_synthea_condition_becomes_a_diagnosis_of_its_encounter() {
    let ingested = parse_ndjson(&synthea_payload()).unwrap();
    let consultations = &ingested.consultations;
    // Every Condition names its Encounter; the Encounters' reasonCodes add more, and
    // codes repeated within one consultation are listed once (counts computed apart
    // from the fixture with the same rule).
    let with_diagnoses = consultations
        .iter()
        .filter(|c| !c.diagnoses.is_empty())
        .count();
    let total: usize = consultations.iter().map(|c| c.diagnoses.len()).sum();
    assert_eq!(with_diagnoses, 1016);
    assert_eq!(total, 1203);
    assert!(
        consultations
            .iter()
            .flat_map(|c| &c.diagnoses)
            .all(|d| d.system.as_deref() == Some("http://snomed.info/sct"))
    );
    let sepsis = consultations
        .iter()
        .find(|c| c.source_encounter_id == "f6003197-6507-1168-87be-ceccd5517094")
        .expect("the Encounter of the first Condition");
    assert!(sepsis.diagnoses.iter().any(|d| d.code == "91302008"));
}

#[test]
fn synthea_patients_are_identified_without_a_nir_or_a_french_postcode() {
    let ingested = parse_ndjson(&synthea_payload()).unwrap();
    let first = &ingested.consultations[0];
    assert_eq!(
        first.source_encounter_id,
        "00c7f717-4030-5582-2ed8-888ad2bc878e"
    );
    assert_eq!(first.start, "1989-10-04T02:25:16-04:00");
    assert_eq!(first.class_code.as_deref(), Some("AMB"));
    let patient = &first.patient;
    assert_eq!(patient.nir, None);
    assert_eq!(patient.family.as_deref(), Some("Upton904"));
    assert_eq!(patient.given.as_deref(), Some("Marine542"));
    assert_eq!(patient.sex.as_deref(), Some("female"));
    // US addresses: a zip code is not a French postcode.
    assert_eq!(patient.postcode, None);
    assert!(!patient.telecom.is_empty());
    let discharged: Vec<_> = ingested
        .consultations
        .iter()
        .filter_map(|c| c.discharge_disposition.as_ref())
        .collect();
    assert_eq!(discharged.len(), 3);
}
