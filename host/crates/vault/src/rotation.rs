//! Key rotation.
//!
//! Master key: the new key is written to `master.key.next`, every data key is rewrapped
//! and the key-check value replaced in one transaction, then `master.key.next` is renamed
//! over `master.key`. A crash before the commit leaves the old key valid (the `.next`
//! file is discarded at open); a crash after it leaves the new key in `.next`, which open
//! recognises by the key-check value and promotes.
//!
//! Data keys: every active key becomes `retiring` and gets an active successor (one
//! transaction, audited), then each segment still using a retiring key is re-encrypted
//! into a new file and its catalog row switched in its own transaction (the progress
//! record: re-running continues where it stopped). Retiring keys are deleted only once
//! no segment refers to them (the catalog's foreign key enforces that too).

use std::collections::BTreeSet;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::json;

use crate::audit::{AuditAction, AuditEvent, append_in_transaction};
use crate::catalog::SegmentInfo;
use crate::crypto::SecretKey;
use crate::data_keys;
use crate::error::{Result, SegmentDamage, VaultError, io_context};
use crate::fsio;
use crate::group_codec::{KeyedBlock, KeyedPayload, open_blocks, seal_payloads};
use crate::master_key::{self, KeySource, MASTER_KEY_FILE, NEXT_MASTER_KEY_FILE};
use crate::segment_check::check_identity;
use crate::segment_file::{SegmentReader, write_segment};
use crate::store::{Vault, recover, segment_file_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterRotationReport {
    pub data_keys_rewrapped: u64,
    pub audit_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataRotationReport {
    /// False when this call continued a rotation an earlier call had started.
    pub started_new_rotation: bool,
    pub segments_reencrypted: u64,
    /// Segments still under retiring keys (non-zero only when a budget was given).
    pub segments_remaining: u64,
    pub data_keys_destroyed: u64,
    pub completed: bool,
}

/// How far a data key rotation has come, reported after each re-encrypted segment so
/// that a command can show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationProgress {
    /// Segments re-encrypted by this call so far.
    pub segments_done: u64,
    /// Segments under retiring keys when this call began.
    pub segments_total: u64,
    /// Size of the segment just re-encrypted, in bytes.
    pub bytes: u64,
}

impl Vault {
    /// Replaces the master key and rewraps every data key under it. Requires the key to
    /// come from the key file. Audited as `key.rotate`.
    pub fn rotate_master_key(&self, actor: &str) -> Result<MasterRotationReport> {
        self.rotate_master_key_steps(actor, true)
    }

    /// `promote: false` stops before renaming the new key file into place, as a crash
    /// there would; only tests ask for that.
    pub(crate) fn rotate_master_key_steps(
        &self,
        actor: &str,
        promote: bool,
    ) -> Result<MasterRotationReport> {
        let KeySource::File(key_file) = self.key_source() else {
            return Err(VaultError::RotationNeedsKeyFile {
                path: self.state_dir().join(MASTER_KEY_FILE),
            });
        };
        let next_file = self.state_dir().join(NEXT_MASTER_KEY_FILE);
        let mut conn = self.writer();
        let mut master = recover(self.master.write());
        let new_key = SecretKey::generate();
        master_key::write_key_file(&next_file, &new_key)?;
        let committed = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rewrapped = data_keys::rewrap_all(&tx, &master, &new_key)?;
            master_key::store_key_check(&tx, &new_key)?;
            let event = AuditEvent::new(actor, AuditAction::KeyRotate, "master-key")
                .with_details(json!({"data_keys_rewrapped": rewrapped}));
            let head = append_in_transaction(&tx, &event)?;
            tx.commit()?;
            Ok(MasterRotationReport {
                data_keys_rewrapped: rewrapped,
                audit_seq: head.seq,
            })
        })();
        let report = match committed {
            Ok(report) => report,
            Err(error) => {
                let _ = std::fs::remove_file(&next_file);
                return Err(error);
            }
        };
        *master = new_key;
        if promote {
            fsio::rename_durably(&next_file, key_file)
                .map_err(io_context(format!("renaming {}", next_file.display())))?;
        }
        tracing::info!(data_keys = report.data_keys_rewrapped, "master key rotated");
        Ok(report)
    }

    /// Whether a data key rotation was started and not finished.
    pub fn data_rotation_pending(&self) -> Result<bool> {
        self.with_reader(|conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM data_keys WHERE state = 'retiring')",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// Replaces every data key and re-encrypts every segment under the new ones, or
    /// continues a rotation that was interrupted. `max_segments` bounds the work done by
    /// this call (`None`: run to completion). Audited as `key.rotate_data` when starting
    /// and when completing. A scan planned before a segment is re-encrypted fails on that
    /// segment (its old file is gone): rotate while no scan is running, as
    /// `carrel keys rotate --data` does (it needs the state directory to itself).
    pub fn rotate_data_keys(
        &self,
        actor: &str,
        max_segments: Option<u64>,
    ) -> Result<DataRotationReport> {
        self.rotate_data_keys_with(actor, max_segments, &mut |_| {})
    }

    /// [`Vault::rotate_data_keys`], calling `progress` after each re-encrypted segment.
    pub fn rotate_data_keys_with(
        &self,
        actor: &str,
        max_segments: Option<u64>,
        progress: &mut dyn FnMut(RotationProgress),
    ) -> Result<DataRotationReport> {
        let mut report = DataRotationReport {
            started_new_rotation: self.start_data_rotation(actor)?,
            ..Default::default()
        };
        let segments_total = self.with_reader(|conn| {
            Ok(conn.query_row(SEGMENTS_REMAINING, [], |r| r.get::<_, i64>(0))?)
        })? as u64;
        loop {
            let Some((dataset, segment)) = self.next_segment_to_reencrypt()? else {
                break;
            };
            if max_segments.is_some_and(|budget| report.segments_reencrypted >= budget) {
                report.segments_remaining = self.with_reader(|conn| {
                    Ok(conn.query_row(SEGMENTS_REMAINING, [], |r| r.get::<_, i64>(0))?)
                })? as u64;
                return Ok(report);
            }
            self.reencrypt_segment(&dataset, &segment)?;
            report.segments_reencrypted += 1;
            progress(RotationProgress {
                segments_done: report.segments_reencrypted,
                segments_total,
                bytes: segment.bytes,
            });
        }
        report.data_keys_destroyed =
            self.finish_data_rotation(actor, report.segments_reencrypted)?;
        report.completed = true;
        Ok(report)
    }

    fn start_data_rotation(&self, actor: &str) -> Result<bool> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let pending: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM data_keys WHERE state = 'retiring')",
            [],
            |r| r.get(0),
        )?;
        if pending {
            return Ok(false);
        }
        let groups: Vec<(String, String)> = tx
            .prepare("SELECT dataset, group_name FROM data_keys WHERE state = 'active'")?
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        tx.execute(
            "UPDATE data_keys SET state = 'retiring' WHERE state = 'active'",
            [],
        )?;
        let master = self.master();
        for (dataset, group) in &groups {
            let (key_id, key) = data_keys::create_active_key(&tx, &master, dataset, group)?;
            self.data_keys.insert(&key_id, dataset, group, key);
        }
        let event = AuditEvent::new(actor, AuditAction::KeyRotateData, "data-keys")
            .with_details(json!({"phase": "started", "data_keys_replaced": groups.len()}));
        append_in_transaction(&tx, &event)?;
        tx.commit()?;
        Ok(true)
    }

    fn next_segment_to_reencrypt(&self) -> Result<Option<(String, SegmentInfo)>> {
        self.with_reader(|conn| {
            let next: Option<(String, String)> = conn
                .query_row(
                    "SELECT s.dataset, s.id FROM segments s
                     WHERE EXISTS (SELECT 1 FROM segment_keys k JOIN data_keys d ON d.key_id = k.key_id
                                   WHERE k.segment_id = s.id AND d.state = 'retiring')
                     ORDER BY s.dataset, s.position LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((dataset, id)) = next else { return Ok(None) };
            let segment = self
                .load_segments(conn, &dataset)?
                .into_iter()
                .find(|s| s.id == id)
                .ok_or_else(|| VaultError::CatalogCorrupt("a segment vanished during rotation".into()))?;
            Ok(Some((dataset, segment)))
        })
    }

    /// Rewrites one segment under the active keys: new file, catalog switch, old file removed.
    fn reencrypt_segment(&self, dataset: &str, segment: &SegmentInfo) -> Result<()> {
        let damage = |damage| VaultError::Segment {
            dataset: dataset.to_owned(),
            segment: segment.id.clone(),
            damage,
        };
        let mut conn = self.writer();
        let mut reader = SegmentReader::open(&segment.file, segment.bytes).map_err(damage)?;
        check_identity(&reader, dataset, segment).map_err(damage)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let master = self.master();
        let mut blocks = Vec::with_capacity(reader.blocks.len());
        for block in reader.blocks.clone() {
            let unusable = || {
                damage(SegmentDamage::AuthenticationFailed {
                    group: block.group.clone(),
                })
            };
            let old_key = self
                .data_keys
                .get(&tx, &master, &block.key_id, dataset, &block.group)?
                .ok_or_else(unusable)?;
            let (tags, buffer) = reader
                .read_block(&block)
                .map_err(io_context(format!("reading {}", segment.file.display())))?;
            blocks.push(KeyedBlock {
                group: block.group,
                key_id: block.key_id,
                key: old_key,
                nonce: block.nonce,
                chunk_size: block.chunk_size,
                tags,
                len: buffer.len(),
                buffer,
            });
        }
        open_blocks(&reader.identity, &mut blocks)
            .map_err(|group| damage(SegmentDamage::AuthenticationFailed { group }))?;
        let mut payloads = Vec::with_capacity(blocks.len());
        for block in blocks {
            let (key_id, key) = self.active_data_key(&tx, &master, dataset, &block.group)?;
            payloads.push(KeyedPayload {
                group: block.group,
                key_id,
                key,
                plaintext: block.buffer,
            });
        }
        drop(master);
        let sealed = seal_payloads(&reader.identity, payloads);
        let file_name = segment_file_name(segment.position);
        let path = segment.file.with_file_name(&file_name);
        let written = write_segment(&path, &reader.identity, &sealed)
            .map_err(io_context(format!("writing a segment of `{dataset}`")))?;
        let committed = (|| {
            tx.execute(
                "UPDATE segments SET file_name = ?2, bytes = ?3, sha256 = ?4 WHERE id = ?1",
                params![segment.id, file_name, written.bytes as i64, written.sha256],
            )?;
            for group in &sealed {
                tx.execute(
                    "UPDATE segment_keys SET key_id = ?3 WHERE segment_id = ?1 AND group_name = ?2",
                    params![segment.id, group.group, group.key_id],
                )?;
            }
            tx.commit()
        })();
        if let Err(error) = committed {
            let _ = std::fs::remove_file(&path);
            return Err(error.into());
        }
        // The old file is an orphan now; if this removal is lost to a crash, open sweeps it.
        std::fs::remove_file(&segment.file)
            .map_err(io_context(format!("removing {}", segment.file.display())))?;
        Ok(())
    }

    fn finish_data_rotation(&self, actor: &str, reencrypted: u64) -> Result<u64> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let still_used: i64 = tx.query_row(SEGMENTS_REMAINING, [], |r| r.get(0))?;
        if still_used > 0 {
            return Err(VaultError::CatalogCorrupt(
                "retiring keys are still in use after re-encryption".into(),
            ));
        }
        let retired: BTreeSet<String> = tx
            .prepare("SELECT key_id FROM data_keys WHERE state = 'retiring'")?
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        tx.execute("DELETE FROM data_keys WHERE state = 'retiring'", [])?;
        let event =
            AuditEvent::new(actor, AuditAction::KeyRotateData, "data-keys").with_details(json!({
                "phase": "completed",
                "segments_reencrypted_by_last_run": reencrypted,
                "data_keys_destroyed": retired.len(),
            }));
        append_in_transaction(&tx, &event)?;
        tx.commit()?;
        // Cached copies of destroyed keys go too; the active ones are unwrapped again on use.
        self.data_keys.clear();
        crate::catalog::forget_deleted(&conn)?;
        tracing::info!(destroyed = retired.len(), "data key rotation completed");
        Ok(retired.len() as u64)
    }
}

