//! NDJSON payloads: what is read, and every reason to refuse one.

use carrel_fhir::{IssueCode, Refusal, parse_ndjson};
use serde_json::{Value, json};

fn ndjson(resources: &[Value]) -> Vec<u8> {
    resources
        .iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        .into_bytes()
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "name": [{"family": "Martin", "given": ["Zoé", "Anne"]}],
           "birthDate": "1984-12-07", "gender": "female",
           "address": [{"line": ["1 rue du Port"], "postalCode": "29200", "country": "FR"}],
           "telecom": [{"system": "phone", "value": "06 12 34 56 78"}]})
}

fn encounter(id: &str, subject: &str) -> Value {
    json!({"resourceType": "Encounter", "id": id, "class": {"code": "HH"},
           "subject": {"reference": subject}, "period": {"start": "2024-01-15T23:30:00+01:00"}})
}

fn refused(payload: &[u8]) -> Refusal {
    match parse_ndjson(payload) {
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
fn resources_in_any_order_give_one_row_per_encounter_with_its_patient() {
    let payload = ndjson(&[
        encounter("e1", "Patient/p1"),
        json!({"resourceType": "Observation", "id": "o1", "code": {"text": "weight"}}),
        patient("p1"),
        encounter("e2", "urn:uuid:p1"),
        json!({"resourceType": "Observation", "id": "o2"}),
    ]);
    let ingested = parse_ndjson(&payload).unwrap();
    assert_eq!(ingested.consultations.len(), 2);
    assert_eq!(ingested.ignored.get("Observation"), Some(&2));
    let first = &ingested.consultations[0];
    assert_eq!(first.source_encounter_id, "e1");
    assert_eq!(first.start, "2024-01-15T23:30:00+01:00");
    assert_eq!(first.class_code.as_deref(), Some("HH"));
    assert_eq!(first.patient.family.as_deref(), Some("Martin"));
    assert_eq!(first.patient.given.as_deref(), Some("Zoé"));
    assert_eq!(first.patient.birth_date.as_deref(), Some("1984-12-07"));
    assert_eq!(first.patient.postcode.as_deref(), Some("29200"));
    assert_eq!(first.patient.telecom, vec!["06 12 34 56 78".to_owned()]);
    assert_eq!(ingested.consultations[1].patient, first.patient);
}

#[test]
fn every_reference_form_finds_its_patient() {
    let mut with_nir = patient("p1");
    with_nir["identifier"] =
        json!([{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "2 69 05 49 588 157 80"}]);
    let forms = [
        json!({"reference": "Patient/p1"}),
        json!({"reference": "Patient/p1/_history/4"}),
        json!({"reference": "urn:uuid:p1"}),
        json!({"reference": "https://lgc.example.fr/fhir/Patient/p1"}),
        json!({"reference": "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|269054958815780"}),
        json!({"reference": "Patient?identifier=urn%3Aoid%3A1.2.250.1.213.1.4.8%7C269054958815780"}),
        json!({"identifier": {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "269054958815780"}}),
    ];
    for form in forms {
        let mut visit = encounter("e1", "Patient/p1");
        visit["subject"] = form.clone();
        let ingested = parse_ndjson(&ndjson(&[with_nir.clone(), visit]))
            .unwrap_or_else(|refusal| panic!("{form} refused: {refusal}"));
        assert_eq!(
            ingested.consultations[0].patient.nir.as_deref(),
            Some("269054958815780")
        );
    }
}

#[test]
fn references_to_nothing_or_to_the_wrong_type_are_refused() {
    let mut condition = json!({"resourceType": "Condition", "id": "c1", "code": {"coding": [{"code": "x"}]},
                               "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e9"}});
    let mut visit = encounter("e1", "Patient/p2");
    visit["diagnosis"] = json!([{"condition": {"reference": "Condition/c7"}}]);
    let refusal = refused(&ndjson(&[patient("p1"), visit, condition.clone()]));
    assert!(has_problem(
        &refusal,
        "line 2: Encounter.subject",
        IssueCode::NotFound,
        "`Patient/p2`"
    ));
    assert!(has_problem(
        &refusal,
        "line 2: Encounter.diagnosis[0].condition",
        IssueCode::NotFound,
        "Condition/c7"
    ));
    assert!(has_problem(
        &refusal,
        "line 3: Condition.encounter",
        IssueCode::NotFound,
        "Encounter/e9"
    ));

    condition["encounter"] = json!({"reference": "Patient/p1"});
    let refusal = refused(&ndjson(&[
        patient("p1"),
        encounter("e1", "Group/g1"),
        condition,
    ]));
    assert!(has_problem(
        &refusal,
        "line 2: Encounter.subject",
        IssueCode::Invalid,
        "a Group"
    ));
    assert!(has_problem(
        &refusal,
        "line 3: Condition.encounter",
        IssueCode::Invalid,
        "a Patient"
    ));
}

#[test]
fn a_conditional_reference_matching_two_patients_is_refused_as_ambiguous() {
    let mut first = patient("p1");
    let mut second = patient("p2");
    first["identifier"] = json!([{"system": "https://lgc.example.fr", "value": "42"}]);
    second["identifier"] = json!([{"system": "https://lgc.example.fr", "value": "42"}]);
    let refusal = refused(&ndjson(&[
        first,
        second,
        encounter("e1", "Patient?identifier=42"),
    ]));
    assert!(has_problem(
        &refusal,
        "line 3: Encounter.subject",
        IssueCode::Invalid,
        "matches 2"
    ));
}

#[test]
fn diagnoses_come_from_conditions_then_encounter_diagnosis_then_reason_codes() {
    let icd = "http://hl7.org/fhir/sid/icd-10";
    let mut visit = encounter("e1", "Patient/p1");
    visit["diagnosis"] = json!([{"condition": {"reference": "Condition/c2"}}, {"condition": {"reference": "Condition/c1"}}]);
    visit["reasonCode"] = json!([
        {"coding": [{"system": "http://snomed.info/sct", "code": "6142004"}, {"system": "http://snomed.info/sct", "code": "x"}]},
        {"coding": [{"system": icd, "code": "J11.1"}]}
    ]);
    let condition = |id: &str, coding: Value, link: bool| {
        let mut c = json!({"resourceType": "Condition", "id": id, "code": {"coding": coding}, "subject": {"reference": "Patient/p1"}});
        if link {
            c["encounter"] = json!({"reference": "Encounter/e1"});
        }
        c
    };
    let payload = ndjson(&[
        condition(
            "c1",
            json!([{"system": "http://snomed.info/sct", "code": "195662009"}, {"system": icd, "code": "J06.9"}, {"system": "http://hl7.org/fhir/sid/icd-10-fr", "code": "J069"}]),
            true,
        ),
        condition(
            "c2",
            json!([{"system": "urn:oid:1.2.250.1.213.2.5", "code": "R50"}]),
            false,
        ),
        patient("p1"),
        visit,
    ]);
    let ingested = parse_ndjson(&payload).unwrap();
    let codes: Vec<(Option<&str>, &str)> = ingested.consultations[0]
        .diagnoses
        .iter()
        .map(|d| (d.system.as_deref(), d.code.as_str()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (Some(icd), "J06.9"),
            (Some("http://hl7.org/fhir/sid/icd-10-fr"), "J069"),
            (Some("urn:oid:1.2.250.1.213.2.5"), "R50"),
            (Some("http://snomed.info/sct"), "6142004"),
            (Some(icd), "J11.1"),
        ]
    );
}

#[test]
fn malformed_lines_are_located_by_line_and_column_and_all_reported() {
    let payload = b"{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n{\"resourceType\": \"Encounter\", \"id\": \n\n[1, 2]\n\"text\"\n{\"id\": \"x\"}\n";
    let refusal = refused(payload);
    assert!(has_problem(
        &refusal,
        "line 2",
        IssueCode::Structure,
        "malformed JSON"
    ));
    assert!(
        refusal
            .problems
            .iter()
            .any(|p| p.location == "line 2" && p.message.contains("column"))
    );
    assert!(has_problem(
        &refusal,
        "line 4",
        IssueCode::Structure,
        "found an array"
    ));
    assert!(has_problem(
        &refusal,
        "line 5",
        IssueCode::Structure,
        "found a string"
    ));
    assert!(has_problem(
        &refusal,
        "line 6",
        IssueCode::Structure,
        "no resourceType"
    ));
    assert!(has_problem(
        &refusal,
        "NDJSON",
        IssueCode::Required,
        "no Encounter"
    ));
}

#[test]
fn misspelt_or_wrongly_typed_resources_are_refused() {
    let mut lowercase = encounter("e2", "Patient/p1");
    lowercase["resourceType"] = json!("encounter");
    let mut wrong_shape = encounter("e3", "Patient/p1");
    wrong_shape["subject"] = json!("Patient/p1");
    let bundle = json!({"resourceType": "Bundle", "type": "collection"});
    let refusal = refused(&ndjson(&[patient("p1"), lowercase, wrong_shape, bundle]));
    assert!(has_problem(
        &refusal,
        "line 2: resourceType",
        IssueCode::Structure,
        "`Encounter`"
    ));
    assert!(has_problem(
        &refusal,
        "line 3",
        IssueCode::Structure,
        "invalid type"
    ));
    assert!(has_problem(
        &refusal,
        "line 4",
        IssueCode::NotSupported,
        "Bundle"
    ));
}

#[test]
fn an_encounter_without_subject_or_start_is_refused() {
    let mut no_subject = encounter("e1", "Patient/p1");
    no_subject.as_object_mut().unwrap().remove("subject");
    let mut no_start = encounter("e2", "Patient/p1");
    no_start["period"] = json!({"end": "2024-01-15T23:50:00+01:00"});
    let mut month_only = encounter("e3", "Patient/p1");
    month_only["period"] = json!({"start": "2024-01"});
    let mut empty_subject = encounter("e4", "Patient/p1");
    empty_subject["subject"] = json!({"display": "Zoé Martin"});
    let refusal = refused(&ndjson(&[
        patient("p1"),
        no_subject,
        no_start,
        month_only,
        empty_subject,
    ]));
    assert_eq!(refusal.problems.len(), 4, "{refusal}");
    assert!(has_problem(
        &refusal,
        "line 5: Encounter.subject",
        IssueCode::Required,
        "empty"
    ));
    assert!(has_problem(
        &refusal,
        "line 2: Encounter.subject",
        IssueCode::Required,
        "no subject"
    ));
    assert!(has_problem(
        &refusal,
        "line 3: Encounter.period.start",
        IssueCode::Required,
        "no period.start"
    ));
    assert!(has_problem(
        &refusal,
        "line 4: Encounter.period.start",
        IssueCode::Value,
        "day"
    ));
}

#[test]
fn dates_off_the_calendar_are_refused() {
    let mut bad_birth = patient("p1");
    bad_birth["birthDate"] = json!("1984-02-30");
    let mut bad_start = encounter("e1", "Patient/p1");
    bad_start["period"] = json!({"start": "2024-13-01T10:00:00+01:00"});
    let refusal = refused(&ndjson(&[bad_birth, bad_start]));
    assert!(has_problem(
        &refusal,
        "line 1: Patient.birthDate",
        IssueCode::Value,
        "day 30"
    ));
    assert!(has_problem(
        &refusal,
        "line 2: Encounter.period.start",
        IssueCode::Value,
        "month 13"
    ));
}

#[test]
fn a_nir_whose_key_does_not_check_is_refused() {
    let mut with_bad_nir = patient("p1");
    with_bad_nir["identifier"] = json!([
        {"system": "https://lgc.example.fr", "value": "184127645108947"},
        {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "184127645108947"}
    ]);
    let refusal = refused(&ndjson(&[with_bad_nir, encounter("e1", "Patient/p1")]));
    assert_eq!(refusal.problems.len(), 1, "{refusal}");
    assert!(has_problem(
        &refusal,
        "line 1: Patient.identifier[1].value",
        IssueCode::Value,
        "key"
    ));
}

#[test]
fn two_resources_of_one_type_with_one_id_are_refused() {
    let refusal = refused(&ndjson(&[
        patient("p1"),
        encounter("e1", "Patient/p1"),
        encounter("e1", "Patient/p1"),
    ]));
    assert!(has_problem(
        &refusal,
        "line 3: Encounter.id",
        IssueCode::Duplicate,
        "first at line 2"
    ));
}

#[test]
fn a_payload_without_encounters_is_refused() {
    assert!(has_problem(
        &refused(b""),
        "NDJSON",
        IssueCode::Required,
        "no Encounter"
    ));
    assert!(has_problem(
        &refused(b"\n\r\n  \n"),
        "NDJSON",
        IssueCode::Required,
        "no Encounter"
    ));
    let refusal = refused(&ndjson(&[patient("p1")]));
    assert_eq!(refusal.problems.len(), 1);
}

#[test]
fn nesting_a_hundred_thousand_levels_deep_is_a_clean_problem() {
    let deep = format!(
        "{{\"resourceType\":\"Patient\",\"x\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let payload = format!("{}\n{deep}\n", encounter("e1", "Patient/p1"));
    let refusal = refused(payload.as_bytes());
    assert!(has_problem(
        &refusal,
        "line 2",
        IssueCode::Structure,
        "deeper than 64"
    ));
}

#[test]
fn windows_line_endings_and_a_byte_order_mark_are_accepted() {
    let text = format!(
        "\u{feff}{}\r\n{}\r\n",
        patient("p1"),
        encounter("e1", "Patient/p1")
    );
    assert_eq!(
        parse_ndjson(text.as_bytes()).unwrap().consultations.len(),
        1
    );
}

#[test]
fn a_foreign_postcode_is_not_kept_and_a_countryless_one_is() {
    let mut abroad = patient("p1");
    abroad["address"] = json!([{"city": "Emporia"}, {"postalCode": "66801", "country": "US"}]);
    let mut countryless = patient("p2");
    countryless["address"] = json!([{"postalCode": "20090"}]);
    let payload = ndjson(&[
        abroad,
        countryless,
        encounter("e1", "Patient/p1"),
        encounter("e2", "Patient/p2"),
    ]);
    let ingested = parse_ndjson(&payload).unwrap();
    assert_eq!(ingested.consultations[0].patient.postcode, None);
    assert_eq!(
        ingested.consultations[1].patient.postcode.as_deref(),
        Some("20090")
    );
}
