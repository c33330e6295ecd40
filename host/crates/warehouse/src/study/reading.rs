//! Reading a run's rows from the vault and cutting them into the batches handed to the
//! study: the columns the host needs (the patient, the date, the granted columns and the
//! sources of the kept dimensions), only the segments of the run's period, progress told
//! to an observer, what was read noted in the run record (for auditors), and never the
//! rows of patients who objected or rows past retention.

use super::manifest::STUDY_DATASET;
use super::model_spec::StudyKind;
use super::plan::RunPlan;
use super::registry::RunRecord;
use super::row_keys::patient_key;
use super::spec::{ReadObserver, RunContext, StudySpec};
use crate::ingest::record_keys::RECORD_KEY;
use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use carrel_vault::{DateRange, Scan, ScanOptions};
use std::sync::Arc;

/// Rows handed to a study in one call.
pub const BATCH_ROWS: usize = 4096;

/// An open scan of the run's rows. Its errors are the host's (the study never sees
/// them), as text for the run record.
pub struct Reader {
    scan: Scan,
    observer: Option<Arc<dyn ReadObserver>>,
    noted: usize,
    /// Rows never handed to the study (objections, retention).
    exclusions: Option<crate::patients::Exclusions>,
}

impl Reader {
    /// `None` when the warehouse holds no consultations yet: the study sees no rows.
    pub fn open(
        context: &RunContext<'_>,
        spec: &StudySpec,
        plan: &RunPlan,
    ) -> Result<Option<Reader>, String> {
        let kinds = spec.tool.table().dimension_kinds();
        // The record key and the hour are the host's, for cell keys (the hour only for rows
        // stored before record keys); the study is handed only its granted columns.
        let mut columns: Vec<&str> = vec!["patient_id", "date", RECORD_KEY, "hour"];
        let sources = plan.kept.iter().filter_map(|&i| kinds[i].source_column());
        // A model evaluation's events are the host's to read from the rows: the study
        // never says what happened.
        let outcome = (spec.tool.kind == StudyKind::ModelEvaluation).then_some("outcome");
        for column in spec.tool.datasets[STUDY_DATASET]
            .iter()
            .map(String::as_str)
            .chain(sources)
            .chain(outcome)
        {
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
        let options = ScanOptions {
            date_range: (plan.from.is_some() || plan.to.is_some()).then(|| DateRange {
                column: "date".into(),
                from: plan.from.unwrap_or(i32::MIN),
                to: plan.to.unwrap_or(i32::MAX),
            }),
        };
        let scan = match context.vault.scan_with(STUDY_DATASET, &columns, &options) {
            Ok(scan) => scan,
            Err(carrel_vault::VaultError::UnknownDataset(_)) => return Ok(None),
            Err(e) => return Err(format!("cannot read {STUDY_DATASET}: {e}")),
        };
        if let Some(observer) = &context.observer {
            observer.planned(scan.segments_planned() as u64);
        }
        Ok(Some(Reader {
            scan,
            observer: context.observer.clone(),
            noted: 0,
            exclusions: context.exclusions.filter(|e| !e.is_empty()).cloned(),
        }))
    }

    /// The next decrypted batch.
    pub fn next(&mut self, record: &mut RunRecord) -> Result<Option<RecordBatch>, String> {
        let Some(batch) = self.scan.next() else {
            return Ok(None);
        };
        let batch = batch.map_err(|e| format!("cannot read {STUDY_DATASET}: {e}"))?;
        // Rows of patients who objected, and rows past retention, even before a pass has
        // removed them from storage: the study is never handed them.
        let batch = match &self.exclusions {
            Some(exclusions) => exclusions.filter(batch)?,
            None => batch,
        };
        record.rows_read += batch.num_rows() as u64;
        let read = self.scan.segment_ids_read().len();
        if let Some(observer) = &self.observer {
            observer.read((read - self.noted) as u64, batch.num_rows() as u64);
        }
        self.noted = read;
        Ok(Some(batch))
    }

    /// Notes the segments read in the run record.
    pub fn finish(self, record: &mut RunRecord) {
        record.segments_read = self
            .scan
            .segment_ids_read()
            .iter()
            .map(|s| format!("{STUDY_DATASET}/{s}"))
            .collect();
    }
}

/// Unit `consultation`: `batch` in slices of at most [`BATCH_ROWS`], every row a group.
pub fn row_chunks(batch: &RecordBatch) -> impl Iterator<Item = (RecordBatch, Vec<u32>)> + '_ {
    let rows = batch.num_rows();
    (0..rows).step_by(BATCH_ROWS).map(move |start| {
        let len = BATCH_ROWS.min(rows - start);
        (batch.slice(start, len), (0..=len as u32).collect())
    })
}

