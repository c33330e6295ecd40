//! Age classes and diagnosis codes as surveillance counts them.
//!
//! The `diagnoses` column holds, per consultation, a list of codes: ICD-10 (CIM-10)
//! codes upper-case without dot (`J11`, `J111` for J11.1), and codes of any other
//! system as `system|code`. A consultation with no code has an empty list.

use arrow_array::cast::AsArray;
use arrow_array::{Array, GenericListArray, RecordBatch, StringArray};
use arrow_schema::DataType;

use crate::error::StudyError;

/// The surveillance age classes, youngest first.
pub const AGE_CLASSES: [&str; 4] = ["<2", "2-14", "15-74", "75+"];

/// The label used for a missing value (an unknown age, a département outside France).
pub const UNKNOWN: &str = "unknown";

/// The index in [`AGE_CLASSES`] of an age in whole years.
pub fn age_class_index(age: u8) -> usize {
    match age {
        0..=1 => 0,
        2..=14 => 1,
        15..=74 => 2,
        _ => 3,
    }
}

/// The surveillance age class of an age in whole years: `<2`, `2-14`, `15-74`, `75+`.
pub fn age_class(age: u8) -> &'static str {
    AGE_CLASSES[age_class_index(age)]
}

/// Whether a stored code is an ICD-10 code (any other system is stored as
/// `system|code`).
#[inline]
pub fn is_icd10_code(code: &str) -> bool {
    !code.is_empty() && !code.contains('|')
}

/// Whether at least one of the codes is an ICD-10 code: the consultation "has a coded
/// diagnosis", the denominator of surveillance shares.
pub fn has_icd10_code<'a>(diagnoses: impl IntoIterator<Item = &'a str>) -> bool {
    diagnoses.into_iter().any(is_icd10_code)
}

/// Whether one of the codes starts with one of the ICD-10 prefixes, as stored (upper
/// case, no dot): `has_code_prefix(codes, &["J10", "J11"])` is true for `J11` and
/// `J111` (J11.1), false for `J12` and for `http://example.org|J11`.
#[inline]
pub fn has_code_prefix<'a>(
    diagnoses: impl IntoIterator<Item = &'a str>,
    prefixes: &[&str],
) -> bool {
    diagnoses
        .into_iter()
        .any(|code| prefixes.iter().any(|prefix| code.starts_with(prefix)))
}

/// A `list<utf8>` column (such as `diagnoses`) read row by row without allocating:
/// `lists.row(i)` iterates over the strings of row `i` (none for a null row).
#[derive(Debug, Clone, Copy)]
pub struct StringLists<'a> {
    offsets: &'a [i32],
    values: &'a StringArray,
    list: &'a GenericListArray<i32>,
}

impl<'a> StringLists<'a> {
    /// The column `name` of `batch`, which must be a `list<utf8>`.
    pub fn new(batch: &'a RecordBatch, name: &str) -> Result<StringLists<'a>, StudyError> {
        let column = crate::columns::column_ref(batch, name)?;
        Self::from_array(column.as_ref())
            .ok_or_else(|| crate::columns::wrong_type(name, column.data_type(), "list<utf8>"))
    }

    /// A `list<utf8>` array, `None` for any other type.
    pub fn from_array(array: &'a dyn Array) -> Option<StringLists<'a>> {
        let list = array.as_list_opt::<i32>()?;
        if list.values().data_type() != &DataType::Utf8 {
            return None;
        }
        Some(StringLists {
            offsets: list.value_offsets(),
            values: list.values().as_string::<i32>(),
            list,
        })
    }

    /// The strings of row `row` (empty for a null row; null items are skipped).
    #[inline]
    pub fn row(&self, row: usize) -> impl Iterator<Item = &'a str> + 'a {
        let (start, end) = if self.list.is_null(row) {
            (0, 0)
        } else {
            (self.offsets[row] as usize, self.offsets[row + 1] as usize)
        };
        let values = self.values;
        let items_may_be_null = values.null_count() > 0;
        (start..end)
            .filter(move |item| !(items_may_be_null && values.is_null(*item)))
            .map(move |item| values.value(item))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{ArrayRef, UInt8Array};

    use super::*;

    #[test]
    fn age_classes_match_the_surveillance_bounds() {
        let expected = [
            (0, "<2"),
            (1, "<2"),
            (2, "2-14"),
            (14, "2-14"),
            (15, "15-74"),
            (74, "15-74"),
            (75, "75+"),
            (90, "75+"),
            (255, "75+"),
        ];
        for (age, class) in expected {
            assert_eq!(age_class(age), class, "{age}");
        }
    }

    #[test]
    fn code_prefixes_match_stored_icd10_codes_only() {
        let codes = ["R50", "J111", "http://snomed.info/sct|J11"];
        assert!(has_code_prefix(codes, &["J10", "J11"]));
        assert!(!has_code_prefix(["J12", "|J11", "x|J10"], &["J10", "J11"]));
        assert!(!has_code_prefix([], &["J10"]));
        assert!(has_icd10_code(["x|1", "A09"]));
        assert!(!has_icd10_code(["x|1", "|J11"]));
        assert!(!has_icd10_code([]));
    }

    #[test]
    fn string_lists_are_read_row_by_row() {
        let mut builder = ListBuilder::new(StringBuilder::new());
        builder.values().append_value("J11");
        builder.values().append_value("R50");
        builder.append(true);
        builder.append(true);
        builder.append(false);
        builder.values().append_value("A09");
        builder.values().append_null();
        builder.append(true);
        let lists: ArrayRef = Arc::new(builder.finish());
        let ages: ArrayRef = Arc::new(UInt8Array::from(vec![1, 2, 3, 4]));
        let batch =
            RecordBatch::try_from_iter([("diagnoses", lists), ("age_years", ages)]).unwrap();
        let lists = StringLists::new(&batch, "diagnoses").unwrap();
        assert_eq!(lists.len(), 4);
        assert_eq!(lists.row(0).collect::<Vec<_>>(), ["J11", "R50"]);
        assert_eq!(lists.row(1).count(), 0);
        assert_eq!(lists.row(2).count(), 0);
        assert_eq!(lists.row(3).collect::<Vec<_>>(), ["A09"]);
        let error = StringLists::new(&batch, "age_years").unwrap_err();
        assert_eq!(
            error.message(),
            "column `age_years` is UInt8, expected list<utf8>"
        );
        assert!(StringLists::new(&batch, "nope").is_err());
    }
}
