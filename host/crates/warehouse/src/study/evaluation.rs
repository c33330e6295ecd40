//! What a `model-evaluation` run releases: the host's counts of rows with and without the
//! outcome per score bin, overall and per subgroup value (one table, through disclosure
//! control like any other), and the performance the host computes from those counts
//! (AUROC with its interval, sensitivity, specificity, PPV and NPV at the declared
//! thresholds, calibration). The metrics are computed from the cell-key-noisy counts, so
//! they tell no more than the noisy counts do; a subgroup value with fewer than
//! `min_count` events, non-events or patients is withheld with its metrics.

use super::counting::{Grouping, Tallies};
use super::model_spec::ModelSpec;
use super::table::TableSpec;
use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use carrel_disclosure::{CellKeys, Policy, metadata, noise};
use carrel_modelstats::{BinCounts, Evaluation, evaluate};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The tallies a model evaluation counts: overall, then one per subgroup.
pub fn tallies(model: &ModelSpec, table: &TableSpec) -> Tallies {
    let mut out = vec![Grouping::new(table, "overall", vec![0])];
    for (i, s) in model.subgroups.iter().enumerate() {
        out.push(Grouping::new(table, s.clone(), vec![0, i + 1]));
    }
    Tallies::new(table, out)
}

/// A cell of the combined table: grouping, value of the subgroup, bin, and per measure
/// (events, non-events) consultations, patients and their cell keys.
struct Cell {
    grouping: String,
    level: String,
    bin: u32,
    counts: [(u64, u64); 2],
    keys: [(u64, u64); 2],
}

fn cells(groupings: &[Grouping], table: &TableSpec) -> Vec<Cell> {
    let mut out = Vec::new();
    for g in groupings {
        let keys = g.tally.cell_keys();
        for ((key, consultations, patients), (records, patient_keys)) in
            g.tally.cells().into_iter().zip(keys)
        {
            out.push(Cell {
                grouping: g.name.clone(),
                level: match g.kept.len() {
                    1 => "all".into(),
                    _ => g.tally.label(1, key[1], table),
                },
                bin: key[0],
                counts: [
                    (consultations[0], patients[0]),
                    (consultations[1], patients[1]),
                ],
                keys: [(records[0], patient_keys[0]), (records[1], patient_keys[1])],
            });
        }
    }
    out
}

/// The combined table before disclosure control, with the cell key of every count.
pub fn raw_table(
    groupings: &[Grouping],
    table: &TableSpec,
    model: &ModelSpec,
) -> Result<(RecordBatch, CellKeys), String> {
    let cells = cells(groupings, table);
    let labels = model.bin_labels();
    let text = |f: &dyn Fn(&Cell) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(cells.iter().map(f)))
    };
    let mut fields = vec![
        Field::new("grouping", DataType::Utf8, false),
        Field::new("level", DataType::Utf8, false),
        Field::new("score_bin", DataType::Utf8, false),
    ];
    let mut columns = vec![
        text(&|c| c.grouping.clone()),
        text(&|c| c.level.clone()),
        text(&|c| labels[c.bin as usize].clone()),
    ];
    let mut keys = CellKeys::new();
    for (m, measure) in table.measures.iter().enumerate() {
        let patients = TableSpec::patients_column(measure);
        let meta = |extra: Option<&str>| {
            let mut meta = HashMap::from([(metadata::KIND.to_owned(), metadata::COUNT.to_owned())]);
            if let Some(p) = extra {
                meta.insert(metadata::PATIENTS.to_owned(), p.to_owned());
            }
            meta
        };
        fields.push(
            Field::new(measure, DataType::UInt64, false).with_metadata(meta(Some(&patients))),
        );
        columns.push(Arc::new(UInt64Array::from_iter_values(
            cells.iter().map(|c| c.counts[m].0),
        )));
        fields.push(Field::new(&patients, DataType::UInt64, false).with_metadata(meta(None)));
        columns.push(Arc::new(UInt64Array::from_iter_values(
            cells.iter().map(|c| c.counts[m].1),
        )));
        keys.insert(measure.clone(), cells.iter().map(|c| c.keys[m].0).collect());
        keys.insert(patients, cells.iter().map(|c| c.keys[m].1).collect());
    }
    let batch =
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
    Ok((batch, keys))
}

