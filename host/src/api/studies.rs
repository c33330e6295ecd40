//! `/api/studies` and `/api/runs`: the study desk over HTTP. A researcher sees runs as
//! [`carrel_warehouse::study::ResearcherRun`]s, and only those of studies they own (anything else is
//! 404, as if it did not exist); an auditor sees every run in full. Lists of runs are
//! paged; runs are let in by [`carrel_warehouse::study::run_gate`], within each researcher's quota of
//! stored runs, with parameters bounded by [`carrel_warehouse::study::metadata::check_params`].

use super::error::ApiError;
use carrel_runtime::request_body::{BodyError, read_body};
use carrel_runtime::responses::{HostResponse, bytes, json, plain};
use carrel_warehouse::app::App;
use carrel_warehouse::authn::authenticate;
use carrel_warehouse::study::registry::{RunRecord, RunStatus};
use carrel_warehouse::study::run_pages::page_size;
use carrel_warehouse::study::{Caller, StudyService};
use carrel_warehouse::tokens::Role;
use http::{Method, StatusCode};
use hyper::body::Incoming;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest body of a run request (parameters only): what a run keeps of them is bounded
/// by [`carrel_warehouse::study::metadata::MAX_PARAMS_BYTES`], and the JSON around them is small.
const MAX_RUN_REQUEST_BYTES: usize = carrel_warehouse::study::metadata::MAX_PARAMS_BYTES + 1024;

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

/// The error's answer, with `Retry-After` when the catalog was locked past its wait
/// (nothing was done: ask again).
fn desk_error(e: ApiError) -> HostResponse {
    if e.catalog_busy() {
        tracing::warn!("a study request found the catalog locked past its wait");
        return unavailable(e.to_string());
    }
    e.response()
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
    desk: Arc<StudyService>,
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
    let source = carrel_warehouse::authn::client_ip(request.extensions());
    let principal = match authenticate(app, request.headers(), roles, &path, source) {
        Ok(p) => p,
        Err(response) => return *response,
    };
    // Approvals, submissions and runs are recorded under the token holder's name.
    let who = Caller::Holder(principal);
    let outcome = match (&method, segments.as_slice()) {
        (&Method::GET, ["api", "studies"]) => desk
            .list()
            .map(|l| json(StatusCode::OK, &l))
            .map_err(Into::into),
        (&Method::POST, ["api", "studies", id, "submit"]) => desk
            .submit(id, &who)
            .await
            .map(|s| json(StatusCode::OK, &s))
            .map_err(Into::into),
        (&Method::POST, ["api", "studies", id, "approve"]) => desk
            .approve(id, &who)
            .map(|s| json(StatusCode::OK, &s))
            .map_err(Into::into),
        (&Method::POST, ["api", "studies", id, "revoke"]) => desk
            .revoke(id, &who)
            .map(|s| json(StatusCode::OK, &s))
            .map_err(Into::into),
        (&Method::GET, ["api", "studies", id, "runs"]) => {
            let query = request.uri().query().unwrap_or("");
            desk.spec(id)
                .map_err(Into::into)
                .and_then(|_| runs_page(&desk, &who, id, query))
        }
        (&Method::POST, ["api", "studies", id, "runs"]) => {
            let id = (*id).to_owned();
            return run(app, desk, id, who, request).await;
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

/// `GET /api/studies/<id>/runs?limit=N&after=RUN`: one page of runs, newest first, as
/// `who` may see them; a `Link` header (`rel="next"`) names the next page.
fn runs_page(
    desk: &StudyService,
    who: &Caller,
    id: &str,
    query: &str,
) -> Result<HostResponse, ApiError> {
    let form = crate::forms::parse_form(query);
    let field = |name: &str| crate::forms::field(&form, name);
    let limit = page_size(field("limit").and_then(|l| l.parse().ok()));
    let page = desk
        .registry
        .runs_page_for(who, Some(id), field("after"), limit)?;
    let mut response = if who.reads_every_run() {
        json(StatusCode::OK, &page.runs)
    } else {
        let views: Vec<_> = page.runs.iter().map(RunRecord::for_researcher).collect();
        json(StatusCode::OK, &views)
    };
    if let Some(next) = &page.next_after {
        let link = format!(
            "</api/studies/{}/runs?limit={limit}&after={}>; rel=\"next\"",
            crate::forms::url_encode(id),
            crate::forms::url_encode(next)
        );
        if let Ok(value) = http::HeaderValue::from_str(&link) {
            response.headers_mut().insert(http::header::LINK, value);
        }
    }
    Ok(response)
}

/// `POST /api/studies/<id>/owners` with `{"token_id": "…"}`, by an owner.
async fn add_owner(
    app: &App,
    desk: &StudyService,
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
        .map_err(ApiError::from)
        .and_then(|()| Ok(warehouse.tokens.get(&parsed.token_id)?))
        .and_then(|token| Ok(desk.registry.add_owner(id, &token, who)?));
    match added {
        Ok(owners) => json(StatusCode::OK, &owners),
        Err(e) => desk_error(e),
    }
}

/// `result.csv`, `result.arrow` or (for a fitted regression) `model.onnx` of a run: the
/// API's downloads, and the results page's.
pub(crate) fn result_file(
    desk: &StudyService,
    run_id: &str,
    file: &str,
) -> Result<HostResponse, ApiError> {
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
            carrel_warehouse::download_formats::to_csv(&ipc)?,
        ),
        "result.arrow" => bytes(StatusCode::OK, "application/vnd.apache.arrow.stream", ipc),
        "model.onnx" => {
            match carrel_warehouse::download_formats::to_onnx(
                &ipc,
                &desk.registry.run(run_id)?.model_report,
            ) {
                Ok(model) => bytes(StatusCode::OK, "application/octet-stream", model),
                Err(e) if e.is_about_the_run() => {
                    plain(StatusCode::NOT_FOUND, format!("run {run_id}: {e}"))
                }
                Err(e) => return Err(e.into()),
            }
        }
        other => plain(
            StatusCode::NOT_FOUND,
            format!("no file `{other}`: use result.csv, result.arrow or model.onnx"),
        ),
    })
}

