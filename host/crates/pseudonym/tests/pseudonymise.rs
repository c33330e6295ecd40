//! Pseudonymisation end to end: the schema, each rule as seen in the batch, the hashing
//! calls, and that no input identifier reaches the output.

use std::hash::{DefaultHasher, Hash, Hasher};

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, UInt8Type};
use arrow_array::{Array, RecordBatch};
use carrel_fhir::{Coding, IdentifiedConsultation, IdentifiedPatient, looks_like_valid_nir};
use carrel_pseudonym::{
    KeyedHasher, PseudonymiseError, canonical_schema, from_ipc, pseudonymise, to_ipc,
};

/// A stand-in for the host's HMAC: 64 hex characters from SipHash of a secret, the domain
/// and the item, recording each call.
#[derive(Default)]
struct FakeHmac {
    calls: Vec<(String, usize)>,
}

impl KeyedHasher for FakeHmac {
    type Error = String;

    fn hash(&mut self, domain: &str, items: &[Vec<u8>]) -> Result<Vec<String>, String> {
        self.calls.push((domain.to_owned(), items.len()));
        Ok(items
            .iter()
            .map(|item| {
                (0..4u8)
                    .map(|lane| {
                        let mut hasher = DefaultHasher::new();
                        ("secret", lane, domain, item).hash(&mut hasher);
                        format!("{:016x}", hasher.finish())
                    })
                    .collect()
            })
            .collect())
    }
}

fn martin() -> IdentifiedPatient {
    IdentifiedPatient {
        nir: Some("2 69 05 49 588 157 80".to_owned()),
        family: Some("Martin-Lefèvre".to_owned()),
        given: Some("Zoé".to_owned()),
        birth_date: Some("1969-05-21".to_owned()),
        sex: Some("female".to_owned()),
        postcode: Some("29200".to_owned()),
        telecom: vec!["0612345678".to_owned(), "zoe.martin@example.fr".to_owned()],
    }
}

fn consultation(id: &str, start: &str, patient: IdentifiedPatient) -> IdentifiedConsultation {
    IdentifiedConsultation {
        source_encounter_id: id.to_owned(),
        start: start.to_owned(),
        class_code: Some("HH".to_owned()),
        diagnoses: vec![
            Coding {
                system: Some("http://hl7.org/fhir/sid/icd-10".to_owned()),
                code: "J11.1".to_owned(),
            },
            Coding {
                system: Some("http://snomed.info/sct".to_owned()),
                code: "6142004".to_owned(),
            },
        ],
        discharge_disposition: Some(Coding {
            system: None,
            code: "home".to_owned(),
        }),
        patient,
    }
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let array = batch.column_by_name(column).unwrap().as_string::<i32>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i).to_owned()))
        .collect()
}

fn bytes(batch: &RecordBatch, column: &str) -> Vec<Option<u8>> {
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<UInt8Type>()
        .iter()
        .collect()
}

fn run(rows: &[IdentifiedConsultation]) -> RecordBatch {
    pseudonymise("sos-brest", rows, &mut FakeHmac::default()).unwrap()
}

#[test]
fn the_batch_has_exactly_the_canonical_schema_and_survives_ipc() {
    let batch = run(&[consultation("e1", "2024-01-15T23:30:00+01:00", martin())]);
    assert_eq!(batch.schema(), canonical_schema());
    let decoded = from_ipc(&to_ipc(&batch).unwrap()).unwrap();
    assert_eq!(decoded, vec![batch]);
}

#[test]
fn hashes_are_asked_once_per_domain_and_each_patient_once() {
    let rows = [
        consultation("e1", "2024-01-15T23:30:00+01:00", martin()),
        consultation("e2", "2024-01-16T10:00:00+01:00", martin()),
        consultation(
            "e3",
            "2024-01-16T11:00:00+01:00",
            IdentifiedPatient::default(),
        ),
    ];
    let mut hasher = FakeHmac::default();
    pseudonymise("sos-brest", &rows, &mut hasher).unwrap();
    assert_eq!(
        hasher.calls,
        vec![("patient".to_owned(), 2), ("consultation".to_owned(), 3)]
    );
    let mut idle = FakeHmac::default();
    let empty = pseudonymise("sos-brest", &[], &mut idle).unwrap();
    assert_eq!((empty.num_rows(), idle.calls.len()), (0, 0));
}

