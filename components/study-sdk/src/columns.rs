//! Columns of a batch by name, as the Arrow array type the study expects.

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use crate::error::StudyError;

/// The column `name` of `batch`, or a failure naming the columns it has.
pub fn column_ref<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, StudyError> {
    batch.column_by_name(name).ok_or_else(|| {
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        StudyError::failed(format!(
            "the batch has no column `{name}` (it has {})",
            names.join(", ")
        ))
    })
}

/// The column `name` of `batch` as a `T`, such as `Date32Array`, `UInt8Array`,
/// `StringArray`: `let dates = column::<Date32Array>(&batch, "date")?;`.
pub fn column<'a, T: Array + 'static>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a T, StudyError> {
    let array = column_ref(batch, name)?;
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| wrong_type(name, array.data_type(), &short_type_name::<T>()))
}

pub(crate) fn wrong_type(name: &str, found: &DataType, expected: &str) -> StudyError {
    StudyError::failed(format!("column `{name}` is {found}, expected {expected}"))
}

/// `PrimitiveArray<Date32Type>` rather than the full paths.
fn short_type_name<T>() -> String {
    let mut short = String::new();
    let mut segment_start = 0;
    let mut chars = std::any::type_name::<T>().chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            short.truncate(segment_start);
        } else {
            short.push(c);
            if !(c.is_alphanumeric() || c == '_') {
                segment_start = short.len();
            }
        }
    }
    short
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Date32Array, StringArray};

    use super::*;

    #[test]
    fn columns_are_found_by_name_and_type() {
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![19_737]));
        let batch = RecordBatch::try_from_iter([("date", dates)]).unwrap();
        assert_eq!(
            column::<Date32Array>(&batch, "date").unwrap().value(0),
            19_737
        );
        let error = column::<StringArray>(&batch, "date").unwrap_err();
        assert_eq!(
            error.message(),
            "column `date` is Date32, expected GenericByteArray<GenericStringType<i32>>"
        );
        let error = column::<StringArray>(&batch, "sex").unwrap_err();
        assert_eq!(
            error.message(),
            "the batch has no column `sex` (it has date)"
        );
    }
}
