//! Hostile input over HTTP against the real warehouse (spin.toml's ingest-fhir and
//! pseudonymise components under `carrel up`): each attack gets a 4xx that says what
//! was wrong and where (a FHIR OperationOutcome from the ingestion endpoint), nothing is
//! stored or audited as stored, and the server keeps answering.

mod support;
#[path = "hostile_http/warehouse.rs"]
mod warehouse;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use warehouse::{assert_refused, issues, read_answer, start};

const NDJSON: Option<&str> = Some("application/fhir+ndjson");
const BUNDLE: Option<&str> = Some("application/fhir+json");

const PATIENT: &str =
    r#"{"resourceType":"Patient","id":"p1","birthDate":"1984-12-07","gender":"female"}"#;
const ENCOUNTER: &str = r#"{"resourceType":"Encounter","id":"e1","class":{"code":"HH"},"subject":{"reference":"Patient/p1"},"period":{"start":"2024-01-15T10:00:00+01:00"}}"#;

/// A valid payload (lines 1 and 2) with `hostile` as line 3.
fn with_line_3(hostile: &[u8]) -> Vec<u8> {
    let mut body = format!("{PATIENT}\n{ENCOUNTER}\n").into_bytes();
    body.extend_from_slice(hostile);
    body.push(b'\n');
    body
}

fn bundle_of(entries: &str) -> Vec<u8> {
    format!(r#"{{"resourceType":"Bundle","type":"collection","entry":[{entries}]}}"#).into_bytes()
}

#[test]
fn the_payload_the_attacks_are_built_on_is_accepted() {
    let w = start(&[]);
    let (status, receipt) = w.ingest(with_line_3(b""), NDJSON);
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["rows_accepted"], 1);
    // What the other tests look for to say nothing was stored is there.
    let (segments, log) = w.stop();
    assert_eq!(segments, 1);
    assert!(log.contains("dataset.append"), "{log}");
}

#[test]
fn malformed_and_truncated_json_and_ndjson_are_refused_naming_the_place_and_nothing_stored() {
    let w = start(&[]);
    assert_refused(
        &w.ingest(with_line_3(b"{not json"), NDJSON),
        "line 3",
        "malformed JSON: key must be a string (column 2)",
    );
    // Cut in the middle of the Encounter, as a dropped connection would leave it.
    let whole = with_line_3(b"");
    let cut = whole[..PATIENT.len() + 1 + ENCOUNTER.len() / 2].to_vec();
    assert_refused(
        &w.ingest(cut, NDJSON),
        "line 2",
        "malformed JSON: EOF while parsing",
    );
    let bundle = bundle_of(&format!(
        r#"{{"resource":{PATIENT}}},{{"resource":{ENCOUNTER}}}"#
    ));
    let cut = bundle[..bundle.len() - 40].to_vec();
    let answer = w.ingest(cut.clone(), BUNDLE);
    assert_refused(
        &answer,
        &format!("line 1, column {}", cut.len()),
        "malformed JSON: EOF while parsing",
    );
    assert_refused(
        &w.ingest(Vec::new(), NDJSON),
        "NDJSON",
        "the payload holds no Encounter",
    );
    assert_refused(&w.ingest(Vec::new(), BUNDLE), "line 1, column 0", "EOF");
    assert_refused(
        &w.ingest(b"[]".to_vec(), BUNDLE),
        "Bundle",
        "expected a JSON object",
    );
    w.assert_nothing_stored();
}

