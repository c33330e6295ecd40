//! The warehouse's own HTTP API, served by the host next to the app's routes:
//!
//! | method and path | role | does |
//! | --- | --- | --- |
//! | `GET /api/studies` | researcher, auditor | the studies with state, hashes, expiry |
//! | `POST /api/studies/<id>/submit` | researcher | records the exact hashes for approval |
//! | `POST /api/studies/<id>/approve` | auditor | approves the submitted hashes |
//! | `POST /api/studies/<id>/revoke` | auditor | withdraws the approval |
//! | `POST /api/studies/<id>/runs` | researcher | runs it; body `{"params": {"name": "value"}}` |
//! | `GET /api/studies/<id>/runs` | researcher, auditor | its runs, newest first |
//! | `GET /api/runs/<run-id>` | researcher, auditor | the run record |
//! | `GET /api/runs/<run-id>/result.csv` or `.arrow` | researcher, auditor | the released table |
//!
//! Present when the app declares studies. Every action is audited by the study desk.

mod studies;

pub(crate) use studies::result_file;

use crate::app::App;
use crate::responses::HostResponse;
use crate::study::StudyDesk;
use hyper::body::Incoming;
use std::sync::Arc;

/// Paths the host answers itself when the app has studies.
pub fn is_api_path(path: &str) -> bool {
    path == "/api/studies" || path.starts_with("/api/studies/") || path.starts_with("/api/runs/")
}

pub async fn handle(
    app: &App,
    desk: Arc<StudyDesk>,
    request: http::Request<Incoming>,
) -> HostResponse {
    studies::handle(app, desk, request).await
}
