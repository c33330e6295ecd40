//! What a researcher is shown of a run, on every route a researcher uses (`carrel study
//! run|runs|show`, `/api/studies/<id>/runs`, `/api/runs/<id>`, `/results`): its status,
//! a fixed error category, its parameters, hashes and released table. A study's log
//! lines, its error text, the names it was denied, what it read (rows, segments), the
//! contributions the host dropped and the locality check can carry rows or describe the
//! data: they stay in the full [`RunRecord`], for auditors (`/audit`, the audit log).
//! Times are the start, to the second, and a duration rounded to [`DURATION_STEP`]
//! seconds, never the exact finish.

use super::registry::RunRecord;
use crate::study::registry::RunStatus;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Durations shown to a researcher are rounded to this many seconds.
pub const DURATION_STEP: u64 = 10;

/// A run as a researcher sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResearcherRun {
    pub run_id: String,
    pub study: String,
    /// Who ran it: `Dr Alice Martin (token:ab12cd34)`, or `operator`.
    pub actor: String,
    pub params: Vec<(String, String)>,
    pub status: RunStatus,
    /// Why it did not succeed: a refusal before the study ran in full, otherwise a fixed
    /// category (`failed`, `timed out`, …). Never the study's own error text, which is
    /// the auditors' (`error` of the full record).
    pub researcher_error: Option<String>,
    pub wasm_sha256: String,
    pub manifest_sha256: String,
    pub output_sha256: Option<String>,
    pub rows_released: u64,
    /// The disclosure report: counts of redacted cells, never values.
    pub disclosure: serde_json::Value,
    /// What a model study released beside its table (a model evaluation's performance, a
    /// fit's rows and events), computed by the host.
    #[serde(default)]
    pub model_report: serde_json::Value,
    /// What the run cost of the study's privacy budget (computed from the manifest's
    /// bounds, never from the data).
    #[serde(default)]
    pub privacy: Option<PrivacyView>,
    /// RFC 3339, to the second.
    pub started_at: String,
    /// Rounded to [`DURATION_STEP`] seconds; none when a time does not parse.
    pub duration_seconds: Option<u64>,
}

/// A run's privacy accounting as its researcher sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyView {
    pub epsilon: f64,
    pub delta: f64,
    pub charged: f64,
    pub spent: f64,
    pub budget: f64,
}

/// The disclosure report without how many rows were left out as wholly withheld: that
/// number would say how many small cells exist.
fn researcher_disclosure(report: &serde_json::Value) -> serde_json::Value {
    let mut shown = report.clone();
    if let Some(fields) = shown.as_object_mut() {
        fields.remove("rows_withheld");
    }
    shown
}

impl RunRecord {
    /// The run as a researcher may see it.
    pub fn for_researcher(&self) -> ResearcherRun {
        let researcher_error = match (self.status, &self.researcher_error) {
            (RunStatus::Succeeded, _) => None,
            (_, Some(shown)) => Some(shown.clone()),
            // Records the execution did not give a category: the status says it.
            (status, None) => Some(status.as_str().to_owned()),
        };
        ResearcherRun {
            run_id: self.run_id.clone(),
            study: self.study.clone(),
            actor: self.actor.clone(),
            params: self.params.clone(),
            status: self.status,
            researcher_error,
            wasm_sha256: self.wasm_sha256.clone(),
            manifest_sha256: self.manifest_sha256.clone(),
            output_sha256: self.output_sha256.clone(),
            rows_released: self.rows_released,
            disclosure: researcher_disclosure(&self.disclosure),
            model_report: self.model_report.clone(),
            privacy: self.privacy.as_ref().map(|p| PrivacyView {
                epsilon: p.epsilon,
                delta: p.delta,
                charged: p.charged,
                spent: p.spent,
                budget: p.budget,
            }),
            started_at: to_the_second(&self.started_at),
            duration_seconds: rounded_duration(&self.started_at, &self.finished_at),
        }
    }
}

