//! One segment of a purge pass ([`crate::purge`]): decrypted with its old keys, the
//! selector's columns handed to it, the kept rows sealed under the active keys into a new
//! file, the catalog switched to that file in one transaction, the old file removed.

use std::collections::{BTreeMap, HashMap};

use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_buffer::Buffer;
use arrow_schema::{Field, Schema};
use rusqlite::{Transaction, TransactionBehavior, params};
use serde_json::json;

use crate::audit::{AuditAction, AuditEvent, append_in_transaction};
use crate::catalog::SegmentInfo;
use crate::catalog::now_rfc3339;
use crate::crypto::{SecretKey, random_id};
use crate::dataset::{self, DatasetVersion};
use crate::date_filter;
use crate::error::{Result, SegmentDamage, VaultError, io_context};
use crate::group_codec::{
    KeyedBlock, KeyedPayload, decode_group, encode_ipc, open_blocks, seal_payloads,
};
use crate::purge::{
    PurgeReport, REWRITE_ACTION, RowRemoval, RowSelector, add_counts, check_removal, selector_error,
};
use crate::segment_check::check_identity;
use crate::segment_file::{SegmentIdentity, SegmentReader, WrittenSegment, write_segment};
use crate::store::{Vault, segment_file_name};

/// What happened to one segment.
pub(crate) enum SegmentOutcome {
    /// Every row kept: the same segment, re-encrypted under the active keys.
    Reencrypted,
    /// Some rows removed: a new segment holds the others.
    Rewritten(BTreeMap<String, u64>),
    /// Every row removed: the segment is gone.
    Removed(BTreeMap<String, u64>),
}

impl SegmentOutcome {
    pub(crate) fn count_into(&self, report: &mut PurgeReport) {
        match self {
            SegmentOutcome::Reencrypted => report.segments_reencrypted += 1,
            SegmentOutcome::Rewritten(removed) => {
                report.segments_rewritten += 1;
                add_counts(&mut report.rows_removed, removed);
            }
            SegmentOutcome::Removed(removed) => {
                report.segments_removed += 1;
                add_counts(&mut report.rows_removed, removed);
            }
        }
    }
}

/// A segment's groups, decrypted: name and plaintext (an Arrow IPC stream).
struct Plaintexts(Vec<(String, Vec<u8>)>);

/// What replaces the segment in the catalog.
struct Replacement {
    identity: SegmentIdentity,
    file_name: String,
    written: WrittenSegment,
    keys: Vec<(String, String)>,
    date_ranges: Vec<(String, i32, i32)>,
}

impl Vault {
    pub(crate) fn purge_segment(
        &self,
        dataset: &str,
        actor: &str,
        segment: &SegmentInfo,
        selector: &dyn RowSelector,
    ) -> Result<SegmentOutcome> {
        let damage = |damage| VaultError::Segment {
            dataset: dataset.to_owned(),
            segment: segment.id.clone(),
            damage,
        };
        let mut reader = SegmentReader::open(&segment.file, segment.bytes).map_err(damage)?;
        check_identity(&reader, dataset, segment).map_err(damage)?;
        let version =
            self.with_reader(|conn| dataset::load_version(conn, dataset, segment.schema_version))?;
        let mut blocks = Vec::with_capacity(reader.blocks.len());
        for block in reader.blocks.clone() {
            let key = self
                .with_reader(|conn| {
                    self.data_keys
                        .get(conn, &self.master(), &block.key_id, dataset, &block.group)
                })?
                .ok_or_else(|| {
                    damage(SegmentDamage::AuthenticationFailed {
                        group: block.group.clone(),
                    })
                })?;
            let (tags, buffer) = reader
                .read_block(&block)
                .map_err(io_context(format!("reading {}", segment.file.display())))?;
            blocks.push(KeyedBlock {
                group: block.group,
                key_id: block.key_id,
                key,
                nonce: block.nonce,
                chunk_size: block.chunk_size,
                tags,
                len: buffer.len(),
                buffer,
            });
        }
        open_blocks(&reader.identity, &mut blocks)
            .map_err(|group| damage(SegmentDamage::AuthenticationFailed { group }))?;
        let plaintexts = Plaintexts(blocks.into_iter().map(|b| (b.group, b.buffer)).collect());
        let removal = self.select_rows(dataset, segment, &version, &plaintexts, selector)?;
        let removed_rows = removal.removed_rows();
        if removed_rows == 0 {
            let replacement = self.seal(dataset, &reader.identity, plaintexts.0, segment)?;
            self.switch(dataset, actor, segment, Some(&replacement), &removal)?;
            return Ok(SegmentOutcome::Reencrypted);
        }
        if removed_rows == segment.rows {
            self.switch(dataset, actor, segment, None, &removal)?;
            return Ok(SegmentOutcome::Removed(removal.removed));
        }
        let keep = BooleanArray::from(removal.keep.clone());
        let mut filtered = Vec::with_capacity(plaintexts.0.len());
        let mut date_ranges = Vec::new();
        for (group, plaintext) in plaintexts.0 {
            let batch = decode_group(dataset, segment, &group, Buffer::from_vec(plaintext))?;
            let kept = arrow_select::filter::filter_record_batch(&batch, &keep)?;
            date_ranges.extend(date_filter::date_ranges(&kept));
            filtered.push((group, encode_ipc(&kept)?));
        }
        let identity = SegmentIdentity {
            segment_id: random_id(),
            rows: segment.rows - removed_rows,
            ..reader.identity.clone()
        };
        let mut replacement = self.seal(dataset, &identity, filtered, segment)?;
        replacement.date_ranges = date_ranges;
        self.switch(dataset, actor, segment, Some(&replacement), &removal)?;
        Ok(SegmentOutcome::Rewritten(removal.removed))
    }

