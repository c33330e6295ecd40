//! The wasmtime engine carrel runs every component on, and the on-disk cache of
//! precompiled components.

use crate::componentize::BinaryKind;
use crate::error::EngineError;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Default of `carrel up --keep-resident-mib`.
pub const DEFAULT_KEEP_RESIDENT_MIB: usize = 64;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Component instances that may exist at once (pooling allocator slots).
    pub instance_slots: u32,
    /// The largest linear memory one instance may have.
    pub max_memory_bytes: usize,
    /// Bytes of each slot's linear memory kept resident between instances.
    pub keep_resident_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            instance_slots: 256,
            max_memory_bytes: 256 << 20,
            keep_resident_bytes: DEFAULT_KEEP_RESIDENT_MIB << 20,
        }
    }
}

/// Bytes of each table slot kept resident (reset by memset, not `madvise`): more than the
/// tables of the components carrel runs use.
const TABLE_KEEP_RESIDENT_BYTES: usize = 1 << 20;

/// Builds the engine: component model with async, pooling allocator, epoch interruption.
pub fn build_engine(options: &EngineOptions) -> Result<Engine, EngineError> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    config.epoch_interruption(true);
    // `CARREL_PROFILER=perfmap` writes /tmp/perf-<pid>.map so `perf record` can name the
    // guests' JIT-compiled functions (how the ingestion path was profiled; BENCHMARKS.md).
    if std::env::var("CARREL_PROFILER").as_deref() == Ok("perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    let slots = options.instance_slots;
    let mut pooling = PoolingAllocationConfig::default();
    // A component is several core instances, memories and tables (adapters, shims).
    pooling
        .total_component_instances(slots)
        .total_core_instances(slots * 16)
        .total_memories(slots * 4)
        .total_tables(slots * 16)
        .total_stacks(slots)
        .max_memories_per_component(8)
        .max_memory_size(options.max_memory_bytes);
    // A freed slot's memory is normally handed back to the kernel and faulted in, zeroed,
    // page by page by the next instance: a fifth of the ingestion path's time went to those
    // faults. Keeping the first bytes resident (zeroed by memset instead) trades that for
    // resident memory of at most this much per slot that was ever used.
    pooling.linear_memory_keep_resident(options.keep_resident_bytes.min(options.max_memory_bytes));
    // Resetting a slot when its instance is dropped was a third of a WASIp2 request (a fresh
    // instance each): the memset of every kept byte whether touched or not (11% of a hello
    // request's samples), and the `madvise` of its tables, whose TLB shootdowns interrupt
    // the other core (13%), then write faults on the tables' pages (7%). With the kernel's
    // PAGEMAP_SCAN (Linux 6.7 and later; skipped where absent) only the pages an instance
    // wrote are reset, and tables stay resident like memory. Every instance still starts
    // from zeroed memory and tables: 6,100 -> 18,800 WASIp2 hello requests/s (BENCHMARKS.md).
    pooling.pagemap_scan(wasmtime::Enabled::Auto);
    pooling.table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    // Keep wasmtime's default 4 GiB virtual reservation per memory even though the pool
    // caps growth far lower: bounds checks are then elided behind guard pages. Reserving
    // only the cap cost WASIp3 hello throughput (0.76x -> 0.88x of `wasmtime serve`).
    Engine::new(&config).map_err(|e| EngineError::Config(e.into()))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("carrel-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawn epoch thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Number of epoch ticks in `d`, at least one.
pub fn ticks(d: Duration) -> u64 {
    (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64 + 1
}

struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        unreachable!("only the digest is used")
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// A key that changes whenever precompiled code from another engine would be unusable.
fn engine_key(engine: &Engine) -> String {
    let mut h = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut h);
    hex::encode(&h.0.finalize()[..12])
}

/// A component loaded for running, with the sha256 of its binary.
pub struct LoadedComponent {
    pub component: Component,
    pub sha256: String,
}

/// Loads a component, compiling it once per (binary, engine) and caching the native code
/// under `cache_dir`. A core module (`wasm32-wasip1`) is made a component first, as Spin
/// does ([`crate::componentize`]); its cache entry also names the adapter, so a new carrel
/// never reuses one made with another. The sha256 is always the file's, as built and
/// approved. The cache is as trusted as the carrel binary: it holds native code, so it
/// lives in the operator's state directory.
pub fn load_component(
    engine: &Engine,
    wasm: &Path,
    cache_dir: Option<&Path>,
) -> Result<LoadedComponent, EngineError> {
    let path = || wasm.to_owned();
    let bytes = std::fs::read(wasm).map_err(|source| EngineError::Read {
        path: path(),
        source,
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let kind = crate::componentize::kind(&bytes).map_err(|source| EngineError::NotWasm {
        path: path(),
        source,
    })?;
    let compile_it = || -> Result<Component, EngineError> {
        let component = crate::componentize::componentize_if_module(&bytes).map_err(|source| {
            EngineError::Componentize {
                path: path(),
                source,
            }
        })?;
        compile(engine, &component, wasm)
    };
    let Some(cache_dir) = cache_dir else {
        let component = compile_it()?;
        return Ok(LoadedComponent { component, sha256 });
    };
    let file_name = match kind {
        BinaryKind::Component => format!("{sha256}.cwasm"),
        BinaryKind::Module => format!("{sha256}-p1-{}.cwasm", crate::componentize::adapter_tag()),
    };
    let cached: PathBuf = cache_dir.join(engine_key(engine)).join(file_name);
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of an engine with the same
        // compatibility hash, into the operator's state directory (see the doc comment).
        match unsafe { Component::deserialize_file(engine, &cached) } {
            Ok(component) => return Ok(LoadedComponent { component, sha256 }),
            Err(e) => {
                tracing::warn!(path = %cached.display(), error = %e, "precompiled component unusable; recompiling")
            }
        }
    }
    let component = compile_it()?;
    let written = component
        .serialize()
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|bytes| write_atomically(&cached, &bytes));
    if let Err(e) = written {
        tracing::warn!(path = %cached.display(), error = %e, "cannot cache precompiled component");
    }
    Ok(LoadedComponent { component, sha256 })
}

fn compile(engine: &Engine, bytes: &[u8], wasm: &Path) -> Result<Component, EngineError> {
    Component::new(engine, bytes).map_err(|e| EngineError::Compile {
        path: wasm.to_owned(),
        source: e.into(),
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache path has a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small_engine() -> Engine {
        build_engine(&EngineOptions {
            instance_slots: 4,
            max_memory_bytes: 16 << 20,
            keep_resident_bytes: 0,
        })
        .unwrap()
    }

    fn cached_files(dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for sub in std::fs::read_dir(dir).unwrap() {
            for f in std::fs::read_dir(sub.unwrap().path()).unwrap() {
                files.push(f.unwrap().path());
            }
        }
        files
    }

    #[test]
    fn compiled_component_is_cached_by_engine_and_binary_and_reused() {
        let engine = small_engine();
        let cache = tempfile::tempdir().unwrap();
        let wasm = Path::new(test_programs_artifacts::SPIN5_HELLO);
        let first = load_component(&engine, wasm, Some(cache.path())).unwrap();
        let files = cached_files(cache.path());
        assert_eq!(files.len(), 1);
        assert!(files[0].ends_with(format!("{}.cwasm", first.sha256)));
        assert!(files[0].parent().unwrap().ends_with(engine_key(&engine)));
        let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();

        let second = load_component(&engine, wasm, Some(cache.path())).unwrap();
        assert_eq!(second.sha256, first.sha256);
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
            modified
        );
    }

    #[test]
    fn a_wasip1_module_is_componentized_once_and_cached_under_its_own_sha256() {
        let engine = small_engine();
        let cache = tempfile::tempdir().unwrap();
        let wasm = Path::new(test_programs_artifacts::SPIN5_VARIABLES_WASIP1);
        let first = load_component(&engine, wasm, Some(cache.path())).unwrap();
        assert_eq!(
            first.sha256,
            hex::encode(Sha256::digest(std::fs::read(wasm).unwrap()))
        );
        let files = cached_files(cache.path());
        assert_eq!(files.len(), 1);
        let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
        assert!(name.starts_with(&format!("{}-p1-", first.sha256)), "{name}");
        let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
        load_component(&engine, wasm, Some(cache.path())).unwrap();
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
            modified
        );
    }

    #[test]
    fn corrupt_cache_entry_is_recompiled() {
        let engine = small_engine();
        let cache = tempfile::tempdir().unwrap();
        let wasm = Path::new(test_programs_artifacts::SPIN5_HELLO);
        load_component(&engine, wasm, Some(cache.path())).unwrap();
        let entry = cached_files(cache.path()).remove(0);
        std::fs::write(&entry, b"not native code").unwrap();
        load_component(&engine, wasm, Some(cache.path())).unwrap();
        assert!(std::fs::metadata(&entry).unwrap().len() > 1000);
    }
}
