//! Objections and removals as counts over time, read from the audit log: what the
//! auditor's view and the public register show. Counts only, by month.

use super::DATASET;
use super::objections::OBJECTION_ACTION;
use super::selector::{OBJECTION, RETENTION};
use crate::ingest::WITHHELD_ACTION;
use carrel_vault::audit::AuditEntry;
use carrel_vault::{PURGE_ACTION, REWRITE_ACTION};
use std::collections::BTreeMap;

/// One month's counts (or the totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Objections registered that named a patient not registered before.
    pub objections: u64,
    /// Consultations not stored because their patient had objected.
    pub rows_withheld: u64,
    /// Stored consultations removed because their patient objected.
    pub removed_for_objection: u64,
    /// Stored consultations removed because they were past retention.
    pub removed_for_retention: u64,
    /// Passes completed (segments rewritten, old data keys destroyed).
    pub passes: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.objections += other.objections;
        self.rows_withheld += other.rows_withheld;
        self.removed_for_objection += other.removed_for_objection;
        self.removed_for_retention += other.removed_for_retention;
        self.passes += other.passes;
    }

    pub fn is_empty(&self) -> bool {
        *self == Counts::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RightsReport {
    /// `YYYY-MM` (UTC) to that month's counts; months with nothing are left out.
    pub months: BTreeMap<String, Counts>,
    pub totals: Counts,
}

fn count(value: &serde_json::Value) -> u64 {
    value.as_u64().unwrap_or(0)
}

/// What one audit entry counts for, if anything.
fn counts_of(entry: &AuditEntry) -> Option<Counts> {
    let details = &entry.details;
    let mut counts = Counts::default();
    match entry.action.as_str() {
        OBJECTION_ACTION => {
            counts.objections = u64::from(count(&details["newly_registered"]) > 0);
        }
        WITHHELD_ACTION => counts.rows_withheld = count(&details["rows_withheld"]),
        REWRITE_ACTION if entry.subject == DATASET => {
            counts.removed_for_objection = count(&details["rows_removed"][OBJECTION]);
            counts.removed_for_retention = count(&details["rows_removed"][RETENTION]);
        }
        PURGE_ACTION if entry.subject == DATASET && details["phase"] == "completed" => {
            counts.passes = 1;
        }
        _ => return None,
    }
    Some(counts)
}

impl RightsReport {
    pub fn from_entries(entries: &[AuditEntry]) -> Self {
        let mut report = RightsReport::default();
        for entry in entries {
            let Some(counts) = counts_of(entry) else {
                continue;
            };
            if counts.is_empty() {
                continue;
            }
            let month = entry.time.get(..7).unwrap_or("unknown").to_owned();
            report.months.entry(month).or_default().add(&counts);
            report.totals.add(&counts);
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(time: &str, action: &str, subject: &str, details: serde_json::Value) -> AuditEntry {
        AuditEntry {
            seq: 1,
            time: time.into(),
            actor: "a".into(),
            action: action.into(),
            subject: subject.into(),
            details,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn objections_withheld_and_removed_rows_are_counted_by_month() {
        let entries = [
            entry(
                "2026-03-02T10:00:00Z",
                OBJECTION_ACTION,
                "patients",
                json!({"newly_registered": 2}),
            ),
            entry(
                "2026-03-05T10:00:00Z",
                OBJECTION_ACTION,
                "patients",
                json!({"newly_registered": 0}),
            ),
            entry(
                "2026-03-09T10:00:00Z",
                WITHHELD_ACTION,
                "dataset:consultations",
                json!({"rows_withheld": 4}),
            ),
            entry(
                "2026-04-01T00:00:00Z",
                REWRITE_ACTION,
                DATASET,
                json!({"rows_removed": {"objection": 3, "retention": 10}}),
            ),
            entry(
                "2026-04-01T00:00:01Z",
                PURGE_ACTION,
                DATASET,
                json!({"phase": "completed"}),
            ),
            entry("2026-04-02T00:00:00Z", "study.run", "study:x", json!({})),
        ];
        let report = RightsReport::from_entries(&entries);
        assert_eq!(report.months.len(), 2);
        let march = report.months["2026-03"];
        assert_eq!((march.objections, march.rows_withheld), (1, 4));
        let april = report.months["2026-04"];
        assert_eq!(
            (
                april.removed_for_objection,
                april.removed_for_retention,
                april.passes
            ),
            (3, 10, 1)
        );
        assert_eq!(report.totals.removed_for_retention, 10);
    }
}
