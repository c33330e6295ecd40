//! carrel's runtime: a Spin-compatible host on wasmtime. It loads `spin.toml` apps, serves
//! their HTTP triggers, pools their instances and gives them WASI and Spin's interfaces
//! (key-value, SQLite, variables, outbound HTTP, Redis, MQTT, PostgreSQL).
//!
//! It knows nothing of the warehouse. A layer above adds its own interfaces and grants to
//! every instance ([`instance_state::InstanceExtension`], [`app::AppLoader`]) and its own
//! requests and callers to the server ([`server::HostFront`]).

pub mod app;
pub mod capabilities;
pub mod component_logs;
pub mod componentize;
pub mod dotenv;
pub mod engine;
pub mod error;
pub mod file_mounts;
pub mod guest_failure;
pub mod instance_pool;
pub mod instance_state;
pub mod request_body;
pub mod responses;
pub mod runtime_config;
pub mod server;

/// The manifest reader and router live in their own crate (no wasmtime behind it), so
/// fuzz/ can build them alone.
pub use carrel_manifest as manifest;
