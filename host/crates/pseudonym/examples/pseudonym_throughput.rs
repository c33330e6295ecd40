//! Native throughput of the ingestion path inside the sandbox: NDJSON reading
//! (carrel-fhir), pseudonymisation and Arrow IPC encoding (carrel-pseudonym), on about
//! 100,000 consultations of two shapes:
//!
//! - `synthea`: the Synthea export of tests/fixtures repeated with renamed ids (large,
//!   extension-laden US resources: about 1.6 kB per Encounter);
//! - `compact`: French-style resources with NIR, postcode and ICD-10 Conditions.
//!
//! Keyed hashes are HMAC-SHA-256 computed in-process, as the host does.
//!
//! `cargo run --release -p carrel-pseudonym --example pseudonym_throughput [synthea|compact]`

use std::path::PathBuf;
use std::time::Instant;

use carrel_fhir::parse_ndjson;
use carrel_pseudonym::{KeyedHasher, pseudonymise, to_ipc};
use sha2::{Digest, Sha256};

const TARGET_ROWS: usize = 100_000;

/// HMAC-SHA-256 (RFC 2104) with a fixed key per domain.
struct LocalHmac;

impl KeyedHasher for LocalHmac {
    type Error = std::convert::Infallible;

    fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, Self::Error> {
        let mut key = [0u8; 64];
        key[..domain.len().min(64)].copy_from_slice(&domain.as_bytes()[..domain.len().min(64)]);
        let inner_pad: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
        let outer_pad: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
        Ok(items
            .iter()
            .map(|item| {
                let inner = Sha256::new()
                    .chain_update(&inner_pad)
                    .chain_update(item)
                    .finalize();
                let outer = Sha256::new()
                    .chain_update(&outer_pad)
                    .chain_update(inner)
                    .finalize();
                outer.iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect())
    }
}

fn synthea_payload() -> Vec<u8> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/synthea-bulk-10");
    let mut original = String::new();
    for file in [
        "Patient.000.ndjson",
        "Encounter.000.ndjson",
        "Condition.000.ndjson",
    ] {
        original.push_str(&std::fs::read_to_string(dir.join(file)).expect("the Synthea fixture"));
    }
    let copies = TARGET_ROWS.div_ceil(1215);
    let mut payload = String::with_capacity(original.len() * copies);
    for copy in 0..copies {
        let prefix = format!("c{copy}-");
        for line in original.lines() {
            let renamed = line
                .replacen(r#""id":""#, &format!(r#""id":"{prefix}"#), 1)
                .replace(
                    r#""reference":"Patient/"#,
                    &format!(r#""reference":"Patient/{prefix}"#),
                )
                .replace(
                    r#""reference":"Encounter/"#,
                    &format!(r#""reference":"Encounter/{prefix}"#),
                );
            payload.push_str(&renamed);
            payload.push('\n');
        }
    }
    payload.into_bytes()
}

/// A valid NIR for a sequence number (key computed as the warehouse checks it).
fn nir(sequence: usize) -> String {
    let body = format!(
        "{}{:02}{:02}29{:03}{:03}",
        1 + sequence % 2,
        sequence % 100,
        1 + sequence % 12,
        sequence % 1000,
        sequence / 1000 % 1000
    );
    let key = 97 - body.parse::<u64>().expect("digits") % 97;
    format!("{body}{key:02}")
}

fn compact_payload() -> Vec<u8> {
    let mut payload = String::new();
    let patients = TARGET_ROWS / 5;
    for p in 0..patients {
        payload.push_str(&format!(
            r#"{{"resourceType":"Patient","id":"p{p}","identifier":[{{"system":"urn:oid:1.2.250.1.213.1.4.8","value":"{}"}}],"name":[{{"use":"official","family":"Le Gall{p}","given":["Anne","Marie"]}}],"gender":"female","birthDate":"19{:02}-0{}-1{}","address":[{{"line":["1 rue de Siam"],"postalCode":"29200","country":"FR"}}],"telecom":[{{"system":"phone","value":"0612{p:06}"}}]}}"#,
            nir(p), p % 100, 1 + p % 9, p % 10
        ));
        payload.push('\n');
    }
    for e in 0..TARGET_ROWS {
        payload.push_str(&format!(
            r#"{{"resourceType":"Encounter","id":"e{e}","status":"finished","class":{{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HH"}},"subject":{{"reference":"Patient/p{}"}},"period":{{"start":"2024-01-{:02}T{:02}:30:00+01:00","end":"2024-01-15T23:50:00+01:00"}},"reasonCode":[{{"coding":[{{"system":"http://snomed.info/sct","code":"6142004"}}]}}],"hospitalization":{{"dischargeDisposition":{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/discharge-disposition","code":"home"}}]}}}}}}"#,
            e % patients, 1 + e % 28, e % 24
        ));
        payload.push('\n');
        payload.push_str(&format!(
            r#"{{"resourceType":"Condition","id":"c{e}","code":{{"coding":[{{"system":"http://hl7.org/fhir/sid/icd-10","code":"J11.1"}}]}},"subject":{{"reference":"Patient/p{}"}},"encounter":{{"reference":"Encounter/e{e}"}}}}"#,
            e % patients
        ));
        payload.push('\n');
    }
    payload.into_bytes()
}

fn main() {
    let shape = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "compact".to_owned());
    let payload = match shape.as_str() {
        "synthea" => synthea_payload(),
        "compact" => compact_payload(),
        other => panic!("unknown shape `{other}`: use synthea or compact"),
    };
    let started = Instant::now();
    let ingested = parse_ndjson(&payload).expect("the payload is accepted");
    let parsed = started.elapsed();
    let batch =
        pseudonymise("bench", &ingested.consultations, &mut LocalHmac).expect("pseudonymised");
    let pseudonymised = started.elapsed() - parsed;
    let ipc = to_ipc(&batch).expect("encoded");
    let total = started.elapsed();
    let rows = batch.num_rows() as f64;
    let per_second = |seconds: f64| (rows / seconds).round();
    println!(
        "{shape}: {} rows, {:.1} MB NDJSON -> {:.1} MB IPC\n  parse        {:>8.0} ms {:>10} rows/s\n  pseudonymise {:>8.0} ms {:>10} rows/s\n  end to end   {:>8.0} ms {:>10} rows/s (one thread)",
        batch.num_rows(),
        payload.len() as f64 / 1e6,
        ipc.len() as f64 / 1e6,
        parsed.as_secs_f64() * 1e3,
        per_second(parsed.as_secs_f64()),
        pseudonymised.as_secs_f64() * 1e3,
        per_second(pseudonymised.as_secs_f64()),
        total.as_secs_f64() * 1e3,
        per_second(total.as_secs_f64()),
    );
}
