//! A regression the host fits from the feature vectors a `model-fit` study hands it, the
//! way DataSHIELD's `ds.glm` does: the vectors are aggregated into patterns and never
//! leave the host; coefficients, standard errors and intervals are released only after
//! the disclosure checks below, with the rows and events behind them as noisy counts.
//!
//! Checks, each refusing the release with the reason: at least `min_count` rows, and for a
//! logistic regression events and non-events (noisy counts); every level of an indicator
//! feature held by at least `min_count` distinct patients in each outcome class (in all,
//! for a Poisson regression); at most `max_parameter_fraction` parameters per row
//! (`nfilter.glm`); no perfect separation and no singular design.

use super::answers::FitRow;
use super::model_spec::{FitSpec, parse_feature};
use super::row_keys::RowKeys;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use carrel_disclosure::{Policy, noise};
use carrel_modelstats::{Family, Patterns, fit};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The rows of a fit as they come, bounded per patient.
pub struct FitAccumulator {
    family: Family,
    terms: Vec<String>,
    indicators: Vec<bool>,
    patterns: Patterns,
    rows_of_patient: FxHashMap<u64, u8>,
    max_rows: u8,
    /// Rows beyond a patient's bound, dropped.
    pub dropped: u64,
    rows: u64,
    events: u64,
    rows_key: u64,
    events_key: u64,
    /// Per indicator entry, level (0, 1) and outcome class (0, 1: with no event, with
    /// one): up to `need` distinct patients seen.
    levels: Vec<[[Vec<u64>; 2]; 2]>,
    need: usize,
    max_fraction: f64,
}

impl FitAccumulator {
    pub fn new(spec: &FitSpec, min_count: u64) -> FitAccumulator {
        let indicators: Vec<bool> = spec
            .features
            .iter()
            .map(|f| parse_feature(f).map(|f| f.is_indicator()).unwrap_or(false))
            .collect();
        FitAccumulator {
            family: match spec.family.as_str() {
                "poisson" => Family::Poisson,
                _ => Family::Logistic,
            },
            terms: spec.features.clone(),
            levels: indicators.iter().map(|_| Default::default()).collect(),
            patterns: Patterns::new(indicators.len()),
            indicators,
            rows_of_patient: FxHashMap::default(),
            max_rows: spec.max_rows_per_patient.min(255) as u8,
            dropped: 0,
            rows: 0,
            events: 0,
            rows_key: 0,
            events_key: 0,
            need: min_count.clamp(1, 1000) as usize,
            max_fraction: spec.max_parameter_fraction,
        }
    }

    pub fn indicators(&self) -> &[bool] {
        &self.indicators
    }

    pub fn is_binary(&self) -> bool {
        self.family == Family::Logistic
    }

    /// Adds the checked rows of one batch.
    pub fn add(&mut self, keys: &RowKeys, rows: &[FitRow]) {
        for r in rows {
            let row = r.row as usize;
            let key = keys.patient(row);
            let added = self.rows_of_patient.entry(key).or_insert(0);
            if *added >= self.max_rows {
                self.dropped += 1;
                continue;
            }
            *added += 1;
            self.patterns.add(&r.values, r.outcome);
            self.rows += 1;
            let record = keys.record(row);
            self.rows_key = self.rows_key.wrapping_add(record);
            if r.outcome > 0.0 {
                self.events += r.outcome as u64;
                self.events_key = self.events_key.wrapping_add(record);
            }
            let class = usize::from(r.outcome > 0.0);
            for (j, levels) in self.levels.iter_mut().enumerate() {
                if !self.indicators[j] {
                    continue;
                }
                let seen = &mut levels[usize::from(r.values[j] == 1.0)][class];
                if seen.len() < self.need && !seen.contains(&key) {
                    seen.push(key);
                }
            }
        }
    }
}

/// A released fit: the coefficient table and the report beside it.
pub struct FitRelease {
    pub table: RecordBatch,
    pub report: serde_json::Value,
}

/// Applies the checks and fits; the error says which check refused the release.
pub fn release(acc: &FitAccumulator, policy: &Policy) -> Result<FitRelease, String> {
    let min = policy.min_count;
    let noisy = |key: u64, n: u64| noise::perturb(policy.noise_scale, key, n);
    let rows = noisy(acc.rows_key, acc.rows);
    let events = noisy(acc.events_key, acc.events);
    if rows < min {
        return Err(format!("fewer than {min} rows"));
    }
    if acc.family == Family::Logistic && (events < min || rows.saturating_sub(events) < min) {
        return Err(format!("fewer than {min} events or non-events"));
    }
    for (j, levels) in acc.levels.iter().enumerate() {
        if !acc.indicators[j] {
            continue;
        }
        for (level, classes) in levels.iter().enumerate() {
            let short = match acc.family {
                Family::Logistic => classes.iter().any(|c| c.len() < acc.need),
                Family::Poisson => {
                    let mut all = classes[0].clone();
                    all.extend(classes[1].iter().filter(|k| !classes[0].contains(k)));
                    all.len() < acc.need
                }
            };
            if short {
                return Err(format!(
                    "level {level} of `{}` is held by fewer than {min} patients{}",
                    acc.terms[j],
                    if acc.family == Family::Logistic {
                        " in an outcome class"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    let parameters = acc.terms.len() + 1;
    if parameters as f64 > acc.max_fraction * rows as f64 {
        return Err(format!(
            "{parameters} parameters for about {rows} rows: more than {} of the rows",
            acc.max_fraction
        ));
    }
    let fitted = fit(acc.family, &acc.patterns).map_err(|e| e.to_string())?;
    let mut terms = vec!["(intercept)".to_owned()];
    terms.extend(acc.terms.iter().cloned());
    let round = |v: &[f64]| -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            v.iter().map(|x| (x * 1e4).round() / 1e4),
        ))
    };
    let schema = Schema::new(vec![
        Field::new("term", DataType::Utf8, false),
        Field::new("estimate", DataType::Float64, false),
        Field::new("std_error", DataType::Float64, false),
        Field::new("ci_lower", DataType::Float64, false),
        Field::new("ci_upper", DataType::Float64, false),
    ]);
    let table = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(terms)),
            round(&fitted.coefficients),
            round(&fitted.standard_errors),
            round(&fitted.lower),
            round(&fitted.upper),
        ],
    )
    .map_err(|e| e.to_string())?;
    let base = policy.rounding.max(1);
    let rounded = |n: u64| (n + base / 2) / base * base;
    Ok(FitRelease {
        table,
        report: serde_json::json!({
            "kind": "model-fit",
            "family": fitted.family,
            "rows": rounded(rows),
            "events": rounded(events),
            "iterations": fitted.iterations,
            "parameters": parameters,
        }),
    })
}
