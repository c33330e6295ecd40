//! What leaves the data: the rows of patients who objected, and rows older than the
//! retention period. The same rule decides what a study run is not handed and what a
//! pass removes from storage.

use super::objections::ObjectionSet;
use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{Array, BooleanArray, RecordBatch};
use carrel_vault::{RowRemoval, RowSelector};
use std::sync::Arc;

/// Reason of a row removed because its patient objected.
pub const OBJECTION: &str = "objection";
/// Reason of a row removed because it is older than the retention period.
pub const RETENTION: &str = "retention";

/// The rows to leave out, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct Exclusions {
    pub objections: Arc<ObjectionSet>,
    /// Rows dated before this day (days since 1970-01-01) are past retention.
    pub before_day: Option<i32>,
}

impl Exclusions {
    /// Nothing to leave out: no objection and no retention period.
    pub fn is_empty(&self) -> bool {
        self.objections.pseudonyms.is_empty() && self.before_day.is_none()
    }

    /// Why the row of patient `pseudonym` dated `day` leaves, if it does.
    fn reason(&self, pseudonym: Option<&str>, day: Option<i32>) -> Option<&'static str> {
        if pseudonym.is_some_and(|p| self.objections.contains(p)) {
            return Some(OBJECTION);
        }
        match (self.before_day, day) {
            (Some(cutoff), Some(day)) if day < cutoff => Some(RETENTION),
            _ => None,
        }
    }

    fn removal(&self, rows: &RecordBatch) -> Result<RowRemoval, String> {
        let pseudonyms = rows
            .column_by_name("patient_id")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or("no patient_id column of text")?;
        let dates = rows
            .column_by_name("date")
            .and_then(|c| c.as_primitive_opt::<Date32Type>())
            .ok_or("no date column of dates")?;
        let mut removal = RowRemoval {
            keep: Vec::with_capacity(rows.num_rows()),
            ..Default::default()
        };
        for row in 0..rows.num_rows() {
            let pseudonym = pseudonyms.is_valid(row).then(|| pseudonyms.value(row));
            let day = dates.is_valid(row).then(|| dates.value(row));
            let reason = self.reason(pseudonym, day);
            removal.keep.push(reason.is_none());
            if let Some(reason) = reason {
                *removal.removed.entry(reason.to_owned()).or_default() += 1;
            }
        }
        Ok(removal)
    }

    /// `rows` without the rows to leave out; `rows` must hold `patient_id` and `date`.
    pub fn filter(&self, rows: RecordBatch) -> Result<RecordBatch, String> {
        if self.is_empty() {
            return Ok(rows);
        }
        let removal = self.removal(&rows)?;
        if removal.removed_rows() == 0 {
            return Ok(rows);
        }
        arrow_select::filter::filter_record_batch(&rows, &BooleanArray::from(removal.keep))
            .map_err(|e| e.to_string())
    }
}

impl RowSelector for Exclusions {
    fn columns(&self) -> Vec<String> {
        vec!["patient_id".into(), "date".into()]
    }

    fn select(&self, rows: &RecordBatch) -> Result<RowRemoval, String> {
        self.removal(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Date32Array, StringArray};

    fn rows() -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "patient_id",
                Arc::new(StringArray::from(vec!["a", "b", "a", "c"])) as _,
            ),
            ("date", Arc::new(Date32Array::from(vec![50, 5, 7, 60])) as _),
        ])
        .unwrap()
    }

    #[test]
    fn objecting_patients_and_rows_past_retention_are_left_out_with_their_reasons() {
        let exclusions = Exclusions {
            objections: Arc::new(ObjectionSet {
                generation: 1,
                pseudonyms: ["a".to_owned()].into(),
            }),
            before_day: Some(10),
        };
        let removal = exclusions.select(&rows()).unwrap();
        assert_eq!(removal.keep, [false, false, false, true]);
        assert_eq!(removal.removed[OBJECTION], 2);
        assert_eq!(removal.removed[RETENTION], 1);
        assert_eq!(exclusions.filter(rows()).unwrap().num_rows(), 1);
        assert_eq!(Exclusions::default().filter(rows()).unwrap().num_rows(), 4);
    }
}
