//! Why a study fails: the WIT `study-error`, as a Rust error.

use std::fmt;

/// Why a study failed, as it reports it to the host (the WIT
/// `carrel:eds/study-types.study-error`). On real data the researcher is told only that
/// the run failed; the message is kept for auditors, so it must not carry rows either.
///
/// Parameters are not a study's concern any more: the host checks every run parameter
/// against the values the manifest declares before the study runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyError {
    message: String,
}

impl StudyError {
    pub fn failed(message: impl Into<String>) -> StudyError {
        StudyError {
            message: message.into(),
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StudyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StudyError {}
