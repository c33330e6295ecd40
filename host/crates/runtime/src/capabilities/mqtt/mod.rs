//! Outbound MQTT publishing (`spin:mqtt/mqtt@3.0.0` and `fermyon:spin/mqtt@2.0.0`).
//!
//! The shape every capability module has: the WIT (`wit/deps/spin-mqtt@3.0.0`,
//! `wit/deps/fermyon-spin@2.0.0/mqtt.wit`), a host struct implementing the generated
//! traits (`spin3.rs`, `fermyon2.rs`), [`add_to_linker`], and the permission set computed
//! once per app: the component's `allowed_outbound_hosts` ([`OutboundGrants`]), which must
//! allow the `mqtt://` address before a session is opened. A refused address is the
//! interface's own `connection-failed` error, as in Spin, never a trap. The wire work is `rumqttc`'s
//! ([`session`]); every step is bounded in time, and an instance holds a bounded number of
//! sessions.

/// The conversions between the host's MQTT types and one interface generation's (`Error`,
/// `WitQos` and the host's names resolve where it is used): both generations declare the
/// same types, which bindgen makes distinct Rust types.
macro_rules! conversions_with_generated_types {
    () => {
        impl From<MqttError> for Error {
            fn from(e: MqttError) -> Self {
                match e {
                    MqttError::InvalidAddress => Error::InvalidAddress,
                    MqttError::TooManyConnections => Error::TooManyConnections,
                    MqttError::ConnectionFailed(m) => Error::ConnectionFailed(m),
                    MqttError::Other(m) => Error::Other(m),
                }
            }
        }

        impl From<WitQos> for Qos {
            fn from(q: WitQos) -> Self {
                match q {
                    WitQos::AtMostOnce => Qos::AtMostOnce,
                    WitQos::AtLeastOnce => Qos::AtLeastOnce,
                    WitQos::ExactlyOnce => Qos::ExactlyOnce,
                }
            }
        }
    };
}

mod bindings;
mod fermyon2;
mod session;
mod spin3;

pub use session::{MqttError, Qos};

use crate::capabilities::outbound_http::OutboundGrants;
use session::{Login, Session};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Sessions one instance may hold at once: each is a socket in the host.
const MAX_CONNECTIONS_PER_INSTANCE: usize = 16;

/// An open session, as held in a guest's resource table. A publish takes the lock for as
/// long as it drives the session, without holding the guest's store.
pub struct ConnectionHandle {
    session: Arc<tokio::sync::Mutex<Session>>,
}

/// What the MQTT host sees of one instance's state.
pub struct MqttView<'a> {
    /// The component's `allowed_outbound_hosts`, shared with its HTTP and TCP checks.
    pub grants: &'a OutboundGrants,
    /// How many MQTT connections the instance holds.
    pub open_connections: &'a mut usize,
    pub table: &'a mut ResourceTable,
}

impl MqttView<'_> {
    /// Checks the address against the grants and the session count; the session is opened
    /// by the caller, without the guest's store.
    fn admit(&self, address: &str) -> Result<url::Url, MqttError> {
        let url = session::parse_address(address)?;
        if !self.grants.allows_url(&url) {
            tracing::warn!("MQTT address not allowed by allowed_outbound_hosts");
            // Spin's refusal, word for word (its conformance tests hold runtimes to it).
            return Err(MqttError::ConnectionFailed(format!(
                "address {address} is not permitted"
            )));
        }
        if *self.open_connections >= MAX_CONNECTIONS_PER_INSTANCE {
            return Err(MqttError::TooManyConnections);
        }
        Ok(url)
    }

    fn push(&mut self, session: Session) -> wasmtime::Result<Resource<ConnectionHandle>> {
        let handle = self.table.push(ConnectionHandle {
            session: Arc::new(tokio::sync::Mutex::new(session)),
        })?;
        *self.open_connections += 1;
        Ok(handle)
    }

    fn session(
        &self,
        handle: &Resource<ConnectionHandle>,
    ) -> wasmtime::Result<Arc<tokio::sync::Mutex<Session>>> {
        Ok(self.table.get(handle)?.session.clone())
    }

    fn close(&mut self, handle: Resource<ConnectionHandle>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        *self.open_connections = self.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// Opens a session once the address is admitted.
async fn open(
    url: url::Url,
    username: String,
    password: String,
    keep_alive_secs: u64,
) -> Result<Session, MqttError> {
    Session::open(
        url,
        Login {
            username,
            password,
            keep_alive_secs,
        },
    )
    .await
}

/// Publishes on a session, waiting for its turn if another publish holds it.
async fn publish(
    session: Arc<tokio::sync::Mutex<Session>>,
    topic: String,
    payload: Vec<u8>,
    qos: Qos,
) -> Result<(), MqttError> {
    session.lock().await.publish(topic, payload, qos).await
}

/// Implemented by the store data of instances that may use MQTT.
pub trait MqttState: Send {
    fn mqtt(&mut self) -> MqttView<'_>;
}

/// The host side of both MQTT interfaces.
pub struct Mqtt;

impl HasData for Mqtt {
    type Data<'a> = MqttView<'a>;
}

pub fn add_to_linker<T: MqttState + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::spin::mqtt::mqtt::add_to_linker::<T, Mqtt>(linker, T::mqtt)?;
    bindings::fermyon::spin::mqtt::add_to_linker::<T, Mqtt>(linker, T::mqtt)?;
    Ok(())
}
