//! Why a payload was refused, and the FHIR OperationOutcome that tells the sender.

use serde_json::{Value, json};

/// FHIR IssueType codes (http://hl7.org/fhir/issue-type) used by the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueCode {
    /// Content invalid against the rules the warehouse applies.
    Invalid,
    /// Not JSON, not an object, not a resource, or nested too deep.
    Structure,
    /// A required element is missing.
    Required,
    /// An element has a value that is not allowed (a date, a NIR key).
    Value,
    /// A reference points at nothing in the payload.
    NotFound,
    /// Two resources of one type share an id, or two entries a fullUrl.
    Duplicate,
    /// Something FHIR allows that the warehouse does not take (a searchset Bundle).
    NotSupported,
    /// A resource larger than the reader takes.
    TooCostly,
}

impl IssueCode {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueCode::Invalid => "invalid",
            IssueCode::Structure => "structure",
            IssueCode::Required => "required",
            IssueCode::Value => "value",
            IssueCode::NotFound => "not-found",
            IssueCode::Duplicate => "duplicate",
            IssueCode::NotSupported => "not-supported",
            IssueCode::TooCostly => "too-costly",
        }
    }
}

/// One reason to refuse a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub code: IssueCode,
    /// `line 12` (NDJSON, with `: Encounter.subject` when an element is at fault) or a
    /// FHIRPath-like path such as `Bundle.entry[3].resource.subject`.
    pub location: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// A payload refused whole, with everything found wrong in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("payload refused: {}", summary(.problems))]
pub struct Refusal {
    pub problems: Vec<Problem>,
}

fn summary(problems: &[Problem]) -> String {
    match problems {
        [] => "no problem listed".to_owned(),
        [only] => only.to_string(),
        [first, rest @ ..] => format!("{first} (and {} more)", rest.len()),
    }
}

/// Most characters of a sent value quoted back in a problem: enough to recognise it, and
/// a hostile megabyte-long value is not sent back (nor kept) a hundred times over.
pub const MAX_QUOTED_CHARS: usize = 64;

/// Longest problem message: longer ones (a serde message quoting a whole value) are cut.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// `value` cut to [`MAX_QUOTED_CHARS`] characters, with `…` when it was longer.
pub fn clip(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        None => std::borrow::Cow::Borrowed(value),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &value[..end])),
    }
}

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] bytes on a character boundary.
pub(crate) fn cut_message(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// More problems than this are counted, not listed: a million-line file with the same
/// mistake on every line must not produce a million-issue response.
pub const MAX_LISTED_PROBLEMS: usize = 200;

/// Collects problems, listing the first [`MAX_LISTED_PROBLEMS`] and counting the rest.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    listed: Vec<Problem>,
    unlisted: usize,
}

impl Problems {
    pub(crate) fn push(&mut self, code: IssueCode, location: String, message: String) {
        if self.listed.len() < MAX_LISTED_PROBLEMS {
            self.listed.push(Problem {
                code,
                location,
                message: cut_message(message),
            });
        } else {
            self.unlisted += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    pub(crate) fn into_refusal(mut self, whole: &str) -> Refusal {
        if self.unlisted > 0 {
            self.listed.push(Problem {
                code: IssueCode::Invalid,
                location: whole.to_owned(),
                message: format!("{} more problems were found and not listed", self.unlisted),
            });
        }
        Refusal {
            problems: self.listed,
        }
    }
}

/// A FHIR R4 OperationOutcome with one error issue per problem.
pub fn operation_outcome(problems: &[Problem]) -> Value {
    let issues: Vec<Value> = problems
        .iter()
        .map(|problem| {
            json!({
                "severity": "error",
                "code": problem.code.as_str(),
                "diagnostics": problem.message,
                "expression": [problem.location],
            })
        })
        .collect();
    json!({ "resourceType": "OperationOutcome", "issue": issues })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_outcome_has_one_error_issue_per_problem() {
        let problems = vec![
            Problem {
                code: IssueCode::NotFound,
                location: "Bundle.entry[3].resource.subject".to_owned(),
                message: "Patient/p9 is not in the payload".to_owned(),
            },
            Problem {
                code: IssueCode::Structure,
                location: "line 2".to_owned(),
                message: "malformed JSON".to_owned(),
            },
        ];
        let outcome = operation_outcome(&problems);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert_eq!(outcome["issue"].as_array().unwrap().len(), 2);
        assert_eq!(outcome["issue"][0]["severity"], "error");
        assert_eq!(outcome["issue"][0]["code"], "not-found");
        assert_eq!(
            outcome["issue"][0]["expression"][0],
            "Bundle.entry[3].resource.subject"
        );
        assert_eq!(outcome["issue"][1]["diagnostics"], "malformed JSON");
    }

    #[test]
    fn problems_beyond_the_listing_limit_are_counted_in_one_last_issue() {
        let mut problems = Problems::default();
        for line in 1..=MAX_LISTED_PROBLEMS + 5 {
            problems.push(IssueCode::Structure, format!("line {line}"), "bad".into());
        }
        let refusal = problems.into_refusal("NDJSON");
        assert_eq!(refusal.problems.len(), MAX_LISTED_PROBLEMS + 1);
        assert!(
            refusal.problems[MAX_LISTED_PROBLEMS]
                .message
                .starts_with("5 more")
        );
    }
}
