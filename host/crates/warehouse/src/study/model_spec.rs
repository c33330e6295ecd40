//! The manifest sections of the studies that evaluate or fit models:
//! `[component.<id>.tool.carrel.study.model]` (a model the researcher brings, evaluated by
//! the host from its own counts of scores) and `[…study.fit]` (a regression the host fits
//! from feature vectors it never releases). Both name their features in one syntax, which
//! the auditor reads and approves:
//!
//! - `age_years`, `hour`: the column's value (a missing age is refused by the study);
//! - `sex=F`, `visit_type=home`, `outcome=hospital`, `departement=2A`: 1 when the row has
//!   that value, else 0;
//! - `diagnoses:J10`: 1 when a code of the row starts with `J10`, else 0.

use super::table::{Labels, TableSpec};
use serde::Deserialize;
use std::collections::BTreeMap;

/// What a study hands the host.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StudyKind {
    /// Which declared measures each row adds to (world `study`).
    #[default]
    Counts,
    /// Each row's score from a model it runs (world `model-evaluation`).
    ModelEvaluation,
    /// Each row's feature vector and outcome (world `model-fit`).
    ModelFit,
}

impl StudyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StudyKind::Counts => "counts",
            StudyKind::ModelEvaluation => "model-evaluation",
            StudyKind::ModelFit => "model-fit",
        }
    }
}

/// The largest model file a study may bring.
pub const MAX_MODEL_BYTES: u64 = 64 << 20;
/// The subgroups an evaluation may be broken down by.
pub const SUBGROUPS: [&str; 6] = ["age_class", "sex", "region", "visit_type", "month", "year"];
const OUTCOMES: [&str; 4] = ["home", "hospital", "deceased", "unknown"];

/// `[…study.model]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The ONNX file, relative to the manifest; its sha-256 is part of the approval.
    pub file: String,
    /// The model's inputs, in order.
    pub features: Vec<String>,
    /// The outcome the model predicts: the value of `outcome` that is an event.
    pub outcome: String,
    /// Equal-width score bins over [0, 1].
    #[serde(default = "default_bins")]
    pub bins: u32,
    /// Thresholds at which sensitivity, specificity, PPV and NPV are computed: bin edges.
    #[serde(default)]
    pub thresholds: Vec<f64>,
    /// Subgroups the evaluation is also given for.
    #[serde(default)]
    pub subgroups: Vec<String>,
    #[serde(default = "default_age_classes")]
    pub age_classes: Vec<u8>,
    /// What one patient may add to one cell (bin and outcome) of a table.
    #[serde(default = "default_max_per_patient")]
    pub max_per_patient: u32,
    /// How many cells of a table one patient may add to.
    #[serde(default = "default_max_cells")]
    pub max_cells_per_patient: u32,
}

/// `[…study.fit]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FitSpec {
    /// `logistic` (binary outcome) or `poisson` (count).
    pub family: String,
    /// The entries of the feature vector the study hands, in order.
    pub features: Vec<String>,
    /// What the outcome is, in the feature syntax: `outcome=hospital`.
    pub outcome: String,
    /// DataSHIELD's `nfilter.glm`: parameters may be at most this fraction of the rows.
    #[serde(default = "default_max_parameter_fraction")]
    pub max_parameter_fraction: f64,
    /// What one patient may add to the fit (its rows beyond this are dropped).
    #[serde(default = "default_max_per_patient")]
    pub max_rows_per_patient: u32,
}

fn default_bins() -> u32 {
    20
}
fn default_age_classes() -> Vec<u8> {
    vec![2, 15, 75]
}
fn default_max_per_patient() -> u32 {
    3
}
fn default_max_cells() -> u32 {
    24
}
fn default_max_parameter_fraction() -> f64 {
    0.33
}

/// One parsed feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Feature {
    /// A numeric column's value.
    Value(&'static str),
    /// 1 when the column equals the value.
    Equals(&'static str, String),
    /// 1 when a code starts with the prefix.
    Code(String),
}

impl Feature {
    /// The canonical column it is built from.
    pub fn column(&self) -> &'static str {
        match self {
            Feature::Value(c) | Feature::Equals(c, _) => c,
            Feature::Code(_) => "diagnoses",
        }
    }

    /// Whether it takes only the values 0 and 1.
    pub fn is_indicator(&self) -> bool {
        !matches!(self, Feature::Value(_))
    }
}

