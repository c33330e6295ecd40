//! Spin SQLite databases (`spin:sqlite/sqlite@3.1.0` and `fermyon:spin/sqlite@2.0.0`).
//!
//! The shape every capability module has: the WIT (`wit/deps/spin-sqlite@3.1.0`,
//! `wit/deps/fermyon-spin@2.0.0/sqlite.wit`), a host struct implementing the generated
//! traits (`spin3.rs`, `fermyon2.rs`), [`add_to_linker`], and the permission set computed
//! once per app from the manifest's `sqlite_databases` ([`SqliteGrants`]) and copied into
//! each instance's state. A label the manifest does not grant is `access-denied`, an error
//! value the guest can handle, never a trap. The SQL itself runs in [`database`], which
//! keeps a guest inside its own database file and inside its request's deadline.

mod bindings;
mod database;
mod fermyon2;
mod spin3;

pub use database::{Database, QueryOutput, SqliteError};

use crate::runtime_config::{RuntimeConfig, SqliteDatabaseConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{HasData, Linker, ResourceTable};

/// Spin's file name for the `default` database, in the state directory.
pub const DEFAULT_DATABASE_FILE: &str = "sqlite_db.db";

/// Open connections one instance may hold at once: each is a file handle in the host.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 16;

/// An open connection, as held in a guest's resource table.
pub struct ConnectionHandle {
    connection: Arc<Mutex<rusqlite::Connection>>,
}

/// Errors found when the app starts, before any request is served.
#[derive(Debug, thiserror::Error)]
pub enum SqliteSetupError {
    #[error(
        "component `{component}` is granted SQLite database `{label}`, but no database is configured for that label: add [sqlite_database.{label}] to the runtime config"
    )]
    Unconfigured { component: String, label: String },
    #[error("SQLite database `{label}`: {message}")]
    Open { label: String, message: String },
}

/// The databases of a whole app: label → where it lives. Files are opened (and created)
/// at start only for labels some component is granted, so a typo fails the start rather
/// than the first request.
pub struct SqliteDatabases {
    by_label: BTreeMap<String, Arc<Database>>,
}

impl SqliteDatabases {
    /// Every configured database, with `default` at `<state-dir>/sqlite_db.db` unless the
    /// runtime config places it elsewhere, as in Spin. `granted` lists every label some
    /// component may open.
    pub fn open(
        config: &RuntimeConfig,
        state_dir: &Path,
        granted: &[&str],
    ) -> Result<Self, SqliteSetupError> {
        let mut configs = config.sqlite_databases.clone();
        configs
            .entry("default".to_owned())
            .or_insert_with(|| SqliteDatabaseConfig::Spin {
                path: Some(state_dir.join(DEFAULT_DATABASE_FILE)),
            });
        let mut by_label = BTreeMap::new();
        for (label, cfg) in configs {
            let SqliteDatabaseConfig::Spin { path } = cfg;
            let path = path.map(|p| {
                if p.is_absolute() {
                    p
                } else {
                    config.base_dir.join(p)
                }
            });
            let database = Database::new(&label, path);
            if granted.contains(&label.as_str()) {
                database
                    .prepare()
                    .map_err(|message| SqliteSetupError::Open {
                        label: label.clone(),
                        message,
                    })?;
            }
            by_label.insert(label, Arc::new(database));
        }
        Ok(Self { by_label })
    }

    /// The grants of one component, checked against what is configured.
    pub fn grants_for(
        &self,
        component: &str,
        labels: &[String],
        limits: QueryLimits,
    ) -> Result<SqliteGrants, SqliteSetupError> {
        let mut databases = BTreeMap::new();
        for label in labels {
            let database =
                self.by_label
                    .get(label)
                    .ok_or_else(|| SqliteSetupError::Unconfigured {
                        component: component.to_owned(),
                        label: label.clone(),
                    })?;
            databases.insert(label.clone(), database.clone());
        }
        Ok(SqliteGrants {
            databases: Arc::new(databases),
            limits,
        })
    }
}

