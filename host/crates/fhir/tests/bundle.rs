//! Bundles: the accepted types, fullUrl references, and refusals located by FHIRPath.

use carrel_fhir::{IssueCode, PayloadFormat, Refusal, operation_outcome, parse_bundle};
use serde_json::{Value, json};

fn bundle(kind: &str, entries: Vec<Value>) -> Vec<u8> {
    json!({"resourceType": "Bundle", "id": "batch-2024-01-16", "type": kind, "entry": entries})
        .to_string()
        .into_bytes()
}

fn patient_entry(full_url: &str) -> Value {
    json!({"fullUrl": full_url, "resource": {"resourceType": "Patient", "name": [{"family": "Lefèvre", "given": ["Éloïse"]}],
           "birthDate": "2023-03-02", "gender": "female"},
           "request": {"method": "POST", "url": "Patient"}})
}

fn encounter_entry(full_url: &str, subject: &str) -> Value {
    json!({"fullUrl": full_url, "resource": {"resourceType": "Encounter", "class": {"code": "AMB"},
           "subject": {"reference": subject}, "period": {"start": "2024-01-16T08:05:00+01:00"}},
           "request": {"method": "POST", "url": "Encounter"}})
}

fn refused(payload: &[u8]) -> Refusal {
    match parse_bundle(payload) {
        Ok(ingested) => panic!("accepted: {ingested:?}"),
        Err(refusal) => refusal,
    }
}

fn has_problem(refusal: &Refusal, location: &str, code: IssueCode, words: &str) -> bool {
    refusal
        .problems
        .iter()
        .any(|p| p.location == location && p.code == code && p.message.contains(words))
}

#[test]
fn transaction_batch_and_collection_bundles_are_accepted() {
    for kind in ["transaction", "batch", "collection"] {
        let payload = bundle(
            kind,
            vec![
                patient_entry("urn:uuid:5b1e0f0e-6a43-4c1f-9d1c-0a3f8f7c2d11"),
                encounter_entry(
                    "urn:uuid:9f0c6f5e-1111-4c1f-9d1c-0a3f8f7c2d11",
                    "urn:uuid:5b1e0f0e-6a43-4c1f-9d1c-0a3f8f7c2d11",
                ),
            ],
        );
        let ingested = parse_bundle(&payload).unwrap_or_else(|refusal| panic!("{kind}: {refusal}"));
        assert_eq!(ingested.bundle_id.as_deref(), Some("batch-2024-01-16"));
        let consultation = &ingested.consultations[0];
        // A transaction's new Encounter has no id: its fullUrl stands for it.
        assert_eq!(
            consultation.source_encounter_id,
            "urn:uuid:9f0c6f5e-1111-4c1f-9d1c-0a3f8f7c2d11"
        );
        assert_eq!(consultation.patient.family.as_deref(), Some("Lefèvre"));
        assert_eq!(
            consultation.patient.birth_date.as_deref(),
            Some("2023-03-02")
        );
    }
}

#[test]
fn bundles_of_other_types_are_refused() {
    for kind in ["searchset", "document", "history", "message"] {
        let payload = bundle(
            kind,
            vec![
                patient_entry("urn:uuid:p"),
                encounter_entry("urn:uuid:e", "urn:uuid:p"),
            ],
        );
        let refusal = refused(&payload);
        assert!(
            has_problem(&refusal, "Bundle.type", IssueCode::NotSupported, kind),
            "{kind}: {refusal}"
        );
    }
}

#[test]
fn absolute_fullurls_are_matched_whole_or_by_their_type_and_id() {
    let mut patient = patient_entry("https://lgc.example.fr/fhir/Patient/p1");
    patient["resource"]["id"] = json!("p1");
    let payload = bundle(
        "collection",
        vec![
            patient,
            encounter_entry(
                "https://lgc.example.fr/fhir/Encounter/e1",
                "https://lgc.example.fr/fhir/Patient/p1",
            ),
            encounter_entry("https://lgc.example.fr/fhir/Encounter/e2", "Patient/p1"),
            encounter_entry(
                "https://lgc.example.fr/fhir/Encounter/e3",
                "https://other.example.fr/fhir/Patient/p1",
            ),
        ],
    );
    assert_eq!(parse_bundle(&payload).unwrap().consultations.len(), 3);
}