fn rounded3(x: Option<f64>) -> Value {
    x.map_or(Value::Null, |x| json!((x * 1000.0).round() / 1000.0))
}

fn evaluation_json(e: &Evaluation, policy: &Policy) -> Value {
    let base = policy.rounding.max(1);
    let round_count = |n: f64| ((n as u64) + base / 2) / base * base;
    json!({
        "rows": round_count(e.rows),
        "events": round_count(e.events),
        "auroc": rounded3(e.auroc),
        "auroc_ci95": [rounded3(e.auroc_lower), rounded3(e.auroc_upper)],
        "thresholds": e.thresholds.iter().map(|t| json!({
            "threshold": t.threshold,
            "sensitivity": rounded3(t.sensitivity),
            "specificity": rounded3(t.specificity),
            "ppv": rounded3(t.ppv),
            "npv": rounded3(t.npv),
        })).collect::<Vec<_>>(),
        "calibration": {
            "slope": rounded3(e.calibration.slope),
            "intercept": rounded3(e.calibration.intercept),
            "groups": e.calibration.groups.iter().map(|g| json!({
                "mean_predicted": rounded3(Some(g.mean_predicted)),
                "observed": rounded3(Some(g.observed)),
            })).collect::<Vec<_>>(),
        },
        "roc": e.roc.iter().map(|(x, y)| json!([rounded3(Some(*x)), rounded3(Some(*y))])).collect::<Vec<_>>(),
    })
}

/// The performance report, computed from the noisy counts of every cell.
pub fn report(
    groupings: &[Grouping],
    table: &TableSpec,
    model: &ModelSpec,
    policy: &Policy,
) -> Value {
    let noisy = |count: u64, key: u64| noise::perturb(policy.noise_scale, key, count) as f64;
    let bins = model.bins as usize;
    // grouping → level → (events, non-events per bin; patients with and without).
    type Level = (Vec<f64>, Vec<f64>, f64, f64);
    let mut levels: BTreeMap<(String, String), Level> = BTreeMap::new();
    for c in cells(groupings, table) {
        let entry = levels
            .entry((c.grouping.clone(), c.level.clone()))
            .or_insert_with(|| (vec![0.0; bins], vec![0.0; bins], 0.0, 0.0));
        entry.0[c.bin as usize] += noisy(c.counts[0].0, c.keys[0].0);
        entry.1[c.bin as usize] += noisy(c.counts[1].0, c.keys[1].0);
        entry.2 += noisy(c.counts[0].1, c.keys[0].1);
        entry.3 += noisy(c.counts[1].1, c.keys[1].1);
    }
    let edges: Vec<f64> = (0..=bins).map(|b| b as f64 / bins as f64).collect();
    let min = policy.min_count as f64;
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), json!("model-evaluation"));
    out.insert("outcome".into(), json!(model.outcome));
    let mut subgroups = serde_json::Map::new();
    for ((grouping, level), (events, non_events, with, without)) in levels {
        let shown = if events.iter().sum::<f64>() < min
            || non_events.iter().sum::<f64>() < min
            || with < min
            || without < min
        {
            json!({"withheld": true})
        } else {
            let counts = BinCounts {
                edges: edges.clone(),
                events,
                non_events,
            };
            evaluation_json(&evaluate(&counts, &model.thresholds), policy)
        };
        if grouping == "overall" {
            out.insert("overall".into(), shown);
        } else {
            subgroups
                .entry(grouping)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("an object")
                .insert(level, shown);
        }
    }
    out.entry("overall").or_insert(json!({"withheld": true}));
    out.insert("subgroups".into(), Value::Object(subgroups));
    Value::Object(out)
}
