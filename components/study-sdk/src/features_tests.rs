use super::*;
use crate::testing::{Consultation, Harness};

fn matrix(features: &[&str], rows: &[Consultation]) -> Result<FeatureMatrix, StudyError> {
    matrix_granting(features, rows, &crate::COLUMNS)
}

fn matrix_granting(
    features: &[&str],
    rows: &[Consultation],
    granted: &[&str],
) -> Result<FeatureMatrix, StudyError> {
    let groups: Vec<&[Consultation]> = rows.iter().map(std::slice::from_ref).collect();
    let columns = Harness::new(&["n"])
        .granting(granted)
        .consultations(&groups);
    Features::parse(features).unwrap().matrix(&columns)
}

#[test]
fn each_feature_reads_its_column() {
    let features = [
        "age_years",
        "hour",
        "sex=F",
        "visit_type=home",
        "outcome=hospital",
        "departement=2A",
        "association=sos-rennes",
        "diagnoses:J10",
        "diagnoses:R5",
    ];
    let rows = [
        Consultation::new()
            .age(34)
            .hour(22)
            .sex("F")
            .visit_type("home")
            .outcome("hospital")
            .departement("2A")
            .association("sos-rennes")
            .diagnoses(&["J101", "R509"]),
        Consultation::new()
            .age(90)
            .hour(3)
            .sex("M")
            .visit_type("centre")
            .outcome("home")
            .departement("2B")
            .diagnoses(&["J11", "http://snomed.info/sct|J10"]),
    ];
    let m = matrix(&features, &rows).unwrap();
    assert_eq!(m.rows, [0, 1]);
    assert_eq!(m.width, 9);
    assert_eq!(m.vector(0), [34.0, 22.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
    assert_eq!(m.vector(1), [90.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn a_missing_text_value_is_a_condition_that_does_not_hold() {
    let m = matrix(&["sex=F", "diagnoses:J"], &[Consultation::new()]).unwrap();
    assert_eq!(m.vector(0), [0.0, 0.0]);
}

#[test]
fn a_row_of_unknown_age_gets_no_vector_when_age_is_a_feature() {
    let rows = [
        Consultation::new().age(3),
        Consultation::new(),
        Consultation::new().age(0),
    ];
    let m = matrix(&["age_years", "hour"], &rows).unwrap();
    assert_eq!(m.rows, [0, 2]);
    assert_eq!(m.values, [3.0, 0.0, 0.0, 0.0]);
    let without_age = matrix(&["hour"], &rows).unwrap();
    assert_eq!(without_age.rows, [0, 1, 2]);
}

#[test]
fn a_feature_on_a_column_not_granted_fails_the_batch_naming_both() {
    let error = matrix_granting(
        &["age_years", "sex=F"],
        &[Consultation::new()],
        &["age_years"],
    )
    .unwrap_err();
    assert_eq!(
        error.message(),
        "feature `sex=F` reads column `sex`, which the manifest does not grant"
    );
    let empty = matrix_granting(&["sex=F"], &[], &[]).unwrap();
    assert!(empty.rows.is_empty(), "an empty batch reads nothing");
}

#[test]
fn bad_feature_strings_are_refused_with_their_position() {
    for (declared, why) in [
        ("weight", "feature 1 `weight`: expected `age_years`"),
        (
            "patient_id=1",
            "`patient_id` is not a column a condition can test",
        ),
        ("sex=", "the value must be non-empty"),
        ("sex= F", "without spaces"),
        ("diagnoses:", "a code prefix must be non-empty"),
    ] {
        let error = Features::parse(&[declared]).unwrap_err();
        assert!(error.message().contains(why), "{declared}: {error}");
    }
    assert_eq!(
        Features::parse::<&str>(&[]).unwrap_err().message(),
        "the model declares no feature"
    );
    let too_many: Vec<String> = (0..=MAX_CODE_FEATURES)
        .map(|i| format!("diagnoses:X{i}"))
        .collect();
    let error = Features::parse(&too_many).unwrap_err();
    assert!(error.message().starts_with("feature 65 "), "{error}");
}

#[test]
fn the_columns_read_are_listed_once_in_order() {
    let features = Features::parse(&["sex=F", "diagnoses:J", "sex=M", "age_years"]).unwrap();
    assert_eq!(features.columns(), ["sex", "diagnoses", "age_years"]);
    assert_eq!(features.len(), 4);
    assert_eq!(features.declared()[2], "sex=M");
}
