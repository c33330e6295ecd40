//! The output table a study's manifest declares, `[component.<id>.tool.carrel.study.table]`:
//! its dimensions (each computed by the host from the row a contribution names, except
//! one optional study-chosen dimension of declared labels), its measures, shares, the bound
//! on each patient's contributions and the coarser groupings a run may ask for. The auditor
//! approves it with the rest of the section; nothing a study says can add a column or a
//! value outside it.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// The most dimensions a table may have: cells are keyed by fixed-size arrays.
pub const MAX_DIMENSIONS: usize = 6;
/// The most measures a table may have.
pub const MAX_MEASURES: usize = 16;
/// The most values the study-chosen dimension may declare.
pub const MAX_LABELS: usize = 1000;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub dimensions: Vec<String>,
    pub measures: Vec<String>,
    /// Share column → [numerator measure, denominator measure], over consultations.
    #[serde(default)]
    pub shares: BTreeMap<String, [String; 2]>,
    /// Upper bounds of the age classes but the last: `[2, 15, 75]` gives `<2`, `2-14`,
    /// `15-74`, `75+`.
    #[serde(default = "default_age_classes")]
    pub age_classes: Vec<u8>,
    /// What one patient may add to one cell of one measure.
    #[serde(default = "default_max_per_patient")]
    pub max_per_patient: u32,
    /// How many (cell, measure) pairs one patient may add to in a run: with
    /// `max_per_patient`, the bound a release's privacy loss is computed from.
    #[serde(default = "default_max_cells_per_patient")]
    pub max_cells_per_patient: u32,
    /// Named coarser groupings: a run with `by=NAME` keeps only these dimensions.
    #[serde(default)]
    pub by: BTreeMap<String, Vec<String>>,
    /// The one dimension whose value the study chooses, from declared values.
    #[serde(default)]
    pub labels: Option<Labels>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Labels {
    pub name: String,
    pub values: Vec<String>,
}

fn default_age_classes() -> Vec<u8> {
    vec![2, 15, 75]
}

fn default_max_per_patient() -> u32 {
    1
}

fn default_max_cells_per_patient() -> u32 {
    24
}

/// A dimension of the output, and how the host computes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// ISO week of `date`, labelled `YYYY-Www`.
    Week,
    /// Month of `date`, `YYYY-MM`.
    Month,
    /// Year of `date`.
    Year,
    /// Region of `departement`.
    Region,
    Departement,
    /// Age class of `age_years`, with the table's bounds.
    AgeClass,
    Sex,
    VisitType,
    Association,
    Outcome,
    /// The study-chosen dimension of declared labels.
    Label,
}

impl Dimension {
    const HOST_COMPUTED: [(&'static str, Dimension); 10] = [
        ("week", Dimension::Week),
        ("month", Dimension::Month),
        ("year", Dimension::Year),
        ("region", Dimension::Region),
        ("departement", Dimension::Departement),
        ("age_class", Dimension::AgeClass),
        ("sex", Dimension::Sex),
        ("visit_type", Dimension::VisitType),
        ("association", Dimension::Association),
        ("outcome", Dimension::Outcome),
    ];

    /// The canonical column the host reads to compute it, if any.
    pub fn source_column(self) -> Option<&'static str> {
        Some(match self {
            Dimension::Week | Dimension::Month | Dimension::Year => "date",
            Dimension::Region | Dimension::Departement => "departement",
            Dimension::AgeClass => "age_years",
            Dimension::Sex => "sex",
            Dimension::VisitType => "visit_type",
            Dimension::Association => "association",
            Dimension::Outcome => "outcome",
            Dimension::Label => return None,
        })
    }
}

