//! What the generated files hold, counted as they are written, so a test or a study
//! run on them can be checked against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::{civil, iso_week};
use crate::consultation::{Consultation, Outcome};
use crate::fhir::Fault;

/// Counts over the valid consultations written, and the faulty records set apart.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub seed: u64,
    /// Valid consultations (Encounters in the `consultations-*` or `bundle-*` files).
    pub consultations: u64,
    /// Faulty Encounters (in the `faulty-*` files).
    pub faulty: u64,
    /// Faulty Encounters by the way they were spoilt.
    pub faulty_by_kind: BTreeMap<String, u64>,
    /// Valid consultations with no diagnosis.
    pub without_diagnosis: u64,
    /// Valid consultations by ICD-10 code.
    pub by_code: BTreeMap<String, u64>,
    /// By age class at the consultation: `<2`, `2-14`, `15-74`, `75+`.
    pub by_age_class: BTreeMap<String, u64>,
    /// By ISO week of the local start date: `2024-W03`.
    pub by_week: BTreeMap<String, u64>,
    /// Valid consultations with a diagnosis, by ISO week.
    pub coded_by_week: BTreeMap<String, u64>,
    /// Influenza-like illness (J10, J11), by ISO week.
    pub ili_by_week: BTreeMap<String, u64>,
    pub by_association: BTreeMap<String, u64>,
    /// By local start hour: `00` … `23`.
    pub by_hour: BTreeMap<String, u64>,
    /// By visit type: `home`, `centre`, `tele`.
    pub by_visit_type: BTreeMap<String, u64>,
    /// By discharge-disposition code: `home`, `other-hcf`, `exp`.
    pub by_outcome: BTreeMap<String, u64>,
    /// Valid consultations followed by another valid one of the same patient within 72
    /// hours, and within 7 days (the 72 hours included).
    pub reconsult_72h: u64,
    pub reconsult_7d: u64,
    /// The stated models the data were drawn from.
    pub models: Models,
    /// Files of valid consultations, then faulty files, as named in the output folder.
    pub files: Vec<String>,
    pub faulty_files: Vec<String>,
    /// The referral model's probabilities of the valid consultations, in 10,000 bins, by
    /// outcome; folded into `models.referral.auroc` at the end and not written.
    #[serde(skip)]
    referral_scores: Option<Box<[[u64; 2]; SCORE_BINS]>>,
}

const SCORE_BINS: usize = 10_000;

/// The stated models, as the generator used them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Models {
    pub referral: ReferralTruth,
    /// The stated probabilities of coming back within 72 hours, and within 7 days.
    pub reconsult_72h_rate: f64,
    pub reconsult_7d_rate: f64,
}

/// Hospital referral: `logit P = intercept + Σ coefficient · feature`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferralTruth {
    pub intercept: f64,
    /// Feature (in the warehouse's syntax) → coefficient.
    pub coefficients: BTreeMap<String, f64>,
    /// The model's AUROC on the valid consultations written, against their outcomes.
    pub auroc: Option<f64>,
    pub referrals: u64,
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// Whole years between a birth date and a day, both as `(year, month, day)`.
pub fn age_in_years(birth: (i32, u32, u32), on: (i32, u32, u32)) -> i32 {
    let before_birthday = (on.1, on.2) < (birth.1, birth.2);
    on.0 - birth.0 - i32::from(before_birthday)
}

/// The surveillance age class of an age in years.
pub fn age_class(age: i32) -> &'static str {
    match age {
        ..2 => "<2",
        2..=14 => "2-14",
        15..=74 => "15-74",
        _ => "75+",
    }
}

impl GroundTruth {
    pub(crate) fn record(&mut self, consultation: &Consultation) {
        let c = consultation;
        self.consultations += 1;
        let week = iso_week(c.day);
        bump(&mut self.by_week, &week);
        match c.diagnosis {
            None => self.without_diagnosis += 1,
            Some(code) => {
                bump(&mut self.by_code, code);
                bump(&mut self.coded_by_week, &week);
                if code == "J10" || code == "J11" {
                    bump(&mut self.ili_by_week, &week);
                }
            }
        }
        let age = age_in_years(civil(c.birth), civil(c.day));
        bump(&mut self.by_age_class, age_class(age));
        bump(&mut self.by_association, c.association.name);
        bump(&mut self.by_hour, &format!("{:02}", c.hour));
        bump(&mut self.by_visit_type, c.visit.name());
        bump(&mut self.by_outcome, c.outcome.code());
        let bins = self
            .referral_scores
            .get_or_insert_with(|| Box::new([[0; 2]; SCORE_BINS]));
        let bin = ((c.referral * SCORE_BINS as f64) as usize).min(SCORE_BINS - 1);
        let referred = c.outcome == Outcome::Hospital;
        bins[bin][usize::from(referred)] += 1;
        self.models.referral.referrals += u64::from(referred);
    }

    pub(crate) fn record_reconsultation(&mut self, hours: i64) {
        self.reconsult_72h += u64::from(hours <= 72);
        self.reconsult_7d += u64::from(hours <= 168);
    }

    /// States the models and folds the referral scores into the model's AUROC.
    pub(crate) fn finish(&mut self) {
        use crate::pathways::*;
        self.models.reconsult_72h_rate = RECONSULT_72H;
        self.models.reconsult_7d_rate = RECONSULT_72H + RECONSULT_72H_TO_7D;
        self.models.referral.intercept = REFERRAL_INTERCEPT;
        self.models.referral.coefficients = REFERRAL_MODEL
            .iter()
            .map(|(f, b)| ((*f).to_owned(), *b))
            .collect();
        if let Some(bins) = self.referral_scores.take() {
            let non_events: Vec<u64> = bins.iter().map(|b| b[0]).collect();
            let events: Vec<u64> = bins.iter().map(|b| b[1]).collect();
            self.models.referral.auroc = auroc(&events, &non_events);
        }
    }

    pub(crate) fn record_fault(&mut self, fault: Fault) {
        self.faulty += 1;
        bump(&mut self.faulty_by_kind, fault.name());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_counts_a_year_only_once_the_birthday_is_reached() {
        assert_eq!(age_in_years((2022, 3, 10), (2024, 3, 9)), 1);
        assert_eq!(age_in_years((2022, 3, 10), (2024, 3, 10)), 2);
        assert_eq!(age_class(1), "<2");
        assert_eq!(age_class(14), "2-14");
        assert_eq!(age_class(75), "75+");
    }
}
