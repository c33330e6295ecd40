//! A study's speed inside the sandbox, Python against Rust: the same batches of typed
//! consultations (4,096 rows, as a run hands them) classified by each study in one
//! instance, on one thread, as `carrel study run` calls it; handed once as one-row groups
//! (unit `consultation`: one call of the study's function per consultation) and once as
//! patients of one to four consultations (unit `patient`: one group a patient). Prints,
//! per study, the compile time (first load) and the cached load, the instantiation, the
//! consultations per second and the cost of one group call; and each study's time over
//! the first's. Rates are per second of the thread's CPU time (one core, whatever else
//! the machine runs); the wall time is printed too.
//!
//!   cargo bench -p carrel --bench python_study -- NAME=WASM... [--rows N]
//!
//! host/benches/python_study.sh builds the Rust and the Python ILI studies and runs this
//! with them.

use carrel_runtime::engine::{EngineOptions, EpochTicker, build_engine, load_component};
use carrel_warehouse::capabilities::study_log::StudyLog;
use carrel_warehouse::capabilities::study_world::bindings::carrel::eds::study_types::{
    CodeLists, Consultations, TableSpec, Texts,
};
use carrel_warehouse::study::reading::BATCH_ROWS;
use carrel_warehouse::study::sandbox::{Answer, RunLimits, Start, StudySandbox};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Codes drawn for a consultation, with weights summing to 100: about as coded and as
/// often influenza-like as the synthetic winters.
const CODES: &[(&str, u32)] = &[
    ("J111", 12),
    ("J10", 3),
    ("A09", 8),
    ("A080", 3),
    ("J21", 4),
    ("R05", 20),
    ("R509", 15),
    ("J069", 15),
    ("S61", 10),
    ("http://snomed.info/sct|6142004", 10),
];

/// How a batch's rows are grouped.
#[derive(Clone, Copy, PartialEq)]
enum Grouping {
    /// One row a group (unit `consultation`).
    Consultation,
    /// One to four rows a group, 2.5 on average (unit `patient`).
    Patient,
}

impl Grouping {
    fn name(self) -> &'static str {
        match self {
            Grouping::Consultation => "by consultation",
            Grouping::Patient => "by patient (1-4 consultations)",
        }
    }
}

/// The group boundaries of `rows` rows.
fn groups(rng: &mut StdRng, rows: usize, grouping: Grouping) -> Vec<u32> {
    match grouping {
        Grouping::Consultation => (0..=rows as u32).collect(),
        Grouping::Patient => {
            let mut bounds = vec![0u32];
            while (*bounds.last().unwrap() as usize) < rows {
                let next = *bounds.last().unwrap() + rng.random_range(1..=4);
                bounds.push(next.min(rows as u32));
            }
            bounds
        }
    }
}

/// A batch of `rows` rows drawn by `rng`, grouped by `grouping` (drawn by `grouper`, so
/// that both groupings hand the same rows).
fn batch(
    rng: &mut StdRng,
    grouper: &mut StdRng,
    rows: usize,
    seed_base: u64,
    grouping: Grouping,
) -> Consultations {
    let groups = groups(grouper, rows, grouping);
    let values: Vec<String> = CODES.iter().map(|(c, _)| (*c).to_owned()).collect();
    let mut offsets = vec![0u32];
    let mut keys = Vec::new();
    for _ in 0..rows {
        for _ in 0..[0, 1, 1, 1, 2][rng.random_range(0..5)] {
            let mut pick = rng.random_range(0..100);
            let key = CODES
                .iter()
                .position(|(_, w)| {
                    let hit = pick < *w;
                    pick = pick.saturating_sub(*w);
                    hit
                })
                .unwrap_or(0);
            keys.push(key as u32);
        }
        offsets.push(keys.len() as u32);
    }
    let empty = || Texts {
        values: Vec::new(),
        keys: Vec::new(),
    };
    Consultations {
        seeds: (0..groups.len() as u64 - 1)
            .map(|i| seed_base + i)
            .collect(),
        groups,
        date: Vec::new(),
        hour: Vec::new(),
        age_years: (0..rows)
            .map(|_| match rng.random_range(0..20) {
                0 => 255,
                _ => rng.random_range(0..91),
            })
            .collect(),
        sex: empty(),
        departement: empty(),
        visit_type: empty(),
        association: empty(),
        outcome: empty(),
        diagnoses: CodeLists {
            values,
            offsets,
            keys,
        },
    }
}

