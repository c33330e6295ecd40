//! `/api/studies` and `/api/runs`: the study desk over HTTP.

use crate::app::App;
use crate::authn::authenticate;
use crate::responses::{HostResponse, bytes, json, plain};
use crate::server::{BodyError, read_body};
use crate::study::StudyDesk;
use crate::tokens::Role;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest body of a run request (parameters only).
const MAX_PARAMS_BYTES: usize = 64 << 10;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    params: BTreeMap<String, String>,
}

fn error(status: StatusCode, e: &anyhow::Error) -> HostResponse {
    json(status, &serde_json::json!({"error": format!("{e:#}")}))
}

/// 404 for what does not exist, 409 for a state that forbids the action.
fn desk_error(e: anyhow::Error) -> HostResponse {
    let text = e.to_string();
    let status = if text.starts_with("no study") || text.starts_with("no run") {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::CONFLICT
    };
    error(status, &e)
}

pub async fn handle(
    app: &App,
    desk: Arc<StudyDesk>,
    request: http::Request<Incoming>,
) -> HostResponse {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    use Role::{Auditor, Researcher};
    let roles: &[Role] = match (&method, segments.as_slice()) {
        (&Method::POST, ["api", "studies", _, "approve" | "revoke"]) => &[Auditor],
        (&Method::POST, ["api", "studies", _, "submit" | "runs"]) => &[Researcher],
        (&Method::GET, _) => &[Researcher, Auditor],
        _ => {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} {path} is not part of the study API"),
            );
        }
    };
    let principal = match authenticate(app, request.headers(), roles, &path) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    let actor = format!("token:{}", principal.token_id);
    let outcome = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "studies"]) => desk.list().map(|l| json(StatusCode::OK, &l)),
        (&Method::POST, ["api", "studies", id, "submit"]) => {
            desk.submit(id, &actor).map(|s| json(StatusCode::OK, &s))
        }
        (&Method::POST, ["api", "studies", id, "approve"]) => {
            desk.approve(id, &actor).map(|s| json(StatusCode::OK, &s))
        }
        (&Method::POST, ["api", "studies", id, "revoke"]) => {
            desk.revoke(id, &actor).map(|s| json(StatusCode::OK, &s))
        }
        (&Method::GET, ["api", "studies", id, "runs"]) => desk
            .spec(id)
            .and_then(|_| Ok(desk.registry.runs(Some(id))?))
            .map(|runs| json(StatusCode::OK, &runs)),
        (&Method::POST, ["api", "studies", id, "runs"]) => {
            let id = (*id).to_owned();
            return run(desk, id, actor, app.read_timeout, request).await;
        }
        (&Method::GET, ["api", "runs", run_id]) => desk
            .registry
            .run(run_id)
            .map(|r| json(StatusCode::OK, &r))
            .map_err(Into::into),
        (&Method::GET, ["api", "runs", run_id, file]) => result_file(&desk, run_id, file),
        _ => return plain(StatusCode::NOT_FOUND, format!("no route matches {path}")),
    };
    outcome.unwrap_or_else(desk_error)
}

/// `result.csv` or `result.arrow` of a run: the API's downloads, and the results page's.
pub(crate) fn result_file(
    desk: &StudyDesk,
    run_id: &str,
    file: &str,
) -> anyhow::Result<HostResponse> {
    let ipc = desk.registry.result(run_id)?;
    let Some(ipc) = ipc else {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            format!("run {run_id} released no table"),
        ));
    };
    Ok(match file {
        "result.csv" => bytes(
            StatusCode::OK,
            "text/csv; charset=utf-8",
            crate::results::to_csv(&ipc)?,
        ),
        "result.arrow" => bytes(StatusCode::OK, "application/vnd.apache.arrow.stream", ipc),
        other => plain(
            StatusCode::NOT_FOUND,
            format!("no file `{other}`: use result.csv or result.arrow"),
        ),
    })
}

async fn run(
    desk: Arc<StudyDesk>,
    id: String,
    actor: String,
    read_timeout: std::time::Duration,
    request: http::Request<Incoming>,
) -> HostResponse {
    let body = match read_body(request.into_body(), MAX_PARAMS_BYTES, read_timeout).await {
        Ok(body) => body,
        Err(e @ BodyError::TooSlow) => return plain(StatusCode::REQUEST_TIMEOUT, e.to_string()),
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("cannot read the run request: {e}"),
            );
        }
    };
    let parsed: RunRequest = if body.is_empty() {
        RunRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("the run request is not {{\"params\": {{\"name\": \"value\"}}}}: {e}"),
                );
            }
        }
    };
    let params: Vec<(String, String)> = parsed.params.into_iter().collect();
    // A run decrypts and computes for seconds: keep it off the request-serving threads.
    let handle = tokio::runtime::Handle::current();
    let outcome =
        tokio::task::spawn_blocking(move || handle.block_on(desk.run(&id, params, &actor))).await;
    match outcome {
        Ok(Ok((record, _seq))) => {
            let status = match record.status.as_str() {
                "succeeded" => StatusCode::CREATED,
                "refused" => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            json(status, &record)
        }
        Ok(Err(e)) => desk_error(e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &anyhow::anyhow!("the run task failed: {e}"),
        ),
    }
}
