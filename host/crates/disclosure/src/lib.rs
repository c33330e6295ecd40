//! Statistical disclosure control of study outputs.
//!
//! A study (untrusted Wasm code) returns one aggregate table. Before anything leaves
//! the warehouse the host passes it through [`apply`], which either refuses it or
//! returns the table that may be released and a [`Report`] of what was redacted.
//!
//! # What the study declares
//!
//! Each column says what it is in its Arrow field metadata (keys in [`metadata`]):
//!
//! * `carrel.kind = "count"`: an integer column of counts. Released as nullable
//!   `UInt64`; null means redacted. Optionally `carrel.total_of = "a,b,c"`: in every
//!   row this count is the sum of those count columns. Optionally
//!   `carrel.patients = "m_patients"`: that count column holds, row by row, the
//!   distinct patients behind this count (consultations, say). It must be another
//!   count column, and at most one column may name it.
//! * `carrel.kind = "share"` with `carrel.numerator` and `carrel.denominator` naming
//!   two count columns: released as nullable `Float64`, *recomputed* from the released
//!   numerator and denominator (so neither rounding nor redaction can be undone from
//!   it); null when either is redacted or the denominator is 0.
//! * no `carrel.kind`: a dimension (region, month, age band...), released unchanged.
//!
//! Released count and share fields keep their metadata and gain
//! `carrel.redacted = "null"`.
//!
//! # Rules, in order
//!
//! 1. **Caps.** More than [`Policy::max_rows`] rows is refused; the caller checks the
//!    encoded size with [`check_bytes`].
//! 2. **Shape.** A table without any count column is refused: its rows are a list of
//!    the distinct combinations of dimension values that occur, each a count of at least
//!    one that cannot be suppressed (think of a list of the rare diagnoses seen in a
//!    small town). Row-level output is refused: at least 0.8 rows per distinct patient
//!    read (for 20 patients or more), or at least 0.5 rows per row read (for 100 rows
//!    or more).
//! 3. **Primary suppression.** Every count from 1 to `min_count - 1` is redacted. 0 is
//!    released: an empty cell is not a person. A count and its `carrel.patients` cell
//!    are redacted together: 20 consultations of 3 patients are withheld because 3
//!    patients are few, and the 3 with them.
//! 4. **Secondary suppression**, until nothing changes: a redacted cell must not be
//!    recoverable by subtraction, so wherever exactly one cell of a known sum is
//!    redacted, the smallest other cell is redacted too (non-zero cells first), and
//!    with it its `carrel.patients` partner. Known sums are the margins along each
//!    dimension, which we assume the researcher can derive even though the table does
//!    not show them, and the `carrel.total_of` rows. A partner redacted with a cell is
//!    counted as that cell is, primary or secondary, in the [`Report`].
//! 5. **Rounding.** Every released count is rounded to the nearest multiple of
//!    [`Policy::rounding`], halves up.
//! 6. **Shares** are recomputed from the rounded counts.
//!
//! A table with no rows is released as it is (with the released column types), after
//! the same metadata checks: a malformed study should fail on an empty synthetic
//! dataset too.
//!
//! # Example
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//!
//! use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
//! use arrow_schema::{DataType, Field, Schema};
//! use carrel_disclosure::{Policy, ReadContext, apply, metadata};
//!
//! let kind = HashMap::from([(metadata::KIND.to_owned(), metadata::COUNT.to_owned())]);
//! let schema = Schema::new(vec![
//!     Field::new("region", DataType::Utf8, false),
//!     Field::new("cases", DataType::Int64, false).with_metadata(kind),
//! ]);
//! let columns: Vec<ArrayRef> = vec![
//!     Arc::new(StringArray::from(vec!["north", "south", "east"])),
//!     Arc::new(Int64Array::from(vec![3, 12, 40])),
//! ];
//! let table = RecordBatch::try_new(Arc::new(schema), columns).unwrap();
//!
//! let read = ReadContext { rows_read: 10_000, distinct_patients: Some(2_000) };
//! let released = apply(&table, &Policy::default(), &read).unwrap();
//! // 3 is redacted, 12 with it (the column total would give it away), 40 is rounded.
//! assert_eq!(released.report.total_redacted(), 2);
//! assert_eq!(released.table.column(1).null_count(), 2);
//! ```

mod counts;
mod error;
mod groups;
mod layout;
pub mod metadata;
pub mod noise;
mod output;
mod policy;
mod report;
mod suppress;

use arrow_array::RecordBatch;

pub use error::DisclosureError;
pub use policy::{Policy, check_bytes};
pub use report::{CountReport, Perturbation, Report};

use layout::Layout;
use suppress::Grid;

/// What the study read, as counted by the host while it served the study's scans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadContext {
    /// Rows the study read from its datasets.
    pub rows_read: u64,
    /// Distinct patients among them, when the host can tell.
    pub distinct_patients: Option<u64>,
}

/// A table that may be released, and what was done to it.
#[derive(Debug, Clone)]
pub struct Released {
    /// The table to release: same columns in the same order, counts as nullable
    /// `UInt64`, shares as nullable `Float64`, dimensions untouched.
    pub table: RecordBatch,
    /// What was redacted, for the run record and the audit log.
    pub report: Report,
}

/// Tables with at least this many distinct patients behind them are checked for one
/// row per patient; below it the ratio says little.
const PATIENT_CHECK_FROM: u64 = 20;
/// Tables built from at least this many rows are checked for one row per input row.
const ROW_CHECK_FROM: u64 = 100;

/// The cell key of every count cell, by count column name, one per row: the wrapping sum
/// of the keys of the records (or patients) the count counts. See [`noise`].
pub type CellKeys = std::collections::HashMap<String, Vec<u64>>;