fn to_the_second(time: &str) -> String {
    match OffsetDateTime::parse(time, &Rfc3339) {
        Ok(t) => t
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| time.to_owned()),
        Err(_) => time.to_owned(),
    }
}

/// `finished - started` rounded to the nearest [`DURATION_STEP`] seconds.
fn rounded_duration(started: &str, finished: &str) -> Option<u64> {
    let started = OffsetDateTime::parse(started, &Rfc3339).ok()?;
    let finished = OffsetDateTime::parse(finished, &Rfc3339).ok()?;
    let millis = u64::try_from((finished - started).whole_milliseconds()).unwrap_or(0);
    let step = DURATION_STEP * 1000;
    Some((millis + step / 2) / step * DURATION_STEP)
}

/// `about 20 s`, for pages and the command line.
pub fn duration_text(seconds: Option<u64>) -> String {
    match seconds {
        Some(0) => format!("under {} s", DURATION_STEP / 2),
        Some(s) => format!("about {s} s"),
        None => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_run() -> RunRecord {
        RunRecord {
            run_id: "run-1".into(),
            study: "ili".into(),
            actor: "Dr Alice Martin (token:ab12)".into(),
            params: vec![("by".into(), "national".into())],
            started_at: "2026-03-01T10:00:00.123456789Z".into(),
            finished_at: "2026-03-01T10:00:16.5Z".into(),
            status: RunStatus::Failed,
            error: Some("rows: 29, F, 2024-01-03".into()),
            researcher_error: Some("failed".into()),
            wasm_sha256: "w".into(),
            manifest_sha256: "m".into(),
            output_sha256: None,
            segments_read: vec!["consultations/seg-000001".into()],
            rows_read: 1234,
            rows_released: 0,
            disclosure: serde_json::Value::Null,
            denied: vec!["dataset `prescriptions`".into()],
            logs: vec!["info: patient 29 F 2024-01-03".into()],
            contributions_dropped: 17,
            locality: serde_json::json!({"differed": ["p-1"]}),
            privacy: None,
            model_report: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_researchers_view_of_a_failed_run_has_no_log_error_text_or_reading() {
        let view = failed_run().for_researcher();
        assert_eq!(view.researcher_error.as_deref(), Some("failed"));
        assert_eq!(view.started_at, "2026-03-01T10:00:00Z");
        assert_eq!(view.duration_seconds, Some(20));
        let json = serde_json::to_value(&view).unwrap();
        for hidden in [
            "logs",
            "denied",
            "rows_read",
            "segments_read",
            "finished_at",
            "contributions_dropped",
            "locality",
            "error",
        ] {
            assert!(json.get(hidden).is_none(), "{hidden} in {json}");
        }
        let text = json.to_string();
        for secret in ["2024-01-03", "prescriptions", "seg-000001", "1234", "p-1"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn a_run_without_a_category_shows_its_status_and_a_success_no_error() {
        let mut run = failed_run();
        run.researcher_error = None;
        assert_eq!(
            run.for_researcher().researcher_error.as_deref(),
            Some("failed")
        );
        run.status = RunStatus::Succeeded;
        run.researcher_error = Some("x".into());
        assert_eq!(run.for_researcher().researcher_error, None);
    }

    #[test]
    fn durations_are_rounded_to_ten_seconds() {
        let d = |finished: &str| rounded_duration("2026-03-01T10:00:00Z", finished);
        assert_eq!(d("2026-03-01T10:00:04.9Z"), Some(0));
        assert_eq!(d("2026-03-01T10:00:05Z"), Some(10));
        assert_eq!(d("2026-03-01T10:01:04Z"), Some(60));
        assert_eq!(d("2026-03-01T09:59:00Z"), Some(0));
        assert_eq!(d("not a time"), None);
        assert_eq!(duration_text(Some(0)), "under 5 s");
        assert_eq!(duration_text(Some(60)), "about 60 s");
    }
}
