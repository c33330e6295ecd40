//! Spin key-value stores (`spin:key-value@3.0.0` and `fermyon:spin/key-value@2.0.0`).
//!
//! The shape every capability module has: the WIT (`wit/deps/spin-key-value@3.0.0`,
//! `wit/deps/fermyon-spin@2.0.0`), a host struct implementing the generated traits
//! (`spin3.rs`, `fermyon2.rs`), [`add_to_linker`], and the permission set computed once per
//! app from the manifest ([`KeyValueGrants`]) and copied into each instance's state.
//! A label the manifest does not grant is `access-denied`, an error value the guest can
//! handle, never a trap.

mod bindings;
mod fermyon2;
mod redis;
mod spin3;
mod sqlite;

pub use self::redis::RedisStore;
pub use sqlite::SqliteStore;

use crate::runtime_config::{KeyValueStoreConfig, RuntimeConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, ResourceTable};

/// A key-value backend. Calls are blocking and run on tokio's blocking pool, so a backend
/// may do I/O freely. Kept small so a Redis backend can stand beside SQLite.
pub trait KeyValueBackend: Send + Sync {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&self, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&self, key: &str) -> Result<(), String>;
    fn exists(&self, key: &str) -> Result<bool, String>;
    fn keys(&self) -> Result<Vec<String>, String>;
}

/// An open store, as held in a guest's resource table.
pub struct StoreHandle {
    backend: Arc<dyn KeyValueBackend>,
}

/// Why a key-value store could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    AccessDenied,
    Other(String),
}

/// Key-value stores granted to one component: label → backend.
#[derive(Clone, Default)]
pub struct KeyValueGrants {
    stores: Arc<BTreeMap<String, Arc<dyn KeyValueBackend>>>,
}

impl KeyValueGrants {
    fn open(&self, label: &str) -> Result<StoreHandle, OpenError> {
        match self.stores.get(label) {
            Some(backend) => Ok(StoreHandle {
                backend: backend.clone(),
            }),
            None => {
                tracing::warn!(label, "key-value store not granted: access denied");
                Err(OpenError::AccessDenied)
            }
        }
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }
}

/// Errors found when the app starts, before any request is served.
#[derive(Debug, thiserror::Error)]
pub enum KeyValueSetupError {
    #[error(
        "component `{component}` is granted key-value store `{label}`, but no store is configured for that label: add [key_value_store.{label}] to the runtime config"
    )]
    Unconfigured { component: String, label: String },
    #[error("key-value store `{label}`: {message}")]
    Open { label: String, message: String },
}

/// The stores of a whole app, opened once at start (a Redis store is reached once, so a
/// wrong address fails the start).
pub struct KeyValueStores {
    by_label: BTreeMap<String, Arc<dyn KeyValueBackend>>,
}

impl KeyValueStores {
    /// Opens every configured store. The `default` label exists even without a runtime
    /// config, as in Spin: SQLite at `<state-dir>/sqlite_key_value.db`.
    pub fn open(config: &RuntimeConfig, state_dir: &Path) -> Result<Self, KeyValueSetupError> {
        let mut configs = config.key_value_stores.clone();
        configs
            .entry("default".to_owned())
            .or_insert(KeyValueStoreConfig::Spin { path: None });
        let mut databases: BTreeMap<std::path::PathBuf, Arc<sqlite::SqliteDatabase>> =
            BTreeMap::new();
        let mut by_label = BTreeMap::new();
        for (label, cfg) in configs {
            let backend: Arc<dyn KeyValueBackend> = match cfg {
                KeyValueStoreConfig::Spin { path } => {
                    let path = match path {
                        Some(p) if p.is_absolute() => p,
                        Some(p) => config.base_dir.join(p),
                        None => state_dir.join("sqlite_key_value.db"),
                    };
                    let db = match databases.get(&path) {
                        Some(db) => db.clone(),
                        None => {
                            let db = Arc::new(sqlite::SqliteDatabase::open(&path).map_err(
                                |message| KeyValueSetupError::Open {
                                    label: label.clone(),
                                    message,
                                },
                            )?);
                            databases.insert(path, db.clone());
                            db
                        }
                    };
                    Arc::new(SqliteStore::new(db, &label))
                }
                KeyValueStoreConfig::Redis { url, prefix } => {
                    Arc::new(RedisStore::open(&url, &prefix).map_err(|message| {
                        KeyValueSetupError::Open {
                            label: label.clone(),
                            message,
                        }
                    })?)
                }
            };
            by_label.insert(label, backend);
        }
        Ok(Self { by_label })
    }

    /// The grants of one component, checked against what is configured.
    pub fn grants_for(
        &self,
        component: &str,
        labels: &[String],
    ) -> Result<KeyValueGrants, KeyValueSetupError> {
        let mut stores = BTreeMap::new();
        for label in labels {
            let backend =
                self.by_label
                    .get(label)
                    .ok_or_else(|| KeyValueSetupError::Unconfigured {
                        component: component.to_owned(),
                        label: label.clone(),
                    })?;
            stores.insert(label.clone(), backend.clone());
        }
        Ok(KeyValueGrants {
            stores: Arc::new(stores),
        })
    }
}

/// What the key-value host sees of one instance's state.
pub struct KeyValueView<'a> {
    pub grants: &'a KeyValueGrants,
    pub table: &'a mut ResourceTable,
}

/// Implemented by the store data of instances that may use key-value.
pub trait KeyValueState: Send {
    fn key_value(&mut self) -> KeyValueView<'_>;
}

/// The host side of both key-value interfaces.
pub struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = KeyValueView<'a>;
}

pub fn add_to_linker<T: KeyValueState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::spin::key_value::key_value::add_to_linker::<T, KeyValue>(linker, T::key_value)?;
    bindings::fermyon::spin::key_value::add_to_linker::<T, KeyValue>(linker, T::key_value)?;
    Ok(())
}

/// Runs a blocking backend call off the async executor.
async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, String> + Send + 'static,
) -> Result<R, String> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(format!("key-value task failed: {e}")))
}
