//! `carrel study try <id> --synthetic`: runs a study, approved or not, against a dataset
//! generated on the fly in a throwaway warehouse (its own keys, its own pseudonymisation
//! secret, deleted afterwards). It never opens the real warehouse, so a researcher can
//! develop a study before approval without any access to real data.

use super::errors::StudyError;
use super::registry::RunRecord;
use super::sandbox::SandboxError;
use super::sandbox::StudySandbox;
use super::service::{execute, study_engine};
use super::spec::{RunContext, StudySpec};
use crate::capabilities::keyed_hash::{KeyedHashGrants, PseudonymSecret};
use carrel_runtime::engine::{EpochTicker, load_component};
use carrel_vault::{MasterKeyEnv, Vault};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The dataset name the shipped ingestion pipeline writes, and synthetic tries fill.
pub const CONSULTATIONS: &str = "consultations";
/// The association stamped on synthetic rows.
pub const SYNTHETIC_ASSOCIATION: &str = "synthetic";

/// Why a throwaway warehouse could not be made, or a study not tried on it.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    #[error("cannot create a temporary directory")]
    TempDir(#[source] std::io::Error),
    #[error("cannot read a synthetic file")]
    Read(#[from] std::io::Error),
    /// Boxed: the vault's errors are large.
    #[error(transparent)]
    Vault(Box<carrel_vault::VaultError>),
    #[error(transparent)]
    Generate(#[from] carrel_synth::SynthError),
    #[error(transparent)]
    Secret(#[from] crate::capabilities::keyed_hash::KeyedHashError),
    #[error("synthetic file {file} does not parse: {refusal}")]
    Parse { file: String, refusal: String },
    #[error("pseudonymising {file}: {error}")]
    Pseudonymise {
        file: String,
        error: carrel_pseudonym::PseudonymiseError,
    },
    #[error("cannot add record keys to synthetic rows")]
    RecordKeys(#[from] arrow_schema::ArrowError),
    #[error(transparent)]
    Study(Box<StudyError>),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("study `{id}`: cannot load {} (build it first: `carrel build`)", path.display())]
    Unbuilt {
        id: String,
        path: std::path::PathBuf,
        #[source]
        source: carrel_runtime::error::EngineError,
    },
    #[error("study `{id}`")]
    NotThisKind {
        id: String,
        #[source]
        source: SandboxError,
    },
}

impl From<carrel_vault::VaultError> for SyntheticError {
    fn from(error: carrel_vault::VaultError) -> Self {
        Self::Vault(Box::new(error))
    }
}

impl From<StudyError> for SyntheticError {
    fn from(error: StudyError) -> Self {
        Self::Study(Box::new(error))
    }
}

/// A throwaway warehouse holding synthetic consultations.
pub struct SyntheticWarehouse {
    _dir: tempfile::TempDir,
    pub vault: Arc<Vault>,
    pub secret: PseudonymSecret,
    pub truth: carrel_synth::GroundTruth,
}

impl SyntheticWarehouse {
    /// Generates `consultations` consultations with `seed`, pseudonymises them with the
    /// same code the pseudonymisation component runs, and stores them encrypted.
    pub fn build(
        consultations: u64,
        seed: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Self, SyntheticError> {
        let dir = tempfile::tempdir().map_err(SyntheticError::TempDir)?;
        let state = dir.path().join("state");
        carrel_vault::init_master_key(&state, &MasterKeyEnv::unset(), "synthetic")?;
        let vault = Vault::open(&state, &MasterKeyEnv::unset())?;
        crate::ingest::ensure_canonical_dataset(&vault, CONSULTATIONS, "synthetic")?;
        let options = carrel_synth::SynthOptions {
            consultations,
            seed,
            ..Default::default()
        };
        let fhir = dir.path().join("fhir");
        let truth = carrel_synth::generate(&options, &fhir, &mut |_| {})?;
        let secret = PseudonymSecret::load_or_create(&state)?;
        let mut hasher = KeyedHashGrants::new(&secret, &["patient".into(), "consultation".into()]);
        let mut stored = 0;
        for file in &truth.files {
            let body = std::fs::read(fhir.join(file))?;
            let parsed = carrel_fhir::parse_ndjson(&body).map_err(|e| SyntheticError::Parse {
                file: file.clone(),
                refusal: format!("{e:?}"),
            })?;
            let batch = carrel_pseudonym::pseudonymise(
                SYNTHETIC_ASSOCIATION,
                &parsed.consultations,
                &mut hasher,
            )
            .map_err(|error| SyntheticError::Pseudonymise {
                file: file.clone(),
                error,
            })?;
            stored += batch.num_rows() as u64;
            let batch = crate::ingest::record_keys::with_record_keys(&batch)?;
            vault.append(CONSULTATIONS, &batch, "synthetic")?;
            progress(stored);
        }
        Ok(Self {
            _dir: dir,
            vault: Arc::new(vault),
            secret,
            truth,
        })
    }
}

/// Runs `spec` against `warehouse`: the run record (never stored) and the released table.
/// The compiled component is cached in `cache_dir` (the state directory's, as for real
/// runs): compiling a Python study's interpreter takes longer than a small try.
pub async fn try_study(
    spec: &StudySpec,
    warehouse: &SyntheticWarehouse,
    params: Vec<(String, String)>,
    cache_dir: Option<&Path>,
) -> Result<(RunRecord, Option<Vec<u8>>), SyntheticError> {
    let specs = BTreeMap::from([(spec.id.clone(), spec.clone())]);
    let engine = study_engine(&specs)?;
    let _ticker = EpochTicker::start(&engine);
    let sandbox = StudySandbox::new(&engine)?;
    let component = load_component(&engine, &spec.source, cache_dir)
        .map_err(|source| SyntheticError::Unbuilt {
            id: spec.id.clone(),
            path: spec.source.clone(),
            source,
        })?
        .component;
    sandbox
        .check(&component, spec.tool.kind)
        .map_err(|source| SyntheticError::NotThisKind {
            id: spec.id.clone(),
            source,
        })?;
    let mut record = RunRecord {
        run_id: "synthetic".into(),
        study: spec.id.clone(),
        actor: "synthetic".into(),
        params: params.clone(),
        started_at: String::new(),
        finished_at: String::new(),
        // Until the run says otherwise: a record never finished is not a success.
        status: crate::study::registry::RunStatus::Failed,
        error: None,
        wasm_sha256: String::new(),
        manifest_sha256: spec.manifest_sha256.clone(),
        output_sha256: None,
        segments_read: Vec::new(),
        rows_read: 0,
        rows_released: 0,
        disclosure: serde_json::Value::Null,
        denied: Vec::new(),
        logs: Vec::new(),
        researcher_error: None,
        contributions_dropped: 0,
        locality: serde_json::Value::Null,
        privacy: None,
        model_report: serde_json::Value::Null,
    };
    let context = RunContext {
        vault: &warehouse.vault,
        audit: None,
        secret: &warehouse.secret,
        policy: &spec.tool.disclosure,
        actor: "synthetic",
        observer: None,
        exclusions: None,
    };
    let released = execute(&sandbox, spec, &component, &context, &params, &mut record).await;
    Ok((record, released))
}
