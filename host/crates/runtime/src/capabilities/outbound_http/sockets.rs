//! TCP through `wasi:sockets`, gated by the same `allowed_outbound_hosts` as HTTP. As in
//! Spin, a socket is not a scheme: only entries whose scheme is `*` grant it, and they are
//! matched by address (an IP, a CIDR range or `*`) and port. Everything else a socket can
//! do (listen, accept, UDP, name lookup) stays denied, and a refusal is WASI's own
//! `access-denied`.

use super::{HostPattern, OutboundGrants};
use std::net::SocketAddr;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

impl OutboundGrants {
    /// Whether any entry could grant a TCP connection.
    fn grants_tcp(&self) -> bool {
        self.network
            .iter()
            .any(|a| a.scheme.is_none() && matches!(a.host, HostPattern::Any | HostPattern::Ip(_)))
    }

    /// Whether a guest may connect a TCP socket to `addr`.
    pub fn allows_tcp(&self, addr: SocketAddr) -> bool {
        self.network
            .iter()
            .any(|a| a.allows_address(addr.ip(), addr.port()))
    }
}

/// Lets the instance's WASI context open the TCP connections `grants` allow, and no other.
pub fn configure(wasi: &mut WasiCtxBuilder, grants: &OutboundGrants) {
    if !grants.grants_tcp() {
        return;
    }
    let grants = grants.clone();
    wasi.allow_tcp(true)
        .socket_addr_check(move |addr, used_for| {
            let allowed = match used_for {
                SocketAddrUse::TcpConnect => grants.allows_tcp(addr),
                // The bind a connect makes implicitly: any local address, a port the
                // system picks.
                SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
                _ => false,
            };
            Box::pin(async move { allowed })
        });
}

#[cfg(test)]
mod tests {
    use super::super::SelfRequests;
    use super::*;

    fn grants(entries: &[&str]) -> OutboundGrants {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        OutboundGrants::new(&entries, SelfRequests::default()).unwrap()
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn tcp_needs_an_entry_of_any_scheme_matching_address_and_port() {
        let g = grants(&["*://127.0.0.0/24:7000-7010", "*://[::1]:5432"]);
        assert!(g.grants_tcp());
        assert!(g.allows_tcp(addr("127.0.0.9:7005")));
        assert!(!g.allows_tcp(addr("127.0.0.9:7011")));
        assert!(!g.allows_tcp(addr("127.0.1.9:7005")));
        assert!(g.allows_tcp(addr("[::1]:5432")));
        assert!(!g.allows_tcp(addr("[::2]:5432")));
    }

    #[test]
    fn http_entries_and_names_grant_no_socket() {
        let g = grants(&["http://127.0.0.1:8080", "*://db.example.org:5432"]);
        assert!(!g.grants_tcp());
        assert!(!g.allows_tcp(addr("127.0.0.1:8080")));
    }
}
