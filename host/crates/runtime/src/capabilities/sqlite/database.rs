//! The SQL behind both SQLite interfaces, on rusqlite. A guest writes any SQL it likes, so
//! every connection is hardened before the guest sees it: no other file can be attached
//! (which would let SQL read or write any file the host can), the schema cannot be
//! corrupted on purpose, a statement is interrupted at the request's deadline, and a result
//! is capped at what the guest could hold.

use super::QueryLimits;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a guest is told when a database call fails.
#[derive(Debug, Clone, PartialEq)]
pub enum SqliteError {
    NoSuchDatabase,
    AccessDenied,
    InvalidConnection,
    DatabaseFull,
    Io(String),
}

impl From<rusqlite::Error> for SqliteError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => SqliteError::DatabaseFull,
            Some(ErrorCode::OperationInterrupted) => SqliteError::Io(
                "statement interrupted: it ran past the request's deadline".to_owned(),
            ),
            _ => SqliteError::Io(e.to_string()),
        }
    }
}

/// One database as configured: a file, or (as Spin does when no path is given) a fresh
/// in-memory database for each connection.
#[derive(Debug)]
pub struct Database {
    label: String,
    path: Option<PathBuf>,
}

/// How long a connection waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Virtual machine steps between two looks at the deadline.
const STEPS_BETWEEN_DEADLINE_CHECKS: i32 = 10_000;

impl Database {
    pub fn new(label: &str, path: Option<PathBuf>) -> Self {
        Self {
            label: label.to_owned(),
            path,
        }
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// Creates the file and its directory and puts it in WAL mode (kept in the file), so
    /// readers never wait for a writer; the error names the path.
    pub fn prepare(&self) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .and_then(|_| conn.pragma_update(None, "journal_mode", "WAL"))
            .map_err(|e| format!("cannot configure {}: {e}", path.display()))
    }

    /// A new connection, hardened. Each guest `open` gets its own, as in Spin, so
    /// `changes` and `last-insert-rowid` never describe another request's statements.
    pub fn connect(&self) -> Result<Connection, SqliteError> {
        let conn = match &self.path {
            Some(path) => Connection::open(path),
            None => Connection::open_in_memory(),
        }?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // No writable_schema tricks, no corrupting the file through SQL.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
        conn.authorizer(Some(authorize));
        Ok(conn)
    }
}

/// Denies what would reach outside the database: attaching a file (ATTACH, and the ATTACH
/// that `VACUUM INTO` makes), and the pragmas that move SQLite's own files. A temporary or
/// in-memory database may still be attached, as in Spin.
fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Attach { filename } if !matches!(filename, "" | ":memory:") => {
            Authorization::Deny
        }
        AuthAction::Pragma { pragma_name, .. }
            if pragma_name.eq_ignore_ascii_case("temp_store_directory")
                || pragma_name.eq_ignore_ascii_case("data_store_directory") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }
}

/// A statement's columns and rows; `error` is set when stepping failed after some rows
/// were read, or a result grew past its limit (the async interface hands the rows read
/// over, then the error).
#[derive(Debug, Default)]
pub struct QueryOutput {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub error: Option<SqliteError>,
}

fn value_size(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::Text(t) => t.len(),
            Value::Blob(b) => b.len(),
            _ => 0,
        }
}

/// Runs one statement with its parameters. Blocking: call it off the async executor.
pub fn execute(
    connection: &Mutex<Connection>,
    statement: &str,
    parameters: Vec<Value>,
    limits: QueryLimits,
) -> Result<QueryOutput, SqliteError> {
    let conn = connection
        .lock()
        .map_err(|_| SqliteError::InvalidConnection)?;
    let deadline = Instant::now() + limits.timeout;
    conn.progress_handler(
        STEPS_BETWEEN_DEADLINE_CHECKS,
        Some(move || Instant::now() >= deadline),
    );
    let outcome = run(&conn, statement, parameters, limits.max_result_bytes);
    conn.progress_handler(0, None::<fn() -> bool>);
    outcome
}

fn run(
    conn: &Connection,
    statement: &str,
    parameters: Vec<Value>,
    max_result_bytes: usize,
) -> Result<QueryOutput, SqliteError> {
    let mut prepared = conn.prepare(statement)?;
    let columns: Vec<String> = prepared
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let width = columns.len();
    let mut output = QueryOutput {
        columns,
        ..QueryOutput::default()
    };
    let mut rows = prepared.query(rusqlite::params_from_iter(parameters))?;
    let mut bytes = 0usize;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            // Failing before any row is the statement failing.
            Err(e) if output.rows.is_empty() => return Err(e.into()),
            Err(e) => {
                output.error = Some(e.into());
                break;
            }
        };
        let mut values = Vec::with_capacity(width);
        for index in 0..width {
            let value: Value = row.get(index)?;
            bytes += value_size(&value);
            values.push(value);
        }
        if bytes > max_result_bytes {
            output.error = Some(SqliteError::Io(format!(
                "query result exceeds the limit of {max_result_bytes} bytes"
            )));
            break;
        }
        output.rows.push(values);
    }
    Ok(output)
}

