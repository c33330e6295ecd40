//! Errors of disclosure control. Messages name columns, rows and metadata keys, never
//! the value of a cell: they end up in the run record, which the researcher can read,
//! and an error about a small count must not leak that count. The one exception is a
//! negative count, whose value cannot be a real count of anyone.

use arrow_schema::ArrowError;

/// Why a table could not be released.
///
/// `Refused` is a policy decision about a well-formed table (too many rows, row-level
/// output, a study policy weaker than the operator's); every other variant says the
/// table or the policy is malformed, and where.
#[derive(Debug, thiserror::Error)]
pub enum DisclosureError {
    /// The table, or the study's policy, is not something the host will release.
    #[error("refused: {0}")]
    Refused(String),

    /// A policy field has a value that cannot be applied (e.g. rounding to 0).
    #[error("invalid disclosure policy: {field} {message}")]
    InvalidPolicy {
        field: &'static str,
        message: String,
    },

    /// Two columns share a name, so metadata naming one of them would be ambiguous.
    #[error("column `{column}` appears more than once in the table")]
    DuplicateColumn { column: String },

    /// `carrel.kind` has a value this version does not know.
    #[error("column `{column}`: unknown carrel.kind `{kind}` (expected `count` or `share`)")]
    UnknownKind { column: String, kind: String },

    /// A metadata key required by the column's kind is absent or empty.
    #[error("column `{column}`: metadata {key} is missing")]
    MissingKey { column: String, key: &'static str },

    /// A metadata key was put on a column whose kind does not use it; it would
    /// otherwise be silently ignored and the researcher would believe it applied.
    #[error("column `{column}`: metadata {key} is only allowed on a {allowed_on} column")]
    MisplacedKey {
        column: String,
        key: &'static str,
        allowed_on: &'static str,
    },

    /// A metadata key names a column the table does not have.
    #[error("column `{column}`: {key} names `{target}`, which is not a column of the table")]
    UnknownColumn {
        column: String,
        key: &'static str,
        target: String,
    },

    /// A metadata key names a column that exists but is not a count column.
    #[error("column `{column}`: {key} names `{target}`, which is not a count column")]
    NotACount {
        column: String,
        key: &'static str,
        target: String,
    },

    /// Any other malformed metadata (self-reference, a part listed twice, ...).
    #[error("column `{column}`: {message}")]
    Malformed { column: String, message: String },

    /// A column's Arrow type does not fit its kind.
    #[error("column `{column}`: a {kind} column cannot have type {data_type}")]
    WrongType {
        column: String,
        kind: &'static str,
        data_type: String,
    },

    /// A count cell is null: a study must say 0, not nothing.
    #[error("count column `{column}`, row {row}: null count")]
    NullCount { column: String, row: usize },

    /// A count cell is negative.
    #[error("count column `{column}`, row {row}: negative count {value}")]
    NegativeCount {
        column: String,
        row: usize,
        value: i64,
    },

    /// Building the released batch failed (a broken invariant rather than bad input).
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}