const NUMERIC: [&str; 2] = ["age_years", "hour"];
const TEXT: [&str; 5] = ["sex", "visit_type", "outcome", "departement", "association"];

/// Parses one feature; the message says what is wrong with it.
pub fn parse_feature(text: &str) -> Result<Feature, String> {
    if let Some(column) = NUMERIC.iter().find(|c| **c == text) {
        return Ok(Feature::Value(column));
    }
    if let Some(prefix) = text.strip_prefix("diagnoses:") {
        let valid = !prefix.is_empty()
            && prefix.len() <= 8
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.');
        return match valid {
            true => Ok(Feature::Code(prefix.to_owned())),
            false => Err(format!(
                "`{text}`: a code prefix is 1 to 8 letters, digits or dots"
            )),
        };
    }
    if let Some((column, value)) = text.split_once('=')
        && let Some(column) = TEXT.iter().find(|c| **c == column)
    {
        if value.is_empty() || value.len() > 32 || value.chars().any(char::is_control) {
            return Err(format!(
                "`{text}`: the value is 1 to 32 printable characters"
            ));
        }
        return Ok(Feature::Equals(column, value.to_owned()));
    }
    Err(format!(
        "`{text}` is not a feature: `age_years`, `hour`, `COLUMN=VALUE` ({}), or `diagnoses:PREFIX`",
        TEXT.join(", ")
    ))
}

/// Parses every feature and checks each is built from a granted column.
fn parse_features(
    features: &[String],
    granted: &[String],
    field: &str,
) -> Result<Vec<Feature>, String> {
    if features.is_empty() || features.len() > 256 {
        return Err(format!("{field}.features: between 1 and 256 features"));
    }
    let mut parsed = Vec::new();
    for (i, text) in features.iter().enumerate() {
        if features[..i].contains(text) {
            return Err(format!("{field}.features: `{text}` is declared twice"));
        }
        let feature = parse_feature(text).map_err(|e| format!("{field}.features: {e}"))?;
        if !granted.iter().any(|g| g == feature.column()) {
            return Err(format!(
                "{field}.features: `{text}` needs column `{}`, which the study is not granted",
                feature.column()
            ));
        }
        parsed.push(feature);
    }
    Ok(parsed)
}

impl ModelSpec {
    pub fn validate(&self, granted: &[String]) -> Result<(), String> {
        parse_features(&self.features, granted, "model")?;
        if !OUTCOMES.contains(&self.outcome.as_str()) {
            return Err(format!(
                "model.outcome: `{}` is not an outcome ({})",
                self.outcome,
                OUTCOMES.join(", ")
            ));
        }
        if !(2..=100).contains(&self.bins) {
            return Err("model.bins must lie in 2..=100".into());
        }
        for &t in &self.thresholds {
            let edge = t * f64::from(self.bins);
            if !(t > 0.0 && t < 1.0) || (edge - edge.round()).abs() > 1e-9 {
                return Err(format!(
                    "model.thresholds: {t} is not a bin edge strictly between 0 and 1 (edges are multiples of 1/{})",
                    self.bins
                ));
            }
        }
        if self.subgroups.len() > 5 {
            return Err("model.subgroups: at most 5".into());
        }
        for (i, s) in self.subgroups.iter().enumerate() {
            if !SUBGROUPS.contains(&s.as_str()) || self.subgroups[..i].contains(s) {
                return Err(format!(
                    "model.subgroups: `{s}` is not one of {} or is named twice",
                    SUBGROUPS.join(", ")
                ));
            }
        }
        if self.file.is_empty() || self.file.split(['/', '\\']).any(|p| p == "..") {
            return Err(format!(
                "model.file: `{}` must be a path below the manifest's directory",
                self.file
            ));
        }
        self.table().validate()
    }

    /// The bin labels: `0.00-0.05`, … `0.95-1.00`.
    pub fn bin_labels(&self) -> Vec<String> {
        let n = self.bins as f64;
        (0..self.bins)
            .map(|b| format!("{:.2}-{:.2}", f64::from(b) / n, f64::from(b + 1) / n))
            .collect()
    }