/// The number of rows the connection's latest INSERT, UPDATE or DELETE changed.
pub fn changes(connection: &Mutex<Connection>) -> u64 {
    connection.lock().map(|c| c.changes()).unwrap_or(0)
}

/// The rowid of the connection's latest successful INSERT, or 0.
pub fn last_insert_rowid(connection: &Mutex<Connection>) -> i64 {
    connection
        .lock()
        .map(|c| c.last_insert_rowid())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(dir: &std::path::Path) -> Database {
        let db = Database::new("default", Some(dir.join("db.sqlite")));
        db.prepare().unwrap();
        db
    }

    fn run_sql(conn: &Mutex<Connection>, sql: &str) -> Result<QueryOutput, SqliteError> {
        execute(conn, sql, Vec::new(), QueryLimits::default())
    }

    #[test]
    fn statements_round_trip_values_of_every_type() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Mutex::new(database(dir.path()).connect().unwrap());
        run_sql(
            &conn,
            "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)",
        )
        .unwrap();
        execute(
            &conn,
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            vec![
                Value::Integer(7),
                Value::Real(1.5),
                Value::Text("J11".into()),
                Value::Blob(vec![0, 1]),
                Value::Null,
            ],
            QueryLimits::default(),
        )
        .unwrap();
        assert_eq!(changes(&conn), 1);
        assert_eq!(last_insert_rowid(&conn), 1);
        let out = run_sql(&conn, "SELECT * FROM t").unwrap();
        assert_eq!(out.columns, ["i", "r", "s", "b", "n"]);
        assert_eq!(
            out.rows,
            vec![vec![
                Value::Integer(7),
                Value::Real(1.5),
                Value::Text("J11".into()),
                Value::Blob(vec![0, 1]),
                Value::Null
            ]]
        );
        assert!(out.error.is_none());
    }

    #[test]
    fn sql_cannot_attach_or_vacuum_into_another_file() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Mutex::new(database(dir.path()).connect().unwrap());
        run_sql(&conn, "CREATE TABLE t (x)").unwrap();
        let outside = dir.path().join("outside.db");
        for sql in [
            format!("ATTACH DATABASE '{}' AS other", outside.display()),
            format!("VACUUM INTO '{}'", outside.display()),
        ] {
            let err = run_sql(&conn, &sql).unwrap_err();
            assert!(matches!(err, SqliteError::Io(_)), "{sql}: {err:?}");
        }
        assert!(!outside.exists());
        run_sql(&conn, "ATTACH DATABASE ':memory:' AS scratch").unwrap();
        run_sql(&conn, "VACUUM").unwrap();
    }

    #[test]
    fn a_statement_running_past_its_deadline_is_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Mutex::new(database(dir.path()).connect().unwrap());
        let limits = QueryLimits {
            timeout: Duration::from_millis(200),
            ..QueryLimits::default()
        };
        let started = Instant::now();
        let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
        let err = execute(&conn, endless, Vec::new(), limits).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            matches!(&err, SqliteError::Io(m) if m.contains("deadline")),
            "{err:?}"
        );
        // The connection is usable again afterwards.
        assert_eq!(
            run_sql(&conn, "SELECT 1").unwrap().rows,
            vec![vec![Value::Integer(1)]]
        );
    }

    #[test]
    fn results_larger_than_the_limit_stop_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Mutex::new(database(dir.path()).connect().unwrap());
        let limits = QueryLimits {
            max_result_bytes: 10_000,
            ..QueryLimits::default()
        };
        let big = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x, zeroblob(100) FROM c";
        let out = execute(&conn, big, Vec::new(), limits).unwrap();
        assert!(out.rows.len() < 1000);
        assert!(matches!(out.error, Some(SqliteError::Io(m)) if m.contains("10000 bytes")));
    }

    #[test]
    fn a_database_without_a_path_is_in_memory_per_connection() {
        let db = Database::new("scratch", None);
        let first = Mutex::new(db.connect().unwrap());
        run_sql(&first, "CREATE TABLE t (x)").unwrap();
        let second = Mutex::new(db.connect().unwrap());
        assert!(run_sql(&second, "SELECT * FROM t").is_err());
    }
}
