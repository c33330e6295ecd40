//! Why the study service refused or failed a request. The API answers with a status
//! chosen from these variants; every message names the study and the file at fault.

use super::metadata::MetadataError;
use super::owners::NotAnAuditor;
use super::registry::RegistryError;
use super::sandbox::SandboxError;
use crate::capabilities::keyed_hash::KeyedHashError;
use crate::patients::PatientsError;
use carrel_runtime::error::EngineError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    NotAnAuditor(#[from] NotAnAuditor),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Secret(#[from] KeyedHashError),
    #[error(transparent)]
    Patients(#[from] PatientsError),
    /// The manifest's expiry date of a study, which its section was checked to have.
    #[error(transparent)]
    Expiry(#[from] time::error::Parse),
    #[error("study `{id}`: cannot read {} (build it first: `carrel build`)", path.display())]
    Unbuilt {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("study `{id}`: cannot read {}", path.display())]
    Unreadable {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A submitted binary that is not a study of its declared kind.
    #[error("study `{id}`")]
    NotThisKind {
        id: String,
        #[source]
        source: SandboxError,
    },
    #[error("study `{id}`: model {file}")]
    Model {
        id: String,
        file: String,
        #[source]
        source: ModelCheckError,
    },
    #[error("study `{id}`: cannot compile its wasm")]
    Compile {
        id: String,
        #[source]
        source: EngineError,
    },
    #[error("study `{id}`: its binary changed while the run started")]
    ChangedWhileStarting { id: String },
}

impl StudyError {
    /// The registry's refusal, when that is what this is (the API's 404s are among them).
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            Self::Registry(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a model-evaluation study's model file was refused at submission.
#[derive(Debug, thiserror::Error)]
pub enum ModelCheckError {
    /// The manifest's model file could not be read when the manifest was (the reason).
    #[error("{0}")]
    NoModel(String),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} changed since the manifest was read", path.display())]
    Changed { path: PathBuf },
    /// The study, run on the model in its sandbox, refused it (its short reason).
    #[error("refused: {0}")]
    Refused(String),
    #[error(
        "refused: the model takes {inputs} inputs, and the manifest declares {features} features"
    )]
    Inputs { inputs: usize, features: usize },
}
