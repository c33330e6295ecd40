//! Loading a Spin application: manifest, runtime config, components and their grants.
//! Everything that can be wrong with an app is found here, before the first request.
//!
//! A layer above the runtime loads in steps with [`AppLoader`]: it adds its interfaces to
//! the linker, then each component with the grants of its own ([`InstanceExtension`]).
//! [`App::load`] is the plain Spin host, with nothing added.

use crate::capabilities::outbound_http::{self, OutboundGrants, SelfRequests};
use crate::capabilities::{key_value, mqtt, postgres, redis, sqlite, variables};
use crate::component_logs::{ComponentOutput, LogDir};
use crate::engine::{EngineOptions, EpochTicker, build_engine, load_component};
use crate::error::{ComponentError, LoadError};
use crate::instance_pool::ComponentHandler;
use crate::instance_state::{ComponentGrants, InstanceExtension, InstanceState};
use crate::manifest::{self, HttpRoute, LoadedManifest, Route, RoutePattern, Router};
use crate::runtime_config::RuntimeConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
pub struct HttpComponent<X: InstanceExtension> {
    pub handler: ProxyHandler<ComponentHandler<X>>,
    pub sha256: String,
}

pub struct App<X: InstanceExtension = ()> {
    pub name: String,
    /// The manifest the app was loaded from.
    pub manifest_path: PathBuf,
    pub router: Router,
    pub components: BTreeMap<String, HttpComponent<X>>,
    pub state_dir: PathBuf,
    pub deadline: Duration,
    /// How components' self requests reach the server; `serve` connects it.
    pub self_requests: SelfRequests,
    _ticker: EpochTicker,
}

/// The folder an app keeps its state in when not told where: `.spin` beside its manifest.
pub const STATE_DIR_NAME: &str = ".spin";

/// [`STATE_DIR_NAME`] in the directory of a loaded manifest.
pub fn default_state_dir(manifest: &LoadedManifest) -> PathBuf {
    manifest.base_dir().join(STATE_DIR_NAME)
}

/// The trigger type the runtime runs; a layer above may run others.
pub const HTTP_TRIGGER: &str = "http";

/// The runtime's linker: WASI 0.2 and 0.3, WASI HTTP of both generations (relative URLs
/// taken as self requests), and Spin's interfaces. Anything else a component imports fails
/// the app at start, unless the layer above adds it.
fn linker<X: InstanceExtension>(engine: &Engine) -> wasmtime::Result<Linker<InstanceState<X>>> {
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
    Ok(linker)
}

impl App<()> {
    /// A plain Spin app: Spin's interfaces and nothing else.
    pub fn load(options: &AppOptions) -> Result<Self, LoadError> {
        let mut loader = AppLoader::new(options, &[], &[])?;
        for id in loader.served().to_vec() {
            loader.add_component(&id, (), false)?;
        }
        Ok(loader.finish())
    }
}

/// An app part loaded: what its components draw their grants from is open, and the
/// components are added one by one.
pub struct AppLoader<X: InstanceExtension> {
    pub manifest: LoadedManifest,
    pub state_dir: PathBuf,
    pub runtime_config: RuntimeConfig,
    pub engine: Engine,
    /// The runtime's interfaces; the layer above adds its own before adding components.
    pub linker: Linker<InstanceState<X>>,
    pub options: AppOptions,
    served: Vec<String>,
    router: Router,
    stores: key_value::KeyValueStores,
    databases: sqlite::SqliteDatabases,
    variables: manifest::ResolvedVariables,
    /// Each component's `allowed_outbound_hosts`, templates expanded.
    outbound_hosts: BTreeMap<String, Vec<String>>,
    log_dir: Option<PathBuf>,
    self_requests: SelfRequests,
    components: BTreeMap<String, HttpComponent<X>>,
    ticker: EpochTicker,
}

