//! The warehouse's app: a Spin app loaded by the runtime, with the warehouse's interfaces
//! and grants added to its components (ingestion, who may call them), the warehouse state
//! they need, and the study service of its `[[trigger.study]]`s.

use crate::app_error::{AppError, IngestPipelineError};
use crate::capabilities::ingest::{self, IngestGrant, IngestState, IngestView};
use crate::capabilities::keyed_hash::{KeyedHashGrants, PseudonymSecret};
use crate::carrel_settings::CarrelTool;
use crate::ingest::IngestPipeline;
use crate::ingest::pseudonymiser::Pseudonymiser;
use crate::patients::{PatientRights, PatientsConfig};
use crate::study::run_gate::{RunGate, RunLimits};
use crate::tokens::{Principal, Role, TokenStore};
use carrel_runtime::app::AppLoader;
pub use carrel_runtime::app::AppOptions;
use carrel_runtime::engine::load_component;
use carrel_runtime::instance_state::{InstanceExtension, InstanceState};
use carrel_runtime::runtime_config::RuntimeConfigError;
use carrel_vault::{AuditLog, MasterKeyEnv, Vault};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The warehouse's state, opened when some component needs it (authentication, ingestion).
pub struct Warehouse {
    pub vault: Arc<Vault>,
    pub audit: Arc<AuditLog>,
    pub tokens: TokenStore,
    /// Objections and retention, honoured by ingestion, study runs and passes.
    pub rights: Arc<PatientRights>,
    /// Refusals of clients that did not authenticate, counted per source and minute.
    pub refusals: crate::refusals::RefusalCounter,
    /// The last audit head the auditor's pages found intact: they verify from there.
    pub verified: std::sync::Mutex<Option<carrel_vault::AuditHead>>,
    /// Sessions of the host's pages.
    pub sessions: crate::sessions::SessionStore,
}

/// What the warehouse keeps in each instance: its ingest grant, and who sent the request.
#[derive(Clone, Default)]
pub struct WarehouseInstance {
    pub ingest: IngestGrant,
    /// Who sent the request this instance serves (instances of authenticated components
    /// serve one request each, so this is never another client's).
    pub principal: Option<Principal>,
}

impl InstanceExtension for WarehouseInstance {
    type Caller = Option<Principal>;

    fn set_caller(&mut self, caller: Option<Principal>) {
        self.principal = caller;
    }
}

impl IngestState for InstanceState<WarehouseInstance> {
    fn ingest(&mut self) -> IngestView<'_> {
        IngestView {
            grant: &self.extension.ingest,
            principal: self.extension.principal.as_ref(),
        }
    }
}

/// The warehouse's sections of the runtime config.
#[derive(Debug, Default, serde::Deserialize)]
pub struct WarehouseSettings {
    /// The operator's minimum disclosure policy: no study may release under a weaker one.
    #[serde(default)]
    pub disclosure: carrel_disclosure::Policy,
    /// Retention and objections ([`crate::patients`]): the retention period, how often it
    /// and objections are applied while serving, and what the public register tells patients.
    #[serde(default)]
    pub patients: PatientsConfig,
}

impl WarehouseSettings {
    /// The section names, for the runtime's check of the file.
    pub const SECTIONS: [&str; 2] = ["disclosure", "patients"];

    /// The warehouse's settings in the runtime config at `path`, or the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, RuntimeConfigError> {
        let config =
            carrel_runtime::runtime_config::RuntimeConfig::load_optional(path, &Self::SECTIONS)?;
        config.sections()
    }
}

/// How the warehouse's own pages and API behave while served.
#[derive(Debug, Clone)]
pub struct FrontOptions {
    /// How long a client may take to send a body the API or a page reads.
    pub read_timeout: Duration,
    /// How many study runs the API lets happen at once, and each researcher store.
    pub study_runs: RunLimits,
    /// How long a login to the host's pages lasts.
    pub session_lifetime: Duration,
}

