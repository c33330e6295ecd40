//! The released table: built by the host from its own counts, with column names from the
//! manifest, then passed through disclosure control. For each measure `m` it has `m`
//! (consultations) and `m_patients` (distinct patients), linked so that a cell withheld
//! for either is withheld for both; shares are recomputed from released counts.

use super::table::TableSpec;
use super::tally::Tally;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use carrel_disclosure::{CellKeys, Policy, ReadContext, metadata};
use std::collections::HashMap;
use std::sync::Arc;

/// The table of counts, before disclosure control, and the cell key of every count.
pub fn raw_table(
    tally: &Tally,
    table: &TableSpec,
    kept: &[usize],
) -> Result<(RecordBatch, CellKeys), String> {
    let cells = tally.cells();
    let cell_keys = tally.cell_keys();
    let mut keys = CellKeys::new();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (slot, &dimension) in kept.iter().enumerate() {
        fields.push(Field::new(
            &table.dimensions[dimension],
            DataType::Utf8,
            false,
        ));
        let labels: Vec<String> = cells
            .iter()
            .map(|(key, _, _)| tally.label(slot, key[slot], table))
            .collect();
        columns.push(Arc::new(StringArray::from(labels)));
    }
    let count = |extra: Option<(&str, String)>| {
        let mut meta = HashMap::from([(metadata::KIND.to_owned(), metadata::COUNT.to_owned())]);
        if let Some((key, value)) = extra {
            meta.insert(key.to_owned(), value);
        }
        meta
    };
    for (m, measure) in table.measures.iter().enumerate() {
        let patients = TableSpec::patients_column(measure);
        fields.push(
            Field::new(measure, DataType::UInt64, false)
                .with_metadata(count(Some((metadata::PATIENTS, patients.clone())))),
        );
        columns.push(Arc::new(UInt64Array::from_iter_values(
            cells.iter().map(|(_, consultations, _)| consultations[m]),
        )));
        fields.push(Field::new(&patients, DataType::UInt64, false).with_metadata(count(None)));
        columns.push(Arc::new(UInt64Array::from_iter_values(
            cells.iter().map(|(_, _, patients)| patients[m]),
        )));
        keys.insert(
            measure.clone(),
            cell_keys.iter().map(|(records, _)| records[m]).collect(),
        );
        keys.insert(
            patients,
            cell_keys.iter().map(|(_, patients)| patients[m]).collect(),
        );
    }
    for (share, [numerator, denominator]) in &table.shares {
        let meta = HashMap::from([
            (metadata::KIND.to_owned(), metadata::SHARE.to_owned()),
            (metadata::NUMERATOR.to_owned(), numerator.clone()),
            (metadata::DENOMINATOR.to_owned(), denominator.clone()),
        ]);
        fields.push(Field::new(share, DataType::Float64, true).with_metadata(meta));
        // Disclosure control recomputes shares from the released counts.
        columns.push(Arc::new(Float64Array::from(vec![None; cells.len()])));
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    Ok((batch, keys))
}

/// What leaves: the released table as Arrow IPC, its row count and the disclosure report.
pub struct Release {
    pub bytes: Vec<u8>,
    pub rows: u64,
    pub report: serde_json::Value,
}

/// Applies `policy` to the host's table: cell-key perturbation from `keys` (unless the
/// policy turns noise off), then suppression and rounding of the noisy counts.
pub fn disclose(table: &RecordBatch, keys: &CellKeys, policy: &Policy) -> Result<Release, String> {
    // The row-level heuristics of disclosure control guard tables a study built; this
    // one the host built from declared domains, so they have nothing to add.
    let read = ReadContext::default();
    let released = if policy.noise_scale > 0.0 {
        carrel_disclosure::apply_perturbed(table, policy, &read, keys)
    } else {
        carrel_disclosure::apply(table, policy, &read)
    }
    .map_err(|e| e.to_string())?;
    let mut release = encode(&released.table, policy)?;
    release.report = serde_json::to_value(&released.report).map_err(|e| e.to_string())?;
    Ok(release)
}

/// A table the host made and checked, as it leaves: Arrow IPC, within the byte cap.
pub fn encode(table: &RecordBatch, policy: &Policy) -> Result<Release, String> {
    let bytes = carrel_pseudonym::to_ipc(table).map_err(|e| e.to_string())?;
    carrel_disclosure::check_bytes(bytes.len(), policy).map_err(|e| e.to_string())?;
    Ok(Release {
        rows: table.num_rows() as u64,
        report: serde_json::Value::Null,
        bytes,
    })
}
