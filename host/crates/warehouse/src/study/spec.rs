//! A study as the manifest declares it, and what a run of it needs besides: the parts of
//! the desk that the run and the reading use, kept below both.

use super::manifest::{StudyManifestError, StudyTool, approval_sha256, manifest_section_sha256};
use crate::capabilities::keyed_hash::PseudonymSecret;
use crate::carrel_settings::{CarrelTool, CarrelToolError};
use crate::manifest::LoadedManifest;
use carrel_disclosure::Policy;
use carrel_vault::{AuditLog, Vault};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One study as the manifest declares it.
#[derive(Debug, Clone)]
pub struct StudySpec {
    pub id: String,
    pub tool: StudyTool,
    pub source: PathBuf,
    /// What the approval binds besides the binary: the manifest section, and the model
    /// file of a study that brings one ([`approval_sha256`]).
    pub manifest_sha256: String,
    /// The model file's sha256 and path, for a study that brings one.
    pub model: Option<(String, PathBuf)>,
    /// Why the model file could not be read, when it could not.
    pub model_error: Option<String>,
}

/// Why the manifest's studies cannot be read; each names the manifest.
#[derive(Debug, thiserror::Error)]
pub enum StudySpecError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: a [[trigger.study]] has no `component`", path.display())]
    NoComponent { path: PathBuf },
    #[error("{}: {error}", path.display())]
    Tool {
        path: PathBuf,
        error: CarrelToolError,
    },
    #[error(
        "{}: study `{id}` has no [component.{id}.tool.carrel.study] section (title, purpose, legal basis, datasets, expiry…)",
        path.display()
    )]
    NoStudySection { path: PathBuf, id: String },
    #[error("{}: {error}", path.display())]
    Invalid {
        path: PathBuf,
        error: StudyManifestError,
    },
    #[error("{}: {message}", path.display())]
    Section { path: PathBuf, message: String },
    #[error(transparent)]
    Source(#[from] carrel_manifest::ManifestError),
}

/// Every `[[trigger.study]]` of the manifest with its `tool.carrel.study` section.
pub fn study_specs(
    manifest: &LoadedManifest,
) -> Result<BTreeMap<String, StudySpec>, StudySpecError> {
    let path = || manifest.path.clone();
    let text = std::fs::read_to_string(&manifest.path).map_err(|source| StudySpecError::Read {
        path: path(),
        source,
    })?;
    let mut specs = BTreeMap::new();
    for trigger in manifest.manifest.trigger.get("study").into_iter().flatten() {
        let id = trigger
            .get("component")
            .and_then(|c| c.as_str())
            .ok_or_else(|| StudySpecError::NoComponent { path: path() })?
            .to_owned();
        let component = &manifest.manifest.component[&id];
        let tool = CarrelTool::of(&id, &component.tool)
            .map_err(|error| StudySpecError::Tool {
                path: path(),
                error,
            })?
            .study
            .ok_or_else(|| StudySpecError::NoStudySection {
                path: path(),
                id: id.clone(),
            })?;
        let mut tool = tool;
        tool.validate(&id)
            .map_err(|error| StudySpecError::Invalid {
                path: path(),
                error,
            })?;
        // A model file that cannot be read does not stop the warehouse: the study cannot
        // be submitted or run until it can, and says why.
        let (manifest_sha256, model_sha256, model_error) =
            match approval_sha256(&text, manifest.base_dir(), &id, &tool) {
                Ok((approval, model)) => (approval, model, None),
                Err(e) => (
                    manifest_section_sha256(&text, &id).map_err(|e| StudySpecError::Section {
                        path: path(),
                        message: e.message().to_owned(),
                    })?,
                    None,
                    Some(e),
                ),
            };
        specs.insert(
            id.clone(),
            StudySpec {
                source: manifest.component_source_path(&id)?,
                model: model_sha256.zip(
                    tool.model
                        .as_ref()
                        .map(|m| manifest.base_dir().join(&m.file)),
                ),
                id,
                tool,
                manifest_sha256,
                model_error,
            },
        );
    }
    Ok(specs)
}

/// Follows a run's reading: the segments the scan will decrypt, then the segments and
/// rows read. Only numbers, never data.
pub trait ReadObserver: Send + Sync {
    fn planned(&self, segments: u64);
    fn read(&self, segments: u64, rows: u64);
}

/// What a run needs besides the study: where to read and whom to tell.
pub struct RunContext<'a> {
    pub vault: &'a Arc<Vault>,
    pub audit: Option<&'a Arc<AuditLog>>,
    pub secret: &'a PseudonymSecret,
    pub policy: &'a Policy,
    pub actor: &'a str,
    /// Follows the reading, for a progress display.
    pub observer: Option<Arc<dyn ReadObserver>>,
    /// Rows the run must not be handed: patients who objected, rows past retention.
    pub exclusions: Option<&'a crate::patients::Exclusions>,
}

/// The sha-256 of `bytes`, in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manifest with one HTTP component and one study component `s` whose
    /// `[component.s.tool.carrel]` table is `tool`.
    fn manifest_with_study(dir: &std::path::Path, tool: &str) -> LoadedManifest {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\n[[trigger.study]]\ncomponent = \"s\"\n\n[component.s]\nsource = \"s.wasm\"\n{tool}"
        );
        let path = dir.join("spin.toml");
        std::fs::write(&path, text).unwrap();
        crate::manifest::load(&path).unwrap()
    }

    #[test]
    fn a_study_without_its_study_section_is_refused_naming_the_manifest_and_the_study() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest_with_study(dir.path(), "");
        let error = study_specs(&manifest).unwrap_err();
        assert!(
            matches!(&error, StudySpecError::NoStudySection { id, .. } if id == "s"),
            "{error}"
        );
        let text = error.to_string();
        assert!(text.contains("spin.toml") && text.contains("[component.s.tool.carrel.study]"));
    }

    #[test]
    fn a_tool_table_that_does_not_read_is_refused_naming_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = manifest_with_study(dir.path(), "[component.s.tool.carrel]\nstudyy = 1\n");
        let error = study_specs(&manifest).unwrap_err();
        assert!(matches!(error, StudySpecError::Tool { .. }), "{error}");
        assert!(error.to_string().contains("studyy"), "{error}");
    }
}
