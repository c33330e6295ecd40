//! A pass: the rows of patients who objected and the rows past retention removed from
//! storage, the old segments and their data keys destroyed (`Vault::purge_rows`), and
//! the objections it covered noted as applied.

use super::{DATASET, PatientRights, PatientsError, today};
use carrel_vault::{PurgeProgress, PurgeReport, VaultError};
use std::collections::BTreeMap;

/// What a pass did, in counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Rows removed, by reason (`objection`, `retention`).
    pub rows_removed: BTreeMap<String, u64>,
    pub segments_rewritten: u64,
    pub segments_removed: u64,
    pub segments_reencrypted: u64,
    pub data_keys_destroyed: u64,
    /// Objections whose stored rows are now all gone.
    pub objections_applied: u64,
    /// The first day kept, when a retention period is set (days since 1970-01-01).
    pub retention_cutoff: Option<i32>,
}

impl PassReport {
    fn add(&mut self, purge: &PurgeReport) {
        for (reason, count) in &purge.rows_removed {
            *self.rows_removed.entry(reason.clone()).or_default() += count;
        }
        self.segments_rewritten += purge.segments_rewritten;
        self.segments_removed += purge.segments_removed;
        self.segments_reencrypted += purge.segments_reencrypted;
        self.data_keys_destroyed += purge.data_keys_destroyed;
    }

    pub fn rows_removed_total(&self) -> u64 {
        self.rows_removed.values().sum()
    }
}

impl PatientRights {
    /// Whether a pass has something to do: an objection not yet applied, a pass that was
    /// interrupted, or stored rows older than the retention period.
    pub fn pass_due(&self) -> Result<bool, PatientsError> {
        if self.objections.pending()? > 0 || self.vault.purge_pending(DATASET)? {
            return Ok(true);
        }
        let Some(cutoff) = self.config.retention_cutoff(today()) else {
            return Ok(false);
        };
        Ok(self
            .vault
            .earliest_date(DATASET, "date")?
            .is_some_and(|earliest| earliest < cutoff))
    }

    /// Runs a pass to completion (blocking I/O), continuing one that was interrupted.
    /// While studies may run (serving), call it holding [`PatientRights::store_gate`]
    /// for writing. `progress` is told after each segment.
    pub fn run_pass(
        &self,
        actor: &str,
        progress: &mut dyn FnMut(PurgeProgress),
    ) -> Result<PassReport, PatientsError> {
        let _one_pass = self.pass_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = PassReport::default();
        loop {
            let exclusions = self.exclusions()?;
            report.retention_cutoff = exclusions.before_day;
            let purge = match self.vault.purge_rows(DATASET, actor, &exclusions, progress) {
                Ok(purge) => purge,
                // Nothing was ever stored: nothing to remove.
                Err(VaultError::UnknownDataset(_)) => PurgeReport::default(),
                Err(e) => return Err(e.into()),
            };
            report.add(&purge);
            // A pass continued from an earlier call rewrote some segments under that
            // call's objections: look again with today's before noting any as applied.
            if !purge.started_new_pass && purge.completed_audit_seq.is_some() {
                continue;
            }
            report.objections_applied = self
                .objections
                .mark_applied(exclusions.objections.generation)?;
            break;
        }
        tracing::info!(
            rows_removed = report.rows_removed_total(),
            objections_applied = report.objections_applied,
            "patients' rights pass done"
        );
        Ok(report)
    }
}