impl<X: InstanceExtension> AppLoader<X> {
    /// Reads the manifest and runtime config and opens what components share.
    /// `layer_triggers` and `layer_sections` are the trigger types and runtime-config
    /// sections the layer above runs and reads, beside the runtime's own.
    pub fn new(
        options: &AppOptions,
        layer_triggers: &[&str],
        layer_sections: &[&str],
    ) -> Result<Self, LoadError> {
        let manifest = manifest::load(&options.manifest)?;
        let triggers: Vec<&str> = std::iter::once(HTTP_TRIGGER)
            .chain(layer_triggers.iter().copied())
            .collect();
        manifest.check_runnable(&triggers)?;
        let state_dir = options
            .state_dir
            .clone()
            .unwrap_or_else(|| default_state_dir(&manifest));
        create_private_dir(&state_dir)?;
        let runtime_config =
            RuntimeConfig::load_optional(options.runtime_config.as_deref(), layer_sections)?;
        let engine = build_engine(&options.engine)?;
        let ticker = EpochTicker::start(&engine);
        let linker = linker(&engine).map_err(|e| LoadError::Linker(e.into()))?;
        let stores = key_value::KeyValueStores::open(&runtime_config, &state_dir)?;
        let environment = crate::dotenv::VariableEnvironment::load(manifest.base_dir())?;
        let in_manifest = |source| LoadError::Variables {
            path: manifest.path.clone(),
            source,
        };
        let variables =
            manifest::resolve_component_variables(&manifest.manifest, &|k| environment.get(k))
                .map_err(in_manifest)?;
        let outbound_hosts = manifest::resolve_outbound_hosts(
            &manifest.manifest,
            &|k| environment.get(k),
            &variables,
        )
        .map_err(in_manifest)?;
        let log_dir = options
            .log_dir
            .resolve(&state_dir)
            .map_err(|source| LoadError::LogDir {
                path: state_dir.clone(),
                source,
            })?;

        let mut routes = Vec::new();
        let mut served = Vec::new();
        for trigger in &manifest.http_triggers {
            if !served.contains(&trigger.component) {
                served.push(trigger.component.clone());
            }
            if let HttpRoute::Path(path) = &trigger.route {
                routes.push(Route {
                    pattern: RoutePattern::parse(path).map_err(|error| LoadError::Routes {
                        path: manifest.path.clone(),
                        error,
                    })?,
                    component: trigger.component.clone(),
                });
            }
        }
        let router = Router::new(routes).map_err(|error| LoadError::Routes {
            path: manifest.path.clone(),
            error,
        })?;
        let granted_databases: Vec<&str> = served
            .iter()
            .flat_map(|id| manifest.manifest.component[id].sqlite_databases.iter())
            .map(String::as_str)
            .collect();
        let databases =
            sqlite::SqliteDatabases::open(&runtime_config, &state_dir, &granted_databases)?;
        Ok(Self {
            manifest,
            state_dir,
            runtime_config,
            engine,
            linker,
            options: options.clone(),
            served,
            router,
            stores,
            databases,
            variables,
            outbound_hosts,
            log_dir,
            self_requests: SelfRequests::default(),
            components: BTreeMap::new(),
            ticker,
        })
    }

    /// The components the HTTP triggers serve, in the manifest's order.
    pub fn served(&self) -> &[String] {
        &self.served
    }

    /// Prepares component `id` with the runtime's grants and `extension`, the layer
    /// above's; `one_request_per_instance` when its instances will hold their caller.
    pub fn add_component(
        &mut self,
        id: &str,
        extension: X,
        one_request_per_instance: bool,
    ) -> Result<(), LoadError> {
        let component = self
            .load_component(id, extension, one_request_per_instance)
            .map_err(|source| LoadError::Component {
                id: id.to_owned(),
                source: Box::new(source),
            })?;
        self.components.insert(id.to_owned(), component);
        Ok(())
    }

    pub fn finish(self) -> App<X> {
        tracing::info!(app = %self.manifest.manifest.application.name, components = self.components.len(), "application loaded");
        App {
            name: self.manifest.manifest.application.name.clone(),
            manifest_path: self.options.manifest.clone(),
            router: self.router,
            components: self.components,
            state_dir: self.state_dir,
            deadline: self.options.deadline,
            self_requests: self.self_requests,
            _ticker: self.ticker,
        }
    }

