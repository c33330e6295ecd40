//! carrel's pages and study API on the warehouse of `carrel-warehouse`, and the binary's
//! subcommands that need more than the warehouse (demo, import, watch, build).

pub mod api;
pub mod build_command;
pub mod demo;
pub mod demo_models;
mod demo_runs;
pub mod front;
pub mod import;
pub mod table_print;
pub mod watch;
pub mod web;

/// The manifest reader and router live in their own crate (no wasmtime behind it), so
/// fuzz/ can build them alone.
pub use carrel_manifest as manifest;
