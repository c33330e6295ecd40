//! The canonical (pseudonymised) consultation schema of ARCHITECTURE.md, and the column
//! groups the warehouse encrypts its columns in.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};

/// Nullability, decided once here:
/// - `age_years` is null when the birth date is missing, partial in a way that leaves
///   two possible ages, or after the consultation;
/// - `departement` is null when there is no French postcode (no address, a foreign one
///   such as Synthea's US zip codes, or one that names no département);
/// - every other column always has a value: `hour` is 0 for a date-only start, `sex` is
///   `U` when unknown, `visit_type` `other` and `outcome` `unknown`, and `diagnoses` is
///   an empty list (never null, and its items never null) when nothing was coded.
pub fn canonical_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("consultation_id", DataType::Utf8, false),
        Field::new("patient_id", DataType::Utf8, false),
        Field::new("association", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("hour", DataType::UInt8, false),
        Field::new("age_years", DataType::UInt8, true),
        Field::new("sex", DataType::Utf8, false),
        Field::new("departement", DataType::Utf8, true),
        Field::new("visit_type", DataType::Utf8, false),
        Field::new("diagnoses", DataType::List(diagnosis_item_field()), false),
        Field::new("outcome", DataType::Utf8, false),
    ]))
}

/// The item field of the `diagnoses` list: named `item` as Arrow's default, not null.
pub fn diagnosis_item_field() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Utf8, false))
}

/// Column groups, each encrypted under its own data key so that a study granted some
/// groups cannot decrypt the others. The split is carrel-vault's
/// (`consultation_column_groups`): pseudonymous keys alone, because they are what
/// links rows; when and how the consultation happened; who the patient is in coarse
/// terms (the quasi-identifiers); and the clinical content.
pub const COLUMN_GROUPS: [(&str, &[&str]); 4] = [
    ("identifiers", &["consultation_id", "patient_id"]),
    ("encounter", &["association", "date", "hour", "visit_type"]),
    ("demographics", &["age_years", "sex", "departement"]),
    ("clinical", &["diagnoses", "outcome"]),
];

/// Each group with its columns (see [`COLUMN_GROUPS`]).
pub fn column_groups() -> &'static [(&'static str, &'static [&'static str])] {
    &COLUMN_GROUPS
}

/// The group a canonical column belongs to.
pub fn group_of(column: &str) -> Option<&'static str> {
    COLUMN_GROUPS
        .iter()
        .find(|(_, columns)| columns.contains(&column))
        .map(|(group, _)| *group)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_in_exactly_one_group() {
        let schema = canonical_schema();
        for field in schema.fields() {
            let holders = COLUMN_GROUPS
                .iter()
                .filter(|(_, columns)| columns.contains(&field.name().as_str()))
                .count();
            assert_eq!(holders, 1, "{}", field.name());
        }
        let grouped: usize = COLUMN_GROUPS.iter().map(|(_, columns)| columns.len()).sum();
        assert_eq!(grouped, schema.fields().len());
        assert_eq!(group_of("age_years"), Some("demographics"));
        assert_eq!(group_of("nir"), None);
    }
}
