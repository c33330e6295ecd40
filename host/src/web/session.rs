//! Logins to the host's pages: a [`Realm`] is a set of pages under one path for one
//! token role (the auditor's view under `/audit`, the researcher's results under
//! `/results`), with a login form that checks the token and opens a server-side session
//! ([`carrel_warehouse::sessions`]).
//!
//! The cookie holds the session's random id, never the token: it is `HttpOnly` (no script
//! reads it), `SameSite=Strict` (no other site's page sends it), `Secure` unless the page
//! is served over plain HTTP on loopback, and scoped to the realm's path (app components
//! and the other realm never see it). The session ends at logout, after its lifetime
//! (8 hours by default, `carrel up --session-lifetime`), or when its token is revoked.
//! Both forms refuse cross-site posts (login CSRF would log a victim in as the attacker):
//! a browser's `Sec-Fetch-Site` must say same-origin, or its `Origin` must be this host.
//! Refused logins are audited as `auth.failed` (by [`carrel_warehouse::authn`]), logins as
//! `auth.login` and logouts as `auth.logout`, each with a reference to the session.

use super::html::{Nav, html_response, page, redirect};
use crate::forms::{field, parse_form};
use carrel_runtime::request_body::{BodyError, read_body};
use carrel_runtime::responses::HostResponse;
use carrel_vault::{AuditAction, AuditEvent};
use carrel_warehouse::app::{App, Warehouse};
use carrel_warehouse::sessions::{NoSession, Session};
use carrel_warehouse::tokens::{Principal, Role};
use cookie::time::Duration;
use cookie::{Cookie, SameSite};
use http::{HeaderMap, StatusCode, header};
use hyper::body::Incoming;
use maud::html;
use std::net::IpAddr;

/// Largest login form accepted.
const MAX_FORM_BYTES: usize = 4 << 10;

/// Pages under one path for the tokens of one role.
#[derive(Debug, Clone, Copy)]
pub struct Realm {
    pub role: Role,
    /// Name of the session cookie.
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

/// What the pages know of a request besides its path: who sent it from where, and how.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub address: IpAddr,
    /// Whether cookies must be `Secure`: everywhere except plain HTTP on loopback.
    pub secure: bool,
}

impl Client {
    /// `address` sent a request with `headers`. A browser on this machine reaches the
    /// host over plain HTTP (no `Secure` cookie would come back); anything else is
    /// assumed to come through a TLS-terminating proxy.
    pub fn of(address: IpAddr, headers: &HeaderMap) -> Self {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let forwarded_https = headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"));
        Self {
            address,
            secure: !(address.is_loopback() && is_loopback_host(host)) || forwarded_https,
        }
    }
}

/// Whether a `Host` header names this machine's loopback interface.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Why a form post is refused as cross-site, if it is: `Sec-Fetch-Site` (sent by every
/// current browser) must be `same-origin` or `none` (typed by the user); without it, an
/// `Origin` must name this host. A request with neither comes from no browser, and so
/// cannot carry anyone's cookies against their will.
pub fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site") {
        return (!matches!(site, "same-origin" | "none")).then_some("a cross-site form post");
    }
    let origin = value("origin")?;
    let host = value("host").unwrap_or("");
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match authority {
        Some(authority) if authority.eq_ignore_ascii_case(host) => None,
        _ => Some("a form post from another origin"),
    }
}

/// The value of the cookie `name` in the request, if any.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .and_then(|c| c.value_raw())
}

fn warehouse(app: &App) -> &Warehouse {
    app.warehouse
        .as_ref()
        .expect("the pages are served only with a warehouse")
}

fn audit(app: &App, event: AuditEvent) {
    if let Err(e) = warehouse(app).audit.append(&event) {
        tracing::error!(error = %e, "cannot audit a session event");
    }
}

impl Realm {
    pub fn login_path(&self) -> String {
        format!("{}/login", self.base)
    }

    pub fn logout_path(&self) -> String {
        format!("{}/logout", self.base)
    }

