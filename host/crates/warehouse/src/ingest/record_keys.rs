//! Record keys: every stored consultation gets a random 64-bit key at ingestion, encrypted
//! with its pseudonymous identifiers. The host sums them into the cell keys of the counts
//! it releases (cell-key perturbation, `carrel_disclosure::noise`); they are never
//! released and never handed to a study, and the pseudonymiser never sees them.

use arrow_array::{ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{ArrowError, DataType, Field, Schema};
use std::sync::Arc;

/// The stored column of record keys.
pub const RECORD_KEY: &str = "record_key";
/// Its column group: the pseudonymous keys that are only ever joined, never shown.
pub const RECORD_KEY_GROUP: &str = "identifiers";

/// The stored consultation schema: the canonical schema the pseudonymiser writes, then
/// the record key. Nullable, so that segments stored before record keys existed read
/// as nulls (their rows get a key derived from what they hold: [`fallback_key`]).
pub fn stored_schema() -> Schema {
    let canonical = carrel_pseudonym::canonical_schema();
    let mut fields: Vec<Field> = canonical
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new(RECORD_KEY, DataType::UInt64, true));
    Schema::new(fields)
}

/// `batch` (canonical rows, checked) with a fresh random record key on every row.
pub fn with_record_keys(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let mut bytes = vec![0u8; batch.num_rows() * 8];
    getrandom::fill(&mut bytes).map_err(|e| ArrowError::ExternalError(e.to_string().into()))?;
    let keys = UInt64Array::from_iter_values(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
    );
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(keys));
    RecordBatch::try_new(Arc::new(stored_schema()), columns)
}

/// The record key of a row stored before record keys existed: a mix of its patient key
/// (the first 64 bits of an HMAC, secret to the host) and its date and hour. Stable, so
/// the same rows still get the same noise; not as independent as a random key between
/// two consultations of one patient in the same hour.
pub fn fallback_key(patient_key: u64, date: i32, hour: Option<u8>) -> u64 {
    let when = (date as u32 as u64) << 8 | u64::from(hour.unwrap_or(255));
    carrel_disclosure::noise::mix64(patient_key ^ carrel_disclosure::noise::mix64(when))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_schema_is_the_canonical_one_and_the_record_key() {
        let canonical = carrel_pseudonym::canonical_schema();
        let empty = RecordBatch::new_empty(canonical);
        let keyed = with_record_keys(&empty).unwrap();
        assert_eq!(keyed.schema().as_ref(), &stored_schema());
        assert_eq!(stored_schema().fields().last().unwrap().name(), RECORD_KEY);
    }

    #[test]
    fn fallback_keys_differ_by_patient_and_time() {
        assert_ne!(fallback_key(1, 100, Some(3)), fallback_key(2, 100, Some(3)));
        assert_ne!(fallback_key(1, 100, Some(3)), fallback_key(1, 101, Some(3)));
        assert_ne!(fallback_key(1, 100, Some(3)), fallback_key(1, 100, Some(4)));
        assert_eq!(fallback_key(9, 5, None), fallback_key(9, 5, None));
    }
}