impl Default for FrontOptions {
    fn default() -> Self {
        Self {
            read_timeout: carrel_runtime::request_body::DEFAULT_READ_TIMEOUT,
            study_runs: Default::default(),
            session_lifetime: crate::sessions::DEFAULT_LIFETIME,
        }
    }
}

pub struct App {
    /// The Spin app as the runtime serves it.
    pub runtime: carrel_runtime::app::App<WarehouseInstance>,
    /// The token role each component behind `auth` requires.
    pub auth: BTreeMap<String, Role>,
    /// How long a client may take to send a request body the API or a page reads.
    pub read_timeout: Duration,
    pub warehouse: Option<Warehouse>,
    /// The study desk, when the manifest declares `[[trigger.study]]`s.
    pub studies: Option<Arc<crate::study::StudyService>>,
    /// How many study runs the API lets happen at once.
    pub run_gate: Arc<RunGate>,
}

/// The trigger types the warehouse runs beside the runtime's `http`.
pub const WAREHOUSE_TRIGGERS: [&str; 1] = ["study"];

impl App {
    pub fn load(options: &AppOptions) -> Result<Self, AppError> {
        let mut loader = AppLoader::<WarehouseInstance>::new(
            options,
            &WAREHOUSE_TRIGGERS,
            &WarehouseSettings::SECTIONS,
        )?;
        private_state_dir(&loader.state_dir)?;
        let settings: WarehouseSettings = loader.runtime_config.sections()?;
        ingest::add_to_linker(&mut loader.linker).map_err(|e| AppError::Linker(e.into()))?;
        let manifest = &loader.manifest;
        let mut tools = BTreeMap::new();
        for (id, component) in &manifest.manifest.component {
            let tool = CarrelTool::of(id, &component.tool).map_err(|error| AppError::Tool {
                manifest: manifest.path.clone(),
                error,
            })?;
            tools.insert(id.clone(), tool);
        }
        let study_specs = crate::study::study_specs(manifest)?;
        let served = loader.served().to_vec();
        let needs_warehouse = !study_specs.is_empty()
            || served
                .iter()
                .any(|id| tools[id].auth.is_some() || tools[id].ingest.is_some());
        let warehouse = if needs_warehouse {
            Some(open_warehouse(&loader.state_dir, settings.patients)?)
        } else {
            None
        };
        let mut auth = BTreeMap::new();
        for id in served {
            let pipeline = match (&tools[&id].ingest, &warehouse) {
                (Some(cfg), Some(w)) => {
                    Some(Arc::new(ingest_pipeline(&loader, cfg, &tools, w).map_err(
                        |source| AppError::Ingest {
                            component: id.clone(),
                            source: Box::new(source),
                        },
                    )?))
                }
                _ => None,
            };
            let extension = WarehouseInstance {
                ingest: IngestGrant {
                    component: id.clone(),
                    pipeline,
                    audit: warehouse.as_ref().map(|w| w.audit.clone()),
                },
                principal: None,
            };
            let role = tools[&id].auth;
            loader.add_component(&id, extension, role.is_some())?;
            if let Some(role) = role {
                auth.insert(id, role);
            }
        }
        let studies = match (&warehouse, study_specs.is_empty()) {
            (Some(w), false) => Some(Arc::new(
                crate::study::StudyService::new(
                    study_specs,
                    w.vault.clone(),
                    w.audit.clone(),
                    &loader.state_dir,
                    settings.disclosure,
                )?
                .with_rights(w.rights.clone()),
            )),
            _ => None,
        };
        // The stores, caches and staged files created above: private like the rest.
        private_state_dir(&loader.state_dir)?;
        Ok(Self {
            runtime: loader.finish(),
            auth,
            read_timeout: carrel_runtime::request_body::DEFAULT_READ_TIMEOUT,
            warehouse,
            studies,
            run_gate: RunGate::new(Default::default()),
        })
    }

