//! Spin's `runtime-config.toml`: where each key-value store and SQLite database lives, and
//! carrel's own disclosure minimum. Anything else in the file (another store type, a
//! section such as `[llm_compute]`) is something carrel does not run: an error naming it
//! and its line, never a setting silently ignored.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The store types carrel runs, for messages.
const SUPPORTED_KEY_VALUE_TYPES: &str =
    "\"spin\" (SQLite in a local file) and \"redis\" (`url = \"redis://…\"`)";
const SUPPORTED_DATABASE_TYPES: &str = "\"spin\" (SQLite in a local file)";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValueStoreConfig {
    /// SQLite; a relative `path` is relative to the runtime config file.
    Spin { path: Option<PathBuf> },
    /// A Redis database, as in Spin: keys as the guest writes them, or under `prefix`
    /// (carrel's addition, so several stores or apps can share one Redis database).
    Redis { url: String, prefix: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteDatabaseConfig {
    /// A local SQLite file; a relative `path` is relative to the runtime config file, and
    /// without a path each connection gets a fresh in-memory database, as in Spin.
    Spin { path: Option<PathBuf> },
}

/// One `[key_value_store.<label>]` or `[sqlite_database.<label>]` table as written.
#[derive(Debug, Deserialize)]
struct StoreTable {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(flatten)]
    settings: toml::Table,
}

/// The settings of a `type = "spin"` store.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpinStoreSettings {
    path: Option<PathBuf>,
}

/// The settings of a `type = "redis"` key-value store.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisStoreSettings {
    url: String,
    #[serde(default)]
    prefix: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeConfigFile {
    #[serde(default)]
    key_value_store: BTreeMap<String, Spanned<StoreTable>>,
    #[serde(default)]
    sqlite_database: BTreeMap<String, Spanned<StoreTable>>,
    /// carrel's own: the operator's minimum disclosure policy for study outputs.
    #[serde(default)]
    disclosure: carrel_disclosure::Policy,
    /// carrel's own: retention and objections ([`crate::patients`]).
    #[serde(default)]
    patients: crate::patients::PatientsConfig,
}

