//! Spin's `runtime-config.toml`: where each key-value label is stored.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyValueStoreConfig {
    /// SQLite; a relative `path` is relative to the runtime config file.
    Spin { path: Option<PathBuf> },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuntimeConfigFile {
    #[serde(default)]
    key_value_store: BTreeMap<String, KeyValueStoreConfig>,
    /// carrel's own: the operator's minimum disclosure policy for study outputs.
    #[serde(default)]
    disclosure: carrel_disclosure::Policy,
}

#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub key_value_stores: BTreeMap<String, KeyValueStoreConfig>,
    /// No study may release under a weaker policy than this.
    pub disclosure: carrel_disclosure::Policy,
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
        let file: RuntimeConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(1);
            RuntimeConfigError::Invalid {
                path: path.to_owned(),
                message: format!("line {line}: {}", e.message()),
            }
        })?;
        Ok(Self {
            key_value_stores: file.key_value_store,
            disclosure: file.disclosure,
            base_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_stores_are_read_with_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runtime-config.toml");
        std::fs::write(
            &path,
            "[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n",
        )
        .unwrap();
        let cfg = RuntimeConfig::load(&path).unwrap();
        assert_eq!(
            cfg.key_value_stores["cache"],
            KeyValueStoreConfig::Spin {
                path: Some("cache.db".into())
            }
        );
        assert_eq!(cfg.base_dir, dir.path());
    }

    #[test]
    fn unknown_store_type_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc.toml");
        std::fs::write(&path, "\n[key_value_store.cache]\ntype = \"memcached\"\n").unwrap();
        let err = RuntimeConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("memcached") && err.contains("line"), "{err}");
    }
}
