//! Instances of a study component: each in a store of its own, with the study's time and
//! memory limits, the `log` capability, and WASI reduced to nothing that reaches the
//! outside: no files, no environment, no arguments, no network,
//! and clocks no finer than a day (so a study cannot time the host or learn when data
//! arrived beyond what the data says). Its random numbers come from a generator seeded by
//! the run's parameters: they tell nothing of the host, and a run repeated on the same
//! data gives the same output.

use crate::capabilities::study_log::{self, StudyLog, StudyLogState};
use crate::capabilities::study_world::bindings::carrel::eds::study_types::{
    Consultations, Contribution, StudyError, TableSpec,
};
use crate::capabilities::study_world::bindings::{Study, StudyPre};
use crate::engine::ticks;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::{Duration, Instant};
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
pub fn random_seed(params: &[(String, String)]) -> [u8; 32] {
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

impl StudyLogState for StudyState {
    fn study_log(&mut self) -> &mut StudyLog {
        &mut self.log
    }
}

/// The limits of one run, from the study's manifest: the time covers every instance of
/// the run, main pass and checks together.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    pub time: Duration,
    pub memory_bytes: usize,
}

/// Why a call into the study gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The study returned an error; its text is for auditors only.
    Study(String),
    /// It trapped or ran out of time: the host's description.
    Trap { detail: String, timed_out: bool },
}

impl Failure {
    /// A trap or host error, classified from the error itself, not from its text.
    fn trap(e: &wasmtime::Error, time: Duration) -> Failure {
        Failure::Trap {
            detail: crate::worker::failure_reason(e, time),
            timed_out: crate::worker::timed_out(e),
        }
    }

    /// The text kept for auditors.
    pub fn detail(&self) -> String {
        match self {
            Failure::Study(m) => format!("the study failed: {}", truncate(m)),
            Failure::Trap { detail, .. } => detail.clone(),
        }
    }

    /// The fixed category a researcher is told. A guest that exhausts its memory aborts
    /// like one that panics, so both are `failed`.
    pub fn category(&self) -> &'static str {
        match self {
            Failure::Trap {
                timed_out: true, ..
            } => "timed out",
            _ => "failed",
        }
    }
}

/// Links the study world once per engine; instances are made per pass.
pub struct StudySandbox {
    engine: Engine,
    linker: Linker<StudyState>,
}

/// One live instance of a study, with the run's deadline.
pub struct StudyInstance {
    store: Store<StudyState>,
    study: Study,
    time: Duration,
}

impl StudySandbox {
    pub fn new(engine: &Engine) -> anyhow::Result<Self> {
        let mut linker = Linker::new(engine);
        // Rust's standard library for wasm32-wasip2 imports WASI 0.2; the context below
        // grants none of its resources.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        study_log::add_to_linker(&mut linker)?;
        Ok(Self {
            engine: engine.clone(),
            linker,
        })
    }

    /// Checks that `component` is a study (exports `start` and `classify`, imports
    /// nothing unknown).
    pub fn check(&self, component: &Component) -> anyhow::Result<()> {
        self.pre(component)?;
        Ok(())
    }

    fn pre(&self, component: &Component) -> anyhow::Result<StudyPre<StudyState>> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(anyhow::Error::from)?;
        StudyPre::new(pre).map_err(|e| anyhow::anyhow!("not a carrel:eds/study component: {e}"))
    }

    /// A fresh instance that has been told its table. `started` is when the run began:
    /// the instance gets what is left of the run's time. `log` is moved in and handed
    /// back by [`StudyInstance::into_log`], or with the failure.
    pub async fn instantiate(
        &self,
        component: &Component,
        limits: RunLimits,
        started: Instant,
        seed: [u8; 32],
        table: &TableSpec,
        log: StudyLog,
    ) -> Result<StudyInstance, (Failure, StudyLog)> {
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
            log,
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(16)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let left = limits.time.saturating_sub(started.elapsed());
        store.set_epoch_deadline(ticks(left).max(1));
        store.epoch_deadline_trap();
        let pre = match self.pre(component) {
            Ok(pre) => pre,
            Err(e) => {
                let failure = Failure::Trap {
                    detail: e.to_string(),
                    timed_out: false,
                };
                return Err((failure, store.into_data().log));
            }
        };
        let study = match pre.instantiate_async(&mut store).await {
            Ok(study) => study,
            Err(e) => {
                let failure = Failure::trap(&e, limits.time);
                return Err((failure, store.into_data().log));
            }
        };
        let mut instance = StudyInstance {
            store,
            study,
            time: limits.time,
        };
        let started = instance.study.call_start(&mut instance.store, table).await;
        match instance.answer(started) {
            Ok(()) => Ok(instance),
            Err(failure) => Err((failure, instance.into_log())),
        }
    }
}

impl StudyInstance {
    /// The study's contributions for `batch`.
    pub async fn classify(&mut self, batch: &Consultations) -> Result<Vec<Contribution>, Failure> {
        let answer = self.study.call_classify(&mut self.store, batch).await;
        self.answer(answer)
    }

    fn answer<T>(&self, answer: wasmtime::Result<Result<T, StudyError>>) -> Result<T, Failure> {
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(StudyError::Failed(message))) => Err(Failure::Study(message)),
            Err(e) => Err(Failure::trap(&e, self.time)),
        }
    }

    /// The log, to pass on to the run's next instance or to the run record.
    pub fn into_log(self) -> StudyLog {
        self.store.into_data().log
    }
}

fn truncate(message: &str) -> String {
    message.chars().take(500).collect()
}
