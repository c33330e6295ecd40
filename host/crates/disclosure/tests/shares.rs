//! Share columns and the metadata of released fields.

mod common;

use std::sync::Arc;

use arrow_schema::DataType;
use carrel_disclosure::metadata::{KIND, REDACTED, REDACTED_NULL};
use common::*;

fn visits_table() -> arrow_array::RecordBatch {
    Table::new()
        .dimension("region", &["north", "south", "east", "west"])
        .count("cases", &[12, 3, 43, 0])
        .count("visits", &[23, 50, 88, 0])
        .share("rate", "cases", "visits", 4)
        .build()
}

#[test]
fn shares_are_recomputed_from_the_rounded_counts_not_taken_from_the_study() {
    let released = release(&visits_table());
    // east: 43 → 45 and 88 → 90, so 0.5, not 43 / 88 and not the study's 0.123.
    assert_eq!(counts(&released, "cases")[2], Some(45));
    assert_eq!(counts(&released, "visits")[2], Some(90));
    assert_eq!(shares(&released, "rate")[2], Some(0.5));
}

#[test]
fn a_share_is_redacted_with_its_numerator() {
    let released = release(&visits_table());
    // south (3) is redacted, and north (12) with it as the smallest non-zero partner.
    assert_eq!(
        counts(&released, "cases"),
        vec![None, None, Some(45), Some(0)]
    );
    let rate = shares(&released, "rate");
    assert_eq!(rate[0], None);
    assert_eq!(rate[1], None);
    assert_eq!(released.report.shares_redacted, 2);
    assert_eq!(released.report.total_redacted(), 4);
}

#[test]
fn a_share_over_a_zero_denominator_is_null_but_not_counted_as_redacted() {
    let released = release(&visits_table());
    assert_eq!(shares(&released, "rate")[3], None);
    assert_eq!(
        released.report.shares_redacted, 2,
        "west is not a redaction"
    );
}

#[test]
fn a_share_is_redacted_with_its_denominator() {
    let table = Table::new()
        .count("cases", &[0])
        .count("visits", &[5])
        .share("rate", "cases", "visits", 1)
        .build();
    let released = release(&table);
    assert_eq!(shares(&released, "rate"), vec![None]);
    assert_eq!(released.report.shares_redacted, 1);
}

#[test]
fn an_integer_share_column_is_released_as_float64() {
    let field = arrow_schema::Field::new("pct", DataType::Int32, false).with_metadata(meta(&[
        (KIND, "share"),
        ("carrel.numerator", "cases"),
        ("carrel.denominator", "visits"),
    ]));
    let table = Table::new()
        .count("cases", &[10])
        .count("visits", &[40])
        .column(field, Arc::new(arrow_array::Int32Array::from(vec![25])))
        .build();
    let released = release(&table);
    assert_eq!(shares(&released, "pct"), vec![Some(0.25)]);
}

#[test]
fn released_fields_keep_their_metadata_and_mark_null_as_redacted() {
    let released = release(&visits_table());
    let schema = released.table.schema();

    let cases = schema.field_with_name("cases").unwrap();
    assert_eq!(cases.data_type(), &DataType::UInt64);
    assert!(cases.is_nullable());
    assert_eq!(
        cases.metadata().get(KIND).map(String::as_str),
        Some("count")
    );
    assert_eq!(
        cases.metadata().get(REDACTED).map(String::as_str),
        Some(REDACTED_NULL)
    );

    let rate = schema.field_with_name("rate").unwrap();
    assert_eq!(rate.data_type(), &DataType::Float64);
    assert_eq!(
        rate.metadata().get("carrel.numerator").map(String::as_str),
        Some("cases")
    );
    assert_eq!(
        rate.metadata().get(REDACTED).map(String::as_str),
        Some(REDACTED_NULL)
    );

    let region = schema.field_with_name("region").unwrap();
    assert_eq!(
        region,
        visits_table().schema().field_with_name("region").unwrap()
    );
    assert!(!region.metadata().contains_key(REDACTED));
}

#[test]
fn dimensions_are_released_unchanged_and_schema_metadata_is_kept() {
    let table = visits_table();
    let schema = Arc::new(
        table
            .schema()
            .as_ref()
            .clone()
            .with_metadata(meta(&[("study", "flu")])),
    );
    let table = table.with_schema(schema).unwrap();
    let released = release(&table);
    assert_eq!(released.table.column(0), table.column(0));
    assert_eq!(
        released
            .table
            .schema()
            .metadata()
            .get("study")
            .map(String::as_str),
        Some("flu")
    );
}
