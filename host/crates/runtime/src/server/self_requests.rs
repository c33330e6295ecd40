//! Self requests served in process: a component's request to its own app (a relative URL,
//! `http://self`) or to one of its components (`http://<id>.spin.internal`), already
//! allowed by the caller's `allowed_outbound_hosts` in the send hook. They take the same
//! path as a request from outside (path checks, routing, a token for authenticated
//! components, body limits, Spin's headers), but no slot of the queue: the caller already
//! holds one, and waiting for another could deadlock. How many may be in flight at once is
//! bounded instead, so a component calling itself forever runs out of them.

use super::guest_request::{guest_request, invalid_target};
use super::{HostFront, Server};
use crate::capabilities::outbound_http::{SelfRequestHandler, SelfResponse, SelfTarget};
use crate::manifest::{RouteMatch, check_request_path};
use crate::responses::{HostResponse, plain};
use http::{HeaderValue, Request, StatusCode, header};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// The client address a component sees on a self request: no socket is involved.
const IN_PROCESS_CLIENT: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

impl<F: HostFront> SelfRequestHandler for Server<F> {
    fn handle(self: Arc<Self>, target: SelfTarget, request: Request<WasiBody>) -> SelfResponse {
        Box::pin(async move { self.handle_self(target, request).await })
    }
}

impl<F: HostFront> Server<F> {
    async fn handle_self(
        &self,
        target: SelfTarget,
        request: Request<WasiBody>,
    ) -> Result<HostResponse, HttpError> {
        let Ok(_in_flight) = self.self_requests_in_flight.try_acquire() else {
            tracing::warn!(
                "self request refused: too many in flight (a component calling itself without end?)"
            );
            return Err(HttpError::LoopDetected);
        };
        let path = request.uri().path().to_owned();
        if let Err(error) = check_request_path(&path) {
            return Ok(plain(StatusCode::BAD_REQUEST, format!("{error}")));
        }
        let matched = match &target {
            SelfTarget::Route => match self.app().router.route(&path) {
                Some(matched) => matched,
                None => {
                    return Ok(plain(
                        StatusCode::NOT_FOUND,
                        format!("no route matches {path}"),
                    ));
                }
            },
            SelfTarget::Component(id) => match self.app().components.get_key_value(id) {
                // Service chaining reaches the component whatever its routes, private ones
                // included, as in Spin: the whole path is its path info.
                Some((id, _)) => RouteMatch {
                    component: id,
                    pattern: &self.chained_route,
                    params: BTreeMap::new(),
                    path_info: path.clone(),
                },
                None => return Err(HttpError::DestinationNotFound),
            },
        };
        let component = matched.component;
        let caller =
            match self
                .front
                .caller(component, request.headers(), &path, IN_PROCESS_CLIENT.ip())
            {
                Ok(caller) => caller,
                Err(response) => return Ok(*response),
            };
        let (mut parts, body) = request.into_parts();
        let body = match self.read_self_body(body).await {
            Ok(body) => body,
            Err(response) => return Ok(response),
        };
        let authority = self.local_addr.to_string();
        if let Ok(host) = HeaderValue::from_str(&authority) {
            parts.headers.insert(header::HOST, host);
        }
        let guest_request = match guest_request(
            parts,
            body,
            &matched,
            IN_PROCESS_CLIENT,
            &authority,
            &mut |set| self.front.caller_headers(&caller, set),
        ) {
            Ok(r) => r,
            Err(e) => return Ok(invalid_target(e)),
        };
        tracing::debug!(component, "self request");
        Ok(self.run_component(component, caller, guest_request).await)
    }
}
