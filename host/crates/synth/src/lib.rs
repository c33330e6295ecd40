//! carrel's synthetic data generator (`carrel synth`): realistic out-of-hours
//! consultations written as FHIR R4 that the warehouse's reader accepts, with a
//! `ground-truth.json` of what they hold, and optionally faulty records set apart.
//!
//! Output is a pure function of [`SynthOptions`]: the same seed gives byte-identical
//! files.

mod calendar;
mod consultation;
mod fhir;
pub mod pathways;
mod places;
mod sample;
mod sink;
mod truth;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use consultation::Consultation;
pub use places::{ASSOCIATIONS, Association};
pub use sink::{BUNDLE_LIMIT, NDJSON_LIMIT};
pub use truth::{GroundTruth, age_class, age_in_years};

use calendar::{civil, day_number};
use consultation::Dice;
use fhir::Fault;
use sink::Sink;

/// The name of the ground-truth file written next to the data.
pub const GROUND_TRUTH_FILE: &str = "ground-truth.json";

/// How often, in consultations, `progress` is called (and once at the end).
pub const PROGRESS_EVERY: u64 = 10_000;

/// What the files hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SynthFormat {
    /// Bulk NDJSON: `consultations-0001.ndjson`, …, at most [`NDJSON_LIMIT`] Encounters each.
    #[default]
    Ndjson,
    /// Collection Bundles: `bundle-0001.json`, …, at most [`BUNDLE_LIMIT`] Encounters each.
    Bundle,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SynthOptions {
    /// Encounters to generate, faulty ones included.
    pub consultations: u64,
    pub seed: u64,
    pub format: SynthFormat,
    /// Share of Encounters made invalid, in `0.0..=1.0`.
    pub faults: f64,
    /// First day (year, month, day).
    pub start: (i32, u32, u32),
    /// Number of days covered.
    pub days: u32,
}

