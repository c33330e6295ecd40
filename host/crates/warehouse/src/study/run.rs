//! One run of a study: the host reads the rows (only what the run's period needs), hands
//! the study the granted columns group by group, counts what it says in cells it computes
//! itself, checks on a secret sample that each group's answer depended on that group
//! alone, and releases the table through disclosure control. Whatever happens, `record`
//! says it: in full for auditors, as a fixed category for researchers.

use super::answers::{self, Counted, Rules};
use super::counting::{Counter, Grouping, Tallies};
use super::counting_thread::CountingThread;
use super::evaluation;
use super::fitting::{self, FitAccumulator};
use super::handout;
use super::locality::{self, LocalityReport, SampledGroup, Sampler};
use super::manifest::{STUDY_DATASET, Unit};
use super::model_spec::StudyKind;
use super::plan::{RunPlan, plan};
use super::reading::{BATCH_ROWS, Reader, patient_chunks, row_chunks};
use super::registry::RunRecord;
use super::release;
use super::row_keys::RowKeys;
use super::sandbox::{Failure, RunLimits, Start, StudyInstance, StudySandbox, random_seed};
use super::seeds::GroupSeeds;
use super::spec::{RunContext, StudySpec, sha256_hex};
use crate::capabilities::study_log::StudyLog;
use crate::capabilities::study_world::bindings::carrel::eds::study_types::{
    FitSpec, Model, TableSpec,
};
use crate::study::registry::RunStatus;
use arrow_array::RecordBatch;
use carrel_disclosure::Policy;
use hmac::{Hmac, Mac};
use rand::SeedableRng;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Component;

/// Why a run stopped, with what each audience is told.
#[derive(Debug)]
pub struct Stop {
    status: RunStatus,
    detail: String,
    category: String,
}

impl Stop {
    fn failed(failure: &Failure) -> Stop {
        Stop {
            status: RunStatus::Failed,
            detail: failure.detail(),
            category: failure.category().to_owned(),
        }
    }

    fn violation(detail: String) -> Stop {
        Stop {
            status: RunStatus::Failed,
            detail: format!("contract violation: {detail}"),
            category: "contract violation".into(),
        }
    }

    pub fn host(detail: String) -> Stop {
        Stop {
            status: RunStatus::Failed,
            detail,
            category: "failed".into(),
        }
    }
}

/// Everything one pass over the data needs.
struct Pass<'a> {
    sandbox: &'a StudySandbox,
    spec: &'a StudySpec,
    component: &'a Component,
    start: Start,
    rules: Rules,
    limits: RunLimits,
    started: Instant,
    seed: [u8; 32],
    granted: Vec<String>,
    seeds: GroupSeeds,
}

impl Pass<'_> {
    async fn instance(&self, log: StudyLog) -> Result<StudyInstance, (Failure, StudyLog)> {
        self.sandbox
            .instantiate(
                self.component,
                self.limits,
                self.started,
                self.seed,
                &self.start,
                log,
            )
            .await
    }

    /// The study's answer for `batch`, checked against it and sorted by row.
    async fn answer(
        &self,
        instance: &mut StudyInstance,
        batch: &RecordBatch,
        groups: Vec<u32>,
        duplicates: &mut u64,
    ) -> Result<Counted, Stop> {
        let handed = handout::consultations(batch, groups, &self.granted, &self.seeds)
            .map_err(Stop::host)?;
        let answer = instance
            .answer(&handed)
            .await
            .map_err(|f| Stop::failed(&f))?;
        answers::check(answer, batch, &self.rules, duplicates).map_err(Stop::violation)
    }
}

/// Runs the study in its sandbox, counts and releases, filling `record`; returns the
/// released table as Arrow IPC when there is one.
pub async fn execute(
    sandbox: &StudySandbox,
    spec: &StudySpec,
    component: &Component,
    context: &RunContext<'_>,
    params: &[(String, String)],
    record: &mut RunRecord,
) -> Option<Vec<u8>> {
    let plan = match plan(&spec.tool, params) {
        Ok(plan) => plan,
        Err(reason) => {
            // Nothing was read yet: the reason tells only what the researcher sent.
            record.status = RunStatus::Refused;
            record.error = Some(format!("invalid parameters: {reason}"));
            record.researcher_error = record.error.clone();
            return None;
        }
    };
    record.params = plan.effective_params();
    let mut log = StudyLog::default();
    let outcome = run_passes(sandbox, spec, component, context, &plan, record, &mut log).await;
    record.logs = log.entries;
    if log.dropped > 0 {
        record
            .logs
            .push(format!("({} more messages dropped)", log.dropped));
    }
    match outcome {
        Ok(bytes) => Some(bytes),
        Err(stop) => {
            record.status = stop.status;
            record.error = Some(stop.detail);
            record.researcher_error = Some(stop.category);
            None
        }
    }
}

