//! Arrow IPC streams, the form tables cross the sandbox boundary in.

use std::io::Cursor;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;

use crate::error::StudyError;

/// One batch as an Arrow IPC stream (its schema, with field metadata, then the batch).
pub fn encode(batch: &RecordBatch) -> Result<Vec<u8>, StudyError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Every batch of an Arrow IPC stream.
pub fn decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, StudyError> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::CountTable;

    #[test]
    fn batches_round_trip_with_their_metadata() {
        let mut table = CountTable::new(&["week"], &["coded", "ili"]);
        table.add(&["2024-W03"], &[3, 1]);
        let batch = table
            .into_batch_with_shares(&[("ili_share", "ili", "coded")])
            .unwrap();
        let bytes = encode(&batch).unwrap();
        let decoded = decode(&bytes).unwrap();
        assert_eq!(decoded, [batch]);
        assert_eq!(
            decoded[0].schema().field(3).metadata()["carrel.numerator"],
            "ili"
        );
        assert!(decode(b"not arrow").is_err());
    }
}
