//! The privacy budget of a study on a dataset.
//!
//! With cell-key noise of scale `b` (`carrel_disclosure::noise`), a patient who adds to at
//! most `C` (cell, measure) pairs of a release (`max_cells_per_patient`) and at most `K`
//! consultations to each (`max_per_patient`) changes the released counts by at most
//! `C·(K + 1)` in L1 (`K` consultations and one patient per pair). Discrete Laplace noise
//! then gives `ε = C·(K + 1) / b`. A cell that only that patient makes exist is withheld
//! unless its noisy patient count reaches `min_count`, which happens with probability
//! `P(N ≥ min_count − 1)`: over `C` such cells, `δ ≤ C·P(N ≥ min_count − 1)`.
//! Suppression, rounding and shares are computed from noisy counts only, so they cost
//! nothing more.
//!
//! Each run that reads data spends its `ε` from the study's budget on the dataset, failed
//! and refused runs included (whether a run fails can carry a bit). The spending is
//! reserved before the run starts, so concurrent runs cannot overspend, and settled when
//! it is recorded: a run that read nothing costs nothing, and a run that released exactly
//! the table an earlier run released from the same binary, manifest, parameters and
//! segments reveals nothing new, since the same records always draw the same noise.

use super::manifest::STUDY_DATASET;
pub use super::records::Spend;
use super::records::{RegistryError, RunRecord, RunStatus};
use carrel_disclosure::{Policy, noise};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

/// What one release of a study costs, from its declared bounds and its noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub epsilon: f64,
    pub delta: f64,
}

/// The cost of one release of a study with `table` bounds under `policy`; `None` when its
/// noise is off, since then no release has a privacy guarantee.
pub fn cost(table: &super::table::TableSpec, policy: &Policy) -> Option<Cost> {
    if policy.noise_scale <= 0.0 {
        return None;
    }
    let pairs = f64::from(table.max_cells_per_patient);
    let per_pair = f64::from(table.max_per_patient) + 1.0;
    Some(Cost {
        epsilon: pairs * per_pair / policy.noise_scale,
        delta: (pairs * noise::tail(policy.noise_scale, policy.min_count.saturating_sub(1)))
            .min(1.0),
    })
}

/// The cost of one run of a study: one release of its table, or for a model evaluation
/// one per grouping (overall and each subgroup), since a patient adds to each.
pub fn cost_of(tool: &super::manifest::StudyTool) -> Option<Cost> {
    let one = cost(tool.table(), &tool.disclosure)?;
    let releases = match (&tool.model, tool.kind) {
        (Some(model), super::model_spec::StudyKind::ModelEvaluation) => {
            1.0 + model.subgroups.len() as f64
        }
        _ => 1.0,
    };
    Some(Cost {
        epsilon: one.epsilon * releases,
        delta: (one.delta * releases).min(1.0),
    })
}

/// Why a run may not start.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BudgetError {
    #[error(
        "study `{study}` has spent {spent} of its privacy budget of {budget} (ε) on `{dataset}`, and a run costs {cost}: no more runs"
    )]
    Spent {
        study: String,
        dataset: String,
        spent: f64,
        budget: f64,
        cost: f64,
    },
    #[error(
        "study `{0}`: its disclosure policy has a privacy budget but no noise (noise_scale = 0), so no run can be accounted for"
    )]
    NoNoise(String),
}

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS study_privacy_spend (
    run_id      TEXT PRIMARY KEY,
    study       TEXT NOT NULL,
    dataset     TEXT NOT NULL,
    epsilon     REAL NOT NULL,
    charged     REAL NOT NULL,
    fingerprint TEXT,
    output_sha256 TEXT,
    repeat_of   TEXT
);
CREATE INDEX IF NOT EXISTS study_privacy_spend_by_study ON study_privacy_spend (study, dataset);
";

fn spent_in(conn: &Connection, study: &str, dataset: &str) -> rusqlite::Result<f64> {
    conn.query_row(
        "SELECT COALESCE(SUM(charged), 0) FROM study_privacy_spend WHERE study = ?1 AND dataset = ?2",
        params![study, dataset],
        |r| r.get(0),
    )
}

