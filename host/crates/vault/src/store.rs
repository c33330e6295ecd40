//! The [`Vault`] handle: opening a state directory, creating datasets and appending
//! segments. Scans and rotation are in their own modules.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use rusqlite::{Connection, Transaction, TransactionBehavior, params};
use serde_json::json;

use crate::audit::{AuditAction, AuditEvent, AuditLog, append_in_transaction};
use crate::catalog::{self, SegmentInfo, now_rfc3339, validate_name};
use crate::crypto::{SecretKey, random_id};
use crate::data_keys::{self, DataKeyCache};
use crate::dataset::{self, ColumnGroups, DatasetVersion};
use crate::error::{Result, VaultError, io_context};
use crate::group_codec::{KeyedPayload, encode_group_payloads, seal_payloads};
use crate::master_key::{self, KeySource, MasterKeyEnv};
use crate::segment_file::{SegmentIdentity, write_segment};
use crate::{date_filter, fsio, orphans};

/// Directory under the state directory holding `<dataset>/<segment file>`.
pub const SEGMENTS_DIR: &str = "segments";

/// Actor recorded for what the vault does on its own (binding a key at first open).
pub const SYSTEM_ACTOR: &str = "carrel";

/// How many idle read connections are kept for scans and catalog queries.
const IDLE_READERS: usize = 4;

/// The encrypted dataset store of one state directory. `Send + Sync`: share it in an
/// `Arc`. Holds an exclusive lock on the state directory for its lifetime, so another
/// process (or a second `Vault`) cannot write segments or rotate keys underneath it.
///
/// Every method does blocking file and SQLite I/O (appends fsync): from async code, call
/// it inside `tokio::task::spawn_blocking`. A [`crate::Scan`] owns what it needs and can
/// be moved into the blocking task.
pub struct Vault {
    state_dir: PathBuf,
    key_source: KeySource,
    pub(crate) master: RwLock<SecretKey>,
    /// Every catalog write goes through this connection, which also serialises appends.
    pub(crate) writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    pub(crate) data_keys: DataKeyCache,
    audit: AuditLog,
    orphans_removed: u64,
    _lock: File,
}

/// What a durable append produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    pub segment_id: String,
    pub position: u64,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    /// Sequence number of the `dataset.append` audit entry committed with the segment.
    pub audit_seq: u64,
}

