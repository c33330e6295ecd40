//! Relative URLs (`/hello`: a Spin self request) for both WASI HTTP generations.
//!
//! wasmtime builds a URI before the send hook sees a request, and a URI with a scheme but
//! no authority cannot be built, so a relative URL would fail as `HttpRequestUriInvalid`
//! before any grant is checked. These wrappers of the two `send` entry points give such a
//! request the authority `self`, then hand it to wasmtime's own implementation: from there
//! it is an ordinary request to the app itself, checked in the send hook like any other.

use wasmtime::StoreContextMut;
use wasmtime::component::{Accessor, HasData, Linker, Resource};
use wasmtime_wasi::TrappableError;
use wasmtime_wasi_http::p2::bindings::http::outgoing_handler;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode as P2ErrorCode, Scheme as P2Scheme};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::p3::bindings::http::client;
use wasmtime_wasi_http::p3::bindings::http::types::{
    ErrorCode as P3ErrorCode, Request as P3Request, Response as P3Response,
};
use wasmtime_wasi_http::{RequestOptions, WasiHttp, WasiHttpCtxView, WasiHttpView, p2, p3};

/// The authority a relative URL is given.
const SELF_AUTHORITY: &str = "self";

/// The WASIp2 interface, as wasmtime's bindings name it (a guest's import of any 0.2.x
/// version links to it by semver).
const P2_OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// WASIp2 `outgoing-handler.handle`: wasmtime's, after giving a relative URL its authority.
fn p2_handle<T: WasiHttpView>(
    mut store: StoreContextMut<'_, T>,
    (request, options): (
        Resource<HostOutgoingRequest>,
        Option<Resource<RequestOptions>>,
    ),
) -> wasmtime::Result<(Result<Resource<HostFutureIncomingResponse>, P2ErrorCode>,)> {
    let mut view = store.data_mut().http();
    let outgoing = view.table.get_mut(&request)?;
    // spin-sdk 5 gives a relative URL the authority `:80` (or `:443`): no host, like none.
    if outgoing
        .authority
        .as_deref()
        .is_none_or(|a| a.is_empty() || a.starts_with(':'))
    {
        outgoing.authority = Some(SELF_AUTHORITY.to_owned());
        // Without a scheme wasmtime would take https, and `http://self` is the grant of
        // a self request, as in Spin.
        outgoing.scheme.get_or_insert(P2Scheme::Http);
    }
    match outgoing_handler::Host::handle(&mut view, request, options) {
        Ok(response) => Ok((Ok(response),)),
        Err(e) => Ok((Err(e.downcast()?),)),
    }
}

/// The WASIp3 `client.send`, which takes relative URLs the same way.
struct RelativeUrlsP3;

impl HasData for RelativeUrlsP3 {
    type Data<'a> = WasiHttpCtxView<'a>;
}

impl<T: WasiHttpView + 'static> client::HostWithStore<T> for RelativeUrlsP3 {
    async fn send(
        store: &Accessor<T, Self>,
        request: Resource<P3Request>,
    ) -> Result<Resource<P3Response>, TrappableError<P3ErrorCode>> {
        store
            .with(|mut access| -> wasmtime::Result<()> {
                let outgoing = access.get().table.get_mut(&request)?;
                if outgoing.authority.is_none() {
                    outgoing.authority = Some(http::uri::Authority::from_static(SELF_AUTHORITY));
                }
                Ok(())
            })
            .map_err(TrappableError::trap)?;
        let inner = store.with_getter::<WasiHttp>(T::http);
        <WasiHttp as client::HostWithStore<T>>::send(&inner, request).await
    }
}

/// WASI HTTP of both generations, with relative URLs taken as self requests. Replaces
/// `wasmtime_wasi_http::p2::add_only_http_to_linker_async` and `p3::add_to_linker`.
pub fn add_to_linker<T: WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let options = p2::bindings::LinkOptions::default();
    linker
        .instance(P2_OUTGOING_HANDLER)?
        .func_wrap("handle", p2_handle::<T>)?;
    p2::bindings::http::types::add_to_linker::<T, WasiHttp>(linker, &options.into(), T::http)?;
    client::add_to_linker::<T, RelativeUrlsP3>(linker, T::http)?;
    p3::bindings::http::types::add_to_linker::<T, WasiHttp>(linker, T::http)?;
    Ok(())
}
