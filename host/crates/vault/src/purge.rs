//! Removing rows for good: a [`RowSelector`] says which rows of a dataset must go (a
//! patient's objection, a retention period), and [`Vault::purge_rows`] rewrites every
//! segment of the dataset under new data keys, without those rows, then destroys the old
//! data keys. A copy of an old segment file (a backup, a disk image) can no longer be
//! decrypted once the pass completes: its keys are gone.
//!
//! Steps, each crash-safe:
//!
//! 1. The selector is run over the dataset without changing anything
//!    ([`Vault::rows_to_purge`]); when nothing is to be removed, the pass stops there.
//! 2. One transaction, audited as `dataset.purge` (`started`): the dataset's active data
//!    keys become `retiring` and get active successors, so that appends from then on
//!    are written under keys that survive the pass.
//! 3. Each segment still under a retiring key is rewritten ([`crate::purge_segment`]):
//!    new file first, then one transaction switching the catalog to it (a segment that
//!    lost rows gets a new id, audited as `dataset.rewrite` with counts only), then the
//!    old file is removed. A crash before the commit leaves the old segment (the new
//!    file is an orphan the next open removes); after it, the new one (the old file is
//!    the orphan). The catalog names exactly one of them, so rows are never counted twice
//!    and never lost.
//! 4. One transaction, audited as `dataset.purge` (`completed`): the retiring keys are
//!    deleted. A pass interrupted anywhere is continued by the next call, which finds the
//!    retiring keys.
//!
//! Appends continue during a pass: the writer lock is taken only for the transactions,
//! never while a segment is decrypted, filtered or re-encrypted. A scan planned before a
//! segment was rewritten fails on it (its old file is gone): callers keep scans and
//! passes apart (the host's store gate).

use std::collections::BTreeMap;

use arrow_array::RecordBatch;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde_json::json;

use crate::audit::{AuditAction, AuditEvent, append_in_transaction};
use crate::catalog::SegmentInfo;
use crate::data_keys;
use crate::error::{Result, VaultError};
use crate::store::Vault;

/// Which rows of one segment stay, and why the others go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowRemoval {
    /// One entry per row of the segment: `true` keeps it.
    pub keep: Vec<bool>,
    /// Rows removed, by reason (`objection`, `retention`, …); counts only.
    pub removed: BTreeMap<String, u64>,
}

impl RowRemoval {
    pub fn removed_rows(&self) -> u64 {
        self.keep.iter().filter(|kept| !**kept).count() as u64
    }
}

/// Decides which rows leave a dataset. It is handed only [`RowSelector::columns`] of each
/// segment, decrypted, and must answer for every row.
pub trait RowSelector: Sync {
    /// The columns `select` reads; each must exist in every schema version of the dataset.
    fn columns(&self) -> Vec<String>;
    /// Which of the segment's rows to keep. `rows` holds [`RowSelector::columns`] in that
    /// order. An error stops the pass, naming the segment.
    fn select(&self, rows: &RecordBatch) -> std::result::Result<RowRemoval, String>;
}

/// How far a pass has come, after each segment, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeProgress {
    pub segments_done: u64,
    /// Segments under retiring keys when the rewriting began.
    pub segments_total: u64,
    /// Rows removed by this call so far.
    pub rows_removed: u64,
}

/// What one call of [`Vault::purge_rows`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurgeReport {
    /// False when this call continued a pass an earlier one had started (or had nothing
    /// to do).
    pub started_new_pass: bool,
    /// Rows removed by this call, by reason.
    pub rows_removed: BTreeMap<String, u64>,
    /// Segments that lost some of their rows and were written anew.
    pub segments_rewritten: u64,
    /// Segments that lost all their rows and were removed.
    pub segments_removed: u64,
    /// Segments that kept all their rows and were only re-encrypted under the new keys.
    pub segments_reencrypted: u64,
    pub data_keys_destroyed: u64,
    /// The `dataset.purge` entry that completed the pass; `None` when there was nothing
    /// to remove and no pass was pending.
    pub completed_audit_seq: Option<u64>,
}

impl PurgeReport {
    pub fn total_removed(&self) -> u64 {
        self.rows_removed.values().sum()
    }
}

