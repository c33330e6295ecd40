//! The two keys the host counts each row of a batch by, computed once per batch however
//! many tallies count it: the patient key (distinct patients, the bounds on a patient's
//! contributions) and the record key (the cell keys of consultation counts).

use crate::ingest::record_keys::{RECORD_KEY, fallback_key};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, UInt8Type, UInt64Type};
use arrow_array::{Array, RecordBatch};

/// The patient key and record key of each row of one batch.
pub struct RowKeys {
    patients: Vec<u64>,
    records: Vec<u64>,
}

impl RowKeys {
    /// The keys of every row of `batch`, which holds `patient_id`.
    pub fn of(batch: &RecordBatch) -> Result<RowKeys, String> {
        let pseudonyms = batch
            .column_by_name("patient_id")
            .ok_or("the host read no column `patient_id`")?
            .as_string_opt::<i32>()
            .ok_or("`patient_id` is not utf8")?;
        let patients: Vec<u64> = (0..pseudonyms.len())
            .map(|i| patient_key(pseudonyms.value(i)))
            .collect();
        let records = record_keys_of(batch, &patients)?;
        Ok(RowKeys { patients, records })
    }

    /// The patient key of row `row`.
    pub fn patient(&self, row: usize) -> u64 {
        self.patients[row]
    }

    /// The record key of row `row`.
    pub fn record(&self, row: usize) -> u64 {
        self.records[row]
    }
}

/// The 64 bits of a stored patient pseudonym that the host counts by: its first 16 hex
/// digits (the pseudonym is an HMAC, so they are as good as any), or a hash of it.
pub fn patient_key(pseudonym: &str) -> u64 {
    pseudonym
        .get(..16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(pseudonym)
        })
}

/// The record key of each row of `batch`: the stored one, or for rows stored before
/// record keys, one derived from the row's patient, date and hour.
fn record_keys_of(batch: &RecordBatch, patient_keys: &[u64]) -> Result<Vec<u64>, String> {
    let stored = batch
        .column_by_name(RECORD_KEY)
        .map(|c| {
            c.as_primitive_opt::<UInt64Type>()
                .ok_or("`record_key` is not uint64")
        })
        .transpose()?;
    let dates = batch
        .column_by_name("date")
        .and_then(|c| c.as_primitive_opt::<Date32Type>());
    let hours = batch
        .column_by_name("hour")
        .and_then(|c| c.as_primitive_opt::<UInt8Type>());
    Ok((0..batch.num_rows())
        .map(|row| match stored {
            Some(keys) if keys.is_valid(row) => keys.value(row),
            _ => fallback_key(
                patient_keys[row],
                dates.map_or(0, |d| d.value(row)),
                hours.and_then(|h| h.is_valid(row).then(|| h.value(row))),
            ),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{StringArray, UInt64Array};
    use std::sync::Arc;

    #[test]
    fn patient_keys_are_the_first_sixty_four_bits_of_the_stored_pseudonym() {
        assert_eq!(patient_key("00000000000000ff0123"), 255);
        assert_ne!(patient_key("not hex at all"), patient_key("not hex at al"));
    }

    #[test]
    fn a_row_without_a_stored_record_key_gets_one_from_its_patient_date_and_hour() {
        let batch = RecordBatch::try_from_iter([
            (
                "patient_id",
                Arc::new(StringArray::from(vec![
                    "00000000000000ff",
                    "00000000000000ff",
                ])) as _,
            ),
            (
                RECORD_KEY,
                Arc::new(UInt64Array::from(vec![Some(42), None])) as _,
            ),
        ])
        .unwrap();
        let keys = RowKeys::of(&batch).unwrap();
        assert_eq!((keys.patient(0), keys.record(0)), (255, 42));
        assert_eq!(keys.record(1), fallback_key(255, 0, None));
    }
}
