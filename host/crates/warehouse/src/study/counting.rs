//! What a run counts, by the study's kind: one or more tallies of the contributions a
//! study made (a table, or a model evaluation's overall and per-subgroup counts), whose
//! patients' bounds are settled together after the pass; or a regression's rows.

use super::answers::Counted as Answer;
use super::contributions::Pending;
use super::fitting::FitAccumulator;
use super::row_keys::RowKeys;
use super::table::TableSpec;
use super::tally::{self, Checked, Tally};
use arrow_array::RecordBatch;

/// One tally of a run: the table, or a model evaluation's `overall` or one subgroup.
pub struct Grouping {
    pub name: String,
    pub kept: Vec<usize>,
    pub tally: Tally,
}

impl Grouping {
    /// The tally `name` of `table`, keeping the dimensions `kept`.
    pub fn new(table: &TableSpec, name: impl Into<String>, kept: Vec<usize>) -> Grouping {
        Grouping {
            name: name.into(),
            tally: Tally::new(table, &kept),
            kept,
        }
    }
}

/// The tallies of one table, which count the same contributions in their own cells.
/// Each contribution is kept once until settling, with its slot in each tally.
pub struct Tallies {
    groupings: Vec<Grouping>,
    pending: Pending,
    bounds: super::contributions::Bounds,
    /// Contributions beyond a patient's bounds, in all tallies.
    dropped: u64,
    slots: Vec<u32>,
}

impl Tallies {
    pub fn new(table: &TableSpec, groupings: Vec<Grouping>) -> Tallies {
        Tallies {
            pending: Pending::new(groupings.len()),
            slots: vec![0; groupings.len()],
            groupings,
            bounds: tally::bounds(table),
            dropped: 0,
        }
    }

    /// Adds the checked contributions of one batch: at most one per row and measure
    /// (the caller deduplicates). They count once settled against their patient's bounds.
    pub fn add(
        &mut self,
        batch: &RecordBatch,
        keys: &RowKeys,
        contributions: &[Checked],
    ) -> Result<(), String> {
        let sources = self
            .groupings
            .iter()
            .map(|g| g.tally.sources(batch))
            .collect::<Result<Vec<_>, _>>()?;
        for c in contributions {
            let row = c.row as usize;
            for ((g, sources), slot) in self.groupings.iter_mut().zip(&sources).zip(&mut self.slots)
            {
                *slot = g.tally.slot(sources, row, c.measure, c.label);
            }
            self.pending
                .push(keys.patient(row), keys.record(row), &self.slots);
        }
        Ok(())
    }

    /// Counts every contribution added so far that its patient's bounds allow.
    pub fn settle(&mut self) {
        let slots: Vec<usize> = self.groupings.iter().map(|g| g.tally.slots()).collect();
        let (counts, dropped) = self.pending.settle_counts(self.bounds, &slots);
        for (g, counts) in self.groupings.iter_mut().zip(&counts) {
            g.tally.add_counts(counts);
        }
        self.dropped += dropped;
    }

    /// Contributions dropped for their patient's bounds.
    pub fn dropped(&self) -> u64 {
        self.assert_settled();
        self.dropped
    }

    /// The settled tallies.
    pub fn groupings(&self) -> &[Grouping] {
        self.assert_settled();
        &self.groupings
    }

    /// The settled tallies, to release.
    pub fn into_groupings(self) -> Vec<Grouping> {
        self.assert_settled();
        self.groupings
    }

    fn assert_settled(&self) {
        assert!(
            self.pending.is_empty(),
            "tallies are read only after `settle`"
        );
    }
}

/// What a run counts, by the study's kind.
pub enum Counter {
    /// The table's tally, or a model evaluation's overall and per-subgroup tallies.
    Tallies(Tallies),
    /// The regression's rows.
    Fit(Box<FitAccumulator>),
}

impl Counter {
    /// Counts one batch's checked answer; `keys` are the batch's row keys.
    pub fn add(
        &mut self,
        batch: &RecordBatch,
        answer: &Answer,
        keys: &RowKeys,
    ) -> Result<(), String> {
        match (self, answer) {
            (Counter::Tallies(tallies), Answer::Contributions(checked)) => {
                tallies.add(batch, keys, checked)
            }
            (Counter::Fit(fit), Answer::Fit(rows)) => {
                fit.add(keys, rows);
                Ok(())
            }
            _ => Err("an answer of another kind".into()),
        }
    }

    /// Settles the tallies' contributions against their patients' bounds.
    pub fn settle(&mut self) {
        if let Counter::Tallies(tallies) = self {
            tallies.settle();
        }
    }

