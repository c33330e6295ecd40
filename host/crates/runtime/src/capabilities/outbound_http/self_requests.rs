//! Requests a component makes to its own app, served in process: they never reach the
//! network, so neither a firewall nor the listener's address matters, and they pass the
//! same routing, authentication and limits as a request from outside.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// Where in the app a self request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfTarget {
    /// Routed by its path, as a request from outside would be.
    Route,
    /// To this component, whatever its routes (Spin's service chaining).
    Component(String),
}

pub type SelfResponse =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>>;

/// Serves self requests; implemented by the server that serves the app.
pub trait SelfRequestHandler: Send + Sync {
    fn handle(
        self: Arc<Self>,
        target: SelfTarget,
        request: http::Request<WasiBody>,
    ) -> SelfResponse;
}

/// The way from a component's instances back to the server serving its app: made with the
/// app, connected once the server exists. Weak, so the app and the server it belongs to
/// do not keep each other alive.
#[derive(Clone, Default)]
pub struct SelfRequests(Arc<OnceLock<Weak<dyn SelfRequestHandler>>>);

impl SelfRequests {
    /// Connects the server; only the first call counts.
    pub fn connect(&self, handler: Weak<dyn SelfRequestHandler>) {
        let _ = self.0.set(handler);
    }

    pub async fn send(
        &self,
        target: SelfTarget,
        request: http::Request<WasiBody>,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let Some(handler) = self.0.get().and_then(Weak::upgrade) else {
            // The app is loaded but not served (or is shutting down).
            return Err(HttpError::DestinationUnavailable);
        };
        handler.handle(target, request).await
    }
}
