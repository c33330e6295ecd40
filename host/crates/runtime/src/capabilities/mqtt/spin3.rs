//! `spin:mqtt/mqtt@3.0.0`: the async interface spin-sdk 7's `mqtt` module imports.

use super::bindings::spin::mqtt::mqtt::{
    Error, Host, HostConnection, HostConnectionWithStore, Qos as WitQos,
};
use super::{ConnectionHandle, Mqtt, MqttError, MqttView, Qos};
use wasmtime::component::{Accessor, Resource};

conversions_with_generated_types!();

impl<T> HostConnectionWithStore<T> for Mqtt {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        let url = match accessor.with(|mut access| access.get().admit(&address)) {
            Ok(url) => url,
            Err(e) => return Ok(Err(e.into())),
        };
        match super::open(url, username, password, keep_alive_interval_in_secs).await {
            Ok(session) => accessor.with(|mut access| Ok(Ok(access.get().push(session)?))),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        connection: Resource<ConnectionHandle>,
        topic: String,
        payload: Vec<u8>,
        qos: WitQos,
    ) -> wasmtime::Result<Result<(), Error>> {
        let session = accessor.with(|mut access| access.get().session(&connection))?;
        Ok(super::publish(session, topic, payload, qos.into())
            .await
            .map_err(Into::into))
    }
}

impl HostConnection for MqttView<'_> {
    fn drop(&mut self, connection: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

impl Host for MqttView<'_> {}