#[test]
fn one_patient_gets_one_pseudonym_however_their_nir_or_name_is_written() {
    let mut compact = martin();
    compact.nir = Some("269054958815780".to_owned());
    compact.family = Some("Someone Else".to_owned());
    let mut no_nir = martin();
    no_nir.nir = None;
    let mut no_nir_shouting = no_nir.clone();
    no_nir_shouting.family = Some("MARTIN LEFEVRE".to_owned());
    no_nir_shouting.given = Some("zoe".to_owned());
    let mut wrong_key = no_nir.clone();
    wrong_key.nir = Some("269054958815781".to_owned());
    let mut other_birth = no_nir.clone();
    other_birth.birth_date = Some("1969-05-22".to_owned());
    let batch = run(&[
        consultation("e1", "2024-01-15", martin()),
        consultation("e2", "2024-01-15", compact),
        consultation("e3", "2024-01-15", no_nir),
        consultation("e4", "2024-01-15", no_nir_shouting),
        consultation("e5", "2024-01-15", wrong_key),
        consultation("e6", "2024-01-15", other_birth),
    ]);
    let ids = strings(&batch, "patient_id");
    assert_eq!(ids[0], ids[1], "same NIR");
    assert_ne!(ids[0], ids[2], "NIR and traits are different keys");
    assert_eq!(ids[2], ids[3], "same traits, written differently");
    assert_eq!(
        ids[2], ids[4],
        "a NIR that does not check falls back to the traits"
    );
    assert_ne!(ids[2], ids[5], "another birth date");
    assert!(ids.iter().all(|id| id.as_ref().unwrap().len() == 64));
}

#[test]
fn patients_without_any_identity_are_not_linked_together() {
    let batch = run(&[
        consultation("e1", "2024-01-15", IdentifiedPatient::default()),
        consultation("e2", "2024-01-15", IdentifiedPatient::default()),
    ]);
    let ids = strings(&batch, "patient_id");
    assert_ne!(ids[0], ids[1]);
}

#[test]
fn consultation_pseudonyms_depend_on_the_association() {
    let rows = [consultation("e1", "2024-01-15", martin())];
    let brest = pseudonymise("sos-brest", &rows, &mut FakeHmac::default()).unwrap();
    let quimper = pseudonymise("sos-quimper", &rows, &mut FakeHmac::default()).unwrap();
    assert_ne!(
        strings(&brest, "consultation_id"),
        strings(&quimper, "consultation_id")
    );
    assert_eq!(
        strings(&quimper, "association"),
        vec![Some("sos-quimper".to_owned())]
    );
}

#[test]
fn date_and_hour_are_read_as_written_in_the_start_offset() {
    let batch = run(&[
        consultation("e1", "2024-01-15T23:30:00+01:00", martin()),
        consultation("e2", "2024-01-15T02:10:00-04:00", martin()),
        consultation("e3", "2024-01-16", martin()),
    ]);
    let dates: Vec<Option<i32>> = batch
        .column_by_name("date")
        .unwrap()
        .as_primitive::<Date32Type>()
        .iter()
        .collect();
    assert_eq!(dates, vec![Some(19_737), Some(19_737), Some(19_738)]);
    assert_eq!(bytes(&batch, "hour"), vec![Some(23), Some(2), Some(0)]);
}

#[test]
fn demographics_are_coarsened() {
    let mut corsican = martin();
    corsican.postcode = Some("20200".to_owned());
    corsican.sex = Some("male".to_owned());
    corsican.birth_date = Some("1920-02-01".to_owned());
    let mut abroad = martin();
    abroad.postcode = None;
    abroad.sex = None;
    abroad.birth_date = None;
    let batch = run(&[
        consultation("e1", "2024-01-15", martin()),
        consultation("e2", "2024-01-15", corsican),
        consultation("e3", "2024-01-15", abroad),
    ]);
    assert_eq!(bytes(&batch, "age_years"), vec![Some(54), Some(90), None]);
    let sexes: Vec<_> = strings(&batch, "sex").into_iter().flatten().collect();
    assert_eq!(sexes, ["F", "M", "U"]);
    assert_eq!(
        strings(&batch, "departement"),
        vec![Some("29".to_owned()), Some("2B".to_owned()), None]
    );
}

