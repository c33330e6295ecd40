//! carrel's host: a Spin-compatible runtime on wasmtime, and the warehouse around it.

pub mod capabilities;
pub mod manifest;
pub mod runtime_config;
pub mod engine;
pub mod instance_state;
pub mod worker;
pub mod files;
pub mod app;
pub mod server;
pub mod build_command;
