//! Feature vectors of rows, built from the feature strings a manifest declares for a model
//! (`model.features` of the WIT): what a model-evaluation study feeds its model and what a
//! model-fit study hands the host. Plain Rust with no model runtime, so both kinds of study
//! share one reading of the syntax.
//!
//! # Syntax
//!
//! | feature | value |
//! | --- | --- |
//! | `age_years` | the age in years (0–90, top-coded at 90) |
//! | `hour` | the consultation's start hour, 0–23 |
//! | `sex=F`, `visit_type=home`, `outcome=hospital`, `departement=2A`, `association=X` | 1.0 when the column holds exactly that value, 0.0 when it holds another or none |
//! | `diagnoses:J10` | 1.0 when one of the row's codes starts with `J10` (so `J10`, `J101`…), 0.0 otherwise |
//!
//! Values are case-sensitive and compared as stored (ICD-10 upper case without a dot;
//! codes of other systems are stored as `system|code`, so `diagnoses:J10` never matches
//! them).
//!
//! # Missing values
//!
//! A condition on a text column that the row has no value for does not hold: 0.0. A row
//! whose age is unknown has no vector when `age_years` is a feature: a model is never fed
//! an age made up for it, and such a row gets no score (the host sees which rows went
//! unscored). A feature that reads a column the manifest does not grant is an error for
//! the whole batch, naming the feature and the column, since every row would be missing.

use std::fmt;

use crate::batch::{Batch, UNKNOWN_AGE};
use crate::bindings::carrel::eds::study_types::{Consultations, Texts};
use crate::error::StudyError;

/// The most `diagnoses:` features one model may declare (one bit each per dictionary code).
pub const MAX_CODE_FEATURES: usize = 64;

/// A text column a condition may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextColumn {
    Sex,
    Departement,
    VisitType,
    Association,
    Outcome,
}

impl TextColumn {
    const ALL: [(&'static str, TextColumn); 5] = [
        ("sex", TextColumn::Sex),
        ("departement", TextColumn::Departement),
        ("visit_type", TextColumn::VisitType),
        ("association", TextColumn::Association),
        ("outcome", TextColumn::Outcome),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, column)| *column == self)
            .map(|(name, _)| *name)
            .expect("every column is listed")
    }

    fn of(self, columns: &Consultations) -> &Texts {
        match self {
            TextColumn::Sex => &columns.sex,
            TextColumn::Departement => &columns.departement,
            TextColumn::VisitType => &columns.visit_type,
            TextColumn::Association => &columns.association,
            TextColumn::Outcome => &columns.outcome,
        }
    }
}

/// One declared feature, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Feature {
    AgeYears,
    Hour,
    Is {
        column: TextColumn,
        value: String,
    },
    /// Index among the code features, and the prefix.
    Code {
        bit: usize,
        prefix: String,
    },
}

impl Feature {
    fn column(&self) -> &'static str {
        match self {
            Feature::AgeYears => "age_years",
            Feature::Hour => "hour",
            Feature::Is { column, .. } => column.name(),
            Feature::Code { .. } => "diagnoses",
        }
    }
}

/// Why a declared feature list cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureError {
    message: String,
}

impl FeatureError {
    fn new(message: String) -> FeatureError {
        FeatureError { message }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for FeatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for FeatureError {}

impl From<FeatureError> for StudyError {
    fn from(error: FeatureError) -> StudyError {
        StudyError::failed(error.message)
    }
}

/// A declared feature list, parsed once and applied to every batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    features: Vec<Feature>,
    declared: Vec<String>,
}

/// The feature vectors of the rows of one batch that have one, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    /// The batch index of each vector's row, ascending.
    pub rows: Vec<u32>,
    /// `rows.len() × width` values: vector `i` is `values[i * width..(i + 1) * width]`.
    pub values: Vec<f32>,
    pub width: usize,
}

impl FeatureMatrix {
    /// The vector of the `i`-th row that has one.
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

impl Features {
    /// Parses the declared features, in order. Refuses an empty list, an unknown name, a
    /// condition without a value, and more than [`MAX_CODE_FEATURES`] code prefixes.
    pub fn parse<S: AsRef<str>>(declared: &[S]) -> Result<Features, FeatureError> {
        if declared.is_empty() {
            return Err(FeatureError::new("the model declares no feature".into()));
        }
        let mut features = Vec::with_capacity(declared.len());
        let mut codes = 0;
        for (index, text) in declared.iter().map(AsRef::as_ref).enumerate() {
            let feature = parse_one(text, codes).map_err(|why| {
                FeatureError::new(format!("feature {} `{text}`: {why}", index + 1))
            })?;
            if let Feature::Code { .. } = feature {
                codes += 1;
            }
            features.push(feature);
        }
        Ok(Features {
            features,
            declared: declared.iter().map(|s| s.as_ref().to_owned()).collect(),
        })
    }

    /// The number of features: the width of every vector.
    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    /// The features as declared.
    pub fn declared(&self) -> &[String] {
        &self.declared
    }

    /// The columns the features read, each once, in the order of first use: what the
    /// manifest must grant.
    pub fn columns(&self) -> Vec<&'static str> {
        let mut columns = Vec::new();
        for feature in &self.features {
            if !columns.contains(&feature.column()) {
                columns.push(feature.column());
            }
        }
        columns
    }