#[test]
fn visit_type_diagnoses_and_outcome_follow_the_rules() {
    let mut tele = consultation("e2", "2024-01-15", martin());
    tele.class_code = Some("VR".to_owned());
    tele.diagnoses.clear();
    tele.discharge_disposition = Some(Coding {
        system: None,
        code: "hosp".to_owned(),
    });
    let batch = run(&[consultation("e1", "2024-01-15", martin()), tele]);
    let visit_types: Vec<_> = strings(&batch, "visit_type")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(visit_types, ["home", "tele"]);
    let outcomes: Vec<_> = strings(&batch, "outcome").into_iter().flatten().collect();
    assert_eq!(outcomes, ["home", "hospital"]);
    let diagnoses = batch.column_by_name("diagnoses").unwrap().as_list::<i32>();
    let first = diagnoses.value(0);
    let first: Vec<&str> = first.as_string::<i32>().iter().flatten().collect();
    assert_eq!(first, ["J111", "http://snomed.info/sct|6142004"]);
    assert!(diagnoses.is_valid(1));
    assert_eq!(diagnoses.value(1).len(), 0);
}

#[test]
fn an_unreadable_start_fails_the_batch() {
    let error = pseudonymise(
        "sos-brest",
        &[consultation("e1", "15/01/2024", martin())],
        &mut FakeHmac::default(),
    )
    .unwrap_err();
    assert!(matches!(
        error,
        PseudonymiseError::InvalidStart { row: 0, .. }
    ));
}

struct BrokenHmac(usize);

impl KeyedHasher for BrokenHmac {
    type Error = &'static str;

    fn hash(&mut self, _: &str, items: &[Vec<u8>]) -> Result<Vec<String>, &'static str> {
        match self.0 {
            0 => Err("access-denied: patient"),
            short => Ok(vec!["00".repeat(32); items.len().saturating_sub(short)]),
        }
    }
}

#[test]
fn a_failing_or_short_keyed_hash_fails_the_batch() {
    let rows = [consultation("e1", "2024-01-15", martin())];
    let denied = pseudonymise("sos-brest", &rows, &mut BrokenHmac(0)).unwrap_err();
    assert!(denied.to_string().contains("access-denied"));
    let short = pseudonymise("sos-brest", &rows, &mut BrokenHmac(1)).unwrap_err();
    assert!(matches!(
        short,
        PseudonymiseError::HashCount {
            sent: 1,
            returned: 0,
            ..
        }
    ));
}

/// Every string in the batch, list items included.
fn every_string(batch: &RecordBatch) -> Vec<String> {
    let mut found = Vec::new();
    for column in batch.columns() {
        if let Some(strings) = column.as_string_opt::<i32>() {
            found.extend(strings.iter().flatten().map(str::to_owned));
        } else if let Some(lists) = column.as_list_opt::<i32>() {
            let items = lists.values().as_string::<i32>();
            found.extend(items.iter().flatten().map(str::to_owned));
        }
    }
    found
}

#[test]
fn no_input_identifier_reaches_the_output() {
    let patient = martin();
    let rows = [
        consultation(
            "LGC-ENC-000123",
            "2024-01-15T23:30:00+01:00",
            patient.clone(),
        ),
        consultation(
            "LGC-ENC-000124",
            "2024-01-15T23:30:00+01:00",
            patient.clone(),
        ),
    ];
    let batch = run(&rows);
    let identifiers = [
        "269054958815780",
        "Martin",
        "MARTIN",
        "Lefèvre",
        "LEFEVRE",
        "Zoé",
        "ZOE",
        "1969-05-21",
        "29200",
        "0612345678",
        "zoe.martin",
        "LGC-ENC-000123",
        "LGC-ENC-000124",
    ];
    // Pseudonyms are digests and nothing else; every other string is free of identifiers.
    for column in ["consultation_id", "patient_id"] {
        for digest in strings(&batch, column).into_iter().flatten() {
            assert!(digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
    let cells = every_string(&batch);
    // 7 string columns and 2 diagnoses, for each of the 2 rows.
    assert_eq!(cells.len(), 18);
    for cell in cells.iter().filter(|cell| cell.len() != 64) {
        for identifier in identifiers {
            assert!(
                !cell.contains(identifier),
                "`{identifier}` leaked in `{cell}`"
            );
        }
    }
    for cell in &cells {
        assert!(!looks_like_valid_nir(cell), "a NIR in `{cell}`");
    }
}
