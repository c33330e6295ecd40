//! Patients' rights: objections honoured end to end, and a retention period.
//!
//! - **Registering an objection** ([`PatientRights::object`]): the patient's identifiers
//!   (a NIR, or the identity traits the pseudonymiser uses when there is none) become
//!   the keyed hashes the pseudonymiser stores as `patient_id`, through the same
//!   normalisation ([`carrel_pseudonym::identity`]) and the same key (the `patient`
//!   domain of the pseudonymisation secret). Only those hashes are kept
//!   ([`objections`]); the answer and the `patient.objection` audit entry hold counts.
//! - **Withheld at ingestion**: the host hashes every incoming row's patient itself and
//!   leaves out those who objected before the pseudonymiser sees them; the receipt
//!   counts them (`rows_withheld`) without saying whose ([`crate::ingest`]).
//! - **Never read again**: every study run leaves out the rows of patients who objected
//!   before it started and rows older than the retention period ([`Exclusions`]), whether
//!   or not a pass has removed them yet, and whenever the study was approved.
//! - **Removed from storage**: a pass ([`pass`]) rewrites every segment without those
//!   rows and destroys the old data keys (`carrel_vault`'s purge), by `carrel patients
//!   object`, `carrel retention apply`, or on a schedule while serving ([`schedule`]).
//!   Study runs and passes take the store gate in turn, so a run never reads a segment
//!   that a pass is replacing; ingestion goes on during a pass.

mod config;
pub mod objections;
pub mod pass;
pub mod report;
pub mod schedule;
mod selector;

pub use config::{DEFAULT_PASS_INTERVAL_SECONDS, PatientsConfig, today};
pub use selector::Exclusions;

use crate::capabilities::keyed_hash::{KeyedHashError, KeyedHashGrants, PseudonymSecret};
use carrel_fhir::IdentifiedPatient;
use carrel_pseudonym::PATIENT_DOMAIN;
use carrel_runtime::error::with_causes;
use carrel_vault::Vault;
use objections::{Channel, ObjectionStore, Registered};
use std::path::Path;
use std::sync::Arc;

/// [`PatientRights::reading`], when the warehouse honours patients' rights.
pub async fn reading(rights: Option<&PatientRights>) -> Result<Option<Reading>, PatientsError> {
    match rights {
        Some(rights) => Ok(Some(rights.reading().await?)),
        None => Ok(None),
    }
}

/// A study run's hold on the store: leave out `exclusions`; no pass runs meanwhile.
pub struct Reading {
    _gate: tokio::sync::OwnedRwLockReadGuard<()>,
    pub exclusions: Exclusions,
}

/// The dataset whose rows objections and retention remove.
pub const DATASET: &str = "consultations";