struct Measured {
    name: String,
    grouping: Grouping,
    groups: usize,
    compile: Duration,
    cached: Duration,
    instantiate: Duration,
    /// CPU time of this thread, and wall time, of classifying every batch.
    classify: Duration,
    wall: Duration,
    contributions: usize,
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `now`, which lives across the call.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn main() -> anyhow::Result<()> {
    let mut studies: Vec<(String, PathBuf)> = Vec::new();
    let mut rows = 1_000_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = args.next().expect("--rows N").parse()?,
            "--bench" => {}
            other => match other.split_once('=') {
                Some((name, wasm)) => studies.push((name.to_owned(), wasm.into())),
                None => anyhow::bail!("`{other}`: give studies as NAME=WASM"),
            },
        }
    }
    anyhow::ensure!(!studies.is_empty(), "give studies as NAME=WASM");
    let engine = build_engine(&EngineOptions {
        instance_slots: 4,
        max_memory_bytes: 256 << 20,
        keep_resident_bytes: 0,
    })?;
    let _ticker = EpochTicker::start(&engine);
    let sandbox = StudySandbox::new(&engine)?;
    let cache = tempfile::tempdir()?;
    let start = Start::Counts(TableSpec {
        measures: ["coded", "ili", "gastro", "bronchiolitis"]
            .map(String::from)
            .to_vec(),
        labels: Vec::new(),
        params: Vec::new(),
    });
    let limits = RunLimits {
        time: Duration::from_secs(600),
        memory_bytes: 256 << 20,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Each study compiled once (into the cache, as a run's first load does), then loaded
    // from the cache as every later run does.
    let mut components = Vec::new();
    for (name, wasm) in &studies {
        let started = Instant::now();
        load_component(&engine, wasm, Some(cache.path()))?;
        let compile = started.elapsed();
        let started = Instant::now();
        let component = load_component(&engine, wasm, Some(cache.path()))?.component;
        let cached = started.elapsed();
        components.push((name, component, compile, cached));
    }
    let mut measured = Vec::new();
    for grouping in [Grouping::Consultation, Grouping::Patient] {
        // The same rows for every study and grouping (the same seeds draw them).
        let mut rng = StdRng::seed_from_u64(7);
        let mut grouper = StdRng::seed_from_u64(8);
        let batches: Vec<Consultations> = (0..rows.div_ceil(BATCH_ROWS))
            .map(|b| {
                let n = BATCH_ROWS.min(rows - b * BATCH_ROWS);
                batch(&mut rng, &mut grouper, n, (b * BATCH_ROWS) as u64, grouping)
            })
            .collect();
        let groups = batches.iter().map(|b| b.groups.len() - 1).sum();
        for (name, component, compile, cached) in &components {
            let (instantiate, classify, wall, contributions) = runtime.block_on(async {
                let started = Instant::now();
                let mut instance = sandbox
                    .instantiate(
                        component,
                        limits,
                        Instant::now(),
                        [0; 32],
                        &start,
                        StudyLog::default(),
                    )
                    .await
                    .map_err(|(f, _)| anyhow::anyhow!("{name}: {}", f.detail()))?;
                let instantiate = started.elapsed();
                let started = Instant::now();
                let cpu = thread_cpu_time();
                let mut contributions = 0;
                for batch in &batches {
                    match instance
                        .answer(batch)
                        .await
                        .map_err(|f| anyhow::anyhow!("{name}: {}", f.detail()))?
                    {
                        Answer::Contributions(c) => contributions += c.len(),
                        _ => anyhow::bail!("{name}: not a counting study"),
                    }
                }
                let classify = thread_cpu_time() - cpu;
                anyhow::Ok((instantiate, classify, started.elapsed(), contributions))
            })?;
            measured.push(Measured {
                name: name.to_string(),
                grouping,
                groups,
                compile: *compile,
                cached: *cached,
                instantiate,
                classify,
                wall,
                contributions,
            });
        }
    }
    for m in &measured {
        let reference = measured
            .iter()
            .find(|r| r.grouping == m.grouping)
            .expect("the first study of the grouping");
        let seconds = m.classify.as_secs_f64();
        println!(
            "{} {}: compile {:.2} s, cached load {:.3} s, instantiate {:.1} ms; {rows} consultations in {} groups in {seconds:.3} s of CPU ({:.3} s wall) = {:.0} consultations/s, {:.2} µs a group call, {} contributions; {:.2}x {}",
            m.name,
            m.grouping.name(),
            m.compile.as_secs_f64(),
            m.cached.as_secs_f64(),
            m.instantiate.as_secs_f64() * 1e3,
            m.groups,
            m.wall.as_secs_f64(),
            rows as f64 / seconds,
            seconds / m.groups as f64 * 1e6,
            m.contributions,
            seconds / reference.classify.as_secs_f64(),
            reference.name,
        );
    }
    Ok(())
}
