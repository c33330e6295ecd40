//! Why a model is refused or a batch cannot be scored. The messages reach the researcher
//! at `study submit` (a refused model) or the auditors (a failed run): they name the
//! operator, shape or limit, and never a row's values.

use carrel_study_sdk::StudyError;
use carrel_study_sdk::features::FeatureError;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the model file is {bytes} bytes, over the limit of {limit} bytes (64 MiB)")]
    TooLarge { bytes: usize, limit: usize },
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    #[error(
        "the model uses operator `{operator}` (domain {domain}), which the sandbox's ONNX \
         runtime does not implement"
    )]
    UnsupportedOperator { operator: String, domain: String },
    #[error("the model is not supported: {0}")]
    Unsupported(String),
    #[error("the model's input does not fit: {0}")]
    Shape(String),
    #[error(
        "the model's input `{input}` has {width} columns but the manifest declares \
         {features} features"
    )]
    Width {
        input: String,
        width: usize,
        features: usize,
    },
    #[error("the model's output does not fit: {0}")]
    Output(String),
    #[error(transparent)]
    Features(#[from] FeatureError),
    #[error("the model could not be prepared: {0}")]
    Prepare(String),
    #[error("the model failed on a batch: {0}")]
    Run(String),
    #[error("{0}")]
    Batch(String),
}

impl From<ModelError> for StudyError {
    fn from(error: ModelError) -> StudyError {
        StudyError::failed(error.to_string())
    }
}

impl From<StudyError> for ModelError {
    fn from(error: StudyError) -> ModelError {
        ModelError::Batch(error.message().to_owned())
    }
}
