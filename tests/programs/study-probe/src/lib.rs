//! A study component for the host's tests. `op` chooses what it does:
//!
//! - `count`: consultations by age class (what a study should do);
//! - `unapproved-dataset`, `unapproved-column`: opens what its manifest does not grant;
//! - `loop`, `memory`: never returns, or allocates until the memory limit;
//! - `huge`: returns a table of several MB;
//! - `per-patient`: returns one row per patient, disguised as counts;
//! - `threes`: returns a table whose every count is 3;
//! - `recurse`: recurses until its stack is exhausted;
//! - `gigabyte`: builds a 1 GiB output table;
//! - `fingerprint`: reads the environment, arguments, files, clocks and random numbers
//!   and returns what it saw as the labels of a table (labels pass disclosure control,
//!   so this is how a study would smuggle a fingerprint of the host out).

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

/// Recurses until the stack is exhausted: the host must turn it into a failed run.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    if frame[63] == u64::MAX {
        return 0;
    }
    recurse(depth + 1) + frame[0]
}

/// A table of 1,024 rows with labels of 1 MiB each.
fn gigabyte() -> Result<RecordBatch, StudyError> {
    let mut table = CountTable::new(&["label"], &["consultations"]);
    for i in 0..1024u32 {
        let label = format!("{i:0>width$}", width = 1 << 20);
        table.add(&[&label], &[100]);
    }
    table.into_batch_with_shares(&[])
}

/// What the sandbox lets a study observe of the machine it runs on.
fn fingerprint() -> Result<RecordBatch, StudyError> {
    use std::hash::BuildHasher;
    let mut seen = vec![
        format!("env-vars={}", std::env::vars_os().count()),
        format!("args={}", std::env::args_os().count()),
    ];
    for path in ["/", ".", "/etc/passwd", "/proc/self/environ", "/tmp"] {
        let outcome = match std::fs::read_dir(path) {
            Ok(_) => "listed",
            Err(_) => match std::fs::read(path) {
                Ok(_) => "read",
                Err(_) => "denied",
            },
        };
        seen.push(format!("open {path}: {outcome}"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    seen.push(format!("seconds-into-day={}", now.as_secs() % 86_400));
    seen.push(format!("sub-second-nanos={}", now.subsec_nanos()));
    let started = std::time::Instant::now();
    std::hint::black_box(busy_work(20_000));
    seen.push(format!(
        "monotonic-elapsed-ns={}",
        started.elapsed().as_nanos()
    ));
    // std seeds its hash maps from `wasi:random`; a fixed value hashed with fresh keys
    // shows what the random source gave.
    let random = std::collections::hash_map::RandomState::new().hash_one(0u64);
    seen.push(format!("random={random:016x}"));
    let mut table = CountTable::new(&["observation"], &["n"]);
    for observation in &seen {
        table.add(&[observation], &[100]);
    }
    table.into_batch_with_shares(&[])
}

fn busy_work(n: u64) -> u64 {
    (0..n).fold(0, |acc, i| acc ^ std::hint::black_box(i))
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
            "recurse" => Err(StudyError::failed(format!("depth {}", recurse(0)))),
            "gigabyte" => gigabyte(),
            "fingerprint" => fingerprint(),
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
