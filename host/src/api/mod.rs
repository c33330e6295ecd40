//! The warehouse's own HTTP API, served by the host next to the app's routes:
//!
//! | method and path | role | does |
//! | --- | --- | --- |
//! | `GET /api/studies` | researcher, auditor | the studies with state, hashes, expiry, owners |
//! | `POST /api/studies/<id>/submit` | researcher (owner) | records the exact hashes for approval |
//! | `POST /api/studies/<id>/approve` | auditor | approves the submitted hashes |
//! | `POST /api/studies/<id>/revoke` | auditor | withdraws the approval |
//! | `POST /api/studies/<id>/runs` | researcher (owner) | runs it; body `{"params": {"name": "value"}}`; 429 with `Retry-After` past the caps ([`carrel_warehouse::study::run_gate`]) |
//! | `GET /api/studies/<id>/runs?limit=&after=` | owner, auditor | its runs, newest first, a page at a time (`Link: rel="next"`) |
//! | `GET /api/studies/<id>/owners` | owner, auditor | its owners |
//! | `POST /api/studies/<id>/owners` | owner | adds an owner; body `{"token_id": "…"}` |
//! | `DELETE /api/studies/<id>/owners/<token-id>` | owner | removes an owner (one must stay) |
//! | `GET /api/runs/<run-id>` | owner, auditor | the run record |
//! | `GET /api/runs/<run-id>/result.csv` or `.arrow` | owner, auditor | the released table |
//!
//! Present when the app declares studies. Every action is audited by the study desk.
//! "Owner" is a researcher's token among the study's owners
//! ([`carrel_warehouse::study::owners`]): the first to submit it, and those they add. To any other
//! researcher, a study's runs and actions are 404. Researchers get runs as
//! [`carrel_warehouse::study::ResearcherRun`]s (status, a fixed error category, no log, no error
//! text, no figure of what was read); auditors get the full record.

mod error;
mod studies;

pub use error::ApiError;

pub(crate) use studies::result_file;

use carrel_runtime::responses::HostResponse;
use carrel_warehouse::app::App;
use carrel_warehouse::study::StudyService;
use hyper::body::Incoming;
use std::sync::Arc;

/// Paths the host answers itself when the app has studies.
pub fn is_api_path(path: &str) -> bool {
    path == "/api/studies" || path.starts_with("/api/studies/") || path.starts_with("/api/runs/")
}

pub async fn handle(
    app: &App,
    desk: Arc<StudyService>,
    request: http::Request<Incoming>,
) -> HostResponse {
    studies::handle(app, desk, request).await
}
