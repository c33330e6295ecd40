//! Spin's outbound Redis and MQTT (`fermyon:spin/redis@2.0.0`, `fermyon:spin/mqtt@2.0.0`).

use serde_json::{Value, json};
use spin_sdk::mqtt::{self, Qos};
use spin_sdk::redis::{self, RedisParameter, RedisResult};

/// Runs every Redis call once, on keys under `prefix`, and reports what each returned.
/// Opening is the step a refused address fails at: its error is returned as is.
pub fn redis_script(address: &str, prefix: &str) -> Result<Value, redis::Error> {
    let conn = redis::Connection::open(address)?;
    let key = |name: &str| format!("{prefix}:{name}");
    conn.set(&key("k"), &b"value".to_vec())?;
    let got = conn
        .get(&key("k"))?
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    let missing = conn.get(&key("missing"))?;
    conn.incr(&key("n"))?;
    let counted = conn.incr(&key("n"))?;
    let added = conn.sadd(&key("s"), &["a".to_owned(), "b".to_owned()])?;
    let removed = conn.srem(&key("s"), &["a".to_owned(), "z".to_owned()])?;
    let members = conn.smembers(&key("s"))?;
    let set_status = conn.execute(
        "SET",
        &[
            RedisParameter::Binary(key("e").into_bytes()),
            RedisParameter::Binary(b"x".to_vec()),
        ],
    )?;
    let appended = conn.execute(
        "APPEND",
        &[
            RedisParameter::Binary(key("e").into_bytes()),
            RedisParameter::Int64(7),
        ],
    )?;
    let wrong_type = format!("{:?}", conn.incr(&key("e")).err());
    conn.publish(&key("channel"), &b"hello".to_vec())?;
    let deleted = conn.del(&[key("k"), key("n"), key("s"), key("e"), key("missing")])?;
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
pub fn mqtt_publish(
    address: &str,
    topic: &str,
    payload: &[u8],
    qos: &str,
) -> Result<(), mqtt::Error> {
    let qos = match qos {
        "1" => Qos::AtLeastOnce,
        "2" => Qos::ExactlyOnce,
        _ => Qos::AtMostOnce,
    };
    let conn = mqtt::Connection::open(address, "", "", 30)?;
    conn.publish(topic, &payload.to_vec(), qos)
}
