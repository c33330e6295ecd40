//! Unit tests of a study without a host: build consultations, hand them to the study as
//! the host would (only the granted columns), and read back what each row added to.
//!
//! ```
//! use carrel_study_sdk::prelude::*;
//! use carrel_study_sdk::testing::{Consultation, Harness};
//!
//! struct Coded;
//!
//! impl Study for Coded {
//!     fn consultation(row: &Row, out: &mut Out) -> Result<(), StudyError> {
//!         if row.has_icd10_code() {
//!             out.add(row, "coded")?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let harness = Harness::new(&["coded"]).granting(&["diagnoses"]);
//! let added = harness.consultation::<Coded>(Consultation::new().diagnoses(&["J11"]));
//! assert_eq!(added.unwrap(), ["coded"]);
//! ```

use std::fmt;

use crate::batch::{COLUMNS, MISSING, UNKNOWN_AGE};
use crate::bindings::carrel::eds::study_types::{CodeLists, Consultations, Texts};
use crate::calendar::Date;
use crate::error::StudyError;
use crate::spec::Spec;
use crate::study::{Study, classify};

/// A consultation to hand a study in a test. Unset, `date` is 1970-01-01 and `hour` 0
/// (the host always has both), the age is unknown, texts are missing, there are no codes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consultation {
    date: i32,
    hour: u8,
    age_years: Option<u8>,
    sex: Option<String>,
    departement: Option<String>,
    visit_type: Option<String>,
    association: Option<String>,
    outcome: Option<String>,
    diagnoses: Vec<String>,
}

impl Consultation {
    pub fn new() -> Consultation {
        Consultation::default()
    }

    /// Panics unless `date` is a real `YYYY-MM-DD` day.
    pub fn date(mut self, date: &str) -> Consultation {
        self.date = Date::parse(date)
            .unwrap_or_else(|| panic!("`{date}` is not a date YYYY-MM-DD"))
            .days();
        self
    }

    pub fn hour(mut self, hour: u8) -> Consultation {
        self.hour = hour;
        self
    }

    pub fn age(mut self, years: u8) -> Consultation {
        self.age_years = Some(years);
        self
    }

    pub fn sex(mut self, sex: &str) -> Consultation {
        self.sex = Some(sex.into());
        self
    }

    pub fn departement(mut self, code: &str) -> Consultation {
        self.departement = Some(code.into());
        self
    }

    pub fn visit_type(mut self, visit_type: &str) -> Consultation {
        self.visit_type = Some(visit_type.into());
        self
    }

    pub fn association(mut self, association: &str) -> Consultation {
        self.association = Some(association.into());
        self
    }

    pub fn outcome(mut self, outcome: &str) -> Consultation {
        self.outcome = Some(outcome.into());
        self
    }

    pub fn diagnoses(mut self, codes: &[&str]) -> Consultation {
        self.diagnoses = codes.iter().map(|c| (*c).to_owned()).collect();
        self
    }
}

/// One contribution, read back by name: row `row` of group `group` adds to `measure`
/// (under `label` when the table has study-chosen labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub group: usize,
    pub row: usize,
    pub measure: String,
    pub label: Option<String>,
}

/// `measure`, or `measure[label]`.
impl fmt::Display for Added {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.label {
            None => f.write_str(&self.measure),
            Some(label) => write!(f, "{}[{label}]", self.measure),
        }
    }
}

/// A table, a grant and parameters, as a manifest section would declare them.
#[derive(Debug, Clone)]
pub struct Harness {
    measures: Vec<String>,
    labels: Vec<String>,
    params: Vec<(String, String)>,
    granted: Vec<&'static str>,
    spec: Spec,
}

impl Harness {
    /// A table of these measures, no labels, no parameters, every column granted.
    pub fn new(measures: &[&str]) -> Harness {
        let mut harness = Harness {
            measures: measures.iter().map(|m| (*m).to_owned()).collect(),
            labels: Vec::new(),
            params: Vec::new(),
            granted: COLUMNS.to_vec(),
            spec: Spec::default(),
        };
        harness.respec();
        harness
    }

