//! Outbound HTTP, denied unless `allowed_outbound_hosts` allows the destination.
//!
//! The check lives in the host's send hook, the one place every outgoing request of both
//! WASI HTTP generations passes through, so no guest API can go around it. Entries follow
//! Spin: `scheme://host[:port]`, where scheme, host and port may be `*`, a host may be
//! `*.suffix`, and a missing port means the scheme's default.

use bytes::Bytes;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("allowed_outbound_hosts entry `{entry}`: {why}")]
pub struct OutboundHostError {
    entry: String,
    why: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

impl AllowedHost {
    fn parse(entry: &str) -> Result<Self, OutboundHostError> {
        let err = |why| OutboundHostError {
            entry: entry.to_owned(),
            why,
        };
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| err("missing `scheme://`"))?;
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(err("paths are not allowed, only scheme, host and port"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        if host.is_empty() {
            return Err(err("missing host"));
        }
        let host = match host {
            "*" => HostPattern::Any,
            h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_ascii_lowercase()),
            h if h.contains('*') => {
                return Err(err(
                    "`*` may only stand for a whole host or a leading label",
                ));
            }
            h => HostPattern::Exact(h.to_ascii_lowercase()),
        };
        let scheme = match scheme {
            "*" => None,
            s if s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
                && !s.is_empty() =>
            {
                Some(s.to_ascii_lowercase())
            }
            _ => return Err(err("invalid scheme")),
        };
        let port = match port {
            Some("*") => None,
            Some(p) => Some(p.parse().map_err(|_| err("invalid port"))?),
            None => match &scheme {
                Some(s) => {
                    Some(default_port(s).ok_or_else(|| err("a port is required for this scheme"))?)
                }
                None => return Err(err("a port is required when the scheme is `*`")),
            },
        };
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.port.is_none_or(|p| p == port)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => h == host,
                HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            }
    }
}

/// The outbound destinations one component may reach, parsed once per app.
#[derive(Debug, Clone, Default)]
pub struct OutboundGrants {
    allowed: Arc<Vec<AllowedHost>>,
}

impl OutboundGrants {
    pub fn new(entries: &[String]) -> Result<Self, OutboundHostError> {
        Ok(Self {
            allowed: Arc::new(
                entries
                    .iter()
                    .map(|e| AllowedHost::parse(e))
                    .collect::<Result<_, _>>()?,
            ),
        })
    }

    /// Whether a request to this URI may leave the sandbox.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        let Some(scheme) = uri.scheme_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return false;
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.allowed.iter().any(|a| a.allows(&scheme, &host, port))
    }
}

/// The send hook: check the grant, then hand the request to wasmtime's own client.
pub struct OutboundHooks {
    pub grants: OutboundGrants,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        if !self.grants.allows(request.uri()) {
            tracing::warn!(
                host = request.uri().host().unwrap_or(""),
                "outbound request denied: destination not in allowed_outbound_hosts"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let response =
                response.map(|b| BodyExt::boxed_unsync(b.map_frame(|f| f.map_data(Bytes::from))));
            Ok((
                response,
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(entries: &[&str]) -> OutboundGrants {
        OutboundGrants::new(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn allows(g: &OutboundGrants, uri: &str) -> bool {
        g.allows(&uri.parse().unwrap())
    }

    #[test]
    fn nothing_is_allowed_without_a_grant() {
        assert!(!allows(&grants(&[]), "https://example.com/"));
    }

    #[test]
    fn exact_host_uses_the_default_port_of_its_scheme() {
        let g = grants(&["https://api.example.com"]);
        assert!(allows(&g, "https://api.example.com/v1"));
        assert!(allows(&g, "https://API.example.com:443/v1"));
        assert!(!allows(&g, "https://api.example.com:8443/"));
        assert!(!allows(&g, "http://api.example.com/"));
        assert!(!allows(&g, "https://evil.com/"));
    }

    #[test]
    fn wildcards_cover_scheme_host_port_and_subdomains() {
        let g = grants(&["*://localhost:*", "https://*.example.org", "http://*:8080"]);
        assert!(allows(&g, "http://localhost:3000/"));
        assert!(allows(&g, "https://db.example.org/"));
        assert!(!allows(&g, "https://example.org/"));
        assert!(allows(&g, "http://anything:8080/"));
        assert!(!allows(&g, "http://anything:8081/"));
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "example.com",
            "https://",
            "https://a.com/path",
            "*://a.com",
            "https://a*b.com",
            "https://a.com:x",
        ] {
            assert!(OutboundGrants::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
