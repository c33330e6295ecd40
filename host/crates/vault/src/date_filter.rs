//! Date-range scans: per-segment min/max of every date32 column, recorded at append, let
//! a scan skip segments outside the range without opening them; rows of the segments it
//! does read are filtered to the range.

use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::DataType;
use rusqlite::{Connection, params};

use crate::error::{Result, VaultError};

/// Rows whose `column` (a date32 column, in days since 1970-01-01) lies in `from..=to`.
/// Rows where it is null never match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRange {
    pub column: String,
    pub from: i32,
    pub to: i32,
}

/// Options of [`crate::Vault::scan_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanOptions {
    /// The range's column must be one of the requested columns: its group is decrypted
    /// like any requested column's, never behind the caller's back.
    pub date_range: Option<DateRange>,
}

/// `(column, min, max)` for every date32 column of `batch` with at least one value.
pub(crate) fn date_ranges(batch: &RecordBatch) -> Vec<(String, i32, i32)> {
    let schema = batch.schema();
    schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(field, _)| field.data_type() == &DataType::Date32)
        .filter_map(|(field, column)| {
            let values = column.as_primitive::<Date32Type>();
            let min = values.iter().flatten().min()?;
            let max = values.iter().flatten().max()?;
            Some((field.name().clone(), min, max))
        })
        .collect()
}

pub(crate) fn record_ranges(
    conn: &Connection,
    segment_id: &str,
    ranges: &[(String, i32, i32)],
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO segment_date_ranges (segment_id, column_name, min_days, max_days) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (column, min, max) in ranges {
        insert.execute(params![segment_id, column, min, max])?;
    }
    Ok(())
}

/// Whether the segment's recorded dates overlap the range, so that rows may match.
pub(crate) fn may_match(conn: &Connection, segment_id: &str, range: &DateRange) -> Result<bool> {
    use rusqlite::OptionalExtension;
    let recorded: Option<(i32, i32)> = conn
        .prepare_cached("SELECT min_days, max_days FROM segment_date_ranges WHERE segment_id = ?1 AND column_name = ?2")?
        .query_row(params![segment_id, range.column], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    // No record: the column held only nulls (or did not exist yet), so nothing matches.
    Ok(recorded.is_some_and(|(min, max)| max >= range.from && min <= range.to))
}

/// Checks that the range's column is requested (at `index`) and is a date32 column.
pub(crate) fn check_range(
    dataset: &str,
    range: &DateRange,
    requested: &[&str],
    data_type: Option<&DataType>,
) -> Result<usize> {
    let problem = |problem: &str| VaultError::InvalidDateRange {
        dataset: dataset.to_owned(),
        column: range.column.clone(),
        problem: problem.to_owned(),
    };
    let index = requested
        .iter()
        .position(|c| *c == range.column)
        .ok_or_else(|| problem("must be one of the requested columns"))?;
    if data_type != Some(&DataType::Date32) {
        return Err(problem("is not a date32 column"));
    }
    if range.from > range.to {
        return Err(problem("range starts after it ends"));
    }
    Ok(index)
}

/// Keeps the rows of `batch` whose column `index` lies in the range.
pub(crate) fn filter_rows(
    batch: &RecordBatch,
    index: usize,
    range: &DateRange,
) -> Result<RecordBatch> {
    let dates = batch.column(index).as_primitive::<Date32Type>();
    let keep: BooleanArray = dates
        .iter()
        .map(|d| Some(d.is_some_and(|d| (range.from..=range.to).contains(&d))))
        .collect();
    Ok(arrow_select::filter::filter_record_batch(batch, &keep)?)
}
