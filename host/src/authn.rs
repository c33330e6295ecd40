//! Bearer-token authentication of requests to protected routes. Every refusal is audited
//! as `auth.failed`, with no token or personal data in it.

use crate::app::App;
use crate::responses::{HostResponse, plain};
use crate::tokens::{Principal, Refusal, Role};
use carrel_vault::{AuditAction, AuditEvent};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// The principal of a request whose bearer token has one of `roles`, or the refusal to
/// send back (401 without a valid token, 403 with a token of another role).
pub fn authenticate(
    app: &App,
    headers: &HeaderMap,
    roles: &[Role],
    path: &str,
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
    let refuse = |status: StatusCode, actor: String, reason: &str| {
        let event = AuditEvent::new(actor, AuditAction::AuthFailed, format!("route:{path}"))
            .with_details(serde_json::json!({"reason": reason, "required_role": required}));
        if let Err(e) = warehouse.audit.append(&event) {
            tracing::error!(error = %e, "cannot audit a failed authentication");
        }
        let mut response = plain(status, reason);
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"carrel\""),
            );
        }
        Box::new(response)
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "anonymous".into(),
            "a bearer token is required",
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
        Ok(Err(Refusal::Unknown)) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "anonymous".into(),
            "unknown token",
        )),
        Ok(Err(Refusal::Revoked)) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "anonymous".into(),
            "revoked token",
        )),
        Ok(Ok(principal)) if !roles.contains(&principal.role) => Err(refuse(
            StatusCode::FORBIDDEN,
            principal.actor(),
            &format!(
                "a {} token may not use this route (it needs the {} role)",
                principal.role.as_str(),
                required
            ),
        )),
        Ok(Ok(principal)) => Ok(principal),
    }
}
