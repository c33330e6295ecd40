//! Caps, row-level output, tables that cannot be protected, and hostile values.

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use carrel_disclosure::metadata::{COUNT, KIND};
use carrel_disclosure::{Policy, ReadContext, apply};
use common::*;

/// A table of `rows` rows, one per distinct `id`, each with a count of 100.
fn table_of(rows: usize) -> RecordBatch {
    let ids: Vec<String> = (0..rows).map(|i| format!("id{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    Table::new()
        .dimension("id", &ids)
        .count("n", &vec![100; rows])
        .build()
}

fn apply_read(rows: usize, read: ReadContext) -> Result<(), carrel_disclosure::DisclosureError> {
    apply(&table_of(rows), &Policy::default(), &read).map(|_| ())
}

#[test]
fn a_table_with_more_rows_than_max_rows_is_refused() {
    let policy = Policy {
        max_rows: 3,
        ..Policy::default()
    };
    let message = refusal(apply(&table_of(4), &policy, &small_read()).unwrap_err());
    assert!(message.contains("max_rows 3"), "{message}");
    apply(&table_of(3), &policy, &small_read()).unwrap();
}

#[test]
fn one_row_per_patient_is_refused() {
    let read = |patients| ReadContext {
        rows_read: 0,
        distinct_patients: Some(patients),
    };
    let message = refusal(apply_read(16, read(20)).unwrap_err());
    assert!(message.contains("one row per patient"), "{message}");
    assert!(
        !message.contains("20"),
        "the patient count is not revealed: {message}"
    );
    apply_read(15, read(20)).unwrap();
    apply_read(19, read(19)).unwrap();
}

#[test]
fn row_level_output_is_refused() {
    let read = |rows_read| ReadContext {
        rows_read,
        distinct_patients: None,
    };
    let message = refusal(apply_read(50, read(100)).unwrap_err());
    assert!(message.contains("row-level output"), "{message}");
    apply_read(49, read(100)).unwrap();
    apply_read(99, read(99)).unwrap();
}

#[test]
fn huge_read_contexts_do_not_overflow() {
    let read = ReadContext {
        rows_read: u64::MAX,
        distinct_patients: Some(u64::MAX),
    };
    apply_read(10, read).unwrap();
}

#[test]
fn a_table_without_count_columns_is_refused() {
    let table = Table::new()
        .dimension("diagnosis", &["rare a", "rare b"])
        .build();
    let message = refusal(release_error(&table));
    assert!(message.contains("no count column"), "{message}");
}

#[test]
fn a_zero_row_table_is_released_as_is() {
    let table = Table::new()
        .dimension("region", &[])
        .count("cases", &[])
        .share("rate", "cases", "cases", 0)
        .build();
    let released = release(&table);
    assert_eq!(released.table.num_rows(), 0);
    assert_eq!(released.table.num_columns(), 3);
    assert_eq!(released.report.rows, 0);
    assert_eq!(released.report.total_redacted(), 0);
}

#[test]
fn a_study_policy_weaker_than_the_operators_is_refused() {
    let study = Policy {
        min_count: 3,
        ..Policy::default()
    };
    let message = refusal(study.at_least(&Policy::default()).unwrap_err());
    assert!(message.contains("min_count"), "{message}");
}

#[test]
fn apply_refuses_a_policy_rounding_to_zero() {
    let policy = Policy {
        rounding: 0,
        ..Policy::default()
    };
    let table = Table::new().count("n", &[10]).build();
    assert!(apply(&table, &policy, &small_read()).is_err());
}

#[test]
fn counts_near_u64_max_are_released_without_overflow() {
    let field = Field::new("n", DataType::UInt64, false).with_metadata(meta(&[(KIND, COUNT)]));
    let column: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX, u64::MAX - 1, 3]));
    let total = Field::new("all", DataType::UInt64, false)
        .with_metadata(meta(&[(KIND, COUNT), ("carrel.total_of", "n")]));
    let dimension = Field::new("d", DataType::Utf8, false);
    let dimension_values: ArrayRef = Arc::new(arrow_array::StringArray::from(vec!["a", "b", "c"]));
    let table = RecordBatch::try_new(
        Arc::new(Schema::new(vec![dimension, field, total])),
        vec![dimension_values, column.clone(), column],
    )
    .unwrap();
    let released = release_with(
        &table,
        &Policy {
            rounding: 10,
            ..Policy::default()
        },
    );
    // u64::MAX ends in 5, so it would round up past u64::MAX: it is rounded down.
    let largest = Some(u64::MAX - 5);
    assert_eq!(counts(&released, "n"), vec![largest, None, None]);
    assert_eq!(counts(&released, "all"), vec![largest, None, None]);
}

#[test]
fn a_dimension_of_the_null_type_is_one_value_shared_by_every_row() {
    let dimension: ArrayRef = Arc::new(arrow_array::NullArray::new(3));
    let table = Table::new()
        .column(Field::new("d", DataType::Null, true), dimension)
        .count("n", &[3, 20, 30])
        .build();
    let released = release_with(&table, &no_rounding());
    assert_eq!(counts(&released, "n"), vec![None, None, Some(30)]);
}
