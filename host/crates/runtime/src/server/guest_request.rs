//! The request a guest sees: its body read within the limits, its URI made absolute, and
//! Spin's headers set, credentials removed and who is calling told in the host's own
//! headers. Requests from outside and self requests are built the same way.

use super::{Caller, HostFront, Server, SetHeader, strip_for_guest};
use crate::manifest::RouteMatch;
use crate::request_body::{BodyError, read_body};
use crate::responses::{HostResponse, plain};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::net::SocketAddr;
use wasmtime_wasi_http::WasiBody;

impl<F: HostFront> Server<F> {
    fn too_large(&self) -> HostResponse {
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TooLarge(self.options.max_body_bytes).to_string(),
        )
    }

    /// Reads the body of a request from outside within the limit and builds the request
    /// the guest sees.
    pub(super) async fn read_request(
        &self,
        request: Request<Incoming>,
        matched: &RouteMatch<'_>,
        client: SocketAddr,
        caller: &Caller<F>,
    ) -> Result<Request<WasiBody>, HostResponse> {
        let limit = self.options.max_body_bytes;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(self.too_large());
        }
        let (parts, body) = request.into_parts();
        // Most requests (GETs) have no body: skip the read timer and the collection.
        let body = if hyper::body::Body::is_end_stream(&body) {
            Bytes::new()
        } else {
            match read_body(body, limit, self.options.read_timeout).await {
                Ok(bytes) => bytes,
                Err(e) => return Err(self.body_error(e)),
            }
        };
        let authority = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        guest_request(parts, body, matched, client, &authority, &mut |set| {
            self.front.caller_headers(caller, set)
        })
        .map_err(invalid_target)
    }

    /// Reads the body a component sent to its own app, with the same limit and timeout
    /// as a body from outside.
    pub(super) async fn read_self_body(&self, body: WasiBody) -> Result<Bytes, HostResponse> {
        let limit = self.options.max_body_bytes;
        let read = tokio::time::timeout(
            self.options.read_timeout,
            Limited::new(body, limit).collect(),
        )
        .await;
        match read {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(self.too_large()),
            Ok(Err(e)) => Err(self.body_error(BodyError::Unreadable(e.to_string()))),
            Err(_) => Err(self.body_error(BodyError::TooSlow)),
        }
    }

    fn body_error(&self, error: BodyError) -> HostResponse {
        match error {
            BodyError::TooLarge(_) => self.too_large(),
            e @ BodyError::Unreadable(_) => plain(StatusCode::BAD_REQUEST, e.to_string()),
            e @ BodyError::TooSlow => plain(StatusCode::REQUEST_TIMEOUT, e.to_string()),
        }
    }
}

/// The answer to a request whose target, made absolute, is not a URI.
pub(super) fn invalid_target(_: http::uri::InvalidUri) -> HostResponse {
    plain(StatusCode::BAD_REQUEST, "request target is not a valid URI")
}

/// The request the guest sees, with an absolute URI on `authority` and Spin's headers.
pub(super) fn guest_request(
    mut parts: http::request::Parts,
    body: Bytes,
    matched: &RouteMatch<'_>,
    client: SocketAddr,
    authority: &str,
    caller_headers: &mut dyn FnMut(SetHeader<'_>),
) -> Result<Request<WasiBody>, http::uri::InvalidUri> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_owned();
    let full_url = format!("http://{authority}{path_and_query}");
    parts.uri = full_url.parse()?;
    let headers = &mut parts.headers;
    strip_for_guest(headers);
    let mut set = |name: http::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    use http::HeaderName as N;
    set(N::from_static("spin-full-url"), &full_url);
    set(N::from_static("spin-path-info"), &matched.path_info);
    set(N::from_static("spin-matched-route"), matched.pattern.raw());
    set(
        N::from_static("spin-raw-component-route"),
        matched.pattern.raw(),
    );
    set(
        N::from_static("spin-component-route"),
        &matched.pattern.component_route(),
    );
    set(N::from_static("spin-base-path"), "/");
    set(N::from_static("spin-client-addr"), &client.to_string());
    // Spin names the header after the route's segment name, lower-cased and with `_` as
    // `-` (`:path_segment` gives `spin-path-match-path-segment`).
    for (name, value) in &matched.params {
        let header = format!("spin-path-match-{}", name.to_ascii_lowercase()).replace('_', "-");
        if let Ok(n) = N::try_from(header) {
            set(n, value);
        }
    }
    caller_headers(&mut set);
    let body = Full::new(body)
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    Ok(Request::from_parts(parts, body))
}
