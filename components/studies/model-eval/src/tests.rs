//! Native tests against the fixtures of tests/models: every model's scores equal
//! onnxruntime's to 1e-5, and bad files are refused with the operator, shape or limit
//! named. The host's tests (tests/model_eval.rs) run the same models in the sandbox.

use std::path::PathBuf;

use carrel_study_sdk::bindings::carrel::eds::study_types::Consultations;
use carrel_study_sdk::testing::{Consultation, Harness};
use serde_json::Value;

use crate::model_file::MAX_MODEL_BYTES;
use crate::{ModelError, Scorer};

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../tests/models")
}

fn json(name: &str) -> Value {
    let text = std::fs::read_to_string(models().join(name)).expect("fixture");
    serde_json::from_str(&text).expect("fixture JSON")
}

fn onnx(name: &str) -> Vec<u8> {
    std::fs::read(models().join(name)).expect("fixture model")
}

fn features() -> Vec<String> {
    let rows = json("rows.json");
    let features = rows["features"].as_array().expect("features");
    features
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

/// The fixture's rows as the host hands them, one group each.
fn batch() -> Consultations {
    let rows = json("rows.json");
    let consultations: Vec<Consultation> = rows["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let mut c = Consultation::new().hour(row["hour"].as_u64().unwrap() as u8);
            if let Some(age) = row["age_years"].as_u64() {
                c = c.age(age as u8);
            }
            let text = |name: &str| row[name].as_str().map(str::to_owned);
            if let Some(sex) = text("sex") {
                c = c.sex(&sex);
            }
            if let Some(visit) = text("visit_type") {
                c = c.visit_type(&visit);
            }
            if let Some(departement) = text("departement") {
                c = c.departement(&departement);
            }
            let codes: Vec<&str> = row["diagnoses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            c.diagnoses(&codes)
        })
        .collect();
    let groups: Vec<&[Consultation]> = consultations.iter().map(std::slice::from_ref).collect();
    Harness::new(&["n"]).consultations(&groups)
}

const FIXTURES: [&str; 14] = [
    "logistic_regression",
    "logistic_regression_no_zipmap",
    "scaled_logistic_regression",
    "scaled_logistic_regression_no_zipmap",
    "normalized_logistic_regression",
    "normalized_logistic_regression_no_zipmap",
    "gradient_boosting",
    "gradient_boosting_no_zipmap",
    "random_forest",
    "random_forest_no_zipmap",
    "mlp",
    "mlp_no_zipmap",
    "torch_mlp",
    "torch_softmax",
];

#[test]
fn the_sdk_builds_the_feature_matrix_the_fixture_script_built() {
    let (scorer, _) = Scorer::new(&onnx("logistic_regression.onnx"), &features()).unwrap();
    let matrix = scorer.features().matrix(&batch()).unwrap();
    let expected = json("rows.json")["matrix"].clone();
    let expected: Vec<f32> = expected
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    assert_eq!(matrix.values, expected);
    assert!(!matrix.rows.contains(&7), "row 7 has no age: no vector");
}

#[test]
fn every_fixture_model_scores_as_onnxruntime_does() {
    let batch = batch();
    for name in FIXTURES {
        let expected = json(&format!("{name}.json"));
        let (scorer, summary) = Scorer::new(&onnx(&format!("{name}.onnx")), &features())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(summary.inputs, 9, "{name}");
        let operators: Vec<&str> = expected["operators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(summary.operators, operators, "{name}");
        // scikit-learn's forests are scored without tract (crate::forest), the rest by it.
        let trees = name.starts_with("gradient_boosting") || name.starts_with("random_forest");
        assert_eq!(scorer.scores_trees_itself(), trees, "{name}");
        let scores = scorer
            .score(&batch)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = expected["scores"].as_array().unwrap();
        assert_eq!(scores.len(), reference.len(), "{name}");
        let mut worst = 0f64;
        for ((_, score), reference) in scores.iter().zip(reference) {
            worst = worst.max((score - reference.as_f64().unwrap()).abs());
        }
        assert!(worst <= 1e-5, "{name}: differs from onnxruntime by {worst}");
    }
}

fn refusal(bytes: &[u8], features: &[String]) -> String {
    match Scorer::new(bytes, features) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn an_unknown_operator_is_refused_by_name() {
    let message = refusal(&onnx("unknown_operator.onnx"), &features());
    assert_eq!(
        message,
        "the model uses operator `FancyCalibrator` (domain com.example), which the sandbox's \
         ONNX runtime does not implement"
    );
}

#[test]
fn a_model_of_another_width_is_refused_naming_both() {
    let mut eight = features();
    eight.pop();
    let message = refusal(&onnx("gradient_boosting.onnx"), &eight);
    assert_eq!(
        message,
        "the model's input `X` has 9 columns but the manifest declares 8 features"
    );
}

#[test]
fn files_that_are_not_onnx_or_are_truncated_are_refused() {
    let model = onnx("gradient_boosting.onnx");
    for bytes in [&b""[..], b"hello, this is not a model\n", &[0xff; 64]] {
        assert!(refusal(bytes, &features()).starts_with("not an ONNX model: "));
    }
    for cut in (1..8)
        .map(|eighth| model.len() * eighth / 8)
        .chain([model.len() - 1])
    {
        let message = refusal(&model[..cut], &features());
        assert!(
            message.starts_with("not an ONNX model: "),
            "cut at {cut}: {message}"
        );
    }
}

#[test]
fn a_file_over_the_limit_is_refused_with_the_limit() {
    let big = vec![0u8; MAX_MODEL_BYTES + 1];
    assert!(matches!(
        Scorer::new(&big, &features()),
        Err(ModelError::TooLarge { .. })
    ));
    assert_eq!(
        refusal(&big, &features()),
        "the model file is 67108865 bytes, over the limit of 67108864 bytes (64 MiB)"
    );
}
