//! The FHIR reader (Bundles, NDJSON and the line splitter under it), its dates, and the
//! pseudonymisation that takes what it accepts, as the ingestion path runs them.

use std::convert::Infallible;

use carrel_fhir::date::{days_since_epoch, parse_date, parse_date_time};
use carrel_fhir::{
    Ingested, MAX_LISTED_PROBLEMS, MAX_MESSAGE_BYTES, Refusal, operation_outcome, validate_nir,
};
use carrel_pseudonym::{KeyedHasher, from_ipc, pseudonymise, rules, to_ipc};

/// Longest problem location: `line N: Encounter.diagnosis[i].condition` and the like.
const MAX_LOCATION: usize = 256;

/// A stand-in for the host's HMAC: 64 hex digits that depend on domain and item.
struct FakeHasher;

impl KeyedHasher for FakeHasher {
    type Error = Infallible;

    fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, Infallible> {
        Ok(items
            .iter()
            .map(|item| {
                // FNV-1a, four lanes: enough to tell items apart in a fuzz run.
                (0u64..4)
                    .map(|lane| {
                        let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ lane;
                        for &byte in domain.as_bytes().iter().chain(item) {
                            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
                        }
                        format!("{hash:016x}")
                    })
                    .collect()
            })
            .collect())
    }
}

fn check_refusal(refusal: &Refusal) {
    let problems = &refusal.problems;
    assert!(!problems.is_empty(), "a refusal without a problem");
    assert!(
        problems.len() <= MAX_LISTED_PROBLEMS + 1,
        "{} problems listed",
        problems.len()
    );
    for problem in problems {
        assert!(
            // A refusal names the value at fault, clipped: a hostile megabyte is never
            // sent back.
            problem.message.len() <= MAX_MESSAGE_BYTES,
            "a {}-byte message: {:.200}",
            problem.message.len(),
            problem.message
        );
        assert!(
            problem.location.len() <= MAX_LOCATION,
            "a {}-byte location: {:.200}",
            problem.location.len(),
            problem.location
        );
    }
    let outcome = operation_outcome(problems).to_string();
    let back: serde_json::Value = serde_json::from_str(&outcome).expect("outcome is JSON");
    assert_eq!(back["resourceType"], "OperationOutcome");
}

/// What the reader accepted must go through the pseudonymiser and Arrow IPC whole.
fn check_accepted(ingested: &Ingested) {
    assert!(
        !ingested.consultations.is_empty(),
        "a payload accepted with no consultation"
    );
    for consultation in &ingested.consultations {
        if let Some(nir) = &consultation.patient.nir {
            assert_eq!(validate_nir(nir).map(|n| n.into_string()).as_ref(), Ok(nir));
        }
    }
    let batch = pseudonymise("sos-fuzz", &ingested.consultations, &mut FakeHasher)
        .expect("the pseudonymiser takes every payload the reader accepts");
    assert_eq!(batch.num_rows(), ingested.consultations.len());
    let ipc = to_ipc(&batch).expect("to Arrow IPC");
    let back = from_ipc(&ipc).expect("from Arrow IPC");
    assert_eq!(back, vec![batch]);
}

fn check(data: &[u8], result: Result<Ingested, Refusal>) {
    match result {
        Ok(ingested) => {
            // FHIR JSON is UTF-8: bytes that are not, even in a skipped element, refuse
            // the payload.
            assert!(
                std::str::from_utf8(data).is_ok(),
                "accepted bytes that are not UTF-8"
            );
            check_accepted(&ingested)
        }
        Err(refusal) => check_refusal(&refusal),
    }
}

/// `application/fhir+json`: a Bundle.
pub fn fhir_bundle(data: &[u8]) {
    check(data, carrel_fhir::parse_bundle(data));
}

/// `application/fhir+ndjson`: one resource a line.
pub fn fhir_ndjson(data: &[u8]) {
    check(data, carrel_fhir::parse_ndjson(data));
}

