//! The Synthea export through the reader and the pseudonymiser: every Encounter is a row
//! and no name, address, phone number or id of the export is in it.

use std::path::PathBuf;
use std::time::Instant;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use carrel_fhir::parse_ndjson;
use carrel_pseudonym::{KeyedHasher, canonical_schema, from_ipc, pseudonymise, to_ipc};

/// 64 hex characters from an FNV fold of the domain and item: enough to tell items apart.
struct CountingHasher(usize);

impl KeyedHasher for CountingHasher {
    type Error = String;

    fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, String> {
        self.0 += 1;
        Ok(items
            .iter()
            .map(|item| {
                let folded = domain
                    .bytes()
                    .chain(item.iter().copied())
                    .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                    });
                let lanes = [folded, folded.rotate_left(17), !folded, folded.swap_bytes()];
                lanes
                    .iter()
                    .map(|lane| format!("{lane:016x}"))
                    .collect::<String>()
            })
            .collect())
    }
}

fn synthea_payload() -> Vec<u8> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/fixtures/synthea-bulk-10");
    let mut payload = Vec::new();
    for file in [
        "Patient.000.ndjson",
        "Encounter.000.ndjson",
        "Condition.000.ndjson",
    ] {
        let path = dir.join(file);
        payload.extend(
            std::fs::read(&path).unwrap_or_else(|error| {
                panic!("the fixture {} is missing: {error}", path.display())
            }),
        );
    }
    payload
}

#[test]
fn the_synthea_export_becomes_1215_pseudonymous_rows() {
    let payload = synthea_payload();
    let started = Instant::now();
    let ingested = parse_ndjson(&payload).unwrap();
    let mut hasher = CountingHasher(0);
    let batch = pseudonymise("synthea", &ingested.consultations, &mut hasher).unwrap();
    let ipc = to_ipc(&batch).unwrap();
    eprintln!(
        "Synthea: 1215 rows in {:?}, {} IPC bytes",
        started.elapsed(),
        ipc.len()
    );
    assert_eq!(batch.num_rows(), 1215);
    assert_eq!(batch.schema(), canonical_schema());
    assert_eq!(hasher.0, 2);
    // US zip codes name no French département.
    assert_eq!(
        batch.column_by_name("departement").unwrap().null_count(),
        1215
    );
    let patients = batch
        .column_by_name("patient_id")
        .unwrap()
        .as_string::<i32>();
    let distinct: std::collections::BTreeSet<&str> = patients.iter().flatten().collect();
    assert_eq!(distinct.len(), 13);

    let text = String::from_utf8_lossy(&payload);
    let mut identifiers = Vec::new();
    for line in text.lines() {
        let resource: serde_json::Value = serde_json::from_str(line).unwrap();
        identifiers.push(resource["id"].as_str().unwrap().to_owned());
        for name in resource["name"].as_array().into_iter().flatten() {
            identifiers.push(name["family"].as_str().unwrap().to_owned());
        }
        for contact in resource["telecom"].as_array().into_iter().flatten() {
            identifiers.push(contact["value"].as_str().unwrap().to_owned());
        }
        for address in resource["address"].as_array().into_iter().flatten() {
            identifiers.push(address["postalCode"].as_str().unwrap().to_owned());
        }
    }
    assert!(identifiers.len() > 1700);
    let decoded = &from_ipc(&ipc).unwrap()[0];
    for column in ["consultation_id", "patient_id"] {
        let digests = decoded.column_by_name(column).unwrap().as_string::<i32>();
        assert!(
            digests
                .iter()
                .flatten()
                .all(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
    for column in ["association", "sex", "departement", "visit_type", "outcome"] {
        let cells = decoded.column_by_name(column).unwrap().as_string::<i32>();
        for cell in cells.iter().flatten() {
            assert!(
                !identifiers.iter().any(|i| cell.contains(i.as_str())),
                "{column}: `{cell}`"
            );
        }
    }
    let diagnoses = decoded
        .column_by_name("diagnoses")
        .unwrap()
        .as_list::<i32>();
    for cell in diagnoses.values().as_string::<i32>().iter().flatten() {
        assert!(
            !identifiers.iter().any(|i| cell.contains(i.as_str())),
            "diagnoses: `{cell}`"
        );
    }
}