    fn load_component(
        &self,
        id: &str,
        extension: X,
        one_request_per_instance: bool,
    ) -> Result<HttpComponent<X>, ComponentError> {
        let (manifest, engine, options) = (&self.manifest, &self.engine, &self.options);
        let state_dir = &self.state_dir;
        let spec = &manifest.manifest.component[id];
        let source = manifest.component_source_path(id)?;
        let loaded = load_component(engine, &source, Some(&state_dir.join("cache")))?;
        let instance_pre = self
            .linker
            .instantiate_pre(&loaded.component)
            .map_err(|e| ComponentError::Link(e.into()))?;
        let pre = match wasmtime_wasi_http::p3::bindings::ServicePre::new(instance_pre.clone()) {
            Ok(p3) => ProxyPre::P3(p3),
            Err(_) => ProxyPre::P2(
                wasmtime_wasi_http::p2::bindings::ProxyPre::new(instance_pre)
                    .map_err(|_| ComponentError::NotHttp { path: source })?,
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
            outbound: self.outbound_grants(id)?,
            key_value: self.stores.grants_for(id, &spec.key_value_stores)?,
            sqlite: self.databases.grants_for(
                id,
                &spec.sqlite_databases,
                sqlite::QueryLimits {
                    timeout: options.deadline,
                    max_result_bytes: options.engine.max_memory_bytes,
                },
            )?,
            variables: variables::VariableGrants::new(
                self.variables.get(id).cloned().unwrap_or_default(),
            ),
            extension,
            one_request_per_instance,
            max_memory_bytes: options.engine.max_memory_bytes,
            output: ComponentOutput::open(self.log_dir.as_deref(), id)
                .map_err(ComponentError::LogFiles)?,
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
        })
    }

    /// The component's `allowed_outbound_hosts`, with every `<id>.spin.internal` it names
    /// checked to be a component of the app.
    fn outbound_grants(&self, id: &str) -> Result<OutboundGrants, ComponentError> {
        let entries = self.outbound_hosts.get(id).map_or(&[][..], Vec::as_slice);
        let grants = OutboundGrants::new(entries, self.self_requests.clone())?;
        if let Some(missing) = grants.chained_components().find(|c| {
            !self
                .manifest
                .http_triggers
                .iter()
                .any(|t| t.component.eq_ignore_ascii_case(c))
        }) {
            return Err(ComponentError::UnknownChainedComponent(missing.to_owned()));
        }
        Ok(grants)
    }
}

/// Creates the state directory `0700` if it is missing: it holds the components' stores.
fn create_private_dir(state_dir: &Path) -> Result<(), LoadError> {
    if !state_dir.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|source| LoadError::StateDir {
                path: state_dir.to_owned(),
                source,
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EngineError;

    /// Options for an app of one HTTP component `hello` on `route`, from `source`.
    fn one_component_app(dir: &Path, route: &str, source: &str) -> AppOptions {
        let manifest = format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\n[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"hello\"\n\n[component.hello]\nsource = \"{source}\"\n"
        );
        std::fs::write(dir.join("spin.toml"), manifest).unwrap();
        let mut options = AppOptions::new(dir.join("spin.toml"));
        options.engine.instance_slots = 4;
        options
    }

    #[test]
    fn a_component_whose_binary_is_missing_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let options = one_component_app(dir.path(), "/...", "missing.wasm");
        let Err(LoadError::Component { id, source }) = App::load(&options) else {
            panic!("the app loaded, or failed elsewhere than in its component");
        };
        assert_eq!(id, "hello");
        assert!(
            matches!(&*source, ComponentError::Engine(EngineError::Read { path, .. }) if path.ends_with("missing.wasm")),
            "{source}"
        );
    }

    #[test]
    fn a_route_that_does_not_parse_is_named_with_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let options = one_component_app(dir.path(), "/a/.../b", "missing.wasm");
        match App::load(&options) {
            Err(e @ LoadError::Routes { .. }) => {
                let text = e.to_string();
                assert!(
                    text.contains("spin.toml") && text.contains("`...`"),
                    "{text}"
                );
            }
            Err(other) => panic!("failed elsewhere: {other}"),
            Ok(_) => panic!("a route with `...` inside loaded"),
        }
    }
}
