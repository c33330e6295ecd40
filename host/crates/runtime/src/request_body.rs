//! Reading a request body within bounds, for every route the host serves itself or hands to
//! a guest: the one place a body's size and the time a client takes to send it are limited.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use std::time::Duration;

/// How long a client may take to send a request's headers, and again its body, unless
/// the server's options say otherwise.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body was not received in time")]
    TooSlow,
    #[error("cannot read request body: {0}")]
    Unreadable(String),
}

/// Reads a whole request body of at most `limit` bytes within `timeout`: every body the
/// host reads goes through here, so a client that sends one byte a second (slowloris)
/// holds a connection for `timeout` at most, on any route.
pub async fn read_body(
    body: Incoming,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, BodyError> {
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Ok(Err(e)) => Err(BodyError::Unreadable(e.to_string())),
        Err(_) => Err(BodyError::TooSlow),
    }
}
