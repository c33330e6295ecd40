//! Properties that must hold for any table: after suppression, no known sum has
//! exactly one redacted cell, and primary suppression is never undone.

mod common;

use std::collections::HashMap;

use common::*;

/// A small deterministic generator, so failures reproduce without a seed file.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// A full region × month × sex table with counts skewed towards small values, and a
/// row total over two count columns.
fn random_table(
    seed: u64,
    regions: usize,
    months: usize,
) -> (arrow_array::RecordBatch, Vec<[usize; 3]>) {
    let mut rng = Lcg(seed);
    let (mut region, mut month, mut sex, mut keys) = (vec![], vec![], vec![], vec![]);
    let (mut a, mut b, mut all) = (vec![], vec![], vec![]);
    for r in 0..regions {
        for m in 0..months {
            for s in 0..2 {
                region.push(format!("r{r}"));
                month.push(format!("m{m}"));
                sex.push(["f", "m"][s].to_string());
                keys.push([r, m, s]);
                let small = |rng: &mut Lcg| match rng.next(4) {
                    0 => 0,
                    1 => rng.next(8) as i64,
                    _ => rng.next(60) as i64,
                };
                let (x, y) = (small(&mut rng), small(&mut rng));
                a.push(x);
                b.push(y);
                all.push(x + y);
            }
        }
    }
    let (region, month, sex) = (strs(&region), strs(&month), strs(&sex));
    let table = Table::new()
        .dimension("region", &region)
        .dimension("month", &month)
        .dimension("sex", &sex)
        .count("a", &a)
        .count("b", &b)
        .total("all", &all, "a,b")
        .build();
    (table, keys)
}

fn strs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

fn lone_redactions(redacted: &[bool], keys: &[[usize; 3]]) -> usize {
    let mut lone = 0;
    for along in 0..3 {
        let mut groups: HashMap<Vec<usize>, Vec<bool>> = HashMap::new();
        for (row, key) in keys.iter().enumerate() {
            let other: Vec<usize> = (0..3).filter(|&d| d != along).map(|d| key[d]).collect();
            groups.entry(other).or_default().push(redacted[row]);
        }
        lone += groups
            .values()
            .filter(|cells| cells.len() >= 2 && cells.iter().filter(|&&r| r).count() == 1)
            .count();
    }
    lone
}

#[test]
fn no_margin_or_row_total_is_left_with_a_lone_redaction() {
    for seed in 0..200 {
        let (table, keys) = random_table(seed, 4, 3);
        let released = release(&table);
        let columns: Vec<Vec<bool>> = ["a", "b", "all"]
            .iter()
            .map(|name| {
                counts(&released, name)
                    .iter()
                    .map(Option::is_none)
                    .collect()
            })
            .collect();
        for (name, redacted) in ["a", "b", "all"].iter().zip(&columns) {
            assert_eq!(
                lone_redactions(redacted, &keys),
                0,
                "seed {seed}, column {name}"
            );
        }
        for row in 0..keys.len() {
            let in_row = columns.iter().filter(|c| c[row]).count();
            assert_ne!(
                in_row, 1,
                "seed {seed}, row {row}: lone redaction in a row total"
            );
        }
    }
}

#[test]
fn every_small_count_stays_redacted_whatever_secondary_suppression_does() {
    for seed in 0..50 {
        let (table, _) = random_table(seed, 3, 3);
        let released = release(&table);
        let raw = table.column_by_name("a").unwrap();
        let raw = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(raw);
        for (row, value) in counts(&released, "a").iter().enumerate() {
            if (1..8).contains(&raw.value(row)) {
                assert_eq!(*value, None, "seed {seed}, row {row}");
            }
        }
    }
}

#[test]
fn a_table_at_the_default_row_cap_is_processed_quickly() {
    // 5000 rows is the default cap: 250 regions × 10 months × 2 sexes.
    let (table, _) = random_table(7, 250, 10);
    assert_eq!(table.num_rows(), 5000);
    let start = std::time::Instant::now();
    let released = release(&table);
    assert_eq!(released.report.rows, 5000);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

/// A region × month × sex table of consultations and, linked, their distinct patients
/// (never more than the consultations), skewed towards small values.
fn random_linked_table(seed: u64) -> (arrow_array::RecordBatch, Vec<[usize; 3]>) {
    let mut rng = Lcg(seed);
    let (mut region, mut month, mut sex, mut keys) = (vec![], vec![], vec![], vec![]);
    let (mut visits, mut patients) = (vec![], vec![]);
    for r in 0..4 {
        for m in 0..3 {
            for s in 0..2 {
                region.push(format!("r{r}"));
                month.push(format!("m{m}"));
                sex.push(["f", "m"][s].to_string());
                keys.push([r, m, s]);
                let v = match rng.next(4) {
                    0 => 0,
                    1 => rng.next(8) as i64,
                    _ => rng.next(60) as i64,
                };
                visits.push(v);
                patients.push(if v == 0 {
                    0
                } else {
                    1 + rng.next(v as u64) as i64
                });
            }
        }
    }
    let (region, month, sex) = (strs(&region), strs(&month), strs(&sex));
    let table = Table::new()
        .dimension("region", &region)
        .dimension("month", &month)
        .dimension("sex", &sex)
        .linked("visits", &visits, "visits_patients")
        .count("visits_patients", &patients)
        .build();
    (table, keys)
}

#[test]
fn linked_cells_are_withheld_together_with_no_lone_redaction_and_every_small_one_withheld() {
    for seed in 0..200 {
        let (table, keys) = random_linked_table(seed);
        let released = release(&table);
        let raw = |name: &str| {
            let column = table.column_by_name(name).unwrap();
            arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Int64Type>(column)
                .values()
                .to_vec()
        };
        let (visits, patients) = (raw("visits"), raw("visits_patients"));
        let redacted = |name: &str| -> Vec<bool> {
            counts(&released, name)
                .iter()
                .map(Option::is_none)
                .collect()
        };
        let (v, p) = (redacted("visits"), redacted("visits_patients"));
        assert_eq!(v, p, "seed {seed}: a linked pair split");
        assert_eq!(lone_redactions(&v, &keys), 0, "seed {seed}");
        for row in 0..keys.len() {
            if (1..8).contains(&visits[row]) || (1..8).contains(&patients[row]) {
                assert!(v[row], "seed {seed}, row {row}");
            }
        }
    }
}
