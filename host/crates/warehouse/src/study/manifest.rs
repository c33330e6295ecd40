//! A study's capability manifest: `[component.<id>.tool.carrel.study]` next to a
//! `[[trigger.study]] component = "<id>"` in spin.toml. It states who runs the study, why,
//! under which authorisation, the exact columns it reads, its disclosure policy, its limits
//! and its expiry. The host enforces every line of it.

use super::model_spec::{FitSpec, ModelSpec, StudyKind};
use super::table::TableSpec;
use carrel_disclosure::Policy;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use time::Date;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StudyTool {
    pub title: String,
    pub purpose: String,
    /// The authorisation the study runs under (e.g. a CNIL decision reference).
    pub legal_basis: String,
    pub principal_investigator: String,
    /// What the host hands the study at a time: one consultation, or one patient's.
    #[serde(default)]
    pub unit: Unit,
    /// Dataset name → the exact columns the study is handed.
    pub datasets: BTreeMap<String, Vec<String>>,
    /// Parameters the study receives, each with the values a run may give it.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    /// What the study hands the host: contributions to counts (the default), a model's
    /// scores, or feature vectors for a regression the host fits.
    #[serde(default)]
    pub kind: StudyKind,
    /// The output table, which the host fills from the study's contributions; for the
    /// model studies, the host's own, made from `model` or `fit` by [`StudyTool::validate`].
    #[serde(default)]
    pub table: Option<TableSpec>,
    /// The model a `model-evaluation` study runs and how it is evaluated.
    #[serde(default)]
    pub model: Option<ModelSpec>,
    /// The regression of a `model-fit` study.
    #[serde(default)]
    pub fit: Option<FitSpec>,
    /// Disclosure control of the output; never weaker than the operator's minimum.
    #[serde(default)]
    pub disclosure: Policy,
    #[serde(default = "default_time_limit")]
    pub time_limit_seconds: u64,
    #[serde(default = "default_memory_limit")]
    pub memory_limit_mb: u64,
    /// Last day (inclusive, `YYYY-MM-DD`) the study may run.
    pub expires: String,
}

/// What one call of the study sees as one group.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Each consultation on its own (a weekly indicator).
    #[default]
    Consultation,
    /// All of one patient's consultations of the period, in date order (a first episode,
    /// a re-consultation, a care pathway).
    Patient,
}

/// The dataset studies read, and the columns of it a study may be handed. Row identifiers
/// and patients' pseudonyms are not among them: the host groups rows by patient itself.
pub const STUDY_DATASET: &str = "consultations";
pub const HANDED_COLUMNS: [&str; 9] = [
    "date",
    "hour",
    "age_years",
    "sex",
    "departement",
    "visit_type",
    "association",
    "outcome",
    "diagnoses",
];

/// Parameters the host itself reads; a study may not declare them.
pub const HOST_PARAMS: [&str; 3] = ["from", "to", "by"];

fn default_time_limit() -> u64 {
    60
}

