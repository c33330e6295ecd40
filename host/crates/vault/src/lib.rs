//! carrel's encrypted dataset store, key management and hash-chained audit log.
//!
//! A state directory holds:
//!
//! ```text
//! <state-dir>/master.key            base64 256-bit master key, mode 0600 (or CARREL_MASTER_KEY)
//! <state-dir>/carrel.db             SQLite catalog (WAL): datasets, schema versions, column
//!                                   groups, wrapped data keys, segments, audit log
//! <state-dir>/segments/<dataset>/   one encrypted file per append (format: segment_file)
//! <state-dir>/vault.lock            held by the one process that has the vault open
//! ```
//!
//! Start with [`Vault::open`], [`Vault::create_dataset`], [`Vault::append`] and
//! [`Vault::scan`]; keys with [`init_master_key`] and [`Vault::rotate_master_key`];
//! the audit log with [`AuditLog`]. [`cli`] has the `carrel keys` and `carrel audit`
//! subcommands ready for the host's command line.

pub mod audit;
mod buffer_pool;
mod catalog;
mod chunked;
pub mod cli;
pub mod consultation;
mod crypto;
mod data_keys;
mod dataset;
mod date_filter;
mod error;
mod fsio;
mod group_codec;
mod master_key;
mod orphans;
mod purge;
mod purge_segment;
#[cfg(test)]
mod purge_tests;
mod rotation;
mod scan;
mod segment_check;
mod segment_file;
mod store;
pub mod text;

pub use audit::{
    AuditAction, AuditEntry, AuditEvent, AuditHead, AuditLog, ChainBreak, VerifyReport,
};
pub use catalog::{CATALOG_FILE, SegmentInfo, open_existing as open_catalog};
pub use dataset::{ColumnGroups, DatasetVersion};
pub use date_filter::{DateRange, ScanOptions};
pub use error::{MASTER_KEY_ENV, Result, SegmentDamage, VaultError};
pub use fsio::{create_private_file, secure_state_dir};
pub use master_key::{KeyInitReport, KeySource, MASTER_KEY_FILE, MasterKeyEnv, init_master_key};
pub use purge::{
    PURGE_ACTION, PurgeProgress, PurgeReport, REWRITE_ACTION, RowRemoval, RowSelector,
};
pub use rotation::{DataRotationReport, MasterRotationReport, RotationProgress};
pub use scan::{Scan, ScanStats};
pub use segment_check::{
    DamagedSegment, SegmentCheckProgress, SegmentCheckReport, check_stored_segments,
};
pub use store::{AppendReceipt, SEGMENTS_DIR, SYSTEM_ACTOR, Vault};

// The host shares one vault among async tasks and moves scans into blocking tasks.
const _: () = {
    const fn shared_between_threads<T: Send + Sync>() {}
    const fn moved_to_another_thread<T: Send + 'static>() {}
    shared_between_threads::<Vault>();
    shared_between_threads::<AuditLog>();
    moved_to_another_thread::<Scan>();
};
