//! The differencing attacks of the cell-key method's literature, played against
//! `apply_perturbed` on a synthetic truth the test knows: a national margin minus its
//! released regions, and two periods that differ by one week. Without noise both recover
//! every small count exactly; with it, the attacker's exact hits stay under the bound the
//! noise allows, and the attacker's error has the variance the noise predicts.
//!
//! The bound: the attacker's error is the noise of one cell plus terms independent of it
//! (other cells' noise, other cells' true counts), so whatever integer estimate the
//! attacker makes, `P(error = 0) ≤ max_k P(N = k) = (1 − p) / (1 + p)` with
//! `p = exp(−1/b)`: 0.165 at the default scale `b = 3`.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use carrel_disclosure::metadata::{COUNT, KIND};
use carrel_disclosure::{CellKeys, Policy, apply_perturbed, noise};
use common::{counts, meta, small_read};

/// A small deterministic generator of record keys.
struct Keys(u64);

impl Keys {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        noise::mix64(self.0)
    }

    /// The cell key of `count` fresh records.
    fn cell(&mut self, count: u64) -> (u64, Vec<u64>) {
        let records: Vec<u64> = (0..count).map(|_| self.next()).collect();
        (
            records.iter().fold(0u64, |a, &k| a.wrapping_add(k)),
            records,
        )
    }
}

/// One released table of `labels` × one count column `n`, with its cell keys.
fn release(labels: &[String], values: &[u64], keys: &[u64], policy: &Policy) -> Vec<Option<u64>> {
    let schema = Schema::new(vec![
        Field::new("cell", DataType::Utf8, false),
        Field::new("n", DataType::UInt64, false).with_metadata(meta(&[(KIND, COUNT)])),
    ]);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(labels.to_vec())),
        Arc::new(UInt64Array::from(values.to_vec())),
    ];
    let table = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
    let cell_keys = CellKeys::from([("n".to_owned(), keys.to_vec())]);
    let released = apply_perturbed(&table, policy, &small_read(), &cell_keys).unwrap();
    // Rows wholly withheld are left out: put the released values back by label.
    let names: Vec<String> = {
        let column = released.table.column_by_name("cell").unwrap();
        let column = column.as_any().downcast_ref::<StringArray>().unwrap();
        column.iter().map(|v| v.unwrap().to_owned()).collect()
    };
    let values = counts(&released, "n");
    labels
        .iter()
        .map(|label| {
            names
                .iter()
                .position(|n| n == label)
                .and_then(|i| values[i])
        })
        .collect()
}

fn policy(scale: f64) -> Policy {
    Policy {
        noise_scale: scale,
        // Rounding would blur the attack by itself: test the noise alone.
        rounding: 1,
        ..Policy::default()
    }
}

fn max_point_probability(scale: f64) -> f64 {
    let p = (-1.0 / scale).exp();
    (1.0 - p) / (1.0 + p)
}

fn noise_variance(scale: f64) -> f64 {
    noise::standard_deviation(scale).powi(2)
}

/// What the attacker got: exact hits, and the errors of every estimate made.
struct Attack {
    attempts: usize,
    exact: usize,
    errors: Vec<f64>,
}

impl Attack {
    fn exact_rate(&self) -> f64 {
        self.exact as f64 / self.attempts as f64
    }

    fn error_variance(&self) -> f64 {
        let n = self.errors.len() as f64;
        let mean = self.errors.iter().sum::<f64>() / n;
        self.errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n
    }
}

const REGIONS: usize = 13;
const WEEKS: usize = 800;

/// Each week, region 0 has a small count (1 to 7, withheld) and the others large ones;
/// the attacker subtracts the released regions from the released national count.
/// Secondary suppression withholds region 1 too (the smallest other cell, so that the
/// table's own margin does not give region 0 away); the attacker is granted its true
/// value as side knowledge, which makes them stronger than any real one.
fn margin_attack(scale: f64) -> Attack {
    let mut keys = Keys(1);
    let mut attack = Attack {
        attempts: 0,
        exact: 0,
        errors: Vec::new(),
    };
    for week in 0..WEEKS {
        let truth: Vec<u64> = (0..REGIONS)
            .map(|r| match r {
                0 => 1 + (week % 7) as u64,
                1 => 20,
                _ => 40 + ((week * 7 + r * 13) % 50) as u64,
            })
            .collect();
        let mut region_keys = Vec::new();
        let mut all_records = Vec::new();
        for &count in &truth {
            let (key, records) = keys.cell(count);
            region_keys.push(key);
            all_records.extend(records);
        }
        let labels: Vec<String> = (0..REGIONS).map(|r| format!("r{r}")).collect();
        let regional = release(&labels, &truth, &region_keys, &policy(scale));
        let national_key = all_records.iter().fold(0u64, |a, &k| a.wrapping_add(k));
        let national = release(
            &["all".to_owned()],
            &[truth.iter().sum()],
            &[national_key],
            &policy(scale),
        )[0];
        // The attack needs the margin and every other region.
        let (Some(national), None, None) = (national, regional[0], regional[1]) else {
            continue;
        };
        let Some(others) = regional[2..].iter().copied().sum::<Option<u64>>() else {
            continue;
        };
        let estimate = national as i64 - others as i64 - truth[1] as i64;
        attack.attempts += 1;
        attack.exact += usize::from(estimate == truth[0] as i64);
        attack.errors.push((estimate - truth[0] as i64) as f64);
    }
    attack
}

