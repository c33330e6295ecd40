//! Web pages the host serves itself, next to the app's routes, when the app has a
//! warehouse (it authenticates, ingests or runs studies):
//!
//! | method and path | who | shows |
//! | --- | --- | --- |
//! | `GET /register` | anyone | the public register of approved studies ([`register`]) |
//! | `GET /audit/login`, `POST /audit/login` | anyone | the auditor's login form |
//! | `POST /audit/logout` | anyone | forgets the login cookie |
//! | `GET /audit` | auditor | chain status, studies, links ([`audit_page`]) |
//! | `GET /audit/components` | auditor | the capability report of every component |
//! | `GET /audit/studies/<id>` | auditor | a study, its approval and its runs |
//! | `GET /audit/log?actor=&action=&subject=&page=` | auditor | the audit log, filtered, 50 a page |
//!
//! An auditor authenticates with an auditor token, as a bearer token or in the
//! `carrel_audit` cookie that `POST /audit/login` sets after checking the token. The
//! cookie holds the token itself: it is `HttpOnly` (no script reads it), `SameSite=Strict`
//! (no other site's page sends it), scoped to `Path=/audit` (app components never see it)
//! and lasts 8 hours; the server keeps only token hashes, so nothing on disk can forge it,
//! and revoking the token ends the session. Refused logins and refused page requests are
//! audited as `auth.failed`, like refusals on the API; accepted form logins as
//! `auth.login`. Pages use no script and no external resource, and send a strict CSP.

pub mod audit_page;
pub mod html;
pub mod register;

use crate::app::App;
use crate::audit_view::report::Report;
use crate::responses::HostResponse;
use crate::tokens::{Principal, Role};
use carrel_vault::{AuditAction, AuditEvent};
use html::{esc, field, html, page, parse_form, redirect};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use std::sync::Arc;

/// Name of the login cookie.
pub const COOKIE: &str = "carrel_audit";
/// Lifetime of the login cookie, in seconds.
const COOKIE_MAX_AGE: u64 = 8 * 3600;
/// Largest login form accepted.
const MAX_FORM_BYTES: usize = 4 << 10;

/// Paths the host answers itself when the app has a warehouse.
pub fn is_web_path(path: &str) -> bool {
    path == "/register" || path == "/audit" || path.starts_with("/audit/")
}

/// The capability report, built once (it compiles every binary) and kept; `Err` holds
/// why it could not be built.
static REPORT: tokio::sync::OnceCell<Arc<Result<Report, String>>> =
    tokio::sync::OnceCell::const_new();

pub async fn capability_report(app: &App) -> Arc<Result<Report, String>> {
    REPORT
        .get_or_init(|| async {
            let options = crate::audit_view::inspect::ReportOptions {
                manifest: app.manifest_path.clone(),
                component: None,
                state_dir: Some(app.state_dir.clone()),
            };
            let name = app.name.clone();
            let built = tokio::task::spawn_blocking(move || {
                let report =
                    crate::audit_view::inspect::build(&options).map_err(|e| format!("{e:#}"))?;
                if report.application.name != name {
                    return Err(format!(
                        "{} is the manifest of `{}`, not of the running app `{name}`",
                        options.manifest.display(),
                        report.application.name
                    ));
                }
                Ok(report)
            })
            .await
            .unwrap_or_else(|e| Err(format!("the report task failed: {e}")));
            Arc::new(built)
        })
        .await
        .clone()
}

pub async fn handle(app: &App, request: http::Request<Incoming>) -> HostResponse {
    let path = request.uri().path().to_owned();
    let method = request.method().clone();
    if app.warehouse.is_none() {
        return html(
            StatusCode::NOT_FOUND,
            false,
            page("Not found", false, "", "<p>This app has no warehouse.</p>"),
        );
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/register") => register::handle(app),
        (&Method::GET, "/audit/login") => login_form(StatusCode::OK, None),
        (&Method::POST, "/audit/login") => login(app, request).await,
        (&Method::POST, "/audit/logout") => redirect(
            "/audit/login",
            Some(&format!(
                "{COOKIE}=; Path=/audit; HttpOnly; SameSite=Strict; Max-Age=0"
            )),
        ),
        (&Method::GET, _) => match auditor(app, request.headers(), &path) {
            Ok(principal) => {
                let query = request.uri().query().unwrap_or("").to_owned();
                audit_page::handle(app, &principal, &path, &query).await
            }
            Err(response) => *response,
        },
        _ => html(
            StatusCode::METHOD_NOT_ALLOWED,
            false,
            page(
                "Method not allowed",
                false,
                "",
                &format!(
                    "<p>{} {} is not served.</p>",
                    esc(method.as_str()),
                    esc(&path)
                ),
            ),
        ),
    }
}