#[test]
fn problems_in_entries_are_located_by_fhirpath_and_all_reported() {
    let mut bad_start = encounter_entry("urn:uuid:e2", "urn:uuid:p1");
    bad_start["resource"]["period"]["start"] = json!("2024-02-30T08:00:00Z");
    let payload = bundle(
        "transaction",
        vec![
            patient_entry("urn:uuid:p1"),
            encounter_entry("urn:uuid:e1", "urn:uuid:nobody"),
            bad_start,
            patient_entry("urn:uuid:p1"),
        ],
    );
    let refusal = refused(&payload);
    assert!(has_problem(
        &refusal,
        "Bundle.entry[1].resource.subject",
        IssueCode::NotFound,
        "urn:uuid:nobody"
    ));
    assert!(has_problem(
        &refusal,
        "Bundle.entry[2].resource.period.start",
        IssueCode::Value,
        "day 30"
    ));
    assert!(has_problem(
        &refusal,
        "Bundle.entry[3].fullUrl",
        IssueCode::Duplicate,
        "urn:uuid:p1"
    ));
    let outcome = operation_outcome(&refusal.problems);
    assert_eq!(
        outcome["issue"].as_array().unwrap().len(),
        refusal.problems.len()
    );
}

#[test]
fn a_body_that_is_not_a_bundle_is_refused() {
    let lone_encounter = encounter_entry("urn:uuid:e1", "urn:uuid:p1")["resource"].to_string();
    assert!(has_problem(
        &refused(lone_encounter.as_bytes()),
        "resourceType",
        IssueCode::Structure,
        "found a Encounter"
    ));
    assert!(has_problem(
        &refused(b"[]"),
        "Bundle",
        IssueCode::Structure,
        "JSON object"
    ));
    let refusal = refused(b"{\"resourceType\": \"Bundle\",\n  \"type\": }");
    assert!(has_problem(
        &refusal,
        "line 2, column 11",
        IssueCode::Structure,
        "malformed JSON"
    ));
}

#[test]
fn a_bundle_without_encounters_is_refused() {
    let refusal = refused(&bundle("collection", vec![patient_entry("urn:uuid:p1")]));
    assert!(has_problem(
        &refusal,
        "Bundle",
        IssueCode::Required,
        "no Encounter"
    ));
}

#[test]
fn a_bundle_nested_a_hundred_thousand_levels_deep_is_a_clean_problem() {
    let prefix = r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":"#;
    let deep = format!(
        "{prefix}{}{}}}]}}",
        "{\"a\":".repeat(100_000),
        "}".repeat(100_000)
    );
    let refusal = refused(deep.as_bytes());
    // Three levels open before the resource; the 62nd `{"a":` opens level 65.
    let column = prefix.len() + 61 * r#"{"a":"#.len() + 1;
    assert!(has_problem(
        &refusal,
        &format!("line 1, column {column}"),
        IssueCode::Structure,
        "deeper than 64"
    ));
}

#[test]
fn the_content_type_chooses_the_reader() {
    assert_eq!(
        PayloadFormat::from_content_type("application/fhir+json; fhirVersion=4.0"),
        Some(PayloadFormat::Bundle)
    );
    assert_eq!(
        PayloadFormat::from_content_type("Application/FHIR+NDJSON"),
        Some(PayloadFormat::Ndjson)
    );
    assert_eq!(
        PayloadFormat::from_content_type("application/x-ndjson"),
        Some(PayloadFormat::Ndjson)
    );
    assert_eq!(PayloadFormat::from_content_type("text/csv"), None);
    assert_eq!(
        PayloadFormat::from_content_type("application/fhir+json; charset=\"UTF-8\""),
        Some(PayloadFormat::Bundle)
    );
    assert_eq!(
        PayloadFormat::from_content_type("application/fhir+ndjson;charset=iso-8859-1"),
        None
    );
    let payload = bundle(
        "batch",
        vec![
            patient_entry("urn:uuid:p1"),
            encounter_entry("urn:uuid:e1", "urn:uuid:p1"),
        ],
    );
    assert_eq!(
        PayloadFormat::Bundle
            .parse(&payload)
            .unwrap()
            .consultations
            .len(),
        1
    );
}
