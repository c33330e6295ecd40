//! The HTTP front of `carrel up`: routing, Spin's request headers, body limits, a bounded
//! wait for instance slots, and a graceful drain on SIGTERM or Ctrl-C.

use crate::app::App;
use crate::manifest::RouteMatch;
use crate::tokens::Principal;
use crate::worker::failure_reason;
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime_wasi_http::WasiBody;
use wasmtime_wasi_http::handler::{ExpirationError, InstantiationError};

pub const HEALTH_PATH: &str = "/.well-known/spin/health";

#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests handled at once; the rest wait in a queue.
    pub max_concurrent_requests: usize,
    /// Requests that may wait for a slot; past this, 503 with Retry-After.
    pub max_queued_requests: usize,
    /// How long a queued request waits before it gets 503.
    pub queue_timeout: Duration,
    /// How long a client may take to send a request's headers, and again its body.
    pub read_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_concurrent_requests: 128,
            max_queued_requests: 1024,
            queue_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        }
    }
}

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

struct Server {
    app: App,
    options: ServerOptions,
    slots: Semaphore,
    queued: AtomicUsize,
}

use crate::responses::{HostResponse, plain, retry_later};

impl Server {
    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> HostResponse {
        let path = request.uri().path().to_owned();
        if path == HEALTH_PATH {
            return plain(StatusCode::OK, "OK");
        }
        // Before any route, page or API sees it: a path that could resolve elsewhere.
        if let Err(error) = crate::manifest::check_request_path(&path) {
            return plain(StatusCode::BAD_REQUEST, format!("{error}"));
        }
        if let Some(desk) = &self.app.studies
            && crate::api::is_api_path(&path)
        {
            return crate::api::handle(&self.app, desk.clone(), request).await;
        }
        if self.app.warehouse.is_some() && crate::web::is_web_path(&path) {
            return crate::web::handle(&self.app, request).await;
        }
        let Some(matched) = self.app.router.route(&path) else {
            return plain(StatusCode::NOT_FOUND, format!("no route matches {path}"));
        };
        let component = matched.component;
        let entry = &self.app.components[component];
        let principal = match entry.auth {
            Some(role) => {
                match crate::authn::authenticate(&self.app, request.headers(), &[role], &path) {
                    Ok(principal) => Some(principal),
                    Err(response) => return *response,
                }
            }
            None => None,
        };
        let guest_request = match self.prepare(request, &matched, client).await {
            Ok(r) => r,
            Err(response) => return response,
        };
        let _slot = match self.wait_for_slot().await {
            Ok(slot) => slot,
            Err(response) => return response,
        };
        match entry.handler.handle(principal, guest_request).await {
            Ok(response) => response,
            Err(e) => {
                let (status, reason) = if e.is::<ExpirationError>() {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("deadline of {:?} exceeded", self.app.deadline),
                    )
                } else if let Some(ie) = e.downcast_ref::<InstantiationError<Option<Principal>>>() {
                    tracing::warn!(component, error = %ie.error, "cannot instantiate");
                    return retry_later("no instance could be started; retry shortly");
                } else {
                    // When an instance dies, the request only learns that its worker is gone;
                    // the worker records why as it is dropped, just after this request wakes.
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        self.failure(component, &e).await,
                    )
                };
                tracing::warn!(component, %reason, "request failed in the guest");
                plain(status, format!("component `{component}` failed: {reason}"))
            }
        }
    }

    async fn failure(&self, component: &str, e: &wasmtime::Error) -> String {
        let last = &self.app.components[component].handler.state().last_failure;
        for _ in 0..20 {
            if let Some(reason) = last.recent() {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        failure_reason(e, self.app.deadline)
    }

    /// Reads the body within the limit and builds the request the guest sees.
    async fn prepare(
        &self,
        request: Request<Incoming>,
        matched: &RouteMatch<'_>,
        client: SocketAddr,
    ) -> Result<Request<WasiBody>, HostResponse> {
        let limit = self.options.max_body_bytes;
        let too_large = || {
            plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::TooLarge(limit).to_string(),
            )
        };
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let (mut parts, body) = request.into_parts();
        // Most requests (GETs) have no body: skip the read timer and the collection.
        let body = if hyper::body::Body::is_end_stream(&body) {
            Bytes::new()
        } else {
            match read_body(body, limit, self.options.read_timeout).await {
                Ok(bytes) => bytes,
                Err(BodyError::TooLarge(_)) => return Err(too_large()),
                Err(e @ BodyError::Unreadable(_)) => {
                    return Err(plain(StatusCode::BAD_REQUEST, e.to_string()));
                }
                Err(e @ BodyError::TooSlow) => {
                    return Err(plain(StatusCode::REQUEST_TIMEOUT, e.to_string()));
                }
            }
        };
        let authority = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost")
            .to_owned();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_owned();
        let full_url = format!("http://{authority}{path_and_query}");
        parts.uri = full_url
            .parse()
            .map_err(|_| plain(StatusCode::BAD_REQUEST, "request target is not a valid URI"))?;
        let headers = &mut parts.headers;
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
        for (name, value) in &matched.params {
            if let Ok(n) = N::try_from(format!("spin-path-match-{}", name.to_ascii_lowercase())) {
                set(n, value);
            }
        }
        let body = Full::new(body)
            .map_err(|never: Infallible| match never {})
            .boxed_unsync();
        Ok(Request::from_parts(parts, body))
    }

    async fn wait_for_slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, HostResponse> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.options.max_queued_requests {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(retry_later("server busy: too many requests waiting"));
        }
        let waited = tokio::time::timeout(self.options.queue_timeout, self.slots.acquire()).await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(retry_later("server busy: no slot freed in time")),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    mut app: App,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let drain_time = app.deadline + Duration::from_secs(5);
    // The API and the web pages read their own (small) bodies, with this same bound.
    app.read_timeout = options.read_timeout;
    let server = Arc::new(Server {
        slots: Semaphore::new(options.max_concurrent_requests),
        queued: AtomicUsize::new(0),
        options,
        app,
    });
    let read_timeout = server.options.read_timeout;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        let service = service_fn(move |request| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request, client).await) }
        });
        let mut builder = http1::Builder::new();
        // hyper's default limit of 100 headers (431 past it) is kept rather than set: set,
        // even to 100, hyper fills its two header buffers element by element per request.
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(read_timeout);
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: draining in-flight requests");
    drop(listener);
    if tokio::time::timeout(drain_time, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {drain_time:?}; closing them");
    }
    Ok(())
}

/// A future that resolves on SIGTERM or Ctrl-C. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives between
/// "Serving" being printed and the server starting still drains instead of killing the
/// process. Must be called inside the tokio runtime.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
