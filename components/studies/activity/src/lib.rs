//! Activity: the consultations of each association by ISO week and visit type (`home`,
//! `centre`, `tele`, `other`).
//!
//! Unit `consultation`. Every consultation counts once, and the host computes all three
//! dimensions from the row itself, so the study reads no column at all (its manifest
//! section grants none).

use carrel_study_sdk::prelude::*;

pub struct Activity;

impl Study for Activity {
    fn consultation(row: &Row, out: &mut Out) -> Result<(), StudyError> {
        out.add(row, "consultations")
    }
}

carrel_study_sdk::export_study!(Activity);

#[cfg(test)]
mod tests {
    use super::*;
    use carrel_study_sdk::testing::{Consultation, Harness};

    #[test]
    fn every_consultation_counts_once_whatever_it_holds() {
        let harness = Harness::new(&["consultations"]).granting(&[]);
        for row in [
            Consultation::new(),
            Consultation::new().visit_type("tele").diagnoses(&["J11"]),
        ] {
            assert_eq!(
                harness.consultation::<Activity>(row).unwrap(),
                ["consultations"]
            );
        }
    }
}