    /// The host's table: rows with and without the outcome (`events`, `non_events`) per
    /// score bin and, by the grouping of each subgroup, per its value.
    pub fn table(&self) -> TableSpec {
        let mut dimensions = vec!["score_bin".to_owned()];
        dimensions.extend(self.subgroups.iter().cloned());
        let mut by = BTreeMap::from([("overall".to_owned(), vec!["score_bin".to_owned()])]);
        for s in &self.subgroups {
            by.insert(s.clone(), vec!["score_bin".to_owned(), s.clone()]);
        }
        TableSpec {
            dimensions,
            measures: vec!["events".into(), "non_events".into()],
            shares: BTreeMap::new(),
            age_classes: self.age_classes.clone(),
            max_per_patient: self.max_per_patient,
            max_cells_per_patient: self.max_cells_per_patient,
            by,
            labels: Some(Labels {
                name: "score_bin".into(),
                values: self.bin_labels(),
            }),
        }
    }
}

impl FitSpec {
    pub fn validate(&self, granted: &[String]) -> Result<Vec<Feature>, String> {
        if !["logistic", "poisson"].contains(&self.family.as_str()) {
            return Err(format!(
                "fit.family: `{}` is not `logistic` or `poisson`",
                self.family
            ));
        }
        let features = parse_features(&self.features, granted, "fit")?;
        parse_feature(&self.outcome).map_err(|e| format!("fit.outcome: {e}"))?;
        if !(self.max_parameter_fraction > 0.0 && self.max_parameter_fraction <= 1.0) {
            return Err("fit.max_parameter_fraction must lie in (0, 1]".into());
        }
        if !(1..=255).contains(&self.max_rows_per_patient) {
            return Err("fit.max_rows_per_patient must lie in 1..=255".into());
        }
        Ok(features)
    }

    /// The host's table for a fit, for planning and accounting: periods snap to whole
    /// months, and what it releases as counts is its rows and events (one cell each, at
    /// most `max_rows_per_patient` rows of a patient).
    pub fn table(&self) -> TableSpec {
        TableSpec {
            dimensions: vec!["month".into()],
            measures: vec!["rows".into(), "events".into()],
            shares: BTreeMap::new(),
            age_classes: default_age_classes(),
            max_per_patient: self.max_rows_per_patient,
            max_cells_per_patient: 2,
            by: BTreeMap::new(),
            labels: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted() -> Vec<String> {
        ["age_years", "sex", "diagnoses", "visit_type"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn features_parse_and_name_what_is_wrong() {
        assert_eq!(parse_feature("age_years"), Ok(Feature::Value("age_years")));
        assert_eq!(
            parse_feature("sex=F"),
            Ok(Feature::Equals("sex", "F".into()))
        );
        assert_eq!(
            parse_feature("diagnoses:J10"),
            Ok(Feature::Code("J10".into()))
        );
        assert!(
            parse_feature("patient_id")
                .unwrap_err()
                .contains("not a feature")
        );
        assert!(parse_feature("diagnoses:").unwrap_err().contains("prefix"));
        let err = parse_features(&["hour".into()], &granted(), "model").unwrap_err();
        assert!(err.contains("column `hour`"), "{err}");
    }

    fn model() -> ModelSpec {
        toml::from_str(
            r#"
file = "models/triage.onnx"
features = ["age_years", "sex=F", "diagnoses:J"]
outcome = "hospital"
thresholds = [0.1, 0.5]
subgroups = ["age_class", "sex"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_model_section_gives_the_hosts_table_of_bins_and_subgroups() {
        let m = model();
        m.validate(&granted()).unwrap();
        let table = m.table();
        assert_eq!(table.dimensions, ["score_bin", "age_class", "sex"]);
        assert_eq!(table.by["overall"], ["score_bin"]);
        assert_eq!(table.by["sex"], ["score_bin", "sex"]);
        assert_eq!(m.bin_labels()[0], "0.00-0.05");
        assert_eq!(m.bin_labels()[19], "0.95-1.00");
    }

    #[test]
    fn thresholds_off_the_bin_edges_and_paths_out_of_the_manifest_are_refused() {
        let mut m = model();
        m.thresholds = vec![0.12];
        assert!(m.validate(&granted()).unwrap_err().contains("bin edge"));
        let mut m = model();
        m.file = "../secret.onnx".into();
        assert!(m.validate(&granted()).unwrap_err().contains("below"));
        let mut m = model();
        m.outcome = "cured".into();
        assert!(
            m.validate(&granted())
                .unwrap_err()
                .contains("not an outcome")
        );
    }
}
