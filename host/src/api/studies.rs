//! `/api/studies` and `/api/runs`: the study desk over HTTP. A researcher sees runs as
//! [`crate::study::ResearcherRun`]s, and only those of studies they own (anything else is
//! 404, as if it did not exist); an auditor sees every run in full.

use crate::app::App;
use crate::authn::authenticate;
use crate::responses::{HostResponse, bytes, json, plain};
use crate::server::{BodyError, read_body};
use crate::study::registry::{RegistryError, RunRecord};
use crate::study::{Caller, StudyDesk};
use crate::tokens::{Role, TokenError};
use http::{Method, StatusCode};
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest body of a run request (parameters only).
const MAX_PARAMS_BYTES: usize = 64 << 10;

/// Largest body of an owner request.
const MAX_OWNER_BYTES: usize = 4 << 10;

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RunRequest {
    #[serde(default)]
    params: BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OwnerRequest {
    token_id: String,
}

fn error(status: StatusCode, e: &anyhow::Error) -> HostResponse {
    json(status, &serde_json::json!({"error": format!("{e:#}")}))
}

/// 404 for what does not exist or is not the caller's, 400 for an unknown token, 409 for
/// a state that forbids the action.
fn desk_error(e: anyhow::Error) -> HostResponse {
    let text = e.to_string();
    let status = match e.downcast_ref::<RegistryError>() {
        Some(RegistryError::NotYours(_) | RegistryError::UnknownRun(_)) => StatusCode::NOT_FOUND,
        _ if text.starts_with("no study") || text.starts_with("no run") => StatusCode::NOT_FOUND,
        _ if e.downcast_ref::<TokenError>().is_some() => StatusCode::BAD_REQUEST,
        _ => StatusCode::CONFLICT,
    };
    error(status, &e)
}

/// A run as `who` may see it: in full for an auditor, else as a researcher sees it.
fn run_json(who: &Caller, status: StatusCode, run: &RunRecord) -> HostResponse {
    if who.reads_every_run() {
        json(status, run)
    } else {
        json(status, &run.for_researcher())
    }
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
        (&Method::POST, ["api", "studies", _, "submit" | "runs" | "owners"]) => &[Researcher],
        (&Method::DELETE, ["api", "studies", _, "owners", _]) => &[Researcher],
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
    // Approvals, submissions and runs are recorded under the token holder's name.
    let who = Caller::Holder(principal);
    let outcome = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "studies"]) => desk.list().map(|l| json(StatusCode::OK, &l)),
        (&Method::POST, ["api", "studies", id, "submit"]) => {
            desk.submit(id, &who).map(|s| json(StatusCode::OK, &s))
        }
        (&Method::POST, ["api", "studies", id, "approve"]) => {
            desk.approve(id, &who).map(|s| json(StatusCode::OK, &s))
        }
        (&Method::POST, ["api", "studies", id, "revoke"]) => {
            desk.revoke(id, &who).map(|s| json(StatusCode::OK, &s))
        }
        (&Method::GET, ["api", "studies", id, "runs"]) => desk
            .spec(id)
            .and_then(|_| Ok(desk.registry.runs_for(&who, Some(id))?))
            .map(|runs| {
                if who.reads_every_run() {
                    json(StatusCode::OK, &runs)
                } else {
                    let views: Vec<_> = runs.iter().map(RunRecord::for_researcher).collect();
                    json(StatusCode::OK, &views)
                }
            }),
        (&Method::POST, ["api", "studies", id, "runs"]) => {
            let id = (*id).to_owned();
            return run(desk, id, who, app.read_timeout, request).await;
        }
        (&Method::GET, ["api", "studies", id, "owners"]) => desk
            .registry
            .check_reader(id, &who)
            .and_then(|()| desk.registry.owners(id))
            .map(|owners| json(StatusCode::OK, &owners))
            .map_err(Into::into),
        (&Method::POST, ["api", "studies", id, "owners"]) => {
            let id = (*id).to_owned();
            return add_owner(app, &desk, &id, &who, request).await;
        }
        (&Method::DELETE, ["api", "studies", id, "owners", token_id]) => desk
            .registry
            .remove_owner(id, token_id, &who)
            .map(|owners| json(StatusCode::OK, &owners))
            .map_err(Into::into),
        (&Method::GET, ["api", "runs", run_id]) => desk
            .registry
            .run_for(&who, run_id)
            .map(|r| run_json(&who, StatusCode::OK, &r))
            .map_err(Into::into),
        (&Method::GET, ["api", "runs", run_id, file]) => desk
            .registry
            .run_for(&who, run_id)
            .map_err(Into::into)
            .and_then(|_| result_file(&desk, run_id, file)),
        _ => return plain(StatusCode::NOT_FOUND, format!("no route matches {path}")),
    };
    outcome.unwrap_or_else(desk_error)
}

/// `POST /api/studies/<id>/owners` with `{"token_id": "…"}`, by an owner.
async fn add_owner(
    app: &App,
    desk: &StudyDesk,
    id: &str,
    who: &Caller,
    request: http::Request<Incoming>,
) -> HostResponse {
    let body = match read_body(request.into_body(), MAX_OWNER_BYTES, app.read_timeout).await {
        Ok(body) => body,
        Err(e @ BodyError::TooSlow) => return plain(StatusCode::REQUEST_TIMEOUT, e.to_string()),
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request: {e}"),
            );
        }
    };
    let parsed: OwnerRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("the request is not {{\"token_id\": \"…\"}}: {e}"),
            );
        }
    };
    let Some(warehouse) = &app.warehouse else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "no token store");
    };
    // A non-owner learns nothing, not even whether the token exists.
    let added = desk
        .registry
        .check_owner(id, who, "add an owner")
        .map_err(anyhow::Error::from)
        .and_then(|()| Ok(warehouse.tokens.get(&parsed.token_id)?))
        .and_then(|token| Ok(desk.registry.add_owner(id, &token, who)?));
    match added {
        Ok(owners) => json(StatusCode::OK, &owners),
        Err(e) => desk_error(e),
    }
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
    who: Caller,
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
    let outcome = {
        let who = who.clone();
        tokio::task::spawn_blocking(move || handle.block_on(desk.run(&id, params, &who))).await
    };
    match outcome {
        Ok(Ok((record, _seq))) => {
            let status = match record.status.as_str() {
                "succeeded" => StatusCode::CREATED,
                "refused" => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            run_json(&who, status, &record)
        }
        Ok(Err(e)) => desk_error(e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &anyhow::anyhow!("the run task failed: {e}"),
        ),
    }
}
