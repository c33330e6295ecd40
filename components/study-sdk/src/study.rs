//! The [`Study`] trait, and the loop that calls it once per group of a batch.

use crate::batch::{Batch, Patient, Row};
use crate::bindings::carrel::eds::study_types::{Consultations, Contribution};
use crate::error::StudyError;
use crate::out::Out;
use crate::spec::Spec;

/// A study: for each group of rows the host hands it, which measures each row adds to.
///
/// Implement [`Study::consultation`] for a study of unit `consultation` (the manifest's
/// default), [`Study::patient`] for unit `patient`. The host calls the study once per
/// group: one consultation, or all of one patient's consultations of the period in date
/// order. What a study answers for a group must depend on that group alone (no state
/// kept across groups, no look at the batch): the host re-runs a secret sample of
/// patients among strangers and refuses the run if any answer changes.
pub trait Study {
    /// Called once per instance, before the first batch: check the table or the
    /// parameters here to fail early. Does nothing by default.
    fn start(spec: &Spec) -> Result<(), StudyError> {
        let _ = spec;
        Ok(())
    }

    /// The measures one consultation adds to. By default an error: a study implements
    /// this one or [`Study::patient`].
    fn consultation(row: &Row, out: &mut Out) -> Result<(), StudyError> {
        let _ = (row, out);
        Err(StudyError::failed(
            "the study implements neither `Study::consultation` nor `Study::patient`",
        ))
    }

    /// The measures the rows of one group add to. By default, [`Study::consultation`] for
    /// each row: right for unit `consultation`, where a group is one row.
    fn patient(rows: &Patient, out: &mut Out) -> Result<(), StudyError> {
        for row in rows {
            Self::consultation(&row, out)?;
        }
        Ok(())
    }
}

/// The contributions of `S` for every group of `columns`, in group order.
pub(crate) fn classify<S: Study>(
    spec: &Spec,
    columns: &Consultations,
) -> Result<Vec<Contribution>, StudyError> {
    let batch = Batch::new(columns)?;
    let mut out = Out::new(spec, batch);
    for index in 0..batch.groups() {
        let group = batch.group(index).expect("a group below the count");
        out.enter_group(group.batch_rows());
        S::patient(&group, &mut out)?;
    }
    Ok(out.into_contributions())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Added, Consultation, Harness};

    /// Every coded row adds to `coded`, J11 to `ili` too.
    struct Ili;

    impl Study for Ili {
        fn consultation(row: &Row, out: &mut Out) -> Result<(), StudyError> {
            if row.has_icd10_code() {
                out.add(row, "coded")?;
            }
            if row.has_code_prefix(&["J11"]) {
                out.add(row, "ili")?;
            }
            Ok(())
        }
    }

    /// The first consultation of each patient, under a label of its visit type.
    struct FirstVisit;

    impl Study for FirstVisit {
        fn patient(rows: &Patient, out: &mut Out) -> Result<(), StudyError> {
            if let Some(first) = rows.first() {
                out.add_labelled(&first, "first", first.visit_type().unwrap_or("other"))?;
            }
            Ok(())
        }
    }

    struct Nothing;

    impl Study for Nothing {}

    fn added(group: usize, row: usize, measure: &str, label: Option<&str>) -> Added {
        Added {
            group,
            row,
            measure: measure.into(),
            label: label.map(Into::into),
        }
    }

    #[test]
    fn a_consultation_study_is_called_once_per_row_and_rows_are_addressed_in_the_batch() {
        let harness = Harness::new(&["coded", "ili"]);
        let groups: [&[Consultation]; 3] = [
            &[Consultation::new().diagnoses(&["J11"])],
            &[Consultation::new().diagnoses(&["x|J11"])],
            &[Consultation::new().diagnoses(&["R05"])],
        ];
        assert_eq!(
            harness.run::<Ili>(&groups).unwrap(),
            [
                added(0, 0, "coded", None),
                added(0, 0, "ili", None),
                added(2, 0, "coded", None),
            ]
        );
        let columns = harness.consultations(&groups);
        let raw = classify::<Ili>(harness.spec(), &columns).unwrap();
        let rows: Vec<(u32, u32)> = raw.iter().map(|c| (c.row, c.measure)).collect();
        assert_eq!(rows, [(0, 0), (0, 1), (2, 0)]);
    }

    #[test]
    fn a_patient_study_sees_its_rows_and_names_labels() {
        let harness = Harness::new(&["first"]).labels(&["home", "centre", "other"]);
        let groups: [&[Consultation]; 2] = [
            &[
                Consultation::new().visit_type("centre"),
                Consultation::new().visit_type("home"),
            ],
            &[Consultation::new(), Consultation::new().visit_type("home")],
        ];
        assert_eq!(
            harness.run::<FirstVisit>(&groups).unwrap(),
            [
                added(0, 0, "first", Some("centre")),
                added(1, 0, "first", Some("other")),
            ]
        );
        let columns = harness.consultations(&groups);
        let raw = classify::<FirstVisit>(harness.spec(), &columns).unwrap();
        assert_eq!(
            (raw[1].row, raw[1].label),
            (2, 2),
            "batch row 2, label `other`"
        );
    }

    #[test]
    fn an_undeclared_measure_or_label_fails_the_study() {
        let harness = Harness::new(&["coded"]);
        let error = harness
            .consultation::<Ili>(Consultation::new().diagnoses(&["J11"]))
            .unwrap_err();
        assert!(
            error.message().contains("measure `ili` is not declared"),
            "{error}"
        );
        let error = Harness::new(&["first"])
            .labels(&["home"])
            .run::<FirstVisit>(&[&[Consultation::new().visit_type("tele")]])
            .unwrap_err();
        assert!(error.message().contains("label `tele`"), "{error}");
    }

    #[test]
    fn a_table_with_labels_wants_a_label_on_every_contribution() {
        let error = Harness::new(&["coded", "ili"])
            .labels(&["a"])
            .consultation::<Ili>(Consultation::new().diagnoses(&["J11"]))
            .unwrap_err();
        assert!(error.message().contains("add_labelled"), "{error}");
    }

    #[test]
    fn a_study_implementing_nothing_fails_with_a_clear_message() {
        let error = Harness::new(&["n"])
            .consultation::<Nothing>(Consultation::new())
            .unwrap_err();
        assert!(error.message().contains("neither"), "{error}");
    }

    /// Adds to `n` for a row of another group: a bug the SDK catches.
    struct Neighbour;

    impl Study for Neighbour {
        fn patient(_: &Patient, out: &mut Out) -> Result<(), StudyError> {
            let row = out.batch().row(0).expect("a row");
            out.add(&row, "n")
        }
    }

    #[test]
    fn a_row_of_another_group_cannot_be_added() {
        let one: &[Consultation] = &[Consultation::new()];
        let error = Harness::new(&["n"])
            .run::<Neighbour>(&[one, one])
            .unwrap_err();
        assert_eq!(
            error.message(),
            "row 0 of the batch is not in the group being classified"
        );
    }
}