/// Unit `patient`: the rows ordered by patient, then date, in batches of about
/// [`BATCH_ROWS`] rows; a patient's rows are one group, never split across batches.
pub fn patient_chunks(
    batches: Vec<RecordBatch>,
) -> Result<impl Iterator<Item = (RecordBatch, Vec<u32>)>, String> {
    let (sorted, patients) = match batches.first() {
        None => (None, Vec::new()),
        Some(first) => {
            let all = arrow_select::concat::concat_batches(&first.schema(), &batches)
                .map_err(|e| e.to_string())?;
            drop(batches);
            let (sorted, patients) = by_patient(&all)?;
            (Some(sorted), patients)
        }
    };
    let mut start = 0;
    Ok(std::iter::from_fn(move || {
        let sorted = sorted.as_ref()?;
        if start >= patients.len() {
            return None;
        }
        let mut groups = vec![0u32];
        let mut end = start;
        while end < patients.len() && (end - start < BATCH_ROWS || groups.len() == 1) {
            let patient = patients[end];
            while end < patients.len() && patients[end] == patient {
                end += 1;
            }
            groups.push((end - start) as u32);
        }
        let chunk = sorted.slice(start, end - start);
        start = end;
        Some((chunk, groups))
    }))
}

/// `batch` ordered by patient, then date; with each row's patient key.
fn by_patient(batch: &RecordBatch) -> Result<(RecordBatch, Vec<u64>), String> {
    let pseudonyms = batch
        .column_by_name("patient_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or("no patient_id")?;
    let dates = batch
        .column_by_name("date")
        .and_then(|c| c.as_primitive_opt::<arrow_array::types::Date32Type>())
        .ok_or("no date")?;
    let mut order: Vec<(u64, i32, u32)> = (0..batch.num_rows())
        .map(|i| (patient_key(pseudonyms.value(i)), dates.value(i), i as u32))
        .collect();
    order.sort_unstable();
    let indices = arrow_array::UInt32Array::from_iter_values(order.iter().map(|o| o.2));
    let sorted =
        arrow_select::take::take_record_batch(batch, &indices).map_err(|e| e.to_string())?;
    Ok((sorted, order.into_iter().map(|o| o.0).collect()))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use arrow_array::{Date32Array, StringArray};

    /// A batch of `patient_id` and `date`, as the store hands one (also for `seeds`).
    pub(in crate::study) fn rows(patients: &[&str], dates: &[i32]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "patient_id",
                Arc::new(StringArray::from(patients.to_vec())) as _,
            ),
            ("date", Arc::new(Date32Array::from(dates.to_vec())) as _),
        ])
        .unwrap()
    }

    #[test]
    fn a_patients_rows_are_one_group_in_date_order_across_stored_batches() {
        let a = "00000000000000aa";
        let b = "00000000000000bb";
        let batches = vec![rows(&[b, a], &[5, 9]), rows(&[a, b], &[3, 1])];
        let chunks: Vec<_> = patient_chunks(batches).unwrap().collect();
        assert_eq!(chunks.len(), 1);
        let (batch, groups) = &chunks[0];
        assert_eq!(groups, &[0, 2, 4]);
        let dates = batch
            .column(1)
            .as_primitive::<arrow_array::types::Date32Type>();
        assert_eq!(dates.values().to_vec(), [3, 9, 1, 5]);
    }

    #[test]
    fn row_chunks_hand_every_row_once_as_its_own_group() {
        let n = BATCH_ROWS + 3;
        let batch = rows(&vec!["p"; n], &vec![0; n]);
        let chunks: Vec<_> = row_chunks(&batch).collect();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[1].1, [0, 1, 2, 3]);
        assert_eq!(chunks[0].0.num_rows() + chunks[1].0.num_rows(), n);
    }
}
