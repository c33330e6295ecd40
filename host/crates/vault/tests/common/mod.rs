//! Shared by the integration tests and the benchmark: synthetic consultations in the
//! canonical schema and a vault in a temporary state directory.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Date32Array, RecordBatch, StringArray, UInt8Array};
use carrel_vault::consultation::{consultation_column_groups, consultation_schema};
use carrel_vault::{MasterKeyEnv, Vault};

pub const DATASET: &str = "consultations";
pub const ACTOR: &str = "test";

const ASSOCIATIONS: [&str; 6] = [
    "sos-paris",
    "sos-lyon",
    "ssm-bordeaux",
    "sos-lille",
    "adpds-13",
    "sos-nantes",
];
const DEPARTEMENTS: [&str; 8] = ["75", "69", "33", "59", "13", "44", "2A", "971"];
const VISIT_TYPES: [&str; 4] = ["home", "centre", "tele", "other"];
const OUTCOMES: [&str; 4] = ["home", "hospital", "deceased", "unknown"];
const CODES: [&str; 10] = [
    "J11",
    "A09",
    "J21.9",
    "J06.9",
    "R50.9",
    "K52.9",
    "J45",
    "S01.8",
    "N39.0",
    "http://snomed.info/sct|444814009",
];

/// A small deterministic generator, so tests are reproducible and benches cheap.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn hex64(rng: &mut SplitMix) -> String {
    format!(
        "{:016x}{:016x}{:016x}{:016x}",
        rng.next(),
        rng.next(),
        rng.next(),
        rng.next()
    )
}

/// `rows` synthetic consultations; row `start + i` is the same whatever the batch size.
/// Every 7th hour, 11th age and 13th département is null; every 5th row has no diagnosis.
pub fn consultation_batch(start: u64, rows: usize) -> RecordBatch {
    let mut consultation_id = StringBuilder::with_capacity(rows, rows * 64);
    let mut patient_id = StringBuilder::with_capacity(rows, rows * 64);
    let mut association = Vec::with_capacity(rows);
    let mut date = Vec::with_capacity(rows);
    let mut hour = Vec::with_capacity(rows);
    let mut age = Vec::with_capacity(rows);
    let mut sex = Vec::with_capacity(rows);
    let mut departement = Vec::with_capacity(rows);
    let mut visit_type = Vec::with_capacity(rows);
    let mut diagnoses = ListBuilder::new(StringBuilder::new());
    let mut outcome = Vec::with_capacity(rows);
    for row in start..start + rows as u64 {
        let mut rng = SplitMix(row.wrapping_mul(0x2545_F491_4F6C_DD1D));
        consultation_id.append_value(hex64(&mut rng));
        patient_id.append_value(hex64(&mut rng));
        association.push(ASSOCIATIONS[rng.below(6) as usize]);
        date.push(19_723 + rng.below(730) as i32);
        hour.push((row % 7 != 0).then(|| rng.below(24) as u8));
        age.push((row % 11 != 0).then(|| rng.below(91) as u8));
        sex.push(["F", "M", "U"][rng.below(3) as usize]);
        departement.push((row % 13 != 0).then(|| DEPARTEMENTS[rng.below(8) as usize]));
        visit_type.push(VISIT_TYPES[rng.below(4) as usize]);
        let codes = if row % 5 == 0 { 0 } else { 1 + rng.below(3) };
        for _ in 0..codes {
            diagnoses
                .values()
                .append_value(CODES[rng.below(10) as usize]);
        }
        diagnoses.append(true);
        outcome.push(OUTCOMES[rng.below(4) as usize]);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(consultation_id.finish()),
        Arc::new(patient_id.finish()),
        Arc::new(StringArray::from(association)),
        Arc::new(Date32Array::from(date)),
        Arc::new(UInt8Array::from(hour)),
        Arc::new(UInt8Array::from(age)),
        Arc::new(StringArray::from(sex)),
        Arc::new(StringArray::from(departement)),
        Arc::new(StringArray::from(visit_type)),
        Arc::new(diagnoses.finish()),
        Arc::new(StringArray::from(outcome)),
    ];
    RecordBatch::try_new(Arc::new(consultation_schema()), columns)
        .expect("generator matches the canonical schema")
}

pub fn test_key() -> MasterKeyEnv {
    // Fixed so a child process (crash test) can open the same state directory.
    MasterKeyEnv::with_value("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
}

/// A vault keyed from the (explicit) environment, with the consultations dataset.
pub fn vault_with_consultations(state_dir: &Path) -> Vault {
    let vault = Vault::open(state_dir, &test_key()).expect("open vault");
    vault
        .create_dataset(
            DATASET,
            &consultation_schema(),
            &consultation_column_groups(),
            ACTOR,
        )
        .expect("create dataset");
    vault
}

/// Every row of a dataset, all columns, concatenated.
pub fn read_all(vault: &Vault, dataset: &str) -> RecordBatch {
    let version = vault.current_version(dataset).unwrap();
    let columns: Vec<&str> = version
        .schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    let batches: Vec<RecordBatch> = vault
        .scan(dataset, &columns)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    arrow_select::concat::concat_batches(&version.schema, &batches).unwrap()
}
