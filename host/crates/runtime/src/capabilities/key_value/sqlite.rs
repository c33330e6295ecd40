//! The embedded key-value backend: Spin's own SQLite table, in WAL mode so readers never
//! queue behind a writer (Spin uses the default rollback journal).

use super::KeyValueBackend;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One SQLite file, shared by every label stored in it, with a small pool of connections.
pub struct SqliteDatabase {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

const MAX_IDLE_CONNECTIONS: usize = 16;

impl SqliteDatabase {
    pub fn open(path: &Path) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let db = Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        let conn = db.connect()?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            );",
        )
        .map_err(|e| {
            format!(
                "cannot create the key-value table in {}: {e}",
                path.display()
            )
        })?;
        db.release(conn);
        Ok(db)
    }

    fn connect(&self) -> Result<Connection, String> {
        let conn = Connection::open(&self.path)
            .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
            .map_err(|e| format!("cannot configure {}: {e}", self.path.display()))?;
        Ok(conn)
    }

    fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, String> {
        let conn = match self.idle.lock().expect("pool lock").pop() {
            Some(c) => c,
            None => self.connect()?,
        };
        let result = f(&conn).map_err(|e| format!("key-value database error: {e}"));
        self.release(conn);
        result
    }

    fn release(&self, conn: Connection) {
        let mut idle = self.idle.lock().expect("pool lock");
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(conn);
        }
    }
}

/// One label's rows in a [`SqliteDatabase`].
pub struct SqliteStore {
    db: Arc<SqliteDatabase>,
    label: String,
}

impl SqliteStore {
    pub fn new(db: Arc<SqliteDatabase>, label: &str) -> Self {
        Self {
            db,
            label: label.to_owned(),
        }
    }
}

impl KeyValueBackend for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.db.with(|c| {
            c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .query_row(params![self.label, key], |r| r.get(0))
                .optional()
        })
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        self.db.with(|c| {
            c.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![self.label, key, value])
            .map(|_| ())
        })
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.db.with(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![self.label, key])
                .map(|_| ())
        })
    }

    fn exists(&self, key: &str) -> Result<bool, String> {
        self.db.with(|c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
            )?
            .query_row(params![self.label, key], |r| r.get(0))
        })
    }

    fn keys(&self) -> Result<Vec<String>, String> {
        self.db.with(|c| {
            c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1 ORDER BY key")?
                .query_map(params![self.label], |r| r.get(0))?
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_in_one_file_do_not_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(SqliteDatabase::open(&dir.path().join("kv.db")).unwrap());
        let a = SqliteStore::new(db.clone(), "a");
        let b = SqliteStore::new(db, "b");
        a.set("k", b"1").unwrap();
        assert_eq!(a.get("k").unwrap(), Some(b"1".to_vec()));
        assert_eq!(b.get("k").unwrap(), None);
        assert!(!b.exists("k").unwrap());
        b.set("k", b"2").unwrap();
        a.set("k", b"3").unwrap();
        assert_eq!(b.get("k").unwrap(), Some(b"2".to_vec()));
        a.delete("k").unwrap();
        assert_eq!(a.keys().unwrap(), Vec::<String>::new());
        assert_eq!(b.keys().unwrap(), vec!["k".to_owned()]);
    }

    #[test]
    fn database_uses_spin_table_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.db");
        let db = SqliteDatabase::open(&path).unwrap();
        SqliteStore::new(Arc::new(db), "default")
            .set("x", b"y")
            .unwrap();
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let value: Vec<u8> = conn
            .query_row(
                "SELECT value FROM spin_key_value WHERE store='default' AND key='x'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(value, b"y");
    }
}
