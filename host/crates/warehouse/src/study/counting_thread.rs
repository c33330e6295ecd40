//! Counting beside the study: the host's counts of each batch (each row's cell in each
//! tally, or a fit's rows) are made on a thread of their own while the study answers the
//! next batch, so that the sandbox and the host's counting each have a core. Batches wait
//! in a short queue; an error in counting stops the run at the next batch handed over, or
//! at the end.

use super::answers::Counted as Answer;
use super::counting::Counter;
use super::row_keys::RowKeys;
use arrow_array::RecordBatch;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Batches waiting to be counted: enough to even out uneven batches, few enough to keep
/// little memory (a batch's arrays point into its segment's buffers).
const QUEUED: usize = 4;

type Batch = (RecordBatch, Answer, RowKeys);

/// A counter running on its own thread.
pub struct CountingThread {
    batches: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<Result<Counter, String>>>,
}

impl CountingThread {
    /// Starts counting into `counter`; the counts are settled once every batch is in.
    pub fn spawn(mut counter: Counter) -> Result<CountingThread, String> {
        let (batches, queue) = sync_channel::<Batch>(QUEUED);
        let thread = std::thread::Builder::new()
            .name("carrel-counting".into())
            .spawn(move || {
                for (batch, answer, keys) in queue {
                    counter.add(&batch, &answer, &keys)?;
                }
                counter.settle();
                Ok(counter)
            })
            .map_err(|e| format!("cannot start the counting thread: {e}"))?;
        Ok(CountingThread {
            batches: Some(batches),
            thread: Some(thread),
        })
    }

    /// Hands one batch's checked answer, with the batch's row keys, over to be counted.
    pub fn add(&mut self, batch: RecordBatch, answer: Answer, keys: RowKeys) -> Result<(), String> {
        let sent = match &self.batches {
            Some(batches) => batches.send((batch, answer, keys)).is_ok(),
            None => false,
        };
        match sent {
            true => Ok(()),
            // The thread has stopped, so counting failed: its error says why.
            false => Err(self
                .stop()
                .err()
                .unwrap_or_else(|| "counting stopped early".into())),
        }
    }

    /// Waits until every batch handed over is counted, and the counts settled.
    pub fn finish(mut self) -> Result<Counter, String> {
        self.stop()
    }

    fn stop(&mut self) -> Result<Counter, String> {
        drop(self.batches.take());
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => Err("counting has already stopped".into()),
        }
    }
}

impl Drop for CountingThread {
    /// A run that stops early does not leave its counting running. What the thread ended
    /// with is not wanted then; a panic there is not raised again, since this may run
    /// while a panic of the run's own unwinds (a second panic would abort the process).
    fn drop(&mut self) {
        drop(self.batches.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::counting::{Grouping, Tallies};
    use crate::study::table::TableSpec;
    use crate::study::tally::Checked;
    use arrow_array::{Date32Array, StringArray};
    use std::sync::Arc;

    fn table() -> TableSpec {
        // Up to 3 rows of a patient count in a cell.
        toml::from_str("dimensions = [\"week\"]\nmeasures = [\"n\"]\nmax_per_patient = 3").unwrap()
    }

    fn counter(table: &TableSpec) -> Counter {
        let grouping = Grouping::new(table, "table", vec![0]);
        Counter::Tallies(Tallies::new(table, vec![grouping]))
    }

    /// Rows of patients `patients`, all on 2024-01-03, with a contribution each.
    fn batch(patients: &[&str]) -> (RecordBatch, Answer, RowKeys) {
        let n = patients.len();
        let batch = RecordBatch::try_from_iter([
            (
                "patient_id",
                Arc::new(StringArray::from(patients.to_vec())) as _,
            ),
            ("date", Arc::new(Date32Array::from(vec![19725; n])) as _),
        ])
        .unwrap();
        let checked = (0..n as u32)
            .map(|row| Checked {
                row,
                measure: 0,
                label: 0,
            })
            .collect();
        let keys = RowKeys::of(&batch).unwrap();
        (batch, Answer::Contributions(checked), keys)
    }

    #[test]
    fn batches_counted_on_the_counting_thread_are_settled_when_it_finishes() {
        let table = table();
        let mut thread = CountingThread::spawn(counter(&table)).unwrap();
        for patients in [&["aa", "bb"][..], &["aa", "cc", "dd"], &["ee"]] {
            let (b, answer, keys) = batch(patients);
            thread.add(b, answer, keys).unwrap();
        }
        let Counter::Tallies(tallies) = thread.finish().unwrap() else {
            panic!("a table's counter");
        };
        let cells = tallies.groupings()[0].tally.cells();
        assert_eq!(cells.len(), 1);
        assert_eq!((cells[0].1[0], cells[0].2[0]), (6, 5), "6 rows, 5 patients");
    }

    #[test]
    fn a_counting_error_stops_the_run_with_its_reason() {
        let table = table();
        let mut thread = CountingThread::spawn(counter(&table)).unwrap();
        let (b, _, keys) = batch(&["aa"]);
        // An answer of a fit handed to a table's counter: the thread stops on it.
        let added = thread.add(b, Answer::Fit(Vec::new()), keys);
        let error = match added {
            Err(e) => e,
            Ok(()) => {
                let (b, answer, keys) = batch(&["bb"]);
                match thread.add(b, answer, keys) {
                    Err(e) => e,
                    Ok(()) => thread.finish().err().expect("counting failed"),
                }
            }
        };
        assert_eq!(error, "an answer of another kind");
    }
}
