//! Runs a page at a time, their totals, and how many a researcher has stored.
//!
//! Every list of runs (the API, the results page, the auditor's study page) reads one
//! page of at most [`MAX_PAGE`] records, newest first, continuing after the last run of
//! the previous page (a cursor, not an offset). Totals and counts are computed in SQL,
//! without loading records.

use super::owners::Caller;
use super::registry::{RegistryError, RunRecord, StudyRegistry};
use crate::tokens::Role;
use rusqlite::params;

/// Largest page of runs.
pub const MAX_PAGE: usize = 200;
/// A page of runs when the caller does not say.
pub const DEFAULT_PAGE: usize = 50;

/// One page of runs, and the run after which the next page starts, if there is one.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    pub next_after: Option<String>,
}

/// A study's runs, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTotals {
    pub runs: u64,
    pub succeeded: u64,
    pub rows_read: u64,
    pub rows_released: u64,
}

/// Which runs a page lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunScope<'a> {
    /// Every run.
    All,
    /// The runs of one study.
    Study(&'a str),
    /// The runs of every study this token owns.
    OwnedBy(&'a str),
}

fn record(text: &str) -> rusqlite::Result<RunRecord> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// `limit` within 1..=MAX_PAGE.
pub fn page_size(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
}

impl StudyRegistry {
    /// At most `limit` runs of `scope`, newest first, after the run `after` (the last of
    /// the previous page).
    pub fn runs_page(
        &self,
        scope: RunScope<'_>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<RunPage, RegistryError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let (study, owner) = match scope {
            RunScope::All => (None, None),
            RunScope::Study(s) => (Some(s), None),
            RunScope::OwnedBy(t) => (None, Some(t)),
        };
        let conn = self.conn.lock().expect("registry connection");
        // The cursor run's place in the order (started_at DESC, run_id).
        let cursor: Option<(String, String)> = match after {
            None => None,
            Some(run_id) => Some((
                conn.query_row(
                    "SELECT started_at FROM study_runs WHERE run_id = ?1",
                    [run_id],
                    |r| r.get(0),
                )
                .map_err(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => {
                        RegistryError::UnknownRun(run_id.to_owned())
                    }
                    other => other.into(),
                })?,
                run_id.to_owned(),
            )),
        };
        let mut statement = conn.prepare_cached(
            "SELECT record FROM study_runs
             WHERE (?1 IS NULL OR study = ?1)
               AND (?2 IS NULL OR study IN (SELECT study FROM study_owners WHERE token_id = ?2))
               AND (?3 IS NULL OR started_at < ?3 OR (started_at = ?3 AND run_id > ?4))
             ORDER BY started_at DESC, run_id LIMIT ?5",
        )?;
        let (at, id) = match &cursor {
            Some((at, id)) => (Some(at.as_str()), Some(id.as_str())),
            None => (None, None),
        };
        let rows = statement.query_map(params![study, owner, at, id, (limit + 1) as i64], |r| {
            r.get::<_, String>(0)
        })?;
        let mut runs = Vec::new();
        for text in rows {
            runs.push(record(&text?)?);
        }
        let next_after = if runs.len() > limit {
            runs.truncate(limit);
            runs.last().map(|r| r.run_id.clone())
        } else {
            None
        };
        Ok(RunPage { runs, next_after })
    }

    /// A page of the runs `who` may read: of `study` (if they may read its runs), or of
    /// every study for an auditor or the operator, of the studies they own for a
    /// researcher.
    pub fn runs_page_for(
        &self,
        who: &Caller,
        study: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<RunPage, RegistryError> {
        if let Some(study) = study {
            self.check_reader(study, who)?;
            return self.runs_page(RunScope::Study(study), after, limit);
        }
        match who {
            Caller::Holder(p) if !who.reads_every_run() => {
                if p.role != Role::Researcher {
                    return Ok(RunPage {
                        runs: Vec::new(),
                        next_after: None,
                    });
                }
                self.runs_page(RunScope::OwnedBy(&p.token_id), after, limit)
            }
            _ => self.runs_page(RunScope::All, after, limit),
        }
    }

    /// How many runs `study` has, how many released a table, and the rows they read and
    /// released.
    pub fn run_totals(&self, study: &str) -> Result<RunTotals, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        Ok(conn.query_row(
            "SELECT COUNT(*),
                    COALESCE(SUM(json_extract(record, '$.status') = 'succeeded'), 0),
                    COALESCE(SUM(json_extract(record, '$.rows_read')), 0),
                    COALESCE(SUM(json_extract(record, '$.rows_released')), 0)
             FROM study_runs WHERE study = ?1",
            [study],
            |r| {
                Ok(RunTotals {
                    runs: r.get::<_, i64>(0)? as u64,
                    succeeded: r.get::<_, i64>(1)? as u64,
                    rows_read: r.get::<_, i64>(2)? as u64,
                    rows_released: r.get::<_, i64>(3)? as u64,
                })
            },
        )?)
    }

    /// How many runs the holder of the token `token_id` has stored, of every study.
    pub fn stored_runs_of(&self, token_id: &str) -> Result<u64, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        let suffix = format!(" (token:{token_id})");
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM study_runs
             WHERE substr(json_extract(record, '$.actor'), -length(?1)) = ?1",
            [suffix],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Principal;

    fn registry() -> (tempfile::TempDir, StudyRegistry) {
        let dir = tempfile::tempdir().unwrap();
        carrel_vault::init_master_key(dir.path(), &carrel_vault::MasterKeyEnv::unset(), "test")
            .unwrap();
        let registry = StudyRegistry::open(dir.path()).unwrap();
        (dir, registry)
    }

    /// A run record as stored, built from JSON so that fields added later with defaults
    /// need no change here.
    fn run(id: &str, study: &str, actor: &str, at: &str, status: &str, rows: u64) -> RunRecord {
        serde_json::from_value(serde_json::json!({
            "run_id": id, "study": study, "actor": actor, "params": [],
            "started_at": at, "finished_at": at, "status": status, "error": null,
            "wasm_sha256": "w", "manifest_sha256": "m", "output_sha256": null,
            "segments_read": [], "rows_read": rows * 10, "rows_released": rows,
            "disclosure": null, "denied": [], "logs": [],
        }))
        .unwrap()
    }

    fn researcher(id: &str) -> Caller {
        Caller::Holder(Principal {
            token_id: id.into(),
            association: None,
            role: Role::Researcher,
            name: None,
        })
    }

    #[test]
    fn runs_come_a_bounded_page_at_a_time_newest_first_and_only_the_callers() {
        let (_dir, r) = registry();
        r.submit_as("ili", "w", "m", &researcher("r1")).unwrap();
        r.submit_as("other", "w", "m", &researcher("r2")).unwrap();
        for i in 0..7 {
            let at = format!("2026-01-01T10:00:0{i}Z");
            r.record_run(
                &mut run(
                    &format!("run-{i}"),
                    "ili",
                    "Dr A (token:r1)",
                    &at,
                    "succeeded",
                    2,
                ),
                None,
            )
            .unwrap();
        }
        r.record_run(
            &mut run(
                "run-x",
                "other",
                "researcher (token:r2)",
                "2026-01-02T00:00:00Z",
                "refused",
                0,
            ),
            None,
        )
        .unwrap();
        let ids = |page: &RunPage| {
            page.runs
                .iter()
                .map(|r| r.run_id.clone())
                .collect::<Vec<_>>()
        };
        let first = r.runs_page(RunScope::Study("ili"), None, 3).unwrap();
        assert_eq!(ids(&first), ["run-6", "run-5", "run-4"]);
        let second = r
            .runs_page(RunScope::Study("ili"), first.next_after.as_deref(), 3)
            .unwrap();
        assert_eq!(ids(&second), ["run-3", "run-2", "run-1"]);
        let last = r
            .runs_page(RunScope::Study("ili"), second.next_after.as_deref(), 3)
            .unwrap();
        assert_eq!(
            (ids(&last), last.next_after),
            (vec!["run-0".to_owned()], None)
        );
        let mine = r.runs_page_for(&researcher("r2"), None, None, 100).unwrap();
        assert_eq!(ids(&mine), ["run-x"]);
        assert!(
            r.runs_page_for(&researcher("r2"), Some("ili"), None, 10)
                .is_err()
        );
        let all = r
            .runs_page_for(&Caller::Operator, None, None, 10_000)
            .unwrap();
        assert_eq!(all.runs.len(), 8, "clamped to MAX_PAGE, not below");
        assert_eq!(page_size(Some(1_000_000)), MAX_PAGE);
        assert_eq!(page_size(Some(0)), 1);
        assert!(matches!(
            r.runs_page(RunScope::All, Some("run-none"), 3),
            Err(RegistryError::UnknownRun(_))
        ));
        assert_eq!(
            r.run_totals("ili").unwrap(),
            RunTotals {
                runs: 7,
                succeeded: 7,
                rows_read: 140,
                rows_released: 14
            }
        );
        assert_eq!(r.stored_runs_of("r1").unwrap(), 7);
        assert_eq!(r.stored_runs_of("r2").unwrap(), 1);
        assert_eq!(r.stored_runs_of("r").unwrap(), 0);
    }
}
