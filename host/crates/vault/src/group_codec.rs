//! A column group's plaintext: the group's columns as an Arrow IPC stream holding the
//! group schema and exactly one record batch, uncompressed (compression would cost more
//! CPU than it saves on a local disk, and the pure-Rust codecs are slow to decode).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{FieldRef, Schema};

use crate::dataset::DatasetVersion;
use crate::error::{Result, VaultError};

/// Each column group of `batch` as an uncompressed Arrow IPC stream, groups by name.
pub(crate) fn encode_group_payloads(
    version: &DatasetVersion,
    batch: &RecordBatch,
) -> Result<Vec<(String, Vec<u8>)>> {
    version
        .group_fields()
        .into_iter()
        .map(|(group, indices)| {
            let fields: Vec<FieldRef> = indices
                .iter()
                .map(|&i| version.schema.fields()[i].clone())
                .collect();
            let columns = fields
                .iter()
                .map(|field| {
                    // check_batch_schema has established that every field is present.
                    batch.column_by_name(field.name()).cloned().ok_or_else(|| {
                        VaultError::SchemaMismatch {
                            dataset: version.dataset.clone(),
                            field: field.name().clone(),
                            problem: "is missing from the batch".into(),
                        }
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let schema = Arc::new(Schema::new(fields));
            let group_batch = RecordBatch::try_new(schema.clone(), columns)?;
            let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
            writer.write(&group_batch)?;
            writer.finish()?;
            Ok((group, writer.into_inner()?))
        })
        .collect()
}

/// Decodes a single-batch Arrow IPC stream without copying the buffers (the batch's
/// arrays point into the decrypted plaintext).
pub(crate) fn decode_ipc(plaintext: Vec<u8>) -> Result<RecordBatch, String> {
    let mut buffer = Buffer::from_vec(plaintext);
    let mut decoder = StreamDecoder::new();
    let mut batch = None;
    while !buffer.is_empty() {
        match decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            Some(_) if batch.is_some() => return Err("more than one record batch".into()),
            Some(decoded) => batch = Some(decoded),
            None => {}
        }
    }
    decoder.finish().map_err(|e| e.to_string())?;
    batch.ok_or_else(|| "no record batch".into())
}
