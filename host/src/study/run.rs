//! One run of a study: the host reads the rows (only what the run's period needs), hands
//! the study the granted columns group by group, counts what it says in cells it computes
//! itself, checks on a secret sample that each group's answer depended on that group
//! alone, and releases the table through disclosure control. Whatever happens, `record`
//! says it: in full for auditors, as a fixed category for researchers.

use super::desk::{RunContext, StudySpec};
use super::handout;
use super::locality::{self, GroupContribution, LocalityReport, SampledGroup, Sampler};
use super::manifest::{STUDY_DATASET, Unit};
use super::plan::{RunPlan, plan};
use super::registry::RunRecord;
use super::release;
use super::sandbox::{Failure, RunLimits, StudyInstance, StudySandbox, random_seed};
use super::tally::{Checked, Tally, patient_key};
use crate::capabilities::study_log::StudyLog;
use crate::capabilities::study_world::bindings::carrel::eds::study_types::{Contribution, TableSpec};
use arrow_array::cast::AsArray;
use arrow_array::RecordBatch;
use carrel_vault::{DateRange, ScanOptions};
use hmac::{Hmac, Mac};
use rand::SeedableRng;
use sha2::Sha256;
use std::time::Instant;
use wasmtime::component::Component;

/// Rows handed to a study in one call.
pub const BATCH_ROWS: usize = 4096;

/// Follows a run's reading: the segments the scan will decrypt, then the segments and
/// rows read. Only numbers, never data.
pub trait ReadObserver: Send + Sync {
    fn planned(&self, segments: u64);
    fn read(&self, segments: u64, rows: u64);
}

/// Why a run stopped, with what each audience is told.
struct Stop {
    status: &'static str,
    detail: String,
    category: String,
}

impl Stop {
    fn failed(failure: &Failure) -> Stop {
        Stop {
            status: "failed",
            detail: failure.detail(),
            category: failure.category().to_owned(),
        }
    }

    fn violation(detail: String) -> Stop {
        Stop {
            status: "failed",
            detail: format!("contract violation: {detail}"),
            category: "contract violation".into(),
        }
    }

    fn host(detail: String) -> Stop {
        Stop {
            status: "failed",
            detail,
            category: "failed".into(),
        }
    }
}

/// Everything one pass over the data needs.
struct Pass<'a> {
    sandbox: &'a StudySandbox,
    component: &'a Component,
    spec: &'a StudySpec,
    table: TableSpec,
    limits: RunLimits,
    started: Instant,
    seed: [u8; 32],
    granted: Vec<String>,
}

impl Pass<'_> {
    async fn instance(&self, log: StudyLog) -> Result<StudyInstance, (Failure, StudyLog)> {
        self.sandbox
            .instantiate(
                self.component,
                self.limits,
                self.started,
                self.seed,
                &self.table,
                log,
            )
            .await
    }

    /// The study's contributions for `batch`, checked and sorted, one per row and measure.
    async fn classify(
        &self,
        instance: &mut StudyInstance,
        batch: &RecordBatch,
        groups: Vec<u32>,
        duplicates: &mut u64,
    ) -> Result<Vec<Checked>, Stop> {
        let handed = handout::consultations(batch, groups, &self.granted).map_err(Stop::host)?;
        let answer = instance
            .classify(&handed)
            .await
            .map_err(|f| Stop::failed(&f))?;
        check(answer, batch.num_rows(), &self.table, duplicates).map_err(Stop::violation)
    }
}

/// Checks a study's answer against the batch it was given, sorts it and keeps one
/// contribution per row and measure.
fn check(
    answer: Vec<Contribution>,
    rows: usize,
    table: &TableSpec,
    duplicates: &mut u64,
) -> Result<Vec<Checked>, String> {
    let labels = table.labels.len().max(1);
    let mut checked = Vec::with_capacity(answer.len());
    for c in answer {
        if c.row as usize >= rows {
            return Err(format!(
                "a contribution names row {} of a batch of {rows} rows",
                c.row
            ));
        }
        if c.measure as usize >= table.measures.len() {
            return Err(format!("a contribution names measure {}", c.measure));
        }
        if c.label as usize >= labels {
            return Err(format!("a contribution names label {}", c.label));
        }
        checked.push(Checked {
            row: c.row,
            measure: c.measure,
            label: c.label,
        });
    }
    checked.sort_unstable();
    let before = checked.len();
    checked.dedup_by_key(|c| (c.row, c.measure));
    *duplicates += (before - checked.len()) as u64;
    Ok(checked)
}

