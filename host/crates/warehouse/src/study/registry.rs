//! The study register, in the warehouse catalog (carrel.db): submissions of exact
//! binaries and manifest sections, their approval or revocation, and every run with what
//! it read and released. Each change is committed together with its audit entry.

use carrel_vault::audit::append_in_transaction;
use carrel_vault::{AuditAction, AuditEvent, CATALOG_FILE};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::sync::Mutex;

pub(crate) use super::records::now;
pub use super::records::{ApprovalState, RegistryError, RunRecord, RunStatus, Submission};

pub struct StudyRegistry {
    pub(super) conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS study_submissions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    study           TEXT NOT NULL,
    wasm_sha256     TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    submitted_at    TEXT NOT NULL,
    submitted_by    TEXT NOT NULL,
    approved_at     TEXT,
    approved_by     TEXT,
    revoked_at      TEXT,
    revoked_by      TEXT
);
CREATE INDEX IF NOT EXISTS study_submissions_by_study ON study_submissions (study, seq);
CREATE TABLE IF NOT EXISTS study_runs (
    run_id      TEXT PRIMARY KEY,
    study       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    record      TEXT NOT NULL,
    result      BLOB
);
CREATE INDEX IF NOT EXISTS study_runs_by_study ON study_runs (study, started_at);
";

fn submission(row: &rusqlite::Row<'_>) -> rusqlite::Result<Submission> {
    Ok(Submission {
        study: row.get(0)?,
        wasm_sha256: row.get(1)?,
        manifest_sha256: row.get(2)?,
        submitted_at: row.get(3)?,
        submitted_by: row.get(4)?,
        approved_at: row.get(5)?,
        approved_by: row.get(6)?,
        revoked_at: row.get(7)?,
        revoked_by: row.get(8)?,
    })
}

const SUBMISSION_COLUMNS: &str = "study, wasm_sha256, manifest_sha256, submitted_at, submitted_by, approved_at, approved_by, revoked_at, revoked_by";

/// Creates the owners table; a catalog from before owners gets the first submitter of
/// each study as its owner, when that was a token.
pub(crate) fn create_owners_table(conn: &Connection) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    let existed = tx
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'study_owners'")?
        .exists([])?;
    if !existed {
        tx.execute_batch(
            "CREATE TABLE study_owners (
                study     TEXT NOT NULL,
                token_id  TEXT NOT NULL,
                holder    TEXT NOT NULL,
                added_at  TEXT NOT NULL,
                added_by  TEXT NOT NULL,
                PRIMARY KEY (study, token_id)
            );
            CREATE INDEX study_owners_by_token ON study_owners (token_id);
            INSERT OR IGNORE INTO study_owners (study, token_id, holder, added_at, added_by)
                SELECT study, substr(submitted_by, 7), submitted_by, submitted_at, submitted_by
                FROM study_submissions s
                WHERE seq = (SELECT MIN(seq) FROM study_submissions WHERE study = s.study)
                  AND submitted_by LIKE 'token:%';",
        )?;
    }
    tx.commit()
}

impl StudyRegistry {
    pub fn open(state_dir: &Path) -> Result<Self, RegistryError> {
        let path = state_dir.join(CATALOG_FILE);
        if !path.is_file() {
            return Err(RegistryError::NoCatalog(state_dir.display().to_string()));
        }
        carrel_vault::AuditLog::open(state_dir)?;
        let conn = carrel_vault::open_catalog(state_dir)?;
        conn.execute_batch(SCHEMA)?;
        create_owners_table(&conn)?;
        conn.execute_batch(super::budget::SCHEMA)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    pub(super) fn with_tx<R>(
        &self,
        event: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(R, AuditEvent), RegistryError>,
    ) -> Result<R, RegistryError> {
        self.with_tx_head(event).map(|(out, _)| out)
    }

    /// Like `with_tx`, also returning the audit entry's sequence number.
    fn with_tx_head<R>(
        &self,
        event: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(R, AuditEvent), RegistryError>,
    ) -> Result<(R, u64), RegistryError> {
        let mut conn = self.conn.lock().expect("registry connection");
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (out, audit) = event(&tx)?;
        let head = append_in_transaction(&tx, &audit)?;
        tx.commit()?;
        Ok((out, head.seq))
    }

    pub fn latest(&self, study: &str) -> Result<Option<Submission>, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        Ok(latest_in(&conn, study)?)
    }

