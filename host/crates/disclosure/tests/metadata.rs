//! Malformed metadata and bad count values are errors that name the column (and row).

mod common;

use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int32Array, StringArray};
use arrow_schema::{DataType, Field};
use carrel_disclosure::DisclosureError;
use carrel_disclosure::metadata::{COUNT, DENOMINATOR, KIND, NUMERATOR, PATIENTS, SHARE, TOTAL_OF};
use common::*;

fn with_field(field: Field, column: ArrayRef) -> DisclosureError {
    let table = Table::new()
        .dimension("region", &["north"])
        .count("cases", &[10])
        .count("visits", &[20])
        .column(field, column)
        .build();
    release_error(&table)
}

fn share(pairs: &[(&str, &str)]) -> DisclosureError {
    let field = Field::new("rate", DataType::Float64, false).with_metadata(meta(pairs));
    with_field(field, Arc::new(Float64Array::from(vec![0.5])))
}

#[test]
fn an_unknown_kind_is_an_error_naming_the_column() {
    let error = share(&[(KIND, "mean")]);
    assert!(matches!(
        error,
        DisclosureError::UnknownKind { ref column, ref kind } if column == "rate" && kind == "mean"
    ));
    assert!(error.to_string().contains("`rate`"));
}

#[test]
fn a_share_without_a_denominator_is_an_error() {
    let error = share(&[(KIND, SHARE), (NUMERATOR, "cases")]);
    assert!(
        matches!(
            error,
            DisclosureError::MissingKey {
                key: DENOMINATOR,
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_share_naming_an_unknown_column_is_an_error() {
    let error = share(&[(KIND, SHARE), (NUMERATOR, "cases"), (DENOMINATOR, "nope")]);
    assert!(
        matches!(error, DisclosureError::UnknownColumn { ref target, .. } if target == "nope"),
        "{error}"
    );
}

#[test]
fn a_share_over_a_dimension_is_an_error() {
    let error = share(&[
        (KIND, SHARE),
        (NUMERATOR, "region"),
        (DENOMINATOR, "visits"),
    ]);
    assert!(
        matches!(error, DisclosureError::NotACount { key: NUMERATOR, ref target, .. } if target == "region"),
        "{error}"
    );
}

#[test]
fn a_share_of_text_is_a_type_error() {
    let field = Field::new("rate", DataType::Utf8, false).with_metadata(meta(&[
        (KIND, SHARE),
        (NUMERATOR, "cases"),
        (DENOMINATOR, "visits"),
    ]));
    let error = with_field(field, Arc::new(StringArray::from(vec!["half"])));
    assert!(
        matches!(error, DisclosureError::WrongType { kind: SHARE, .. }),
        "{error}"
    );
}

#[test]
fn a_count_of_floats_is_a_type_error() {
    let field = Field::new("mean", DataType::Float64, false).with_metadata(meta(&[(KIND, COUNT)]));
    let error = with_field(field, Arc::new(Float64Array::from(vec![2.5])));
    assert!(
        matches!(error, DisclosureError::WrongType { ref column, kind: COUNT, .. } if column == "mean"),
        "{error}"
    );
}

#[test]
fn a_total_of_a_share_or_an_unknown_column_is_an_error() {
    let table = Table::new()
        .count("cases", &[10])
        .count("visits", &[20])
        .share("rate", "cases", "visits", 1)
        .total("all", &[30], "cases,rate")
        .build();
    let error = release_error(&table);
    assert!(
        matches!(error, DisclosureError::NotACount { key: TOTAL_OF, .. }),
        "{error}"
    );

    let table = Table::new()
        .count("cases", &[10])
        .total("all", &[10], "cases,missing")
        .build();
    let error = release_error(&table);
    assert!(
        matches!(error, DisclosureError::UnknownColumn { key: TOTAL_OF, .. }),
        "{error}"
    );
}

#[test]
fn a_total_of_itself_or_of_a_part_twice_or_of_nothing_is_malformed() {
    let table = Table::new()
        .count("cases", &[10])
        .total("all", &[10], "cases,all")
        .build();
    assert!(matches!(
        release_error(&table),
        DisclosureError::Malformed { .. }
    ));
    let table = Table::new()
        .count("cases", &[10])
        .total("all", &[20], "cases,cases")
        .build();
    assert!(matches!(
        release_error(&table),
        DisclosureError::Malformed { .. }
    ));
    let table = Table::new()
        .count("cases", &[10])
        .total("all", &[10], "cases,")
        .build();
    assert!(matches!(
        release_error(&table),
        DisclosureError::Malformed { .. }
    ));
    let table = Table::new()
        .count("cases", &[10])
        .total("all", &[10], " ")
        .build();
    assert!(matches!(
        release_error(&table),
        DisclosureError::MissingKey { .. }
    ));
}

#[test]
fn a_total_of_on_a_dimension_is_refused_rather_than_ignored() {
    let field =
        Field::new("age", DataType::Int32, false).with_metadata(meta(&[(TOTAL_OF, "cases")]));
    let error = with_field(field, Arc::new(Int32Array::from(vec![40])));
    assert!(
        matches!(error, DisclosureError::MisplacedKey { key: TOTAL_OF, .. }),
        "{error}"
    );
}

#[test]
fn two_columns_with_the_same_name_are_an_error() {
    let table = Table::new()
        .count("cases", &[10])
        .count("cases", &[20])
        .build();
    assert!(matches!(
        release_error(&table),
        DisclosureError::DuplicateColumn { .. }
    ));
}

#[test]
fn a_negative_count_is_an_error_naming_column_and_row() {
    let table = Table::new()
        .dimension("region", &["north", "south"])
        .count("cases", &[10, -1])
        .build();
    let error = release_error(&table);
    assert!(
        matches!(error, DisclosureError::NegativeCount { ref column, row: 1, value: -1 } if column == "cases"),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "count column `cases`, row 1: negative count -1"
    );
}

#[test]
fn a_null_count_is_an_error_naming_column_and_row() {
    let field = Field::new("cases", DataType::Int32, true).with_metadata(meta(&[(KIND, COUNT)]));
    let table = Table::new()
        .column(field, Arc::new(Int32Array::from(vec![Some(10), None])))
        .build();
    let error = release_error(&table);
    assert!(
        matches!(error, DisclosureError::NullCount { row: 1, .. }),
        "{error}"
    );
}

/// The error of a table whose `visits` column links to `target` for its patients.
fn link_to(target: &str) -> DisclosureError {
    let table = Table::new()
        .dimension("region", &["north"])
        .linked("visits", &[20], target)
        .count("visits_patients", &[12])
        .share("rate", "visits", "visits_patients", 1)
        .build();
    release_error(&table)
}

#[test]
fn a_patients_link_to_a_missing_column_is_an_error_naming_the_column() {
    let error = link_to("visit_patients");
    assert!(
        matches!(
            error,
            DisclosureError::UnknownColumn { ref column, key: PATIENTS, ref target }
                if column == "visits" && target == "visit_patients"
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "column `visits`: carrel.patients names `visit_patients`, which is not a column \
         of the table"
    );
}

#[test]
fn a_patients_link_to_a_dimension_or_a_share_is_an_error_naming_the_column() {
    for target in ["region", "rate"] {
        let error = link_to(target);
        assert!(
            matches!(
                error,
                DisclosureError::NotACount { ref column, key: PATIENTS, target: ref t }
                    if column == "visits" && t == target
            ),
            "{error}"
        );
    }
}

#[test]
fn a_patients_link_to_itself_or_to_nothing_is_an_error_naming_the_column() {
    let error = link_to("visits");
    assert!(
        matches!(error, DisclosureError::Malformed { ref column, .. } if column == "visits"),
        "{error}"
    );
    assert!(error.to_string().contains("itself"), "{error}");
    let error = link_to(" ");
    assert!(
        matches!(
            error,
            DisclosureError::MissingKey { ref column, key: PATIENTS } if column == "visits"
        ),
        "{error}"
    );
}

#[test]
fn a_patients_column_named_by_two_count_columns_is_an_error_naming_the_second() {
    let table = Table::new()
        .linked("visits", &[20], "patients")
        .linked("calls", &[30], "patients")
        .count("patients", &[12])
        .build();
    let error = release_error(&table);
    assert!(
        matches!(error, DisclosureError::Malformed { ref column, .. } if column == "calls"),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("`patients`") && message.contains("`visits`"),
        "{message}"
    );
}

#[test]
fn a_patients_link_on_a_dimension_or_a_share_is_refused_rather_than_ignored() {
    let field =
        Field::new("age", DataType::Int32, false).with_metadata(meta(&[(PATIENTS, "visits")]));
    let error = with_field(field, Arc::new(Int32Array::from(vec![40])));
    assert!(
        matches!(error, DisclosureError::MisplacedKey { ref column, key: PATIENTS, .. } if column == "age"),
        "{error}"
    );
    let error = share(&[
        (KIND, SHARE),
        (NUMERATOR, "cases"),
        (DENOMINATOR, "visits"),
        (PATIENTS, "visits"),
    ]);
    assert!(
        matches!(error, DisclosureError::MisplacedKey { ref column, key: PATIENTS, .. } if column == "rate"),
        "{error}"
    );
}
