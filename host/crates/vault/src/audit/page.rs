//! Reading the log a page at a time, and bounding what clients put in it.
//!
//! An auditor's page shows a few dozen entries of a log that may hold millions: the page
//! is selected in SQL, newest first, by a cursor on `seq` (no OFFSET, so the last page
//! costs what the first does). Filters match as `carrel audit log` does: an actor exactly
//! or by `token:ID`, an action or its family (`study` matches `study.run`), a subject by
//! prefix.

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::{AuditEntry, AuditLog, entry_from_row};
use crate::error::Result;

/// Longest actor or subject an entry keeps, in characters; longer ones are clipped
/// ([`clip`]). Ids, names and routes are far shorter: only a client's string reaches it.
pub const MAX_FIELD_CHARS: usize = 512;

/// `text` if it has at most `max` characters; else its first `max` characters followed
/// by `…(sha256:HEX of N bytes)`, the hash of the whole, so an entry stays small while
/// still telling two long values apart.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!(
            "{}…(sha256:{} of {} bytes)",
            &text[..cut],
            hex::encode(Sha256::digest(text.as_bytes())),
            text.len()
        ),
    }
}

/// Which entries a page shows; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor exactly, or `token:ID` for any holder of that token.
    pub actor: Option<String>,
    /// An action, or a family of them (`study` matches `study.run`).
    pub action: Option<String>,
    /// Subjects starting with this.
    pub subject: Option<String>,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCursor {
    /// The newest matching entries.
    Newest,
    /// Matching entries older than this seq.
    Before(u64),
    /// Matching entries newer than this seq (the page is still shown newest first).
    After(u64),
}

const SELECT: &str =
    "SELECT seq, time, actor, action, subject, details, prev_hash, hash FROM audit";

const FILTER: &str = "(?1 IS NULL OR actor = ?1 OR (substr(?1, 1, 6) = 'token:' AND substr(actor, -length(?1) - 3) = ' (' || ?1 || ')'))
     AND (?2 IS NULL OR action = ?2 OR substr(action, 1, length(?2) + 1) = ?2 || '.')
     AND (?3 IS NULL OR substr(subject, 1, length(?3)) = ?3)";

fn page_in(
    conn: &Connection,
    filter: &AuditFilter,
    cursor: PageCursor,
    limit: usize,
) -> Result<Vec<AuditEntry>> {
    let (bound, order, seq) = match cursor {
        PageCursor::Newest => ("seq > ?4", "DESC", 0),
        PageCursor::Before(seq) => ("seq < ?4", "DESC", seq),
        PageCursor::After(seq) => ("seq > ?4", "ASC", seq),
    };
    let mut statement = conn.prepare_cached(&format!(
        "{SELECT} WHERE {bound} AND {FILTER} ORDER BY seq {order} LIMIT ?5"
    ))?;
    let rows = statement.query_map(
        rusqlite::params![
            filter.actor,
            filter.action,
            filter.subject,
            seq as i64,
            limit as i64
        ],
        entry_from_row,
    )?;
    let mut entries = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    if order == "ASC" {
        entries.reverse();
    }
    Ok(entries)
}

impl AuditLog {
    /// At most `limit` entries matching `filter` from `cursor`, newest first.
    pub fn page(
        &self,
        filter: &AuditFilter,
        cursor: PageCursor,
        limit: usize,
    ) -> Result<Vec<AuditEntry>> {
        page_in(&self.lock(), filter, cursor, limit)
    }

    /// Whether some entry matching `filter` lies on the far side of `seq` (`older`:
    /// below it, else above it): whether a page has a neighbour in that direction.
    pub fn has_more(&self, filter: &AuditFilter, seq: u64, older: bool) -> Result<bool> {
        let cursor = if older {
            PageCursor::Before(seq)
        } else {
            PageCursor::After(seq)
        };
        Ok(!page_in(&self.lock(), filter, cursor, 1)?.is_empty())
    }

