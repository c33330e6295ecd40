//! One MQTT session on `rumqttc`: opened when the broker acknowledges the connection, and
//! a publish returns when the broker has what its quality of service promises.

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use std::time::Duration;

/// How long connecting, or any one publish, may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest message a guest may publish.
const MAX_PAYLOAD_BYTES: usize = 16 << 20;

/// An error in the terms of both MQTT interfaces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    #[error("not an `mqtt://` address")]
    InvalidAddress,
    #[error("too many open MQTT connections")]
    TooManyConnections,
    /// Refused by `allowed_outbound_hosts`, or the broker could not be reached.
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    #[error("{0}")]
    Other(String),
}

/// The quality of service of a publish, as both interfaces name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    AtMostOnce,
    AtLeastOnce,
    ExactlyOnce,
}

/// An `mqtt://host[:port][?client_id=…]` address. TLS (`mqtts://`) is refused by name:
/// this host's client speaks plain TCP only.
pub fn parse_address(address: &str) -> Result<url::Url, MqttError> {
    let url = url::Url::parse(address).map_err(|_| MqttError::InvalidAddress)?;
    match url.scheme() {
        "mqtt" if url.host_str().is_some() => Ok(url),
        "mqtts" => Err(MqttError::Other(
            "`mqtts://` (TLS) is not supported by this host: use `mqtt://`".into(),
        )),
        _ => Err(MqttError::InvalidAddress),
    }
}

/// The client and its event loop: a publish drives the loop until its acknowledgement.
pub struct Session {
    client: AsyncClient,
    events: EventLoop,
}

/// What opening a session asks for, besides the address.
pub struct Login {
    pub username: String,
    pub password: String,
    pub keep_alive_secs: u64,
}

impl Session {
    pub async fn open(url: url::Url, login: Login) -> Result<Session, MqttError> {
        let host = url.host_str().unwrap_or_default();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = url.port().unwrap_or(1883);
        let client_id = url
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(random_client_id);
        let mut options = MqttOptions::new(client_id, host, port);
        // MQTT carries the keep-alive in 16 bits; 0 turns it off.
        let keep_alive = login.keep_alive_secs.min(u64::from(u16::MAX));
        options
            .set_keep_alive(Duration::from_secs(keep_alive))
            .set_max_packet_size(64 << 10, MAX_PAYLOAD_BYTES + (64 << 10));
        if !login.username.is_empty() {
            options.set_credentials(login.username, login.password);
        }
        let (client, events) = AsyncClient::new(options, 8);
        let mut session = Session { client, events };
        session
            .drive_until(|event| matches!(event, Event::Incoming(Packet::ConnAck(_))))
            .await
            .map_err(|e| MqttError::ConnectionFailed(e.to_string()))?;
        Ok(session)
    }

    pub async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> Result<(), MqttError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(MqttError::Other(format!(
                "payload of {} bytes is over the limit of {MAX_PAYLOAD_BYTES}",
                payload.len()
            )));
        }
        let qos = match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        };
        self.client
            .publish(topic, qos, false, payload)
            .await
            .map_err(|e| MqttError::Other(e.to_string()))?;
        // One publish at a time per session: the first acknowledgement seen is this one's.
        let done = move |event: &Event| match qos {
            QoS::AtMostOnce => matches!(event, Event::Outgoing(Outgoing::Publish(_))),
            QoS::AtLeastOnce => matches!(event, Event::Incoming(Packet::PubAck(_))),
            QoS::ExactlyOnce => matches!(event, Event::Incoming(Packet::PubComp(_))),
        };
        self.drive_until(done)
            .await
            .map_err(|e| MqttError::Other(e.to_string()))
    }

    /// Polls the event loop until `done` holds for an event, an error, or the timeout.
    async fn drive_until(&mut self, done: impl Fn(&Event) -> bool) -> Result<(), SessionError> {
        let events = &mut self.events;
        let run = async {
            loop {
                let event = events.poll().await?;
                if done(&event) {
                    return Ok(());
                }
            }
        };
        tokio::time::timeout(TIMEOUT, run)
            .await
            .unwrap_or(Err(SessionError::TimedOut))
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("no answer from the broker within {} s", TIMEOUT.as_secs())]
    TimedOut,
}

fn random_client_id() -> String {
    format!("carrel-{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_address_must_be_an_mqtt_url() {
        assert!(parse_address("mqtt://127.0.0.1:1883?client_id=a").is_ok());
        assert_eq!(
            parse_address("127.0.0.1:1883"),
            Err(MqttError::InvalidAddress)
        );
        assert!(matches!(
            parse_address("mqtts://127.0.0.1:8883"),
            Err(MqttError::Other(m)) if m.contains("TLS")
        ));
    }

    #[test]
    fn client_ids_made_up_for_a_session_differ() {
        assert_ne!(random_client_id(), random_client_id());
    }
}
