//! What the study register records: submissions and their approval state, runs and how
//! they ended, with the privacy each spent, and the register's errors. Kept apart from
//! the register's storage so the budget and owners modules that the register uses can
//! name them without importing the register.

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no catalog in {0}: run `carrel keys init` first")]
    NoCatalog(String),
    #[error("study `{0}` has never been submitted: run `carrel study submit {0}` first")]
    NotSubmitted(String),
    #[error("study `{0}` is already approved for these hashes")]
    AlreadyApproved(String),
    #[error("study `{0}` is revoked: submit it again before it can be approved")]
    Revoked(String),
    #[error("study `{0}` is not approved, so there is nothing to revoke")]
    NothingToRevoke(String),
    #[error(
        "study `{study}`: its {what} changed since it was submitted (submitted {submitted}, now {now}): submit it again"
    )]
    ChangedSinceSubmission {
        study: String,
        what: &'static str,
        submitted: String,
        now: String,
    },
    #[error("no run `{0}`")]
    UnknownRun(String),
    /// The manifest declares no study by that name; `known` lists those it declares.
    #[error("no study `{id}` in the manifest (studies: {known})")]
    NotInManifest { id: String, known: String },
    /// The study is not the caller's: said as if there were no such study.
    #[error("no study `{0}` of yours")]
    NotYours(String),
    /// A change of owners that cannot be made.
    #[error("{0}")]
    Owners(String),
    #[error("catalog error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Audit(#[from] carrel_vault::VaultError),
}

/// Where a study stands in the approval process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalState {
    Submitted,
    Approved,
    Revoked,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Revoked => "revoked",
        }
    }
}

/// The latest submission of a study and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Submission {
    pub study: String,
    pub wasm_sha256: String,
    pub manifest_sha256: String,
    pub submitted_at: String,
    pub submitted_by: String,
    pub approved_at: Option<String>,
    pub approved_by: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

impl Submission {
    pub fn state(&self) -> ApprovalState {
        if self.revoked_at.is_some() {
            ApprovalState::Revoked
        } else if self.approved_at.is_some() {
            ApprovalState::Approved
        } else {
            ApprovalState::Submitted
        }
    }
}

/// How a run ended. Stored and shown as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Succeeded,
    /// The study trapped, timed out, broke the contract or returned an error.
    Failed,
    /// Not runnable, or its output failed disclosure control.
    Refused,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Refused => "refused",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One run, as recorded. `result` (the released table, Arrow IPC) is read separately.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub study: String,
    pub actor: String,
    pub params: Vec<(String, String)>,
    pub started_at: String,
    pub finished_at: String,
    pub status: RunStatus,
    /// Why the run failed or was refused, in full: for auditors (and synthetic tries) only,
    /// since a study's error text can carry rows.
    pub error: Option<String>,
    /// What a researcher is told instead of `error`: a refusal before the study ran
    /// (never submitted, revoked, expired…) in full, or after it touched data only a fixed
    /// category (`failed`, `timed out`, `not patient-local`,
    /// `refused by disclosure control`, `contract violation`).
    #[serde(default)]
    pub researcher_error: Option<String>,
    pub wasm_sha256: String,
    pub manifest_sha256: String,
    pub output_sha256: Option<String>,
    /// `dataset/segment` ids decrypted for the run.
    pub segments_read: Vec<String>,
    pub rows_read: u64,
    pub rows_released: u64,
    /// The disclosure report (counts of redacted cells, never values).
    pub disclosure: serde_json::Value,
    pub denied: Vec<String>,
    pub logs: Vec<String>,
    /// Contributions the host dropped: beyond a patient's bound in a cell, or a row adding
    /// twice to a measure. For auditors.
    #[serde(default)]
    pub contributions_dropped: u64,
    /// The patient-locality check: patients sampled, re-run, and those that differed (by
    /// study pseudonym). For auditors.
    #[serde(default)]
    pub locality: serde_json::Value,
    /// The privacy accounting of the run (`super::budget`): its ε and δ, what it was
    /// charged and what the study has spent. `None` for runs refused before reading.
    #[serde(default)]
    pub privacy: Option<Spend>,
    /// What a model study released beside its table: a model evaluation's performance
    /// (AUROC, thresholds, calibration), or a fit's rows, events and family. Computed by
    /// the host from its own counts; shown to the researcher.
    #[serde(default)]
    pub model_report: serde_json::Value,
}

/// The privacy accounting of one run, kept in its record and its audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub dataset: String,
    /// The perturbation the release had (`carrel_disclosure::noise::PERTURBATION_VERSION`).
    pub perturbation: String,
    pub noise_scale: f64,
    /// The run's `ε` and `δ` from the declared bounds.
    pub epsilon: f64,
    pub delta: f64,
    /// What the run took from the budget: `epsilon`, or 0 when it read nothing or repeated
    /// an earlier release exactly.
    pub charged: f64,
    /// The earlier run whose release this one repeated.
    pub repeat_of: Option<String>,
    /// The budget, and what was spent of it with this run.
    pub budget: f64,
    pub spent: f64,
}

/// The current UTC time as RFC 3339, as run records and submissions store it.
pub(crate) fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("current UTC time formats as RFC 3339")
}
