//! carrel's warehouse, its web pages and study API, and the binary's subcommands, on the
//! Spin runtime of `carrel-runtime`.

pub mod api;
pub mod app;
pub mod audit_commands;
pub mod authn;
pub mod build_command;
pub mod capabilities;
pub mod carrel_settings;
pub mod demo;
pub mod demo_models;
mod demo_runs;
pub mod download_formats;
pub mod front;
pub mod import;
pub mod ingest;
pub mod patients;
pub mod progress;
pub mod refusals;
pub mod state_dir;
pub mod study;
pub mod tokens;
pub mod watch;
pub mod web;

/// The manifest reader and router live in their own crate (no wasmtime behind it), so
/// fuzz/ can build them alone.
pub use carrel_manifest as manifest;