    /// The selector's answer for the segment, from its columns decoded out of the groups
    /// that hold them.
    fn select_rows(
        &self,
        dataset: &str,
        segment: &SegmentInfo,
        version: &DatasetVersion,
        plaintexts: &Plaintexts,
        selector: &dyn RowSelector,
    ) -> Result<RowRemoval> {
        let mut decoded: HashMap<&str, RecordBatch> = HashMap::new();
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for column in selector.columns() {
            let missing = || {
                selector_error(
                    dataset,
                    &segment.id,
                    format!(
                        "column `{column}` is not in schema version {}",
                        version.version
                    ),
                )
            };
            let group = version.groups.group_of(&column).ok_or_else(missing)?;
            if !decoded.contains_key(group) {
                let (_, plaintext) = plaintexts
                    .0
                    .iter()
                    .find(|(name, _)| name == group)
                    .ok_or_else(|| VaultError::Segment {
                        dataset: dataset.to_owned(),
                        segment: segment.id.clone(),
                        damage: SegmentDamage::MissingGroup {
                            group: group.to_owned(),
                        },
                    })?;
                // A copy: the plaintext is sealed again as it is when no row goes.
                let batch =
                    decode_group(dataset, segment, group, Buffer::from_vec(plaintext.clone()))?;
                decoded.insert(group, batch);
            }
            let array = decoded[group]
                .column_by_name(&column)
                .cloned()
                .ok_or_else(missing)?;
            fields.push(Field::new(&column, array.data_type().clone(), true));
            columns.push(array);
        }
        let rows = RecordBatch::try_new(std::sync::Arc::new(Schema::new(fields)), columns)?;
        let removal = selector
            .select(&rows)
            .map_err(|reason| selector_error(dataset, &segment.id, reason))?;
        check_removal(dataset, &segment.id, &removal, segment.rows as usize)?;
        Ok(removal)
    }

    /// Seals the groups under the active keys and writes them as a new file.
    fn seal(
        &self,
        dataset: &str,
        identity: &SegmentIdentity,
        plaintexts: Vec<(String, Vec<u8>)>,
        old: &SegmentInfo,
    ) -> Result<Replacement> {
        let mut payloads = Vec::with_capacity(plaintexts.len());
        for (group, plaintext) in plaintexts {
            let (key_id, key) = self.active_key_now(dataset, &group)?;
            payloads.push(KeyedPayload {
                group,
                key_id,
                key,
                plaintext,
            });
        }
        let sealed = seal_payloads(identity, payloads);
        let file_name = segment_file_name(identity.position);
        let path = old.file.with_file_name(&file_name);
        let written = write_segment(&path, identity, &sealed)
            .map_err(io_context(format!("writing a segment of `{dataset}`")))?;
        Ok(Replacement {
            identity: identity.clone(),
            file_name,
            written,
            keys: sealed.into_iter().map(|g| (g.group, g.key_id)).collect(),
            date_ranges: Vec::new(),
        })
    }

