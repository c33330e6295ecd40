//! A column group's plaintext: the group's columns as an Arrow IPC stream holding the
//! group schema and exactly one record batch, uncompressed (compression would cost more
//! CPU than it saves on a local disk, and the pure-Rust codecs are slow to decode).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{FieldRef, Schema};

use crate::catalog::SegmentInfo;
use crate::chunked::{
    CHUNK_SIZE, ChunkFailure, GroupCrypt, TagBytes, open_groups, read_and_open_groups, seal_groups,
};
use crate::crypto::{NONCE_LEN, SecretKey, random_nonce};
use crate::dataset::DatasetVersion;
use crate::error::{Result, SegmentDamage, VaultError};
use crate::segment_file::{SealedGroup, SegmentIdentity, SegmentReader};

/// A group's plaintext with the data key it is to be sealed under.
pub(crate) struct KeyedPayload {
    pub group: String,
    pub key_id: String,
    pub key: SecretKey,
    pub plaintext: Vec<u8>,
}

/// Seals the groups of one segment, spreading the work over the available cores.
pub(crate) fn seal_payloads(
    identity: &SegmentIdentity,
    mut payloads: Vec<KeyedPayload>,
) -> Vec<SealedGroup> {
    let nonces: Vec<[u8; NONCE_LEN]> = payloads.iter().map(|_| random_nonce()).collect();
    let mut tags: Vec<Vec<TagBytes>> = vec![Vec::new(); payloads.len()];
    let mut crypts: Vec<GroupCrypt<'_>> = payloads
        .iter_mut()
        .zip(tags.iter_mut())
        .zip(&nonces)
        .map(|((payload, tags), nonce)| GroupCrypt {
            key: &payload.key,
            base_nonce: *nonce,
            associated_data: identity.group_associated_data(&payload.group, &payload.key_id),
            buffer: &mut payload.plaintext,
            chunk_size: CHUNK_SIZE,
            tags,
        })
        .collect();
    seal_groups(&mut crypts);
    drop(crypts);
    payloads
        .into_iter()
        .zip(tags)
        .zip(nonces)
        .map(|((payload, tags), nonce)| SealedGroup {
            group: payload.group,
            key_id: payload.key_id,
            nonce,
            chunk_size: CHUNK_SIZE as u32,
            tags,
            ciphertext: payload.plaintext,
        })
        .collect()
}

/// A group's ciphertext as read from a segment, with the data key that opens it.
pub(crate) struct KeyedBlock {
    pub group: String,
    pub key_id: String,
    pub key: SecretKey,
    pub nonce: [u8; NONCE_LEN],
    pub chunk_size: u32,
    pub tags: Vec<TagBytes>,
    /// Ciphertext, and after [`open_blocks`] the plaintext, in its first `len` bytes (a
    /// pooled buffer may be longer).
    pub buffer: Vec<u8>,
    pub len: usize,
}

/// Decrypts the blocks of one segment in place, spreading the work over the available
/// cores; on failure returns the name of a group that did not authenticate.
pub(crate) fn open_blocks(
    identity: &SegmentIdentity,
    blocks: &mut [KeyedBlock],
) -> Result<(), String> {
    let names: Vec<String> = blocks.iter().map(|b| b.group.clone()).collect();
    open_groups(&mut crypts(identity, blocks)).map_err(|index| names[index].clone())
}

/// Reads the blocks' ciphertexts from `reader`'s file (block `i`'s starts at `starts[i]`)
/// into their buffers, each already the length of its plaintext, and decrypts them in
/// place, spreading reading and decrypting over the available cores. A failure carries
/// the index of its block.
pub(crate) fn read_and_open_blocks(
    reader: &SegmentReader,
    blocks: &mut [KeyedBlock],
    starts: &[u64],
) -> std::result::Result<(), ChunkFailure> {
    read_and_open_groups(reader.file(), &mut crypts(&reader.identity, blocks), starts)
}

fn crypts<'a>(identity: &SegmentIdentity, blocks: &'a mut [KeyedBlock]) -> Vec<GroupCrypt<'a>> {
    blocks
        .iter_mut()
        .map(|block| GroupCrypt {
            key: &block.key,
            base_nonce: block.nonce,
            associated_data: identity.group_associated_data(&block.group, &block.key_id),
            buffer: &mut block.buffer[..block.len],
            chunk_size: block.chunk_size as usize,
            tags: &mut block.tags,
        })
        .collect()
}

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
            let group_batch = RecordBatch::try_new(schema, columns)?;
            Ok((group, encode_ipc(&group_batch)?))
        })
        .collect()
}

/// One group's batch as the uncompressed single-batch Arrow IPC stream stored.
pub(crate) fn encode_ipc(batch: &RecordBatch) -> Result<Vec<u8>> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Decodes a single-batch Arrow IPC stream without copying the buffers (the batch's
/// arrays point into the decrypted plaintext).
pub(crate) fn decode_ipc(plaintext: Buffer) -> Result<RecordBatch, String> {
    let mut buffer = plaintext;
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

/// A decrypted group decoded, with as many rows as the catalog records for its segment;
/// anything else is damage to that segment.
pub(crate) fn decode_group(
    dataset: &str,
    segment: &SegmentInfo,
    group: &str,
    plaintext: Buffer,
) -> Result<RecordBatch> {
    let damage = |damage| VaultError::Segment {
        dataset: dataset.to_owned(),
        segment: segment.id.clone(),
        damage,
    };
    let batch = decode_ipc(plaintext).map_err(|reason| {
        damage(SegmentDamage::Undecodable {
            group: group.to_owned(),
            reason,
        })
    })?;
    if batch.num_rows() as u64 != segment.rows {
        return Err(damage(SegmentDamage::CatalogMismatch(format!(
            "group `{group}` holds {} rows, the catalog records {}",
            batch.num_rows(),
            segment.rows
        ))));
    }
    Ok(batch)
}