/// The request's token: the bearer token, else the login cookie.
fn token_of(headers: &HeaderMap) -> Option<(String, bool)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        return Some((token.to_owned(), false));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == COOKIE && !value.is_empty())
        .map(|(_, value)| (value.to_owned(), true))
}

fn bearer_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(header::AUTHORIZATION, value);
    }
    headers
}

/// The auditor making the request, or what to answer: to the login form without any
/// credential or with a stale cookie, 403 for a token of another role.
fn auditor(app: &App, headers: &HeaderMap, path: &str) -> Result<Principal, Box<HostResponse>> {
    let Some((token, from_cookie)) = token_of(headers) else {
        return Err(Box::new(redirect("/audit/login", None)));
    };
    match crate::authn::authenticate(app, &bearer_headers(&token), &[Role::Auditor], path) {
        Ok(principal) => Ok(principal),
        Err(refusal) => {
            let status = refusal.status();
            Err(Box::new(
                if status == StatusCode::UNAUTHORIZED && from_cookie {
                    redirect(
                        "/audit/login",
                        Some(&format!(
                            "{COOKIE}=; Path=/audit; HttpOnly; SameSite=Strict; Max-Age=0"
                        )),
                    )
                } else if status == StatusCode::FORBIDDEN {
                    html(
                        status,
                        true,
                        page(
                            "Forbidden",
                            false,
                            "",
                            "<p class=\"error\">This page is for auditors; your token has another role.</p>",
                        ),
                    )
                } else {
                    *refusal
                },
            ))
        }
    }
}

fn login_form(status: StatusCode, message: Option<&str>) -> HostResponse {
    let message = message
        .map(|m| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(m)))
        .unwrap_or_default();
    html(
        status,
        true,
        page(
            "Auditor login",
            false,
            "",
            &format!(
                "{message}<form method=\"post\" action=\"/audit/login\" id=\"login\">\
                 <p><label>Auditor token<br><input type=\"password\" name=\"token\" id=\"token\" \
                 autocomplete=\"off\" size=\"60\" required></label></p>\
                 <p><button type=\"submit\" id=\"login-submit\">Log in</button></p></form>\
                 <p class=\"note\">The token is kept in an HttpOnly cookie for this view only, \
                 for 8 hours or until you log out.</p>"
            ),
        ),
    )
}

async fn login(app: &App, request: http::Request<Incoming>) -> HostResponse {
    let body = match Limited::new(request.into_body(), MAX_FORM_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(_) => return login_form(StatusCode::BAD_REQUEST, Some("The form is too large.")),
    };
    let form = parse_form(&String::from_utf8_lossy(&body));
    let Some(token) = field(&form, "token") else {
        return login_form(StatusCode::BAD_REQUEST, Some("Enter an auditor token."));
    };
    let path = "/audit/login";
    match crate::authn::authenticate(app, &bearer_headers(token), &[Role::Auditor], path) {
        Ok(principal) => {
            if let Some(warehouse) = &app.warehouse {
                let event = AuditEvent::new(
                    format!("token:{}", principal.token_id),
                    AuditAction::Other("auth.login".into()),
                    format!("route:{path}"),
                )
                .with_details(serde_json::json!({"via": "form"}));
                if let Err(e) = warehouse.audit.append(&event) {
                    tracing::error!(error = %e, "cannot audit a login");
                }
            }
            redirect(
                "/audit",
                Some(&format!(
                    "{COOKIE}={token}; Path=/audit; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE}"
                )),
            )
        }
        Err(refusal) => {
            let status = refusal.status();
            let message = match status {
                StatusCode::FORBIDDEN => "This token is not an auditor token.",
                StatusCode::UNAUTHORIZED => "Unknown or revoked token.",
                _ => "The token cannot be checked now.",
            };
            login_form(status, Some(message))
        }
    }
}