    /// The values of the table's study-chosen dimension (`table.labels.values`).
    pub fn labels(mut self, labels: &[&str]) -> Harness {
        self.labels = labels.iter().map(|l| (*l).to_owned()).collect();
        self.respec();
        self
    }

    /// A run parameter (`--param name=value`). Panics if `name` is given twice.
    pub fn param(mut self, name: &str, value: &str) -> Harness {
        self.params.push((name.into(), value.into()));
        self.respec();
        self
    }

    /// Grants only these columns (`datasets = { consultations = [...] }`): the others
    /// are handed empty, as the host does. Panics on a name that is not a column.
    pub fn granting(mut self, columns: &[&str]) -> Harness {
        self.granted = columns
            .iter()
            .map(|name| {
                *COLUMNS
                    .iter()
                    .find(|column| *column == name)
                    .unwrap_or_else(|| panic!("`{name}` is not a column ({COLUMNS:?})"))
            })
            .collect();
        self
    }

    fn respec(&mut self) {
        let measures: Vec<&str> = self.measures.iter().map(String::as_str).collect();
        let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
        let params: Vec<(&str, &str)> = self
            .params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.spec = Spec::new(&measures, &labels, &params).expect("parameter names are unique");
    }

    /// The table as the study sees it.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Runs `S` as the host would: `start`, then one batch of these groups. Fails as
    /// the host would on a contribution naming a row, measure or label that does not
    /// exist.
    pub fn run<S: Study>(&self, groups: &[&[Consultation]]) -> Result<Vec<Added>, StudyError> {
        S::start(&self.spec)?;
        let columns = self.consultations(groups);
        let contributions = classify::<S>(&self.spec, &columns)?;
        let starts = &columns.groups;
        contributions
            .iter()
            .map(|c| {
                let group = starts.partition_point(|start| *start <= c.row);
                if group == 0 || group >= starts.len() {
                    return Err(StudyError::failed(format!(
                        "row {} is outside the batch",
                        c.row
                    )));
                }
                let measure = self.measures.get(c.measure as usize).ok_or_else(|| {
                    StudyError::failed(format!("measure {} is not declared", c.measure))
                })?;
                let label = match self.labels.is_empty() {
                    true => None,
                    false => Some(self.labels.get(c.label as usize).ok_or_else(|| {
                        StudyError::failed(format!("label {} is not declared", c.label))
                    })?),
                };
                Ok(Added {
                    group: group - 1,
                    row: (c.row - starts[group - 1]) as usize,
                    measure: measure.clone(),
                    label: label.cloned(),
                })
            })
            .collect()
    }

    /// What one consultation adds to, as `measure` or `measure[label]`, in the order the
    /// study added them.
    pub fn consultation<S: Study>(&self, row: Consultation) -> Result<Vec<String>, StudyError> {
        let added = self.run::<S>(&[&[row]])?;
        Ok(added.iter().map(Added::to_string).collect())
    }

    /// The record the host would hand for these groups, in order (only the granted
    /// columns filled).
    pub fn consultations(&self, groups: &[&[Consultation]]) -> Consultations {
        let rows: Vec<&Consultation> = groups.iter().flat_map(|g| g.iter()).collect();
        let has = |name: &str| self.granted.contains(&name);
        let column = |name: &str, value: &dyn Fn(&Consultation) -> Option<String>| match has(name) {
            true => texts(rows.iter().map(|row| value(row))),
            false => texts(std::iter::empty()),
        };
        let mut groups_column = vec![0];
        for group in groups {
            groups_column.push(groups_column.last().unwrap() + group.len() as u32);
        }
        let mut diagnoses = CodeLists {
            values: Vec::new(),
            offsets: Vec::new(),
            keys: Vec::new(),
        };
        if has("diagnoses") {
            diagnoses.offsets.push(0);
            for row in &rows {
                for code in &row.diagnoses {
                    let key = intern(&mut diagnoses.values, code);
                    diagnoses.keys.push(key);
                }
                diagnoses.offsets.push(diagnoses.keys.len() as u32);
            }
        }
        Consultations {
            // The host's seeds are keyed hashes of the patient; the group's index will do.
            seeds: (0..groups.len() as u64).collect(),
            groups: groups_column,
            date: match has("date") {
                true => rows.iter().map(|row| row.date).collect(),
                false => Vec::new(),
            },
            hour: match has("hour") {
                true => rows.iter().map(|row| row.hour).collect(),
                false => Vec::new(),
            },
            age_years: match has("age_years") {
                true => rows
                    .iter()
                    .map(|row| row.age_years.unwrap_or(UNKNOWN_AGE))
                    .collect(),
                false => Vec::new(),
            },
            sex: column("sex", &|row| row.sex.clone()),
            departement: column("departement", &|row| row.departement.clone()),
            visit_type: column("visit_type", &|row| row.visit_type.clone()),
            association: column("association", &|row| row.association.clone()),
            outcome: column("outcome", &|row| row.outcome.clone()),
            diagnoses,
        }
    }
}