fn default_memory_limit() -> u64 {
    256
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StudyManifestError {
    #[error("study `{study}`: {message}")]
    Invalid { study: String, message: String },
}

impl StudyTool {
    /// The output table: declared, or made by the host for a model study (after
    /// [`StudyTool::validate`], which checks that there is one).
    pub fn table(&self) -> &TableSpec {
        self.table
            .as_ref()
            .expect("validated: every study has a table")
    }

    /// Checks what serde cannot: dates, non-empty grants, sane limits; and gives a model
    /// study its table.
    pub fn validate(&mut self, study: &str) -> Result<(), StudyManifestError> {
        let invalid = |message: String| StudyManifestError::Invalid {
            study: study.to_owned(),
            message,
        };
        self.expiry_date()
            .map_err(|e| invalid(format!("expires = {:?}: {e}", self.expires)))?;
        if self.datasets.len() != 1 || !self.datasets.contains_key(STUDY_DATASET) {
            return Err(invalid(format!(
                "datasets: a study reads dataset `{STUDY_DATASET}` (and only it)"
            )));
        }
        for column in &self.datasets[STUDY_DATASET] {
            if !HANDED_COLUMNS.contains(&column.as_str()) {
                return Err(invalid(format!(
                    "datasets.{STUDY_DATASET}: `{column}` is never handed to a study (columns: {}); the host groups rows by patient itself",
                    HANDED_COLUMNS.join(", ")
                )));
            }
        }
        let granted = &self.datasets[STUDY_DATASET];
        if let Some(twice) = granted
            .iter()
            .enumerate()
            .find(|(i, c)| granted[..*i].contains(c))
        {
            return Err(invalid(format!(
                "datasets.{STUDY_DATASET}: `{}` is granted twice",
                twice.1
            )));
        }
        for (name, values) in &self.params {
            if HOST_PARAMS.contains(&name.as_str()) {
                return Err(invalid(format!(
                    "params.{name}: `{name}` is a parameter the host reads itself"
                )));
            }
            if values.is_empty() || values.iter().any(|v| v.is_empty() || v.len() > 64) {
                return Err(invalid(format!(
                    "params.{name}: declare its values, each 1 to 64 characters"
                )));
            }
        }
        let granted = self.datasets[STUDY_DATASET].clone();
        self.table = Some(match (self.kind, &self.table, &self.model, &self.fit) {
            (StudyKind::Counts, Some(table), None, None) => {
                table.validate().map_err(invalid)?;
                table.clone()
            }
            (StudyKind::ModelEvaluation, None, Some(model), None) => {
                model.validate(&granted).map_err(invalid)?;
                model.table()
            }
            (StudyKind::ModelFit, None, None, Some(fit)) => {
                fit.validate(&granted).map_err(invalid)?;
                fit.table()
            }
            (kind, ..) => {
                let wanted = match kind {
                    StudyKind::Counts => "a [table] section",
                    StudyKind::ModelEvaluation => "a [model] section (the host makes the table)",
                    StudyKind::ModelFit => "a [fit] section (the host makes the table)",
                };
                return Err(invalid(format!(
                    "kind = \"{}\" takes {wanted}, and no other of table, model, fit",
                    kind.as_str()
                )));
            }
        });
        for (field, value) in [
            ("title", &self.title),
            ("purpose", &self.purpose),
            ("legal_basis", &self.legal_basis),
            ("principal_investigator", &self.principal_investigator),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(format!("{field} is empty")));
            }
        }
        if !(1..=3600).contains(&self.time_limit_seconds) {
            return Err(invalid("time_limit_seconds must lie in 1..=3600".into()));
        }
        if !(16..=4096).contains(&self.memory_limit_mb) {
            return Err(invalid("memory_limit_mb must lie in 16..=4096".into()));
        }
        Ok(())
    }

    pub fn expiry_date(&self) -> Result<Date, time::error::Parse> {
        parse_day(&self.expires)
    }

    pub fn grants(&self, dataset: &str, column: &str) -> bool {
        self.datasets
            .get(dataset)
            .is_some_and(|columns| columns.iter().any(|c| c == column))
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_day(text: &str) -> Result<Date, time::error::Parse> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format)
}

/// What an approval binds besides the binary: the manifest section's sha256 and, for a
/// study that brings a model, the model file's: `sha256(section hash ‖ model hash)`, so that
/// one changed byte of either needs a new approval. Also returns the model file's
/// sha256, for the auditor's report.
pub fn approval_sha256(
    manifest_text: &str,
    manifest_dir: &std::path::Path,
    study: &str,
    tool: &StudyTool,
) -> Result<(String, Option<String>), String> {
    let section = manifest_section_sha256(manifest_text, study).map_err(|e| e.to_string())?;
    let Some(model) = &tool.model else {
        return Ok((section, None));
    };
    let model_sha = model_file_sha256(manifest_dir, study, model)?;
    let both = hex::encode(Sha256::digest(format!("{section}{model_sha}").as_bytes()));
    Ok((both, Some(model_sha)))
}

