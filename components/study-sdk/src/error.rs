//! Why a study fails: the WIT `study-error`, as a Rust error.

use std::fmt;

/// Why a study run failed, as the study reports it to the host (the WIT
/// `carrel:eds/study-types.study-error`). Build one with [`StudyError::invalid_params`]
/// or [`StudyError::failed`], or let `?` convert an Arrow error into
/// [`StudyError::Failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StudyError {
    /// A parameter is missing or malformed: the researcher's request, not the data.
    InvalidParams(String),
    /// Anything else: a dataset that cannot be opened (`access denied: …`,
    /// `not found: …`), a column of an unexpected type, a broken batch.
    Failed(String),
}

impl StudyError {
    pub fn invalid_params(message: impl Into<String>) -> StudyError {
        StudyError::InvalidParams(message.into())
    }

    pub fn failed(message: impl Into<String>) -> StudyError {
        StudyError::Failed(message.into())
    }

    /// The message without its kind.
    pub fn message(&self) -> &str {
        match self {
            StudyError::InvalidParams(message) | StudyError::Failed(message) => message,
        }
    }
}

impl fmt::Display for StudyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StudyError::InvalidParams(message) => write!(f, "invalid parameters: {message}"),
            StudyError::Failed(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for StudyError {}

impl From<arrow_schema::ArrowError> for StudyError {
    fn from(error: arrow_schema::ArrowError) -> StudyError {
        StudyError::Failed(format!("arrow: {error}"))
    }
}