/// The names a study may not use for measures, shares or labels: they would collide
/// with the columns the host writes.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 48
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl TableSpec {
    /// The kind of each declared dimension, in order.
    pub fn dimension_kinds(&self) -> Vec<Dimension> {
        self.dimensions
            .iter()
            .map(|name| self.kind_of(name).expect("validated"))
            .collect()
    }

    fn kind_of(&self, name: &str) -> Option<Dimension> {
        if self.labels.as_ref().is_some_and(|l| l.name == name) {
            return Some(Dimension::Label);
        }
        Dimension::HOST_COMPUTED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    /// Labels of the age classes: `<2`, `2-14`, `15-74`, `75+` for `[2, 15, 75]`.
    pub fn age_class_labels(&self) -> Vec<String> {
        let bounds = &self.age_classes;
        let mut labels = Vec::with_capacity(bounds.len() + 1);
        for (i, upper) in bounds.iter().enumerate() {
            labels.push(match i {
                0 => format!("<{upper}"),
                _ => format!("{}-{}", bounds[i - 1], upper - 1),
            });
        }
        labels.push(format!("{}+", bounds.last().copied().unwrap_or(0)));
        labels
    }

    /// The released columns after the dimensions: each measure's consultations, then its
    /// distinct patients.
    pub fn patients_column(measure: &str) -> String {
        format!("{measure}_patients")
    }

    /// Checks what serde cannot; every message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = BTreeSet::new();
        let mut unique = |what: &str, name: &str| -> Result<(), String> {
            if names.insert(name.to_owned()) {
                Ok(())
            } else {
                Err(format!("table.{what}: `{name}` is used twice"))
            }
        };
        if self.dimensions.is_empty() {
            return Err("table.dimensions: at least one dimension is needed".into());
        }
        if self.dimensions.len() > MAX_DIMENSIONS {
            return Err(format!(
                "table.dimensions: at most {MAX_DIMENSIONS} dimensions"
            ));
        }
        if let Some(labels) = &self.labels {
            if !is_plain_name(&labels.name) || self.kind_of_host(&labels.name).is_some() {
                return Err(format!(
                    "table.labels.name: `{}` must be a lower-case name that is not a host dimension",
                    labels.name
                ));
            }
            if labels.values.is_empty() || labels.values.len() > MAX_LABELS {
                return Err(format!(
                    "table.labels.values: between 1 and {MAX_LABELS} values"
                ));
            }
            let mut seen = BTreeSet::new();
            for value in &labels.values {
                if value.is_empty()
                    || value.chars().count() > 64
                    || value.chars().any(char::is_control)
                {
                    return Err(format!(
                        "table.labels.values: {value:?} must be 1 to 64 printable characters"
                    ));
                }
                if !seen.insert(value) {
                    return Err(format!("table.labels.values: {value:?} is declared twice"));
                }
            }
            if !self.dimensions.contains(&labels.name) {
                return Err(format!(
                    "table.labels: `{}` is not among table.dimensions",
                    labels.name
                ));
            }
        }
        for name in &self.dimensions {
            if self.kind_of(name).is_none() {
                let known: Vec<&str> = Dimension::HOST_COMPUTED.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "table.dimensions: `{name}` is not a dimension the host computes ({}) nor table.labels.name",
                    known.join(", ")
                ));
            }
            unique("dimensions", name)?;
        }
        if self.measures.is_empty() || self.measures.len() > MAX_MEASURES {
            return Err(format!(
                "table.measures: between 1 and {MAX_MEASURES} measures"
            ));
        }
        for measure in &self.measures {
            if !is_plain_name(measure) {
                return Err(format!(
                    "table.measures: `{measure}` must be a lower-case name (a-z, 0-9, _)"
                ));
            }
            unique("measures", measure)?;
            unique("measures", &Self::patients_column(measure))?;
        }
        for (share, [numerator, denominator]) in &self.shares {
            if !is_plain_name(share) {
                return Err(format!("table.shares: `{share}` must be a lower-case name"));
            }
            unique("shares", share)?;
            for part in [numerator, denominator] {
                if !self.measures.contains(part) {
                    return Err(format!(
                        "table.shares.{share}: `{part}` is not a declared measure"
                    ));
                }
            }
        }
        if self.age_classes.is_empty()
            || self.age_classes.windows(2).any(|w| w[0] >= w[1])
            || self.age_classes[0] == 0
            || *self.age_classes.last().expect("not empty") > 90
        {
            return Err(
                "table.age_classes: increasing upper bounds between 1 and 90, such as [2, 15, 75]"
                    .into(),
            );
        }
        if !(1..=255).contains(&self.max_per_patient) {
            return Err("table.max_per_patient must lie in 1..=255".into());
        }
        if !(1..=4096).contains(&self.max_cells_per_patient) {
            return Err("table.max_cells_per_patient must lie in 1..=4096".into());
        }
        for (variant, kept) in &self.by {
            if variant.is_empty() || variant.len() > 48 {
                return Err(format!("table.by: `{variant}` is not a usable name"));
            }
            let mut seen = BTreeSet::new();
            for dimension in kept {
                if !self.dimensions.contains(dimension) || !seen.insert(dimension) {
                    return Err(format!(
                        "table.by.{variant}: `{dimension}` is not a declared dimension, or is named twice"
                    ));
                }
            }
        }
        Ok(())
    }

    fn kind_of_host(&self, name: &str) -> Option<Dimension> {
        Dimension::HOST_COMPUTED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    /// The indexes (into `dimensions`) a run keeps, for its `by` parameter.
    pub fn kept_dimensions(&self, by: Option<&str>) -> Result<Vec<usize>, String> {
        let Some(by) = by else {
            return Ok((0..self.dimensions.len()).collect());
        };
        let Some(kept) = self.by.get(by) else {
            let mut names: Vec<&str> = self.by.keys().map(String::as_str).collect();
            names.insert(0, "(omitted: every dimension)");
            return Err(format!(
                "by={by:?} is not a declared grouping ({})",
                names.join(", ")
            ));
        };
        Ok(self
            .dimensions
            .iter()
            .enumerate()
            .filter(|(_, d)| kept.contains(d))
            .map(|(i, _)| i)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ili() -> TableSpec {
        toml::from_str(
            r#"
dimensions = ["week", "region", "age_class"]
measures = ["coded", "ili"]
shares = { ili_share = ["ili", "coded"] }
max_per_patient = 3
by = { national = ["week"] }
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_surveillance_table_validates_with_default_age_classes() {
        let table = ili();
        table.validate().unwrap();
        assert_eq!(table.age_class_labels(), ["<2", "2-14", "15-74", "75+"]);
        assert_eq!(
            table.dimension_kinds(),
            [Dimension::Week, Dimension::Region, Dimension::AgeClass]
        );
        assert_eq!(table.kept_dimensions(Some("national")).unwrap(), [0]);
        assert_eq!(table.kept_dimensions(None).unwrap(), [0, 1, 2]);
    }

    #[test]
    fn an_undeclared_grouping_is_refused_naming_the_declared_ones() {
        let err = ili().kept_dimensions(Some("patient")).unwrap_err();
        assert!(err.contains("national"), "{err}");
    }

    #[test]
    fn an_unknown_dimension_or_a_free_text_name_is_refused() {
        let mut table = ili();
        table.dimensions.push("patient_id".into());
        assert!(table.validate().unwrap_err().contains("patient_id"));
        let mut table = ili();
        table.measures.push("Rows Of Alice".into());
        assert!(table.validate().unwrap_err().contains("lower-case"));
    }

    #[test]
    fn a_measure_colliding_with_a_patients_column_is_refused() {
        let mut table = ili();
        table.measures.push("coded_patients".into());
        assert!(table.validate().unwrap_err().contains("used twice"));
    }

    #[test]
    fn a_label_dimension_must_be_declared_and_listed() {
        let mut table = ili();
        table.labels = Some(Labels {
            name: "score_bin".into(),
            values: vec!["low".into(), "high".into()],
        });
        assert!(table.validate().unwrap_err().contains("not among"));
        table.dimensions.push("score_bin".into());
        table.validate().unwrap();
        assert_eq!(table.dimension_kinds()[3], Dimension::Label);
    }

    #[test]
    fn shares_must_name_declared_measures() {
        let mut table = ili();
        table
            .shares
            .insert("x_share".into(), ["x".into(), "coded".into()]);
        assert!(table.validate().unwrap_err().contains("`x`"));
    }
}