    /// The latest submission of every study ever submitted.
    pub fn all_latest(&self) -> Result<Vec<Submission>, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        let mut statement = conn.prepare(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM study_submissions s
             WHERE seq = (SELECT MAX(seq) FROM study_submissions WHERE study = s.study)
             ORDER BY study"
        ))?;
        let rows = statement.query_map([], submission)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records the exact hashes a researcher submits for approval.
    pub fn submit(
        &self,
        study: &str,
        wasm_sha256: &str,
        manifest_sha256: &str,
        actor: &str,
    ) -> Result<Submission, RegistryError> {
        self.with_tx(|tx| submit_in(tx, study, wasm_sha256, manifest_sha256, actor))
    }

    /// Approves exactly the hashes of the latest submission, provided the study on disk
    /// still has them.
    pub fn approve(
        &self,
        study: &str,
        current_wasm: &str,
        current_manifest: &str,
        auditor: &str,
    ) -> Result<Submission, RegistryError> {
        self.with_tx(|tx| {
            let latest = latest_in(tx, study)?
                .ok_or_else(|| RegistryError::NotSubmitted(study.to_owned()))?;
            match latest.state() {
                ApprovalState::Approved => return Err(RegistryError::AlreadyApproved(study.to_owned())),
                ApprovalState::Revoked => return Err(RegistryError::Revoked(study.to_owned())),
                ApprovalState::Submitted => {}
            }
            changed(study, "binary (sha256 of the wasm)", &latest.wasm_sha256, current_wasm)?;
            changed(study, "manifest section", &latest.manifest_sha256, current_manifest)?;
            tx.execute(
                "UPDATE study_submissions SET approved_at = ?1, approved_by = ?2
                 WHERE seq = (SELECT MAX(seq) FROM study_submissions WHERE study = ?3)",
                params![now(), auditor, study],
            )?;
            let approved = latest_in(tx, study)?.expect("still there");
            let event = AuditEvent::new(auditor, AuditAction::Other("study.approve".into()), format!("study:{study}"))
                .with_details(serde_json::json!({"wasm_sha256": approved.wasm_sha256, "manifest_sha256": approved.manifest_sha256}));
            Ok((approved, event))
        })
    }

    pub fn revoke(&self, study: &str, auditor: &str) -> Result<Submission, RegistryError> {
        self.with_tx(|tx| {
            let latest = latest_in(tx, study)?
                .ok_or_else(|| RegistryError::NotSubmitted(study.to_owned()))?;
            if latest.state() == ApprovalState::Revoked {
                return Err(RegistryError::NothingToRevoke(study.to_owned()));
            }
            tx.execute(
                "UPDATE study_submissions SET revoked_at = ?1, revoked_by = ?2
                 WHERE seq = (SELECT MAX(seq) FROM study_submissions WHERE study = ?3)",
                params![now(), auditor, study],
            )?;
            let revoked = latest_in(tx, study)?.expect("still there");
            let event = AuditEvent::new(auditor, AuditAction::Other("study.revoke".into()), format!("study:{study}"))
                .with_details(serde_json::json!({"wasm_sha256": revoked.wasm_sha256, "manifest_sha256": revoked.manifest_sha256}));
            Ok((revoked, event))
        })
    }

    /// Reserves a run's privacy cost before it reads anything, or says why it may not run.
    pub fn reserve_budget(
        &self,
        study: &str,
        run_id: &str,
        policy: &carrel_disclosure::Policy,
        cost: Option<super::budget::Cost>,
    ) -> Result<Result<Option<super::budget::Spend>, super::budget::BudgetError>, RegistryError>
    {
        let mut conn = self.conn.lock().expect("registry connection");
        // Immediate, so that two processes reserving at once see each other's spending.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let reserved = super::budget::reserve_in(&tx, study, run_id, policy, cost)?;
        tx.commit()?;
        Ok(reserved)
    }

    /// What `study` has spent of its privacy budget.
    pub fn privacy_spent(&self, study: &str) -> Result<f64, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        super::budget::spent(&conn, study)
    }

    /// Stores a run record (and its released table) with its audit entry, settling its
    /// privacy spending in the same transaction (which fills in `run.privacy`).
    /// Returns the audit entry's sequence number.
    pub fn record_run(
        &self,
        run: &mut RunRecord,
        result: Option<&[u8]>,
    ) -> Result<u64, RegistryError> {
        self.with_tx_head(|tx| {
            super::budget::settle_in(tx, run)?;
            tx.execute(
                "INSERT INTO study_runs (run_id, study, started_at, record, result) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run.run_id, run.study, run.started_at, serde_json::to_string(run).expect("run records serialise"), result],
            )?;
            let action = match run.status {
                RunStatus::Succeeded => "study.run",
                RunStatus::Refused => "study.run.refused",
                RunStatus::Failed => "study.run.failed",
            };
            let event = AuditEvent::new(&run.actor, AuditAction::Other(action.into()), format!("study:{}", run.study))
                .with_details(serde_json::json!({
                    "run_id": run.run_id,
                    "wasm_sha256": run.wasm_sha256,
                    "manifest_sha256": run.manifest_sha256,
                    "output_sha256": run.output_sha256,
                    "segments_read": run.segments_read,
                    "rows_read": run.rows_read,
                    "rows_released": run.rows_released,
                    "disclosure": run.disclosure,
                    "denied": run.denied,
                    "error": run.error,
                    "researcher_error": run.researcher_error,
                    "logs": run.logs,
                    "contributions_dropped": run.contributions_dropped,
                    "locality": run.locality,
                    "privacy": run.privacy,
                    "model_report": run.model_report,
                }));
            Ok(((), event))
        })
        .map(|((), seq)| seq)
    }

    pub fn run(&self, run_id: &str) -> Result<RunRecord, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        let text: String = conn
            .query_row(
                "SELECT record FROM study_runs WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| RegistryError::UnknownRun(run_id.to_owned()))?;
        Ok(serde_json::from_str(&text).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?)
    }

    /// The released table of a run (Arrow IPC), if it released one.
    pub fn result(&self, run_id: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        conn.query_row(
            "SELECT result FROM study_runs WHERE run_id = ?1",
            [run_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| RegistryError::UnknownRun(run_id.to_owned()))
    }

    /// Runs, newest first, of one study or of all.
    pub fn runs(&self, study: Option<&str>) -> Result<Vec<RunRecord>, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        let mut statement = conn.prepare(
            "SELECT record FROM study_runs WHERE (?1 IS NULL OR study = ?1) ORDER BY started_at DESC, run_id",
        )?;
        let rows = statement.query_map([study], |r| r.get::<_, String>(0))?;
        let mut runs = Vec::new();
        for text in rows {
            let text = text?;
            runs.push(serde_json::from_str(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?);
        }
        Ok(runs)
    }
}