/// A table by region without a week: run A reads weeks 1..=k, run B weeks 1..=k+1, and
/// the attacker takes B − A as region 0's count of week k+1 (1 to 7).
fn window_attack(scale: f64) -> Attack {
    let mut keys = Keys(2);
    let mut attack = Attack {
        attempts: 0,
        exact: 0,
        errors: Vec::new(),
    };
    for trial in 0..WEEKS * 2 {
        let base = 30 + (trial % 40) as u64;
        let added = 1 + (trial % 7) as u64;
        let (key_a, _) = keys.cell(base);
        let (key_added, _) = keys.cell(added);
        let key_b = key_a.wrapping_add(key_added);
        let label = ["r0".to_owned()];
        let a = release(&label, &[base], &[key_a], &policy(scale))[0];
        let b = release(&label, &[base + added], &[key_b], &policy(scale))[0];
        let (Some(a), Some(b)) = (a, b) else {
            continue;
        };
        let estimate = b as i64 - a as i64;
        attack.attempts += 1;
        attack.exact += usize::from(estimate == added as i64);
        attack.errors.push((estimate - added as i64) as f64);
    }
    attack
}

#[test]
fn without_noise_both_differencing_attacks_recover_every_small_count() {
    for attack in [margin_attack(0.0), window_attack(0.0)] {
        assert!(attack.attempts > 500, "{}", attack.attempts);
        assert_eq!(attack.exact, attack.attempts);
    }
}

#[test]
fn a_national_margin_minus_its_regions_recovers_a_withheld_cell_no_better_than_the_noise_allows() {
    let scale = Policy::default().noise_scale;
    let attack = margin_attack(scale);
    assert!(attack.attempts > 500, "{}", attack.attempts);
    let bound = max_point_probability(scale);
    println!(
        "margin attack: {} exact of {} ({:.3}; bound {bound:.3}), error variance {:.1}",
        attack.exact,
        attack.attempts,
        attack.exact_rate(),
        attack.error_variance()
    );
    // Over 500 attempts: three standard errors of a rate at the bound are under 0.05.
    assert!(
        attack.exact_rate() <= bound + 0.05,
        "exact {} of {} (bound {bound:.3})",
        attack.exact,
        attack.attempts
    );
    // The error is the sum of 12 independent noises (the margin's and 11 regions').
    let expected = (REGIONS - 1) as f64 * noise_variance(scale);
    let variance = attack.error_variance();
    assert!(
        (0.6..1.5).contains(&(variance / expected)),
        "error variance {variance:.1}, expected about {expected:.1}"
    );
}

#[test]
fn two_periods_differing_by_one_week_tell_that_weeks_count_no_better_than_the_noise_allows() {
    let scale = Policy::default().noise_scale;
    let attack = window_attack(scale);
    assert!(attack.attempts > 1400, "{}", attack.attempts);
    let bound = max_point_probability(scale);
    println!(
        "window attack: {} exact of {} ({:.3}; bound {bound:.3}), error variance {:.1}",
        attack.exact,
        attack.attempts,
        attack.exact_rate(),
        attack.error_variance()
    );
    assert!(
        attack.exact_rate() <= bound + 0.04,
        "exact {} of {} (bound {bound:.3})",
        attack.exact,
        attack.attempts
    );
    // B and A contain different records, so their noises are independent.
    let expected = 2.0 * noise_variance(scale);
    let variance = attack.error_variance();
    assert!(
        (0.7..1.4).contains(&(variance / expected)),
        "error variance {variance:.1}, expected about {expected:.1}"
    );
}

#[test]
fn the_same_records_always_release_the_same_table() {
    let mut keys = Keys(3);
    let labels: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let values: Vec<u64> = (0..50).map(|i| 3 + i * 2).collect();
    let cell_keys: Vec<u64> = values.iter().map(|&v| keys.cell(v).0).collect();
    let first = release(&labels, &values, &cell_keys, &Policy::default());
    for _ in 0..50 {
        assert_eq!(
            release(&labels, &values, &cell_keys, &Policy::default()),
            first
        );
    }
    // And no released count is 1 to 7.
    assert!(first.iter().flatten().all(|&v| v == 0 || v >= 8));
}
