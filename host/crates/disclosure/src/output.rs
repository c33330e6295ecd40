//! Builds the released batch once suppression is decided: rounded counts, recomputed
//! shares, dimensions untouched.

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, FieldRef, Schema};

use crate::DisclosureError;
use crate::counts::round;
use crate::layout::{Kind, Layout};
use crate::metadata::{REDACTED, REDACTED_NULL};
use crate::suppress::Grid;

/// The released table and the number of share cells nulled by redaction.
pub(crate) fn build(
    table: &RecordBatch,
    layout: &Layout,
    grid: &Grid,
    rounding: u64,
) -> Result<(RecordBatch, u64), DisclosureError> {
    let schema = table.schema();
    let rows = table.num_rows();
    let released = |slot: usize, row: usize| -> Option<u64> {
        (!grid.is_redacted(slot, row)).then(|| round(grid.value(slot, row), rounding))
    };

    let mut fields: Vec<FieldRef> = Vec::with_capacity(layout.kinds.len());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(layout.kinds.len());
    let mut shares_redacted = 0u64;
    for (index, kind) in layout.kinds.iter().enumerate() {
        let field = schema.field(index);
        match *kind {
            Kind::Dimension => {
                fields.push(schema.fields()[index].clone());
                columns.push(table.column(index).clone());
            }
            Kind::Count { slot } => {
                let values: UInt64Array = (0..rows).map(|row| released(slot, row)).collect();
                fields.push(redactable(field, DataType::UInt64));
                columns.push(Arc::new(values));
            }
            Kind::Share {
                numerator,
                denominator,
            } => {
                // Recomputed from the released (rounded) counts, never taken from the
                // study: a share computed from exact counts would undo the rounding
                // (and would carry the value of a redacted numerator).
                let values: Float64Array = (0..rows)
                    .map(
                        |row| match (released(numerator, row), released(denominator, row)) {
                            (Some(_), Some(0)) => None,
                            (Some(n), Some(d)) => Some(n as f64 / d as f64),
                            _ => {
                                shares_redacted += 1;
                                None
                            }
                        },
                    )
                    .collect();
                fields.push(redactable(field, DataType::Float64));
                columns.push(Arc::new(values));
            }
        }
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    Ok((
        RecordBatch::try_new(Arc::new(schema), columns)?,
        shares_redacted,
    ))
}

/// The released field of a count or share column: new type, nullable, the study's
/// metadata kept, and `carrel.redacted = "null"` so readers know what a null means.
fn redactable(field: &Field, data_type: DataType) -> FieldRef {
    let mut metadata = field.metadata().clone();
    metadata.insert(REDACTED.to_owned(), REDACTED_NULL.to_owned());
    Arc::new(Field::new(field.name(), data_type, true).with_metadata(metadata))
}
