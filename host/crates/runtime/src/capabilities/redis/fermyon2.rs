//! `fermyon:spin/redis@2.0.0`: the WASIp2 interface of spin-sdk 5's `redis` module.

use super::bindings::fermyon::spin::redis::{
    Error, Host, HostConnection, RedisParameter, RedisResult,
};
use super::commands::{self, RedisArgument, RedisError, RedisReply};
use super::{ConnectionHandle, RedisView};
use wasmtime::component::Resource;

conversions_with_generated_types!();

type Reply<T> = wasmtime::Result<Result<T, Error>>;

impl HostConnection for RedisView<'_> {
    async fn open(&mut self, address: String) -> Reply<Resource<ConnectionHandle>> {
        let url = match self.admit(&address) {
            Ok(url) => url,
            Err(e) => return Ok(Err(e.into())),
        };
        match commands::connect(url).await {
            Ok(connection) => Ok(Ok(self.push(connection)?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn publish(
        &mut self,
        c: Resource<ConnectionHandle>,
        channel: String,
        payload: Vec<u8>,
    ) -> Reply<()> {
        let c = self.connection(&c)?;
        Ok(commands::publish(c, channel, payload)
            .await
            .map_err(Into::into))
    }

    async fn get(&mut self, c: Resource<ConnectionHandle>, key: String) -> Reply<Option<Vec<u8>>> {
        let c = self.connection(&c)?;
        Ok(commands::get(c, key).await.map_err(Into::into))
    }

    async fn set(
        &mut self,
        c: Resource<ConnectionHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Reply<()> {
        let c = self.connection(&c)?;
        Ok(commands::set(c, key, value).await.map_err(Into::into))
    }

    async fn incr(&mut self, c: Resource<ConnectionHandle>, key: String) -> Reply<i64> {
        let c = self.connection(&c)?;
        Ok(commands::incr(c, key).await.map_err(Into::into))
    }

    async fn del(&mut self, c: Resource<ConnectionHandle>, keys: Vec<String>) -> Reply<u32> {
        let c = self.connection(&c)?;
        Ok(commands::del(c, keys).await.map_err(Into::into))
    }

    async fn sadd(
        &mut self,
        c: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> Reply<u32> {
        let c = self.connection(&c)?;
        Ok(commands::sadd(c, key, values).await.map_err(Into::into))
    }

    async fn smembers(&mut self, c: Resource<ConnectionHandle>, key: String) -> Reply<Vec<String>> {
        let c = self.connection(&c)?;
        Ok(commands::smembers(c, key).await.map_err(Into::into))
    }

    async fn srem(
        &mut self,
        c: Resource<ConnectionHandle>,
        key: String,
        values: Vec<String>,
    ) -> Reply<u32> {
        let c = self.connection(&c)?;
        Ok(commands::srem(c, key, values).await.map_err(Into::into))
    }

    async fn execute(
        &mut self,
        c: Resource<ConnectionHandle>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Reply<Vec<RedisResult>> {
        let c = self.connection(&c)?;
        let arguments = arguments.into_iter().map(argument).collect();
        Ok(commands::execute(c, command, arguments)
            .await
            .map(|replies| replies.into_iter().map(reply).collect())
            .map_err(Into::into))
    }

    async fn drop(&mut self, c: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.close(c)
    }
}

impl Host for RedisView<'_> {}
