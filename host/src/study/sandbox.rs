//! One run of a study component: a fresh instance in a store of its own, with the study's
//! time and memory limits, the `dataset` and `log` capabilities, and WASI reduced to
//! nothing that reaches the outside: no files, no environment, no arguments, no network,
//! and clocks no finer than a day (so a study cannot time the host or learn when data
//! arrived beyond what the data says). Its random numbers come from a generator seeded by
//! the run's parameters: they tell nothing of the host, and a run repeated on the same
//! data gives the same output.

use crate::capabilities::dataset::bindings::StudyPre;
use crate::capabilities::dataset::bindings::carrel::eds::study_types::StudyError;
use crate::capabilities::dataset::{self, DatasetAccess, DatasetState, DatasetView};
use crate::capabilities::study_log::{self, StudyLog, StudyLogState};
use crate::engine::ticks;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

const DAY: Duration = Duration::from_secs(86_400);

/// Today, truncated to midnight UTC.
struct DayClock;

impl HostWallClock for DayClock {
    fn resolution(&self) -> Duration {
        DAY
    }
    fn now(&self) -> Duration {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Duration::from_secs(now.as_secs() / DAY.as_secs() * DAY.as_secs())
    }
}

/// A monotonic clock that does not move: elapsed time is not the study's business.
struct StillClock;

impl HostMonotonicClock for StillClock {
    fn resolution(&self) -> u64 {
        DAY.as_nanos() as u64
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The seed of a run's random numbers: a hash of its parameters, in order.
fn random_seed(params: &[(String, String)]) -> [u8; 32] {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(b"carrel study random\0");
    for (name, value) in params {
        for part in [name, value] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
    }
    hash.finalize().into()
}

pub struct StudyState {
    table: ResourceTable,
    wasi: WasiCtx,
    dataset: DatasetAccess,
    log: StudyLog,
    limits: StoreLimits,
}

impl WasiView for StudyState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl DatasetState for StudyState {
    fn dataset(&mut self) -> DatasetView<'_> {
        DatasetView {
            table: &mut self.table,
            access: &mut self.dataset,
        }
    }
}

impl StudyLogState for StudyState {
    fn study_log(&mut self) -> &mut StudyLog {
        &mut self.log
    }
}

/// The limits of one run, from the study's manifest.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    pub time: Duration,
    pub memory_bytes: usize,
}

/// What a run produced, whatever became of it.
pub struct SandboxOutcome {
    /// The table the study returned (Arrow IPC), or why it has none.
    pub output: Result<Vec<u8>, String>,
    pub access: DatasetAccess,
    pub log: StudyLog,
}

/// Links the study world once per engine; instances are made per run.
pub struct StudySandbox {
    engine: Engine,
    linker: Linker<StudyState>,
}

impl StudySandbox {
    pub fn new(engine: &Engine) -> anyhow::Result<Self> {
        let mut linker = Linker::new(engine);
        // Rust's standard library for wasm32-wasip2 imports WASI 0.2; the context below
        // grants none of its resources.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        dataset::add_to_linker(&mut linker)?;
        study_log::add_to_linker(&mut linker)?;
        Ok(Self {
            engine: engine.clone(),
            linker,
        })
    }

    /// Checks that `component` is a study (exports `run`, imports nothing unknown).
    pub fn check(&self, component: &Component) -> anyhow::Result<()> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)?;
        StudyPre::new(pre).map_err(|e| anyhow::anyhow!("not a carrel:eds/study component: {e}"))?;
        Ok(())
    }

    pub async fn run(
        &self,
        component: &Component,
        access: DatasetAccess,
        limits: RunLimits,
        params: &[(String, String)],
    ) -> SandboxOutcome {
        let seed = random_seed(params);
        let state = StudyState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder()
                .wall_clock(DayClock)
                .monotonic_clock(StillClock)
                .secure_random(StdRng::from_seed(seed))
                .insecure_random(StdRng::from_seed(seed))
                .insecure_random_seed(u128::from_le_bytes(
                    seed[..16].try_into().expect("16 bytes"),
                ))
                .allow_tcp(false)
                .allow_udp(false)
                .allow_ip_name_lookup(false)
                .build(),
            dataset: access,
            log: StudyLog::default(),
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(16)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(ticks(limits.time));
        store.epoch_deadline_trap();
        let outcome = async {
            let pre = StudyPre::new(self.linker.instantiate_pre(component)?)?;
            let study = pre.instantiate_async(&mut store).await?;
            study.call_run(&mut store, params).await
        }
        .await;
        let output = match outcome {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(match e {
                StudyError::InvalidParams(m) => {
                    format!("invalid parameters: {}", truncate(&m))
                }
                StudyError::Failed(m) => {
                    format!("the study failed: {}", truncate(&m))
                }
            }),
            Err(e) => Err(crate::worker::failure_reason(&e, limits.time)),
        };
        let state = store.into_data();
        SandboxOutcome {
            output,
            access: state.dataset,
            log: state.log,
        }
    }
}

fn truncate(message: &str) -> String {
    message.chars().take(500).collect()
}