    /// The active key of a group, created (and committed) when the group has none.
    fn active_key_now(&self, dataset: &str, group: &str) -> Result<(String, SecretKey)> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = self.active_data_key(&tx, &self.master(), dataset, group)?;
        tx.commit()?;
        Ok(key)
    }

    /// One transaction puts `replacement` (or nothing) where `old` was, then the old file
    /// goes. On failure the new file is removed and the old segment stays as it was.
    fn switch(
        &self,
        dataset: &str,
        actor: &str,
        old: &SegmentInfo,
        replacement: Option<&Replacement>,
        removal: &RowRemoval,
    ) -> Result<()> {
        let new_path = replacement.map(|r| old.file.with_file_name(&r.file_name));
        let committed = (|| {
            let mut conn = self.writer();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let unchanged: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM segments WHERE id = ?1 AND dataset = ?2 AND file_name = ?3)",
                params![
                    old.id,
                    dataset,
                    old.file.file_name().map(|n| n.to_string_lossy().into_owned())
                ],
                |r| r.get(0),
            )?;
            if !unchanged {
                return Err(VaultError::CatalogCorrupt(format!(
                    "segment {} of `{dataset}` changed during its purge",
                    old.id
                )));
            }
            match replacement {
                Some(new) if new.identity.segment_id == old.id => {
                    tx.execute(
                        "UPDATE segments SET file_name = ?2, bytes = ?3, sha256 = ?4 WHERE id = ?1",
                        params![
                            old.id,
                            new.file_name,
                            new.written.bytes as i64,
                            new.written.sha256
                        ],
                    )?;
                    for (group, key_id) in &new.keys {
                        tx.execute(
                            "UPDATE segment_keys SET key_id = ?3 WHERE segment_id = ?1 AND group_name = ?2",
                            params![old.id, group, key_id],
                        )?;
                    }
                }
                Some(new) => {
                    delete_segment_rows(&tx, &old.id)?;
                    insert_segment_rows(&tx, dataset, old, new)?;
                    audit_rewrite(&tx, actor, dataset, old, Some(new), removal)?;
                }
                None => {
                    delete_segment_rows(&tx, &old.id)?;
                    audit_rewrite(&tx, actor, dataset, old, None, removal)?;
                }
            }
            tx.commit()?;
            Ok(())
        })();
        if let Err(error) = committed {
            if let Some(path) = &new_path {
                let _ = std::fs::remove_file(path);
            }
            return Err(error);
        }
        // The old file is an orphan now; if this removal is lost to a crash, open sweeps it.
        std::fs::remove_file(&old.file)
            .map_err(io_context(format!("removing {}", old.file.display())))?;
        Ok(())
    }
}

fn delete_segment_rows(tx: &Transaction<'_>, id: &str) -> Result<()> {
    tx.execute("DELETE FROM segment_keys WHERE segment_id = ?1", [id])?;
    tx.execute(
        "DELETE FROM segment_date_ranges WHERE segment_id = ?1",
        [id],
    )?;
    tx.execute("DELETE FROM segments WHERE id = ?1", [id])?;
    Ok(())
}

fn insert_segment_rows(
    tx: &Transaction<'_>,
    dataset: &str,
    old: &SegmentInfo,
    new: &Replacement,
) -> Result<()> {
    // The new segment keeps the old one's place and creation time: its rows arrived then.
    tx.execute(
        "INSERT INTO segments (id, dataset, position, schema_version, file_name, rows, bytes, sha256, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            new.identity.segment_id,
            dataset,
            old.position as i64,
            old.schema_version,
            new.file_name,
            new.identity.rows as i64,
            new.written.bytes as i64,
            new.written.sha256,
            if old.created.is_empty() { now_rfc3339() } else { old.created.clone() }
        ],
    )?;
    for (group, key_id) in &new.keys {
        tx.execute(
            "INSERT INTO segment_keys (segment_id, group_name, key_id) VALUES (?1, ?2, ?3)",
            params![new.identity.segment_id, group, key_id],
        )?;
    }
    date_filter::record_ranges(tx, &new.identity.segment_id, &new.date_ranges)?;
    Ok(())
}

fn audit_rewrite(
    tx: &Transaction<'_>,
    actor: &str,
    dataset: &str,
    old: &SegmentInfo,
    new: Option<&Replacement>,
    removal: &RowRemoval,
) -> Result<()> {
    let event = AuditEvent::new(actor, AuditAction::Other(REWRITE_ACTION.into()), dataset)
        .with_details(json!({
            "segment": old.id,
            "replaced_by": new.map(|n| n.identity.segment_id.clone()),
            "rows_before": old.rows,
            "rows_after": new.map_or(0, |n| n.identity.rows),
            "rows_removed": removal.removed,
            "sha256": new.map(|n| n.written.sha256.clone()),
        }));
    append_in_transaction(tx, &event)?;
    Ok(())
}