/// Applies `policy` to a study's output table. See the crate documentation for the
/// rules. Never panics on a malformed or hostile table: it is an error instead.
pub fn apply(
    table: &RecordBatch,
    policy: &Policy,
    read: &ReadContext,
) -> Result<Released, DisclosureError> {
    apply_with(table, policy, read, None)
}

/// [`apply`] with cell-key perturbation first, for a table whose counts the caller made
/// itself and whose cell keys it knows: every count gets the noise its cell key and value
/// draw ([`noise::perturb`], at [`Policy::noise_scale`]); then every count below
/// `min_count`, a zero included, is withheld (so that a 0 cannot be told from a small
/// count), secondary suppression and rounding follow on the noisy counts, and rows whose
/// counts are all withheld are left out (a row's presence would say that someone is in
/// it). The report says which perturbation was applied.
pub fn apply_perturbed(
    table: &RecordBatch,
    policy: &Policy,
    read: &ReadContext,
    keys: &CellKeys,
) -> Result<Released, DisclosureError> {
    apply_with(table, policy, read, Some(keys))
}

fn apply_with(
    table: &RecordBatch,
    policy: &Policy,
    read: &ReadContext,
    keys: Option<&CellKeys>,
) -> Result<Released, DisclosureError> {
    policy.validate()?;
    let rows = table.num_rows();
    if rows > policy.max_rows {
        return Err(DisclosureError::Refused(format!(
            "output has {rows} rows, above max_rows {}",
            policy.max_rows
        )));
    }
    let layout = Layout::parse(table.schema_ref())?;
    if layout.counts.is_empty() {
        return Err(DisclosureError::Refused(
            "output has no count column (carrel.kind = \"count\"); a table of dimension \
             values alone cannot be protected"
                .into(),
        ));
    }
    refuse_row_level(rows, read)?;

    let schema = table.schema();
    let names: Vec<String> = layout
        .counts
        .iter()
        .map(|&column| schema.field(column).name().clone())
        .collect();
    let values = layout
        .counts
        .iter()
        .zip(&names)
        .map(|(&column, name)| counts::read(name, table.column(column).as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let perturbation = keys.map(|_| Perturbation {
        version: noise::PERTURBATION_VERSION.to_owned(),
        scale: policy.noise_scale,
    });
    let values = match keys {
        None => values,
        Some(keys) => perturb_all(values, &names, keys, policy.noise_scale)?,
    };
    let mut grid = Grid::new(rows, values);
    let margin_groups = groups::margin_groups(table, &layout.dimensions)?;
    suppress::suppress(
        &mut grid,
        policy.min_count,
        keys.is_some(),
        &margin_groups,
        &layout.totals,
        &layout.links,
    );
    // In a perturbed table, a row whose every count is withheld is left out: its presence
    // would say that someone is in it. What the report says is about the rows released.
    let (table, grid, rows_withheld) = match keys {
        Some(_) => {
            let keep = grid.rows_with_a_released_count();
            let withheld = keep.iter().filter(|&&k| !k).count();
            let mask = arrow_array::BooleanArray::from(keep.clone());
            let kept = arrow_select::filter::filter_record_batch(table, &mask)?;
            (
                std::borrow::Cow::Owned(kept),
                grid.retain_rows(&keep),
                withheld,
            )
        }
        None => (std::borrow::Cow::Borrowed(table), grid, 0),
    };
    let tally = grid.tally();
    let (released, shares_redacted) = output::build(&table, &layout, &grid, policy.rounding)?;

    let counts = names
        .into_iter()
        .enumerate()
        .map(|(slot, column)| CountReport {
            column,
            primary: tally.primary[slot],
            secondary: tally.secondary[slot],
        })
        .collect();
    Ok(Released {
        table: released,
        report: Report {
            rows: rows - rows_withheld,
            rows_withheld,
            counts,
            shares_redacted,
            perturbation,
        },
    })
}

/// Every count of `values` perturbed from its cell key in `keys`.
fn perturb_all(
    values: Vec<Vec<u64>>,
    names: &[String],
    keys: &CellKeys,
    scale: f64,
) -> Result<Vec<Vec<u64>>, DisclosureError> {
    values
        .into_iter()
        .zip(names)
        .map(|(column, name)| {
            let column_keys = keys
                .get(name)
                .filter(|k| k.len() == column.len())
                .ok_or_else(|| {
                    DisclosureError::Refused(format!("no cell key for every row of `{name}`"))
                })?;
            Ok(column
                .iter()
                .zip(column_keys)
                .map(|(&count, &key)| noise::perturb(scale, key, count))
                .collect())
        })
        .collect()
}

/// Refuses output that looks like one row per patient or per input row: aggregation
/// that does not aggregate. Integer arithmetic (in u128) so that no ratio is rounded in
/// the study's favour and no product overflows.
fn refuse_row_level(rows: usize, read: &ReadContext) -> Result<(), DisclosureError> {
    let rows = rows as u128;
    if let Some(patients) = read.distinct_patients
        && patients >= PATIENT_CHECK_FROM
        && rows * 5 >= u128::from(patients) * 4
    {
        // The numbers read are not in the message: they are exact, unrounded counts of
        // the data, and the message goes back to the researcher.
        return Err(DisclosureError::Refused(format!(
            "one row per patient: {rows} rows is at least 0.8 rows per distinct patient read"
        )));
    }
    if read.rows_read >= ROW_CHECK_FROM && rows * 2 >= u128::from(read.rows_read) {
        return Err(DisclosureError::Refused(format!(
            "row-level output: {rows} rows is at least 0.5 rows per row read"
        )));
    }
    Ok(())
}
