//! A study component for the host's tests: the declared parameter `op` chooses one honest
//! or one hostile behaviour. Its table has measures `n` and `other`; `carrier` and
//! `fail-target` need `age_years` granted, `log-rows` and `fail-rows` show what is granted.
//!
//! Ops: count, twice, out-of-range, bad-label, log-rows, fail-rows, all-rows-one-cell,
//! counter, few, carrier, fail-target, random, loop, memory, recurse, gigabyte,
//! fingerprint.
//!
//! - `count`: every row adds to `n` (what a study should do);
//! - `twice`: every row adds to `n` twice (the host must count it once);
//! - `out-of-range`: names the row just past the batch;
//! - `bad-label`: names label 9999;
//! - `log-rows`: logs each row's departement, age and date (a row-level leak through the
//!   log, which the host bounds), then counts honestly;
//! - `fail-rows`: fails with the first rows' values in its error;
//! - `all-rows-one-cell`: for unit `patient`, every row of the patient adds to `n` (the
//!   host caps what one patient adds to a cell);
//! - `counter`: counts only the first 50 groups an instance sees (not patient-local);
//! - `few`: adds to `other` instead of `n` when the batch has fewer than 200 groups
//!   (behaves differently when it sees few patients);
//! - `carrier`: counts honestly, and when a row of the batch has age 90, the first 1000
//!   rows without age 90 also add to `other` (a covert channel: unrelated rows move when
//!   a target is present);
//! - `fail-target`: fails when a row of the batch has age 90;
//! - `random`: each row adds to `n` or `other` at random;
//! - `loop`: never returns; `memory`: allocates until the memory limit; `recurse`: blows
//!   its stack; `gigabyte`: grows its memory toward 1 GiB, then counts honestly;
//! - `fingerprint`: logs what it can see of environment variables, arguments, files,
//!   clocks and random numbers, then counts honestly.
//!
//! The non-local ops look at the batch with `Out::batch` and name rows with
//! `Out::add_raw`, the SDK's escape hatches for tests of the host's checks. Their own
//! tests run natively: `cargo test -p study-probe --target x86_64-unknown-linux-gnu`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use carrel_study_sdk::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Count,
    Twice,
    OutOfRange,
    BadLabel,
    LogRows,
    FailRows,
    AllRowsOneCell,
    Counter,
    Few,
    Carrier,
    FailTarget,
    Random,
    Loop,
    Memory,
    Recurse,
    Gigabyte,
    Fingerprint,
}

const OPS: [(&str, Op); 17] = [
    ("count", Op::Count),
    ("twice", Op::Twice),
    ("out-of-range", Op::OutOfRange),
    ("bad-label", Op::BadLabel),
    ("log-rows", Op::LogRows),
    ("fail-rows", Op::FailRows),
    ("all-rows-one-cell", Op::AllRowsOneCell),
    ("counter", Op::Counter),
    ("few", Op::Few),
    ("carrier", Op::Carrier),
    ("fail-target", Op::FailTarget),
    ("random", Op::Random),
    ("loop", Op::Loop),
    ("memory", Op::Memory),
    ("recurse", Op::Recurse),
    ("gigabyte", Op::Gigabyte),
    ("fingerprint", Op::Fingerprint),
];

/// The age that marks the carrier's and fail-target's target.
const TARGET_AGE: u8 = 90;

fn op(params: &Params) -> Result<Op, StudyError> {
    let name = params.required("op")?;
    OPS.iter()
        .find(|(known, _)| *known == name)
        .map(|(_, op)| *op)
        .ok_or_else(|| StudyError::failed(format!("unknown op `{name}`")))
}

pub struct Probe;

impl Study for Probe {
    fn start(spec: &Spec) -> Result<(), StudyError> {
        op(spec.params()).map(drop)
    }

