//! `fermyon:spin/mqtt@2.0.0`: the WASIp2 interface of spin-sdk 5's `mqtt` module.

use super::bindings::fermyon::spin::mqtt::{Error, Host, HostConnection, Qos as WitQos};
use super::{ConnectionHandle, MqttError, MqttView, Qos};
use wasmtime::component::Resource;

conversions_with_generated_types!();

impl HostConnection for MqttView<'_> {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<ConnectionHandle>, Error>> {
        let url = match self.admit(&address) {
            Ok(url) => url,
            Err(e) => return Ok(Err(e.into())),
        };
        match super::open(url, username, password, keep_alive_interval_in_secs).await {
            Ok(session) => Ok(Ok(self.push(session)?)),
            Err(e) => Ok(Err(e.into())),
        }
    }

    async fn publish(
        &mut self,
        connection: Resource<ConnectionHandle>,
        topic: String,
        payload: Vec<u8>,
        qos: WitQos,
    ) -> wasmtime::Result<Result<(), Error>> {
        let session = self.session(&connection)?;
        Ok(super::publish(session, topic, payload, qos.into())
            .await
            .map_err(Into::into))
    }

    async fn drop(&mut self, connection: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

impl Host for MqttView<'_> {}
