//! A checked model made runnable by tract, and the scoring of batches: the feature
//! matrix of a batch goes through the model at once, and each row's score is the
//! probability of class 1 (column 1 of a [rows, 2] output, the only column of [rows, 1]
//! or [rows]).

use carrel_study_sdk::bindings::carrel::eds::study_types::Consultations;
use carrel_study_sdk::features::{FeatureMatrix, Features};
use tract_onnx::prelude::*;

use crate::error::ModelError;
use crate::forest::Forest;
use crate::model_file::{ModelFile, input_datum_type};

/// What a check found, for the auditor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub inputs: u32,
    pub operators: Vec<String>,
}

/// A model ready to score batches.
pub struct Scorer {
    features: Features,
    plan: Arc<TypedRunnableModel>,
    double: bool,
    /// The output column holding the probability of class 1, and the output's width.
    column: usize,
    columns: usize,
    /// The same model as `plan` when it is a tree ensemble scored without tract.
    forest: Option<Forest>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("features", &self.features.declared())
            .field("column", &self.column)
            .finish_non_exhaustive()
    }
}

fn prepare(e: impl std::fmt::Display) -> ModelError {
    ModelError::Prepare(e.to_string())
}

impl Scorer {
    /// Reads, checks and prepares the model of `onnx` fed `declared` features.
    pub fn new<S: AsRef<str>>(
        onnx: &[u8],
        declared: &[S],
    ) -> Result<(Scorer, Summary), ModelError> {
        let features = Features::parse(declared)?;
        let file = ModelFile::read(onnx, features.len())?;
        let summary = Summary {
            inputs: file.input.width as u32,
            operators: file.operators.clone(),
        };
        let mut model = tract_onnx::onnx()
            .model_for_proto_model(&file.proto)
            .map_err(|e| ModelError::Unsupported(format!("{e:#}")))?;
        let rows = model.symbols.sym("rows");
        let fact = InferenceFact::dt_shape(
            input_datum_type(&file.input),
            tvec![rows.to_dim(), file.input.width.to_dim()],
        );
        model.set_input_fact(0, fact).map_err(prepare)?;
        let model = model
            .into_typed()
            .map_err(|e| ModelError::Unsupported(format!("{e:#}")))?;
        let (column, columns) = probability_column(&model)?;
        let forest = file
            .proto
            .graph
            .as_ref()
            .and_then(Forest::of_graph)
            .filter(|forest| forest.width() <= file.input.width);
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| prepare(format!("{e:#}")))?;
        let scorer = Scorer {
            features,
            plan,
            double: file.input.double,
            column,
            columns,
            forest,
        };
        Ok((scorer, summary))
    }

    /// The declared features.
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The score of every row of `batch` that has a feature vector, as (row, score).
    pub fn score(&self, batch: &Consultations) -> Result<Vec<(u32, f64)>, ModelError> {
        let matrix = self.features.matrix(batch)?;
        let scores = self.score_matrix(&matrix)?;
        Ok(matrix.rows.into_iter().zip(scores).collect())
    }

    /// The probability of class 1 for each vector of `matrix`, in order.
    pub fn score_matrix(&self, matrix: &FeatureMatrix) -> Result<Vec<f64>, ModelError> {
        let rows = matrix.rows.len();
        if rows == 0 {
            return Ok(Vec::new());
        }
        if let Some(forest) = &self.forest {
            let scores: Vec<f64> = matrix
                .values
                .chunks_exact(matrix.width)
                .map(|row| forest.score(row))
                .collect();
            return checked(scores);
        }
        let shape = [rows, matrix.width];
        let input = if self.double {
            let values: Vec<f64> = matrix.values.iter().map(|v| f64::from(*v)).collect();
            Tensor::from_shape(&shape, &values)
        } else {
            Tensor::from_shape(&shape, &matrix.values)
        }
        .map_err(|e| ModelError::Run(e.to_string()))?;
        let outputs = self
            .plan
            .run(tvec![input.into()])
            .map_err(|e| ModelError::Run(format!("{e:#}")))?;
        let output = outputs[0]
            .cast_to::<f64>()
            .map_err(|e| ModelError::Run(e.to_string()))?;
        let values = output
            .try_as_plain_ram()
            .and_then(|plain| plain.as_slice::<f64>())
            .map_err(|e| ModelError::Run(e.to_string()))?;
        if values.len() != rows * self.columns {
            return Err(ModelError::Run(format!(
                "the model gave {} values for {rows} rows of {} columns",
                values.len(),
                self.columns
            )));
        }
        let scores: Vec<f64> = values
            .iter()
            .skip(self.column)
            .step_by(self.columns)
            .copied()
            .collect();
        checked(scores)
    }

    /// Whether the model is a tree ensemble scored without tract ([`Forest`]).
    pub fn scores_trees_itself(&self) -> bool {
        self.forest.is_some()
    }
}

/// A model whose output is not a probability (not a number, or outside 0..1) fails the
/// batch: the host would bin nonsense.
fn checked(scores: Vec<f64>) -> Result<Vec<f64>, ModelError> {
    if scores.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return Err(ModelError::Output(
            "a row's output is not a probability between 0 and 1: export the model with \
             its final sigmoid or softmax"
                .into(),
        ));
    }
    Ok(scores)
}

/// Which column of the model's one output is the probability of class 1.
fn probability_column(model: &TypedModel) -> Result<(usize, usize), ModelError> {
    let outlet = model.output_outlets().map_err(prepare)?[0];
    let fact = model.outlet_fact(outlet).map_err(prepare)?;
    let name = model
        .outlet_label(outlet)
        .unwrap_or(&model.node(outlet.node).name)
        .to_owned();
    if !fact.datum_type.is_float() {
        return Err(ModelError::Output(format!(
            "output `{name}` holds {:?}, not probabilities",
            fact.datum_type
        )));
    }
    let dims: Vec<Option<i64>> = fact.shape.iter().map(|d| d.to_i64().ok()).collect();
    match dims[..] {
        [_] | [_, Some(1)] => Ok((0, 1)),
        [_, Some(2)] => Ok((1, 2)),
        _ => Err(ModelError::Output(format!(
            "output `{name}` has shape {:?}; a model evaluated here predicts one binary \
             outcome: [rows, 2] (class 1 second), [rows, 1] or [rows]",
            fact.shape
        ))),
    }
}
