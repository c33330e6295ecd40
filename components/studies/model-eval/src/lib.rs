//! Evaluates an ONNX model the researcher brings (world `carrel:eds/model-evaluation`).
//!
//! The host hands the model's bytes and its declared features; the study builds each
//! row's feature vector with the study SDK ([`carrel_study_sdk::features`]), runs the
//! model on the whole batch at once with tract, and answers each row's probability of
//! class 1. It reports no metric: the host bins the scores, takes the outcome from the
//! row itself, counts and computes AUROC, calibration and the rest.
//!
//! `check` runs at `study submit`, on the model alone, so the host parses no model file:
//! a file over 64 MiB, not ONNX, truncated, with an operator tract does not implement,
//! or whose input width is not the number of declared features is refused with the
//! limit, operator or shapes named. See [`model_file`] for the rewrites that let tract
//! run what scikit-learn (skl2onnx) and PyTorch export.

pub mod error;
pub mod forest;
pub mod model_file;
pub mod scorer;

use std::sync::OnceLock;

use carrel_study_sdk::bindings::carrel::eds::study_types::{
    Consultations, Model, ModelSummary, RowScore, StudyError,
};

pub use error::ModelError;
pub use scorer::{Scorer, Summary};

#[cfg(target_arch = "wasm32")]
mod bindings {
    wit_bindgen::generate!({
        world: "carrel:eds/model-evaluation",
        path: "../../../wit",
        with: {
            "carrel:eds/study-types@0.1.0": carrel_study_sdk::bindings::carrel::eds::study_types,
            "carrel:eds/log@0.1.0": carrel_study_sdk::bindings::carrel::eds::log,
        },
    });
}

/// The model of this instance: the host calls `start` once, before any batch.
static SCORER: OnceLock<Scorer> = OnceLock::new();

fn failed(error: impl std::fmt::Display) -> StudyError {
    StudyError::Failed(error.to_string())
}

/// `check`: the model's summary, or why it is refused.
pub fn check(model: &Model) -> Result<ModelSummary, StudyError> {
    let (_, summary) = Scorer::new(&model.onnx, &model.features).map_err(failed)?;
    Ok(ModelSummary {
        inputs: summary.inputs,
        operators: summary.operators,
    })
}

/// `start`: prepares the model once per instance.
pub fn start(model: &Model) -> Result<(), StudyError> {
    // A panic traps the instance; leave its message for the auditors first.
    std::panic::set_hook(Box::new(|info| {
        carrel_study_sdk::log::error(format!("the study panicked: {info}"));
    }));
    let (scorer, _) = Scorer::new(&model.onnx, &model.features).map_err(failed)?;
    SCORER
        .set(scorer)
        .map_err(|_| failed("`start` was called twice"))
}

/// `score`: the probability of class 1 of each row that has a feature vector.
pub fn score(batch: &Consultations) -> Result<Vec<RowScore>, StudyError> {
    let scorer = SCORER
        .get()
        .ok_or_else(|| failed("`score` was called before `start`"))?;
    let scores = scorer.score(batch).map_err(failed)?;
    Ok(scores
        .into_iter()
        .map(|(row, score)| RowScore { row, score })
        .collect())
}

#[cfg(target_arch = "wasm32")]
mod export {
    use super::*;
    use carrel_study_sdk::bindings::carrel::eds::study_types::TableSpec;

    struct ModelEvaluation;

    impl bindings::Guest for ModelEvaluation {
        fn check(model: Model) -> Result<ModelSummary, StudyError> {
            super::check(&model)
        }

        fn start(_table: TableSpec, model: Model) -> Result<(), StudyError> {
            super::start(&model)
        }

        fn score(batch: Consultations) -> Result<Vec<RowScore>, StudyError> {
            super::score(&batch)
        }
    }

    bindings::export!(ModelEvaluation with_types_in bindings);
}

#[cfg(test)]
mod tests;
