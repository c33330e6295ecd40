//! Outbound HTTP and TCP, denied unless `allowed_outbound_hosts` allows the destination.
//!
//! The HTTP check lives in the host's send hook, the one place every outgoing request of
//! both WASI HTTP generations passes through, so no guest API can go around it; the TCP
//! check is WASI's socket address check, asked before every connect ([`sockets`]); Redis
//! and MQTT ask [`OutboundGrants::allows_url`] before they open a connection.
//! Entries follow Spin: `scheme://host[:port]`, where scheme, host and port may be `*`, a
//! host may be `*.suffix`, an IP address (`[::1]` for IPv6) or a CIDR range
//! (`10.0.0.0/8`), a port may be a range (`8000-8010`), a missing port means the
//! scheme's default, and `{{ variable }}` templates are expanded when the app starts.
//!
//! Two kinds of destination never leave the process ([`self_requests`]): the app itself
//! (a relative URL, `http://self`, `http://self.alt`), granted by an entry whose host is
//! `self`; and one component of the app (`http://<id>.spin.internal`, Spin's service
//! chaining), granted by naming it or `*.spin.internal`. A wildcard host (`*`) grants
//! neither: only an entry that says so does.

mod relative;
pub mod self_requests;
mod services;
pub mod sockets;

pub use relative::add_to_linker;
pub use self_requests::{SelfRequestHandler, SelfRequests, SelfResponse, SelfTarget};

use bytes::Bytes;
use http_body_util::BodyExt;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// Hosts that name the app itself.
const SELF_HOSTS: [&str; 2] = ["self", "self.alt"];
/// The domain of Spin's service chaining: `<component>.spin.internal`.
const CHAINING_SUFFIX: &str = ".spin.internal";

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
    /// An IP address (a network of one) or a CIDR range: matched by IP, not by name.
    Ip(IpNet),
}

/// Ports an entry allows, both ends included (`None`: any).
type PortRange = Option<(u16, u16)>;

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortRange,
}

/// The port an entry or address without one means, as in Spin.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        _ => None,
    }
}

/// What one `allowed_outbound_hosts` entry grants.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Grant {
    Network(AllowedHost),
    SelfApp,
    Component(String),
    AnyComponent,
}

fn parse_entry(entry: &str) -> Result<Grant, OutboundHostError> {
    let err = |why| OutboundHostError {
        entry: entry.to_owned(),
        why,
    };
    if entry.contains("{{") {
        return Err(err("a `{{ variable }}` template was not expanded"));
    }
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| err("missing `scheme://`"))?;
    let (host, port) = split_host_port(rest.trim_end_matches('/')).map_err(err)?;
    if host.is_empty() {
        return Err(err("missing host"));
    }
    let host = host.to_ascii_lowercase();
    if SELF_HOSTS.contains(&host.as_str()) {
        return Ok(Grant::SelfApp);
    }
    if let Some(component) = host.strip_suffix(CHAINING_SUFFIX) {
        return match component {
            "*" => Ok(Grant::AnyComponent),
            c if c.is_empty() || c.contains('*') || c.contains('.') => Err(err(
                "service chaining names one component (`<id>.spin.internal`) or all (`*.spin.internal`)",
            )),
            c => Ok(Grant::Component(c.to_owned())),
        };
    }
    let host = match host.as_str() {
        "*" => HostPattern::Any,
        h if h.starts_with("*.") => HostPattern::Suffix(h[1..].to_owned()),
        h if h.contains('*') => {
            return Err(err(
                "`*` may only stand for a whole host or a leading label",
            ));
        }
        h if h.contains('/') => HostPattern::Ip(
            h.parse()
                .map_err(|_| err("paths are not allowed, only scheme, host and port"))?,
        ),
        h => match h.parse::<IpAddr>() {
            Ok(ip) => HostPattern::Ip(IpNet::from(ip)),
            Err(_) => HostPattern::Exact(h.to_owned()),
        },
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
        Some(p) => Some(parse_ports(p).ok_or_else(|| err("invalid port or port range"))?),
        None => match &scheme {
            Some(s) => {
                let port =
                    default_port(s).ok_or_else(|| err("a port is required for this scheme"))?;
                Some((port, port))
            }
            None => return Err(err("a port is required when the scheme is `*`")),
        },
    };
    Ok(Grant::Network(AllowedHost { scheme, host, port }))
}

