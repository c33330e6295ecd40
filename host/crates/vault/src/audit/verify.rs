//! Walking the chain: the first entry that does not check out, and why.

use rusqlite::{Connection, OptionalExtension};

use super::chain::{HashedFields, entry_hash};
use super::{AuditHead, read_recorded_head, visit_entries};
use crate::error::Result;

/// The outcome of [`super::AuditLog::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    Intact { entries: u64, head: AuditHead },
    Broken { seq: u64, problem: ChainBreak },
}

/// How the chain is broken at the reported sequence number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The entry's content no longer hashes to its stored hash.
    #[error("edited (hash mismatch)")]
    Edited,
    /// Entries are missing before the next present one.
    #[error("deleted (seq gap: the next entry present is seq {next_present})")]
    Deleted { next_present: u64 },
    /// The entry's prev_hash is not the hash of the entry before it.
    #[error("reordered (prev_hash does not link)")]
    Reordered,
    /// The log ends before the head recorded with the last append.
    #[error("truncated (the recorded head is seq {recorded_seq}, the log ends before it)")]
    Truncated { recorded_seq: u64 },
    /// The recorded head names an entry whose hash differs, or is missing altogether.
    #[error("head mismatch (the recorded head does not match the last entry)")]
    HeadMismatch,
}

pub(super) fn verify_chain(conn: &Connection) -> Result<VerifyReport> {
    verify_from(conn, &AuditHead::genesis())
}

