//! What a study answers for a batch, checked against the batch it was given before the
//! host counts anything: contributions to declared measures (`counts`), a score per row
//! that the host bins itself against the row's own outcome (`model-evaluation`), or a
//! feature vector and outcome per row for a regression the host fits (`model-fit`). An
//! answer that names a row, measure or label it was not given, a score outside [0, 1], or
//! a vector of the wrong width is a contract violation.

use super::sandbox::Answer;
use super::tally::Checked;
use crate::capabilities::study_world::bindings::carrel::eds::study_types::Contribution;
use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};

/// How a kind's answers are checked and turned into what the host counts.
pub enum Rules {
    Counts {
        measures: usize,
        labels: usize,
    },
    /// Scores go into `bins` equal bins; measure 0 (`events`) when the row's `outcome`
    /// column is `positive`, else 1 (`non_events`).
    Evaluation {
        bins: u32,
        positive: String,
    },
    Fit {
        width: usize,
        /// Per entry: whether it may only be 0 or 1.
        indicators: Vec<bool>,
        /// Whether the outcome may only be 0 or 1 (logistic), else a count (Poisson).
        binary: bool,
    },
}

/// One row of a regression, as the study handed it.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRow {
    pub row: u32,
    pub values: Vec<f64>,
    pub outcome: f64,
}

/// What the host counts from one batch, sorted by row.
pub enum Counted {
    Contributions(Vec<Checked>),
    Fit(Vec<FitRow>),
}

/// A contribution of a group, as an offset into the group's own rows and what it said:
/// `(row, measure, label)`, or for a regression `(row, low, high)` bits of a hash of its
/// vector and outcome.
pub type GroupContribution = (u32, u32, u32);

impl Counted {
    /// What the answer said about rows `start..end`, as offsets into the group: what the
    /// patient-locality check compares.
    pub fn of_group(&self, start: u32, end: u32) -> Vec<GroupContribution> {
        match self {
            Counted::Contributions(checked) => {
                let first = checked.partition_point(|c| c.row < start);
                checked[first..]
                    .iter()
                    .take_while(|c| c.row < end)
                    .map(|c| (c.row - start, c.measure, c.label))
                    .collect()
            }
            Counted::Fit(rows) => {
                let first = rows.partition_point(|r| r.row < start);
                rows[first..]
                    .iter()
                    .take_while(|r| r.row < end)
                    .map(|r| {
                        let digest = vector_digest(&r.values, r.outcome);
                        (r.row - start, digest as u32, (digest >> 32) as u32)
                    })
                    .collect()
            }
        }
    }
}

fn vector_digest(values: &[f64], outcome: f64) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let bits: Vec<u64> = values
        .iter()
        .chain([&outcome])
        .map(|x| (x + 0.0).to_bits())
        .collect();
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(bits)
}

/// Checks `answer` against `batch` (of `rows` rows) and the rules of its kind; counts
/// the contributions it made twice (kept once) in `duplicates`.
pub fn check(
    answer: Answer,
    batch: &RecordBatch,
    rules: &Rules,
    duplicates: &mut u64,
) -> Result<Counted, String> {
    let rows = batch.num_rows();
    let in_batch = |row: u32| -> Result<(), String> {
        match (row as usize) < rows {
            true => Ok(()),
            false => Err(format!(
                "an answer names row {row} of a batch of {rows} rows"
            )),
        }
    };
    let contributions = match (answer, rules) {
        (Answer::Contributions(answer), Rules::Counts { measures, labels }) => {
            let mut checked = Vec::with_capacity(answer.len());
            for Contribution {
                row,
                measure,
                label,
            } in answer
            {
                in_batch(row)?;
                if measure as usize >= *measures {
                    return Err(format!("a contribution names measure {measure}"));
                }
                if label as usize >= (*labels).max(1) {
                    return Err(format!("a contribution names label {label}"));
                }
                checked.push(Checked {
                    row,
                    measure,
                    label,
                });
            }
            checked
        }
        (Answer::Scores(scores), Rules::Evaluation { bins, positive }) => {
            let outcomes = batch
                .column_by_name("outcome")
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or("the host read no outcome")?;
            let mut checked = Vec::with_capacity(scores.len());
            for s in scores {
                in_batch(s.row)?;
                if !(0.0..=1.0).contains(&s.score) {
                    return Err(format!(
                        "the score of row {} is {}, not a probability in [0, 1]",
                        s.row, s.score
                    ));
                }
                let bin = ((s.score * f64::from(*bins)) as u32).min(bins - 1);
                let event =
                    outcomes.is_valid(s.row as usize) && outcomes.value(s.row as usize) == positive;
                checked.push(Checked {
                    row: s.row,
                    measure: u32::from(!event),
                    label: bin,
                });
            }
            checked
        }
        (
            Answer::Features(vectors),
            Rules::Fit {
                width,
                indicators,
                binary,
            },
        ) => {
            let mut fitted = Vec::with_capacity(vectors.len());
            for v in vectors {
                in_batch(v.row)?;
                check_vector(v.row, &v.values, v.outcome, *width, indicators, *binary)?;
                fitted.push(FitRow {
                    row: v.row,
                    values: v.values,
                    outcome: v.outcome,
                });
            }
            fitted.sort_by_key(|r| r.row);
            let before = fitted.len();
            fitted.dedup_by_key(|r| r.row);
            *duplicates += (before - fitted.len()) as u64;
            return Ok(Counted::Fit(fitted));
        }
        _ => return Err("the answer is not of the study's kind".into()),
    };
    let mut checked = contributions;
    checked.sort_unstable();
    let before = checked.len();
    checked.dedup_by_key(|c| (c.row, c.measure));
    *duplicates += (before - checked.len()) as u64;
    Ok(Counted::Contributions(checked))
}