/// Reserves the cost of run `run_id` of `study`, or refuses it when the budget would be
/// overspent. Returns the spend as it stands before the run is settled, or `None` when
/// the study's noise is off and it has no budget (no guarantee to account for).
pub(super) fn reserve_in(
    conn: &Connection,
    study: &str,
    run_id: &str,
    policy: &Policy,
    cost: Option<Cost>,
) -> Result<Result<Option<Spend>, BudgetError>, RegistryError> {
    let dataset = STUDY_DATASET;
    let budget = policy.epsilon_budget;
    let Some(cost) = cost else {
        if budget > 0.0 {
            return Ok(Err(BudgetError::NoNoise(study.to_owned())));
        }
        return Ok(Ok(None));
    };
    let spent = spent_in(conn, study, dataset)?;
    if budget > 0.0 && spent + cost.epsilon > budget * (1.0 + 1e-12) {
        return Ok(Err(BudgetError::Spent {
            study: study.to_owned(),
            dataset: dataset.to_owned(),
            spent: round3(spent),
            budget,
            cost: round3(cost.epsilon),
        }));
    }
    conn.execute(
        "INSERT INTO study_privacy_spend (run_id, study, dataset, epsilon, charged) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![run_id, study, dataset, cost.epsilon],
    )?;
    Ok(Ok(Some(Spend {
        dataset: dataset.to_owned(),
        perturbation: noise::PERTURBATION_VERSION.to_owned(),
        noise_scale: policy.noise_scale,
        epsilon: cost.epsilon,
        delta: cost.delta,
        charged: cost.epsilon,
        repeat_of: None,
        budget,
        spent: spent + cost.epsilon,
    })))
}

/// What makes two releases the same query on the same data.
fn fingerprint(run: &RunRecord) -> String {
    let mut segments = run.segments_read.clone();
    segments.sort();
    let text = serde_json::json!([run.wasm_sha256, run.manifest_sha256, run.params, segments]);
    hex::encode(Sha256::digest(text.to_string().as_bytes()))
}

/// Settles the reservation of `run` as it ends, inside the transaction that records it,
/// and updates `run.privacy`.
pub(super) fn settle_in(conn: &Connection, run: &mut RunRecord) -> Result<(), RegistryError> {
    let Some((dataset, epsilon)) = run.privacy.as_ref().map(|s| (s.dataset.clone(), s.epsilon))
    else {
        return Ok(());
    };
    let print = fingerprint(run);
    let read_nothing = run.segments_read.is_empty() && run.rows_read == 0;
    let repeat_of: Option<String> = match (&run.output_sha256, run.status) {
        (Some(output), RunStatus::Succeeded) => conn
            .query_row(
                "SELECT run_id FROM study_privacy_spend
                 WHERE study = ?1 AND dataset = ?2 AND fingerprint = ?3 AND output_sha256 = ?4
                   AND run_id != ?5 AND repeat_of IS NULL
                 ORDER BY rowid LIMIT 1",
                params![run.study, dataset, print, output, run.run_id],
                |r| r.get(0),
            )
            .optional()?,
        _ => None,
    };
    let charged = if read_nothing || repeat_of.is_some() {
        0.0
    } else {
        epsilon
    };
    conn.execute(
        "UPDATE study_privacy_spend SET charged = ?2, fingerprint = ?3, output_sha256 = ?4, repeat_of = ?5 WHERE run_id = ?1",
        params![run.run_id, charged, print, run.output_sha256, repeat_of],
    )?;
    let spent = spent_in(conn, &run.study, &dataset)?;
    if let Some(spend) = run.privacy.as_mut() {
        spend.spent = spent;
        spend.charged = charged;
        spend.repeat_of = repeat_of;
    }
    Ok(())
}