const SEGMENTS_REMAINING: &str = "SELECT count(DISTINCT k.segment_id) FROM segment_keys k
     JOIN data_keys d ON d.key_id = k.key_id WHERE d.state = 'retiring'";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use crate::dataset::ColumnGroups;
    use crate::master_key::{MASTER_KEY_FILE, MasterKeyEnv, NEXT_MASTER_KEY_FILE, init_master_key};
    use crate::store::Vault;

    #[test]
    fn rotation_that_committed_but_did_not_promote_its_key_file_completes_at_open() {
        let dir = tempfile::tempdir().unwrap();
        init_master_key(dir.path(), &MasterKeyEnv::unset(), "test").unwrap();
        let vault = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("sex", DataType::Utf8, false)]));
        vault
            .create_dataset(
                "d",
                &schema,
                &ColumnGroups::new().with_group("demographics", &["sex"]),
                "test",
            )
            .unwrap();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(StringArray::from(vec!["F", "U"]))])
            .unwrap();
        vault.append("d", &batch, "test").unwrap();
        let old_key = std::fs::read(dir.path().join(MASTER_KEY_FILE)).unwrap();
        assert_eq!(
            vault
                .rotate_master_key_steps("test", false)
                .unwrap()
                .data_keys_rewrapped,
            1
        );
        drop(vault);
        let next_key = std::fs::read(dir.path().join(NEXT_MASTER_KEY_FILE)).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(MASTER_KEY_FILE)).unwrap(),
            old_key
        );

        let reopened = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
        assert!(!dir.path().join(NEXT_MASTER_KEY_FILE).exists());
        assert_eq!(
            std::fs::read(dir.path().join(MASTER_KEY_FILE)).unwrap(),
            next_key
        );
        let read: Vec<RecordBatch> = reopened
            .scan("d", &["sex"])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, vec![batch]);
    }
}