pub(crate) fn recover<T>(result: std::sync::LockResult<T>) -> T {
    // Catalog work is transactional (rolled back on drop), so state behind a lock that a
    // panicking thread held is still consistent.
    result.unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Vault {
    /// Opens (creating if needed) a state directory: finds and checks the master key,
    /// finishes an interrupted master key rotation and removes orphan segment files.
    pub fn open(state_dir: &Path, env: &MasterKeyEnv) -> Result<Self> {
        if !master_key::any_key_present(state_dir, env) {
            return Err(VaultError::NoMasterKey);
        }
        fsio::create_private_dir(state_dir)
            .map_err(io_context(format!("creating {}", state_dir.display())))?;
        let lock = master_key::lock_state_dir(state_dir)?;
        let mut writer = catalog::open_connection(state_dir)?;
        catalog::migrate(&writer)?;
        let resolved = master_key::resolve(state_dir, env, &mut writer, SYSTEM_ACTOR)?;
        let segments_dir = state_dir.join(SEGMENTS_DIR);
        std::fs::create_dir_all(&segments_dir)
            .map_err(io_context(format!("creating {}", segments_dir.display())))?;
        let orphans_removed = orphans::sweep(&writer, &segments_dir)?;
        let audit = AuditLog::from_connection(catalog::open_connection(state_dir)?);
        tracing::info!(source = %resolved.source, orphans_removed, "vault opened");
        Ok(Self {
            state_dir: state_dir.to_owned(),
            key_source: resolved.source,
            master: RwLock::new(resolved.key),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            data_keys: DataKeyCache::default(),
            audit,
            orphans_removed,
            _lock: lock,
        })
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Which master key is in use (environment or key file).
    pub fn key_source(&self) -> &KeySource {
        &self.key_source
    }

    /// The audit log, for entries that accompany no vault change.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Segment files with no catalog row (interrupted appends) removed by [`Vault::open`].
    pub fn orphans_removed_at_open(&self) -> u64 {
        self.orphans_removed
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        recover(self.writer.lock())
    }

    pub(crate) fn master(&self) -> RwLockReadGuard<'_, SecretKey> {
        recover(self.master.read())
    }

    /// Runs `read` on an idle read connection (WAL: never waits for an append).
    pub(crate) fn with_reader<T>(&self, read: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = recover(self.readers.lock()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => catalog::open_connection(&self.state_dir)?,
        };
        let result = read(&conn);
        let mut idle = recover(self.readers.lock());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }

    pub(crate) fn segment_dir(&self, dataset: &str) -> PathBuf {
        self.state_dir.join(SEGMENTS_DIR).join(dataset)
    }

    /// The active data key of a group, generated (inside `conn`'s transaction) on first use.
    pub(crate) fn active_data_key(
        &self,
        conn: &Connection,
        master: &SecretKey,
        dataset: &str,
        group: &str,
    ) -> Result<(String, SecretKey)> {
        if let Some(key_id) = data_keys::active_key_id(conn, dataset, group)? {
            let key = self
                .data_keys
                .get(conn, master, &key_id, dataset, group)?
                .ok_or_else(|| {
                    VaultError::CatalogCorrupt(format!(
                        "the active key of dataset `{dataset}` group `{group}` is unusable"
                    ))
                })?;
            return Ok((key_id, key));
        }
        let (key_id, key) = data_keys::create_active_key(conn, master, dataset, group)?;
        self.data_keys.insert(&key_id, dataset, group, key.clone());
        Ok((key_id, key))
    }

    /// Creates a dataset with its first schema version (1). Audited as `dataset.create`.
    pub fn create_dataset(
        &self,
        name: &str,
        schema: &Schema,
        groups: &ColumnGroups,
        actor: &str,
    ) -> Result<()> {
        validate_name("dataset", name)?;
        dataset::validate_groups(name, schema, groups)?;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM datasets WHERE name = ?1)",
            [name],
            |r| r.get(0),
        )?;
        if exists {
            return Err(VaultError::DatasetExists(name.to_owned()));
        }
        tx.execute(
            "INSERT INTO datasets (name, current_version, created) VALUES (?1, 1, ?2)",
            params![name, now_rfc3339()],
        )?;
        dataset::insert_version(&tx, name, 1, schema, groups)?;
        let event = AuditEvent::new(actor, AuditAction::DatasetCreate, name).with_details(json!({
            "schema_version": 1,
            "columns": schema.fields().len(),
            "column_groups": groups.groups(),
        }));
        append_in_transaction(&tx, &event)?;
        self.ensure_segment_dir(name)?;
        tx.commit()?;
        tracing::info!(dataset = name, "dataset created");
        Ok(())
    }

    /// Adds a schema version and makes it current; appends must then match it. Audited
    /// as `dataset.schema_version`. Returns the new version number.
    pub fn add_schema_version(
        &self,
        name: &str,
        schema: &Schema,
        groups: &ColumnGroups,
        actor: &str,
    ) -> Result<u32> {
        validate_name("dataset", name)?;
        dataset::validate_groups(name, schema, groups)?;
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = dataset::current_version_number(&tx, name)? + 1;
        dataset::insert_version(&tx, name, version, schema, groups)?;
        let event = AuditEvent::new(actor, AuditAction::DatasetSchemaVersion, name)
            .with_details(json!({"schema_version": version, "columns": schema.fields().len()}));
        append_in_transaction(&tx, &event)?;
        tx.commit()?;
        Ok(version)
    }

    /// The current schema version of a dataset with its column groups.
    pub fn current_version(&self, name: &str) -> Result<DatasetVersion> {
        self.with_reader(|conn| {
            dataset::load_version(conn, name, dataset::current_version_number(conn, name)?)
        })
    }

    pub fn datasets(&self) -> Result<Vec<String>> {
        self.with_reader(catalog_datasets)
    }

    /// The dataset's segments in position order.
    pub fn segments(&self, name: &str) -> Result<Vec<SegmentInfo>> {
        self.with_reader(|conn| self.load_segments(conn, name))
    }

    pub(crate) fn load_segments(&self, conn: &Connection, name: &str) -> Result<Vec<SegmentInfo>> {
        catalog_segments(conn, &self.state_dir, name)
    }

    fn ensure_segment_dir(&self, dataset: &str) -> Result<()> {
        let dir = self.segment_dir(dataset);
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir)
                .map_err(io_context(format!("creating {}", dir.display())))?;
            fsio::sync_dir(&self.state_dir.join(SEGMENTS_DIR))
                .map_err(io_context("syncing the segments directory"))?;
        }
        Ok(())
    }

    /// Appends `batch` as one segment. Returns once the segment file and its catalog row
    /// (with the `dataset.append` audit entry) are on disk; a crash before that leaves
    /// nothing visible. Safe to call from several threads: appends are serialised.
    pub fn append(&self, dataset: &str, batch: &RecordBatch, actor: &str) -> Result<AppendReceipt> {
        self.append_with(dataset, batch, actor, |_, _| Ok(()))
    }

    /// [`Vault::append`], with the caller's own statements in the same catalog
    /// transaction: `with` runs after the segment's row and its `dataset.append` audit entry
    /// are written and before the commit, and is given the receipt the append returns if
    /// it commits. The segment, the audit entry and what `with` wrote commit together or
    /// not at all: when `with` fails (a constraint it violates included), nothing is
    /// visible and the error is returned as [`VaultError::Sqlite`].
    ///
    /// The caller's tables must live in the catalog database ([`crate::CATALOG_FILE`]),
    /// created beforehand; `with` must not commit or roll back itself.
    pub fn append_with<F>(
        &self,
        dataset: &str,
        batch: &RecordBatch,
        actor: &str,
        with: F,
    ) -> Result<AppendReceipt>
    where
        F: FnOnce(&Transaction<'_>, &AppendReceipt) -> rusqlite::Result<()>,
    {
        validate_name("dataset", dataset)?;
        if batch.num_rows() == 0 {
            return Err(VaultError::EmptyBatch {
                dataset: dataset.to_owned(),
            });
        }
        let mut conn = self.writer();
        let version = dataset::load_version(
            &conn,
            dataset,
            dataset::current_version_number(&conn, dataset)?,
        )?;
        dataset::check_batch_schema(&version, batch.schema_ref())?;
        let payloads = encode_group_payloads(&version, batch)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let position: i64 = tx.query_row(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM segments WHERE dataset = ?1",
            [dataset],
            |r| r.get(0),
        )?;
        let identity = SegmentIdentity {
            dataset: dataset.to_owned(),
            segment_id: random_id(),
            position: position as u64,
            schema_version: version.version,
            rows: batch.num_rows() as u64,
        };
        let master = self.master();
        let mut keyed = Vec::with_capacity(payloads.len());
        for (group, plaintext) in payloads {
            let (key_id, key) = self.active_data_key(&tx, &master, dataset, &group)?;
            keyed.push(KeyedPayload {
                group,
                key_id,
                key,
                plaintext,
            });
        }
        drop(master);
        let sealed = seal_payloads(&identity, keyed);
        self.ensure_segment_dir(dataset)?;
        let file_name = segment_file_name(identity.position);
        let path = self.segment_dir(dataset).join(&file_name);
        let written = write_segment(&path, &identity, &sealed).map_err(io_context(format!(
            "writing a segment of dataset `{dataset}`"
        )))?;
        let committed = (|| {
            tx.execute(
                "INSERT INTO segments (id, dataset, position, schema_version, file_name, rows, bytes, sha256, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    identity.segment_id,
                    dataset,
                    position,
                    version.version,
                    file_name,
                    identity.rows as i64,
                    written.bytes as i64,
                    written.sha256,
                    now_rfc3339()
                ],
            )?;
            let mut keys = tx.prepare_cached(
                "INSERT INTO segment_keys (segment_id, group_name, key_id) VALUES (?1, ?2, ?3)",
            )?;
            for group in &sealed {
                keys.execute(params![identity.segment_id, group.group, group.key_id])?;
            }
            drop(keys);
            date_filter::record_ranges(
                &tx,
                &identity.segment_id,
                &date_filter::date_ranges(batch),
            )?;
            let event =
                AuditEvent::new(actor, AuditAction::DatasetAppend, dataset).with_details(json!({
                    "segment": identity.segment_id,
                    "position": identity.position,
                    "rows": identity.rows,
                    "bytes": written.bytes,
                    "sha256": written.sha256,
                }));
            let head = append_in_transaction(&tx, &event)?;
            let receipt = AppendReceipt {
                segment_id: identity.segment_id.clone(),
                position: identity.position,
                rows: identity.rows,
                bytes: written.bytes,
                sha256: written.sha256.clone(),
                audit_seq: head.seq,
            };
            with(&tx, &receipt)?;
            tx.commit()?;
            Ok(receipt)
        })();
        let receipt = match committed {
            Ok(receipt) => receipt,
            Err(error) => {
                // Not visible without its row; removing it now saves the sweep at next open.
                let _ = std::fs::remove_file(&path);
                return Err(error);
            }
        };
        tracing::debug!(
            dataset,
            rows = receipt.rows,
            bytes = receipt.bytes,
            "segment appended"
        );
        Ok(receipt)
    }
}

