//! Care pathways: for each consultation, whether the patient consulted again within 72
//! hours or within 7 days, and whether the consultation ended in a hospital referral.
//!
//! Unit `patient`; sees `date`, `hour` and `outcome` only. Each consultation adds to
//! `consultations`; to `reconsult_72h` when the patient's next strictly later
//! consultation starts at most 72 hours after it, to `reconsult_7d` at most 168 hours
//! after it, the gap counted in whole hours from date and hour (`days * 24 + hours`); to
//! `referral` when its outcome is `hospital`. The host puts each row in its cell of
//! month, age class, visit type and region, counts distinct patients per cell
//! (`reconsult_72h_patients / consultations_patients` is the share of patients seen
//! again) and computes the shares over `consultations` (see the `reconsult` section of
//! spin.toml).

use carrel_study_sdk::prelude::*;

/// At most this many hours to the next consultation: re-consultation within 72 hours.
const WITHIN_72H: i64 = 72;
/// Within 7 days.
const WITHIN_7D: i64 = 7 * 24;

pub struct Reconsult;

/// When `row` starts, in hours since 1970-01-01 00:00; `None` without a date or an hour.
fn start(row: &Row) -> Option<i64> {
    let days = row.date()?.days();
    Some(i64::from(days) * 24 + i64::from(row.hour()?))
}

impl Study for Reconsult {
    fn patient(rows: &Patient, out: &mut Out) -> Result<(), StudyError> {
        // The host orders a patient's rows by date only: within a day, sort by hour here.
        let mut starts: Vec<i64> = rows.rows().filter_map(|row| start(&row)).collect();
        starts.sort_unstable();
        for row in rows {
            out.add(&row, "consultations")?;
            // The next consultation is the first that starts strictly later: one at the
            // same date and hour is not a re-consultation.
            let gap = start(&row).and_then(|at| {
                let next = starts.partition_point(|&s| s <= at);
                starts.get(next).map(|&next| next - at)
            });
            if let Some(gap) = gap {
                if gap <= WITHIN_72H {
                    out.add(&row, "reconsult_72h")?;
                }
                if gap <= WITHIN_7D {
                    out.add(&row, "reconsult_7d")?;
                }
            }
            if row.outcome() == Some("hospital") {
                out.add(&row, "referral")?;
            }
        }
        Ok(())
    }
}

carrel_study_sdk::export_study!(Reconsult);

#[cfg(test)]
mod tests {
    use super::*;
    use carrel_study_sdk::testing::{Consultation, Harness};

    /// The table and grant of the manifest section.
    fn harness() -> Harness {
        Harness::new(&["consultations", "reconsult_72h", "reconsult_7d", "referral"])
            .granting(&["date", "hour", "outcome"])
    }

    /// What each of one patient's consultations adds to, row by row.
    fn added(rows: &[Consultation]) -> Vec<Vec<String>> {
        let added = harness().run::<Reconsult>(&[rows]).unwrap();
        let mut by_row = vec![Vec::new(); rows.len()];
        for a in added {
            assert_eq!(a.group, 0);
            by_row[a.row].push(a.measure);
        }
        by_row
    }

    fn at(date: &str, hour: u8) -> Consultation {
        Consultation::new().date(date).hour(hour).outcome("home")
    }

    const ALONE: &[&str] = &["consultations"];
    const WITHIN_72H: &[&str] = &["consultations", "reconsult_72h", "reconsult_7d"];
    const WITHIN_7D: &[&str] = &["consultations", "reconsult_7d"];

    #[test]
    fn a_return_71_hours_later_is_a_reconsultation_within_72_hours_and_7_days() {
        let rows = [at("2024-01-15", 10), at("2024-01-18", 9)];
        assert_eq!(added(&rows), [WITHIN_72H, ALONE]);
    }

    #[test]
    fn a_return_exactly_72_hours_later_still_counts_within_72_hours() {
        let rows = [at("2024-01-15", 10), at("2024-01-18", 10)];
        assert_eq!(added(&rows), [WITHIN_72H, ALONE]);
    }

    #[test]
    fn a_return_73_hours_later_counts_within_7_days_only() {
        let rows = [at("2024-01-15", 10), at("2024-01-18", 11)];
        assert_eq!(added(&rows), [WITHIN_7D, ALONE]);
    }

    #[test]
    fn a_return_exactly_7_days_later_counts_within_7_days_and_an_hour_more_does_not() {
        let rows = [at("2024-01-15", 10), at("2024-01-22", 10)];
        assert_eq!(added(&rows), [WITHIN_7D, ALONE]);
        let rows = [at("2024-01-15", 10), at("2024-01-22", 11)];
        assert_eq!(added(&rows), [ALONE, ALONE]);
    }

    #[test]
    fn a_later_consultation_the_same_day_is_a_reconsultation() {
        let rows = [at("2024-01-15", 9), at("2024-01-15", 21)];
        assert_eq!(added(&rows), [WITHIN_72H, ALONE]);
    }

    #[test]
    fn consultations_of_one_day_are_ordered_by_hour_whatever_order_they_come_in() {
        // The host orders a patient's rows by date, not by hour.
        let rows = [at("2024-01-15", 21), at("2024-01-15", 9)];
        assert_eq!(added(&rows), [ALONE, WITHIN_72H]);
    }

    #[test]
    fn a_consultation_at_the_same_date_and_hour_is_not_a_later_one() {
        let rows = [at("2024-01-15", 9), at("2024-01-15", 9)];
        assert_eq!(added(&rows), [ALONE, ALONE]);
        // Each of the two is followed by the one 30 hours later.
        let rows = [
            at("2024-01-15", 9),
            at("2024-01-15", 9),
            at("2024-01-16", 15),
        ];
        assert_eq!(added(&rows), [WITHIN_72H, WITHIN_72H, ALONE]);
    }

    #[test]
    fn only_the_next_consultation_counts_and_each_one_has_its_own() {
        let rows = [
            at("2024-01-01", 8),
            at("2024-01-06", 8),  // 120 hours after the first
            at("2024-01-07", 20), // 36 hours after the second
            at("2024-02-20", 8),
        ];
        assert_eq!(added(&rows), [WITHIN_7D, WITHIN_72H, ALONE, ALONE]);
    }

    #[test]
    fn a_return_across_a_month_end_counts_on_the_first_consultation() {
        let rows = [at("2024-01-31", 22), at("2024-02-01", 3)];
        assert_eq!(added(&rows), [WITHIN_72H, ALONE]);
    }

    #[test]
    fn a_lone_consultation_counts_only_as_a_consultation() {
        assert_eq!(added(&[at("2024-01-15", 10)]), [ALONE]);
    }

    #[test]
    fn a_consultation_ending_in_hospital_is_a_referral() {
        let referred = Consultation::new()
            .date("2024-01-15")
            .hour(23)
            .outcome("hospital");
        assert_eq!(added(&[referred]), [["consultations", "referral"]]);
        for outcome in ["home", "deceased", "unknown"] {
            let row = at("2024-01-15", 23).outcome(outcome);
            assert_eq!(added(&[row]), [ALONE], "{outcome}");
        }
        assert_eq!(added(&[Consultation::new()]), [ALONE], "no outcome");
    }

    #[test]
    fn patients_are_independent() {
        let first = [at("2024-01-15", 10)];
        let second = [at("2024-01-16", 10)];
        let added = harness().run::<Reconsult>(&[&first, &second]).unwrap();
        let measures: Vec<&str> = added.iter().map(|a| a.measure.as_str()).collect();
        assert_eq!(measures, ["consultations", "consultations"]);
    }
}
