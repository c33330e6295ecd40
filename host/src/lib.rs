//! carrel's pages and study API on the warehouse of `carrel-warehouse`, and the front that
//! serves them beside the app's components. The binary's subcommands (demo, import, watch,
//! build and the rest) live in the binary's `cli/`.

pub mod api;
pub mod forms;
pub mod front;
pub mod web;

/// The manifest reader and router live in their own crate (no wasmtime behind it), so
/// fuzz/ can build them alone.
pub use carrel_manifest as manifest;
