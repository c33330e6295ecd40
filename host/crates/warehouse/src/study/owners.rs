//! Who owns a study, and who acts at the study desk.
//!
//! A study's owners are researchers' tokens. The researcher whose token first submits a
//! study becomes its owner; an owner adds others (`carrel study owners add`, `POST
//! /api/studies/<id>/owners`). Only owners submit new versions, run the study and read
//! its runs, by every route: to anyone else the study and its runs do not exist (404 over
//! HTTP, "no study … of yours" or "no run" on the command line), and the refusal is
//! audited as `study.denied`. Auditors read every run and own nothing. The operator at
//! the warehouse's terminal (a `carrel study` command without a token) may do anything,
//! since they hold the master key; a study the operator submitted first has no owner until
//! the operator adds one.

use super::registry::{RegistryError, RunRecord, StudyRegistry, Submission, latest_in, now};
use crate::tokens::{Principal, Role, TokenInfo};
use carrel_vault::{AuditAction, AuditEvent};
use rusqlite::{Connection, params};
use serde::Serialize;
use std::collections::BTreeSet;

/// Who acts at the study desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator at the warehouse's terminal: a `carrel` command given no token.
    Operator,
    /// A token's holder: authenticated by their secret token (HTTP, `--token`), or named
    /// by token id on the command line (`--by`), which only the operator can run.
    Holder(Principal),
}

/// The operator's name in audit entries and records.
pub const OPERATOR: &str = carrel_vault::cli::OPERATOR_ACTOR;

#[derive(Debug, thiserror::Error)]
#[error("only an auditor approves or revokes a study (this token is a {0} token)")]
pub struct NotAnAuditor(&'static str);

impl Caller {
    /// As audit entries and run records name them: `operator`, or
    /// `Dr Alice Martin (token:ab12cd34)`.
    pub fn actor(&self) -> String {
        match self {
            Self::Operator => OPERATOR.to_owned(),
            Self::Holder(p) => p.actor(),
        }
    }

    /// Auditors and the operator read every run.
    pub fn reads_every_run(&self) -> bool {
        match self {
            Self::Operator => true,
            Self::Holder(p) => p.role == Role::Auditor,
        }
    }

    /// The actor an approval or a revocation is recorded under: an auditor's token, or
    /// the operator.
    pub fn approver(&self) -> Result<String, NotAnAuditor> {
        match self {
            Self::Holder(p) if p.role != Role::Auditor => Err(NotAnAuditor(p.role.as_str())),
            _ => Ok(self.actor()),
        }
    }

    fn researcher(&self) -> Option<&Principal> {
        match self {
            Self::Holder(p) if p.role == Role::Researcher => Some(p),
            _ => None,
        }
    }
}

/// One owner of a study.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Owner {
    pub token_id: String,
    /// `Dr Alice Martin (token:ab12cd34)`, as the token named its holder when added.
    pub holder: String,
    pub added_at: String,
    pub added_by: String,
}

fn owners_in(conn: &Connection, study: &str) -> rusqlite::Result<Vec<Owner>> {
    let mut statement = conn.prepare_cached(
        "SELECT token_id, holder, added_at, added_by FROM study_owners WHERE study = ?1
         ORDER BY added_at, token_id",
    )?;
    let rows = statement.query_map([study], |r| {
        Ok(Owner {
            token_id: r.get(0)?,
            holder: r.get(1)?,
            added_at: r.get(2)?,
            added_by: r.get(3)?,
        })
    })?;
    rows.collect()
}

fn insert_owner(
    conn: &Connection,
    study: &str,
    owner: &Principal,
    by: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO study_owners (study, token_id, holder, added_at, added_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![study, owner.token_id, owner.actor(), now(), by],
    )?;
    Ok(())
}