#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeMap<String, KeyValueStoreConfig>,
    pub sqlite_databases: BTreeMap<String, SqliteDatabaseConfig>,
    /// No study may release under a weaker policy than this.
    pub disclosure: carrel_disclosure::Policy,
    /// The retention period, how often it and objections are applied while serving, and
    /// what the public register tells patients.
    pub patients: crate::patients::PatientsConfig,
    /// Where relative paths in the file are resolved from.
    pub base_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    #[error("cannot read runtime config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("runtime config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl RuntimeConfig {
    /// The file's configuration, or the defaults when there is no file.
    pub fn load_optional(path: Option<&Path>) -> Result<Self, RuntimeConfigError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    pub fn load(path: &Path) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let invalid = |message: String| RuntimeConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let file: RuntimeConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e.span().map(|s| line_of(s.start)).unwrap_or(1);
            let message = match e.message().strip_prefix("unknown field `") {
                Some(rest) => {
                    let field = rest.split('`').next().unwrap_or(rest);
                    format!(
                        "`{field}` is not something carrel runs (it reads key_value_store, sqlite_database and disclosure)"
                    )
                }
                None => e.message().to_owned(),
            };
            invalid(format!("line {line}: {message}"))
        })?;
        // Checks a table's type against `supported`; returns it with its settings and where
        // it is, for messages about them.
        let settings = |section: &str,
                        label: &str,
                        table: Spanned<StoreTable>,
                        supported: (&[&str], &str)| {
            let line = line_of(table.span().start);
            let table = table.into_inner();
            let kind = table.kind.get_ref().clone();
            if !supported.0.contains(&kind.as_str()) {
                return Err(invalid(format!(
                    "line {}: [{section}.{label}] has type \"{kind}\", which carrel does not run: it runs type {}",
                    line_of(table.kind.span().start),
                    supported.1
                )));
            }
            Ok((
                kind,
                table.settings,
                format!("line {line}: [{section}.{label}]"),
            ))
        };
        let bad_settings = |at: &str, e: toml::de::Error| invalid(format!("{at}: {}", e.message()));
        let mut key_value_stores = BTreeMap::new();
        for (label, table) in file.key_value_store {
            let (kind, table, at) = settings(
                "key_value_store",
                &label,
                table,
                (&["spin", "redis"], SUPPORTED_KEY_VALUE_TYPES),
            )?;
            let store = if kind == "redis" {
                let redis: RedisStoreSettings =
                    table.try_into().map_err(|e| bad_settings(&at, e))?;
                KeyValueStoreConfig::Redis {
                    url: redis.url,
                    prefix: redis.prefix,
                }
            } else {
                let spin: SpinStoreSettings = table.try_into().map_err(|e| bad_settings(&at, e))?;
                KeyValueStoreConfig::Spin { path: spin.path }
            };
            key_value_stores.insert(label, store);
        }
        let mut sqlite_databases = BTreeMap::new();
        for (label, table) in file.sqlite_database {
            let (_, table, at) = settings(
                "sqlite_database",
                &label,
                table,
                (&["spin"], SUPPORTED_DATABASE_TYPES),
            )?;
            let spin: SpinStoreSettings = table.try_into().map_err(|e| bad_settings(&at, e))?;
            sqlite_databases.insert(label, SqliteDatabaseConfig::Spin { path: spin.path });
        }
        Ok(Self {
            key_value_stores,
            sqlite_databases,
            disclosure: file.disclosure,
            patients: file.patients,
            base_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RuntimeConfig, RuntimeConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime-config.toml");
        std::fs::write(&path, text).unwrap();
        RuntimeConfig::load(&path)
    }

    #[test]
    fn the_shipped_example_keeps_every_store_where_the_systemd_unit_lets_carrel_write() {
        // The unit reads the config from /etc/carrel (read-only under ProtectSystem=strict)
        // and lets carrel write only its state directory.
        let unit = include_str!("../../infra/systemd/carrel.service");
        assert!(unit.contains("--runtime-config-file /etc/carrel/runtime-config.toml"));
        assert!(unit.contains("ReadWritePaths=/var/lib/carrel\n"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime-config.toml");
        std::fs::write(
            &path,
            include_str!("../../infra/runtime-config.example.toml"),
        )
        .unwrap();
        let cfg = RuntimeConfig::load(&path).unwrap();
        assert!(!cfg.key_value_stores.is_empty());
        for (label, store) in &cfg.key_value_stores {
            if let KeyValueStoreConfig::Spin { path: Some(file) } = store {
                assert!(
                    file.starts_with("/var/lib/carrel/"),
                    "store `{label}` at {} is outside the unit's writable state directory",
                    file.display()
                );
            }
        }
    }

    #[test]
    fn spin_stores_and_databases_are_read_with_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime-config.toml");
        std::fs::write(
            &path,
            "[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n\n[sqlite_database.visits]\ntype = \"spin\"\npath = \"data/visits.db\"\n\n[sqlite_database.scratch]\ntype = \"spin\"\n",
        )
        .unwrap();
        let cfg = RuntimeConfig::load(&path).unwrap();
        assert_eq!(
            cfg.key_value_stores["cache"],
            KeyValueStoreConfig::Spin {
                path: Some("cache.db".into())
            }
        );
        assert_eq!(
            cfg.sqlite_databases["visits"],
            SqliteDatabaseConfig::Spin {
                path: Some("data/visits.db".into())
            }
        );
        assert_eq!(
            cfg.sqlite_databases["scratch"],
            SqliteDatabaseConfig::Spin { path: None }
        );
        assert_eq!(cfg.base_dir, dir.path());
    }

    #[test]
    fn the_retention_period_and_pass_interval_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc.toml");
        std::fs::write(
            &path,
            "[patients]\nretention_days = 7300\npass_interval_seconds = 60\n",
        )
        .unwrap();
        let cfg = RuntimeConfig::load(&path).unwrap();
        assert_eq!(cfg.patients.retention_days, Some(7300));
        assert_eq!(cfg.patients.pass_interval_seconds, 60);
        std::fs::write(&path, "[patients]\nretention_days = 0\n").unwrap();
        let err = RuntimeConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("retention_days") && err.contains("line 2"),
            "{err}"
        );
        assert_eq!(
            RuntimeConfig::default().patients.pass_interval_seconds,
            crate::patients::DEFAULT_PASS_INTERVAL_SECONDS
        );
    }

    #[test]
    fn redis_key_value_stores_are_read_with_their_url_and_prefix() {
        let cfg = load(
            "[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379/2\"\nprefix = \"app:\"\n\n[key_value_store.plain]\ntype = \"redis\"\nurl = \"redis://h\"\n",
        )
        .unwrap();
        assert_eq!(
            cfg.key_value_stores["cache"],
            KeyValueStoreConfig::Redis {
                url: "redis://127.0.0.1:6379/2".into(),
                prefix: "app:".into()
            }
        );
        assert_eq!(
            cfg.key_value_stores["plain"],
            KeyValueStoreConfig::Redis {
                url: "redis://h".into(),
                prefix: String::new()
            }
        );
        let err = load("[key_value_store.cache]\ntype = \"redis\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("url") && err.contains("line 1"), "{err}");
    }

    #[test]
    fn unknown_store_type_is_refused_naming_store_type_and_line() {
        let err = load("\n[key_value_store.cache]\ntype = \"azure_cosmos\"\nurl = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[key_value_store.cache]")
                && err.contains("\"azure_cosmos\"")
                && err.contains("line 3"),
            "{err}"
        );
        let err = load("[sqlite_database.remote]\ntype = \"libsql\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[sqlite_database.remote]") && err.contains("\"libsql\""),
            "{err}"
        );
    }

    #[test]
    fn unknown_settings_and_sections_are_refused_by_name() {
        let err = load("[sqlite_database.x]\ntype = \"spin\"\npaht = \"x.db\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("paht") && err.contains("line 1"), "{err}");
        let err = load("[llm_compute]\ntype = \"spin\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`llm_compute`") && err.contains("not something carrel runs"),
            "{err}"
        );
    }
}