/// The contributions of rows `start..end`, as offsets into the group.
fn of_group(checked: &[Checked], start: u32, end: u32) -> Vec<GroupContribution> {
    let first = checked.partition_point(|c| c.row < start);
    checked[first..]
        .iter()
        .take_while(|c| c.row < end)
        .map(|c| (c.row - start, c.measure, c.label))
        .collect()
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
            record.status = "refused".into();
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
            record.status = stop.status.into();
            record.error = Some(stop.detail);
            record.researcher_error = Some(stop.category);
            None
        }
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
    let granted = tool.datasets[STUDY_DATASET].clone();
    let pass = Pass {
        sandbox,
        component,
        spec,
        table: TableSpec {
            measures: tool.table.measures.clone(),
            labels: tool
                .table
                .labels
                .as_ref()
                .map(|l| l.values.clone())
                .unwrap_or_default(),
            params: plan.study_params.clone(),
        },
        limits: RunLimits {
            time: std::time::Duration::from_secs(tool.time_limit_seconds),
            memory_bytes: (tool.memory_limit_mb as usize) << 20,
        },
        started: Instant::now(),
        seed: random_seed(&plan.effective_params()),
        granted,
    };
    let mut instance = pass.instance(std::mem::take(log)).await.map_err(|(f, l)| {
        *log = l;
        Stop::failed(&f)
    })?;
    let batches = read(context, spec, plan, record)?;
    let mut tally = Tally::new(&tool.table, &plan.kept);
    let sampler = Sampler::default();
    let mut samples = Vec::new();
    let mut duplicates = 0;
    let mut failed = None;
    for (number, (batch, groups)) in handout_batches(batches, tool.unit)?.enumerate() {
        let checked = match pass
            .classify(&mut instance, &batch, groups.clone(), &mut duplicates)
            .await
        {
            Ok(checked) => checked,
            Err(stop) => {
                failed = Some(stop);
                break;
            }
        };
        let sources = tally.sources(&batch).map_err(Stop::host)?;
        tally.add(&sources, &checked);
        let pseudonyms = batch
            .column_by_name("patient_id")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Stop::host("the host read no patient_id".into()))?;
        for window in groups.windows(2) {
            let (start, end) = (window[0], window[1]);
            let pseudonym = pseudonyms.value(start as usize);
            if sampler.picks(patient_key(pseudonym)) {
                samples.push(SampledGroup {
                    batch: number,
                    rows: batch.slice(start as usize, (end - start) as usize),
                    pseudonym: pseudonym.to_owned(),
                    expected: of_group(&checked, start, end),
                });
            }
        }
    }
    *log = instance.into_log();
    record.contributions_dropped = duplicates + tally.dropped;
    if let Some(stop) = failed {
        return Err(stop);
    }
    let report = check_locality(&pass, context, samples, log).await;
    let differed = report.groups_differing > 0 || report.check_failure.is_some();
    record.locality = serde_json::to_value(&report).unwrap_or_default();
    if differed {
        return Err(Stop {
            status: "refused",
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
    let raw = release::raw_table(&tally, &tool.table, &plan.kept).map_err(Stop::host)?;
    let released = release::disclose(&raw, context.policy).map_err(|reason| Stop {
        status: "refused",
        detail: format!("disclosure control refused the output: {reason}"),
        category: "refused by disclosure control".into(),
    })?;
    record.status = "succeeded".into();
    record.output_sha256 = Some(super::desk::sha256_hex(&released.bytes));
    record.rows_released = released.rows;
    record.disclosure = released.report;
    Ok(released.bytes)
}

/// The columns the host reads: the patient, the date (for the period and the order of a
/// patient's rows), what the study is granted and what the kept dimensions come from.
fn read(
    context: &RunContext<'_>,
    spec: &StudySpec,
    plan: &RunPlan,
    record: &mut RunRecord,
) -> Result<Vec<RecordBatch>, Stop> {
    let kinds = spec.tool.table.dimension_kinds();
    let mut columns: Vec<&str> = vec!["patient_id", "date"];
    let sources = plan.kept.iter().filter_map(|&i| kinds[i].source_column());
    for column in spec.tool.datasets[STUDY_DATASET]
        .iter()
        .map(String::as_str)
        .chain(sources)
    {
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    let options = ScanOptions {
        date_range: (plan.from.is_some() || plan.to.is_some()).then(|| DateRange {
            column: "date".into(),
            from: plan.from.unwrap_or(i32::MIN),
            to: plan.to.unwrap_or(i32::MAX),
        }),
    };
    let mut scan = match context.vault.scan_with(STUDY_DATASET, &columns, &options) {
        Ok(scan) => scan,
        // An empty warehouse has no dataset yet: the study sees no rows.
        Err(carrel_vault::VaultError::UnknownDataset(_)) => return Ok(Vec::new()),
        Err(e) => return Err(Stop::host(format!("cannot read {STUDY_DATASET}: {e}"))),
    };
    if let Some(observer) = &context.observer {
        observer.planned(scan.segments_planned() as u64);
    }
    let mut batches = Vec::new();
    let mut noted = 0;
    while let Some(batch) = scan.next() {
        let batch = batch.map_err(|e| Stop::host(format!("cannot read {STUDY_DATASET}: {e}")))?;
        record.rows_read += batch.num_rows() as u64;
        let new_segments = scan.segment_ids_read().len() - noted;
        noted = scan.segment_ids_read().len();
        if let Some(observer) = &context.observer {
            observer.read(new_segments as u64, batch.num_rows() as u64);
        }
        batches.push(batch);
    }
    record.segments_read = scan
        .segment_ids_read()
        .iter()
        .map(|s| format!("{STUDY_DATASET}/{s}"))
        .collect();
    Ok(batches)
}

/// The batches handed to the study with their group starts: for unit `consultation`
/// every row is a group; for unit `patient` the rows are ordered by patient and date and
/// a patient's rows are one group, never split across batches.
fn handout_batches(
    batches: Vec<RecordBatch>,
    unit: Unit,
) -> Result<Box<dyn Iterator<Item = (RecordBatch, Vec<u32>)>>, Stop> {
    match unit {
        Unit::Consultation => Ok(Box::new(batches.into_iter().flat_map(|batch| {
            let rows = batch.num_rows();
            (0..rows).step_by(BATCH_ROWS).map(move |start| {
                let len = BATCH_ROWS.min(rows - start);
                (batch.slice(start, len), (0..=len as u32).collect())
            })
        }))),
        Unit::Patient => {
            let Some(first) = batches.first() else {
                return Ok(Box::new(std::iter::empty()));
            };
            let all = arrow_select::concat::concat_batches(&first.schema(), &batches)
                .map_err(|e| Stop::host(e.to_string()))?;
            drop(batches);
            let (sorted, patients) = by_patient(&all).map_err(Stop::host)?;
            Ok(Box::new(patient_chunks(sorted, patients)))
        }
    }
}

/// `batch` ordered by patient, then date; with each row's patient key.
fn by_patient(batch: &RecordBatch) -> Result<(RecordBatch, Vec<u64>), String> {
    let pseudonyms = batch
        .column_by_name("patient_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or("no patient_id")?;
    let dates = batch
        .column_by_name("date")
        .and_then(|c| c.as_primitive_opt::<arrow_array::types::Date32Type>())
        .ok_or("no date")?;
    let mut order: Vec<(u64, i32, u32)> = (0..batch.num_rows())
        .map(|i| (patient_key(pseudonyms.value(i)), dates.value(i), i as u32))
        .collect();
    order.sort_unstable();
    let indices = arrow_array::UInt32Array::from_iter_values(order.iter().map(|o| o.2));
    let sorted =
        arrow_select::take::take_record_batch(batch, &indices).map_err(|e| e.to_string())?;
    Ok((sorted, order.into_iter().map(|o| o.0).collect()))
}

fn patient_chunks(
    sorted: RecordBatch,
    patients: Vec<u64>,
) -> impl Iterator<Item = (RecordBatch, Vec<u32>)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= patients.len() {
            return None;
        }
        let mut groups = vec![0u32];
        let mut end = start;
        while end < patients.len() && (end - start < BATCH_ROWS || groups.len() == 1) {
            let patient = patients[end];
            while end < patients.len() && patients[end] == patient {
                end += 1;
            }
            groups.push((end - start) as u32);
        }
        let chunk = sorted.slice(start, end - start);
        start = end;
        Some((chunk, groups))
    })
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
        let parts: Vec<RecordBatch> = groups.iter().map(|g| g.rows.clone()).collect();
        let batch = match arrow_select::concat::concat_batches(&parts[0].schema(), &parts) {
            Ok(batch) => batch,
            Err(e) => {
                report.check_failure = Some(e.to_string());
                return report;
            }
        };
        let mut starts = vec![0u32];
        for g in &groups {
            starts.push(starts.last().expect("one") + g.rows.num_rows() as u32);
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
            .classify(&mut instance, &batch, starts.clone(), &mut duplicates)
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
            if of_group(&checked, starts[g], starts[g + 1]) != group.expected {
                report.groups_differing += 1;
                if report.patients_differing.len() < 20 {
                    report
                        .patients_differing
                        .push(study_pseudonym(&study_key, &group.pseudonym));
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
