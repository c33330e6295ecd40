//! Loading a Spin application: manifest, runtime config, components and their grants.
//! Everything that can be wrong with an app is found here, before the first request.

use crate::capabilities::ingest::IngestGrant;
use crate::capabilities::keyed_hash::{KeyedHashGrants, PseudonymSecret};
use crate::capabilities::outbound_http::{self, OutboundGrants, SelfRequests};
use crate::capabilities::{ingest, key_value, mqtt, postgres, redis, sqlite, variables};
use crate::carrel_settings::CarrelTool;
use crate::component_logs::{ComponentOutput, LogDir};
use crate::engine::{EngineOptions, EpochTicker, build_engine, load_component};
use crate::ingest::IngestPipeline;
use crate::ingest::pseudonymiser::Pseudonymiser;
use crate::instance_pool::ComponentHandler;
use crate::instance_state::{ComponentGrants, InstanceState};
use crate::manifest::{self, HttpRoute, LoadedManifest, Route, RoutePattern, Router};
use crate::patients::{PatientRights, PatientsConfig};
use crate::runtime_config::RuntimeConfig;
use crate::tokens::{Role, TokenStore};
use anyhow::{Context, anyhow};
use carrel_vault::{AuditLog, MasterKeyEnv, Vault};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::Linker;
use wasmtime_wasi_http::handler::{ProxyHandler, ProxyPre};

#[derive(Debug, Clone)]
pub struct AppOptions {
    pub manifest: PathBuf,
    /// Where key-value data, caches and staged files live; default `.spin` next to the manifest.
    pub state_dir: Option<PathBuf>,
    pub runtime_config: Option<PathBuf>,
    /// Where components' stdout and stderr go.
    pub log_dir: LogDir,
    /// How long a guest may take to answer one request.
    pub deadline: Duration,
    pub engine: EngineOptions,
}

impl AppOptions {
    pub fn new(manifest: impl Into<PathBuf>) -> Self {
        Self {
            manifest: manifest.into(),
            state_dir: None,
            runtime_config: None,
            log_dir: LogDir::default(),
            deadline: Duration::from_secs(30),
            engine: EngineOptions::default(),
        }
    }
}

/// A component ready to serve requests.
pub struct HttpComponent {
    pub handler: ProxyHandler<ComponentHandler>,
    pub sha256: String,
    /// The token role its routes require.
    pub auth: Option<Role>,
}

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
    pub sessions: crate::web::session_store::SessionStore,
}

pub struct App {
    pub name: String,
    /// The manifest the app was loaded from (the auditor's capability report reads it).
    pub manifest_path: PathBuf,
    pub router: Router,
    pub components: BTreeMap<String, HttpComponent>,
    pub state_dir: PathBuf,
    pub deadline: Duration,
    /// How long a client may take to send a request body; `serve` sets it from its
    /// options, for the bodies the API and web pages read themselves.
    pub read_timeout: Duration,
    pub warehouse: Option<Warehouse>,
    /// The study desk, when the manifest declares `[[trigger.study]]`s.
    pub studies: Option<Arc<crate::study::StudyService>>,
    /// How components' self requests reach the server; `serve` connects it.
    pub self_requests: SelfRequests,
    /// How many study runs the API lets happen at once; `serve` sets it from its options.
    pub run_gate: Arc<crate::api::run_gate::RunGate>,
    _ticker: EpochTicker,
}

/// The trigger types carrel runs; any other in a manifest stops the start.
pub const TRIGGER_TYPES: [&str; 2] = ["http", "study"];

/// The host's linker: WASI 0.2 and 0.3, WASI HTTP of both generations (relative URLs taken
/// as self requests), and carrel's capabilities. Anything else a component imports fails
/// the app at start.
fn linker(engine: &Engine) -> anyhow::Result<Linker<InstanceState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    outbound_http::add_to_linker(&mut linker)?;
    key_value::add_to_linker(&mut linker)?;
    sqlite::add_to_linker(&mut linker)?;
    redis::add_to_linker(&mut linker)?;
    mqtt::add_to_linker(&mut linker)?;
    postgres::add_to_linker(&mut linker)?;
    variables::add_to_linker(&mut linker)?;
    ingest::add_to_linker(&mut linker)?;
    Ok(linker)
}

