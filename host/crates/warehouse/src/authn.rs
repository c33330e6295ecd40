//! Bearer-token authentication of requests to protected routes, and the audit of refusals
//! (with no token or personal data in them).
//!
//! A client that does not authenticate (no token, an unknown one, a revoked one) is
//! counted per source and minute by [`crate::refusals`], so that no flood of such requests
//! grows the log; a revoked token is counted under its holder and id, never the token. A
//! token of the wrong role authenticates its holder: that refusal is written at once,
//! naming them. Routes in entries are clipped ([`carrel_vault::audit::clip`]).

use crate::app::App;
use crate::tokens::{Principal, Refusal, Role};
use carrel_runtime::responses::{HostResponse, plain};
use carrel_runtime::server::ClientAddr;
use carrel_vault::audit::clip;
use carrel_vault::{AuditAction, AuditEvent};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use std::net::{IpAddr, Ipv4Addr};

/// Characters of a route kept in an audit entry.
pub const ROUTE_CHARS: usize = 200;

/// The address of the client that sent a request with these extensions.
pub fn client_ip(extensions: &http::Extensions) -> IpAddr {
    extensions
        .get::<ClientAddr>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// `route:PATH`, the path clipped.
pub fn route_subject(path: &str) -> String {
    format!("route:{}", clip(path, ROUTE_CHARS))
}

/// The bearer token of `headers`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The principal of a request whose bearer token has one of `roles`, or the refusal to
/// send back (401 without a valid token, 403 with a token of another role).
pub fn authenticate(
    app: &App,
    headers: &HeaderMap,
    roles: &[Role],
    path: &str,
    source: IpAddr,
) -> Result<Principal, Box<HostResponse>> {
    check_token(app, bearer(headers), roles, path, source)
}

/// Like [`authenticate`], for a token that came some other way (a login form).
pub fn check_token(
    app: &App,
    token: Option<&str>,
    roles: &[Role],
    path: &str,
    source: IpAddr,
) -> Result<Principal, Box<HostResponse>> {
    let required = roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(" or ");
    let Some(warehouse) = &app.warehouse else {
        return Err(Box::new(plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "authentication is not configured",
        )));
    };
    let unauthenticated = |actor: &str, reason: &str, message: String| {
        warehouse
            .refusals
            .count(source, actor, reason, path, &required);
        let mut response = plain(StatusCode::UNAUTHORIZED, message);
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"carrel\""),
        );
        Box::new(response)
    };
    let Some(token) = token else {
        return Err(unauthenticated(
            "anonymous",
            "a bearer token is required",
            "a bearer token is required".into(),
        ));
    };
    match warehouse.tokens.authenticate(token) {
        Err(e) => {
            tracing::error!(error = %e, "token store failed");
            Err(Box::new(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot check the token",
            )))
        }
        Ok(Err(Refusal::Unknown)) => Err(unauthenticated(
            "anonymous",
            "unknown token",
            "unknown token".into(),
        )),
        Ok(Err(Refusal::Revoked(who))) => Err(unauthenticated(
            &who.actor(),
            "revoked token",
            format!("token {} is revoked", who.token_id),
        )),
        Ok(Ok(principal)) if !roles.contains(&principal.role) => {
            let reason = format!(
                "a {} token may not use this route (it needs the {required} role)",
                principal.role.as_str(),
            );
            let event = AuditEvent::new(
                principal.actor(),
                AuditAction::AuthFailed,
                route_subject(path),
            )
            .with_details(serde_json::json!({
                "reason": reason,
                "required_role": required,
                "token_id": principal.token_id,
            }));
            if let Err(e) = warehouse.audit.append(&event) {
                tracing::error!(error = %e, "cannot audit a failed authentication");
            }
            Err(Box::new(plain(
                StatusCode::FORBIDDEN,
                format!("token {}: {reason}", principal.token_id),
            )))
        }
        Ok(Ok(principal)) => Ok(principal),
    }
}