    fn patient(rows: &Patient, out: &mut Out) -> Result<(), StudyError> {
        match op(out.params())? {
            Op::Count | Op::AllRowsOneCell => add_each(rows, out, "n"),
            Op::Twice => {
                add_each(rows, out, "n")?;
                add_each(rows, out, "n")
            }
            Op::OutOfRange => {
                let beyond = out.batch().len() as u32;
                out.add_raw(beyond, index_of(out, "n")?, 0);
                Ok(())
            }
            Op::BadLabel => {
                let n = index_of(out, "n")?;
                for row in rows {
                    out.add_raw(row.batch_index(), n, 9999);
                }
                Ok(())
            }
            Op::LogRows => {
                for row in rows {
                    log::info(describe(&row));
                }
                add_each(rows, out, "n")
            }
            Op::FailRows => {
                let first: Vec<String> =
                    out.batch().rows().take(20).map(|r| describe(&r)).collect();
                Err(StudyError::failed(format!("rows: {}", first.join("; "))))
            }
            Op::Counter => {
                static GROUPS: AtomicU32 = AtomicU32::new(0);
                match GROUPS.fetch_add(1, Ordering::Relaxed) < 50 {
                    true => add_each(rows, out, "n"),
                    false => Ok(()),
                }
            }
            Op::Few => match out.batch().groups() < 200 {
                true => add_each(rows, out, "other"),
                false => add_each(rows, out, "n"),
            },
            Op::Carrier => {
                if is_first_group(rows) && target_in_batch(out) {
                    let other = index_of(out, "other")?;
                    let carried: Vec<u32> = out
                        .batch()
                        .rows()
                        .filter(|row| row.age_years() != Some(TARGET_AGE))
                        .take(1000)
                        .map(|row| row.batch_index())
                        .collect();
                    for row in carried {
                        out.add_raw(row, other, 0);
                    }
                }
                add_each(rows, out, "n")
            }
            Op::FailTarget => {
                if is_first_group(rows) && target_in_batch(out) {
                    return Err(StudyError::failed("a target is in the batch"));
                }
                add_each(rows, out, "n")
            }
            Op::Random => {
                for row in rows {
                    let measure = match random_bit() {
                        true => "n",
                        false => "other",
                    };
                    out.add(&row, measure)?;
                }
                Ok(())
            }
            Op::Loop => loop {
                std::hint::black_box(());
            },
            Op::Memory => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Op::Recurse => Err(StudyError::failed(format!("depth {}", recurse(0)))),
            Op::Gigabyte => {
                static GROWN: AtomicBool = AtomicBool::new(false);
                if !GROWN.swap(true, Ordering::Relaxed) {
                    // Held until the instance ends, as a real hoard would be.
                    let hoard: Vec<Vec<u8>> = (0..1024).map(|_| vec![1; 1 << 20]).collect();
                    std::hint::black_box(hoard.leak());
                }
                add_each(rows, out, "n")
            }
            Op::Fingerprint => {
                static LOGGED: AtomicBool = AtomicBool::new(false);
                if !LOGGED.swap(true, Ordering::Relaxed) {
                    for observation in fingerprint() {
                        log::info(observation);
                    }
                }
                add_each(rows, out, "n")
            }
        }
    }
}

carrel_study_sdk::export_study!(Probe);

fn add_each(rows: &Patient, out: &mut Out, measure: &str) -> Result<(), StudyError> {
    for row in rows {
        out.add(&row, measure)?;
    }
    Ok(())
}

fn index_of(out: &Out, measure: &str) -> Result<u32, StudyError> {
    out.spec()
        .measure_index(measure)
        .ok_or_else(|| StudyError::failed(format!("the table has no measure `{measure}`")))
}

/// The group holding the batch's first row: the batch-wide ops act once, there.
fn is_first_group(rows: &Patient) -> bool {
    rows.first().is_some_and(|row| row.batch_index() == 0)
}

fn target_in_batch(out: &Out) -> bool {
    out.batch()
        .rows()
        .any(|row| row.age_years() == Some(TARGET_AGE))
}

fn describe(row: &Row) -> String {
    format!(
        "departement={} age={} date={}",
        row.departement().unwrap_or("-"),
        row.age_years()
            .map_or("-".to_owned(), |age| age.to_string()),
        row.date().map_or("-".to_owned(), |date| date.to_string()),
    )
}

/// std seeds each `RandomState` from `wasi:random` (and varies its keys per state).
fn random_bit() -> bool {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0u64) & 1 == 1
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

/// What the sandbox lets a study observe of the machine it runs on.
fn fingerprint() -> Vec<String> {
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
    // A fixed value hashed with fresh keys shows what the random source gave.
    let random = std::collections::hash_map::RandomState::new().hash_one(0u64);
    seen.push(format!("random={random:016x}"));
    seen
}

