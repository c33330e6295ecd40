//! carrel's warehouse on the Spin runtime of `carrel-runtime`: the app with the
//! warehouse's grants, ingestion and its pseudonymiser, studies, patients' rights, tokens
//! and authentication, the auditor's reports, and the `carrel:eds` capabilities.
//! It knows nothing of the pages, the API or the binary above it.

pub mod app;
pub mod app_error;
pub mod audit_commands;
pub mod authn;
pub mod capabilities;
pub mod carrel_settings;
pub mod download_formats;
pub mod ingest;
pub mod patients;
pub mod progress;
pub mod refusals;
pub mod sessions;
pub mod state_dir;
pub mod study;
pub mod tokens;

/// The manifest reader and router live in their own crate (no wasmtime behind it), so
/// fuzz/ can build them alone.
pub use carrel_manifest as manifest;
