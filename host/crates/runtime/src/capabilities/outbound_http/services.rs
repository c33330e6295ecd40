//! The check Spin's service interfaces (Redis, MQTT, PostgreSQL) make before they
//! connect: the destination's scheme, host and port, matched against
//! `allowed_outbound_hosts` like an HTTP request's, with the scheme's default port when the
//! address has none.

use super::{OutboundGrants, default_port};

impl OutboundGrants {
    /// Whether a connection to the service at `url` may be opened.
    pub fn allows_url(&self, url: &url::Url) -> bool {
        url.host_str()
            .is_some_and(|host| self.allows_service(url.scheme(), host, url.port()))
    }

    /// Whether a connection to `host` (a name, or an IP address, bracketed or not) on
    /// `port` may be opened for `scheme`.
    pub fn allows_service(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let Some(port) = port.or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.network.iter().any(|a| a.allows(&scheme, &host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::super::SelfRequests;
    use super::*;

    fn grants(entries: &[&str]) -> OutboundGrants {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        OutboundGrants::new(&entries, SelfRequests::default()).unwrap()
    }

    fn allows(grants: &OutboundGrants, url: &str) -> bool {
        grants.allows_url(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn redis_entry_without_port_means_the_default_redis_port() {
        let g = grants(&["redis://127.0.0.1"]);
        assert!(allows(&g, "redis://127.0.0.1:6379"));
        assert!(allows(&g, "redis://127.0.0.1"));
        assert!(!allows(&g, "redis://127.0.0.1:6380"));
    }

    #[test]
    fn service_url_must_match_the_entry_scheme() {
        let g = grants(&["redis://127.0.0.1:6379"]);
        assert!(!allows(&g, "mqtt://127.0.0.1:6379"));
        let any = grants(&["*://127.0.0.1:1883"]);
        assert!(allows(&any, "mqtt://127.0.0.1:1883?client_id=x"));
    }

    #[test]
    fn service_url_with_credentials_is_matched_by_host_and_port() {
        let g = grants(&["redis://cache.example:6379"]);
        assert!(allows(&g, "redis://user:secret@cache.example:6379/0"));
        assert!(!allows(&g, "redis://user:secret@other.example:6379/0"));
    }

    #[test]
    fn a_service_host_is_matched_by_name_or_by_address_bracketed_or_not() {
        let g = grants(&["postgres://DB.example", "*://[::1]:5432"]);
        assert!(g.allows_service("postgres", "db.EXAMPLE", None));
        assert!(!g.allows_service("postgres", "db.example", Some(5433)));
        assert!(g.allows_service("postgres", "::1", Some(5432)));
        assert!(g.allows_service("postgres", "[::1]", Some(5432)));
        assert!(!g.allows_service("postgres", "::2", Some(5432)));
    }

    #[test]
    fn service_url_in_a_cidr_range_is_allowed() {
        let g = grants(&["mqtt://10.0.0.0/8:1883"]);
        assert!(allows(&g, "mqtt://10.1.2.3:1883"));
        assert!(!allows(&g, "mqtt://11.1.2.3:1883"));
    }
}
