//! Syndromic surveillance: the weekly share of consultations for influenza-like illness
//! (ICD-10 J10, J11), gastroenteritis (A08, A09) and bronchiolitis (J21, under 2 years
//! only) among consultations with at least one coded (ICD-10) diagnosis.
//!
//! Unit `consultation`; sees `age_years` and `diagnoses` only. The host puts each row in
//! its cell of week, region and age class, and computes the shares over `coded` (see the
//! `ili-weekly` section of spin.toml).

use carrel_study_sdk::prelude::*;

const ILI: &[&str] = &["J10", "J11"];
const GASTRO: &[&str] = &["A08", "A09"];
const BRONCHIOLITIS: &[&str] = &["J21"];

pub struct IliWeekly;

impl Study for IliWeekly {
    fn consultation(row: &Row, out: &mut Out) -> Result<(), StudyError> {
        // The denominator of every share: consultations with at least one ICD-10 code.
        if !row.has_icd10_code() {
            return Ok(());
        }
        out.add(row, "coded")?;
        if row.has_code_prefix(ILI) {
            out.add(row, "ili")?;
        }
        if row.has_code_prefix(GASTRO) {
            out.add(row, "gastro")?;
        }
        // Bronchiolitis is a disease of infants: counted under 2 only, and an unknown
        // age is not under 2.
        let under_two = row.age_years().is_some_and(|age| age < 2);
        if under_two && row.has_code_prefix(BRONCHIOLITIS) {
            out.add(row, "bronchiolitis")?;
        }
        Ok(())
    }
}

carrel_study_sdk::export_study!(IliWeekly);

#[cfg(test)]
mod tests {
    use super::*;
    use carrel_study_sdk::testing::{Consultation, Harness};

    /// The table and grant of the manifest section.
    fn harness() -> Harness {
        Harness::new(&["coded", "ili", "gastro", "bronchiolitis"])
            .granting(&["age_years", "diagnoses"])
    }

    fn added(row: Consultation) -> Vec<String> {
        harness().consultation::<IliWeekly>(row).unwrap()
    }

    #[test]
    fn a_consultation_without_an_icd10_code_adds_nothing() {
        assert!(added(Consultation::new()).is_empty());
        assert!(added(Consultation::new().diagnoses(&["http://snomed.info/sct|J11"])).is_empty());
    }

    #[test]
    fn influenza_and_gastroenteritis_count_among_coded_consultations() {
        let flu = Consultation::new().age(40).diagnoses(&["R05", "J111"]);
        assert_eq!(added(flu), ["coded", "ili"]);
        let gastro = Consultation::new().diagnoses(&["A09"]);
        assert_eq!(added(gastro), ["coded", "gastro"]);
        let both = Consultation::new().diagnoses(&["J10", "A080"]);
        assert_eq!(added(both), ["coded", "ili", "gastro"]);
        assert_eq!(added(Consultation::new().diagnoses(&["J12"])), ["coded"]);
    }

    #[test]
    fn bronchiolitis_counts_under_two_years_only() {
        let infant = Consultation::new().age(1).diagnoses(&["J21"]);
        assert_eq!(added(infant), ["coded", "bronchiolitis"]);
        let toddler = Consultation::new().age(2).diagnoses(&["J219"]);
        assert_eq!(added(toddler), ["coded"]);
        let unknown_age = Consultation::new().diagnoses(&["J21"]);
        assert_eq!(added(unknown_age), ["coded"]);
    }
}