impl Default for SynthOptions {
    fn default() -> SynthOptions {
        SynthOptions {
            consultations: 10_000,
            seed: 0,
            format: SynthFormat::Ndjson,
            faults: 0.0,
            start: (2023, 7, 1),
            days: 730,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("the share of faulty records must lie between 0 and 1, not {0}")]
    Faults(f64),
    #[error("the period must cover at least one day")]
    NoDays,
    #[error("the first day {0:04}-{1:02}-{2:02} is not a calendar date")]
    Start(i32, u32, u32),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot serialise the ground truth: {0}")]
    GroundTruth(#[from] serde_json::Error),
}

/// Counts of consultations per day, summing to `total`, shaped by [`sample::day_weight`].
fn daily_counts(first: i64, days: u32, total: u64) -> Vec<u64> {
    let weights: Vec<f64> = (0..i64::from(days))
        .map(|offset| sample::day_weight(first + offset))
        .collect();
    let sum: f64 = weights.iter().sum();
    let mut running = 0.0;
    let mut given = 0u64;
    weights
        .iter()
        .map(|weight| {
            running += weight;
            let due = ((running / sum) * total as f64).round() as u64;
            let due = due.min(total);
            let count = due.saturating_sub(given);
            given += count;
            count
        })
        .collect()
}

fn chosen_fault(dice: &mut Dice, faults: f64) -> Option<Fault> {
    if faults > 0.0 && dice.chance(faults) {
        Some(Fault::ALL[dice.below(Fault::ALL.len() as u64) as usize])
    } else {
        None
    }
}

/// Generates `options.consultations` consultations into `out_dir` (created if needed),
/// calling `progress` with the number generated so far, and returns (and writes as
/// `ground-truth.json`) what the files hold.
pub fn generate(
    options: &SynthOptions,
    out_dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<GroundTruth, SynthError> {
    if !(0.0..=1.0).contains(&options.faults) {
        return Err(SynthError::Faults(options.faults));
    }
    if options.days == 0 {
        return Err(SynthError::NoDays);
    }
    let (year, month, day) = options.start;
    let first = day_number(year, month, day);
    if civil(first) != options.start {
        return Err(SynthError::Start(year, month, day));
    }
    let write_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SynthError::Write { path, source }
    };
    std::fs::create_dir_all(out_dir).map_err(write_error(out_dir))?;

    let valid_prefix = match options.format {
        SynthFormat::Ndjson => "consultations",
        SynthFormat::Bundle => "bundle",
    };
    let mut valid = Sink::new(out_dir, valid_prefix, options.format);
    let mut faulty = Sink::new(out_dir, "faulty", options.format);
    let mut dice = Dice::new(options.seed);
    let association_weights: Vec<u32> = ASSOCIATIONS.iter().map(|a| a.weight).collect();
    let mut truth = GroundTruth::default();
    truth.seed = options.seed;
    let mut id = 0u64;
    // Follow-ups due, by day: the hour, the consultation they follow, the hours since
    // it, and whether it was written as a valid consultation.
    let mut due: BTreeMap<i64, Vec<(u32, Consultation, i64, bool)>> = BTreeMap::new();
    let last = first + i64::from(options.days) - 1;
    for (offset, count) in daily_counts(first, options.days, options.consultations)
        .into_iter()
        .enumerate()
    {
        let day = first + offset as i64;
        // A day holds exactly its count: follow-ups beyond it are not written (and their
        // first consultations are not counted as re-consulted).
        let mut follow_ups = due.remove(&day).unwrap_or_default();
        follow_ups.truncate(count as usize);
        let fresh = count - follow_ups.len() as u64;
        let follow_ups = follow_ups.into_iter().map(Some);
        for planned in follow_ups.chain((0..fresh).map(|_| None)) {
            id += 1;
            let (consultation, origin) = match planned {
                Some((hour, before, gap, valid_before)) => (
                    sample::follow_up(&mut dice, &before, day, hour),
                    Some((gap, valid_before)),
                ),
                None => (
                    sample::consultation(&mut dice, day, &association_weights),
                    None,
                ),
            };
            let fault = chosen_fault(&mut dice, options.faults);
            let resources = fhir::resources(id, &consultation, fault);
            let (sink, name) = match fault {
                None => {
                    truth.record(&consultation);
                    if let Some((gap, true)) = origin {
                        truth.record_reconsultation(gap);
                    }
                    (&mut valid, valid_prefix)
                }
                Some(fault) => {
                    truth.record_fault(fault);
                    (&mut faulty, "faulty")
                }
            };
            sink.write(id, &resources)
                .map_err(write_error(&out_dir.join(name)))?;
            if let Some(after) = pathways::follow_up_after(&mut dice) {
                let at = day * 24 + i64::from(consultation.hour) + after;
                let (next_day, hour) = (at.div_euclid(24), at.rem_euclid(24) as u32);
                if next_day <= last {
                    due.entry(next_day).or_default().push((
                        hour,
                        consultation,
                        after,
                        fault.is_none(),
                    ));
                }
            }
            if id.is_multiple_of(PROGRESS_EVERY) {
                progress(id);
            }
        }
    }
    valid.close().map_err(write_error(out_dir))?;
    faulty.close().map_err(write_error(out_dir))?;
    progress(id);
    truth.finish();
    truth.files = valid.files;
    truth.faulty_files = faulty.files;
    let path = out_dir.join(GROUND_TRUTH_FILE);
    let json = serde_json::to_vec_pretty(&truth)?;
    std::fs::write(&path, json).map_err(write_error(&path))?;
    Ok(truth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_counts_add_up_and_weekends_get_more() {
        let first = day_number(2024, 1, 8); // a Monday
        let counts = daily_counts(first, 14, 10_000);
        assert_eq!(counts.iter().sum::<u64>(), 10_000);
        assert!(counts[6] > counts[2], "{counts:?}");
    }

    #[test]
    fn options_out_of_range_are_refused() {
        let dir = std::env::temp_dir();
        let mut silent = |_| {};
        let faults = SynthOptions {
            faults: 1.5,
            ..SynthOptions::default()
        };
        assert!(matches!(
            generate(&faults, &dir, &mut silent),
            Err(SynthError::Faults(_))
        ));
        let start = SynthOptions {
            start: (2023, 2, 30),
            ..SynthOptions::default()
        };
        assert!(matches!(
            generate(&start, &dir, &mut silent),
            Err(SynthError::Start(2023, 2, 30))
        ));
    }
}