    /// The session cookie: `HttpOnly`, `SameSite=Strict`, on the realm's path only, and
    /// `Secure` unless the client is on loopback over plain HTTP.
    fn session_cookie(&self, value: String, max_age: Duration, client: Client) -> Cookie<'static> {
        Cookie::build((self.cookie, value))
            .path(self.base)
            .http_only(true)
            .same_site(SameSite::Strict)
            .max_age(max_age)
            .secure(client.secure)
            .build()
    }

    fn clear_cookie(&self, client: Client) -> Cookie<'static> {
        self.session_cookie(String::new(), Duration::ZERO, client)
    }

    /// Ends the session of the request, audited, and goes back to the login form.
    pub fn logout(&self, app: &App, headers: &HeaderMap, client: Client) -> HostResponse {
        if let Some(why) = cross_site(headers) {
            return self.refuse_cross_site(app, client, &self.logout_path(), why);
        }
        let w = warehouse(app);
        if let Some(session) = cookie_value(headers, self.cookie).and_then(|id| w.sessions.end(id))
        {
            let actor = match w.tokens.get(&session.token_id) {
                Ok(token) => token.principal().actor(),
                Err(_) => format!("token:{}", session.token_id),
            };
            audit(
                app,
                AuditEvent::new(
                    actor,
                    AuditAction::Other("auth.logout".into()),
                    format!("route:{}", self.logout_path()),
                )
                .with_details(serde_json::json!({"session": session.reference})),
            );
        }
        redirect(&self.login_path(), Some(self.clear_cookie(client)))
    }

    /// The principal of a live session, checked against the token store: a revoked
    /// token ends every session it opened.
    fn session_principal(
        &self,
        app: &App,
        session: &Session,
        id: &str,
    ) -> Result<Principal, &'static str> {
        let w = warehouse(app);
        let token = w.tokens.get(&session.token_id).map_err(|e| {
            tracing::error!(error = %e, "cannot read the token of a session");
            "token of the session unknown"
        })?;
        if token.revoked.is_some() {
            w.sessions.end_token(&session.token_id);
            return Err("session of a revoked token");
        }
        if session.role != self.role || token.role != self.role {
            w.sessions.end(id);
            return Err("session of another role");
        }
        Ok(token.principal())
    }

    /// The principal making the request, or what to answer: to the login form without
    /// any credential or with an ended session, 401/403 for a bad bearer token.
    pub fn principal(
        &self,
        app: &App,
        headers: &HeaderMap,
        path: &str,
        client: Client,
    ) -> Result<Principal, Box<HostResponse>> {
        if carrel_warehouse::authn::bearer(headers).is_some() {
            return carrel_warehouse::authn::authenticate(
                app,
                headers,
                &[self.role],
                path,
                client.address,
            )
            .map_err(|refusal| {
                if refusal.status() == StatusCode::FORBIDDEN {
                    Box::new(self.forbidden())
                } else {
                    refusal
                }
            });
        }
        let Some(id) = cookie_value(headers, self.cookie) else {
            return Err(Box::new(redirect(&self.login_path(), None)));
        };
        let w = warehouse(app);
        let outcome = match w.sessions.get(id) {
            Ok(session) => self
                .session_principal(app, &session, id)
                .map_err(|reason| (reason, session.token_id.clone())),
            Err(NoSession::Expired) => Err(("expired session", String::new())),
            Err(NoSession::Unknown) => Err(("unknown session", String::new())),
        };
        match outcome {
            Ok(principal) => Ok(principal),
            Err((reason, token_id)) => {
                let actor = w
                    .tokens
                    .get(&token_id)
                    .map(|t| t.principal().actor())
                    .unwrap_or_else(|_| "anonymous".into());
                w.refusals
                    .count(client.address, &actor, reason, path, self.role.as_str());
                Err(Box::new(redirect(
                    &self.login_path(),
                    Some(self.clear_cookie(client)),
                )))
            }
        }
    }

    fn forbidden(&self) -> HostResponse {
        let body = html! {
            p.error { "This page is for " (self.who) "s; your token has another role." }
        };
        html_response(
            StatusCode::FORBIDDEN,
            true,
            page("Forbidden", Nav::Public, None, body),
        )
    }

    fn refuse_cross_site(&self, app: &App, client: Client, path: &str, why: &str) -> HostResponse {
        warehouse(app)
            .refusals
            .count(client.address, "anonymous", why, path, self.role.as_str());
        self.login_form(
            StatusCode::FORBIDDEN,
            Some("This form was sent from another site and is refused. Open the login page of this warehouse and log in there."),
        )
    }

    pub fn login_form(&self, status: StatusCode, message: Option<&str>) -> HostResponse {
        let mut role = self.who.to_owned();
        role[..1].make_ascii_uppercase();
        let body = html! {
            @if let Some(message) = message {
                p.error #login-error { (message) }
            }
            form method="post" action=(self.login_path()) #login {
                p {
                    label {
                        (role) " token" br;
                        input type="password" name="token" #token autocomplete="off" size="60" required;
                    }
                }
                p { button type="submit" #login-submit { "Log in" } }
            }
            p.note {
                "Logging in opens a session for these pages only, which ends when you log out, \
                 after 8 hours, or when the token is revoked. The cookie holds the session, not \
                 the token."
            }
        };
        html_response(
            status,
            true,
            page(&format!("{role} login"), Nav::Public, None, body),
        )
    }

    /// `POST <base>/login`: checks the token of the form and opens a session.
    pub async fn login(
        &self,
        app: &App,
        request: http::Request<Incoming>,
        client: Client,
    ) -> HostResponse {
        let path = self.login_path();
        if let Some(why) = cross_site(request.headers()) {
            return self.refuse_cross_site(app, client, &path, why);
        }
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
        let checked = carrel_warehouse::authn::check_token(
            app,
            Some(token.trim()),
            &[self.role],
            &path,
            client.address,
        );
        match checked {
            Ok(principal) => {
                let w = warehouse(app);
                let (id, session) = w.sessions.create(&principal.token_id, self.role);
                audit(
                    app,
                    AuditEvent::new(
                        principal.actor(),
                        AuditAction::Other("auth.login".into()),
                        format!("route:{path}"),
                    )
                    .with_details(serde_json::json!({
                        "via": "form",
                        "session": session.reference,
                        "lifetime_seconds": w.sessions.lifetime().as_secs(),
                    })),
                );
                let lifetime = Duration::seconds(w.sessions.lifetime().as_secs() as i64);
                redirect(self.base, Some(self.session_cookie(id, lifetime, client)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn form_posts_from_another_site_are_refused_and_others_pass() {
        let host = ("host", "127.0.0.1:3000");
        assert_eq!(cross_site(&headers(&[host])), None, "no browser");
        assert_eq!(
            cross_site(&headers(&[host, ("origin", "http://127.0.0.1:3000")])),
            None
        );
        assert!(cross_site(&headers(&[host, ("origin", "http://evil.example")])).is_some());
        assert!(cross_site(&headers(&[host, ("origin", "null")])).is_some());
        assert!(
            cross_site(&headers(&[
                host,
                ("origin", "http://127.0.0.1:3000"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_some(),
            "a browser's own word wins"
        );
        assert_eq!(
            cross_site(&headers(&[host, ("sec-fetch-site", "same-origin")])),
            None
        );
        assert!(cross_site(&headers(&[host, ("sec-fetch-site", "same-site")])).is_some());
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_scoped_to_its_realm() {
        let client = |secure| Client {
            address: "127.0.0.1".parse().unwrap(),
            secure,
        };
        let cookie = AUDITOR
            .session_cookie("abc".into(), Duration::hours(8), client(true))
            .to_string();
        assert_eq!(
            cookie,
            "carrel_audit=abc; HttpOnly; SameSite=Strict; Secure; Path=/audit; Max-Age=28800"
        );
        let cleared = RESEARCHER.clear_cookie(client(false)).to_string();
        assert_eq!(
            cleared,
            "carrel_results=; HttpOnly; SameSite=Strict; Path=/results; Max-Age=0"
        );
        let mut request = HeaderMap::new();
        request.append(header::COOKIE, "a=1; carrel_audit=s1d".parse().unwrap());
        request.append(header::COOKIE, "carrel_results=".parse().unwrap());
        assert_eq!(cookie_value(&request, "carrel_audit"), Some("s1d"));
        assert_eq!(cookie_value(&request, "carrel_results"), None);
    }

    #[test]
    fn cookies_are_secure_except_over_plain_http_on_loopback() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "192.0.2.1".parse().unwrap();
        let on = |address, host: &str| Client::of(address, &headers(&[("host", host)])).secure;
        assert!(!on(local, "127.0.0.1:3000"));
        assert!(!on(local, "localhost:3000"));
        assert!(!on("::1".parse().unwrap(), "[::1]:3000"));
        assert!(on(local, "warehouse.example.org"), "behind a proxy");
        assert!(on(remote, "127.0.0.1:3000"));
        let proxied = Client::of(
            local,
            &headers(&[("host", "localhost"), ("x-forwarded-proto", "https")]),
        );
        assert!(proxied.secure);
    }
}
