//! The SQLite catalog at `<state-dir>/carrel.db`: datasets, schema versions, column
//! groups, wrapped data keys, segments and the audit log, in one database so a change
//! and the audit entry recording it commit in one transaction.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use time::format_description::well_known::Rfc3339;

use crate::error::{Result, VaultError};

pub const CATALOG_FILE: &str = "carrel.db";

/// How long a writer waits for another connection's transaction before giving up.
/// Appends hold the write lock for one segment's fsyncs, well under this; a shorter wait
/// (the host's tables once had 5 s) failed study runs while 64 associations ingested.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS vault_meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    name            TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL,
    created         TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schema_versions (
    dataset    TEXT NOT NULL REFERENCES datasets(name),
    version    INTEGER NOT NULL,
    schema_ipc BLOB NOT NULL,
    created    TEXT NOT NULL,
    PRIMARY KEY (dataset, version)
);
CREATE TABLE IF NOT EXISTS column_groups (
    dataset     TEXT NOT NULL,
    version     INTEGER NOT NULL,
    column_name TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    PRIMARY KEY (dataset, version, column_name),
    FOREIGN KEY (dataset, version) REFERENCES schema_versions(dataset, version)
);
CREATE TABLE IF NOT EXISTS data_keys (
    key_id     TEXT PRIMARY KEY,
    dataset    TEXT NOT NULL REFERENCES datasets(name),
    group_name TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('active', 'retiring')),
    wrapped    BLOB NOT NULL,
    created    TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS data_keys_one_active
    ON data_keys (dataset, group_name) WHERE state = 'active';
CREATE TABLE IF NOT EXISTS segments (
    id             TEXT PRIMARY KEY,
    dataset        TEXT NOT NULL REFERENCES datasets(name),
    position       INTEGER NOT NULL,
    schema_version INTEGER NOT NULL,
    file_name      TEXT NOT NULL,
    rows           INTEGER NOT NULL,
    bytes          INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    created        TEXT NOT NULL,
    UNIQUE (dataset, position)
);
CREATE TABLE IF NOT EXISTS segment_keys (
    segment_id TEXT NOT NULL REFERENCES segments(id),
    group_name TEXT NOT NULL,
    key_id     TEXT NOT NULL REFERENCES data_keys(key_id),
    PRIMARY KEY (segment_id, group_name)
);
CREATE INDEX IF NOT EXISTS segment_keys_by_key ON segment_keys (key_id);
CREATE TABLE IF NOT EXISTS segment_date_ranges (
    segment_id  TEXT NOT NULL REFERENCES segments(id),
    column_name TEXT NOT NULL,
    min_days    INTEGER NOT NULL,
    max_days    INTEGER NOT NULL,
    PRIMARY KEY (segment_id, column_name)
);
"#;

/// Opens (creating if needed) the catalog with the settings every connection needs.
pub(crate) fn open_connection(state_dir: &Path) -> Result<Connection> {
    let path = state_dir.join(CATALOG_FILE);
    crate::fsio::create_private_file(&path).map_err(|e| VaultError::Io {
        context: format!("creating {}", path.display()),
        source: e,
    })?;
    let conn = Connection::open(path)?;
    configure(&conn)?;
    Ok(conn)
}

/// Opens an existing catalog; a missing one is an error rather than an empty database.
/// Every connection to the catalog, the host's own tables' included, is opened here so
/// that all of them wait as long for the write lock and write as durably.
pub fn open_existing(state_dir: &Path) -> Result<Connection> {
    let path = state_dir.join(CATALOG_FILE);
    if !path.exists() {
        return Err(VaultError::NoCatalog { path });
    }
    open_connection(state_dir)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL: readers never queue behind an append. synchronous=FULL: a commit is on disk
    // when it returns, which is what "append returns only after it is durable" needs.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // A deleted row is overwritten, not left in a free page: a destroyed data key must
    // not stay readable in the database file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    Ok(())
}

/// After destroying data keys: the write-ahead log still holds the pages the keys were
/// on before the delete; checkpointed and truncated, the wrapped keys are nowhere in the
/// state directory (`secure_delete` already cleared them from the database file).
pub(crate) fn forget_deleted(conn: &Connection) -> Result<()> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        tracing::warn!(
            "the catalog's write-ahead log could not be truncated after data keys were destroyed (a reader held it); the next checkpoint will"
        );
    }
    Ok(())
}

/// A segment as recorded in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub id: String,
    pub position: u64,
    pub schema_version: u32,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
    pub created: String,
    pub file: PathBuf,
}

/// Creates the vault's tables and the audit tables.
pub(crate) fn migrate(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    create_audit_tables(conn)?;
    Ok(())
}

/// Creates the audit log's tables: the hash-chained entries and the head.
pub(crate) fn create_audit_tables(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        r#"
        CREATE TABLE IF NOT EXISTS audit (
            seq       INTEGER PRIMARY KEY,
            time      TEXT NOT NULL,
            actor     TEXT NOT NULL,
            action    TEXT NOT NULL,
            subject   TEXT NOT NULL,
            details   TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash      TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS audit_head (
            id   INTEGER PRIMARY KEY CHECK (id = 1),
            seq  INTEGER NOT NULL,
            hash TEXT NOT NULL
        );
        "#,
    )?;
    Ok(())
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&Rfc3339)
        // Rfc3339 formatting of a UTC timestamp between years 0 and 9999 cannot fail.
        .expect("current UTC time formats as RFC 3339")
}

/// Dataset and column group names end up in file paths and associated data, so they are
/// kept to a small, path-safe alphabet.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

pub(crate) fn meta_get(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .query_row(
            "SELECT value FROM vault_meta WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()?)
}

pub(crate) fn meta_set(conn: &Connection, name: &str, value: &[u8]) -> Result<()> {
    conn.execute(
        "INSERT INTO vault_meta (name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = excluded.value",
        rusqlite::params![name, value],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_path_safe_alphabet_are_rejected() {
        for bad in [
            "",
            "../etc",
            "Consultations",
            "a b",
            "-lead",
            &"x".repeat(65),
        ] {
            assert!(validate_name("dataset", bad).is_err(), "{bad:?} accepted");
        }
        for good in ["consultations", "2026_q1", "flu-indicator"] {
            validate_name("dataset", good).unwrap();
        }
    }

    #[test]
    fn catalog_opens_in_wal_mode_with_every_table() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(dir.path()).unwrap();
        migrate(&conn).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        for table in [
            "datasets",
            "schema_versions",
            "column_groups",
            "data_keys",
            "segments",
            "audit",
            "audit_head",
        ] {
            let count: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = ?1",
                    [table],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(count, 1, "{table}");
        }
    }

    #[test]
    fn opening_a_missing_catalog_for_reading_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            open_existing(dir.path()),
            Err(VaultError::NoCatalog { .. })
        ));
    }
}