/// Walks the entries after `start`, an entry verified before (or the genesis), after
/// checking that it is still there with the same hash.
pub(super) fn verify_from(conn: &Connection, start: &AuditHead) -> Result<VerifyReport> {
    if start.seq > 0 {
        let stored: Option<String> = conn
            .query_row(
                "SELECT hash FROM audit WHERE seq = ?1",
                [start.seq as i64],
                |r| r.get(0),
            )
            .optional()?;
        match stored {
            Some(hash) if hash == start.hash => {}
            Some(_) => {
                return Ok(VerifyReport::Broken {
                    seq: start.seq,
                    problem: ChainBreak::Edited,
                });
            }
            None => {
                let next_present: Option<i64> = conn.query_row(
                    "SELECT MIN(seq) FROM audit WHERE seq > ?1",
                    [start.seq as i64],
                    |r| r.get(0),
                )?;
                return Ok(VerifyReport::Broken {
                    seq: start.seq,
                    problem: ChainBreak::Deleted {
                        next_present: next_present.map_or(0, |n| n as u64),
                    },
                });
            }
        }
    }
    let mut expected_seq = start.seq + 1;
    let mut prev_hash = start.hash.clone();
    let mut broken = None;
    visit_entries(conn, start.seq, |entry| {
        if broken.is_some() {
            return Ok(());
        }
        if entry.seq != expected_seq {
            broken = Some((
                expected_seq,
                ChainBreak::Deleted {
                    next_present: entry.seq,
                },
            ));
            return Ok(());
        }
        if entry.prev_hash != prev_hash {
            broken = Some((entry.seq, ChainBreak::Reordered));
            return Ok(());
        }
        let fields = HashedFields {
            seq: entry.seq,
            time: &entry.time,
            actor: &entry.actor,
            action: &entry.action,
            subject: &entry.subject,
            details: &entry.details,
        };
        // Details that are not a JSON object were not written by the append path.
        if !entry.details.is_object() || entry_hash(&prev_hash, &fields) != entry.hash {
            broken = Some((entry.seq, ChainBreak::Edited));
            return Ok(());
        }
        prev_hash = entry.hash;
        expected_seq += 1;
        Ok(())
    })?;
    if let Some((seq, problem)) = broken {
        return Ok(VerifyReport::Broken { seq, problem });
    }
    let last = AuditHead {
        seq: expected_seq - 1,
        hash: prev_hash,
    };
    match read_recorded_head(conn)? {
        None if last.seq == 0 => Ok(VerifyReport::Intact {
            entries: 0,
            head: last,
        }),
        Some(recorded) if recorded == last => Ok(VerifyReport::Intact {
            entries: last.seq,
            head: last,
        }),
        Some(recorded) if recorded.seq > last.seq => Ok(VerifyReport::Broken {
            seq: last.seq + 1,
            problem: ChainBreak::Truncated {
                recorded_seq: recorded.seq,
            },
        }),
        _ => Ok(VerifyReport::Broken {
            seq: last.seq.max(1),
            problem: ChainBreak::HeadMismatch,
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::audit::{AuditAction, AuditEvent, AuditLog, ChainBreak, VerifyReport};
    use crate::catalog;

    fn log_with_entries(count: u64) -> (tempfile::TempDir, AuditLog, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = catalog::open_connection(dir.path()).unwrap();
        catalog::migrate(&conn).unwrap();
        let log = AuditLog::from_connection(conn);
        for index in 0..count {
            let event = AuditEvent::new("operator", AuditAction::DatasetAppend, "consultations")
                .with_details(json!({"rows": index, "segment": format!("s{index}")}));
            log.append(&event).unwrap();
        }
        let tamper = catalog::open_connection(dir.path()).unwrap();
        (dir, log, tamper)
    }

    #[test]
    fn untouched_chain_verifies_with_its_head() {
        let (_dir, log, _tamper) = log_with_entries(5);
        let head = log.head().unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(
            log.verify().unwrap(),
            VerifyReport::Intact { entries: 5, head }
        );
    }

    #[test]
    fn empty_log_verifies_with_the_genesis_head() {
        let (_dir, log, _tamper) = log_with_entries(0);
        let VerifyReport::Intact { entries, head } = log.verify().unwrap() else {
            panic!()
        };
        assert_eq!(
            (entries, head.seq, head.hash.as_str()),
            (0, 0, crate::audit::GENESIS_PREV_HASH)
        );
    }

    #[test]
    fn edited_details_are_reported_at_the_edited_seq() {
        let (_dir, log, tamper) = log_with_entries(5);
        tamper
            .execute(
                "UPDATE audit SET details = '{\"rows\":99}' WHERE seq = 3",
                [],
            )
            .unwrap();
        assert_eq!(
            log.verify().unwrap(),
            VerifyReport::Broken {
                seq: 3,
                problem: ChainBreak::Edited
            }
        );
    }

    #[test]
    fn edited_actor_is_reported_as_edited() {
        let (_dir, log, tamper) = log_with_entries(3);
        tamper
            .execute("UPDATE audit SET actor = 'someone else' WHERE seq = 2", [])
            .unwrap();
        assert_eq!(
            log.verify().unwrap(),
            VerifyReport::Broken {
                seq: 2,
                problem: ChainBreak::Edited
            }
        );
    }

    #[test]
    fn deleted_entry_is_reported_as_a_seq_gap() {
        let (_dir, log, tamper) = log_with_entries(5);
        tamper
            .execute("DELETE FROM audit WHERE seq = 2", [])
            .unwrap();
        assert_eq!(
            log.verify().unwrap(),
            VerifyReport::Broken {
                seq: 2,
                problem: ChainBreak::Deleted { next_present: 3 }
            }
        );
    }

    #[test]
    fn swapped_entries_are_reported_as_reordered() {
        let (_dir, log, tamper) = log_with_entries(5);
        tamper
            .execute_batch(
                "UPDATE audit SET seq = -1 WHERE seq = 2;
                 UPDATE audit SET seq = 2 WHERE seq = 3;
                 UPDATE audit SET seq = 3 WHERE seq = -1;",
            )
            .unwrap();
        assert_eq!(
            log.verify().unwrap(),
            VerifyReport::Broken {
                seq: 2,
                problem: ChainBreak::Reordered
            }
        );
    }

    #[test]
    fn deleted_tail_is_reported_as_truncated() {
        let (_dir, log, tamper) = log_with_entries(5);
        tamper
            .execute("DELETE FROM audit WHERE seq >= 4", [])
            .unwrap();
        assert_eq!(
            log.verify().unwrap(),
            VerifyReport::Broken {
                seq: 4,
                problem: ChainBreak::Truncated { recorded_seq: 5 }
            }
        );
    }

    #[test]
    fn deleted_head_record_is_reported_as_head_mismatch() {
        let (_dir, log, tamper) = log_with_entries(2);
        tamper.execute("DELETE FROM audit_head", []).unwrap();
        assert_eq!(
            log.verify().unwrap(),
            VerifyReport::Broken {
                seq: 2,
                problem: ChainBreak::HeadMismatch
            }
        );
    }

    #[test]
    fn a_walk_from_a_verified_head_checks_only_what_follows_and_that_head() {
        let (_dir, log, tamper) = log_with_entries(5);
        let VerifyReport::Intact { head: at_three, .. } = ({
            let (_d, l, _t) = log_with_entries(3);
            l.verify().unwrap()
        }) else {
            panic!()
        };
        // Another log's head is not this log's entry 3.
        assert_eq!(
            log.verify_since(&at_three).unwrap(),
            VerifyReport::Broken {
                seq: 3,
                problem: ChainBreak::Edited
            }
        );
        let three = crate::audit::AuditHead {
            seq: 3,
            hash: log.entry(3).unwrap().unwrap().hash,
        };
        assert_eq!(
            log.verify_since(&three).unwrap(),
            log.verify().unwrap(),
            "same report as the whole walk"
        );
        // An edit before the verified head is the full walk's to find.
        tamper
            .execute("UPDATE audit SET actor = 'x' WHERE seq = 2", [])
            .unwrap();
        assert!(matches!(
            log.verify_since(&three).unwrap(),
            VerifyReport::Intact { entries: 5, .. }
        ));
        tamper
            .execute("UPDATE audit SET actor = 'x' WHERE seq = 4", [])
            .unwrap();
        assert_eq!(
            log.verify_since(&three).unwrap(),
            VerifyReport::Broken {
                seq: 4,
                problem: ChainBreak::Edited
            }
        );
        tamper
            .execute("DELETE FROM audit WHERE seq = 3", [])
            .unwrap();
        assert_eq!(
            log.verify_since(&three).unwrap(),
            VerifyReport::Broken {
                seq: 3,
                problem: ChainBreak::Deleted { next_present: 4 }
            }
        );
    }

    #[test]
    fn details_that_are_not_an_object_are_refused() {
        let (_dir, log, _tamper) = log_with_entries(0);
        let event = AuditEvent::new("operator", AuditAction::AuthFailed, "association:42")
            .with_details(json!([1]));
        assert!(log.append(&event).is_err());
        assert_eq!(log.head().unwrap().seq, 0);
    }

    #[test]
    fn export_writes_entries_after_the_given_seq_as_json_lines() {
        let (_dir, log, _tamper) = log_with_entries(4);
        let mut out = Vec::new();
        assert_eq!(log.export_jsonl(2, &mut out).unwrap(), 2);
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(
            lines
                .iter()
                .map(|l| l["seq"].as_u64().unwrap())
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
        assert_eq!(lines[0]["action"], "dataset.append");
    }

    #[test]
    fn unknown_action_names_round_trip_through_other() {
        assert_eq!(AuditAction::parse("auth.failed"), AuditAction::AuthFailed);
        assert_eq!(AuditAction::parse("study.run").as_str(), "study.run");
    }
}
