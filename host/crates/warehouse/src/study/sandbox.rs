//! Instances of a study component: each in a store of its own, with the study's time and
//! memory limits, the `log` capability, and WASI reduced to nothing that reaches the
//! outside. The interfaces linked are WASI 0.2's (what Rust's standard library for
//! wasm32-wasip2 and componentize-py's CPython import, and nothing more), each granting
//! nothing: no preopened directory (every path is "not found"), no environment variable,
//! no argument, no standard input, every socket refused; standard output and error become
//! the study's log (bounded, for auditors). The wall clock reads the run's start,
//! truncated to the day, and the monotonic clock does not move, so a study can neither
//! time the host nor see a run cross midnight between its main pass and its checks. Random
//! numbers come from a generator seeded by the run's parameters (and the SDKs reseed per
//! group with the seed the host hands with it): they tell nothing of the host, and a run
//! repeated on the same data gives the same output.

use super::model_spec::StudyKind;
use crate::capabilities::study_log::{self, SharedLog, Stdio, StudyLog, StudyLogState};
use crate::capabilities::study_world::bindings::carrel::eds::study_types::{
    Consultations, Contribution, FitSpec, Model, ModelSummary, RowFeatures, RowScore, StudyError,
    TableSpec,
};
use crate::capabilities::study_world::bindings::{Study, StudyPre};
use crate::capabilities::study_world::evaluation::{ModelEvaluation, ModelEvaluationPre};
use crate::capabilities::study_world::fit::{ModelFit, ModelFitPre};
use carrel_runtime::engine::ticks;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

const DAY: Duration = Duration::from_secs(86_400);

/// The run's start, truncated to midnight UTC, for every instance of the run.
struct RunDayClock(Duration);

impl RunDayClock {
    /// The day `started` fell on. An `Instant` has no date: the process's first reading of
    /// both clocks maps it, so every instance of one run sees the same day, even one made
    /// after midnight.
    fn of(started: Instant) -> Self {
        static ANCHOR: std::sync::LazyLock<(Instant, std::time::SystemTime)> =
            std::sync::LazyLock::new(|| (Instant::now(), std::time::SystemTime::now()));
        let (instant, system) = *ANCHOR;
        let wall = match started.checked_duration_since(instant) {
            Some(after) => system + after,
            None => system - instant.duration_since(started),
        };
        let since_epoch = wall
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(Duration::from_secs(
            since_epoch.as_secs() / DAY.as_secs() * DAY.as_secs(),
        ))
    }
}

