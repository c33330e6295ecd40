//! What the generated files hold, counted as they are written, so a test or a study
//! run on them can be checked against it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::{civil, iso_week};
use crate::fhir::Fault;
use crate::sample::Consultation;

/// Counts over the valid consultations written, and the faulty records set apart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Files of valid consultations, then faulty files, as named in the output folder.
    pub files: Vec<String>,
    pub faulty_files: Vec<String>,
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
