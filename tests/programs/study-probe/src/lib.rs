//! A study component for the host's tests. `op` chooses what it does:
//!
//! - `count`: consultations by age class (what a study should do);
//! - `unapproved-dataset`, `unapproved-column`: opens what its manifest does not grant;
//! - `loop`, `memory`: never returns, or allocates until the memory limit;
//! - `huge`: returns a table of several MB;
//! - `per-patient`: returns one row per patient, disguised as counts;
//! - `threes`: returns a table whose every count is 3.

use carrel_study_sdk::prelude::*;

struct Probe;

fn consultations_by_age() -> Result<RecordBatch, StudyError> {
    let mut table = CountTable::new(&["age_class"], &["consultations"]);
    for batch in open("consultations", &["date", "age_years"])? {
        let batch = batch?;
        let ages = column::<UInt8Array>(&batch, "age_years")?;
        for row in 0..batch.num_rows() {
            table.add(&[age_class(ages.value(row))], &[1]);
        }
    }
    table.into_batch_with_shares(&[])
}

fn one_row_per_patient() -> Result<RecordBatch, StudyError> {
    let mut table = CountTable::new(&["patient"], &["consultations"]);
    for batch in open("consultations", &["patient_id"])? {
        let batch = batch?;
        let patients = column::<StringArray>(&batch, "patient_id")?;
        for row in 0..batch.num_rows() {
            table.add(&[patients.value(row)], &[10]);
        }
    }
    table.into_batch_with_shares(&[])
}

impl Study for Probe {
    fn run(params: &Params) -> Result<RecordBatch, StudyError> {
        match params.required("op")? {
            "count" => consultations_by_age(),
            "unapproved-dataset" => {
                open("prescriptions", &["date"])?;
                Err(StudyError::failed(
                    "the host let an unapproved dataset open",
                ))
            }
            "unapproved-column" => {
                open("consultations", &["date", "departement"])?;
                Err(StudyError::failed("the host let an unapproved column open"))
            }
            "loop" => loop {
                std::hint::black_box(());
            },
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "huge" => {
                let mut table = CountTable::new(&["label"], &["consultations"]);
                for i in 0..4000 {
                    table.add(&[&format!("{i:0>1000}")], &[100]);
                }
                table.into_batch_with_shares(&[])
            }
            "per-patient" => one_row_per_patient(),
            "threes" => {
                let mut table = CountTable::new(&["group"], &["consultations"]);
                for group in ["a", "b", "c", "d", "e"] {
                    table.add(&[group], &[3]);
                }
                table.into_batch_with_shares(&[])
            }
            other => Err(StudyError::invalid_params(format!("unknown op `{other}`"))),
        }
    }
}

carrel_study_sdk::export_study!(Probe);
