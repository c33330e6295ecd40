//! The Redis commands both interface generations offer, on the `redis` crate, with
//! errors in the interfaces' terms.

use super::TIMEOUT;
use redis::aio::MultiplexedConnection;
use redis::{Cmd, FromRedisValue, Value};

/// An error in the terms of both Redis interfaces.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedisError {
    #[error("not a `redis://` address, or not allowed by allowed_outbound_hosts")]
    InvalidAddress,
    #[error("too many open Redis connections")]
    TooManyConnections,
    #[error("the value has the wrong type for this command")]
    TypeError,
    #[error("{0}")]
    Other(String),
}

impl From<redis::RedisError> for RedisError {
    fn from(e: redis::RedisError) -> Self {
        let wrong_type = e.kind() == redis::ErrorKind::UnexpectedReturnType
            || e.code() == Some("WRONGTYPE")
            || e.detail().is_some_and(|d| d.contains("not an integer"));
        if wrong_type {
            RedisError::TypeError
        } else {
            RedisError::Other(e.to_string())
        }
    }
}

/// One reply of `execute`, arrays flattened as Spin does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisReply {
    Nil,
    Status(String),
    Int64(i64),
    Binary(Vec<u8>),
}

/// One argument of `execute`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisArgument {
    Int64(i64),
    Binary(Vec<u8>),
}

/// A `redis://` address. TLS (`rediss://`) is refused by name: this host's client speaks
/// plain TCP only.
pub fn parse_address(address: &str) -> Result<url::Url, RedisError> {
    let url = url::Url::parse(address).map_err(|_| RedisError::InvalidAddress)?;
    match url.scheme() {
        "redis" if url.host_str().is_some() => Ok(url),
        "rediss" => Err(RedisError::Other(
            "`rediss://` (TLS) is not supported by this host: use `redis://`".into(),
        )),
        _ => Err(RedisError::InvalidAddress),
    }
}

pub async fn connect(url: url::Url) -> Result<MultiplexedConnection, RedisError> {
    let client = redis::Client::open(url.as_str()).map_err(|_| RedisError::InvalidAddress)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT));
    Ok(client
        .get_multiplexed_async_connection_with_config(&config)
        .await?)
}

async fn run<T: FromRedisValue>(
    mut connection: MultiplexedConnection,
    command: Cmd,
) -> Result<T, RedisError> {
    Ok(command.query_async(&mut connection).await?)
}

fn count(n: i64) -> Result<u32, RedisError> {
    u32::try_from(n).map_err(|_| RedisError::Other(format!("count out of range: {n}")))
}

pub async fn publish(
    connection: MultiplexedConnection,
    channel: String,
    payload: Vec<u8>,
) -> Result<(), RedisError> {
    let mut command = redis::cmd("PUBLISH");
    command.arg(channel).arg(payload);
    run::<i64>(connection, command).await.map(drop)
}

pub async fn get(
    connection: MultiplexedConnection,
    key: String,
) -> Result<Option<Vec<u8>>, RedisError> {
    let mut command = redis::cmd("GET");
    command.arg(key);
    run(connection, command).await
}

pub async fn set(
    connection: MultiplexedConnection,
    key: String,
    value: Vec<u8>,
) -> Result<(), RedisError> {
    let mut command = redis::cmd("SET");
    command.arg(key).arg(value);
    run::<()>(connection, command).await
}

pub async fn incr(connection: MultiplexedConnection, key: String) -> Result<i64, RedisError> {
    let mut command = redis::cmd("INCR");
    command.arg(key);
    run(connection, command).await
}

pub async fn del(connection: MultiplexedConnection, keys: Vec<String>) -> Result<u32, RedisError> {
    let mut command = redis::cmd("DEL");
    command.arg(keys);
    count(run(connection, command).await?)
}

pub async fn sadd(
    connection: MultiplexedConnection,
    key: String,
    values: Vec<String>,
) -> Result<u32, RedisError> {
    let mut command = redis::cmd("SADD");
    command.arg(key).arg(values);
    count(run(connection, command).await?)
}

pub async fn smembers(
    connection: MultiplexedConnection,
    key: String,
) -> Result<Vec<String>, RedisError> {
    let mut command = redis::cmd("SMEMBERS");
    command.arg(key);
    run(connection, command).await
}

pub async fn srem(
    connection: MultiplexedConnection,
    key: String,
    values: Vec<String>,
) -> Result<u32, RedisError> {
    let mut command = redis::cmd("SREM");
    command.arg(key).arg(values);
    count(run(connection, command).await?)
}

pub async fn execute(
    connection: MultiplexedConnection,
    name: String,
    arguments: Vec<RedisArgument>,
) -> Result<Vec<RedisReply>, RedisError> {
    let mut command = redis::cmd(&name);
    for argument in arguments {
        match argument {
            RedisArgument::Int64(i) => command.arg(i),
            RedisArgument::Binary(b) => command.arg(b),
        };
    }
    let value: Value = run(connection, command).await?;
    let mut replies = Vec::new();
    flatten(value, &mut replies)?;
    Ok(replies)
}

/// Spin's reading of a reply: arrays (and sets) flattened, strings and numbers as they
/// come; maps and the other RESP3 types cannot occur on the RESP2 connections opened here.
fn flatten(value: Value, out: &mut Vec<RedisReply>) -> Result<(), RedisError> {
    match value {
        Value::Nil => out.push(RedisReply::Nil),
        Value::Int(i) => out.push(RedisReply::Int64(i)),
        Value::BulkString(bytes) => out.push(RedisReply::Binary(bytes)),
        Value::SimpleString(s) => out.push(RedisReply::Status(s)),
        Value::Okay => out.push(RedisReply::Status("OK".into())),
        Value::Array(values) | Value::Set(values) => {
            for v in values {
                flatten(v, out)?;
            }
        }
        Value::ServerError(e) => {
            return Err(RedisError::from(redis::RedisError::from(e)));
        }
        other => {
            return Err(RedisError::Other(format!(
                "a reply of a type the interface cannot carry: {other:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_address_must_be_a_redis_url() {
        assert!(parse_address("redis://127.0.0.1:6379").is_ok());
        assert_eq!(
            parse_address("127.0.0.1:6379"),
            Err(RedisError::InvalidAddress)
        );
        assert_eq!(
            parse_address("http://127.0.0.1:6379"),
            Err(RedisError::InvalidAddress)
        );
        assert!(matches!(
            parse_address("rediss://127.0.0.1:6380"),
            Err(RedisError::Other(m)) if m.contains("TLS")
        ));
    }

    #[test]
    fn nested_replies_are_flattened_in_order() {
        let mut out = Vec::new();
        flatten(
            Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Nil]),
                Value::Okay,
            ]),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            vec![
                RedisReply::Int64(1),
                RedisReply::Binary(b"a".to_vec()),
                RedisReply::Nil,
                RedisReply::Status("OK".into()),
            ]
        );
    }
}
