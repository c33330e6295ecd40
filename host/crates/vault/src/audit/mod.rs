//! The append-only, hash-chained audit log.
//!
//! Table `audit(seq, time, actor, action, subject, details, prev_hash, hash)`: `seq`
//! counts from 1 without gaps, `time` is RFC 3339 UTC, `details` a JSON object, `hash`
//! chains each entry to the one before (encoding in [`chain`]). Table `audit_head` keeps
//! the last `(seq, hash)`, updated in the same transaction as each append, so deleting
//! the tail of the log is detected as truncation.
//!
//! **No personal data in audit entries.** Actor, subject and details carry identifiers of
//! things the warehouse manages (dataset names, segment and key ids, association ids,
//! component hashes), counts and hashes only: never patient data, row values, tokens or
//! key material. The log is exported to auditors who must not see health data.
//!
//! An entry recording a change is written with [`append_in_transaction`] inside the
//! transaction making the change, so either both are committed or neither. Events with
//! no change of their own (`auth.failed`, `capability.denied`, …) use [`AuditLog::append`].

pub mod chain;
mod page;
mod verify;

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use chain::{GENESIS_PREV_HASH, canonical_json};
pub use page::{AuditFilter, MAX_FIELD_CHARS, PageCursor, clip};
pub use verify::{ChainBreak, VerifyReport};

use crate::catalog::{self, now_rfc3339};
use crate::error::{Result, VaultError};

/// What happened. Well-known actions have variants; later subsystems use [`AuditAction::Other`]
/// with a dotted name such as `ingest.receipt` or `study.run`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuditAction {
    KeyInit,
    KeyRotate,
    KeyRotateData,
    DatasetCreate,
    DatasetSchemaVersion,
    DatasetAppend,
    CapabilityDenied,
    AuthFailed,
    Other(String),
}

impl AuditAction {
    pub fn as_str(&self) -> &str {
        match self {
            Self::KeyInit => "key.init",
            Self::KeyRotate => "key.rotate",
            Self::KeyRotateData => "key.rotate_data",
            Self::DatasetCreate => "dataset.create",
            Self::DatasetSchemaVersion => "dataset.schema_version",
            Self::DatasetAppend => "dataset.append",
            Self::CapabilityDenied => "capability.denied",
            Self::AuthFailed => "auth.failed",
            Self::Other(name) => name,
        }
    }

    pub fn parse(name: &str) -> Self {
        [
            Self::KeyInit,
            Self::KeyRotate,
            Self::KeyRotateData,
            Self::DatasetCreate,
            Self::DatasetSchemaVersion,
            Self::DatasetAppend,
            Self::CapabilityDenied,
            Self::AuthFailed,
        ]
        .into_iter()
        .find(|known| known.as_str() == name)
        .unwrap_or_else(|| Self::Other(name.to_owned()))
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry to append. See the module docs: ids, counts and hashes only.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub actor: String,
    pub action: AuditAction,
    pub subject: String,
    /// A JSON object; anything else is refused.
    pub details: Value,
}

impl AuditEvent {
    pub fn new(actor: impl Into<String>, action: AuditAction, subject: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            action,
            subject: subject.into(),
            details: Value::Object(Default::default()),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored entry, as exported (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The last entry's sequence number and hash; `(0, GENESIS_PREV_HASH)` for an empty log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

impl AuditHead {
    fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_PREV_HASH.to_owned(),
        }
    }
}

/// Appends `event` inside `tx`, which commits it together with the change it records.
///
/// `tx` must have been started with [`TransactionBehavior::Immediate`] (or already have
/// written): the head is read and extended under the database write lock, so two
/// connections can never extend the same head.
pub fn append_in_transaction(tx: &Transaction<'_>, event: &AuditEvent) -> Result<AuditHead> {
    if !event.details.is_object() {
        return Err(VaultError::AuditDetailsNotObject);
    }
    let previous = read_recorded_head(tx)?.unwrap_or_else(AuditHead::genesis);
    let seq = previous.seq + 1;
    let time = now_rfc3339();
    let action = event.action.as_str();
    // Callers bound what clients send; this is the floor under every entry.
    let actor = clip(&event.actor, MAX_FIELD_CHARS);
    let subject = clip(&event.subject, MAX_FIELD_CHARS);
    let fields = chain::HashedFields {
        seq,
        time: &time,
        actor: &actor,
        action,
        subject: &subject,
        details: &event.details,
    };
    let hash = chain::entry_hash(&previous.hash, &fields);
    tx.execute(
        "INSERT INTO audit (seq, time, actor, action, subject, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            seq as i64,
            time,
            actor,
            action,
            subject,
            canonical_json(&event.details),
            previous.hash,
            hash
        ],
    )?;
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        params![seq as i64, hash],
    )?;
    tracing::debug!(seq, action, "audit entry appended");
    Ok(AuditHead { seq, hash })
}

