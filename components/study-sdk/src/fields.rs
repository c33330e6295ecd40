//! Output fields with the metadata the host's disclosure control reads.
//!
//! The host treats a column by its Arrow field metadata: `carrel.kind = "count"` is a
//! count of consultations (small ones are suppressed, all are rounded); `carrel.kind =
//! "share"` with `carrel.numerator` and `carrel.denominator` is a share recomputed from
//! the two released counts; a column without `carrel.kind` is a dimension.

use std::collections::HashMap;

use arrow_schema::{DataType, Field};

/// Metadata key of a column's kind.
pub const KIND: &str = "carrel.kind";
/// Metadata key of a share's numerator column.
pub const NUMERATOR: &str = "carrel.numerator";
/// Metadata key of a share's denominator column.
pub const DENOMINATOR: &str = "carrel.denominator";
/// Metadata key of a count that is the row total of other counts (`"a,b"`).
pub const TOTAL_OF: &str = "carrel.total_of";

/// A count column: `UInt64`, not null, `carrel.kind = "count"`.
pub fn count_field(name: &str) -> Field {
    Field::new(name, DataType::UInt64, false)
        .with_metadata(HashMap::from([(KIND.to_owned(), "count".to_owned())]))
}

/// A count that is the row total of the counts `parts` (`carrel.total_of`), so that
/// disclosure control can suppress consistently.
pub fn total_field(name: &str, parts: &[&str]) -> Field {
    Field::new(name, DataType::UInt64, false).with_metadata(HashMap::from([
        (KIND.to_owned(), "count".to_owned()),
        (TOTAL_OF.to_owned(), parts.join(",")),
    ]))
}

/// A share column: `Float64`, null when the denominator is 0, `carrel.kind = "share"`
/// with the names of its numerator and denominator count columns.
pub fn share_field(name: &str, numerator: &str, denominator: &str) -> Field {
    Field::new(name, DataType::Float64, true).with_metadata(HashMap::from([
        (KIND.to_owned(), "share".to_owned()),
        (NUMERATOR.to_owned(), numerator.to_owned()),
        (DENOMINATOR.to_owned(), denominator.to_owned()),
    ]))
}

/// A dimension column (no `carrel.kind`), not null.
pub fn dimension_field(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_carry_their_kind() {
        let count = count_field("ili");
        assert_eq!(count.data_type(), &DataType::UInt64);
        assert_eq!(count.metadata()[KIND], "count");
        let share = share_field("ili_share", "ili", "coded");
        assert_eq!(share.data_type(), &DataType::Float64);
        assert_eq!(share.metadata()[KIND], "share");
        assert_eq!(share.metadata()[NUMERATOR], "ili");
        assert_eq!(share.metadata()[DENOMINATOR], "coded");
        let total = total_field("all", &["a", "b"]);
        assert_eq!(total.metadata()[TOTAL_OF], "a,b");
        let week = dimension_field("week", DataType::Utf8);
        assert!(week.metadata().is_empty());
        assert!(!week.is_nullable());
    }
}