fn busy_work(n: u64) -> u64 {
    (0..n).fold(0, |acc, i| acc ^ std::hint::black_box(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use carrel_study_sdk::testing::{Added, Consultation, Harness};

    fn harness(op: &str) -> Harness {
        Harness::new(&["n", "other"]).param("op", op)
    }

    fn measures(added: &[Added]) -> Vec<String> {
        added.iter().map(Added::to_string).collect()
    }

    fn aged(age: u8) -> Consultation {
        Consultation::new().age(age)
    }

    #[test]
    fn an_unknown_op_fails_at_start() {
        let error = harness("nope").run::<Probe>(&[]).unwrap_err();
        assert_eq!(error.message(), "unknown op `nope`");
    }

    #[test]
    fn count_and_twice_add_every_row_to_n() {
        let patient = [aged(3), aged(4)];
        let counted = harness("count").run::<Probe>(&[&patient]).unwrap();
        assert_eq!(measures(&counted), ["n", "n"]);
        let twice = harness("twice").run::<Probe>(&[&patient]).unwrap();
        assert_eq!(measures(&twice), ["n", "n", "n", "n"]);
    }

    #[test]
    fn out_of_range_and_bad_label_name_what_the_host_refuses() {
        let one: &[Consultation] = &[aged(3)];
        let error = harness("out-of-range").run::<Probe>(&[one]).unwrap_err();
        assert_eq!(error.message(), "row 1 is outside the batch");
        let error = harness("bad-label")
            .labels(&["x"])
            .run::<Probe>(&[one])
            .unwrap_err();
        assert_eq!(error.message(), "label 9999 is not declared");
    }

    #[test]
    fn fail_rows_puts_rows_in_its_error() {
        let row = Consultation::new()
            .departement("35")
            .age(7)
            .date("2024-01-15");
        let error = harness("fail-rows").run::<Probe>(&[&[row]]).unwrap_err();
        assert_eq!(
            error.message(),
            "rows: departement=35 age=7 date=2024-01-15"
        );
    }

    #[test]
    fn few_moves_rows_to_other_in_a_small_batch() {
        let one: &[Consultation] = &[aged(3)];
        let small = harness("few").run::<Probe>(&[one; 10]).unwrap();
        assert!(small.iter().all(|a| a.measure == "other"));
        let large = harness("few").run::<Probe>(&[one; 200]).unwrap();
        assert!(large.iter().all(|a| a.measure == "n"));
    }

    #[test]
    fn carrier_moves_unrelated_rows_when_a_target_is_present() {
        let plain: &[Consultation] = &[aged(30)];
        let target: &[Consultation] = &[aged(TARGET_AGE)];
        let without = harness("carrier")
            .run::<Probe>(&[plain, plain, plain])
            .unwrap();
        assert_eq!(measures(&without), ["n", "n", "n"]);
        let with = harness("carrier")
            .run::<Probe>(&[plain, target, plain])
            .unwrap();
        let other: Vec<usize> = with
            .iter()
            .filter(|a| a.measure == "other")
            .map(|a| a.group)
            .collect();
        assert_eq!(other, [0, 2], "the rows of the other patients");
        assert_eq!(with.iter().filter(|a| a.measure == "n").count(), 3);
    }

    #[test]
    fn fail_target_fails_only_with_a_target_in_the_batch() {
        let plain: &[Consultation] = &[aged(30)];
        let target: &[Consultation] = &[aged(TARGET_AGE)];
        assert!(harness("fail-target").run::<Probe>(&[plain, plain]).is_ok());
        let error = harness("fail-target")
            .run::<Probe>(&[plain, target])
            .unwrap_err();
        assert_eq!(error.message(), "a target is in the batch");
    }

    #[test]
    fn random_adds_every_row_once_to_one_of_the_measures() {
        let one: &[Consultation] = &[aged(3)];
        let added = harness("random").run::<Probe>(&[one; 100]).unwrap();
        assert_eq!(added.len(), 100);
        let n = added.iter().filter(|a| a.measure == "n").count();
        assert!(0 < n && n < 100, "{n} of 100 in `n`");
    }
}
