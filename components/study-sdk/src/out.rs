//! What a study answers for a group: which measures each of its rows adds to.

use std::ops::Range;

use crate::batch::{Batch, Row};
use crate::bindings::carrel::eds::study_types::Contribution;
use crate::error::StudyError;
use crate::params::Params;
use crate::spec::Spec;

/// Collects the contributions of one batch, group by group. A study names measures (and
/// labels) by their declared names; the SDK turns them into the indexes and batch rows
/// the host expects.
#[derive(Debug)]
pub struct Out<'a> {
    spec: &'a Spec,
    batch: Batch<'a>,
    /// The batch rows of the group being classified.
    group: Range<u32>,
    contributions: Vec<Contribution>,
}

impl<'a> Out<'a> {
    pub(crate) fn new(spec: &'a Spec, batch: Batch<'a>) -> Out<'a> {
        Out {
            spec,
            batch,
            group: 0..0,
            contributions: Vec::new(),
        }
    }

    pub(crate) fn enter_group(&mut self, rows: Range<u32>) {
        self.group = rows;
    }

    pub(crate) fn into_contributions(self) -> Vec<Contribution> {
        self.contributions
    }

    /// `row` adds one to `measure` (a name of the manifest's `table.measures`), in the
    /// cell the host computes from the row. Adding twice to one measure counts once.
    ///
    /// An error when `measure` is not declared, when the table declares `labels` (use
    /// [`Out::add_labelled`]), or when `row` is not of the group being classified.
    pub fn add(&mut self, row: &Row<'_>, measure: &str) -> Result<(), StudyError> {
        if !self.spec.labels().is_empty() {
            return Err(StudyError::failed(format!(
                "measure `{measure}`: the table declares labels, so each contribution names one (add_labelled)"
            )));
        }
        let measure = self.spec.measure(measure)?;
        self.push(row, measure, 0)
    }

    /// `row` adds one to `measure` under `label`, a value of the table's study-chosen
    /// dimension (`table.labels.values`).
    pub fn add_labelled(
        &mut self,
        row: &Row<'_>,
        measure: &str,
        label: &str,
    ) -> Result<(), StudyError> {
        let measure = self.spec.measure(measure)?;
        let label = self.spec.label(label)?;
        self.push(row, measure, label)
    }

    fn push(&mut self, row: &Row<'_>, measure: u32, label: u32) -> Result<(), StudyError> {
        let index = row.batch_index();
        // Only rows of the group at hand: a study sees no other through the API, and a
        // contribution elsewhere would make it depend on its neighbours.
        if !self.group.contains(&index) {
            return Err(StudyError::failed(format!(
                "row {index} of the batch is not in the group being classified"
            )));
        }
        self.contributions.push(Contribution {
            row: index,
            measure,
            label,
        });
        Ok(())
    }

    /// The run's declared parameters.
    pub fn params(&self) -> &'a Params {
        self.spec.params()
    }

    /// The approved table: measures, labels, parameters.
    pub fn spec(&self) -> &'a Spec {
        self.spec
    }

    /// The whole batch, beyond the group at hand. **For tests of the host's checks
    /// only**: a study whose answer for a group depends on other groups is not
    /// patient-local, and the host refuses its run.
    pub fn batch(&self) -> Batch<'a> {
        self.batch
    }

    /// A contribution exactly as the host receives it: any batch row, measure index and
    /// label index, unchecked. **For tests of the host's checks only** (a row outside the
    /// batch, an undeclared label, a row of another group).
    pub fn add_raw(&mut self, batch_row: u32, measure: u32, label: u32) {
        self.contributions.push(Contribution {
            row: batch_row,
            measure,
            label,
        });
    }
}
