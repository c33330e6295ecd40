//! Runs the pseudonymiser component: a fresh instance per batch, importing only
//! `carrel:eds/keyed-hash` (plus the WASI its standard library needs, with no files, no
//! environment and no network), bounded in time and memory.

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../../wit",
        world: "carrel:eds/pseudonymiser",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "carrel:eds/types": crate::ingest::bindings::carrel::eds::types,
            "carrel:eds/keyed-hash": crate::capabilities::keyed_hash::interface,
        },
    });
}

use super::IngestSetupError;
use crate::capabilities::keyed_hash::KeyedHashGrants;
use crate::ingest::bindings::carrel::eds::types::IdentifiedConsultation;
use carrel_runtime::engine::ticks;
use std::time::Duration;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub struct PseudonymiserState {
    table: ResourceTable,
    wasi: WasiCtx,
    keyed_hash: KeyedHashGrants,
    limits: StoreLimits,
}

impl WasiView for PseudonymiserState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

pub struct Pseudonymiser {
    engine: Engine,
    pre: bindings::PseudonymiserPre<PseudonymiserState>,
    grants: KeyedHashGrants,
    deadline: Duration,
    max_memory_bytes: usize,
}

impl Pseudonymiser {
    pub fn new(
        engine: &Engine,
        component: &wasmtime::component::Component,
        grants: KeyedHashGrants,
        deadline: Duration,
        max_memory_bytes: usize,
    ) -> Result<Self, IngestSetupError> {
        let link = |e: wasmtime::Error| IngestSetupError::Link(e.into());
        let mut linker: Linker<PseudonymiserState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        crate::capabilities::keyed_hash::add_to_linker(&mut linker, |s| &s.keyed_hash)
            .map_err(link)?;
        let pre = linker.instantiate_pre(component).map_err(link)?;
        let pre = bindings::PseudonymiserPre::new(pre)
            .map_err(|e| IngestSetupError::NotPseudonymiser(e.to_string()))?;
        Ok(Self {
            engine: engine.clone(),
            pre,
            grants,
            deadline,
            max_memory_bytes,
        })
    }

    /// Canonical rows as Arrow IPC, or why the component failed (a short reason).
    pub async fn run(
        &self,
        association: &str,
        rows: &[IdentifiedConsultation],
    ) -> Result<Vec<u8>, String> {
        let state = PseudonymiserState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            keyed_hash: self.grants.clone(),
            limits: StoreLimitsBuilder::new()
                .memory_size(self.max_memory_bytes)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(self.deadline));
        store.epoch_deadline_trap();
        let outcome = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance
                .call_pseudonymise(&mut store, association, rows)
                .await
        }
        .await;
        match outcome {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(message)) => Err(message.chars().take(300).collect()),
            Err(e) => Err(carrel_runtime::guest_failure::failure_reason(
                &e,
                self.deadline,
            )),
        }
    }
}