/// What one statement may cost the host.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// A statement still running after this is interrupted (the request's deadline: the
    /// epoch deadline cannot stop host code).
    pub timeout: Duration,
    /// Largest result built in the host; no guest could receive more than its memory.
    pub max_result_bytes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_result_bytes: 64 << 20,
        }
    }
}

/// SQLite databases granted to one component: label → database.
#[derive(Clone, Default)]
pub struct SqliteGrants {
    databases: Arc<BTreeMap<String, Arc<Database>>>,
    limits: QueryLimits,
}

impl SqliteGrants {
    /// The database behind a label, or `access-denied` when the manifest does not grant it
    /// (whether or not it exists: a guest learns nothing of other components' databases).
    fn database(&self, label: &str) -> Result<Arc<Database>, SqliteError> {
        self.databases.get(label).cloned().ok_or_else(|| {
            tracing::warn!(label, "SQLite database not granted: access denied");
            SqliteError::AccessDenied
        })
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.databases.keys().map(String::as_str)
    }
}

/// One instance's SQLite state: its grants and how many connections it holds.
#[derive(Default)]
pub struct SqliteInstance {
    pub grants: SqliteGrants,
    open_connections: usize,
}

impl SqliteInstance {
    pub fn new(grants: SqliteGrants) -> Self {
        Self {
            grants,
            open_connections: 0,
        }
    }
}

/// What the SQLite host sees of one instance's state.
pub struct SqliteView<'a> {
    pub instance: &'a mut SqliteInstance,
    pub table: &'a mut ResourceTable,
}

impl SqliteView<'_> {
    /// Checks the grant and the connection count; the file is opened by the caller, off
    /// the async executor.
    fn admit(&mut self, label: &str) -> Result<Arc<Database>, SqliteError> {
        let database = self.instance.grants.database(label)?;
        if self.instance.open_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(SqliteError::Io(format!(
                "too many open connections (at most {MAX_CONNECTIONS_PER_INSTANCE} per instance)"
            )));
        }
        Ok(database)
    }

    fn push(
        &mut self,
        connection: rusqlite::Connection,
    ) -> wasmtime::Result<wasmtime::component::Resource<ConnectionHandle>> {
        let handle = self.table.push(ConnectionHandle {
            connection: Arc::new(Mutex::new(connection)),
        })?;
        self.instance.open_connections += 1;
        Ok(handle)
    }

    fn connection(
        &self,
        handle: &wasmtime::component::Resource<ConnectionHandle>,
    ) -> wasmtime::Result<Arc<Mutex<rusqlite::Connection>>> {
        Ok(self.table.get(handle)?.connection.clone())
    }

    fn close(
        &mut self,
        handle: wasmtime::component::Resource<ConnectionHandle>,
    ) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.instance.open_connections = self.instance.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// Implemented by the store data of instances that may use SQLite.
pub trait SqliteState: Send {
    fn sqlite(&mut self) -> SqliteView<'_>;
}

/// The host side of both SQLite interfaces.
pub struct Sqlite;

impl HasData for Sqlite {
    type Data<'a> = SqliteView<'a>;
}

pub fn add_to_linker<T: SqliteState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::spin::sqlite::sqlite::add_to_linker::<T, Sqlite>(linker, T::sqlite)?;
    bindings::fermyon::spin::sqlite::add_to_linker::<T, Sqlite>(linker, T::sqlite)?;
    Ok(())
}

/// Opens a connection to `database` off the async executor.
async fn connect(database: Arc<Database>) -> Result<rusqlite::Connection, SqliteError> {
    blocking(move || database.connect()).await
}

/// Runs a blocking database call off the async executor.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, SqliteError> + Send + 'static,
) -> Result<R, SqliteError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(SqliteError::Io(format!("SQLite task failed: {e}"))))
}