fn changed(
    study: &str,
    what: &'static str,
    submitted: &str,
    now: &str,
) -> Result<(), RegistryError> {
    if submitted == now {
        Ok(())
    } else {
        Err(RegistryError::ChangedSinceSubmission {
            study: study.to_owned(),
            what,
            submitted: submitted.to_owned(),
            now: now.to_owned(),
        })
    }
}

/// Inserts a submission; returns it with its audit entry.
pub(super) fn submit_in(
    tx: &Connection,
    study: &str,
    wasm_sha256: &str,
    manifest_sha256: &str,
    actor: &str,
) -> Result<(Submission, AuditEvent), RegistryError> {
    tx.execute(
        "INSERT INTO study_submissions (study, wasm_sha256, manifest_sha256, submitted_at, submitted_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![study, wasm_sha256, manifest_sha256, now(), actor],
    )?;
    let submitted = latest_in(tx, study)?.expect("just inserted");
    let event = AuditEvent::new(
        actor,
        AuditAction::Other("study.submit".into()),
        format!("study:{study}"),
    )
    .with_details(
        serde_json::json!({"wasm_sha256": wasm_sha256, "manifest_sha256": manifest_sha256}),
    );
    Ok((submitted, event))
}

pub(super) fn latest_in(conn: &Connection, study: &str) -> rusqlite::Result<Option<Submission>> {
    conn.query_row(
        &format!("SELECT {SUBMISSION_COLUMNS} FROM study_submissions WHERE study = ?1 ORDER BY seq DESC LIMIT 1"),
        [study],
        submission,
    )
    .optional()
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
