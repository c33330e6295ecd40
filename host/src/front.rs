//! What the warehouse adds to the runtime's server: its study API and pages, the token a
//! component behind `auth` requires (and the caller headers the component is told), and
//! its work while serving (objection and retention passes, the counts of refusals).

use carrel_runtime::responses::HostResponse;
use carrel_runtime::server::{HostFront, SetHeader};
use carrel_warehouse::app::{App, WarehouseInstance};
use carrel_warehouse::tokens::Principal;
use http::{HeaderMap, HeaderName, Request};
use hyper::body::Incoming;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Who is calling, as the host tells a component behind `auth`: the role, the token's id
/// (never the token) and, for an ingest token, its association. Only the host sets them:
/// the runtime drops a client's headers of these names (`carrel-*`).
pub const CALLER_HEADERS: [&str; 3] = [
    "carrel-caller-role",
    "carrel-caller-token-id",
    "carrel-caller-association",
];

/// The warehouse's app as the runtime's server serves it.
pub struct Host(pub App);

impl HostFront for Host {
    type Extension = WarehouseInstance;

    fn app(&self) -> &carrel_runtime::app::App<WarehouseInstance> {
        &self.0.runtime
    }

    fn answers(&self, path: &str) -> bool {
        (self.0.studies.is_some() && crate::api::is_api_path(path))
            || (self.0.warehouse.is_some() && crate::web::is_web_path(path))
    }

    async fn answer(&self, request: Request<Incoming>) -> HostResponse {
        match &self.0.studies {
            Some(desk) if crate::api::is_api_path(request.uri().path()) => {
                crate::api::handle(&self.0, desk.clone(), request).await
            }
            _ => crate::web::handle(&self.0, request).await,
        }
    }

    fn caller(
        &self,
        component: &str,
        headers: &HeaderMap,
        path: &str,
        client: IpAddr,
    ) -> Result<Option<Principal>, Box<HostResponse>> {
        match self.0.auth.get(component) {
            Some(role) => {
                carrel_warehouse::authn::authenticate(&self.0, headers, &[*role], path, client)
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn caller_headers(&self, caller: &Option<Principal>, set: SetHeader<'_>) {
        if let Some(p) = caller {
            let [role, token_id, association] = CALLER_HEADERS;
            set(HeaderName::from_static(role), p.role.as_str());
            set(HeaderName::from_static(token_id), &p.token_id);
            if let Some(a) = &p.association {
                set(HeaderName::from_static(association), a);
            }
        }
    }

    fn start(self: Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let Some(warehouse) = &self.0.warehouse else {
            return Vec::new();
        };
        vec![
            // Objections and retention are applied on a schedule while the warehouse serves.
            carrel_warehouse::patients::schedule::spawn(warehouse.rights.clone()),
            tokio::spawn(write_counted_refusals(self.clone())),
        ]
    }

    fn stopped(&self) {
        if let Some(warehouse) = &self.0.warehouse {
            // The minute in progress, so that a clean stop loses no count.
            warehouse.refusals.flush(&warehouse.audit, true);
        }
    }
}

/// Writes each minute's counts of unauthenticated refusals once the minute is over.
async fn write_counted_refusals(host: Arc<Host>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let host = host.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if let Some(warehouse) = &host.0.warehouse {
                warehouse.refusals.flush(&warehouse.audit, false);
            }
        })
        .await;
    }
}