    /// Sets how the pages and API behave while served.
    pub fn with_front_options(mut self, options: &FrontOptions) -> Self {
        // The API and the web pages read their own (small) bodies, with this bound.
        self.read_timeout = options.read_timeout;
        self.run_gate = RunGate::new(options.study_runs);
        if let Some(warehouse) = &self.warehouse {
            warehouse.sessions.set_lifetime(options.session_lifetime);
        }
        self
    }
}

/// Narrows the state directory (created `0700` by the runtime) and its files (to `0600`)
/// with a warning: it holds keys, tokens' hashes and health data.
fn private_state_dir(state_dir: &Path) -> Result<(), AppError> {
    carrel_vault::secure_state_dir(state_dir).map_err(|source| AppError::PrivateStateDir {
        path: state_dir.to_owned(),
        source,
    })?;
    Ok(())
}

fn open_warehouse(state_dir: &Path, patients: PatientsConfig) -> Result<Warehouse, AppError> {
    let vault = Vault::open(state_dir, &MasterKeyEnv::from_process()).map_err(|source| {
        AppError::NoWarehouse {
            path: state_dir.to_owned(),
            source: Box::new(source),
        }
    })?;
    let vault = Arc::new(vault);
    Ok(Warehouse {
        audit: Arc::new(AuditLog::open(state_dir)?),
        tokens: TokenStore::open(state_dir)?,
        rights: Arc::new(PatientRights::open(vault.clone(), state_dir, patients)?),
        vault,
        refusals: Default::default(),
        verified: Default::default(),
        sessions: Default::default(),
    })
}

fn ingest_pipeline(
    loader: &AppLoader<WarehouseInstance>,
    cfg: &crate::carrel_settings::IngestTool,
    tools: &BTreeMap<String, CarrelTool>,
    warehouse: &Warehouse,
) -> Result<IngestPipeline, IngestPipelineError> {
    let (manifest, engine, state_dir) = (&loader.manifest, &loader.engine, &loader.state_dir);
    let options = &loader.options;
    let id = &cfg.pseudonymiser;
    let tool = tools
        .get(id)
        .ok_or_else(|| IngestPipelineError::NoPseudonymiser(id.clone()))?;
    let source = manifest.component_source_path(id)?;
    let loaded = load_component(engine, &source, Some(&state_dir.join("cache")))?;
    let secret = PseudonymSecret::load_or_create(state_dir)?;
    let grants = KeyedHashGrants::new(&secret, &tool.keyed_hash_domains);
    let pseudonymiser = Pseudonymiser::new(
        engine,
        &loaded.component,
        grants,
        options.deadline,
        options.engine.max_memory_bytes,
    )
    .map_err(|source| IngestPipelineError::Pseudonymiser {
        id: id.clone(),
        source,
    })?;
    Ok(IngestPipeline::new(
        warehouse.vault.clone(),
        &cfg.dataset,
        pseudonymiser,
        warehouse.rights.clone(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retention_period_and_pass_interval_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc.toml");
        std::fs::write(
            &path,
            "[patients]\nretention_days = 7300\npass_interval_seconds = 60\n",
        )
        .unwrap();
        let cfg = WarehouseSettings::load(Some(&path)).unwrap();
        assert_eq!(cfg.patients.retention_days, Some(7300));
        assert_eq!(cfg.patients.pass_interval_seconds, 60);
        std::fs::write(&path, "[patients]\nretention_days = 0\n").unwrap();
        let err = WarehouseSettings::load(Some(&path))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("retention_days") && err.contains("line 2"),
            "{err}"
        );
        assert_eq!(
            WarehouseSettings::default().patients.pass_interval_seconds,
            crate::patients::DEFAULT_PASS_INTERVAL_SECONDS
        );
    }

    #[test]
    fn sections_neither_the_runtime_nor_the_warehouse_reads_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rc.toml");
        std::fs::write(&path, "[disclosure]\n\n[llm_compute]\ntype = \"spin\"\n").unwrap();
        let err = format!("{:#}", WarehouseSettings::load(Some(&path)).unwrap_err());
        assert!(
            err.contains("`llm_compute`") && err.contains("line 3") && err.contains("disclosure"),
            "{err}"
        );
    }
}