/// Splits `host[:port]`, where an IPv6 host is bracketed (`[::1]:80`, `[fd00::/8]:*`).
fn split_host_port(rest: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("an IPv6 host needs its closing `]`")?;
        return match after {
            "" => Ok((host, None)),
            a => match a.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err("only `:port` may follow a bracketed IPv6 host"),
            },
        };
    }
    Ok(match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    })
}

/// `8080` or `8000-8010`.
fn parse_ports(text: &str) -> Option<(u16, u16)> {
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    let (low, high): (u16, u16) = (low.parse().ok()?, high.parse().ok()?);
    (low <= high).then_some((low, high))
}

impl AllowedHost {
    fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.allows_port(port)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Exact(h) => h == host,
                HostPattern::Suffix(s) => host.ends_with(s.as_str()),
                HostPattern::Ip(net) => host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| net.contains(&ip)),
            }
    }

    /// Whether this entry grants a socket to `ip` and `port`: only an entry of scheme `*`
    /// does, by address (an IP, a CIDR range or `*`), never by name.
    fn allows_address(&self, ip: IpAddr, port: u16) -> bool {
        self.scheme.is_none()
            && self.allows_port(port)
            && match &self.host {
                HostPattern::Any => true,
                HostPattern::Ip(net) => net.contains(&ip),
                HostPattern::Exact(_) | HostPattern::Suffix(_) => false,
            }
    }

    fn allows_port(&self, port: u16) -> bool {
        self.port
            .is_none_or(|(low, high)| (low..=high).contains(&port))
    }
}

/// Where an outgoing request goes, read from its URI alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// The app itself, routed by path.
    SelfApp,
    /// One component of the app, whatever its routes.
    Component(String),
    /// Anywhere else, over the network.
    Network,
}

impl Destination {
    pub fn of(uri: &http::Uri) -> Self {
        let host = uri.host().map(str::to_ascii_lowercase).unwrap_or_default();
        if SELF_HOSTS.contains(&host.as_str()) {
            Destination::SelfApp
        } else if let Some(component) = host.strip_suffix(CHAINING_SUFFIX) {
            Destination::Component(component.to_owned())
        } else {
            Destination::Network
        }
    }
}

/// The outbound destinations one component may reach, parsed once per app.
#[derive(Clone, Default)]
pub struct OutboundGrants {
    network: Arc<Vec<AllowedHost>>,
    self_app: bool,
    any_component: bool,
    components: Arc<BTreeSet<String>>,
    /// How in-process requests reach the app.
    self_requests: SelfRequests,
}

impl OutboundGrants {
    pub fn new(entries: &[String], self_requests: SelfRequests) -> Result<Self, OutboundHostError> {
        let mut grants = Self {
            self_requests,
            ..Self::default()
        };
        let mut network = Vec::new();
        let mut components = BTreeSet::new();
        for entry in entries {
            match parse_entry(entry)? {
                Grant::Network(host) => network.push(host),
                Grant::SelfApp => grants.self_app = true,
                Grant::AnyComponent => grants.any_component = true,
                Grant::Component(c) => {
                    components.insert(c);
                }
            }
        }
        grants.network = Arc::new(network);
        grants.components = Arc::new(components);
        Ok(grants)
    }

    /// The components named by `<id>.spin.internal` entries, for checking at start.
    pub fn chained_components(&self) -> impl Iterator<Item = &str> {
        self.components.iter().map(String::as_str)
    }

    /// Whether a request to this URI may be sent.
    pub fn allows(&self, uri: &http::Uri) -> bool {
        match Destination::of(uri) {
            Destination::SelfApp => self.self_app,
            Destination::Component(c) => self.any_component || self.components.contains(&c),
            Destination::Network => self.allows_network(uri),
        }
    }

    fn allows_network(&self, uri: &http::Uri) -> bool {
        let Some(scheme) = uri.scheme_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            return false;
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.network.iter().any(|a| a.allows(&scheme, &host, port))
    }
}