/// The NDJSON splitter: every non-blank line, once, with the number an editor shows.
pub fn ndjson_lines(data: &[u8]) {
    let body = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    let mut previous = 0;
    let mut seen = 0;
    for (number, line) in carrel_fhir::ndjson_lines(data) {
        assert!(number > previous, "line {number} after line {previous}");
        previous = number;
        seen += 1;
        assert!(!line.contains(&b'\n'), "line {number} holds a newline");
        assert!(!line.trim_ascii().is_empty(), "line {number} is blank");
        let offset = line.as_ptr() as usize - body.as_ptr() as usize;
        assert!(
            offset + line.len() <= body.len(),
            "line {number} is not in the body"
        );
        let newlines = body[..offset].iter().filter(|&&b| b == b'\n').count();
        assert_eq!(number, newlines + 1, "line {number} starts on another line");
        assert!(offset == 0 || body[offset - 1] == b'\n');
        let end = offset + line.len();
        assert!(
            matches!(
                &body[end..],
                [] | [b'\n', ..] | [b'\r', b'\n', ..] | [b'\r']
            ),
            "line {number} does not end at a newline"
        );
    }
    let expected = body
        .split(|&b| b == b'\n')
        .filter(|line| !line.trim_ascii().is_empty())
        .count();
    assert_eq!(seen, expected, "non-blank lines missed or repeated");
}

/// FHIR `date` and `dateTime` values and the calendar arithmetic built on them.
pub fn fhir_date(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (value, on) = text.split_once('\n').unwrap_or((text, "2024-01-15"));
    if let Ok(date) = parse_date(value) {
        assert!((1..=9999).contains(&date.year));
        assert_eq!(parse_date_time(value).map(|d| d.date), Ok(date));
        if let (Some(month), Some(day)) = (date.month, date.day) {
            let days = days_since_epoch(date.year, month, day);
            // The next calendar day is one more, across months and years.
            let next = if day < carrel_fhir::date::days_in_month(date.year, month) {
                days_since_epoch(date.year, month, day + 1)
            } else if month < 12 {
                days_since_epoch(date.year, month + 1, 1)
            } else if date.year < 9999 {
                days_since_epoch(date.year + 1, 1, 1)
            } else {
                days + 1
            };
            assert_eq!(next, days + 1, "{value}");
        }
    }
    if let Ok(date_time) = parse_date_time(value)
        && let (Some(month), Some(day)) = (date_time.date.month, date_time.date.day)
        && let Ok(on) = parse_date_time(on)
        && let (Some(on_month), Some(on_day)) = (on.date.month, on.date.day)
    {
        let age = rules::age_years(
            value.get(..10).unwrap_or(value),
            (on.date.year, on_month, on_day),
        );
        if let Some(age) = age {
            assert!(age <= rules::AGE_TOP_CODE);
            assert!((date_time.date.year, month, day) <= (on.date.year, on_month, on_day));
        }
    }
}

/// A patient's objection (a FHIR Consent with a deny provision): refused with bounded
/// reasons, or identifiers whose NIR checks and that the host's identity rules take or
/// refuse without repeating them.
pub fn fhir_consent(data: &[u8]) {
    match carrel_fhir::parse_objection(data) {
        Ok(patient) => {
            assert!(
                std::str::from_utf8(data).is_ok(),
                "accepted bytes that are not UTF-8"
            );
            if let Some(nir) = &patient.nir {
                assert_eq!(validate_nir(nir).map(|n| n.into_string()).as_ref(), Ok(nir));
            }
            match carrel_pseudonym::identity::objection_identities(&patient) {
                Ok(keys) => assert!(!keys.is_empty(), "an objection naming nobody"),
                Err(error) => {
                    let text = error.to_string();
                    for value in [&patient.nir, &patient.family, &patient.given] {
                        if let Some(value) = value.as_deref().filter(|v| v.len() > 3) {
                            assert!(!text.contains(value), "the refusal repeats {value}");
                        }
                    }
                }
            }
        }
        Err(refusal) => check_refusal(&refusal),
    }
}
