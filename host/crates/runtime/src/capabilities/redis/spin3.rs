//! `spin:redis/redis@3.0.0`: the async interface spin-sdk 7's `redis` module imports.

use super::bindings::spin::redis::redis::{
    Error, Host, HostConnection, HostConnectionWithStore, RedisParameter, RedisResult,
};
use super::commands::{self, RedisArgument, RedisError, RedisReply};
use super::{ConnectionHandle, Redis, RedisView};
use redis::aio::MultiplexedConnection;
use wasmtime::component::{Accessor, Resource};

conversions_with_generated_types!();

type Reply<T> = wasmtime::Result<Result<T, Error>>;

/// The connection behind a handle, cloned out so the command runs without the store.
fn connection<T>(
    accessor: &Accessor<T, Redis>,
    c: &Resource<ConnectionHandle>,
) -> wasmtime::Result<MultiplexedConnection> {
    accessor.with(|mut access| access.get().connection(c))
}

impl<T> HostConnectionWithStore<T> for Redis {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Reply<Resource<ConnectionHandle>> {
        let url = match accessor.with(|mut access| access.get().admit(&address)) {
            Ok(url) => url,
            Err(e) => return Ok(Err(e.into())),
        };
        match commands::connect(url).await {
            Ok(conn) => accessor.with(|mut access| Ok(Ok(access.get().push(conn)?))),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        channel: String,
        payload: Vec<u8>,
    ) -> Reply<()> {
        let c = connection(accessor, &c)?;
        Ok(commands::publish(c, channel, payload)
            .await
            .map_err(Into::into))
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        key: String,
    ) -> Reply<Option<Vec<u8>>> {
        let c = connection(accessor, &c)?;
        Ok(commands::get(c, key).await.map_err(Into::into))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Reply<()> {
        let c = connection(accessor, &c)?;
        Ok(commands::set(c, key, value).await.map_err(Into::into))
    }

    async fn incr(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        key: String,
    ) -> Reply<i64> {
        let c = connection(accessor, &c)?;
        Ok(commands::incr(c, key).await.map_err(Into::into))
    }

    async fn del(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        keys: Vec<String>,
    ) -> Reply<u32> {
        let c = connection(accessor, &c)?;
        Ok(commands::del(c, keys).await.map_err(Into::into))
    }

    async fn sadd(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> Reply<u32> {
        let c = connection(accessor, &c)?;
        Ok(commands::sadd(c, key, values).await.map_err(Into::into))
    }

    async fn smembers(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        key: String,
    ) -> Reply<Vec<String>> {
        let c = connection(accessor, &c)?;
        Ok(commands::smembers(c, key).await.map_err(Into::into))
    }

    async fn srem(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> Reply<u32> {
        let c = connection(accessor, &c)?;
        Ok(commands::srem(c, key, values).await.map_err(Into::into))
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        c: Resource<ConnectionHandle>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Reply<Vec<RedisResult>> {
        let c = connection(accessor, &c)?;
        let arguments = arguments.into_iter().map(argument).collect();
        Ok(commands::execute(c, command, arguments)
            .await
            .map(|replies| replies.into_iter().map(reply).collect())
            .map_err(Into::into))
    }
}

impl HostConnection for RedisView<'_> {
    fn drop(&mut self, c: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl Host for RedisView<'_> {}