/// The send hook: check the grant, then serve the request in process or hand it to
/// wasmtime's own client.
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

fn done() -> Box<dyn Future<Output = Result<(), HttpError>> + Send> {
    Box::new(async { Ok(()) })
}

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        if !self.grants.allows(request.uri()) {
            // The guest chose the host: clipped to a DNS name's length, so that the log
            // carries no more than a name could.
            tracing::warn!(
                host = %request.uri().host().unwrap_or("").chars().take(253).collect::<String>(),
                "outbound request denied: destination not in allowed_outbound_hosts"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let target = match Destination::of(request.uri()) {
            Destination::SelfApp => Some(SelfTarget::Route),
            Destination::Component(c) => Some(SelfTarget::Component(c)),
            Destination::Network => None,
        };
        if let Some(target) = target {
            let self_requests = self.grants.self_requests.clone();
            return Box::new(async move {
                let response = self_requests.send(target, request).await?;
                Ok((response, done()))
            });
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
        OutboundGrants::new(
            &entries.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            SelfRequests::default(),
        )
        .unwrap()
    }

    fn allows(g: &OutboundGrants, uri: &str) -> bool {
        g.allows(&uri.parse().unwrap())
    }

    #[test]
    fn nothing_is_allowed_without_a_grant() {
        let g = grants(&[]);
        for uri in [
            "https://example.com/",
            "http://self/x",
            "http://api.spin.internal/x",
        ] {
            assert!(!allows(&g, uri), "{uri}");
        }
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
    fn ports_may_be_ranges_and_hosts_ip_networks() {
        let g = grants(&[
            "http://localhost:8000-8010",
            "*://127.0.0.0/24:7777",
            "https://[::1]",
            "http://[fd00::/8]:*",
            "http://10.1.2.3:80",
        ]);
        assert!(allows(&g, "http://localhost:8000/"));
        assert!(allows(&g, "http://localhost:8010/"));
        assert!(!allows(&g, "http://localhost:8011/"));
        assert!(allows(&g, "http://127.0.0.42:7777/"));
        assert!(!allows(&g, "http://127.0.1.1:7777/"));
        assert!(!allows(&g, "http://127.0.0.42:7778/"));
        assert!(allows(&g, "https://[::1]/"));
        assert!(!allows(&g, "http://[::1]/"));
        assert!(allows(&g, "http://[fd00::5]:9000/"));
        assert!(allows(&g, "http://10.1.2.3/"));
        // An IP grant is matched by address: a name that may resolve there is not it.
        assert!(!allows(&g, "http://localhost:7777/"));
    }

    #[test]
    fn a_wildcard_host_grants_neither_the_app_nor_its_components() {
        let g = grants(&["*://*:*"]);
        assert!(allows(&g, "https://example.com/"));
        assert!(!allows(&g, "http://self/x"));
        assert!(!allows(&g, "http://self.alt/x"));
        assert!(!allows(&g, "http://api.spin.internal/x"));
    }

    #[test]
    fn self_and_service_chaining_need_entries_of_their_own() {
        let g = grants(&["http://self", "http://api.spin.internal"]);
        assert!(allows(&g, "http://self/x"));
        assert!(allows(&g, "https://self.alt/x"));
        assert!(allows(&g, "http://api.spin.internal/x"));
        assert!(!allows(&g, "http://admin.spin.internal/x"));
        assert_eq!(g.chained_components().collect::<Vec<_>>(), ["api"]);
        let any = grants(&["http://*.spin.internal"]);
        assert!(allows(&any, "http://admin.spin.internal/x"));
        assert!(!allows(&any, "http://self/x"));
        assert_eq!(
            Destination::of(&"http://API.spin.internal/".parse().unwrap()),
            Destination::Component("api".into())
        );
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
            "http://a.b.spin.internal",
            "http://x*.spin.internal",
            "https://{{ host }}",
            "http://a.com/24:7777",
            "http://127.0.0.0/33:7777",
            "http://localhost:8010-8000",
            "http://localhost:80-",
            "http://[::1",
            "http://[::1]80",
        ] {
            assert!(
                OutboundGrants::new(&[bad.to_owned()], SelfRequests::default()).is_err(),
                "{bad}"
            );
        }
    }
}