    pub fn dropped(&self) -> u64 {
        match self {
            Counter::Tallies(tallies) => tallies.dropped(),
            Counter::Fit(fit) => fit.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::table::TableSpec;
    use arrow_array::{Date32Array, StringArray, UInt8Array};
    use std::sync::Arc;

    fn table(max_per_patient: u32) -> TableSpec {
        let mut table: TableSpec = toml::from_str(
            "dimensions = [\"week\", \"region\", \"age_class\"]\nmeasures = [\"n\", \"m\"]",
        )
        .unwrap();
        table.max_per_patient = max_per_patient;
        table
    }

    /// Rows of patients `p`, all on 2024-01-03 (a Wednesday of 2024-W01).
    fn batch(patients: &[&str], departements: &[Option<&str>], ages: &[Option<u8>]) -> RecordBatch {
        let n = patients.len();
        RecordBatch::try_from_iter([
            (
                "patient_id",
                Arc::new(StringArray::from(patients.to_vec())) as _,
            ),
            ("date", Arc::new(Date32Array::from(vec![19725; n])) as _),
            (
                "departement",
                Arc::new(StringArray::from(departements.to_vec())) as _,
            ),
            ("age_years", Arc::new(UInt8Array::from(ages.to_vec())) as _),
        ])
        .unwrap()
    }

    /// The contributions `all` of batch `b`, counted and settled in one tally.
    fn counted(t: &TableSpec, kept: &[usize], b: &RecordBatch, all: &[Checked]) -> Tallies {
        let mut tallies = Tallies::new(t, vec![Grouping::new(t, "table", kept.to_vec())]);
        let keys = RowKeys::of(b).unwrap();
        tallies.add(b, &keys, all).unwrap();
        tallies.settle();
        tallies
    }

    fn contribution(row: u32, measure: u32) -> Checked {
        Checked {
            row,
            measure,
            label: 0,
        }
    }

    #[test]
    fn the_host_counts_consultations_and_distinct_patients_in_cells_it_computes() {
        let t = table(3);
        let b = batch(
            &["aa", "aa", "bb", "cc"],
            &[Some("35"), Some("35"), Some("35"), None],
            &[Some(40), Some(40), Some(1), None],
        );
        let all: Vec<Checked> = (0..4).map(|r| contribution(r, 0)).collect();
        let tallies = counted(&t, &[0, 1, 2], &b, &all);
        let tally = &tallies.groupings()[0].tally;
        let cells = tally.cells();
        let labels: Vec<Vec<String>> = cells
            .iter()
            .map(|(key, _, _)| (0..3).map(|s| tally.label(s, key[s], &t)).collect())
            .collect();
        assert_eq!(
            labels,
            [
                ["2024-W01", "Bretagne", "<2"],
                ["2024-W01", "Bretagne", "15-74"],
                ["2024-W01", "unknown", "unknown"],
            ]
        );
        // Patient aa came twice to the same cell: two consultations, one patient.
        assert_eq!(cells[1].1, [2, 0]);
        assert_eq!(cells[1].2, [1, 0]);
        assert_eq!(tallies.dropped(), 0);
    }

    #[test]
    fn a_patients_contributions_to_a_cell_beyond_the_bound_are_dropped() {
        let t = table(1);
        let b = batch(&["aa"; 20], &[Some("35"); 20], &[Some(40); 20]);
        let all: Vec<Checked> = (0..20).map(|r| contribution(r, 1)).collect();
        let tallies = counted(&t, &[0], &b, &all);
        let cells = tallies.groupings()[0].tally.cells();
        assert_eq!(cells.len(), 1);
        assert_eq!(cells[0].1, [0, 1]);
        assert_eq!(cells[0].2, [0, 1]);
        assert_eq!(tallies.dropped(), 19);
    }

    #[test]
    fn a_coarser_grouping_counts_each_patient_once_across_the_cells_it_merges() {
        let t = table(3);
        // National: week only. Patient aa in two regions is one patient of the week.
        let b = batch(
            &["aa", "aa"],
            &[Some("35"), Some("75")],
            &[Some(40), Some(40)],
        );
        let tallies = counted(&t, &[0], &b, &[contribution(0, 0), contribution(1, 0)]);
        let cells = tallies.groupings()[0].tally.cells();
        assert_eq!(cells.len(), 1);
        assert_eq!((cells[0].1[0], cells[0].2[0]), (2, 1));
    }

    #[test]
    fn each_tally_of_a_row_applies_the_patients_bounds_on_its_own() {
        // Bound 1 per cell: patient aa's two rows fall in one national cell (the second is
        // dropped there) but in two regional cells (both count there).
        let t = table(1);
        let b = batch(
            &["aa", "aa"],
            &[Some("35"), Some("75")],
            &[Some(40), Some(40)],
        );
        let mut tallies = Tallies::new(
            &t,
            vec![
                Grouping::new(&t, "national", vec![0]),
                Grouping::new(&t, "regional", vec![0, 1]),
            ],
        );
        let keys = RowKeys::of(&b).unwrap();
        tallies
            .add(&b, &keys, &[contribution(0, 0), contribution(1, 0)])
            .unwrap();
        tallies.settle();
        let national = tallies.groupings()[0].tally.cells();
        assert_eq!((national[0].1[0], national[0].2[0]), (1, 1));
        let regional = tallies.groupings()[1].tally.cells();
        assert_eq!(regional.len(), 2);
        assert!(regional.iter().all(|c| (c.1[0], c.2[0]) == (1, 1)));
        assert_eq!(tallies.dropped(), 1);
    }
}
