//! Outbound PostgreSQL (`spin:postgres/postgres@4.2.0`, which serves 4.0.0 imports by
//! semver, `spin:postgres/postgres@3.0.0` and `fermyon:spin/postgres@2.0.0`).
//!
//! The shape every capability module has: the WIT (`wit/deps/spin-postgres@*`,
//! `wit/deps/fermyon-spin@2.0.0/postgres.wit`), a host struct implementing the generated
//! traits (`v4.rs`, `v3.rs`, `fermyon2.rs`), [`add_to_linker`], and the permission set
//! computed once per app: the component's `allowed_outbound_hosts` ([`OutboundGrants`]),
//! which must allow every host (and `hostaddr`) of the address before a connection is
//! opened. A refused address is the interface's `connection-failed` error, never a trap.
//! The wire work is `tokio-postgres`'s ([`client`]); values are converted once, in
//! [`values`], for every interface version.

mod bindings;
mod client;
mod fermyon2;
mod v3;
mod v4;
mod values;

pub use client::{PgError, QueryFailure};

use crate::capabilities::outbound_http::OutboundGrants;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Connections one instance may hold at once: each is a socket and a server process.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 8;

/// An open connection, as held in a guest's resource table.
pub struct ConnectionHandle {
    client: Arc<tokio_postgres::Client>,
}

/// A `connection-builder` (4.1.0): the address, until `build` opens it.
pub struct BuilderHandle {
    address: String,
}

/// What the PostgreSQL host sees of one instance's state.
pub struct PostgresView<'a> {
    /// The component's `allowed_outbound_hosts`, shared with its HTTP and TCP checks.
    pub grants: &'a OutboundGrants,
    /// How many PostgreSQL connections the instance holds.
    pub open_connections: &'a mut usize,
    pub table: &'a mut ResourceTable,
}

impl PostgresView<'_> {
    /// Checks the address against the grants and the connection count; the connection is
    /// opened by the caller, without the guest's store.
    fn admit(&self, address: &str) -> Result<tokio_postgres::Config, PgError> {
        let config = client::parse_address(address)?;
        client::check_hosts(&config, self.grants)?;
        if *self.open_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(PgError::ConnectionFailed(format!(
                "too many open connections (at most {MAX_CONNECTIONS_PER_INSTANCE} per instance)"
            )));
        }
        Ok(config)
    }

    /// Admits `address` and opens it: the synchronous interfaces' `open`, which hold the
    /// view across the connect.
    async fn open_connection(
        &mut self,
        address: &str,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, PgError>> {
        let config = match self.admit(address) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        match client::connect(config).await {
            Ok(c) => Ok(Ok(self.push(c)?)),
            Err(e) => Ok(Err(e)),
        }
    }

    fn push(
        &mut self,
        client: tokio_postgres::Client,
    ) -> wasmtime::Result<Resource<ConnectionHandle>> {
        let handle = self.table.push(ConnectionHandle {
            client: Arc::new(client),
        })?;
        *self.open_connections += 1;
        Ok(handle)
    }

    fn client(
        &self,
        handle: &Resource<ConnectionHandle>,
    ) -> wasmtime::Result<Arc<tokio_postgres::Client>> {
        Ok(self.table.get(handle)?.client.clone())
    }

    fn close(&mut self, handle: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        *self.open_connections = self.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// Implemented by the store data of instances that may use PostgreSQL.
pub trait PostgresState: Send {
    fn postgres(&mut self) -> PostgresView<'_>;
}

/// The host side of every PostgreSQL interface version.
pub struct Postgres;

impl HasData for Postgres {
    type Data<'a> = PostgresView<'a>;
}

pub fn add_to_linker<T: PostgresState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::spin::postgres4_2_0::postgres::add_to_linker::<T, Postgres>(linker, T::postgres)?;
    bindings::spin::postgres3_0_0::postgres::add_to_linker::<T, Postgres>(linker, T::postgres)?;
    bindings::fermyon::spin::postgres::add_to_linker::<T, Postgres>(linker, T::postgres)?;
    bindings::fermyon::spin::rdbms_types::add_to_linker::<T, Postgres>(linker, T::postgres)?;
    Ok(())
}
