//! The canonical (pseudonymised) consultation schema of ARCHITECTURE.md and the column
//! groups its columns are encrypted in.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};

use crate::dataset::ColumnGroups;

/// Pseudonymous keys of the row: only ever joined, never shown.
pub const IDENTIFIERS: &str = "identifiers";
/// Who, when and how the consultation took place.
pub const ENCOUNTER: &str = "encounter";
/// Age, sex and place of the patient.
pub const DEMOGRAPHICS: &str = "demographics";
/// Diagnoses and outcome.
pub const CLINICAL: &str = "clinical";

/// One row per consultation. `hour`, `age_years` and `departement` are nullable (not
/// every source provides them); `diagnoses` is an empty list when nothing was coded.
pub fn consultation_schema() -> Schema {
    Schema::new(vec![
        Field::new("consultation_id", DataType::Utf8, false),
        Field::new("patient_id", DataType::Utf8, false),
        Field::new("association", DataType::Utf8, false),
        Field::new("date", DataType::Date32, false),
        Field::new("hour", DataType::UInt8, true),
        Field::new("age_years", DataType::UInt8, true),
        Field::new("sex", DataType::Utf8, false),
        Field::new("departement", DataType::Utf8, true),
        Field::new("visit_type", DataType::Utf8, false),
        Field::new(
            "diagnoses",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            false,
        ),
        Field::new("outcome", DataType::Utf8, false),
    ])
}

pub fn consultation_column_groups() -> ColumnGroups {
    ColumnGroups::new()
        .with_group(IDENTIFIERS, &["consultation_id", "patient_id"])
        .with_group(ENCOUNTER, &["association", "date", "hour", "visit_type"])
        .with_group(DEMOGRAPHICS, &["age_years", "sex", "departement"])
        .with_group(CLINICAL, &["diagnoses", "outcome"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_canonical_column_has_a_group() {
        crate::dataset::validate_groups(
            "consultations",
            &consultation_schema(),
            &consultation_column_groups(),
        )
        .unwrap();
        assert_eq!(consultation_column_groups().groups().len(), 4);
    }
}
