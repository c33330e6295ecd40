//! A `model-fit` study: for each consultation it is handed, the feature vector its
//! manifest declares (`[…study.fit] features`) and the outcome, built from the row alone.
//! The host aggregates the vectors, checks them against DataSHIELD's disclosure rules and
//! fits the regression itself; nothing here is released.

mod features;

wit_bindgen::generate!({
    world: "carrel:eds/model-fit",
    path: "../../../wit",
});

use features::Feature;
use std::sync::OnceLock;

/// The declared features and outcome of this instance.
static SPEC: OnceLock<(Vec<Feature>, Feature)> = OnceLock::new();

struct GlmFit;

impl Guest for GlmFit {
    fn start(_table: TableSpec, fit: FitSpec) -> Result<(), StudyError> {
        let parsed: Result<Vec<Feature>, String> =
            fit.features.iter().map(|f| Feature::parse(f)).collect();
        let outcome = Feature::parse(&fit.outcome).map_err(StudyError::Failed)?;
        SPEC.set((parsed.map_err(StudyError::Failed)?, outcome))
            .map_err(|_| StudyError::Failed("`start` was called twice".into()))
    }

    fn features(batch: Consultations) -> Result<Vec<RowFeatures>, StudyError> {
        let (features, outcome) = SPEC
            .get()
            .ok_or_else(|| StudyError::Failed("no `start` before the first batch".into()))?;
        let rows = batch.groups.last().copied().unwrap_or(0);
        let mut out = Vec::with_capacity(rows as usize);
        for row in 0..rows as usize {
            let values: Option<Vec<f64>> = features.iter().map(|f| f.value(&batch, row)).collect();
            // A row whose feature is unknown (an age not recorded) is left out of the fit.
            let (Some(values), Some(outcome)) = (values, outcome.value(&batch, row)) else {
                continue;
            };
            out.push(RowFeatures {
                row: row as u32,
                values,
                outcome,
            });
        }
        Ok(out)
    }
}

export!(GlmFit);
