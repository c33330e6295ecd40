//! Compiled studies kept in memory between runs: a run of an unchanged binary reuses its
//! component instead of reading and deserialising (or compiling) it again. One entry per
//! study, replaced when its binary's sha256 changes, so the cache is bounded by the
//! manifest.

use carrel_runtime::engine::{LoadedComponent, load_component};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Default)]
pub struct CompiledStudies {
    by_study: Mutex<HashMap<String, (String, Component)>>,
}

impl CompiledStudies {
    /// The component of study `id` from `source`, whose bytes must hash to `sha256` (the
    /// binary checked for approval): reused when it was compiled before.
    pub fn load(
        &self,
        id: &str,
        sha256: &str,
        engine: &Engine,
        source: &Path,
        cache_dir: &Path,
    ) -> Result<LoadedComponent, carrel_runtime::error::EngineError> {
        if let Some((hash, component)) = self.lock().get(id)
            && hash == sha256
        {
            return Ok(LoadedComponent {
                component: component.clone(),
                sha256: hash.clone(),
            });
        }
        let loaded = load_component(engine, source, Some(cache_dir))?;
        if loaded.sha256 == sha256 {
            self.lock().insert(
                id.to_owned(),
                (loaded.sha256.clone(), loaded.component.clone()),
            );
        }
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Component)>> {
        self.by_study.lock().unwrap_or_else(|p| p.into_inner())
    }
}
