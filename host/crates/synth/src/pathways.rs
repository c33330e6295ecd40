//! The stated models behind two things studies measure, so that their released figures
//! can be checked against a known truth:
//!
//! - **Hospital referral** follows a logistic model of the consultation's own values,
//!   written in the warehouse's feature syntax: `logit P(hospital) = REFERRAL_INTERCEPT +
//!   Σ coefficient · feature` over [`REFERRAL_MODEL`]. A fit of the same features on the
//!   generated data should cover these coefficients; the model's AUROC on the data is in
//!   the ground truth.
//! - **Re-consultation**: a consultation is followed by another of the same patient within
//!   72 hours with probability [`RECONSULT_72H`], and after 72 hours but within 7 days with
//!   probability [`RECONSULT_72H_TO_7D`]. The ground truth counts the re-consultations
//!   actually written (a follow-up past the last day is not).

use crate::consultation::{Dice, Outcome, Visit};

pub const REFERRAL_INTERCEPT: f64 = -4.0;
/// Each feature with its coefficient on the logit scale.
pub const REFERRAL_MODEL: [(&str, f64); 4] = [
    ("age_years", 0.03),
    ("visit_type=home", 0.6),
    ("diagnoses:J", 0.5),
    ("sex=F", -0.2),
];
pub const RECONSULT_72H: f64 = 0.06;
pub const RECONSULT_72H_TO_7D: f64 = 0.03;

/// The probability of a hospital referral for a consultation of a patient aged `age`
/// (top-coded at 90, as the warehouse stores it).
pub fn referral_probability(age: i64, visit: Visit, diagnosis: Option<&str>, female: bool) -> f64 {
    let features = [
        age.min(90) as f64,
        f64::from(u8::from(visit == Visit::Home)),
        f64::from(u8::from(diagnosis.is_some_and(|d| d.starts_with('J')))),
        f64::from(u8::from(female)),
    ];
    let eta = REFERRAL_INTERCEPT
        + REFERRAL_MODEL
            .iter()
            .zip(features)
            .map(|((_, b), x)| b * x)
            .sum::<f64>();
    1.0 / (1.0 + (-eta).exp())
}

/// How a consultation ends: referred with the model's probability; otherwise, for the
/// very old, rarely deceased; else home.
pub fn outcome(dice: &mut Dice, probability: f64, age: i64) -> Outcome {
    if dice.unit() < probability {
        Outcome::Hospital
    } else if age >= 75 && dice.chance(0.004) {
        Outcome::Deceased
    } else {
        Outcome::Home
    }
}

/// Hours until the patient's next consultation, if they come back within 7 days.
pub fn follow_up_after(dice: &mut Dice) -> Option<i64> {
    let draw = dice.unit();
    if draw < RECONSULT_72H {
        Some(1 + dice.below(72) as i64)
    } else if draw < RECONSULT_72H + RECONSULT_72H_TO_7D {
        Some(73 + dice.below(96) as i64)
    } else {
        None
    }
}

/// The AUROC of scores from counts of events and non-events in fine, equal bins of [0, 1]
/// (ties within a bin count half).
pub fn auroc(events: &[u64], non_events: &[u64]) -> Option<f64> {
    let positives: u64 = events.iter().sum();
    let negatives: u64 = non_events.iter().sum();
    if positives == 0 || negatives == 0 {
        return None;
    }
    let (mut above, mut concordant) = (0.0, 0.0);
    for b in (0..events.len()).rev() {
        concordant += non_events[b] as f64 * (above + 0.5 * events[b] as f64);
        above += events[b] as f64;
    }
    Some(concordant / (positives as f64 * negatives as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_referral_model_is_the_stated_logit() {
        // 40 years, centre, no J code, male: logit -4.0 + 1.2.
        let p = referral_probability(40, Visit::Centre, Some("A09"), false);
        assert!((p - 1.0 / (1.0 + (2.8f64).exp())).abs() < 1e-12);
        // Ages over 90 count as 90.
        assert_eq!(
            referral_probability(99, Visit::Home, Some("J10"), true),
            referral_probability(90, Visit::Home, Some("J10"), true)
        );
    }

    #[test]
    fn a_perfect_score_has_auroc_one_and_ties_count_half() {
        assert_eq!(auroc(&[0, 5], &[5, 0]), Some(1.0));
        assert_eq!(auroc(&[5], &[5]), Some(0.5));
        assert_eq!(auroc(&[0, 0], &[1, 1]), None);
    }
}
