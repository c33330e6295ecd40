//! carrel's host: a Spin-compatible runtime on wasmtime, and the warehouse around it.

pub mod api;
pub mod app;
pub mod audit_commands;
pub mod authn;
pub mod build_command;
pub mod capabilities;
pub mod carrel_settings;
pub mod component_logs;
pub mod componentize;
pub mod demo;
pub mod demo_models;
mod demo_runs;
pub mod dotenv;
pub mod download_formats;
pub mod engine;
pub mod file_mounts;
pub mod guest_failure;
pub mod import;
pub mod ingest;
pub mod instance_pool;
pub mod instance_state;
pub mod patients;
pub mod progress;
pub mod refusals;
pub mod request_body;
pub mod responses;
pub mod runtime_config;
pub mod server;
pub mod state_dir;
pub mod study;
pub mod tokens;
pub mod watch;
pub mod web;

/// The manifest reader and router live in their own crate (no wasmtime behind it), so
/// fuzz/ can build them alone.
pub use carrel_manifest as manifest;
