//! Spin's environment provider of application variables: `SPIN_VARIABLE_<NAME>` from
//! carrel's environment, or else from the `.env` file beside the manifest. The file is read
//! once at start; its values are secrets as often as not, so no message ever quotes one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The prefix of the keys that set application variables.
const PREFIX: &str = "SPIN_VARIABLE_";

#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}:{line}: cannot be read as KEY=value (at character {column})")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
    },
}

/// Where application variables come from.
#[derive(Debug, Default)]
pub struct VariableEnvironment {
    dotenv: BTreeMap<String, String>,
}

impl VariableEnvironment {
    /// Reads `.env` in `app_dir` when there is one, keeping its `SPIN_VARIABLE_*` keys.
    pub fn load(app_dir: &Path) -> Result<Self, DotenvError> {
        let path = app_dir.join(".env");
        if !path.is_file() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| DotenvError::Read {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let mut dotenv = BTreeMap::new();
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            match item {
                Ok((key, value)) => {
                    if key.starts_with(PREFIX) {
                        dotenv.insert(key, value);
                    }
                }
                Err(dotenvy::Error::LineParse(content, column)) => {
                    // The parser names the line by its content: find its number instead,
                    // so the message quotes nothing of the file.
                    let line = text
                        .lines()
                        .position(|l| l.trim_end() == content.trim_end())
                        .map_or(0, |n| n + 1);
                    return Err(DotenvError::Syntax {
                        path,
                        line,
                        column: column + 1,
                    });
                }
                Err(e) => {
                    return Err(DotenvError::Read {
                        path,
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(Self { dotenv })
    }

    /// An environment variable as Spin's provider sees it: the process first, then `.env`.
    pub fn get(&self, key: &str) -> Option<String> {
        std::env::var(key)
            .ok()
            .or_else(|| self.dotenv.get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_beside_the_manifest_sets_spin_variables_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nSPIN_VARIABLE_CARREL_TEST_GREETING=\"bonjour le monde\"\nOTHER=ignored\n",
        )
        .unwrap();
        let env = VariableEnvironment::load(dir.path()).unwrap();
        assert_eq!(
            env.get("SPIN_VARIABLE_CARREL_TEST_GREETING").as_deref(),
            Some("bonjour le monde")
        );
        assert_eq!(env.dotenv.get("OTHER"), None);
    }

    #[test]
    fn no_dotenv_file_means_no_variables_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let env = VariableEnvironment::load(dir.path()).unwrap();
        assert!(env.dotenv.is_empty());
    }

    #[test]
    fn a_malformed_line_is_named_by_number_without_its_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "SPIN_VARIABLE_A=1\nSPIN_VARIABLE_B=\"s3cret\n",
        )
        .unwrap();
        let err = VariableEnvironment::load(dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains(".env:"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
