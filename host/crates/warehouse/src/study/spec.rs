//! A study as the manifest declares it, and what a run of it needs besides: the parts of
//! the desk that the run and the reading use, kept below both.

use super::manifest::{StudyTool, approval_sha256, manifest_section_sha256};
use crate::capabilities::keyed_hash::PseudonymSecret;
use crate::carrel_settings::CarrelTool;
use crate::manifest::LoadedManifest;
use anyhow::{Context, anyhow};
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

/// Every `[[trigger.study]]` of the manifest with its `tool.carrel.study` section.
pub fn study_specs(manifest: &LoadedManifest) -> anyhow::Result<BTreeMap<String, StudySpec>> {
    let text = std::fs::read_to_string(&manifest.path)
        .with_context(|| format!("cannot read {}", manifest.path.display()))?;
    let mut specs = BTreeMap::new();
    for trigger in manifest.manifest.trigger.get("study").into_iter().flatten() {
        let id = trigger
            .get("component")
            .and_then(|c| c.as_str())
            .ok_or_else(|| {
                anyhow!(
                    "{}: a [[trigger.study]] has no `component`",
                    manifest.path.display()
                )
            })?
            .to_owned();
        let component = &manifest.manifest.component[&id];
        let tool = CarrelTool::of(&id, &component.tool)
            .map_err(|e| anyhow!("{}: {e}", manifest.path.display()))?
            .study
            .ok_or_else(|| {
                anyhow!(
                    "{}: study `{id}` has no [component.{id}.tool.carrel.study] section (title, purpose, legal basis, datasets, expiry…)",
                    manifest.path.display()
                )
            })?;
        let mut tool = tool;
        tool.validate(&id)
            .map_err(|e| anyhow!("{}: {e}", manifest.path.display()))?;
        // A model file that cannot be read does not stop the warehouse: the study cannot
        // be submitted or run until it can, and says why.
        let (manifest_sha256, model_sha256, model_error) =
            match approval_sha256(&text, manifest.base_dir(), &id, &tool) {
                Ok((approval, model)) => (approval, model, None),
                Err(e) => (
                    manifest_section_sha256(&text, &id)
                        .map_err(|e| anyhow!("{}: {}", manifest.path.display(), e.message()))?,
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