/// What a study of `spec`'s kind is told before its first batch, and how its answers
/// are checked.
fn start_and_rules(
    spec: &StudySpec,
    plan: &RunPlan,
    policy: &Policy,
) -> Result<(Start, Rules), Stop> {
    let tool = &spec.tool;
    let table = tool.table();
    let wit_table = TableSpec {
        measures: table.measures.clone(),
        labels: table
            .labels
            .as_ref()
            .map(|l| l.values.clone())
            .unwrap_or_default(),
        params: plan.study_params.clone(),
    };
    Ok(match (tool.kind, &tool.model, &tool.fit) {
        (StudyKind::ModelEvaluation, Some(model), _) => {
            let onnx = read_model(spec)?;
            (
                Start::Evaluation(
                    wit_table,
                    Model {
                        onnx,
                        features: model.features.clone(),
                    },
                ),
                Rules::Evaluation {
                    bins: model.bins,
                    positive: model.outcome.clone(),
                },
            )
        }
        (StudyKind::ModelFit, _, Some(fit)) => {
            let accumulator = FitAccumulator::new(fit, policy.min_count);
            (
                Start::Fit(
                    wit_table,
                    FitSpec {
                        family: fit.family.clone(),
                        features: fit.features.clone(),
                        outcome: fit.outcome.clone(),
                    },
                ),
                Rules::Fit {
                    width: fit.features.len(),
                    indicators: accumulator.indicators().to_vec(),
                    binary: accumulator.is_binary(),
                },
            )
        }
        _ => (
            Start::Counts(wit_table),
            Rules::Counts {
                measures: table.measures.len(),
                labels: table.labels.as_ref().map_or(0, |l| l.values.len()),
            },
        ),
    })
}

/// The model file, which must still be the one approved.
fn read_model(spec: &StudySpec) -> Result<Vec<u8>, Stop> {
    let Some((sha256, path)) = &spec.model else {
        return Err(Stop::host("a model evaluation without a model file".into()));
    };
    let bytes = std::fs::read(path)
        .map_err(|e| Stop::host(format!("cannot read the model {}: {e}", path.display())))?;
    if &sha256_hex(&bytes) != sha256 {
        return Err(Stop::host(format!(
            "the model {} changed since the manifest was read",
            path.display()
        )));
    }
    Ok(bytes)
}

/// The counters of a run of `spec`'s kind.
fn counter(spec: &StudySpec, plan: &RunPlan, policy: &Policy) -> Counter {
    let tool = &spec.tool;
    match (tool.kind, &tool.model, &tool.fit) {
        (StudyKind::ModelEvaluation, Some(model), _) => {
            Counter::Tallies(evaluation::tallies(model, tool.table()))
        }
        (StudyKind::ModelFit, _, Some(fit)) => {
            Counter::Fit(Box::new(FitAccumulator::new(fit, policy.min_count)))
        }
        _ => Counter::Tallies(Tallies::new(
            tool.table(),
            vec![Grouping::new(tool.table(), "table", plan.kept.clone())],
        )),
    }
}