    /// The entry `seq`, if the log has it.
    pub fn entry(&self, seq: u64) -> Result<Option<AuditEntry>> {
        let conn = self.lock();
        let mut statement = conn.prepare_cached(&format!("{SELECT} WHERE seq = ?1"))?;
        let mut rows = statement.query_map([seq as i64], entry_from_row)?;
        Ok(rows.next().transpose()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, AuditEvent};
    use crate::catalog;

    fn log() -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let conn = catalog::open_connection(dir.path()).unwrap();
        catalog::migrate(&conn).unwrap();
        let log = AuditLog::from_connection(conn);
        for (actor, action, subject) in [
            ("operator", "key.init", "master-key"),
            ("Dr R (token:r1)", "study.submit", "study:ili"),
            ("auditor (token:a1)", "study.approve", "study:ili"),
            ("Dr R (token:r1)", "study.run", "study:activity"),
            ("token:r1", "studyx", "study:ili"),
            ("Dr % (token:r1_)", "study.run", "study:ili"),
        ] {
            log.append(&AuditEvent::new(actor, AuditAction::parse(action), subject))
                .unwrap();
        }
        (dir, log)
    }

    fn seqs(log: &AuditLog, filter: AuditFilter, cursor: PageCursor, limit: usize) -> Vec<u64> {
        log.page(&filter, cursor, limit)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    #[test]
    fn a_page_filters_like_the_command_line_newest_first() {
        let (_dir, log) = log();
        let all = AuditFilter::default();
        assert_eq!(
            seqs(&log, all.clone(), PageCursor::Newest, 10),
            [6, 5, 4, 3, 2, 1]
        );
        let action = |a: &str| AuditFilter {
            action: Some(a.into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(&log, action("study"), PageCursor::Newest, 10),
            [6, 4, 3, 2]
        );
        assert_eq!(
            seqs(&log, action("study.run"), PageCursor::Newest, 10),
            [6, 4]
        );
        let actor = |a: &str| AuditFilter {
            actor: Some(a.into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            seqs(&log, actor("token:r1"), PageCursor::Newest, 10),
            [5, 4, 2]
        );
        // SQL wildcards in a filter are plain characters.
        assert_eq!(seqs(&log, actor("token:r1_"), PageCursor::Newest, 10), [6]);
        assert_eq!(
            seqs(&log, actor("token:r%"), PageCursor::Newest, 10),
            Vec::<u64>::new()
        );
        let subject = AuditFilter {
            subject: Some("study:i".into()),
            ..AuditFilter::default()
        };
        assert_eq!(seqs(&log, subject, PageCursor::Newest, 10), [6, 5, 3, 2]);
    }

    #[test]
    fn pages_follow_each_other_by_cursor_in_both_directions() {
        let (_dir, log) = log();
        let all = AuditFilter::default();
        assert_eq!(seqs(&log, all.clone(), PageCursor::Newest, 2), [6, 5]);
        assert_eq!(seqs(&log, all.clone(), PageCursor::Before(5), 2), [4, 3]);
        assert_eq!(seqs(&log, all.clone(), PageCursor::Before(3), 2), [2, 1]);
        assert_eq!(seqs(&log, all.clone(), PageCursor::After(2), 2), [4, 3]);
        assert!(log.has_more(&all, 3, true).unwrap());
        assert!(!log.has_more(&all, 1, true).unwrap());
        assert!(!log.has_more(&all, 6, false).unwrap());
        assert_eq!(log.entry(4).unwrap().unwrap().action, "study.run");
        assert_eq!(log.entry(7).unwrap(), None);
    }

    #[test]
    fn a_long_value_is_clipped_with_the_hash_of_the_whole() {
        assert_eq!(clip("short", 10), "short");
        let long = "é".repeat(1000);
        let clipped = clip(&long, 10);
        assert!(clipped.starts_with(&"é".repeat(10)), "{clipped}");
        assert!(clipped.ends_with("of 2000 bytes)"), "{clipped}");
        assert_ne!(clip(&format!("{long}x"), 10), clipped);
        assert!(clipped.chars().count() < 100);
    }
}
