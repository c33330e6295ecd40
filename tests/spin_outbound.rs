//! `allowed_outbound_hosts` as Spin reads it, end to end through the real `carrel up`:
//! TCP through `wasi:sockets` to what a `*://` entry allows (a CIDR range, a port range,
//! a `{{ variable }}` template), and nothing else.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use support::TestApp;

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "outbound"

[variables]
tcp_ports = { default = "1" }

[[trigger.http]]
route = "/p5/..."
component = "p5"

[component.p5]
source = "spin5_probe.wasm"
allowed_outbound_hosts = ["*://127.0.0.0/24:{{ tcp_ports }}"]
"#;

/// A listener on loopback that answers `pong` to each connection, in a thread.
fn pong_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let _ = stream.read_to_end(&mut request);
            let _ = stream.write_all(if request == b"ping" {
                b"pong"
            } else {
                b"what?"
            });
        }
    });
    port
}

#[test]
fn tcp_reaches_what_a_templated_cidr_entry_allows_and_nothing_else() {
    let (granted, other) = (pong_server(), pong_server());
    let app = TestApp::new(MANIFEST, support::PROBES);
    let ports = format!("{granted}-{granted}");
    let carrel =
        support::Carrel::start(&app.manifest(), &[], &[("SPIN_VARIABLE_TCP_PORTS", &ports)]);
    assert_eq!(
        carrel.get(&format!("/p5/x?op=tcp&addr=127.0.0.1:{granted}")),
        (200, "pong".into())
    );
    for denied in [
        format!("127.0.0.1:{other}"),
        // Loopback, but outside the /24.
        format!("127.0.1.1:{granted}"),
    ] {
        let (status, body) = carrel.get(&format!("/p5/x?op=tcp&addr={denied}"));
        assert_eq!(status, 502, "{denied}: {body}");
        assert!(body.starts_with("PermissionDenied"), "{denied}: {body}");
    }
}

#[test]
fn an_entry_naming_a_variable_nobody_declared_stops_the_app() {
    let app = TestApp::new(
        &MANIFEST.replace("{{ tcp_ports }}", "{{ tcp_port }}"),
        support::PROBES,
    );
    let stderr = app.start_fails();
    assert!(stderr.contains("tcp_port"), "{stderr}");
    assert!(stderr.contains("allowed_outbound_hosts"), "{stderr}");
}
