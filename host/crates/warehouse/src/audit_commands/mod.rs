//! The auditor's view: what `carrel audit manifest|diff|log|checkpoint|runs|run` reports
//! (the binary's `cli/audit.rs` parses and prints them), next to the vault's
//! `carrel audit verify|export|head`.
//!
//! - `manifest`: for every component, what spin.toml grants it, what its binary imports
//!   (read from the component with wasmtime), the difference (imports without a grant,
//!   grants it cannot use), and the approval of studies. JSON with `--format json`,
//!   documented in [`report`].
//! - `diff OLD.json NEW.json`: what changed between two such reports; exits 1 when
//!   anything did, like diff(1).
//! - `log`: audit entries, one readable line each, filtered.
//! - `checkpoint`: a signed audit head that later proves the log only grew.
//! - `runs`, `run`: study runs as recorded, in full (the study's log and error text, what
//!   it read and was denied, the locality check), which researchers never see.

pub mod checkpoint;
pub mod classify;
pub mod diff;
pub mod inspect;
pub mod log;
pub mod render;
pub mod report;
