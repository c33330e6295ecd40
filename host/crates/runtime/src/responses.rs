//! Responses the host itself writes (errors, health, the warehouse's own API), in the
//! body type the guest handlers answer with, so both can be returned from one service.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use std::convert::Infallible;
use wasmtime_wasi_http::WasiBody;

pub type HostResponse = Response<WasiBody>;

/// A response with `body` and its content type.
pub fn bytes(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> HostResponse {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub fn plain(status: StatusCode, text: impl Into<String>) -> HostResponse {
    let mut body = text.into();
    body.push('\n');
    bytes(status, "text/plain; charset=utf-8", body)
}

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> HostResponse {
    let mut body = serde_json::to_vec_pretty(value).expect("API values serialise");
    body.push(b'\n');
    bytes(status, "application/json", body)
}

pub fn retry_later(text: &str) -> HostResponse {
    let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, text);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
