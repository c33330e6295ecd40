//! carrel's host: a Spin-compatible runtime on wasmtime, and the warehouse around it.

pub mod manifest;
