//! What crosses the sandbox: the generated `study` world bindings, datasets opened
//! through the host, log messages, and the glue behind [`crate::export_study!`].

use std::collections::VecDeque;

use arrow_array::RecordBatch;

use crate::bindings::carrel::eds::dataset;
use crate::bindings::carrel::eds::log as host_log;
use crate::calendar::parse_date;
use crate::error::StudyError;
use crate::params::Params;

/// The first day `open_between` asks for when it is given no `from`.
pub const EARLIEST: &str = "0001-01-01";
/// The last day `open_between` asks for when it is given no `to`.
pub const LATEST: &str = "9999-12-31";

fn host_error(error: dataset::Error) -> StudyError {
    StudyError::Failed(match error {
        dataset::Error::AccessDenied(why) => format!("access denied: {why}"),
        dataset::Error::NotFound(why) => format!("not found: {why}"),
        dataset::Error::Other(why) => why,
    })
}

/// The batches of an opened dataset, decoded one at a time as the loop asks for them,
/// so a study over millions of rows holds one batch in memory.
pub struct Batches {
    reader: Option<dataset::Reader>,
    pending: VecDeque<RecordBatch>,
}

impl Iterator for Batches {
    type Item = Result<RecordBatch, StudyError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(batch) = self.pending.pop_front() {
                return Some(Ok(batch));
            }
            let reader = self.reader.as_ref()?;
            let decoded = match reader.next() {
                Ok(Some(bytes)) => crate::ipc::decode(&bytes),
                Ok(None) => {
                    self.reader = None;
                    return None;
                }
                Err(error) => Err(host_error(error)),
            };
            match decoded {
                Ok(batches) => self.pending.extend(batches),
                Err(error) => {
                    self.reader = None;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// Opens `columns` (in that order) of `dataset`: every row, batch by batch. The study's
/// approved manifest must grant each column; anything else fails with
/// `access denied: …` (and is audited).
pub fn open(dataset: &str, columns: &[&str]) -> Result<Batches, StudyError> {
    open_dates(dataset, columns, None)
}

/// Like [`open`], keeping only rows whose `date_column` (one of `columns`) lies in
/// `from..=to`, both `YYYY-MM-DD`; the host does not even decrypt the segments outside
/// the range. A missing end is open ([`EARLIEST`], [`LATEST`]); with neither, this is
/// [`open`]. Pass the study's parameters straight in:
/// `open_between("consultations", COLUMNS, "date", params.date("from")?, params.date("to")?)`.
pub fn open_between(
    dataset: &str,
    columns: &[&str],
    date_column: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Batches, StudyError> {
    if from.is_none() && to.is_none() {
        return open(dataset, columns);
    }
    let (from, to) = (from.unwrap_or(EARLIEST), to.unwrap_or(LATEST));
    let day = |text: &str| {
        parse_date(text)
            .ok_or_else(|| StudyError::invalid_params(format!("`{text}` is not a date YYYY-MM-DD")))
    };
    if day(from)? > day(to)? {
        return Err(StudyError::invalid_params(format!(
            "the date range {from} to {to} starts after it ends"
        )));
    }
    let range = dataset::DateRange {
        column: date_column.to_owned(),
        from: from.to_owned(),
        to: to.to_owned(),
    };
    open_dates(dataset, columns, Some(range))
}

fn open_dates(
    name: &str,
    columns: &[&str],
    dates: Option<dataset::DateRange>,
) -> Result<Batches, StudyError> {
    let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    let reader = dataset::open(name, &columns, dates.as_ref()).map_err(host_error)?;
    Ok(Batches {
        reader: Some(reader),
        pending: VecDeque::new(),
    })
}

/// Messages left in the run record (the host bounds their number and length). Never
/// log row-level data: the run record is read by people who may not see it.
pub mod log {
    use super::host_log::{Level, log};

    pub fn debug(message: impl AsRef<str>) {
        log(Level::Debug, message.as_ref());
    }

    pub fn info(message: impl AsRef<str>) {
        log(Level::Info, message.as_ref());
    }

    pub fn warn(message: impl AsRef<str>) {
        log(Level::Warn, message.as_ref());
    }

    pub fn error(message: impl AsRef<str>) {
        log(Level::Error, message.as_ref());
    }
}

/// What [`crate::export_study!`] expands to call. Not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::*;
    use crate::Study;
    use crate::bindings::StudyError as WitStudyError;

    pub use crate::bindings::Guest;

    pub fn run<S: Study>(params: Vec<(String, String)>) -> Result<Vec<u8>, WitStudyError> {
        // A panic traps the instance; leave its message in the run record first.
        std::panic::set_hook(Box::new(|info| {
            super::log::error(format!("the study panicked: {info}"));
        }));
        let outcome = Params::new(params)
            .and_then(|params| S::run(&params))
            .and_then(|batch| crate::ipc::encode(&batch));
        outcome.map_err(|error| match error {
            StudyError::InvalidParams(why) => WitStudyError::InvalidParams(why),
            StudyError::Failed(why) => WitStudyError::Failed(why),
        })
    }
}