fn check_vector(
    row: u32,
    values: &[f64],
    outcome: f64,
    width: usize,
    indicators: &[bool],
    binary: bool,
) -> Result<(), String> {
    if values.len() != width {
        return Err(format!(
            "the vector of row {row} has {} entries, not the {width} declared",
            values.len()
        ));
    }
    for (j, (&x, &indicator)) in values.iter().zip(indicators).enumerate() {
        if !x.is_finite() || (indicator && x != 0.0 && x != 1.0) {
            return Err(format!(
                "entry {j} of the vector of row {row} is {x}, not {}",
                if indicator {
                    "0 or 1"
                } else {
                    "a finite number"
                }
            ));
        }
    }
    let valid = match binary {
        true => outcome == 0.0 || outcome == 1.0,
        false => outcome >= 0.0 && outcome.fract() == 0.0 && outcome < 1e9,
    };
    if !valid {
        return Err(format!(
            "the outcome of row {row} is {outcome}, not {}",
            if binary { "0 or 1" } else { "a count" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::study_world::bindings::carrel::eds::study_types::{
        RowFeatures, RowScore,
    };
    use arrow_array::StringArray;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([(
            "outcome",
            Arc::new(StringArray::from(vec!["home", "hospital", "home"])) as _,
        )])
        .unwrap()
    }

    #[test]
    fn scores_are_binned_by_the_host_against_the_rows_own_outcome() {
        let rules = Rules::Evaluation {
            bins: 10,
            positive: "hospital".into(),
        };
        let scores = vec![
            RowScore {
                row: 1,
                score: 0.95,
            },
            RowScore { row: 0, score: 1.0 },
            RowScore { row: 2, score: 0.0 },
        ];
        let mut duplicates = 0;
        let Ok(Counted::Contributions(c)) =
            check(Answer::Scores(scores), &batch(), &rules, &mut duplicates)
        else {
            panic!("checked");
        };
        let got: Vec<(u32, u32, u32)> = c.iter().map(|c| (c.row, c.measure, c.label)).collect();
        assert_eq!(got, [(0, 1, 9), (1, 0, 9), (2, 1, 0)]);
    }

    #[test]
    fn a_score_outside_zero_one_or_a_row_outside_the_batch_is_refused() {
        let rules = Rules::Evaluation {
            bins: 10,
            positive: "hospital".into(),
        };
        for (row, score) in [(0, 1.5), (0, f64::NAN), (3, 0.5)] {
            let answer = Answer::Scores(vec![RowScore { row, score }]);
            assert!(check(answer, &batch(), &rules, &mut 0).is_err());
        }
    }

    #[test]
    fn a_vector_of_the_wrong_width_or_a_non_binary_indicator_is_refused() {
        let rules = Rules::Fit {
            width: 2,
            indicators: vec![false, true],
            binary: true,
        };
        let vector = |values: Vec<f64>, outcome| {
            Answer::Features(vec![RowFeatures {
                row: 0,
                values,
                outcome,
            }])
        };
        assert!(check(vector(vec![40.0, 1.0], 1.0), &batch(), &rules, &mut 0).is_ok());
        let err = check(vector(vec![40.0], 1.0), &batch(), &rules, &mut 0)
            .err()
            .unwrap();
        assert!(err.contains("1 entries, not the 2"), "{err}");
        let err = check(vector(vec![40.0, 0.5], 1.0), &batch(), &rules, &mut 0)
            .err()
            .unwrap();
        assert!(err.contains("0 or 1"), "{err}");
        let err = check(vector(vec![40.0, 1.0], 2.0), &batch(), &rules, &mut 0)
            .err()
            .unwrap();
        assert!(err.contains("outcome"), "{err}");
    }
}
