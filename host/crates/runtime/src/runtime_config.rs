//! Spin's `runtime-config.toml`: where each key-value store and SQLite database lives.
//! A layer above the runtime names the sections of its own it reads from the same file
//! (the warehouse's disclosure minimum, for one). Anything else in the file (another store
//! type, a section such as `[llm_compute]`) is something carrel does not run: an error
//! naming it and its line, never a setting silently ignored.

use serde::Deserialize;
use serde::de::DeserializeOwned;
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

/// The sections the runtime reads; which others may be present is checked apart.
#[derive(Debug, Default, Deserialize)]
struct RuntimeConfigFile {
    #[serde(default)]
    key_value_store: BTreeMap<String, Spanned<StoreTable>>,
    #[serde(default)]
    sqlite_database: BTreeMap<String, Spanned<StoreTable>>,
}

/// The sections of the file the runtime itself reads.
const RUNTIME_SECTIONS: [&str; 2] = ["key_value_store", "sqlite_database"];

#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeMap<String, KeyValueStoreConfig>,
    pub sqlite_databases: BTreeMap<String, SqliteDatabaseConfig>,
    /// Where relative paths in the file are resolved from.
    pub base_dir: PathBuf,
    /// The file and its text, from which a layer above reads its own sections.
    source: Option<(PathBuf, String)>,
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

/// The line of `offset` in `text`, counted from 1.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl RuntimeConfig {
    /// The file's configuration, or the defaults when there is no file. `layer_sections`
    /// are the sections a layer above reads with [`RuntimeConfig::sections`].
    pub fn load_optional(
        path: Option<&Path>,
        layer_sections: &[&str],
    ) -> Result<Self, RuntimeConfigError> {
        path.map_or_else(|| Ok(Self::default()), |p| Self::load(p, layer_sections))
    }

    /// Reads the runtime's sections; any top-level section that is neither one of them
    /// nor one of `layer_sections` is an error naming it and its line.
    pub fn load(path: &Path, layer_sections: &[&str]) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let line_of = |offset: usize| line_of(&text, offset);
        let invalid = |message: String| RuntimeConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let syntax = |e: toml::de::Error| {
            let line = e.span().map(|s| line_of(s.start)).unwrap_or(1);
            invalid(format!("line {line}: {}", e.message()))
        };
        let top = toml::de::DeTable::parse(&text).map_err(syntax)?;
        let known: Vec<&str> = RUNTIME_SECTIONS
            .iter()
            .chain(layer_sections)
            .copied()
            .collect();
        if let Some(unknown) = top
            .get_ref()
            .keys()
            .find(|k| !known.contains(&k.get_ref().as_ref()))
        {
            return Err(invalid(format!(
                "line {}: `{}` is not something carrel runs (it reads {})",
                line_of(unknown.span().start),
                unknown.get_ref(),
                known.join(", ")
            )));
        }
        let file: RuntimeConfigFile = toml::from_str(&text).map_err(syntax)?;
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
            base_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
            source: Some((path.to_owned(), text)),
        })
    }

    /// A layer's own sections of the file, read into `T` (whose fields are those sections,
    /// each with a default); the defaults when there is no file. Errors name the line.
    pub fn sections<T: DeserializeOwned + Default>(&self) -> Result<T, RuntimeConfigError> {
        let Some((path, text)) = &self.source else {
            return Ok(T::default());
        };
        toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(1);
            RuntimeConfigError::Invalid {
                path: path.clone(),
                message: format!("line {line}: {}", e.message()),
            }
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
        RuntimeConfig::load(&path, &[])
    }

    #[test]
    fn the_shipped_example_keeps_every_store_where_the_systemd_unit_lets_carrel_write() {
        // The unit reads the config from /etc/carrel (read-only under ProtectSystem=strict)
        // and lets carrel write only its state directory.
        let unit = include_str!("../../../../infra/systemd/carrel.service");
        assert!(unit.contains("--runtime-config-file /etc/carrel/runtime-config.toml"));
        assert!(unit.contains("ReadWritePaths=/var/lib/carrel\n"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime-config.toml");
        std::fs::write(
            &path,
            include_str!("../../../../infra/runtime-config.example.toml"),
        )
        .unwrap();
        // The example also sets the warehouse's own sections.
        let cfg = RuntimeConfig::load(&path, &["disclosure", "patients"]).unwrap();
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
        let cfg = RuntimeConfig::load(&path, &[]).unwrap();
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

    #[test]
    fn a_layers_sections_are_accepted_only_when_named_and_read_with_their_lines() {
        #[derive(Debug, Default, Deserialize)]
        struct Layer {
            #[serde(default)]
            limits: Limits,
        }
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Limits {
            #[serde(default)]
            rows: u32,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc.toml");
        std::fs::write(&path, "[limits]\nrows = 7\n").unwrap();
        let err = RuntimeConfig::load(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("`limits`") && err.contains("line 1"), "{err}");
        let cfg = RuntimeConfig::load(&path, &["limits"]).unwrap();
        assert_eq!(cfg.sections::<Layer>().unwrap().limits.rows, 7);
        std::fs::write(&path, "\n[limits]\nrwos = 7\n").unwrap();
        let cfg = RuntimeConfig::load(&path, &["limits"]).unwrap();
        let err = cfg.sections::<Layer>().unwrap_err().to_string();
        assert!(err.contains("rwos") && err.contains("line 3"), "{err}");
        assert_eq!(
            RuntimeConfig::default()
                .sections::<Layer>()
                .unwrap()
                .limits
                .rows,
            0
        );
    }
}
