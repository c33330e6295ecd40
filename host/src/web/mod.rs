//! Web pages the host serves itself, next to the app's routes, when the app has a
//! warehouse (it authenticates, ingests or runs studies):
//!
//! | method and path | who | shows |
//! | --- | --- | --- |
//! | `GET /register?page=` | anyone | the public register of approved studies ([`public_register`]) |
//! | `GET /audit/login`, `POST /audit/login` | anyone | the auditor's login form |
//! | `POST /audit/logout` | anyone | ends the session |
//! | `GET /audit` | auditor | chain status, studies, links ([`audit_page`]) |
//! | `GET /audit/components` | auditor | the capability report of every component ([`capability_page`]) |
//! | `GET /audit/studies/<id>?after=` | auditor | a study, its approval and its runs, paged |
//! | `GET /audit/log?actor=&action=&subject=&before=` | auditor | the audit log, filtered, 50 a page |
//! | `GET /audit/patients` | auditor | objections and removals by month ([`patients_page`]) |
//! | `GET /results/login`, `POST /results/login`, `POST /results/logout` | anyone | the researcher's login |
//! | `GET /results?after=` | researcher | the runs of the studies they own, paged ([`results_page`]) |
//! | `GET /results/<run-id>?page=` | owner | a run as a researcher sees it, released table, curves |
//! | `GET /results/<run-id>/result.csv` or `.arrow` | owner | the released table |
//!
//! An auditor authenticates with an auditor token, a researcher with a researcher token,
//! as a bearer token or through the session that the login form of their pages opens
//! after checking the token (cookie `carrel_audit` for `/audit`, `carrel_results` for
//! `/results`, holding the session's id and no token; see [`session`]). Refused logins
//! and refused page requests are audited as `auth.failed`, like refusals on the API;
//! logins as `auth.login`, logouts as `auth.logout`. Pages use no script and no external
//! resource, and send a strict CSP. Every list is paged, a bounded number of rows a page.

pub mod audit_page;
pub mod capability_page;
pub mod curves;
pub mod html;
pub mod model_charts;
pub mod patients_page;
pub mod public_register;
pub mod result_table;
pub mod results_page;
pub mod session;

use carrel_runtime::responses::HostResponse;
use carrel_warehouse::app::App;
use carrel_warehouse::audit_commands::report::Report;
use html::{Nav, html_response, page};
use http::{Method, StatusCode};
use hyper::body::Incoming;
use maud::html;
use session::{AUDITOR, RESEARCHER};

use std::sync::Arc;

/// Paths the host answers itself when the app has a warehouse.
pub fn is_web_path(path: &str) -> bool {
    path == "/register"
        || [AUDITOR.base, RESEARCHER.base].iter().any(|base| {
            path.strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// The capability report, built once (it compiles every binary) and kept; `Err` holds
/// why it could not be built.
static REPORT: tokio::sync::OnceCell<Arc<Result<Report, String>>> =
    tokio::sync::OnceCell::const_new();

pub async fn capability_report(app: &App) -> Arc<Result<Report, String>> {
    REPORT
        .get_or_init(|| async {
            let options = carrel_warehouse::audit_commands::inspect::ReportOptions {
                manifest: app.runtime.manifest_path.clone(),
                component: None,
                state_dir: Some(app.runtime.state_dir.clone()),
            };
            let name = app.runtime.name.clone();
            let built = tokio::task::spawn_blocking(move || {
                let report = carrel_warehouse::audit_commands::inspect::build(&options)
                    .map_err(|e| carrel_runtime::error::with_causes(&e))?;
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
        let body = html! { p { "This app has no warehouse." } };
        return html_response(
            StatusCode::NOT_FOUND,
            false,
            page("Not found", Nav::Public, None, body),
        );
    }
    let realm = if path == RESEARCHER.base || path.starts_with("/results/") {
        RESEARCHER
    } else {
        AUDITOR
    };
    let query = request.uri().query().unwrap_or("").to_owned();
    let client = session::Client::of(
        carrel_warehouse::authn::client_ip(request.extensions()),
        request.headers(),
    );
    match (&method, path.as_str()) {
        (&Method::GET, "/register") => public_register::handle(app, &query),
        (&Method::GET, p) if p == realm.login_path() => realm.login_form(StatusCode::OK, None),
        (&Method::POST, p) if p == realm.login_path() => realm.login(app, request, client).await,
        (&Method::POST, p) if p == realm.logout_path() => {
            realm.logout(app, request.headers(), client)
        }
        (&Method::GET, _) => match realm.principal(app, request.headers(), &path, client) {
            Ok(principal) if realm.role == RESEARCHER.role => {
                results_page::handle(app, &principal, &path, &query).await
            }
            Ok(principal) => audit_page::handle(app, &principal, &path, &query).await,
            Err(response) => *response,
        },
        _ => {
            let body = html! { p { (method) " " (path) " is not served." } };
            html_response(
                StatusCode::METHOD_NOT_ALLOWED,
                false,
                page("Method not allowed", Nav::Public, None, body),
            )
        }
    }
}
