//! The manifest's feature syntax, read from one row of the typed batch: `age_years` and
//! `hour` (the value), `COLUMN=VALUE` (1 when the row has it, else 0) and
//! `diagnoses:PREFIX` (1 when a code of the row starts with it, else 0).

use crate::carrel::eds::study_types::{Consultations, Texts};

pub enum Feature {
    Age,
    Hour,
    Equals(Column, String),
    Code(String),
}

#[derive(Clone, Copy)]
pub enum Column {
    Sex,
    VisitType,
    Outcome,
    Departement,
    Association,
}

impl Feature {
    pub fn parse(text: &str) -> Result<Feature, String> {
        match text {
            "age_years" => return Ok(Feature::Age),
            "hour" => return Ok(Feature::Hour),
            _ => {}
        }
        if let Some(prefix) = text.strip_prefix("diagnoses:") {
            return Ok(Feature::Code(prefix.to_owned()));
        }
        let (column, value) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}` is not a feature"))?;
        let column = match column {
            "sex" => Column::Sex,
            "visit_type" => Column::VisitType,
            "outcome" => Column::Outcome,
            "departement" => Column::Departement,
            "association" => Column::Association,
            _ => return Err(format!("`{text}`: no column `{column}`")),
        };
        Ok(Feature::Equals(column, value.to_owned()))
    }

    /// The feature's value in row `row`, or `None` when the row does not have it (an
    /// unknown age, a column not granted).
    pub fn value(&self, batch: &Consultations, row: usize) -> Option<f64> {
        match self {
            Feature::Age => batch
                .age_years
                .get(row)
                .filter(|&&a| a != 255)
                .map(|&a| f64::from(a)),
            Feature::Hour => batch.hour.get(row).map(|&h| f64::from(h)),
            Feature::Equals(column, value) => {
                let texts = match column {
                    Column::Sex => &batch.sex,
                    Column::VisitType => &batch.visit_type,
                    Column::Outcome => &batch.outcome,
                    Column::Departement => &batch.departement,
                    Column::Association => &batch.association,
                };
                text(texts, row).map(|t| f64::from(u8::from(t == value)))
            }
            Feature::Code(prefix) => {
                let codes = &batch.diagnoses;
                let (from, to) = (
                    *codes.offsets.get(row)? as usize,
                    *codes.offsets.get(row + 1)? as usize,
                );
                let found = codes.keys[from..to]
                    .iter()
                    .any(|&k| codes.values[k as usize].starts_with(prefix.as_str()));
                Some(f64::from(u8::from(found)))
            }
        }
    }
}

fn text(texts: &Texts, row: usize) -> Option<&str> {
    let key = *texts.keys.get(row)?;
    texts.values.get(key as usize).map(String::as_str)
}
