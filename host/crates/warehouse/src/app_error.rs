//! Why the warehouse's app cannot be loaded. Each error names what is at fault and keeps
//! its cause, so the binary prints the whole chain before the first request is served.

use crate::capabilities::keyed_hash::KeyedHashError;
use crate::carrel_settings::CarrelToolError;
use crate::ingest::IngestSetupError;
use crate::patients::PatientsError;
use crate::study::errors::StudyError;
use crate::study::spec::StudySpecError;
use crate::tokens::TokenError;
use carrel_runtime::error::{EngineError, LoadError};
use carrel_runtime::runtime_config::RuntimeConfigError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Settings(#[from] RuntimeConfigError),
    #[error("cannot add the warehouse's interfaces to the linker")]
    Linker(#[source] carrel_runtime::error::BoxError),
    #[error("{}: {error}", manifest.display())]
    Tool {
        manifest: PathBuf,
        error: CarrelToolError,
    },
    #[error(transparent)]
    Studies(#[from] StudySpecError),
    #[error("cannot make {} private", path.display())]
    PrivateStateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "this app authenticates clients, ingests data or runs studies, so it needs the warehouse state in {shown}: run `carrel keys init --state-dir {shown}` first",
        shown = path.display()
    )]
    NoWarehouse {
        path: PathBuf,
        #[source]
        source: Box<carrel_vault::VaultError>,
    },
    /// Boxed, as the other large causes below: an app error is returned once.
    #[error(transparent)]
    Vault(Box<carrel_vault::VaultError>),
    #[error(transparent)]
    Tokens(#[from] TokenError),
    #[error(transparent)]
    Patients(Box<PatientsError>),
    #[error(transparent)]
    StudyService(Box<StudyError>),
    #[error("component `{component}`: ingest")]
    Ingest {
        component: String,
        #[source]
        source: Box<IngestPipelineError>,
    },
}

impl From<carrel_vault::VaultError> for AppError {
    fn from(error: carrel_vault::VaultError) -> Self {
        Self::Vault(Box::new(error))
    }
}

impl From<PatientsError> for AppError {
    fn from(error: PatientsError) -> Self {
        Self::Patients(Box::new(error))
    }
}

impl From<StudyError> for AppError {
    fn from(error: StudyError) -> Self {
        Self::StudyService(Box::new(error))
    }
}

/// Why a component's ingestion pipeline cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum IngestPipelineError {
    #[error("pseudonymiser `{0}` has no [component.{0}] table")]
    NoPseudonymiser(String),
    #[error(transparent)]
    Source(#[from] carrel_manifest::ManifestError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Secret(#[from] KeyedHashError),
    #[error("pseudonymiser `{id}`")]
    Pseudonymiser {
        id: String,
        #[source]
        source: IngestSetupError,
    },
    #[error(transparent)]
    Setup(#[from] IngestSetupError),
}
