//! The HTTP front of `carrel up`: routing, Spin's request headers, body limits, a bounded
//! wait for instance slots, and a graceful drain on SIGTERM or Ctrl-C. What a layer above
//! adds (requests it answers itself, who may call a component, work beside the server) it
//! adds through [`HostFront`].

mod guest_request;
mod self_requests;

use crate::app::App;
use crate::guest_failure::failure_reason;
use crate::instance_state::InstanceExtension;
use crate::manifest::RoutePattern;
use http::{HeaderMap, HeaderName, Request, StatusCode};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
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
            read_timeout: crate::request_body::DEFAULT_READ_TIMEOUT,
        }
    }
}

/// The client's address, which the server puts in every request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Sets one header of the request a component is given.
pub type SetHeader<'a> = &'a mut dyn FnMut(HeaderName, &str);

/// The caller a layer's instances are told of.
pub type Caller<F> = <<F as HostFront>::Extension as InstanceExtension>::Caller;

/// What a layer above the runtime adds to serving its app.
pub trait HostFront: Send + Sync + Sized + 'static {
    /// What the layer keeps in each instance.
    type Extension: InstanceExtension;

    fn app(&self) -> &App<Self::Extension>;

    /// Whether the layer answers requests for `path` itself (its API, its pages); asked
    /// after the path is checked and before any route.
    fn answers(&self, path: &str) -> bool;

    /// Answers a request [`HostFront::answers`] claimed.
    fn answer(&self, request: Request<Incoming>) -> impl Future<Output = HostResponse> + Send + '_;

    /// Who is calling `component`, or the refusal to send back; requests from outside
    /// and components' self requests alike.
    fn caller(
        &self,
        component: &str,
        headers: &HeaderMap,
        path: &str,
        client: IpAddr,
    ) -> Result<Caller<Self>, Box<HostResponse>>;

    /// The headers that tell the component who called, set after every header a client
    /// could forge (`carrel-*`, `spin-*`) has been removed.
    fn caller_headers(&self, caller: &Caller<Self>, set: SetHeader<'_>);

    /// Work the layer does while the server runs; the tasks are ended when it drains.
    fn start(self: Arc<Self>) -> Vec<tokio::task::JoinHandle<()>>;

    /// Called once the server has drained.
    fn stopped(&self);
}

/// Removes from a request what no component may see or be fooled by: credentials
/// (`Authorization`, `Proxy-Authorization`, `Cookie`, which carries the host's sessions),
/// what proxies add about the client (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`), and
/// any header named like one the host sets (`spin-*`, `carrel-*`).
pub fn strip_for_guest(headers: &mut http::HeaderMap) {
    const EXACT: [&str; 5] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "forwarded",
        "x-real-ip",
    ];
    const PREFIXES: [&str; 4] = ["x-forwarded-", "spin-", "carrel-", "x-carrel-"];
    let doomed: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| {
            let name = name.as_str();
            EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
        })
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(&name);
    }
}

struct Server<F> {
    front: Arc<F>,
    options: ServerOptions,
    slots: Semaphore,
    queued: AtomicUsize,
    /// Self requests in flight, bounded apart from `slots` (see `self_requests`).
    self_requests_in_flight: Semaphore,
    /// The route a service-chained request is matched as: the whole path.
    chained_route: RoutePattern,
    /// The address served, for the URL a self request's guest sees.
    local_addr: SocketAddr,
}

use crate::responses::{HostResponse, plain, retry_later};

impl<F: HostFront> Server<F> {
    fn app(&self) -> &App<F::Extension> {
        self.front.app()
    }

    async fn handle(
        self: Arc<Self>,
        mut request: Request<Incoming>,
        client: SocketAddr,
    ) -> HostResponse {
        request.extensions_mut().insert(ClientAddr(client));
        let path = request.uri().path().to_owned();
        if path == HEALTH_PATH {
            return plain(StatusCode::OK, "OK");
        }
        // Before any route, page or API sees it: a path that could resolve elsewhere.
        if let Err(error) = crate::manifest::check_request_path(&path) {
            return plain(StatusCode::BAD_REQUEST, format!("{error}"));
        }
        if self.front.answers(&path) {
            return self.front.answer(request).await;
        }
        let Some(matched) = self.app().router.route(&path) else {
            return plain(StatusCode::NOT_FOUND, format!("no route matches {path}"));
        };
        let component = matched.component;
        let caller = match self
            .front
            .caller(component, request.headers(), &path, client.ip())
        {
            Ok(caller) => caller,
            Err(response) => return *response,
        };
        let guest_request = match self.read_request(request, &matched, client, &caller).await {
            Ok(r) => r,
            Err(response) => return response,
        };
        let _slot = match self.wait_for_slot().await {
            Ok(slot) => slot,
            Err(response) => return response,
        };
        self.run_component(component, caller, guest_request).await
    }

    /// Runs the component on a prepared request; a guest failure becomes a short 500 (or a
    /// 503 when no instance could be started).
    async fn run_component(
        &self,
        component: &str,
        caller: Caller<F>,
        guest_request: Request<WasiBody>,
    ) -> HostResponse {
        let entry = &self.app().components[component];
        match entry.handler.handle(caller, guest_request).await {
            Ok(response) => response,
            Err(e) => {
                let (status, reason) = if e.is::<ExpirationError>() {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("deadline of {:?} exceeded", self.app().deadline),
                    )
                } else if let Some(ie) = e.downcast_ref::<InstantiationError<Caller<F>>>() {
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
        let last = &self.app().components[component]
            .handler
            .state()
            .last_failure;
        for _ in 0..20 {
            if let Some(reason) = last.recent() {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        failure_reason(e, self.app().deadline)
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

/// Serves the app of `front` on `listener` until `shutdown` resolves, then drains
/// in-flight requests.
pub async fn serve<F: HostFront>(
    front: Arc<F>,
    listener: TcpListener,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let drain_time = front.app().deadline + Duration::from_secs(5);
    let local_addr = listener.local_addr()?;
    let layer_tasks = front.clone().start();
    let server = Arc::new(Server {
        slots: Semaphore::new(options.max_concurrent_requests),
        queued: AtomicUsize::new(0),
        self_requests_in_flight: Semaphore::new(options.max_concurrent_requests),
        chained_route: RoutePattern::parse("/...").expect("the wildcard route parses"),
        local_addr,
        options,
        front,
    });
    let handler: Arc<dyn crate::capabilities::outbound_http::SelfRequestHandler> = server.clone();
    server.app().self_requests.connect(Arc::downgrade(&handler));
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
    for task in &layer_tasks {
        // Work already in a blocking task goes on there; none starts after this.
        task.abort();
    }
    drop(listener);
    if tokio::time::timeout(drain_time, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after {drain_time:?}; closing them");
    }
    server.front.stopped();
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