#[test]
fn a_ten_megabyte_single_line_is_refused_quickly_with_a_short_answer_and_nothing_stored() {
    let w = start(&[]);
    let ten_mb = 10 << 20;
    let name = "A".repeat(ten_mb);
    let huge_patient =
        format!(r#"{{"resourceType":"Patient","id":"p2","name":[{{"family":"{name}"}}]}}"#);
    let junk = vec![b'x'; ten_mb];
    for (line, location, words) in [
        (huge_patient.into_bytes(), "line 3", "a Patient of 10485"),
        (junk, "line 3", "malformed JSON: expected value (column 1)"),
    ] {
        let started = Instant::now();
        let answer = w.ingest(with_line_3(&line), NDJSON);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_refused(&answer, location, words);
        assert!(answer.1.to_string().len() < 2048, "a long answer");
    }
    w.assert_nothing_stored();
}

#[test]
fn json_nested_a_hundred_thousand_levels_deep_is_refused_with_a_clear_message_and_nothing_stored() {
    let w = start(&[]);
    let deep = format!(r#"{{"resourceType":"Patient","x":{}"#, "[".repeat(100_000));
    assert_refused(
        &w.ingest(with_line_3(deep.as_bytes()), NDJSON),
        "line 3",
        "JSON nested deeper than 64 levels",
    );
    let deep_entry = format!(r#"{{"resource":{}}}"#, "{\"a\":".repeat(100_000));
    let answer = w.ingest(bundle_of(&deep_entry), BUNDLE);
    let (status, outcome) = &answer;
    assert_eq!(*status, 400, "{outcome}");
    let issues = issues(outcome);
    assert!(issues[0].0.starts_with("line 1, column "), "{issues:?}");
    assert!(issues[0].1.contains("nested deeper than 64"), "{issues:?}");
    assert_eq!(w.health(), 200);
    w.assert_nothing_stored();
}

#[test]
fn invalid_utf8_is_refused_naming_the_line_and_the_byte_and_nothing_stored() {
    let w = start(&[]);
    // In an element the reader skips, where a JSON parser alone lets it through.
    assert_refused(
        &w.ingest(
            with_line_3(b"{\"resourceType\":\"Observation\",\"note\":\"\xff\"}"),
            NDJSON,
        ),
        "line 3",
        "not UTF-8: byte 0xFF at column 39",
    );
    // Latin-1, as an old export would send a name.
    let latin1 =
        b"{\"resourceType\":\"Patient\",\"id\":\"p2\",\"name\":[{\"family\":\"Lef\xe8vre\"}]}";
    assert_refused(
        &w.ingest(with_line_3(latin1), NDJSON),
        "line 3",
        "not UTF-8: byte 0xE8",
    );
    let mut bundle = bundle_of(&format!(r#"{{"resource":{PATIENT}}}"#));
    bundle.splice(2..2, b"\xc3".iter().copied());
    assert_refused(&w.ingest(bundle, BUNDLE), "Bundle", "not UTF-8");
    w.assert_nothing_stored();
}

#[test]
fn wrong_content_types_and_methods_are_refused_with_an_operation_outcome_and_nothing_stored() {
    let w = start(&[]);
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        Some("application/fhir+ndjson; charset=iso-8859-1"),
        Some("application/fhir+json;charset=utf-16"),
    ] {
        let (status, outcome) = w.ingest(with_line_3(b""), content_type);
        assert_eq!(status, 415, "{content_type:?}: {outcome}");
        let issues = issues(&outcome);
        assert_eq!(issues[0].0, "Content-Type");
        assert!(issues[0].1.contains("in UTF-8"), "{issues:?}");
    }
    let carrel_url = format!("http://{}/ingest/fhir", w.address());
    let response = reqwest::blocking::Client::new()
        .get(carrel_url)
        .bearer_auth(&w.token)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    w.assert_nothing_stored();
}

#[test]
fn duplicate_keys_are_refused_naming_the_field_and_the_line_and_nothing_stored() {
    let w = start(&[]);
    let cases: [(&str, &str); 3] = [
        (
            r#"{"resourceType":"Encounter","id":"e2","id":"e3","subject":{"reference":"Patient/p1"},"period":{"start":"2024-01-15"}}"#,
            "duplicate field `id`",
        ),
        (
            r#"{"resourceType":"Patient","id":"p2","resourceType":"Encounter"}"#,
            "duplicate field `resourceType`",
        ),
        (
            r#"{"resourceType":"Encounter","id":"e2","subject":{"reference":"Patient/p1","reference":"Patient/p9"},"period":{"start":"2024-01-15"}}"#,
            "duplicate field `reference`",
        ),
    ];
    for (line, words) in cases {
        assert_refused(
            &w.ingest(with_line_3(line.as_bytes()), NDJSON),
            "line 3",
            words,
        );
    }
    w.assert_nothing_stored();
}

#[test]
fn huge_numbers_are_refused_naming_the_line_and_nothing_stored() {
    let w = start(&[]);
    let digits = "9".repeat(1_000_000);
    for (line, words) in [
        (
            r#"{"resourceType":"Patient","id":1e999999}"#.to_owned(),
            "number out of range",
        ),
        (
            format!(r#"{{"resourceType":"Patient","id":{digits}}}"#),
            "number out of range",
        ),
        (
            digits.clone(),
            "expected a JSON object (a FHIR resource), found a number",
        ),
        (format!("-{digits}.{digits}e-{digits}"), "found a number"),
    ] {
        let answer = w.ingest(with_line_3(line.as_bytes()), NDJSON);
        assert_refused(&answer, "line 3", words);
        assert!(answer.1.to_string().len() < 2048, "a long answer");
    }
    w.assert_nothing_stored();
}

#[test]
fn dates_out_of_range_are_refused_naming_the_element_and_nothing_stored() {
    let w = start(&[]);
    let mut body = format!("{PATIENT}\n").into_bytes();
    let starts = [
        "2024-13-01",
        "2024-02-30T10:00:00Z",
        "0000-01-01",
        "10000-01-01",
        "-2024-01-01",
        "2024-01-15T25:00:00Z",
        "2024-01-15T10:00:00+15:00",
        "2024-01",
    ];
    for (index, start) in starts.iter().enumerate() {
        body.extend_from_slice(
            format!(
                r#"{{"resourceType":"Encounter","id":"e{index}","subject":{{"reference":"Patient/p1"}},"period":{{"start":"{start}"}}}}"#
            )
            .as_bytes(),
        );
        body.push(b'\n');
    }
    body.extend_from_slice(br#"{"resourceType":"Patient","id":"p2","birthDate":"1984-02-30"}"#);
    let answer = w.ingest(body, NDJSON);
    for (index, start) in starts.iter().enumerate() {
        let location = format!("line {}: Encounter.period.start", index + 2);
        assert_refused(&answer, &location, &format!("`{start}`"));
    }
    let location = format!("line {}: Patient.birthDate", starts.len() + 2);
    assert_refused(&answer, &location, "day 30 does not exist in 1984-02");
    w.assert_nothing_stored();
}

#[test]
fn header_floods_are_refused_with_431_and_the_server_keeps_serving() {
    let w = start(&[]);
    let ingest_head = format!(
        "POST /ingest/fhir HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/fhir+ndjson\r\n",
        w.token
    );
    let many: String = (0..500).map(|i| format!("X-Flood-{i}: {i}\r\n")).collect();
    let huge = format!("X-Huge: {}\r\n", "h".repeat(1 << 20));
    for flood in [many, huge] {
        let request = format!("{ingest_head}{flood}Content-Length: 2\r\n\r\n{{}}");
        let answer = w.raw(request.as_bytes(), Duration::from_secs(10));
        assert_eq!(answer.status, Some(431), "{:.200}", answer.text);
        assert!(answer.took < Duration::from_secs(5), "{:?}", answer.took);
    }
    assert_eq!(w.health(), 200);
    w.assert_nothing_stored();
}

#[test]
fn slow_headers_and_slowloris_bodies_are_cut_off_by_the_read_timeout_and_nothing_stored() {
    let w = start(&["--read-timeout", "1"]);
    let trickle = |head: String| {
        let mut stream = TcpStream::connect(w.address()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut writer = stream.try_clone().unwrap();
        // One byte every 100 ms, until the server hangs up.
        std::thread::spawn(move || {
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(100));
                if writer.write_all(b"x").is_err() {
                    break;
                }
            }
        });
        read_answer(stream, Instant::now())
    };
    let body_head = format!(
        "POST /ingest/fhir HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/fhir+ndjson\r\nContent-Length: 100000\r\n\r\n",
        w.token
    );
    let answer = trickle(body_head);
    assert_eq!(answer.status, Some(408), "{}", answer.text);
    assert!(
        answer.text.contains("not received in time"),
        "{}",
        answer.text
    );
    assert!(answer.took < Duration::from_secs(4), "{:?}", answer.took);

    // The host's own pages read their bodies under the same bound: the login form is
    // open to anyone.
    let login_head = "POST /audit/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken=".to_owned();
    let answer = trickle(login_head);
    assert_eq!(answer.status, Some(408), "{}", answer.text);
    assert!(
        answer.text.contains("not received in time"),
        "{}",
        answer.text
    );
    assert!(answer.took < Duration::from_secs(4), "{:?}", answer.took);

    // Headers that never end: the connection is closed with no request made of them.
    let answer = trickle("POST /ingest/fhir HTTP/1.1\r\nHost: t\r\nX-Slow: ".to_owned());
    assert_eq!(answer.status, None, "{}", answer.text);
    assert!(answer.took < Duration::from_secs(4), "{:?}", answer.took);

    assert_eq!(w.health(), 200);
    w.assert_nothing_stored();
}

#[test]
fn path_traversal_in_routes_is_refused_with_400_before_any_component_runs() {
    let w = start(&[]);
    let body = with_line_3(b"");
    for path in [
        "/ingest/../audit",
        "/audit/../ingest/fhir",
        "/ingest/%2e%2e/ingest/fhir",
        "/ingest/fhir/.%2E/fhir",
        "//ingest/fhir",
        "/./ingest/fhir",
        "/ingest/fhir%2f..%2f..%2faudit",
        "/ingest\\..\\audit",
    ] {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/fhir+ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            w.token,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let answer = w.raw(&request, Duration::from_secs(10));
        assert_eq!(answer.status, Some(400), "{path}: {}", answer.text);
        assert!(
            answer.text.contains("the request path"),
            "{path}: {}",
            answer.text
        );
    }
    w.assert_nothing_stored();
}