/// 429 with `Retry-After`: the run was not started, and may be asked again later.
fn too_many(message: String) -> HostResponse {
    retry_later(StatusCode::TOO_MANY_REQUESTS, message)
}

/// An error with `Retry-After`: nothing was done, and the request may be made again.
fn retry_later(status: StatusCode, message: String) -> HostResponse {
    let mut response = json(status, &serde_json::json!({"error": message}));
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

/// 503 with `Retry-After`: the catalog was busy and the request was not recorded.
fn unavailable(message: String) -> HostResponse {
    retry_later(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// Seconds a client refused for load is asked to wait.
const RETRY_AFTER_SECONDS: &str = "10";

async fn run(
    app: &App,
    desk: Arc<StudyService>,
    id: String,
    who: Caller,
    request: http::Request<Incoming>,
) -> HostResponse {
    let body = match read_body(request.into_body(), MAX_RUN_REQUEST_BYTES, app.read_timeout).await {
        Ok(body) => body,
        Err(e @ BodyError::TooSlow) => return plain(StatusCode::REQUEST_TIMEOUT, e.to_string()),
        Err(e @ BodyError::TooLarge(_)) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the run request: {e}"),
            );
        }
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
    // Nothing of a run that is refused here is stored.
    if let Err(e) = carrel_warehouse::study::metadata::check_params(&params) {
        return ApiError::from(e).response();
    }
    let Caller::Holder(principal) = &who else {
        unreachable!("the API authenticates every caller")
    };
    let researcher = principal.token_id.clone();
    if let Err(e) = desk.registry.check_owner(&id, &who, "run") {
        return desk_error(e.into());
    }
    let gate = app.run_gate.clone();
    let quota = gate.limits.stored_per_researcher;
    match desk.registry.stored_runs_of(&researcher) {
        Ok(stored) if stored >= quota => {
            return too_many(format!(
                "token {researcher} has {stored} stored runs, the quota of this warehouse is {quota}: ask its operator"
            ));
        }
        Ok(_) => {}
        Err(e) => return desk_error(e.into()),
    }
    let permit = match gate.enter(&researcher).await {
        Ok(permit) => permit,
        Err(busy) => {
            tracing::info!(researcher = %researcher, %busy, "study run refused for load");
            return too_many(busy.to_string());
        }
    };
    // A run decrypts and computes for seconds: keep it off the request-serving threads.
    let handle = tokio::runtime::Handle::current();
    let outcome = {
        let who = who.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = handle.block_on(desk.run(&id, params, &who));
            drop(permit);
            outcome
        })
        .await
    };
    match outcome {
        Ok(Ok((record, _seq))) => {
            let status = match record.status {
                RunStatus::Succeeded => StatusCode::CREATED,
                RunStatus::Refused => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            run_json(&who, status, &record)
        }
        Ok(Err(e)) => desk_error(e.into()),
        Err(e) => ApiError::from(e).response(),
    }
}
