//! Spin's interfaces, one module each, all with the same shape: the WIT, a host struct
//! implementing the generated traits, `add_to_linker`, and the permission set computed once
//! per app from the manifest and copied into each instance's state.

pub mod key_value;
pub mod mqtt;
pub mod outbound_http;
pub mod postgres;
pub mod redis;
pub mod sqlite;
pub mod variables;