/// Dictionary-encodes values as the host does.
fn texts(values: impl Iterator<Item = Option<String>>) -> Texts {
    let mut out = Texts {
        values: Vec::new(),
        keys: Vec::new(),
    };
    for value in values {
        let key = match value {
            None => MISSING,
            Some(value) => intern(&mut out.values, &value),
        };
        out.keys.push(key);
    }
    out
}

fn intern(values: &mut Vec<String>, value: &str) -> u32 {
    match values.iter().position(|v| v == value) {
        Some(key) => key as u32,
        None => {
            values.push(value.to_owned());
            (values.len() - 1) as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Out, Patient};

    /// Adds to whatever `op` says: a study that trusts its parameters.
    struct Echo;

    impl Study for Echo {
        fn patient(rows: &Patient, out: &mut Out) -> Result<(), StudyError> {
            let measure = out.params().required("measure")?;
            for row in rows {
                out.add(&row, measure)?;
            }
            Ok(())
        }
    }

    /// Names a row, a measure and a label that do not exist, unchecked.
    struct Raw;

    impl Study for Raw {
        fn patient(_: &Patient, out: &mut Out) -> Result<(), StudyError> {
            let (row, measure, label) = match out.params().required("what")? {
                "row" => (99, 0, 0),
                "measure" => (0, 9, 0),
                _ => (0, 0, 9999),
            };
            out.add_raw(row, measure, label);
            Ok(())
        }
    }

    #[test]
    fn parameters_reach_the_study() {
        let harness = Harness::new(&["a", "b"]).param("measure", "b");
        assert_eq!(
            harness.consultation::<Echo>(Consultation::new()).unwrap(),
            ["b"]
        );
    }

    #[test]
    fn rows_are_read_back_by_group_and_position() {
        let harness = Harness::new(&["a"]).param("measure", "a");
        let two = [Consultation::new(), Consultation::new()];
        let added = harness.run::<Echo>(&[&two, &[], &two]).unwrap();
        let at: Vec<(usize, usize)> = added.iter().map(|a| (a.group, a.row)).collect();
        assert_eq!(at, [(0, 0), (0, 1), (2, 0), (2, 1)]);
    }

    #[test]
    fn what_the_host_would_refuse_is_an_error() {
        for (what, why) in [
            ("row", "row 99 is outside the batch"),
            ("measure", "measure 9 is not declared"),
            ("label", "label 9999 is not declared"),
        ] {
            let harness = Harness::new(&["n"]).labels(&["x"]).param("what", what);
            let error = harness
                .consultation::<Raw>(Consultation::new())
                .unwrap_err();
            assert_eq!(error.message(), why);
        }
    }

    #[test]
    fn only_granted_columns_are_handed() {
        let harness = Harness::new(&["n"]).granting(&["sex"]);
        let columns =
            harness.consultations(&[&[Consultation::new().sex("F").age(3).date("2024-01-01")]]);
        assert_eq!(columns.sex.values, ["F"]);
        assert!(columns.age_years.is_empty() && columns.date.is_empty());
        assert!(columns.diagnoses.offsets.is_empty());
    }

    #[test]
    #[should_panic(expected = "`patient_id` is not a column")]
    fn a_grant_of_an_unknown_column_is_a_mistake_in_the_test() {
        let _ = Harness::new(&["n"]).granting(&["patient_id"]);
    }
}
