//! The data of one component instance's store: WASI contexts and the grants the manifest
//! gives its component, copied from the per-app permission sets.

use crate::capabilities::ingest::{IngestGrant, IngestState, IngestView};
use crate::capabilities::key_value::{KeyValueGrants, KeyValueState, KeyValueView};
use crate::capabilities::mqtt::{MqttState, MqttView};
use crate::capabilities::outbound_http::{OutboundGrants, OutboundHooks};
use crate::capabilities::postgres::{PostgresState, PostgresView};
use crate::capabilities::redis::{RedisState, RedisView};
use crate::capabilities::sqlite::{SqliteGrants, SqliteInstance, SqliteState, SqliteView};
use crate::capabilities::variables::{VariableGrants, VariablesState};
use crate::component_logs::ComponentOutput;
use crate::tokens::{Principal, Role};
use std::path::PathBuf;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Everything the manifest grants one component, computed once when the app starts.
#[derive(Clone)]
pub struct ComponentGrants {
    pub id: String,
    pub environment: Vec<(String, String)>,
    /// A read-only directory mounted at `/`, holding the component's `files`.
    pub files_root: Option<PathBuf>,
    pub outbound: OutboundGrants,
    pub key_value: KeyValueGrants,
    pub sqlite: SqliteGrants,
    pub variables: VariableGrants,
    pub ingest: IngestGrant,
    /// The token role a request needs to reach this component, if any.
    pub auth: Option<Role>,
    pub max_memory_bytes: usize,
    /// Where the component's stdout and stderr go.
    pub output: ComponentOutput,
}

pub struct InstanceState {
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
    ingest: IngestGrant,
    /// Who sent the request this instance serves (instances of authenticated components
    /// serve one request each, so this is never another client's).
    pub principal: Option<Principal>,
    pub limits: StoreLimits,
}

impl InstanceState {
    pub fn new(grants: &ComponentGrants) -> anyhow::Result<Self> {
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
            ingest: grants.ingest.clone(),
            principal: None,
            limits: StoreLimitsBuilder::new()
                .memory_size(grants.max_memory_bytes)
                .instances(64)
                .build(),
        })
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl KeyValueState for InstanceState {
    fn key_value(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            grants: &self.key_value,
            table: &mut self.table,
        }
    }
}

impl SqliteState for InstanceState {
    fn sqlite(&mut self) -> SqliteView<'_> {
        SqliteView {
            instance: &mut self.sqlite,
            table: &mut self.table,
        }
    }
}

impl RedisState for InstanceState {
    fn redis(&mut self) -> RedisView<'_> {
        RedisView {
            grants: &self.hooks.grants,
            open_connections: &mut self.redis_connections,
            table: &mut self.table,
        }
    }
}

impl MqttState for InstanceState {
    fn mqtt(&mut self) -> MqttView<'_> {
        MqttView {
            grants: &self.hooks.grants,
            open_connections: &mut self.mqtt_connections,
            table: &mut self.table,
        }
    }
}

impl PostgresState for InstanceState {
    fn postgres(&mut self) -> PostgresView<'_> {
        PostgresView {
            grants: &self.hooks.grants,
            open_connections: &mut self.postgres_connections,
            table: &mut self.table,
        }
    }
}

impl VariablesState for InstanceState {
    fn variables(&mut self) -> &VariableGrants {
        &self.variables
    }
}

impl IngestState for InstanceState {
    fn ingest(&mut self) -> IngestView<'_> {
        IngestView {
            grant: &self.ingest,
            principal: self.principal.as_ref(),
        }
    }
}