/// What `study` has spent of its budget on the study dataset.
pub(super) fn spent(conn: &Connection, study: &str) -> Result<f64, RegistryError> {
    Ok(spent_in(conn, study, STUDY_DATASET)?)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::table::TableSpec;

    fn table(max_cells: u32, max_per_patient: u32) -> TableSpec {
        let mut table: TableSpec =
            toml::from_str("dimensions = [\"week\"]\nmeasures = [\"n\"]").unwrap();
        table.max_cells_per_patient = max_cells;
        table.max_per_patient = max_per_patient;
        table
    }

    #[test]
    fn a_release_costs_its_l1_sensitivity_over_the_noise_scale() {
        let policy = Policy {
            noise_scale: 4.0,
            ..Policy::default()
        };
        let cost = cost(&table(10, 3), &policy).unwrap();
        // 10 pairs, each 3 consultations and 1 patient: Δ = 40, ε = 40 / 4.
        assert_eq!(cost.epsilon, 10.0);
        // δ = 10 · P(N ≥ 7) at scale 4.
        let p = (-0.25f64).exp();
        assert!((cost.delta - 10.0 * p.powi(7) / (1.0 + p)).abs() < 1e-12);
        let off = Policy {
            noise_scale: 0.0,
            ..Policy::default()
        };
        assert_eq!(super::cost(&table(10, 3), &off), None);
    }

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        conn
    }

    fn run(id: &str, output: &str) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            study: "s".into(),
            actor: "a".into(),
            params: vec![("from".into(), "2024-01-01".into())],
            started_at: String::new(),
            finished_at: String::new(),
            status: RunStatus::Succeeded,
            error: None,
            researcher_error: None,
            wasm_sha256: "w".into(),
            manifest_sha256: "m".into(),
            output_sha256: Some(output.into()),
            segments_read: vec!["consultations/1".into()],
            rows_read: 10,
            rows_released: 1,
            disclosure: serde_json::Value::Null,
            denied: Vec::new(),
            logs: Vec::new(),
            contributions_dropped: 0,
            locality: serde_json::Value::Null,
            privacy: None,
            model_report: serde_json::Value::Null,
        }
    }

    #[test]
    fn runs_are_refused_once_the_budget_is_spent_and_exact_repeats_are_free() {
        let conn = conn();
        let policy = Policy {
            noise_scale: 2.0,
            epsilon_budget: 25.0,
            ..Policy::default()
        };
        let cost = Some(Cost {
            epsilon: 10.0,
            delta: 0.0,
        });
        let mut first = run("r1", "out");
        first.privacy = Some(
            reserve_in(&conn, "s", "r1", &policy, cost)
                .unwrap()
                .unwrap()
                .unwrap(),
        );
        settle_in(&conn, &mut first).unwrap();
        assert_eq!(first.privacy.as_ref().unwrap().charged, 10.0);

        // The same query on the same segments releasing the same table costs nothing.
        let mut again = run("r2", "out");
        again.privacy = Some(
            reserve_in(&conn, "s", "r2", &policy, cost)
                .unwrap()
                .unwrap()
                .unwrap(),
        );
        settle_in(&conn, &mut again).unwrap();
        let spend = again.privacy.unwrap();
        assert_eq!((spend.charged, spend.spent), (0.0, 10.0));
        assert_eq!(spend.repeat_of.as_deref(), Some("r1"));

        // A failed run is charged, even with the same fingerprint.
        let mut failed = run("r3", "out");
        failed.status = RunStatus::Failed;
        failed.output_sha256 = None;
        failed.privacy = Some(
            reserve_in(&conn, "s", "r3", &policy, cost)
                .unwrap()
                .unwrap()
                .unwrap(),
        );
        settle_in(&conn, &mut failed).unwrap();
        assert_eq!(failed.privacy.unwrap().spent, 20.0);

        // 20 + 10 > 25: refused, nothing reserved.
        let refused = reserve_in(&conn, "s", "r4", &policy, cost).unwrap();
        assert!(
            matches!(refused, Err(BudgetError::Spent { spent, .. }) if spent == 20.0),
            "{refused:?}"
        );
        assert_eq!(spent(&conn, "s").unwrap(), 20.0);
    }

    #[test]
    fn a_run_that_read_nothing_costs_nothing() {
        let conn = conn();
        let policy = Policy {
            epsilon_budget: 100.0,
            ..Policy::default()
        };
        let cost = Some(Cost {
            epsilon: 10.0,
            delta: 0.0,
        });
        let mut empty = run("r1", "out");
        empty.segments_read.clear();
        empty.rows_read = 0;
        empty.privacy = Some(
            reserve_in(&conn, "s", "r1", &policy, cost)
                .unwrap()
                .unwrap()
                .unwrap(),
        );
        settle_in(&conn, &mut empty).unwrap();
        assert_eq!(spent(&conn, "s").unwrap(), 0.0);
    }

    #[test]
    fn a_budget_without_noise_refuses_every_run() {
        let conn = conn();
        let policy = Policy {
            noise_scale: 0.0,
            epsilon_budget: 10.0,
            ..Policy::default()
        };
        let refused = reserve_in(&conn, "s", "r1", &policy, None).unwrap();
        assert_eq!(refused, Err(BudgetError::NoNoise("s".into())));
    }
}