impl StudyRegistry {
    /// The owners of `study`, first added first.
    pub fn owners(&self, study: &str) -> Result<Vec<Owner>, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        Ok(owners_in(&conn, study)?)
    }

    /// The studies `token_id` owns.
    pub fn owned_studies(&self, token_id: &str) -> Result<BTreeSet<String>, RegistryError> {
        let conn = self.conn.lock().expect("registry connection");
        let mut statement =
            conn.prepare_cached("SELECT study FROM study_owners WHERE token_id = ?1")?;
        let rows = statement.query_map([token_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn owns(&self, study: &str, who: &Caller) -> Result<bool, RegistryError> {
        Ok(match who {
            Caller::Operator => true,
            Caller::Holder(p) => {
                p.role == Role::Researcher
                    && self.owners(study)?.iter().any(|o| o.token_id == p.token_id)
            }
        })
    }

    /// Audits a refusal to someone who is not an owner and returns `refusal`, which
    /// says nothing of the study or run.
    fn deny(
        &self,
        study: &str,
        who: &Caller,
        operation: &str,
        run_id: Option<&str>,
        refusal: RegistryError,
    ) -> RegistryError {
        let event = AuditEvent::new(
            who.actor(),
            AuditAction::Other("study.denied".into()),
            format!("study:{study}"),
        )
        .with_details(serde_json::json!({
            "operation": operation,
            "run_id": run_id,
            "reason": "not an owner of the study",
        }));
        let appended = self.with_tx(|_| Ok(((), event)));
        if let Err(e) = appended {
            tracing::error!(error = %e, "cannot audit a refusal to a non-owner");
        }
        refusal
    }

    /// Succeeds when `who` may run `study` or change its owners: the operator, or an
    /// owner. Anyone else is told there is no such study of theirs.
    pub fn check_owner(
        &self,
        study: &str,
        who: &Caller,
        operation: &str,
    ) -> Result<(), RegistryError> {
        if self.owns(study, who)? {
            Ok(())
        } else {
            Err(self.deny(
                study,
                who,
                operation,
                None,
                RegistryError::NotYours(study.to_owned()),
            ))
        }
    }

    /// Succeeds when `who` may read the runs of `study`: an owner, an auditor, the
    /// operator.
    pub fn check_reader(&self, study: &str, who: &Caller) -> Result<(), RegistryError> {
        if who.reads_every_run() {
            return Ok(());
        }
        self.check_owner(study, who, "read runs")
    }

    /// Whether a submission by `who` would be accepted: by the operator, an owner, or
    /// a researcher submitting a study nobody submitted or owns yet.
    fn may_submit(conn: &Connection, study: &str, who: &Caller) -> Result<bool, RegistryError> {
        Ok(match who {
            Caller::Operator => true,
            Caller::Holder(_) => match who.researcher() {
                None => false,
                Some(p) => {
                    let owners = owners_in(conn, study)?;
                    owners.iter().any(|o| o.token_id == p.token_id)
                        || (owners.is_empty() && latest_in(conn, study)?.is_none())
                }
            },
        })
    }

    /// Refuses, as for a study that does not exist, a submission `who` may not make.
    pub fn check_submitter(&self, study: &str, who: &Caller) -> Result<(), RegistryError> {
        let allowed = {
            let conn = self.conn.lock().expect("registry connection");
            Self::may_submit(&conn, study, who)?
        };
        if allowed {
            Ok(())
        } else {
            Err(self.deny(
                study,
                who,
                "submit",
                None,
                RegistryError::NotYours(study.to_owned()),
            ))
        }
    }

    /// Records a submission by `who`. A researcher submitting a study nobody submitted or
    /// owns becomes its owner, in the same transaction.
    pub fn submit_as(
        &self,
        study: &str,
        wasm_sha256: &str,
        manifest_sha256: &str,
        who: &Caller,
    ) -> Result<Submission, RegistryError> {
        let actor = who.actor();
        let submitted = self.with_tx(|tx| {
            if !Self::may_submit(tx, study, who)? {
                return Err(RegistryError::NotYours(study.to_owned()));
            }
            // A researcher allowed to submit either owns the study or claims it.
            let claims = owners_in(tx, study)?.is_empty();
            let (submission, mut event) =
                super::registry::submit_in(tx, study, wasm_sha256, manifest_sha256, &actor)?;
            if let Some(p) = who.researcher().filter(|_| claims) {
                insert_owner(tx, study, p, &actor)?;
                event.details["owner_added"] = serde_json::Value::String(p.actor());
            }
            Ok((submission, event))
        });
        submitted.map_err(|e| match e {
            RegistryError::NotYours(_) => self.deny(study, who, "submit", None, e),
            other => other,
        })
    }

    /// Adds `new` (an active researcher's token) to the owners of `study`; `by` must be an
    /// owner or the operator. Returns the owners.
    pub fn add_owner(
        &self,
        study: &str,
        new: &TokenInfo,
        by: &Caller,
    ) -> Result<Vec<Owner>, RegistryError> {
        self.check_owner(study, by, "add an owner")?;
        if new.role != Role::Researcher || new.revoked.is_some() {
            return Err(RegistryError::Owners(format!(
                "token `{}` is not an active researcher's token: only researchers own studies",
                new.id
            )));
        }
        let owner = new.principal();
        let actor = by.actor();
        self.with_tx(|tx| {
            let owners = owners_in(tx, study)?;
            if owners.iter().any(|o| o.token_id == owner.token_id) {
                return Err(RegistryError::Owners(format!(
                    "{} already owns `{study}`",
                    owner.actor()
                )));
            }
            insert_owner(tx, study, &owner, &actor)?;
            let event = AuditEvent::new(
                &actor,
                AuditAction::Other("study.owner.add".into()),
                format!("study:{study}"),
            )
            .with_details(serde_json::json!({"owner": owner.actor()}));
            Ok((owners_in(tx, study)?, event))
        })
    }

    /// Removes `token_id` from the owners of `study`; `by` must be an owner or the
    /// operator. A study keeps at least one owner. Returns the owners left.
    pub fn remove_owner(
        &self,
        study: &str,
        token_id: &str,
        by: &Caller,
    ) -> Result<Vec<Owner>, RegistryError> {
        self.check_owner(study, by, "remove an owner")?;
        let actor = by.actor();
        self.with_tx(|tx| {
            let owners = owners_in(tx, study)?;
            let Some(gone) = owners.iter().find(|o| o.token_id == token_id) else {
                return Err(RegistryError::Owners(format!(
                    "token `{token_id}` does not own `{study}`"
                )));
            };
            if owners.len() == 1 {
                return Err(RegistryError::Owners(format!(
                    "`{study}` keeps at least one owner: add another before removing {}",
                    gone.holder
                )));
            }
            tx.execute(
                "DELETE FROM study_owners WHERE study = ?1 AND token_id = ?2",
                params![study, token_id],
            )?;
            let event = AuditEvent::new(
                &actor,
                AuditAction::Other("study.owner.remove".into()),
                format!("study:{study}"),
            )
            .with_details(serde_json::json!({"owner": gone.holder}));
            Ok((owners_in(tx, study)?, event))
        })
    }

    /// The run, if `who` may read it; otherwise as if there were no such run.
    pub fn run_for(&self, who: &Caller, run_id: &str) -> Result<RunRecord, RegistryError> {
        let run = self.run(run_id)?;
        if who.reads_every_run() || self.owns(&run.study, who)? {
            Ok(run)
        } else {
            Err(self.deny(
                &run.study,
                who,
                "read a run",
                Some(run_id),
                RegistryError::UnknownRun(run_id.to_owned()),
            ))
        }
    }

    /// The released table of a run, if `who` may read the run.
    pub fn result_for(&self, who: &Caller, run_id: &str) -> Result<Option<Vec<u8>>, RegistryError> {
        self.run_for(who, run_id)?;
        self.result(run_id)
    }

    /// Runs, newest first, of `study` or of every study `who` may read.
    pub fn runs_for(
        &self,
        who: &Caller,
        study: Option<&str>,
    ) -> Result<Vec<RunRecord>, RegistryError> {
        if let Some(study) = study {
            self.check_reader(study, who)?;
            return self.runs(Some(study));
        }
        let runs = self.runs(None)?;
        Ok(match who {
            Caller::Holder(p) if !who.reads_every_run() => {
                let owned = self.owned_studies(&p.token_id)?;
                let owned = if p.role == Role::Researcher {
                    owned
                } else {
                    BTreeSet::new()
                };
                runs.into_iter()
                    .filter(|r| owned.contains(&r.study))
                    .collect()
            }
            _ => runs,
        })
    }
}

#[cfg(test)]
#[path = "owners_tests.rs"]
mod tests;
