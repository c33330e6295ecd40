//! The data of one component instance's store: WASI contexts and the grants the manifest
//! gives its component, copied from the per-app permission sets.

use crate::capabilities::key_value::{KeyValueGrants, KeyValueState, KeyValueView};
use crate::capabilities::mqtt::{MqttState, MqttView};
use crate::capabilities::outbound_http::{OutboundGrants, OutboundHooks};
use crate::capabilities::postgres::{PostgresState, PostgresView};
use crate::capabilities::redis::{RedisState, RedisView};
use crate::capabilities::sqlite::{SqliteGrants, SqliteInstance, SqliteState, SqliteView};
use crate::capabilities::variables::{VariableGrants, VariablesState};
use crate::component_logs::ComponentOutput;
use std::path::PathBuf;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What a layer above the runtime keeps in every instance of a component: its own grants
/// (copied from per-app permission sets, like the runtime's) and who sent the request the
/// instance serves. The runtime stores it and hands the caller in; it never reads either.
pub trait InstanceExtension: Clone + Send + Sync + 'static {
    /// Who sent a request, as the layer above learned it before the component runs.
    type Caller: Default + Send + Sync + 'static;

    /// Called as an instance starts on a request, before the guest sees it.
    fn set_caller(&mut self, caller: Self::Caller);
}

/// A plain Spin host: nothing beyond Spin's interfaces, and no caller to remember.
impl InstanceExtension for () {
    type Caller = ();

    fn set_caller(&mut self, _caller: ()) {}
}

/// Everything the manifest grants one component, computed once when the app starts.
#[derive(Clone)]
pub struct ComponentGrants<X> {
    pub id: String,
    pub environment: Vec<(String, String)>,
    /// A read-only directory mounted at `/`, holding the component's `files`.
    pub files_root: Option<PathBuf>,
    pub outbound: OutboundGrants,
    pub key_value: KeyValueGrants,
    pub sqlite: SqliteGrants,
    pub variables: VariableGrants,
    /// What the layer above grants the component.
    pub extension: X,
    /// Each instance serves one request (WASIp2 instances always do): set when an
    /// instance's state holds something of its caller, such as the client's identity.
    pub one_request_per_instance: bool,
    pub max_memory_bytes: usize,
    /// Where the component's stdout and stderr go.
    pub output: ComponentOutput,
}

pub struct InstanceState<X> {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    key_value: KeyValueGrants,
    sqlite: SqliteInstance,
    /// Connections held through Spin's service interfaces, each bounded per instance; the
    /// grants they are checked against are the outbound hooks'.
    redis_connections: usize,
    mqtt_connections: usize,
    postgres_connections: usize,
    variables: VariableGrants,
    /// The layer above's grants and the caller of the request served.
    pub extension: X,
    pub limits: StoreLimits,
}

impl<X: InstanceExtension> InstanceState<X> {
    pub fn new(grants: &ComponentGrants<X>) -> wasmtime::Result<Self> {
        let mut wasi = WasiCtxBuilder::new();
        // No files, network, arguments or environment but what the manifest declares.
        wasi.envs(&grants.environment)
            .stdout(grants.output.stdout.clone())
            .stderr(grants.output.stderr.clone());
        if let Some(root) = &grants.files_root {
            wasi.preopened_dir(root, "/", FsPerms::ReadOnly)?;
        }
        crate::capabilities::outbound_http::sockets::configure(&mut wasi, &grants.outbound);
        Ok(Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: OutboundHooks {
                grants: grants.outbound.clone(),
            },
            key_value: grants.key_value.clone(),
            sqlite: SqliteInstance::new(grants.sqlite.clone()),
            redis_connections: 0,
            mqtt_connections: 0,
            postgres_connections: 0,
            variables: grants.variables.clone(),
            extension: grants.extension.clone(),
            limits: StoreLimitsBuilder::new()
                .memory_size(grants.max_memory_bytes)
                .instances(64)
                .build(),
        })
    }
}

impl<X: Send + 'static> WasiView for InstanceState<X> {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl<X: Send + 'static> WasiHttpView for InstanceState<X> {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl<X: Send + 'static> KeyValueState for InstanceState<X> {
    fn key_value(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            grants: &self.key_value,
            table: &mut self.table,
        }
    }
}

impl<X: Send + 'static> SqliteState for InstanceState<X> {
    fn sqlite(&mut self) -> SqliteView<'_> {
        SqliteView {
            instance: &mut self.sqlite,
            table: &mut self.table,
        }
    }
}

impl<X: Send + 'static> RedisState for InstanceState<X> {
    fn redis(&mut self) -> RedisView<'_> {
        RedisView {
            grants: &self.hooks.grants,
            open_connections: &mut self.redis_connections,
            table: &mut self.table,
        }
    }
}

impl<X: Send + 'static> MqttState for InstanceState<X> {
    fn mqtt(&mut self) -> MqttView<'_> {
        MqttView {
            grants: &self.hooks.grants,
            open_connections: &mut self.mqtt_connections,
            table: &mut self.table,
        }
    }
}

impl<X: Send + 'static> PostgresState for InstanceState<X> {
    fn postgres(&mut self) -> PostgresView<'_> {
        PostgresView {
            grants: &self.hooks.grants,
            open_connections: &mut self.postgres_connections,
            table: &mut self.table,
        }
    }
}

impl<X: Send + 'static> VariablesState for InstanceState<X> {
    fn variables(&mut self) -> &VariableGrants {
        &self.variables
    }
}
