//! Hostile payloads at the reader: bytes that are not UTF-8, a type named twice, a
//! resource of megabytes, values of megabytes quoted back. Each is refused with a
//! problem that names its place, and no problem sends a huge value back.

use carrel_fhir::{
    IssueCode, MAX_MESSAGE_BYTES, MAX_RESOURCE_BYTES, Refusal, parse_bundle, parse_ndjson,
};

const PATIENT: &str = r#"{"resourceType":"Patient","id":"p1","birthDate":"1984-12-07"}"#;
const ENCOUNTER: &str = r#"{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/p1"},"period":{"start":"2024-01-15T10:00:00Z"}}"#;

fn refused(result: Result<carrel_fhir::Ingested, Refusal>) -> Refusal {
    match result {
        Ok(ingested) => panic!("accepted: {ingested:?}"),
        Err(refusal) => refusal,
    }
}

fn lines(extra: &[u8]) -> Vec<u8> {
    let mut body = format!("{PATIENT}\n{ENCOUNTER}\n").into_bytes();
    body.extend_from_slice(extra);
    body
}

#[test]
fn the_valid_base_payload_is_accepted() {
    assert_eq!(parse_ndjson(&lines(b"")).unwrap().consultations.len(), 1);
}

#[test]
fn bytes_that_are_not_utf8_are_refused_even_in_an_element_the_reader_skips() {
    let refusal = refused(parse_ndjson(&lines(
        b"{\"resourceType\":\"Observation\",\"note\":\"caf\xe9\"}\n",
    )));
    assert_eq!(refusal.problems.len(), 1, "{refusal:?}");
    let problem = &refusal.problems[0];
    assert_eq!(problem.location, "line 3");
    assert_eq!(problem.code, IssueCode::Structure);
    assert!(
        problem
            .message
            .contains("not UTF-8: byte 0xE9 at column 42"),
        "{problem}"
    );

    let bundle = b"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\n\"entry\":[\xff]}";
    let refusal = refused(parse_bundle(bundle));
    assert!(
        refusal.problems[0]
            .message
            .contains("byte 0xFF at line 2, column 10"),
        "{refusal:?}"
    );
}

#[test]
fn a_resource_type_given_twice_is_refused() {
    let twice = r#"{"resourceType":"Patient","id":"p2","resourceType":"Encounter"}"#;
    let refusal = refused(parse_ndjson(&lines(twice.as_bytes())));
    let problem = &refusal.problems[0];
    assert_eq!(problem.location, "line 3");
    assert!(
        problem.message.contains("duplicate field `resourceType`"),
        "{problem}"
    );
}

#[test]
fn a_kept_resource_of_megabytes_is_refused_as_too_costly() {
    let name = "A".repeat(MAX_RESOURCE_BYTES);
    let huge = format!(r#"{{"resourceType":"Patient","id":"p2","name":[{{"family":"{name}"}}]}}"#);
    let refusal = refused(parse_ndjson(&lines(huge.as_bytes())));
    let problem = &refusal.problems[0];
    assert_eq!(
        (problem.location.as_str(), problem.code),
        ("line 3", IssueCode::TooCostly)
    );
    assert!(problem.message.contains("larger than"), "{problem}");

    // Other types are skipped unbuilt, however large.
    let attachment = format!(
        r#"{{"resourceType":"DocumentReference","content":[{{"attachment":{{"data":"{name}"}}}}]}}"#
    );
    assert!(parse_ndjson(&lines(attachment.as_bytes())).is_ok());
}

#[test]
fn a_huge_value_is_quoted_back_clipped() {
    let long = "9".repeat(MAX_RESOURCE_BYTES / 2);
    for hostile in [
        format!(r#"{{"resourceType":"Patient","id":"p2","birthDate":"{long}"}}"#),
        format!(r#"{{"resourceType":"{long}"}}"#),
        format!(
            r#"{{"resourceType":"Encounter","id":"e2","subject":{{"reference":"Patient/{long}"}},"period":{{"start":"2024-01-15"}}}}"#
        ),
        format!(r#"{{"resourceType":"Encounter","id":"e2","period":"{long}"}}"#),
    ] {
        let refusal = refused(parse_ndjson(&lines(hostile.as_bytes())));
        for problem in &refusal.problems {
            assert!(
                problem.message.len() <= MAX_MESSAGE_BYTES,
                "{} bytes: {:.100}",
                problem.message.len(),
                problem.message
            );
        }
        assert!(
            refusal.problems.iter().any(|p| p.message.contains('…')),
            "{refusal:?}"
        );
    }
}

#[test]
fn huge_numbers_where_text_is_expected_are_refused_naming_the_line() {
    for number in ["1e999999", &"9".repeat(100_000), "-0.0e-99999"] {
        let hostile = format!(r#"{{"resourceType":"Patient","id":{number}}}"#);
        let refusal = refused(parse_ndjson(&lines(hostile.as_bytes())));
        let problem = &refusal.problems[0];
        assert_eq!(problem.location, "line 3", "{problem}");
        assert!(problem.message.len() <= MAX_MESSAGE_BYTES);
    }
}

#[test]
fn many_conditions_of_one_encounter_are_read_in_linear_time() {
    let mut body = lines(b"");
    for index in 0..100_000 {
        body.extend_from_slice(
            format!(
                r#"{{"resourceType":"Condition","id":"c{index}","code":{{"coding":[{{"code":"x{index}"}}]}},"encounter":{{"reference":"Encounter/e1"}}}}"#
            )
            .as_bytes(),
        );
        body.push(b'\n');
    }
    let started = std::time::Instant::now();
    let ingested = parse_ndjson(&body).unwrap();
    assert_eq!(ingested.consultations[0].diagnoses.len(), 100_000);
    // Comparing each code with every one before it took minutes.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_patient_repeated_in_every_consultation_cannot_expand_a_payload_without_bound() {
    let telecoms: String = (0..30_000)
        .map(|index| format!(r#"{{"value":"06 12 34 {index:05}"}},"#))
        .collect();
    let mut body = format!(
        r#"{{"resourceType":"Patient","id":"p1","telecom":[{}]}}"#,
        telecoms.trim_end_matches(',')
    )
    .into_bytes();
    body.push(b'\n');
    for index in 0..3_000 {
        body.extend_from_slice(
            format!(
                r#"{{"resourceType":"Encounter","id":"e{index}","subject":{{"reference":"Patient/p1"}},"period":{{"start":"2024-01-15"}}}}"#
            )
            .as_bytes(),
        );
        body.push(b'\n');
    }
    // About 1 MB sent, and it would have been 2 GB of identified rows.
    let refusal = refused(parse_ndjson(&body));
    assert_eq!(refusal.problems.len(), 1, "{refusal:?}");
    let problem = &refusal.problems[0];
    assert_eq!(
        (problem.location.as_str(), problem.code),
        ("NDJSON", IssueCode::TooCostly)
    );
    assert!(problem.message.contains("smaller payloads"), "{problem}");
}
