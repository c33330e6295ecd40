//! Typed errors of the vault. Messages name datasets, segments and files, never key
//! material or row data.

use std::path::PathBuf;

use arrow_schema::ArrowError;

/// The environment variable that may hold the master key (base64), instead of or as well
/// as the state directory's key file. Defined here because the errors name it.
pub const MASTER_KEY_ENV: &str = "CARREL_MASTER_KEY";

/// Why a segment file could not be trusted. Every variant is reported together with the
/// dataset and segment it concerns (see [`VaultError::Segment`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentDamage {
    #[error("segment file {file} is missing")]
    Missing { file: String },
    #[error("not a carrel segment file (bad magic or unsupported format version)")]
    NotASegment,
    #[error("truncated: file is {actual} bytes, expected {expected}")]
    Truncated { actual: u64, expected: u64 },
    #[error("malformed header: {0}")]
    MalformedHeader(String),
    #[error("file belongs to dataset `{dataset}` segment {segment} at position {position}")]
    Misplaced {
        dataset: String,
        segment: String,
        position: u64,
    },
    #[error("header disagrees with the catalog: {0}")]
    CatalogMismatch(String),
    #[error("column group `{group}` failed authentication (tampered, or moved from elsewhere)")]
    AuthenticationFailed { group: String },
    #[error("column group `{group}` is absent from the segment")]
    MissingGroup { group: String },
    #[error("column group `{group}` decrypted but does not decode: {reason}")]
    Undecodable { group: String, reason: String },
    #[error("sha256 of the file does not match the catalog")]
    ChecksumMismatch,
    #[error("the file cannot be read: {0}")]
    Unreadable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no master key: run `carrel keys init` or set {MASTER_KEY_ENV}")]
    NoMasterKey,
    #[error("the master key does not match this state directory")]
    WrongMasterKey,
    #[error(
        "{MASTER_KEY_ENV} and {} hold different master keys: unset {MASTER_KEY_ENV} or remove the file",
        path.display()
    )]
    ConflictingMasterKeys { path: PathBuf },
    #[error("{MASTER_KEY_ENV} is not a base64-encoded 256-bit key")]
    MalformedEnvMasterKey,
    #[error("{} is not a base64-encoded 256-bit key", path.display())]
    MalformedMasterKeyFile { path: PathBuf },
    #[error("a master key already exists at {}; refusing to overwrite it", path.display())]
    MasterKeyExists { path: PathBuf },
    #[error("this state directory is already initialised with a master key ({source_description})")]
    AlreadyInitialised { source_description: String },
    #[error(
        "this state directory is bound to a master key that is neither in {MASTER_KEY_ENV} nor in {}; a new key could not decrypt its data",
        path.display()
    )]
    MasterKeyLost { path: PathBuf },
    #[error(
        "the master key comes from {MASTER_KEY_ENV}; rotation writes a new key file, so move the key into {} and unset {MASTER_KEY_ENV} first",
        path.display()
    )]
    RotationNeedsKeyFile { path: PathBuf },
    #[error("state directory {} is in use by another carrel process", path.display())]
    StateDirLocked { path: PathBuf },
    #[error("no catalog at {}: nothing has been stored in this state directory", path.display())]
    NoCatalog { path: PathBuf },
    #[error(
        "invalid {what} name `{name}`: use 1-64 characters from a-z, 0-9, `_` and `-`, starting with a letter or digit"
    )]
    InvalidName { what: &'static str, name: String },
    #[error("dataset `{0}` does not exist")]
    UnknownDataset(String),
    #[error("dataset `{0}` already exists")]
    DatasetExists(String),
    #[error("dataset `{dataset}`: field `{field}` {problem}")]
    SchemaMismatch {
        dataset: String,
        field: String,
        problem: String,
    },
    #[error("dataset `{dataset}`: column `{column}` {problem}")]
    ColumnGroups {
        dataset: String,
        column: String,
        problem: String,
    },
    #[error("dataset `{dataset}` has no column `{column}`")]
    UnknownColumn { dataset: String, column: String },
    #[error("dataset `{dataset}`: date range column `{column}` {problem}")]
    InvalidDateRange {
        dataset: String,
        column: String,
        problem: String,
    },
    #[error("a scan must request at least one column")]
    NoColumnsRequested,
    #[error("dataset `{dataset}`: an append needs at least one row")]
    EmptyBatch { dataset: String },
    #[error("dataset `{dataset}` segment {segment}: {damage}")]
    Segment {
        dataset: String,
        segment: String,
        damage: SegmentDamage,
    },
    #[error("dataset `{dataset}` segment {segment}: the row selector failed: {reason}")]
    Selector {
        dataset: String,
        segment: String,
        reason: String,
    },
    #[error("the catalog is inconsistent: {0}")]
    CatalogCorrupt(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("catalog database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("audit details must be a JSON object")]
    AuditDetailsNotObject,
    #[error("writing audit export: {0}")]
    Export(#[source] std::io::Error),
}

pub type Result<T, E = VaultError> = std::result::Result<T, E>;

/// Builds a closure that wraps an I/O error with what was being done, for `map_err`.
pub(crate) fn io_context(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VaultError {
    let context = context.into();
    move |source| VaultError::Io { context, source }
}