/// Why the warehouse could not read or keep patients' rights.
#[derive(Debug, thiserror::Error)]
pub enum PatientsError {
    #[error(transparent)]
    Vault(#[from] carrel_vault::VaultError),
    /// The objection register, in the catalog database.
    #[error(transparent)]
    Register(#[from] rusqlite::Error),
    #[error(transparent)]
    Secret(#[from] KeyedHashError),
    /// The patient hash could not be computed (the message names no identifier).
    #[error("{0}")]
    Hash(String),
    #[error("cannot read the objection register")]
    Unreadable(#[source] Box<PatientsError>),
}

/// Why an objection was not registered.
#[derive(Debug, thiserror::Error)]
pub enum ObjectionError {
    /// The identifiers name nobody precisely enough; the message repeats none of them.
    #[error("{0}")]
    Refused(String),
    #[error("the objection could not be registered: {0}")]
    Internal(String),
}

/// The warehouse's side of patients' rights, shared by ingestion, study runs, the
/// scheduled pass and the pages.
pub struct PatientRights {
    pub vault: Arc<Vault>,
    pub config: PatientsConfig,
    pub objections: ObjectionStore,
    /// HMAC under the `patient` domain key: the pseudonymiser's patient hash.
    hasher: KeyedHashGrants,
    /// Study runs read under it, passes rewrite under it exclusively.
    pub store_gate: Arc<tokio::sync::RwLock<()>>,
    /// One pass at a time.
    pub(crate) pass_lock: std::sync::Mutex<()>,
    /// Wakes the scheduled pass when an objection is registered.
    pub(crate) wake: tokio::sync::Notify,
}

impl PatientRights {
    pub fn open(
        vault: Arc<Vault>,
        state_dir: &Path,
        config: PatientsConfig,
    ) -> Result<Self, PatientsError> {
        let secret = PseudonymSecret::load_or_create(state_dir)?;
        Ok(Self {
            objections: ObjectionStore::open(state_dir)?,
            hasher: KeyedHashGrants::new(&secret, &[PATIENT_DOMAIN.to_owned()]),
            vault,
            config,
            store_gate: Arc::new(tokio::sync::RwLock::new(())),
            pass_lock: std::sync::Mutex::new(()),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// The patient pseudonyms of identity keys, as the pseudonymiser computes them.
    pub fn pseudonyms(&self, identity_keys: &[Vec<u8>]) -> Result<Vec<String>, PatientsError> {
        let mut hasher = self.hasher.clone();
        carrel_pseudonym::identity::patient_pseudonyms(&mut hasher, identity_keys)
            .map_err(|e| PatientsError::Hash(e.to_string()))
    }

    /// The pseudonym of each identity key (as [`carrel_pseudonym::patient_key`] gives
    /// them), hashing each distinct key once.
    pub fn pseudonyms_of(&self, keys: &[Vec<u8>]) -> Result<Vec<String>, PatientsError> {
        let mut distinct: Vec<&Vec<u8>> = keys.iter().collect();
        distinct.sort_unstable();
        distinct.dedup();
        let owned: Vec<Vec<u8>> = distinct.iter().map(|k| (*k).clone()).collect();
        let hashes = self.pseudonyms(&owned)?;
        Ok(keys
            .iter()
            .map(|key| {
                let index = distinct.binary_search(&key).expect("every key is listed");
                hashes[index].clone()
            })
            .collect())
    }

    /// Registers the objection of the patient `patient` identifies, keeping only the
    /// pseudonyms, and wakes the scheduled pass.
    pub fn object(
        &self,
        patient: &IdentifiedPatient,
        actor: &str,
        channel: Channel,
    ) -> Result<Registered, ObjectionError> {
        let identities = carrel_pseudonym::identity::objection_identities(patient)
            .map_err(|e| ObjectionError::Refused(e.to_string()))?;
        let keys: Vec<Vec<u8>> = identities.into_iter().map(String::into_bytes).collect();
        let pseudonyms = self
            .pseudonyms(&keys)
            .map_err(|e| ObjectionError::Internal(e.to_string()))?;
        let registered = self
            .objections
            .register(&pseudonyms, actor, channel)
            .map_err(|e| ObjectionError::Internal(with_causes(&e)))?;
        self.wake.notify_one();
        Ok(registered)
    }

    /// What a study run reads under: the store gate (shared, so no pass replaces a
    /// segment while it reads), then what it must leave out. The gate is taken first, so
    /// every objection registered before the run reads is honoured by it.
    pub async fn reading(&self) -> Result<Reading, PatientsError> {
        let gate = self.store_gate.clone().read_owned().await;
        Ok(Reading {
            _gate: gate,
            exclusions: self
                .exclusions()
                .map_err(|e| PatientsError::Unreadable(Box::new(e)))?,
        })
    }

    /// What a study run starting now must leave out.
    pub fn exclusions(&self) -> Result<Exclusions, PatientsError> {
        Ok(Exclusions {
            objections: self.objections.current()?,
            before_day: self.config.retention_cutoff(today()),
        })
    }
}