/// The names of the catalog's datasets, in order.
pub(crate) fn catalog_datasets(conn: &Connection) -> Result<Vec<String>> {
    let mut statement = conn.prepare("SELECT name FROM datasets ORDER BY name")?;
    let names = statement
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(names)
}

/// A dataset's segments in position order, as the catalog records them.
pub(crate) fn catalog_segments(
    conn: &Connection,
    state_dir: &Path,
    name: &str,
) -> Result<Vec<SegmentInfo>> {
    dataset::current_version_number(conn, name)?;
    let dir = state_dir.join(SEGMENTS_DIR).join(name);
    let mut statement = conn.prepare_cached(
        "SELECT id, position, schema_version, rows, bytes, sha256, created, file_name
         FROM segments WHERE dataset = ?1 ORDER BY position",
    )?;
    let segments = statement
        .query_map([name], |row| {
            Ok(SegmentInfo {
                id: row.get(0)?,
                position: row.get::<_, i64>(1)? as u64,
                schema_version: row.get(2)?,
                rows: row.get::<_, i64>(3)? as u64,
                bytes: row.get::<_, i64>(4)? as u64,
                sha256: row.get(5)?,
                created: row.get(6)?,
                file: dir.join(row.get::<_, String>(7)?),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(segments)
}

/// A fresh name per write, so a re-encrypted segment never overwrites the file the
/// catalog still points to. The position prefix keeps directory listings in order.
pub(crate) fn segment_file_name(position: u64) -> String {
    format!("{position:010}-{}.seg", &random_id()[..12])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::StringArray;
    use arrow_schema::{DataType, Field};
    use rusqlite::OptionalExtension;

    use super::*;
    use crate::catalog::CATALOG_FILE;

    const DATASET: &str = "batches";

    fn schema() -> Schema {
        Schema::new(vec![Field::new("value", DataType::Utf8, false)])
    }

    fn batch(values: &[&str]) -> RecordBatch {
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![Arc::new(StringArray::from(values.to_vec()))],
        )
        .unwrap()
    }

    /// A vault with one dataset, and a caller's own table in the catalog database.
    fn vault(dir: &Path) -> Vault {
        let env = MasterKeyEnv::with_value("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        let vault = Vault::open(dir, &env).unwrap();
        vault
            .create_dataset(
                DATASET,
                &schema(),
                &ColumnGroups::new().with_group("values", &["value"]),
                "test",
            )
            .unwrap();
        Connection::open(dir.join(CATALOG_FILE))
            .unwrap()
            .execute_batch(
                "CREATE TABLE receipts (batch_key TEXT PRIMARY KEY, segment TEXT NOT NULL, audit_seq INTEGER NOT NULL);",
            )
            .unwrap();
        vault
    }

    /// Records the append under `key`; a key recorded before violates the primary key.
    fn record(key: &str) -> impl FnOnce(&Transaction<'_>, &AppendReceipt) -> rusqlite::Result<()> {
        move |tx, receipt| {
            tx.execute(
                "INSERT INTO receipts (batch_key, segment, audit_seq) VALUES (?1, ?2, ?3)",
                params![key, receipt.segment_id, receipt.audit_seq as i64],
            )?;
            Ok(())
        }
    }

    fn stored_receipt(dir: &Path, key: &str) -> Option<(String, u64)> {
        Connection::open(dir.join(CATALOG_FILE))
            .unwrap()
            .query_row(
                "SELECT segment, audit_seq FROM receipts WHERE batch_key = ?1",
                [key],
                |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()
            .unwrap()
    }

    fn appends_audited(vault: &Vault) -> usize {
        vault
            .audit()
            .entries(0)
            .unwrap()
            .iter()
            .filter(|e| e.action == AuditAction::DatasetAppend.as_str())
            .count()
    }

    fn segment_files(vault: &Vault) -> usize {
        std::fs::read_dir(vault.segment_dir(DATASET))
            .unwrap()
            .count()
    }

    #[test]
    fn statements_appended_with_a_segment_commit_with_it_and_see_its_receipt() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let receipt = vault
            .append_with(DATASET, &batch(&["a", "b"]), "test", record("k1"))
            .unwrap();
        assert_eq!(receipt.rows, 2);
        assert_eq!(
            stored_receipt(dir.path(), "k1"),
            Some((receipt.segment_id.clone(), receipt.audit_seq))
        );
        let segments = vault.segments(DATASET).unwrap();
        assert_eq!(segments.len(), 1);
        assert_eq!(segments[0].id, receipt.segment_id);
        let entry = vault
            .audit()
            .entries(0)
            .unwrap()
            .into_iter()
            .find(|e| e.seq == receipt.audit_seq)
            .unwrap();
        assert_eq!(entry.action, AuditAction::DatasetAppend.as_str());
        assert_eq!(entry.details["segment"], receipt.segment_id.as_str());
    }

    #[test]
    fn failing_statements_leave_no_segment_no_audit_entry_and_a_retry_stores_once() {
        let dir = tempfile::tempdir().unwrap();
        let vault = vault(dir.path());
        let head = vault.audit().head().unwrap();

        // The caller's statement fails after the segment row and audit entry were written.
        let failed = vault.append_with(DATASET, &batch(&["a"]), "test", |tx, _| {
            tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        assert!(matches!(failed, Err(VaultError::Sqlite(_))), "{failed:?}");
        assert!(vault.segments(DATASET).unwrap().is_empty());
        assert_eq!(segment_files(&vault), 0, "the segment file is removed");
        assert_eq!(vault.audit().head().unwrap(), head, "no audit entry");
        assert_eq!(appends_audited(&vault), 0);

        // The retry stores the batch, once.
        let stored = vault
            .append_with(DATASET, &batch(&["a"]), "test", record("k1"))
            .unwrap();
        assert_eq!(stored.position, 0);
        assert_eq!(stored.audit_seq, head.seq + 1);

        // A second store under the same key violates the caller's constraint: refused whole.
        let again = vault.append_with(DATASET, &batch(&["a"]), "test", record("k1"));
        assert!(matches!(again, Err(VaultError::Sqlite(_))), "{again:?}");
        assert_eq!(vault.segments(DATASET).unwrap().len(), 1);
        assert_eq!(segment_files(&vault), 1);
        assert_eq!(appends_audited(&vault), 1);
        assert_eq!(
            stored_receipt(dir.path(), "k1"),
            Some((stored.segment_id, stored.audit_seq))
        );
        assert!(matches!(
            vault.audit().verify().unwrap(),
            crate::VerifyReport::Intact { .. }
        ));

        // The vault still appends after the failures.
        let next = vault
            .append_with(DATASET, &batch(&["b"]), "test", record("k2"))
            .unwrap();
        assert_eq!(next.position, 1);
    }
}
