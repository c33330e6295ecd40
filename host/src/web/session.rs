//! Logins to the host's pages: a [`Realm`] is a set of pages under one path for one
//! token role (the auditor's view under `/audit`, the researcher's results under
//! `/results`), with a login form that checks the token and keeps it in a cookie.
//!
//! The cookie holds the token itself: it is `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page sends it), scoped to the realm's path (app
//! components and the other realm never see it) and lasts 8 hours; the server keeps only
//! token hashes, so nothing on disk can forge it, and revoking the token ends the session.
//! Refused logins are audited as `auth.failed` (by [`crate::authn`]), accepted ones as
//! `auth.login`.

use super::html::{esc, field, html, page, parse_form, redirect};
use crate::app::App;
use crate::responses::HostResponse;
use crate::server::{BodyError, read_body};
use crate::tokens::{Principal, Role};
use carrel_vault::{AuditAction, AuditEvent};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper::body::Incoming;

/// Lifetime of a login cookie, in seconds.
const COOKIE_MAX_AGE: u64 = 8 * 3600;
/// Largest login form accepted.
const MAX_FORM_BYTES: usize = 4 << 10;

/// Pages under one path for the tokens of one role.
#[derive(Debug, Clone, Copy)]
pub struct Realm {
    pub role: Role,
    /// Name of the login cookie.
    pub cookie: &'static str,
    /// Path of the pages and of the cookie: `/audit`.
    pub base: &'static str,
    /// The role in a sentence: `auditor`.
    pub who: &'static str,
    /// `an auditor`.
    pub a_who: &'static str,
}

/// The auditor's view.
pub const AUDITOR: Realm = Realm {
    role: Role::Auditor,
    cookie: "carrel_audit",
    base: "/audit",
    who: "auditor",
    a_who: "an auditor",
};

/// The researcher's results.
pub const RESEARCHER: Realm = Realm {
    role: Role::Researcher,
    cookie: "carrel_results",
    base: "/results",
    who: "researcher",
    a_who: "a researcher",
};

/// The request's token: the bearer token, else the cookie named `cookie`; the flag says
/// it came from the cookie.
fn token_of(headers: &HeaderMap, cookie: &str) -> Option<(String, bool)> {
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
        .find(|(name, value)| *name == cookie && !value.is_empty())
        .map(|(_, value)| (value.to_owned(), true))
}

fn bearer_headers(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(header::AUTHORIZATION, value);
    }
    headers
}

impl Realm {
    pub fn login_path(&self) -> String {
        format!("{}/login", self.base)
    }

    pub fn logout_path(&self) -> String {
        format!("{}/logout", self.base)
    }

    fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
            self.cookie, self.base
        )
    }

    /// Forgets the login cookie and goes back to the login form.
    pub fn logout(&self) -> HostResponse {
        redirect(&self.login_path(), Some(&self.clear_cookie()))
    }

    /// The principal making the request, or what to answer: to the login form without
    /// any credential or with a stale cookie, 403 for a token of another role.
    pub fn principal(
        &self,
        app: &App,
        headers: &HeaderMap,
        path: &str,
    ) -> Result<Principal, Box<HostResponse>> {
        let Some((token, from_cookie)) = token_of(headers, self.cookie) else {
            return Err(Box::new(redirect(&self.login_path(), None)));
        };
        let refusal =
            match crate::authn::authenticate(app, &bearer_headers(&token), &[self.role], path) {
                Ok(principal) => return Ok(principal),
                Err(refusal) => refusal,
            };
        let status = refusal.status();
        Err(Box::new(
            if status == StatusCode::UNAUTHORIZED && from_cookie {
                redirect(&self.login_path(), Some(&self.clear_cookie()))
            } else if status == StatusCode::FORBIDDEN {
                html(
                    status,
                    true,
                    page(
                        "Forbidden",
                        false,
                        "",
                        &format!(
                            "<p class=\"error\">This page is for {}s; your token has another role.</p>",
                            self.who
                        ),
                    ),
                )
            } else {
                *refusal
            },
        ))
    }

    pub fn login_form(&self, status: StatusCode, message: Option<&str>) -> HostResponse {
        let message = message
            .map(|m| format!("<p class=\"error\" id=\"login-error\">{}</p>", esc(m)))
            .unwrap_or_default();
        let mut role = self.who.to_owned();
        role[..1].make_ascii_uppercase();
        html(
            status,
            true,
            page(
                &format!("{role} login"),
                false,
                "",
                &format!(
                    "{message}<form method=\"post\" action=\"{}\" id=\"login\">\
                     <p><label>{role} token<br><input type=\"password\" name=\"token\" id=\"token\" \
                     autocomplete=\"off\" size=\"60\" required></label></p>\
                     <p><button type=\"submit\" id=\"login-submit\">Log in</button></p></form>\
                     <p class=\"note\">The token is kept in an HttpOnly cookie for these pages only, \
                     for 8 hours or until you log out.</p>",
                    self.login_path()
                ),
            ),
        )
    }

    /// `POST <base>/login`: checks the token of the form and sets the cookie.
    pub async fn login(&self, app: &App, request: http::Request<Incoming>) -> HostResponse {
        let body = match read_body(request.into_body(), MAX_FORM_BYTES, app.read_timeout).await {
            Ok(body) => body,
            Err(BodyError::TooSlow) => {
                return self.login_form(
                    StatusCode::REQUEST_TIMEOUT,
                    Some("The form was not received in time."),
                );
            }
            Err(_) => {
                return self.login_form(StatusCode::BAD_REQUEST, Some("The form is too large."));
            }
        };
        let form = parse_form(&String::from_utf8_lossy(&body));
        let Some(token) = field(&form, "token") else {
            return self.login_form(
                StatusCode::BAD_REQUEST,
                Some(&format!("Enter {} token.", self.a_who)),
            );
        };
        let path = self.login_path();
        match crate::authn::authenticate(app, &bearer_headers(token), &[self.role], &path) {
            Ok(principal) => {
                if let Some(warehouse) = &app.warehouse {
                    let event = AuditEvent::new(
                        principal.actor(),
                        AuditAction::Other("auth.login".into()),
                        format!("route:{path}"),
                    )
                    .with_details(serde_json::json!({"via": "form"}));
                    if let Err(e) = warehouse.audit.append(&event) {
                        tracing::error!(error = %e, "cannot audit a login");
                    }
                }
                redirect(
                    self.base,
                    Some(&format!(
                        "{}={token}; Path={}; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE}",
                        self.cookie, self.base
                    )),
                )
            }
            Err(refusal) => {
                let status = refusal.status();
                let message = match status {
                    StatusCode::FORBIDDEN => format!("This token is not {} token.", self.a_who),
                    StatusCode::UNAUTHORIZED => "Unknown or revoked token.".to_owned(),
                    _ => "The token cannot be checked now.".to_owned(),
                };
                self.login_form(status, Some(&message))
            }
        }
    }
}
