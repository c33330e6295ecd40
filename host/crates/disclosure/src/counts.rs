//! Reading count cells out of any Arrow integer type, and rounding them.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray};
use arrow_schema::DataType;

use crate::DisclosureError;

/// The counts of one column as u64, refusing nulls and negatives with the row that has
/// them. The column's type was checked by the layout; an unexpected type here is still
/// an error rather than a panic.
pub(crate) fn read(column: &str, array: &dyn Array) -> Result<Vec<u64>, DisclosureError> {
    match array.data_type() {
        DataType::Int8 => collect(column, array.as_primitive::<Int8Type>()),
        DataType::Int16 => collect(column, array.as_primitive::<Int16Type>()),
        DataType::Int32 => collect(column, array.as_primitive::<Int32Type>()),
        DataType::Int64 => collect(column, array.as_primitive::<Int64Type>()),
        DataType::UInt8 => collect(column, array.as_primitive::<UInt8Type>()),
        DataType::UInt16 => collect(column, array.as_primitive::<UInt16Type>()),
        DataType::UInt32 => collect(column, array.as_primitive::<UInt32Type>()),
        DataType::UInt64 => collect(column, array.as_primitive::<UInt64Type>()),
        other => Err(DisclosureError::WrongType {
            column: column.to_owned(),
            kind: crate::metadata::COUNT,
            data_type: other.to_string(),
        }),
    }
}

fn collect<T>(column: &str, array: &PrimitiveArray<T>) -> Result<Vec<u64>, DisclosureError>
where
    T: ArrowPrimitiveType,
    T::Native: Into<i128>,
{
    let mut out = Vec::with_capacity(array.len());
    for row in 0..array.len() {
        if array.is_null(row) {
            return Err(DisclosureError::NullCount {
                column: column.to_owned(),
                row,
            });
        }
        // Every Arrow integer fits in i128, so this is lossless; a negative value only
        // comes from a signed type and so fits in i64 for the message.
        let value: i128 = array.value(row).into();
        let count = u64::try_from(value).map_err(|_| DisclosureError::NegativeCount {
            column: column.to_owned(),
            row,
            value: i64::try_from(value).unwrap_or(i64::MIN),
        })?;
        out.push(count);
    }
    Ok(out)
}

/// Rounds `value` to the nearest multiple of `base`, halves up (12 → 10, 13 → 15 for
/// base 5). A base of 0 or 1 leaves the value alone (0 is refused by policy validation
/// earlier). If rounding up would overflow u64, the value is rounded down instead: the
/// result is still a multiple of `base`, which is what hides the true count.
pub(crate) fn round(value: u64, base: u64) -> u64 {
    if base <= 1 {
        return value;
    }
    let remainder = value % base;
    let down = value - remainder;
    // `remainder >= base - remainder` is `2 * remainder >= base` without overflow.
    if remainder >= base - remainder {
        down.checked_add(base).unwrap_or(down)
    } else {
        down
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float64Array, Int8Array, Int64Array, UInt64Array};

    use super::*;

    #[test]
    fn rounding_to_5_goes_to_the_nearest_multiple_with_halves_up() {
        let cases = [
            (0, 0),
            (12, 10),
            (13, 15),
            (10, 10),
            (8, 10),
            (17, 15),
            (22, 20),
        ];
        for (value, expected) in cases {
            assert_eq!(round(value, 5), expected, "round({value}, 5)");
        }
        assert_eq!(round(15, 10), 20, "exact half rounds up");
        assert_eq!(round(14, 10), 10);
    }

    #[test]
    fn rounding_to_1_changes_nothing() {
        for value in [0, 1, 7, 13, u64::MAX] {
            assert_eq!(round(value, 1), value);
        }
    }

    #[test]
    fn rounding_near_u64_max_does_not_overflow() {
        assert_eq!(round(u64::MAX, 10), u64::MAX - u64::MAX % 10);
        assert_eq!(round(u64::MAX, u64::MAX), u64::MAX);
        assert_eq!(round(u64::MAX - 1, u64::MAX), u64::MAX);
        assert_eq!(round(3, u64::MAX), 0);
    }

    #[test]
    fn signed_and_unsigned_integers_read_as_u64() {
        let small: ArrayRef = Arc::new(Int8Array::from(vec![0, 5, 127]));
        assert_eq!(read("n", &small).unwrap(), vec![0, 5, 127]);
        let big: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX]));
        assert_eq!(read("n", &big).unwrap(), vec![u64::MAX]);
    }

    #[test]
    fn a_negative_count_names_column_and_row() {
        let array: ArrayRef = Arc::new(Int64Array::from(vec![3, i64::MIN]));
        let error = read("cases", &array).unwrap_err();
        assert!(matches!(
            error,
            DisclosureError::NegativeCount { ref column, row: 1, value: i64::MIN } if column == "cases"
        ));
    }

    #[test]
    fn a_null_count_names_column_and_row() {
        let array: ArrayRef = Arc::new(Int64Array::from(vec![Some(3), None]));
        let error = read("cases", &array).unwrap_err();
        assert!(
            matches!(error, DisclosureError::NullCount { ref column, row: 1 } if column == "cases")
        );
    }

    #[test]
    fn a_float_array_is_a_type_error_not_a_panic() {
        let array: ArrayRef = Arc::new(Float64Array::from(vec![1.0]));
        assert!(matches!(
            read("cases", &array),
            Err(DisclosureError::WrongType { .. })
        ));
    }
}