impl HostWallClock for RunDayClock {
    fn resolution(&self) -> Duration {
        DAY
    }
    fn now(&self) -> Duration {
        self.0
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
    log: SharedLog,
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
    fn study_log(&mut self) -> &SharedLog {
        &self.log
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
            detail: carrel_runtime::guest_failure::failure_reason(e, time),
            timed_out: carrel_runtime::guest_failure::timed_out(e),
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

/// Links the study worlds once per engine; instances are made per pass.
pub struct StudySandbox {
    engine: Engine,
    linker: Linker<StudyState>,
}

/// What an instance is told before its first batch: its table, and for a model study
/// the model or the regression.
pub enum Start {
    Counts(TableSpec),
    Evaluation(TableSpec, Model),
    Fit(TableSpec, FitSpec),
}

impl Start {
    fn kind(&self) -> StudyKind {
        match self {
            Start::Counts(_) => StudyKind::Counts,
            Start::Evaluation(..) => StudyKind::ModelEvaluation,
            Start::Fit(..) => StudyKind::ModelFit,
        }
    }
}

/// A study's answer for one batch, by kind.
pub enum Answer {
    Contributions(Vec<Contribution>),
    Scores(Vec<RowScore>),
    Features(Vec<RowFeatures>),
}

/// The instance of one of the study worlds.
enum Guest {
    Counts(Study),
    Evaluation(ModelEvaluation),
    Fit(ModelFit),
}

/// A component pre-linked for the world of its kind.
enum Pre {
    Counts(StudyPre<StudyState>),
    Evaluation(ModelEvaluationPre<StudyState>),
    Fit(ModelFitPre<StudyState>),
}

/// One live instance of a study, with the run's deadline.
pub struct StudyInstance {
    store: Store<StudyState>,
    guest: Guest,
    time: Duration,
}

/// Why a component cannot run as a study.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Linking the sandbox's interfaces, or the component's imports against them.
    #[error(transparent)]
    Link(carrel_runtime::error::BoxError),
    #[error("not a carrel:eds/{world} component (kind = \"{kind}\"): {reason}")]
    NotThisKind {
        world: &'static str,
        kind: &'static str,
        reason: String,
    },
}

impl StudySandbox {
    pub fn new(engine: &Engine) -> Result<Self, SandboxError> {
        let link = |e: wasmtime::Error| SandboxError::Link(e.into());
        let mut linker = Linker::new(engine);
        // Rust's standard library for wasm32-wasip2 imports WASI 0.2; the context below
        // grants none of its resources.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        study_log::add_to_linker(&mut linker).map_err(link)?;
        Ok(Self {
            engine: engine.clone(),
            linker,
        })
    }

    /// Checks that `component` is a study of `kind` (exports its world's functions,
    /// imports nothing unknown).
    pub fn check(&self, component: &Component, kind: StudyKind) -> Result<(), SandboxError> {
        self.pre(component, kind)?;
        Ok(())
    }

    fn pre(&self, component: &Component, kind: StudyKind) -> Result<Pre, SandboxError> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| SandboxError::Link(e.into()))?;
        let not = |world: &'static str, e: wasmtime::Error| SandboxError::NotThisKind {
            world,
            kind: kind.as_str(),
            reason: e.to_string(),
        };
        Ok(match kind {
            StudyKind::Counts => Pre::Counts(StudyPre::new(pre).map_err(|e| not("study", e))?),
            StudyKind::ModelEvaluation => Pre::Evaluation(
                ModelEvaluationPre::new(pre).map_err(|e| not("model-evaluation", e))?,
            ),
            StudyKind::ModelFit => {
                Pre::Fit(ModelFitPre::new(pre).map_err(|e| not("model-fit", e))?)
            }
        })
    }

    fn store(
        &self,
        limits: RunLimits,
        started: Instant,
        seed: [u8; 32],
        log: StudyLog,
    ) -> Store<StudyState> {
        let log = SharedLog::new(log);
        let state = StudyState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder()
                .wall_clock(RunDayClock::of(started))
                .stdout(log.stream(Stdio::Stdout))
                .stderr(log.stream(Stdio::Stderr))
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
        store
    }

    /// A fresh instance that has been told `start`. `started` is when the run began:
    /// the instance gets what is left of the run's time. `log` is moved in and handed
    /// back by [`StudyInstance::into_log`], or with the failure.
    pub async fn instantiate(
        &self,
        component: &Component,
        limits: RunLimits,
        started: Instant,
        seed: [u8; 32],
        start: &Start,
        log: StudyLog,
    ) -> Result<StudyInstance, (Failure, StudyLog)> {
        let mut store = self.store(limits, started, seed, log);
        let pre = match self.pre(component, start.kind()) {
            Ok(pre) => pre,
            Err(e) => {
                let failure = Failure::Trap {
                    detail: e.to_string(),
                    timed_out: false,
                };
                return Err((failure, store.into_data().log.take()));
            }
        };
        let guest = match pre {
            Pre::Counts(pre) => pre.instantiate_async(&mut store).await.map(Guest::Counts),
            Pre::Evaluation(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Guest::Evaluation),
            Pre::Fit(pre) => pre.instantiate_async(&mut store).await.map(Guest::Fit),
        };
        let guest = match guest {
            Ok(guest) => guest,
            Err(e) => {
                let failure = Failure::trap(&e, limits.time);
                return Err((failure, store.into_data().log.take()));
            }
        };
        let mut instance = StudyInstance {
            store,
            guest,
            time: limits.time,
        };
        let started = match (&instance.guest, start) {
            (Guest::Counts(g), Start::Counts(table)) => {
                g.call_start(&mut instance.store, table).await
            }
            (Guest::Evaluation(g), Start::Evaluation(table, model)) => {
                g.call_start(&mut instance.store, table, model).await
            }
            (Guest::Fit(g), Start::Fit(table, fit)) => {
                g.call_start(&mut instance.store, table, fit).await
            }
            _ => unreachable!("the guest was pre-linked for the start's kind"),
        };
        match instance.answer_of(started) {
            Ok(()) => Ok(instance),
            Err(failure) => Err((failure, instance.into_log())),
        }
    }

    /// Runs a `model-evaluation` study's `check` on `model` alone, in a fresh sandbox
    /// with the study's limits: the host never parses a model file itself.
    pub async fn check_model(
        &self,
        component: &Component,
        limits: RunLimits,
        model: &Model,
    ) -> Result<ModelSummary, Failure> {
        let mut store = self.store(limits, Instant::now(), [0; 32], StudyLog::default());
        let pre = match self.pre(component, StudyKind::ModelEvaluation) {
            Ok(Pre::Evaluation(pre)) => pre,
            Ok(_) => unreachable!("pre-linked for model-evaluation"),
            Err(e) => {
                return Err(Failure::Trap {
                    detail: e.to_string(),
                    timed_out: false,
                });
            }
        };
        let guest = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| Failure::trap(&e, limits.time))?;
        match guest.call_check(&mut store, model).await {
            Ok(Ok(summary)) => Ok(summary),
            Ok(Err(StudyError::Failed(message))) => Err(Failure::Study(message)),
            Err(e) => Err(Failure::trap(&e, limits.time)),
        }
    }
}

impl StudyInstance {
    /// The study's answer for `batch`: its contributions, scores or feature vectors.
    pub async fn answer(&mut self, batch: &Consultations) -> Result<Answer, Failure> {
        let answer = match &self.guest {
            Guest::Counts(g) => g
                .call_classify(&mut self.store, batch)
                .await
                .map(|a| a.map(Answer::Contributions)),
            Guest::Evaluation(g) => g
                .call_score(&mut self.store, batch)
                .await
                .map(|a| a.map(Answer::Scores)),
            Guest::Fit(g) => g
                .call_features(&mut self.store, batch)
                .await
                .map(|a| a.map(Answer::Features)),
        };
        self.answer_of(answer)
    }

    fn answer_of<T>(&self, answer: wasmtime::Result<Result<T, StudyError>>) -> Result<T, Failure> {
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(StudyError::Failed(message))) => Err(Failure::Study(message)),
            Err(e) => Err(Failure::trap(&e, self.time)),
        }
    }

    /// The log, to pass on to the run's next instance or to the run record.
    pub fn into_log(self) -> StudyLog {
        self.store.into_data().log.take()
    }
}

fn truncate(message: &str) -> String {
    message.chars().take(500).collect()
}