async fn run_passes(
    sandbox: &StudySandbox,
    spec: &StudySpec,
    component: &Component,
    context: &RunContext<'_>,
    plan: &RunPlan,
    record: &mut RunRecord,
    log: &mut StudyLog,
) -> Result<Vec<u8>, Stop> {
    let tool = &spec.tool;
    let (start, rules) = start_and_rules(spec, plan, context.policy)?;
    let pass = Pass {
        sandbox,
        spec,
        component,
        start,
        rules,
        limits: RunLimits {
            time: std::time::Duration::from_secs(tool.time_limit_seconds),
            memory_bytes: (tool.memory_limit_mb as usize) << 20,
        },
        started: Instant::now(),
        seed: random_seed(&plan.effective_params()),
        granted: tool.datasets[STUDY_DATASET].clone(),
        seeds: GroupSeeds::new(context.secret, &spec.id, &plan.study_params),
    };
    let instance = pass.instance(std::mem::take(log)).await.map_err(|(f, l)| {
        *log = l;
        Stop::failed(&f)
    })?;
    let mut main = MainPass {
        pass: &pass,
        instance,
        counter: CountingThread::spawn(counter(spec, plan, context.policy)).map_err(Stop::host)?,
        sampler: Sampler::default(),
        samples: Vec::new(),
        duplicates: 0,
        batches: 0,
    };
    let fed = feed_all(&mut main, context, spec, plan, record).await;
    let MainPass {
        instance,
        counter,
        samples,
        duplicates,
        ..
    } = main;
    *log = instance.into_log();
    let counted = counter.finish();
    if let Ok(counter) = &counted {
        record.contributions_dropped = duplicates + counter.dropped();
    }
    fed?;
    let counter = counted.map_err(Stop::host)?;
    let report = check_locality(&pass, context, samples, log).await;
    let differed = report.groups_differing > 0 || report.check_failure.is_some();
    record.locality = serde_json::to_value(&report).unwrap_or_default();
    if differed {
        return Err(Stop {
            status: RunStatus::Refused,
            detail: format!(
                "the study is not patient-local: {} of {} sampled groups got other contributions when run again apart from their neighbours{}",
                report.groups_differing,
                report.groups_checked,
                report
                    .check_failure
                    .as_deref()
                    .map(|f| format!("; a check instance failed: {f}"))
                    .unwrap_or_default()
            ),
            category: "not patient-local".into(),
        });
    }
    let refused = |reason: String| Stop {
        status: RunStatus::Refused,
        detail: format!("disclosure control refused the output: {reason}"),
        category: "refused by disclosure control".into(),
    };
    let released = match counter {
        Counter::Tallies(tallies) => {
            let groupings = tallies.into_groupings();
            let table = tool.table();
            let (raw, keys) = match (&tool.model, tool.kind) {
                (Some(model), StudyKind::ModelEvaluation) => {
                    record.model_report =
                        evaluation::report(&groupings, table, model, context.policy);
                    evaluation::raw_table(&groupings, table, model)
                }
                _ => release::raw_table(&groupings[0].tally, table, &groupings[0].kept),
            }
            .map_err(Stop::host)?;
            release::disclose(&raw, &keys, context.policy).map_err(refused)?
        }
        Counter::Fit(fit) => {
            let fitted = fitting::release(&fit, context.policy).map_err(refused)?;
            record.model_report = fitted.report;
            release::encode(&fitted.table, context.policy).map_err(refused)?
        }
    };
    record.status = RunStatus::Succeeded;
    record.output_sha256 = Some(sha256_hex(&released.bytes));
    record.rows_released = released.rows;
    record.disclosure = released.report;
    Ok(released.bytes)
}

/// The main pass: one instance fed every batch, the host's counts, and the sample kept
/// for the locality check.
struct MainPass<'a> {
    pass: &'a Pass<'a>,
    instance: StudyInstance,
    counter: CountingThread,
    sampler: Sampler,
    samples: Vec<SampledGroup>,
    duplicates: u64,
    batches: usize,
}

