//! Outbound Redis (`spin:redis/redis@3.0.0` and `fermyon:spin/redis@2.0.0`).
//!
//! The shape every capability module has: the WIT (`wit/deps/spin-redis@3.0.0`,
//! `wit/deps/fermyon-spin@2.0.0/redis.wit`), a host struct implementing the generated
//! traits (`spin3.rs`, `fermyon2.rs`), [`add_to_linker`], and the permission set computed
//! once per app: the component's `allowed_outbound_hosts` ([`OutboundGrants`]), which must
//! allow the `redis://` address before a connection is opened. A refused address is the
//! interface's own `invalid-address` error, never a trap. The wire work is the `redis`
//! crate's; every command is bounded in time, and an instance holds a bounded number of
//! connections.

/// The conversions between the host's Redis types and one interface generation's. Both
/// generations declare the same types, which bindgen makes distinct Rust types; the names
/// (`Error`, `RedisResult`, `RedisParameter` and the host's) resolve where it is used.
macro_rules! conversions_with_generated_types {
    () => {
        impl From<RedisError> for Error {
            fn from(e: RedisError) -> Self {
                match e {
                    RedisError::InvalidAddress => Error::InvalidAddress,
                    RedisError::TooManyConnections => Error::TooManyConnections,
                    RedisError::TypeError => Error::TypeError,
                    RedisError::Other(m) => Error::Other(m),
                }
            }
        }

        fn reply(r: RedisReply) -> RedisResult {
            match r {
                RedisReply::Nil => RedisResult::Nil,
                RedisReply::Status(s) => RedisResult::Status(s),
                RedisReply::Int64(i) => RedisResult::Int64(i),
                RedisReply::Binary(b) => RedisResult::Binary(b),
            }
        }

        fn argument(p: RedisParameter) -> RedisArgument {
            match p {
                RedisParameter::Int64(i) => RedisArgument::Int64(i),
                RedisParameter::Binary(b) => RedisArgument::Binary(b),
            }
        }
    };
}

mod bindings;
mod commands;
mod fermyon2;
mod spin3;

pub use commands::{RedisError, RedisReply};

use crate::capabilities::outbound_http::OutboundGrants;
use std::time::Duration;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Connections one instance may hold at once: each is a socket in the host.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 16;
/// How long connecting, or any one command, may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// An open connection, as held in a guest's resource table. The multiplexed connection is
/// a cheap handle: a command clones it and runs without holding the guest's store.
pub struct ConnectionHandle {
    connection: redis::aio::MultiplexedConnection,
}

/// What the Redis host sees of one instance's state.
pub struct RedisView<'a> {
    /// The component's `allowed_outbound_hosts`, shared with its HTTP and TCP checks.
    pub grants: &'a OutboundGrants,
    /// How many Redis connections the instance holds.
    pub open_connections: &'a mut usize,
    pub table: &'a mut ResourceTable,
}

impl RedisView<'_> {
    /// Checks the address against the grants and the connection count; the connection is
    /// opened by the caller, without the guest's store.
    fn admit(&self, address: &str) -> Result<url::Url, RedisError> {
        let url = commands::parse_address(address)?;
        if !self.grants.allows_url(&url) {
            tracing::warn!("Redis address not allowed by allowed_outbound_hosts");
            return Err(RedisError::InvalidAddress);
        }
        if *self.open_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(RedisError::TooManyConnections);
        }
        Ok(url)
    }

    fn push(
        &mut self,
        connection: redis::aio::MultiplexedConnection,
    ) -> wasmtime::Result<Resource<ConnectionHandle>> {
        let handle = self.table.push(ConnectionHandle { connection })?;
        *self.open_connections += 1;
        Ok(handle)
    }

    fn connection(
        &self,
        handle: &Resource<ConnectionHandle>,
    ) -> wasmtime::Result<redis::aio::MultiplexedConnection> {
        Ok(self.table.get(handle)?.connection.clone())
    }

    fn close(&mut self, handle: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        *self.open_connections = self.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// Implemented by the store data of instances that may use Redis.
pub trait RedisState: Send {
    fn redis(&mut self) -> RedisView<'_>;
}

/// The host side of both Redis interfaces.
pub struct Redis;

impl HasData for Redis {
    type Data<'a> = RedisView<'a>;
}

pub fn add_to_linker<T: RedisState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::spin::redis::redis::add_to_linker::<T, Redis>(linker, T::redis)?;
    bindings::fermyon::spin::redis::add_to_linker::<T, Redis>(linker, T::redis)?;
    Ok(())
}
