//! A `model-evaluation` study for the host's tests. Its "model file" is JSON, not ONNX:
//! `{"intercept": -4.0, "age_years": 0.03, "visit_type=home": 0.6, "diagnoses:J": 0.5,
//! "sex=F": -0.2, "op": "score"}`; it scores each row with that logistic model (the
//! synthetic data's referral model has these four features). `op` chooses a hostile
//! behaviour instead:
//!
//! - `score`: the model's probability (what a study should do);
//! - `out-of-range`: scores 1.5 (a score that is no probability);
//! - `nan`: scores NaN;
//! - `beyond`: scores a row past the batch;
//! - `constant`: scores every row 0.5 (a useless model: AUROC 0.5).
//!
//! `check` refuses a file that is not JSON, naming the place, and says the model takes
//! as many inputs as it has coefficients besides the intercept and `op`.

wit_bindgen::generate!({
    world: "carrel:eds/model-evaluation",
    path: "../../../wit",
});

use std::sync::OnceLock;

struct Coefficients {
    intercept: f64,
    age: f64,
    home: f64,
    respiratory: f64,
    female: f64,
    op: String,
}

static MODEL: OnceLock<Coefficients> = OnceLock::new();

fn parse(model: &Model) -> Result<(Coefficients, u32), StudyError> {
    let json: serde_json::Value = serde_json::from_slice(&model.onnx)
        .map_err(|e| StudyError::Failed(format!("not a model file: {e}")))?;
    let get = |key: &str| json.get(key).and_then(|v| v.as_f64()).unwrap_or(0.0);
    let inputs = json
        .as_object()
        .map(|o| o.keys().filter(|k| *k != "intercept" && *k != "op").count())
        .unwrap_or(0) as u32;
    Ok((
        Coefficients {
            intercept: get("intercept"),
            age: get("age_years"),
            home: get("visit_type=home"),
            respiratory: get("diagnoses:J"),
            female: get("sex=F"),
            op: json
                .get("op")
                .and_then(|v| v.as_str())
                .unwrap_or("score")
                .to_owned(),
        },
        inputs,
    ))
}

fn text<'a>(values: &'a [String], keys: &[u32], row: usize) -> Option<&'a str> {
    keys.get(row)
        .and_then(|&k| values.get(k as usize))
        .map(String::as_str)
}

fn probability(m: &Coefficients, b: &Consultations, row: usize) -> f64 {
    let age = f64::from(b.age_years.get(row).copied().unwrap_or(0).min(90));
    let home = text(&b.visit_type.values, &b.visit_type.keys, row) == Some("home");
    let female = text(&b.sex.values, &b.sex.keys, row) == Some("F");
    let codes = &b.diagnoses;
    let respiratory = match (codes.offsets.get(row), codes.offsets.get(row + 1)) {
        (Some(&from), Some(&to)) => codes.keys[from as usize..to as usize]
            .iter()
            .any(|&k| codes.values[k as usize].starts_with('J')),
        _ => false,
    };
    let eta = m.intercept
        + m.age * age
        + m.home * f64::from(u8::from(home))
        + m.respiratory * f64::from(u8::from(respiratory))
        + m.female * f64::from(u8::from(female));
    1.0 / (1.0 + (-eta).exp())
}

struct ScoreProbe;

impl Guest for ScoreProbe {
    fn check(model: Model) -> Result<ModelSummary, StudyError> {
        let (_, inputs) = parse(&model)?;
        Ok(ModelSummary {
            inputs,
            operators: vec!["Logistic".into()],
        })
    }

    fn start(_table: TableSpec, model: Model) -> Result<(), StudyError> {
        let (coefficients, _) = parse(&model)?;
        MODEL
            .set(coefficients)
            .map_err(|_| StudyError::Failed("started twice".into()))
    }

    fn score(batch: Consultations) -> Result<Vec<RowScore>, StudyError> {
        let m = MODEL
            .get()
            .ok_or_else(|| StudyError::Failed("not started".into()))?;
        let rows = batch.groups.last().copied().unwrap_or(0) as usize;
        let mut out = Vec::with_capacity(rows);
        for row in 0..rows {
            let score = match m.op.as_str() {
                "out-of-range" => 1.5,
                "nan" => f64::NAN,
                "constant" => 0.5,
                _ => probability(m, &batch, row),
            };
            out.push(RowScore {
                row: row as u32,
                score,
            });
        }
        if m.op == "beyond" {
            out.push(RowScore {
                row: rows as u32,
                score: 0.5,
            });
        }
        Ok(out)
    }
}

export!(ScoreProbe);