impl MainPass<'_> {
    async fn feed(&mut self, batch: RecordBatch, groups: Vec<u32>) -> Result<(), Stop> {
        let counted = self
            .pass
            .answer(
                &mut self.instance,
                &batch,
                groups.clone(),
                &mut self.duplicates,
            )
            .await?;
        let keys = RowKeys::of(&batch).map_err(Stop::host)?;
        // The sampled groups are copied out of the batch, so that keeping them does not
        // keep the whole batch alive.
        let mut picked = Vec::new();
        for window in groups.windows(2) {
            if self.sampler.picks(keys.patient(window[0] as usize)) {
                picked.push((window[0], window[1]));
            }
        }
        if !picked.is_empty() {
            let rows = arrow_array::UInt32Array::from_iter_values(
                picked.iter().flat_map(|&(start, end)| start..end),
            );
            let copy = Arc::new(
                arrow_select::take::take_record_batch(&batch, &rows)
                    .map_err(|e| Stop::host(e.to_string()))?,
            );
            // The check names differing patients by their pseudonym: it must be there.
            if SampledGroup::pseudonyms(&copy).is_none() {
                return Err(Stop::host("the host read no patient_id".into()));
            }
            let mut offset = 0;
            for (start, end) in picked {
                let len = end - start;
                self.samples.push(SampledGroup {
                    batch: self.batches,
                    copy: Arc::clone(&copy),
                    offset,
                    len,
                    expected: counted.of_group(start, end),
                });
                offset += len;
            }
        }
        self.counter.add(batch, counted, keys).map_err(Stop::host)?;
        self.batches += 1;
        Ok(())
    }
}

/// Reads the run's rows and feeds them to the main pass: streamed batch by batch for
/// unit `consultation`; for unit `patient`, all read first, then ordered by patient.
async fn feed_all(
    main: &mut MainPass<'_>,
    context: &RunContext<'_>,
    spec: &StudySpec,
    plan: &RunPlan,
    record: &mut RunRecord,
) -> Result<(), Stop> {
    let Some(mut reader) = Reader::open(context, spec, plan).map_err(Stop::host)? else {
        return Ok(());
    };
    match spec.tool.unit {
        Unit::Consultation => {
            while let Some(batch) = reader.next(record).map_err(Stop::host)? {
                for (chunk, groups) in row_chunks(&batch) {
                    main.feed(chunk, groups).await?;
                }
            }
            reader.finish(record);
        }
        Unit::Patient => {
            let mut batches = Vec::new();
            while let Some(batch) = reader.next(record).map_err(Stop::host)? {
                batches.push(batch);
            }
            reader.finish(record);
            for (chunk, groups) in patient_chunks(batches).map_err(Stop::host)? {
                main.feed(chunk, groups).await?;
            }
        }
    }
    Ok(())
}

/// Runs the sampled groups again in fresh instances and compares.
async fn check_locality(
    pass: &Pass<'_>,
    context: &RunContext<'_>,
    samples: Vec<SampledGroup>,
    log: &mut StudyLog,
) -> LocalityReport {
    let mut report = LocalityReport {
        sample_one_in: locality::SAMPLE_ONE_IN,
        ..LocalityReport::default()
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("operating system random source");
    let mut rng = rand::rngs::StdRng::from_seed(seed);
    let study_key = context
        .secret
        .domain_key(&format!("study:{}", pass.spec.id));
    for groups in locality::check_batches(samples, BATCH_ROWS, &mut rng) {
        report.check_instances += 1;
        report.groups_checked += groups.len() as u64;
        let parts: Vec<RecordBatch> = groups.iter().map(SampledGroup::rows).collect();
        let batch = match arrow_select::concat::concat_batches(&parts[0].schema(), &parts) {
            Ok(batch) => batch,
            Err(e) => {
                report.check_failure = Some(e.to_string());
                return report;
            }
        };
        let mut starts = vec![0u32];
        for g in &groups {
            starts.push(starts.last().expect("one") + g.len);
        }
        let mut instance = match pass.instance(std::mem::take(log)).await {
            Ok(instance) => instance,
            Err((failure, l)) => {
                *log = l;
                report.check_failure = Some(failure.detail());
                return report;
            }
        };
        let mut duplicates = 0;
        let answer = pass
            .answer(&mut instance, &batch, starts.clone(), &mut duplicates)
            .await;
        *log = instance.into_log();
        let checked = match answer {
            Ok(checked) => checked,
            Err(stop) => {
                report.check_failure = Some(stop.detail);
                return report;
            }
        };
        for (g, group) in groups.iter().enumerate() {
            if checked.of_group(starts[g], starts[g + 1]) != group.expected {
                report.groups_differing += 1;
                if report.patients_differing.len() < 20 {
                    report
                        .patients_differing
                        .push(study_pseudonym(&study_key, group.pseudonym()));
                }
            }
        }
    }
    report
}

/// The patient's pseudonym as this study's auditors name it: never the stored one.
fn study_pseudonym(key: &[u8; 32], stored: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(stored.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..12])
}
