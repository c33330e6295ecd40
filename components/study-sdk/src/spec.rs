//! What the host tells a study before its first batch: the approved table's measures,
//! the values of its study-chosen dimension, and the run's declared parameters.

use crate::bindings::carrel::eds::study_types::TableSpec;
use crate::error::StudyError;
use crate::params::Params;

/// The approved output table as the study sees it (the WIT `table-spec`): the names its
/// contributions refer to. Dimensions are not here: the host computes them from the rows
/// themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spec {
    measures: Vec<String>,
    labels: Vec<String>,
    params: Params,
}

impl Spec {
    /// A table of these measures, study-chosen labels (empty when the table has none) and
    /// run parameters; mostly for tests (see [`crate::testing::Harness`]).
    pub fn new(
        measures: &[&str],
        labels: &[&str],
        params: &[(&str, &str)],
    ) -> Result<Spec, StudyError> {
        Ok(Spec {
            measures: measures.iter().map(|m| (*m).to_owned()).collect(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            params: Params::new(params.iter().copied())?,
        })
    }

    pub(crate) fn from_wit(table: TableSpec) -> Result<Spec, StudyError> {
        Ok(Spec {
            measures: table.measures,
            labels: table.labels,
            params: Params::new(table.params)?,
        })
    }

    /// The declared measures, in the manifest's order.
    pub fn measures(&self) -> &[String] {
        &self.measures
    }

    /// The declared values of the study-chosen dimension (`table.labels.values`), empty
    /// when the table has none.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The run's values of the declared parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The index of measure `name` in [`Spec::measures`].
    pub fn measure_index(&self, name: &str) -> Option<u32> {
        position(&self.measures, name)
    }

    /// The index of label `value` in [`Spec::labels`].
    pub fn label_index(&self, value: &str) -> Option<u32> {
        position(&self.labels, value)
    }

    /// [`Spec::measure_index`], or the error a study returns for a name the manifest does
    /// not declare.
    pub(crate) fn measure(&self, name: &str) -> Result<u32, StudyError> {
        self.measure_index(name).ok_or_else(|| {
            StudyError::failed(format!(
                "measure `{name}` is not declared in the manifest's table (measures: {})",
                self.measures.join(", ")
            ))
        })
    }

    pub(crate) fn label(&self, value: &str) -> Result<u32, StudyError> {
        if self.labels.is_empty() {
            return Err(StudyError::failed(format!(
                "label `{value}`: the manifest's table declares no `labels`"
            )));
        }
        self.label_index(value).ok_or_else(|| {
            StudyError::failed(format!(
                "label `{value}` is not among the table's declared labels"
            ))
        })
    }
}

/// A short linear search: a table has at most 16 measures, and a few labels usually.
fn position(names: &[String], name: &str) -> Option<u32> {
    names.iter().position(|n| n == name).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_to_their_declared_index() {
        let spec = Spec::new(&["coded", "ili"], &["low", "high"], &[("op", "x")]).unwrap();
        assert_eq!(spec.measure_index("ili"), Some(1));
        assert_eq!(spec.measure_index("gastro"), None);
        assert_eq!(spec.label_index("high"), Some(1));
        assert_eq!(spec.params().get("op"), Some("x"));
    }

    #[test]
    fn an_undeclared_name_is_an_error_listing_the_declared_ones() {
        let spec = Spec::new(&["coded", "ili"], &[], &[]).unwrap();
        assert_eq!(
            spec.measure("gastro").unwrap_err().message(),
            "measure `gastro` is not declared in the manifest's table (measures: coded, ili)"
        );
        assert!(
            spec.label("x")
                .unwrap_err()
                .message()
                .contains("no `labels`")
        );
    }

    #[test]
    fn the_host_record_becomes_a_spec() {
        let spec = Spec::from_wit(TableSpec {
            measures: vec!["n".into()],
            labels: vec![],
            params: vec![("op".into(), "count".into())],
        })
        .unwrap();
        assert_eq!(spec, Spec::new(&["n"], &[], &[("op", "count")]).unwrap());
    }
}
