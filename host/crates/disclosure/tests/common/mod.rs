//! Builders for study output tables and readers for released ones.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt64Type};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use carrel_disclosure::metadata::{COUNT, DENOMINATOR, KIND, NUMERATOR, PATIENTS, SHARE, TOTAL_OF};
use carrel_disclosure::{DisclosureError, Policy, ReadContext, Released, apply};

/// A study output table under construction, column by column.
#[derive(Default)]
pub struct Table {
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    pub fn column(mut self, field: Field, column: ArrayRef) -> Table {
        self.fields.push(field);
        self.columns.push(column);
        self
    }

    pub fn dimension(self, name: &str, values: &[&str]) -> Table {
        let array = StringArray::from(values.to_vec());
        self.column(Field::new(name, DataType::Utf8, false), Arc::new(array))
    }

    pub fn count(self, name: &str, values: &[i64]) -> Table {
        self.count_with(name, values, &[])
    }

    pub fn count_with(self, name: &str, values: &[i64], extra: &[(&str, &str)]) -> Table {
        let mut metadata = meta(&[(KIND, COUNT)]);
        metadata.extend(meta(extra));
        let field = Field::new(name, DataType::Int64, false).with_metadata(metadata);
        self.column(field, Arc::new(Int64Array::from(values.to_vec())))
    }

    pub fn total(self, name: &str, values: &[i64], parts: &str) -> Table {
        self.count_with(name, values, &[(TOTAL_OF, parts)])
    }

    /// A count column (of consultations, say) whose distinct patients are in the count
    /// column `patients`.
    pub fn linked(self, name: &str, values: &[i64], patients: &str) -> Table {
        self.count_with(name, values, &[(PATIENTS, patients)])
    }

    /// A share column whose study-computed values are deliberately wrong, to show
    /// they are never released.
    pub fn share(self, name: &str, numerator: &str, denominator: &str, rows: usize) -> Table {
        let metadata = meta(&[
            (KIND, SHARE),
            (NUMERATOR, numerator),
            (DENOMINATOR, denominator),
        ]);
        let field = Field::new(name, DataType::Float64, true).with_metadata(metadata);
        self.column(field, Arc::new(Float64Array::from(vec![0.123; rows])))
    }

    pub fn build(self) -> RecordBatch {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.columns).unwrap()
    }
}

pub fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What a study that read little reports: no row-level checks apply.
pub fn small_read() -> ReadContext {
    ReadContext {
        rows_read: 0,
        distinct_patients: None,
    }
}

pub fn release(table: &RecordBatch) -> Released {
    apply(table, &Policy::default(), &small_read()).unwrap()
}

pub fn release_with(table: &RecordBatch, policy: &Policy) -> Released {
    apply(table, policy, &small_read()).unwrap()
}

pub fn release_error(table: &RecordBatch) -> DisclosureError {
    apply(table, &Policy::default(), &small_read()).unwrap_err()
}

pub fn no_rounding() -> Policy {
    Policy {
        rounding: 1,
        ..Policy::default()
    }
}

/// A released count column: None where redacted.
pub fn counts(released: &Released, name: &str) -> Vec<Option<u64>> {
    let column = released.table.column_by_name(name).unwrap();
    column.as_primitive::<UInt64Type>().iter().collect()
}

pub fn shares(released: &Released, name: &str) -> Vec<Option<f64>> {
    let column = released.table.column_by_name(name).unwrap();
    column.as_primitive::<Float64Type>().iter().collect()
}

pub fn refusal(error: DisclosureError) -> String {
    match error {
        DisclosureError::Refused(message) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}
