//! Activity: consultations by association, ISO week and visit type (`home`, `centre`,
//! `tele`, `other`).
//!
//! Reads `association`, `date` and `visit_type` of dataset `consultations`.
//!
//! Parameters, both optional: `from`, `to` (`YYYY-MM-DD`), only consultations dated in
//! `from..=to`.
//!
//! Output: `association`, `week`, `visit_type` (dimensions), `consultations` (count).

use carrel_study_sdk::prelude::*;

/// The columns read, and the only ones the manifest needs to grant.
pub const COLUMNS: [&str; 3] = ["association", "date", "visit_type"];

struct Activity;

impl Study for Activity {
    fn run(params: &Params) -> Result<RecordBatch, StudyError> {
        params.expect_only(&["from", "to"])?;
        let (from, to) = (params.date("from")?, params.date("to")?);
        let batches = open_between("consultations", &COLUMNS, "date", from, to)?;
        let table = count(batches)?;
        log::info(format!("{} rows", table.num_rows()));
        Ok(table)
    }
}

carrel_study_sdk::export_study!(Activity);

/// The table over `batches` (of at least [`COLUMNS`]). Separate from `run` so it can
/// be tested without a host.
pub fn count(
    batches: impl IntoIterator<Item = Result<RecordBatch, StudyError>>,
) -> Result<RecordBatch, StudyError> {
    let mut table = CountTable::new(&["association", "week", "visit_type"], &["consultations"])
        .order("visit_type", &["home", "centre", "tele", "other"]);
    // Week labels are computed once per week, not once per row.
    let mut weeks = WeekLabels::new();
    for batch in batches {
        let batch = batch?;
        let associations = column::<StringArray>(&batch, "association")?;
        let dates = column::<Date32Array>(&batch, "date")?;
        let visit_types = column::<StringArray>(&batch, "visit_type")?;
        for row in 0..batch.num_rows() {
            let key = [
                associations.value(row),
                weeks.label(dates.value(row)),
                visit_types.value(row),
            ];
            table.add(&key, &[1]);
        }
    }
    table.into_batch()
}
