//! The demo's temporal validation of a prediction model: `referral-fit` fits a logistic
//! regression of hospital referral on the first year of consultations (the host fits it
//! and releases its coefficients), the fit is written as ONNX where `referral-eval` reads
//! its model, and `referral-eval` evaluates it in its sandbox on the second year (the
//! host computes AUROC and calibration from its own counts).

use super::runs::run_or_reuse;
use anyhow::{Context, bail};
use carrel_warehouse::study::registry::RunRecord;
use carrel_warehouse::study::registry::RunStatus;
use carrel_warehouse::study::{Caller, StudyService};
use time::OffsetDateTime;

/// The shipped studies that develop and evaluate the referral model.
pub const MODEL_FIT: &str = "referral-fit";
pub const MODEL_EVAL: &str = "referral-eval";
/// The development period, then the validation period: the demo's data start in July 2023.
const DEVELOPMENT: &str = "to=2024-06-30";
const VALIDATION: &str = "from=2024-07-01";

/// Fits the model on the development period (or reuses that fit) and writes it as the
/// evaluation's model file unless the file holds it already.
pub async fn fit(
    desk: &StudyService,
    manifest_dir: &std::path::Path,
    researcher: &Caller,
    newest_data: Option<OffsetDateTime>,
) -> anyhow::Result<()> {
    let record = run_or_reuse(desk, researcher, MODEL_FIT, DEVELOPMENT, newest_data).await?;
    if record.status != RunStatus::Succeeded {
        bail!(
            "the referral model could not be fitted: {}",
            record.error.as_deref().unwrap_or(record.status.as_str())
        );
    }
    let table = desk
        .registry
        .result(&record.run_id)?
        .context("the referral fit released no table")?;
    let onnx = carrel_warehouse::download_formats::to_onnx(&table, &record.model_report)?;
    let evaluation = desk.spec(MODEL_EVAL)?;
    let model = evaluation
        .tool
        .model
        .as_ref()
        .context("referral-eval has no [model] section")?;
    let path = manifest_dir.join(&model.file);
    if std::fs::read(&path).ok().as_deref() != Some(onnx.as_slice()) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, &onnx).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "Wrote the fitted referral model as ONNX to {} ({} bytes).",
            path.display(),
            onnx.len()
        );
    }
    Ok(())
}

/// Evaluates the fitted model on the validation period and prints its performance.
pub async fn evaluate(
    desk: &StudyService,
    researcher: &Caller,
    newest_data: Option<OffsetDateTime>,
) -> anyhow::Result<()> {
    let record = run_or_reuse(desk, researcher, MODEL_EVAL, VALIDATION, newest_data).await?;
    if record.status == RunStatus::Succeeded {
        println!("{}", validation_summary(&record));
    }
    Ok(())
}

/// One line on the model's discrimination and calibration on the validation period.
fn validation_summary(record: &RunRecord) -> String {
    let overall = &record.model_report["overall"];
    let number = |v: &serde_json::Value| {
        v.as_f64()
            .map_or("withheld".to_owned(), |x| format!("{x:.3}"))
    };
    format!(
        "Temporal validation of the referral model (fitted up to 2024-06-30, evaluated from 2024-07-01): AUROC {} (95% CI {} to {}), calibration slope {}, intercept {}, {} consultations, {} referrals.",
        number(&overall["auroc"]),
        number(&overall["auroc_ci95"][0]),
        number(&overall["auroc_ci95"][1]),
        number(&overall["calibration"]["slope"]),
        number(&overall["calibration"]["intercept"]),
        overall["rows"],
        overall["events"],
    )
}