impl App {
    pub fn load(options: &AppOptions) -> anyhow::Result<Self> {
        let manifest = manifest::load(&options.manifest)?;
        manifest.check_runnable(&TRIGGER_TYPES)?;
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(|| crate::state_dir::beside_loaded(&manifest));
        private_state_dir(&state_dir)?;
        let runtime_config = match &options.runtime_config {
            Some(path) => RuntimeConfig::load(path)?,
            None => RuntimeConfig::default(),
        };
        let engine = build_engine(&options.engine)?;
        let ticker = EpochTicker::start(&engine);
        let linker = linker(&engine)?;
        let stores = key_value::KeyValueStores::open(&runtime_config, &state_dir)?;
        let environment = crate::dotenv::VariableEnvironment::load(manifest.base_dir())?;
        let variables =
            manifest::resolve_component_variables(&manifest.manifest, &|k| environment.get(k))
                .with_context(|| format!("{}", manifest.path.display()))?;
        let outbound_hosts = manifest::resolve_outbound_hosts(
            &manifest.manifest,
            &|k| environment.get(k),
            &variables,
        )
        .with_context(|| format!("{}", manifest.path.display()))?;
        let log_dir = options.log_dir.resolve(&state_dir).with_context(|| {
            format!("cannot create the log directory of {}", state_dir.display())
        })?;
        let self_requests = SelfRequests::default();

        let mut routes = Vec::new();
        let mut served = Vec::new();
        for trigger in &manifest.http_triggers {
            if !served.contains(&trigger.component) {
                served.push(trigger.component.clone());
            }
            if let HttpRoute::Path(path) = &trigger.route {
                routes.push(Route {
                    pattern: RoutePattern::parse(path)
                        .map_err(|e| anyhow!("{}: {e}", manifest.path.display()))?,
                    component: trigger.component.clone(),
                });
            }
        }
        let router =
            Router::new(routes).map_err(|e| anyhow!("{}: {e}", manifest.path.display()))?;

        let mut tools = BTreeMap::new();
        for (id, component) in &manifest.manifest.component {
            let tool = CarrelTool::of(id, &component.tool)
                .map_err(|e| anyhow!("{}: {e}", manifest.path.display()))?;
            tools.insert(id.clone(), tool);
        }
        let study_specs = crate::study::study_specs(&manifest)?;
        let needs_warehouse = !study_specs.is_empty()
            || served
                .iter()
                .any(|id| tools[id].auth.is_some() || tools[id].ingest.is_some());
        let warehouse = if needs_warehouse {
            Some(open_warehouse(&state_dir, runtime_config.patients.clone())?)
        } else {
            None
        };

        let granted_databases: Vec<&str> = served
            .iter()
            .flat_map(|id| manifest.manifest.component[id].sqlite_databases.iter())
            .map(String::as_str)
            .collect();
        let databases =
            sqlite::SqliteDatabases::open(&runtime_config, &state_dir, &granted_databases)?;
        let shared = SharedResources {
            stores: &stores,
            databases: &databases,
            variables: &variables,
            outbound_hosts: &outbound_hosts,
            log_dir: log_dir.as_deref(),
            self_requests: &self_requests,
        };
        let mut components = BTreeMap::new();
        for id in served {
            let pipeline = match (&tools[&id].ingest, &warehouse) {
                (Some(cfg), Some(w)) => Some(Arc::new(
                    ingest_pipeline(&manifest, cfg, &tools, &engine, w, &state_dir, options)
                        .with_context(|| format!("component `{id}`: ingest"))?,
                )),
                _ => None,
            };
            let ingest = IngestGrant {
                component: id.clone(),
                pipeline,
                audit: warehouse.as_ref().map(|w| w.audit.clone()),
            };
            let component = Self::load_component(
                &manifest,
                &id,
                &engine,
                &linker,
                &shared,
                &state_dir,
                options,
                ingest,
                tools[&id].auth,
            )
            .with_context(|| format!("component `{id}`"))?;
            components.insert(id, component);
        }
        let studies = match (&warehouse, study_specs.is_empty()) {
            (Some(w), false) => Some(Arc::new(
                crate::study::StudyService::new(
                    study_specs,
                    w.vault.clone(),
                    w.audit.clone(),
                    &state_dir,
                    runtime_config.disclosure.clone(),
                )?
                .with_rights(w.rights.clone()),
            )),
            _ => None,
        };
        // The stores, caches and staged files created above: private like the rest.
        private_state_dir(&state_dir)?;
        tracing::info!(app = %manifest.manifest.application.name, components = components.len(), "application loaded");
        Ok(Self {
            name: manifest.manifest.application.name.clone(),
            manifest_path: options.manifest.clone(),
            router,
            components,
            state_dir,
            deadline: options.deadline,
            read_timeout: crate::request_body::DEFAULT_READ_TIMEOUT,
            warehouse,
            studies,
            self_requests,
            run_gate: crate::api::run_gate::RunGate::new(Default::default()),
            _ticker: ticker,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn load_component(
        manifest: &LoadedManifest,
        id: &str,
        engine: &Engine,
        linker: &Linker<InstanceState>,
        shared: &SharedResources<'_>,
        state_dir: &Path,
        options: &AppOptions,
        ingest: IngestGrant,
        auth: Option<Role>,
    ) -> anyhow::Result<HttpComponent> {
        let spec = &manifest.manifest.component[id];
        let source = manifest.component_source_path(id)?;
        let loaded = load_component(engine, &source, Some(&state_dir.join("cache")))?;
        let instance_pre = linker
            .instantiate_pre(&loaded.component)
            .map_err(anyhow::Error::from)
            .context("cannot link its imports")?;
        let pre = match wasmtime_wasi_http::p3::bindings::ServicePre::new(instance_pre.clone()) {
            Ok(p3) => ProxyPre::P3(p3),
            Err(_) => ProxyPre::P2(
                wasmtime_wasi_http::p2::bindings::ProxyPre::new(instance_pre).map_err(|_| {
                    anyhow!("{} exports neither wasi:http/handler@0.3 nor wasi:http/incoming-handler@0.2", source.display())
                })?,
            ),
        };
        let files_root = if spec.files.is_empty() {
            None
        } else {
            let staging = state_dir.join("files").join(id);
            crate::file_mounts::stage(
                manifest.base_dir(),
                &spec.files,
                &spec.exclude_files,
                &staging,
            )?;
            Some(staging)
        };
        let grants = ComponentGrants {
            id: id.to_owned(),
            environment: spec
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            files_root,
            outbound: outbound_grants(manifest, id, shared)?,
            key_value: shared.stores.grants_for(id, &spec.key_value_stores)?,
            sqlite: shared.databases.grants_for(
                id,
                &spec.sqlite_databases,
                sqlite::QueryLimits {
                    timeout: options.deadline,
                    max_result_bytes: options.engine.max_memory_bytes,
                },
            )?,
            variables: variables::VariableGrants::new(
                shared.variables.get(id).cloned().unwrap_or_default(),
            ),
            ingest,
            auth,
            max_memory_bytes: options.engine.max_memory_bytes,
            output: ComponentOutput::open(shared.log_dir, id)
                .context("cannot open its log files")?,
        };
        let handler = ComponentHandler {
            engine: engine.clone(),
            pre,
            grants,
            deadline: options.deadline,
            last_failure: Default::default(),
        };
        tracing::info!(component = id, wasip3 = handler.is_p3(), "component ready");
        Ok(HttpComponent {
            handler: ProxyHandler::new(handler),
            sha256: loaded.sha256,
            auth,
        })
    }
}

/// What every component of an app draws its grants from, opened once per app.
struct SharedResources<'a> {
    stores: &'a key_value::KeyValueStores,
    databases: &'a sqlite::SqliteDatabases,
    variables: &'a manifest::ResolvedVariables,
    /// Each component's `allowed_outbound_hosts`, templates expanded.
    outbound_hosts: &'a BTreeMap<String, Vec<String>>,
    log_dir: Option<&'a Path>,
    self_requests: &'a SelfRequests,
}

/// The component's `allowed_outbound_hosts`, with every `<id>.spin.internal` it names
/// checked to be a component of the app.
fn outbound_grants(
    manifest: &LoadedManifest,
    id: &str,
    shared: &SharedResources<'_>,
) -> anyhow::Result<OutboundGrants> {
    let entries = shared.outbound_hosts.get(id).map_or(&[][..], Vec::as_slice);
    let grants = OutboundGrants::new(entries, shared.self_requests.clone())?;
    if let Some(missing) = grants.chained_components().find(|c| {
        !manifest
            .http_triggers
            .iter()
            .any(|t| t.component.eq_ignore_ascii_case(c))
    }) {
        anyhow::bail!(
            "allowed_outbound_hosts entry `http://{missing}.spin.internal`: the app has no HTTP component `{missing}`"
        );
    }
    Ok(grants)
}

/// Creates the state directory `0700`, or narrows an existing one (and its files, to
/// `0600`) with a warning: it holds keys, tokens' hashes and health data.
fn private_state_dir(state_dir: &Path) -> anyhow::Result<()> {
    if !state_dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .with_context(|| format!("cannot create state directory {}", state_dir.display()))?;
    }
    carrel_vault::secure_state_dir(state_dir)
        .with_context(|| format!("cannot make {} private", state_dir.display()))?;
    Ok(())
}

fn open_warehouse(state_dir: &Path, patients: PatientsConfig) -> anyhow::Result<Warehouse> {
    let vault = Vault::open(state_dir, &MasterKeyEnv::from_process()).with_context(|| {
        format!(
            "this app authenticates clients, ingests data or runs studies, so it needs the warehouse state in {}: run `carrel keys init --state-dir {}` first",
            state_dir.display(),
            state_dir.display()
        )
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
    manifest: &LoadedManifest,
    cfg: &crate::carrel_settings::IngestTool,
    tools: &BTreeMap<String, CarrelTool>,
    engine: &Engine,
    warehouse: &Warehouse,
    state_dir: &Path,
    options: &AppOptions,
) -> anyhow::Result<IngestPipeline> {
    let id = &cfg.pseudonymiser;
    let tool = tools
        .get(id)
        .ok_or_else(|| anyhow!("pseudonymiser `{id}` has no [component.{id}] table"))?;
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
    .with_context(|| format!("pseudonymiser `{id}`"))?;
    IngestPipeline::new(
        warehouse.vault.clone(),
        &cfg.dataset,
        pseudonymiser,
        warehouse.rights.clone(),
    )
}

/// Keeps the app's handlers alive for the server's tasks.
pub type SharedApp = Arc<App>;