pub(crate) fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (reason, count) in from {
        *into.entry(reason.clone()).or_default() += count;
    }
}

impl Vault {
    /// Whether a pass over `dataset` was started and not completed (its keys are still
    /// retiring): the next [`Vault::purge_rows`] continues it.
    pub fn purge_pending(&self, dataset: &str) -> Result<bool> {
        self.with_reader(|conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM data_keys WHERE dataset = ?1 AND state = 'retiring')",
                [dataset],
                |r| r.get(0),
            )?)
        })
    }

    /// The earliest value of date column `column` in `dataset`, in days since 1970-01-01,
    /// from what each append recorded (no segment is opened); `None` for no value.
    pub fn earliest_date(&self, dataset: &str, column: &str) -> Result<Option<i32>> {
        self.with_reader(|conn| {
            Ok(conn.query_row(
                "SELECT MIN(r.min_days) FROM segment_date_ranges r JOIN segments s ON s.id = r.segment_id
                 WHERE s.dataset = ?1 AND r.column_name = ?2",
                params![dataset, column],
                |r| r.get(0),
            )?)
        })
    }

    /// The rows `selector` would remove from `dataset`, by reason; reads every segment
    /// and changes nothing.
    pub fn rows_to_purge(
        &self,
        dataset: &str,
        selector: &dyn RowSelector,
    ) -> Result<BTreeMap<String, u64>> {
        let columns = selector.columns();
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        let mut scan = self.scan(dataset, &names)?;
        let mut removed = BTreeMap::new();
        while let Some(batch) = scan.next() {
            let batch = batch?;
            let segment = scan.segment_ids_read().last().cloned().unwrap_or_default();
            let removal = selector
                .select(&batch)
                .map_err(|reason| selector_error(dataset, &segment, reason))?;
            check_removal(dataset, &segment, &removal, batch.num_rows())?;
            add_counts(&mut removed, &removal.removed);
        }
        removed.retain(|_, count| *count > 0);
        Ok(removed)
    }

    /// Removes the rows `selector` picks from every segment of `dataset` and destroys the
    /// data keys the old segments were encrypted under, or continues a pass that was
    /// interrupted. `progress` is told after each segment. See the module documentation
    /// for the steps and why a crash at any point loses nothing.
    pub fn purge_rows(
        &self,
        dataset: &str,
        actor: &str,
        selector: &dyn RowSelector,
        progress: &mut dyn FnMut(PurgeProgress),
    ) -> Result<PurgeReport> {
        let mut report = PurgeReport::default();
        if !self.purge_pending(dataset)? {
            let to_remove = self.rows_to_purge(dataset, selector)?;
            if to_remove.is_empty() {
                return Ok(report);
            }
            self.start_purge(dataset, actor, &to_remove)?;
            report.started_new_pass = true;
        }
        let segments_total = self.with_reader(|conn| {
            Ok(
                conn.query_row(SEGMENTS_UNDER_RETIRING_KEYS, [dataset], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })? as u64;
        let mut done = 0;
        while let Some(segment) = self.next_segment_to_purge(dataset)? {
            let outcome = self.purge_segment(dataset, actor, &segment, selector)?;
            outcome.count_into(&mut report);
            done += 1;
            progress(PurgeProgress {
                segments_done: done,
                segments_total,
                rows_removed: report.total_removed(),
            });
        }
        let (destroyed, seq) = self.finish_purge(dataset, actor, &report)?;
        report.data_keys_destroyed = destroyed;
        report.completed_audit_seq = Some(seq);
        tracing::info!(
            dataset,
            rows_removed = report.total_removed(),
            segments = done,
            "purge pass completed"
        );
        Ok(report)
    }

    fn start_purge(
        &self,
        dataset: &str,
        actor: &str,
        to_remove: &BTreeMap<String, u64>,
    ) -> Result<()> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let groups: Vec<String> = tx
            .prepare(
                "SELECT group_name FROM data_keys WHERE dataset = ?1 AND state = 'active' ORDER BY group_name",
            )?
            .query_map([dataset], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        tx.execute(
            "UPDATE data_keys SET state = 'retiring' WHERE dataset = ?1 AND state = 'active'",
            [dataset],
        )?;
        let master = self.master();
        for group in &groups {
            let (key_id, key) = data_keys::create_active_key(&tx, &master, dataset, group)?;
            self.data_keys.insert(&key_id, dataset, group, key);
        }
        drop(master);
        let event = AuditEvent::new(actor, AuditAction::Other(PURGE_ACTION.into()), dataset)
            .with_details(json!({
                "phase": "started",
                "rows_to_remove": to_remove,
                "data_keys_replaced": groups.len(),
            }));
        append_in_transaction(&tx, &event)?;
        tx.commit()?;
        Ok(())
    }

    fn next_segment_to_purge(&self, dataset: &str) -> Result<Option<SegmentInfo>> {
        self.with_reader(|conn| {
            let next: Option<String> = conn
                .query_row(
                    "SELECT s.id FROM segments s
                     WHERE s.dataset = ?1 AND EXISTS (
                         SELECT 1 FROM segment_keys k JOIN data_keys d ON d.key_id = k.key_id
                         WHERE k.segment_id = s.id AND d.state = 'retiring')
                     ORDER BY s.position LIMIT 1",
                    [dataset],
                    |row| row.get(0),
                )
                .optional()?;
            let Some(id) = next else { return Ok(None) };
            self.load_segments(conn, dataset)?
                .into_iter()
                .find(|s| s.id == id)
                .map(Some)
                .ok_or_else(|| {
                    VaultError::CatalogCorrupt("a segment vanished during a purge".into())
                })
        })
    }

    fn finish_purge(&self, dataset: &str, actor: &str, report: &PurgeReport) -> Result<(u64, u64)> {
        let mut conn = self.writer();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let still_used: i64 =
            tx.query_row(SEGMENTS_UNDER_RETIRING_KEYS, [dataset], |r| r.get(0))?;
        if still_used > 0 {
            return Err(VaultError::CatalogCorrupt(format!(
                "{still_used} segments of `{dataset}` are still under retiring keys after the purge"
            )));
        }
        let destroyed = tx.execute(
            "DELETE FROM data_keys WHERE dataset = ?1 AND state = 'retiring'",
            [dataset],
        )? as u64;
        let event = AuditEvent::new(actor, AuditAction::Other(PURGE_ACTION.into()), dataset)
            .with_details(json!({
                "phase": "completed",
                "rows_removed_by_last_call": report.rows_removed,
                "segments_rewritten": report.segments_rewritten,
                "segments_removed": report.segments_removed,
                "segments_reencrypted": report.segments_reencrypted,
                "data_keys_destroyed": destroyed,
            }));
        let head = append_in_transaction(&tx, &event)?;
        tx.commit()?;
        // Cached copies of the destroyed keys go too; active ones are unwrapped again.
        self.data_keys.clear();
        crate::catalog::forget_deleted(&conn)?;
        Ok((destroyed, head.seq))
    }
}

/// Audit action of a pass's start and completion.
pub const PURGE_ACTION: &str = "dataset.purge";
/// Audit action of one segment that lost rows.
pub const REWRITE_ACTION: &str = "dataset.rewrite";

const SEGMENTS_UNDER_RETIRING_KEYS: &str = "SELECT count(DISTINCT k.segment_id) FROM segment_keys k
     JOIN data_keys d ON d.key_id = k.key_id WHERE d.state = 'retiring' AND d.dataset = ?1";

pub(crate) fn selector_error(dataset: &str, segment: &str, reason: String) -> VaultError {
    VaultError::Selector {
        dataset: dataset.to_owned(),
        segment: segment.to_owned(),
        reason,
    }
}

/// The selector must answer for every row, and its counts must add up to what it drops.
pub(crate) fn check_removal(
    dataset: &str,
    segment: &str,
    removal: &RowRemoval,
    rows: usize,
) -> Result<()> {
    if removal.keep.len() != rows {
        return Err(selector_error(
            dataset,
            segment,
            format!("answered for {} rows of {rows}", removal.keep.len()),
        ));
    }
    let counted: u64 = removal.removed.values().sum();
    if counted != removal.removed_rows() {
        return Err(selector_error(
            dataset,
            segment,
            format!(
                "removes {} rows but gives reasons for {counted}",
                removal.removed_rows()
            ),
        ));
    }
    Ok(())
}
