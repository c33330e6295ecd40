//! `carrel audit log`: audit entries for people, one line each, filtered.

use carrel_vault::audit::AuditEntry;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogArgs {
    /// Only entries by this actor: `operator`, a holder as named (`Dr Alice Martin
    /// (token:ab12cd34)`), or a token alone (`token:ab12cd34`).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, or a family of them: `study` matches `study.run`, `study.approve`, …
    #[arg(long)]
    pub action: Option<String>,
    /// Only entries at or after this time: RFC 3339 (`2026-03-01T08:00:00Z`) or a day
    /// (`2026-03-01`, midnight UTC).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<OffsetDateTime>,
    /// Only this subject, or subjects starting with it (`study:` for every study).
    #[arg(long)]
    pub subject: Option<String>,
    /// Only the last N matching entries.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

fn parse_since(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| crate::study::manifest::parse_day(text).map(|d| d.midnight().assume_utc()))
        .map_err(|_| format!("`{text}` is neither an RFC 3339 time nor a day YYYY-MM-DD"))
}

impl LogArgs {
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        let actor = self.actor.as_ref().is_none_or(|a| {
            &entry.actor == a
                || (a.starts_with("token:") && entry.actor.ends_with(&format!(" ({a})")))
        });
        let action = self.action.as_ref().is_none_or(|a| {
            entry.action == *a
                || entry
                    .action
                    .strip_prefix(a.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
        });
        let subject = self
            .subject
            .as_ref()
            .is_none_or(|s| entry.subject.starts_with(s.as_str()));
        // An entry whose time does not parse is shown rather than hidden.
        let since = self.since.is_none_or(|since| {
            OffsetDateTime::parse(&entry.time, &Rfc3339)
                .map(|t| t >= since)
                .unwrap_or(true)
        });
        actor && action && subject && since
    }

    /// The matching entries, the last `limit` of them, in log order.
    pub fn select(&self, entries: Vec<AuditEntry>) -> Vec<AuditEntry> {
        let mut selected: Vec<AuditEntry> =
            entries.into_iter().filter(|e| self.matches(e)).collect();
        if let Some(limit) = self.limit {
            selected.drain(..selected.len().saturating_sub(limit));
        }
        selected
    }
}

/// `seq time actor action subject details`, with control characters escaped (a study's
/// log lines reach the log).
pub fn line(entry: &AuditEntry) -> String {
    use crate::study::metadata::terminal_safe;
    let details = compact(&entry.details);
    format!(
        "{:>6}  {}  {:<16} {:<24} {}{}{}",
        entry.seq,
        terminal_safe(&entry.time),
        terminal_safe(&entry.actor),
        terminal_safe(&entry.action),
        terminal_safe(&entry.subject),
        if details.is_empty() { "" } else { "  " },
        terminal_safe(&details)
    )
}

/// `key=value` pairs; sha256 hex shortened to 16 digits (`carrel audit export` has them whole).
pub fn compact(details: &Value) -> String {
    match details {
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| format!("{k}={}", value(v)))
            .collect::<Vec<_>>()
            .join(" "),
        other => value(other),
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::String(s) if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            format!("{}…", &s[..16])
        }
        Value::String(s) if !s.is_empty() && !s.contains(char::is_whitespace) => s.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value).collect::<Vec<_>>().join(",")
        ),
        Value::Object(_) => format!("{{{}}}", compact(v)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, time: &str, actor: &str, action: &str, subject: &str) -> AuditEntry {
        AuditEntry {
            seq,
            time: time.into(),
            actor: actor.into(),
            action: action.into(),
            subject: subject.into(),
            details: serde_json::json!({}),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn entries() -> Vec<AuditEntry> {
        vec![
            entry(
                1,
                "2026-01-01T10:00:00Z",
                "operator",
                "key.init",
                "master-key",
            ),
            entry(
                2,
                "2026-02-01T10:00:00Z",
                "token:r",
                "study.submit",
                "study:ili",
            ),
            entry(
                3,
                "2026-03-01T10:00:00Z",
                "token:a",
                "study.approve",
                "study:ili",
            ),
            entry(
                4,
                "2026-03-02T10:00:00Z",
                "token:r",
                "study.run",
                "study:activity",
            ),
            entry(
                5,
                "2026-03-03T10:00:00Z",
                "Dr R (token:r)",
                "studyx",
                "study:ili",
            ),
        ]
    }

    fn seqs(args: LogArgs) -> Vec<u64> {
        args.select(entries()).iter().map(|e| e.seq).collect()
    }

    #[test]
    fn log_filters_by_action_family_actor_subject_time_and_limit() {
        let action = |a: &str| LogArgs {
            action: Some(a.into()),
            ..LogArgs::default()
        };
        assert_eq!(seqs(action("study")), [2, 3, 4]);
        assert_eq!(seqs(action("study.run")), [4]);
        assert_eq!(
            seqs(LogArgs {
                actor: Some("token:r".into()),
                subject: Some("study:ili".into()),
                ..LogArgs::default()
            }),
            [2, 5]
        );
        assert_eq!(
            seqs(LogArgs {
                actor: Some("Dr R (token:r)".into()),
                ..LogArgs::default()
            }),
            [5]
        );
        assert_eq!(
            seqs(LogArgs {
                since: Some(parse_since("2026-03-01").unwrap()),
                limit: Some(2),
                ..LogArgs::default()
            }),
            [4, 5]
        );
        assert!(parse_since("yesterday").is_err());
        assert_eq!(
            parse_since("2026-03-01T11:00:00+01:00").unwrap(),
            parse_since("2026-03-01T10:00:00Z").unwrap()
        );
    }

    #[test]
    fn a_log_line_shows_seq_time_actor_action_subject_and_compact_details() {
        let mut e = entry(
            7,
            "2026-03-01T10:00:00Z",
            "token:a",
            "study.approve",
            "study:ili",
        );
        e.details = serde_json::json!({"wasm_sha256": "ab".repeat(32), "note": "two words", "rows": 3, "error": null});
        let line = line(&e);
        assert!(
            line.starts_with("     7  2026-03-01T10:00:00Z  token:a"),
            "{line}"
        );
        assert!(
            line.ends_with("study:ili  note=\"two words\" rows=3 wasm_sha256=abababababababab…"),
            "{line}"
        );
    }
}