fn read_recorded_head(conn: &Connection) -> Result<Option<AuditHead>> {
    Ok(conn
        .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |row| {
            Ok(AuditHead {
                seq: row.get::<_, i64>(0)? as u64,
                hash: row.get(1)?,
            })
        })
        .optional()?)
}

/// Calls `visit` for each entry with `seq > since_seq`, in order, one row at a time.
fn visit_entries(
    conn: &Connection,
    since_seq: u64,
    mut visit: impl FnMut(AuditEntry) -> Result<()>,
) -> Result<()> {
    let mut statement = conn.prepare(
        "SELECT seq, time, actor, action, subject, details, prev_hash, hash
         FROM audit WHERE seq > ?1 ORDER BY seq",
    )?;
    let mut rows = statement.query([since_seq as i64])?;
    while let Some(row) = rows.next()? {
        visit(entry_from_row(row)?)?;
    }
    Ok(())
}

/// An entry from a row of `seq, time, actor, action, subject, details, prev_hash, hash`.
pub(crate) fn entry_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    let details_text: String = row.get(5)?;
    // An unparsable details text is kept as a JSON string so verify can report the
    // entry as edited rather than the walk failing on it.
    let details = serde_json::from_str(&details_text).unwrap_or(Value::String(details_text));
    Ok(AuditEntry {
        seq: row.get::<_, i64>(0)? as u64,
        time: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        subject: row.get(4)?,
        details,
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
    })
}

/// A handle on the audit log alone. Needs no master key, so an auditor can verify and
/// export without being able to read data.
pub struct AuditLog {
    conn: Mutex<Connection>,
}

impl AuditLog {
    /// Opens the audit log of an existing state directory.
    pub fn open(state_dir: &Path) -> Result<Self> {
        let conn = catalog::open_existing(state_dir)?;
        catalog::create_audit_tables(&conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn from_connection(conn: Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the connection cannot leave a transaction half-applied
        // (rusqlite rolls back on drop), so the connection is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends an event that accompanies no other change (`auth.failed`, …).
    pub fn append(&self, event: &AuditEvent) -> Result<AuditHead> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let head = append_in_transaction(&tx, event)?;
        tx.commit()?;
        Ok(head)
    }

    pub fn head(&self) -> Result<AuditHead> {
        let conn = self.lock();
        Ok(read_recorded_head(&conn)?.unwrap_or_else(AuditHead::genesis))
    }

    /// Walks the whole chain; see [`VerifyReport`].
    pub fn verify(&self) -> Result<VerifyReport> {
        let conn = self.lock();
        verify::verify_chain(&conn)
    }

    /// Walks the chain from `verified`, a head an earlier walk found intact: checks that
    /// its entry still has that hash, then every entry after it. What it costs grows with
    /// the entries added since, not with the log; only [`AuditLog::verify`] re-reads the
    /// part before `verified`.
    pub fn verify_since(&self, verified: &AuditHead) -> Result<VerifyReport> {
        let conn = self.lock();
        verify::verify_from(&conn, verified)
    }

    /// Writes every entry with `seq > since_seq` as one JSON object per line; returns how
    /// many were written.
    pub fn export_jsonl(&self, since_seq: u64, out: &mut dyn Write) -> Result<u64> {
        let conn = self.lock();
        let mut written = 0;
        visit_entries(&conn, since_seq, |entry| {
            // A study's log lines reach the log: no character in them may act on the
            // terminal this is printed to.
            let line = serde_json::to_string(&entry).map_err(|e| VaultError::Export(e.into()))?;
            let line = crate::text::escape_json_for_terminal(&line);
            out.write_all(line.as_bytes()).map_err(VaultError::Export)?;
            out.write_all(b"\n").map_err(VaultError::Export)?;
            written += 1;
            Ok(())
        })?;
        out.flush().map_err(VaultError::Export)?;
        Ok(written)
    }

    /// Entries with `seq > since_seq`, in memory; for small ranges and tests.
    pub fn entries(&self, since_seq: u64) -> Result<Vec<AuditEntry>> {
        let conn = self.lock();
        let mut entries = Vec::new();
        visit_entries(&conn, since_seq, |entry| {
            entries.push(entry);
            Ok(())
        })?;
        Ok(entries)
    }
}
