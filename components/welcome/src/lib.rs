//! carrel's front page, a spin-sdk 7 component: it says what the warehouse is, links to
//! its health check, and counts visits in the `default` key-value store.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_service;
use spin_sdk::key_value::Store;

const VISITS_KEY: &str = "welcome/visits";

/// Adds one to the visit counter and returns the new count; `None` if the store failed,
/// so the page still renders.
async fn count_visit() -> Option<u64> {
    let store = Store::open("default").await.ok()?;
    let previous = match store.get(VISITS_KEY).await.ok()? {
        Some(bytes) => std::str::from_utf8(&bytes).ok()?.parse().ok()?,
        None => 0u64,
    };
    let visits = previous + 1;
    store
        .set(VISITS_KEY, visits.to_string().into_bytes())
        .await
        .ok()?;
    Some(visits)
}

#[http_service]
async fn handle(req: Request) -> Response<String> {
    if req.uri().path() != "/" {
        let mut not_found = Response::new("not found\n".to_owned());
        *not_found.status_mut() = spin_sdk::http::StatusCode::NOT_FOUND;
        return not_found;
    }
    let name = spin_sdk::variables::get("warehouse_name")
        .await
        .unwrap_or_else(|_| "carrel".to_owned());
    let visits = match count_visit().await {
        Some(n) => format!("<p>This page has been opened {n} time(s).</p>"),
        None => "<p>The visit counter is unavailable.</p>".to_owned(),
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;color:#222}}</style></head>\
         <body><h1>{name}</h1><p>A health data warehouse for out-of-hours primary care: consultations \
         are pseudonymised and encrypted on arrival, and approved studies run in sandboxes.</p>\
         {visits}<p><a href=\"/.well-known/spin/health\">Health check</a></p></body></html>"
    );
    let mut response = Response::new(page);
    response.headers_mut().insert(
        "content-type",
        "text/html; charset=utf-8".parse().expect("static header"),
    );
    response
}