    /// The vectors of every row of `columns` that has one (see the module's note on
    /// missing values). Refuses a malformed record, and a feature whose column was not
    /// handed (the manifest does not grant it) when the batch has rows.
    pub fn matrix(&self, columns: &Consultations) -> Result<FeatureMatrix, StudyError> {
        let batch = Batch::new(columns)?;
        let n = batch.len();
        let width = self.len();
        let mut matrix = FeatureMatrix {
            rows: Vec::with_capacity(n),
            values: Vec::with_capacity(n * width),
            width,
        };
        if n == 0 {
            return Ok(matrix);
        }
        self.check_granted(columns)?;
        let compiled = self.compile(columns);
        let needs_age = self.features.contains(&Feature::AgeYears);
        let mut codes = CodeBits::default();
        for row in 0..n {
            if needs_age && columns.age_years[row] == UNKNOWN_AGE {
                continue;
            }
            codes.load(&compiled.code_bits, columns, row);
            matrix.rows.push(row as u32);
            for feature in &compiled.features {
                matrix.values.push(match *feature {
                    Compiled::AgeYears => f32::from(columns.age_years[row]),
                    Compiled::Hour => f32::from(columns.hour[row]),
                    Compiled::Is { column, key } => {
                        let stored = column.of(columns).keys[row];
                        flag(key.is_some_and(|key| stored == key))
                    }
                    Compiled::Code { bit } => flag(codes.has(bit)),
                });
            }
        }
        Ok(matrix)
    }

    fn check_granted(&self, columns: &Consultations) -> Result<(), StudyError> {
        for (feature, declared) in self.features.iter().zip(&self.declared) {
            let handed = match feature {
                Feature::AgeYears => !columns.age_years.is_empty(),
                Feature::Hour => !columns.hour.is_empty(),
                Feature::Is { column, .. } => !column.of(columns).keys.is_empty(),
                Feature::Code { .. } => !columns.diagnoses.offsets.is_empty(),
            };
            if !handed {
                return Err(StudyError::failed(format!(
                    "feature `{declared}` reads column `{}`, which the manifest does not grant",
                    feature.column()
                )));
            }
        }
        Ok(())
    }

    /// Resolves the features against this batch's dictionaries, so a row costs integer
    /// comparisons only.
    fn compile(&self, columns: &Consultations) -> CompiledBatch {
        let mut code_bits = vec![0u64; columns.diagnoses.values.len()];
        let features = self
            .features
            .iter()
            .map(|feature| match feature {
                Feature::AgeYears => Compiled::AgeYears,
                Feature::Hour => Compiled::Hour,
                Feature::Is { column, value } => Compiled::Is {
                    column: *column,
                    key: column
                        .of(columns)
                        .values
                        .iter()
                        .position(|stored| stored == value)
                        .map(|key| key as u32),
                },
                Feature::Code { bit, prefix } => {
                    for (code, bits) in columns.diagnoses.values.iter().zip(&mut code_bits) {
                        if code.starts_with(prefix.as_str()) {
                            *bits |= 1 << bit;
                        }
                    }
                    Compiled::Code { bit: *bit }
                }
            })
            .collect();
        CompiledBatch {
            features,
            code_bits,
        }
    }
}

fn parse_one(text: &str, codes: usize) -> Result<Feature, String> {
    const SYNTAX: &str = "expected `age_years`, `hour`, `COLUMN=VALUE` (COLUMN one of sex, \
                          departement, visit_type, association, outcome) or `diagnoses:PREFIX`";
    match text {
        "age_years" => return Ok(Feature::AgeYears),
        "hour" => return Ok(Feature::Hour),
        _ => {}
    }
    if let Some(prefix) = text.strip_prefix("diagnoses:") {
        if prefix.is_empty() || prefix.trim() != prefix {
            return Err("a code prefix must be non-empty, without spaces around it".into());
        }
        if codes >= MAX_CODE_FEATURES {
            return Err(format!("at most {MAX_CODE_FEATURES} `diagnoses:` features"));
        }
        return Ok(Feature::Code {
            bit: codes,
            prefix: prefix.to_owned(),
        });
    }
    let Some((name, value)) = text.split_once('=') else {
        return Err(SYNTAX.into());
    };
    let Some((_, column)) = TextColumn::ALL.iter().find(|(known, _)| *known == name) else {
        return Err(format!(
            "`{name}` is not a column a condition can test; {SYNTAX}"
        ));
    };
    if value.is_empty() || value.trim() != value {
        return Err("the value must be non-empty, without spaces around it".into());
    }
    Ok(Feature::Is {
        column: *column,
        value: value.to_owned(),
    })
}

fn flag(holds: bool) -> f32 {
    if holds { 1.0 } else { 0.0 }
}

enum Compiled {
    AgeYears,
    Hour,
    /// `key` is the dictionary key of the value in this batch, if it occurs.
    Is {
        column: TextColumn,
        key: Option<u32>,
    },
    Code {
        bit: usize,
    },
}

struct CompiledBatch {
    features: Vec<Compiled>,
    /// Per dictionary code, the code features it matches.
    code_bits: Vec<u64>,
}

/// The code features one row matches.
#[derive(Default)]
struct CodeBits(u64);

impl CodeBits {
    fn load(&mut self, code_bits: &[u64], columns: &Consultations, row: usize) {
        self.0 = 0;
        if code_bits.is_empty() {
            return;
        }
        let lists = &columns.diagnoses;
        let (start, end) = (lists.offsets[row] as usize, lists.offsets[row + 1] as usize);
        for key in &lists.keys[start..end] {
            self.0 |= code_bits.get(*key as usize).copied().unwrap_or(0);
        }
    }

    fn has(&self, bit: usize) -> bool {
        self.0 & (1 << bit) != 0
    }
}

#[cfg(test)]
#[path = "features_tests.rs"]
mod tests;