/// The sha256 of a study's model file, which must exist and be at most
/// [`super::model_spec::MAX_MODEL_BYTES`] long.
pub fn model_file_sha256(
    manifest_dir: &std::path::Path,
    study: &str,
    model: &ModelSpec,
) -> Result<String, String> {
    let path = manifest_dir.join(&model.file);
    let size = std::fs::metadata(&path)
        .map_err(|e| format!("study `{study}`: model.file {}: {e}", path.display()))?
        .len();
    if size > super::model_spec::MAX_MODEL_BYTES {
        return Err(format!(
            "study `{study}`: model.file {} is {size} bytes, over the limit of {} bytes",
            path.display(),
            super::model_spec::MAX_MODEL_BYTES
        ));
    }
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("study `{study}`: model.file {}: {e}", path.display()))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// sha256 of the study's manifest section: its `[component.<id>]` table and its
/// `[[trigger.study]]` entries, as canonical JSON (keys sorted), so formatting and
/// comments do not matter but any change of meaning does.
pub fn manifest_section_sha256(
    manifest_text: &str,
    study: &str,
) -> Result<String, toml::de::Error> {
    let document: toml::Table = toml::from_str(manifest_text)?;
    let component = document
        .get("component")
        .and_then(|c| c.get(study))
        .cloned()
        .unwrap_or(toml::Value::Boolean(false));
    let triggers: Vec<toml::Value> = document
        .get("trigger")
        .and_then(|t| t.get("study"))
        .and_then(|s| s.as_array())
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e.get("component").and_then(|c| c.as_str()) == Some(study))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let section = serde_json::json!({ "component": component, "trigger": triggers });
    // serde_json's map is ordered by key, so this serialisation is canonical.
    Ok(hex::encode(Sha256::digest(
        serde_json::to_string(&section)
            .expect("JSON values serialise")
            .as_bytes(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2
[application]
name = "x"
[[trigger.study]]
component = "ili"
[component.ili]
source = "ili.wasm"
[component.ili.tool.carrel.study]
title = "ILI"
purpose = "surveillance"
legal_basis = "decision 2026-001"
principal_investigator = "Dr A"
expires = "2027-12-31"
datasets = { consultations = ["date", "diagnoses"] }
[component.ili.tool.carrel.study.table]
dimensions = ["week"]
measures = ["ili"]
"#;

    fn tool(text: &str) -> StudyTool {
        let doc: toml::Table = toml::from_str(text).unwrap();
        doc["component"]["ili"]["tool"]["carrel"]["study"]
            .clone()
            .try_into()
            .unwrap()
    }

    #[test]
    fn a_complete_study_section_parses_with_default_limits() {
        let mut t = tool(MANIFEST);
        t.validate("ili").unwrap();
        assert_eq!(t.time_limit_seconds, 60);
        assert!(t.grants("consultations", "date"));
        assert!(!t.grants("consultations", "patient_id"));
        assert_eq!(t.unit, Unit::Consultation);
        assert!(!t.grants("other", "date"));
    }

    #[test]
    fn an_invalid_expiry_is_refused_naming_the_study() {
        let mut t = tool(&MANIFEST.replace("2027-12-31", "2027-13-40"));
        let err = t.validate("ili").unwrap_err().to_string();
        assert!(
            err.contains("study `ili`") && err.contains("expires"),
            "{err}"
        );
    }

    #[test]
    fn a_grant_of_patient_pseudonyms_is_refused_naming_the_column() {
        let mut t = tool(&MANIFEST.replace("[\"date\", \"diagnoses\"]", "[\"patient_id\"]"));
        let err = t.validate("ili").unwrap_err().to_string();
        assert!(err.contains("`patient_id` is never handed"), "{err}");
    }

    #[test]
    fn a_column_granted_twice_is_refused() {
        let mut t = tool(&MANIFEST.replace("[\"date\", \"diagnoses\"]", "[\"date\", \"date\"]"));
        let err = t.validate("ili").unwrap_err().to_string();
        assert!(err.contains("granted twice"), "{err}");
    }

    #[test]
    fn manifest_hash_ignores_layout_but_not_meaning() {
        let a = manifest_section_sha256(MANIFEST, "ili").unwrap();
        let reformatted = MANIFEST.replace("title = \"ILI\"", "title   =   \"ILI\"  # comment");
        assert_eq!(a, manifest_section_sha256(&reformatted, "ili").unwrap());
        let widened = MANIFEST.replace(
            "[\"date\", \"diagnoses\"]",
            "[\"date\", \"diagnoses\", \"patient_id\"]",
        );
        assert_ne!(a, manifest_section_sha256(&widened, "ili").unwrap());
    }
}
