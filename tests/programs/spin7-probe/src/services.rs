//! Spin's outbound Redis and MQTT (`spin:redis/redis@3.0.0`, `spin:mqtt/mqtt@3.0.0`).

use serde_json::{Value, json};
use spin_sdk::mqtt::{self, Qos};
use spin_sdk::redis::{self, RedisParameter, RedisResult};

/// Runs every Redis call once, on keys under `prefix`, and reports what each returned.
/// Opening is the step a refused address fails at: its error is returned as is.
pub async fn redis_script(address: &str, prefix: &str) -> Result<Value, redis::Error> {
    let conn = redis::Connection::open(address).await?;
    let key = |name: &str| format!("{prefix}:{name}");
    conn.set(key("k"), b"value").await?;
    let got = conn
        .get(key("k"))
        .await?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let missing = conn.get(key("missing")).await?;
    conn.incr(key("n")).await?;
    let counted = conn.incr(key("n")).await?;
    let added = conn.sadd(key("s"), ["a", "b"]).await?;
    let removed = conn.srem(key("s"), ["a", "z"]).await?;
    let members = conn.smembers(key("s")).await?;
    let set_status = conn
        .execute(
            "SET",
            [
                RedisParameter::Binary(key("e").into_bytes()),
                RedisParameter::Binary(b"x".to_vec()),
            ],
        )
        .await?;
    let appended = conn
        .execute(
            "APPEND",
            [
                RedisParameter::Binary(key("e").into_bytes()),
                RedisParameter::Int64(7),
            ],
        )
        .await?;
    let wrong_type = format!("{:?}", conn.incr(key("e")).await.err());
    conn.publish(key("channel"), b"hello").await?;
    let deleted = conn
        .del([key("k"), key("n"), key("s"), key("e"), key("missing")])
        .await?;
    Ok(json!({
        "get": got,
        "missing": missing.is_none(),
        "incr": counted,
        "sadd": added,
        "srem": removed,
        "smembers": members,
        "execute-set": set_status.iter().map(describe).collect::<Vec<_>>(),
        "execute-append": appended.iter().map(describe).collect::<Vec<_>>(),
        "incr-non-integer": wrong_type,
        "del": deleted,
    }))
}

fn describe(result: &RedisResult) -> String {
    match result {
        RedisResult::Nil => "nil".into(),
        RedisResult::Status(s) => format!("status {s}"),
        RedisResult::Int64(i) => format!("int {i}"),
        RedisResult::Binary(b) => format!("binary {}", String::from_utf8_lossy(b)),
    }
}

/// Opens a session at `address` and publishes `payload` on `topic`.
pub async fn mqtt_publish(
    address: &str,
    topic: &str,
    payload: Vec<u8>,
    qos: &str,
) -> Result<(), mqtt::Error> {
    let qos = match qos {
        "1" => Qos::AtLeastOnce,
        "2" => Qos::ExactlyOnce,
        _ => Qos::AtMostOnce,
    };
    let conn = mqtt::Connection::open(address, "", "", 30).await?;
    conn.publish(topic, payload, qos).await
}
