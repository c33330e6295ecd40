//! Bounds, end to end: traps, deadlines, memory caps, body limits, overload and shutdown
//! never take the host down.

mod support;

use std::time::{Duration, Instant};
use support::{TestApp, guests};

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "limits"

[[trigger.http]]
route = "/p7/..."
component = "p7"

[[trigger.http]]
route = "/p5/..."
component = "p5"

[component.p7]
source = "spin7_probe.wasm"

[component.p5]
source = "spin5_probe.wasm"
"#;

fn app() -> TestApp {
    TestApp::new(
        MANIFEST,
        &[
            ("spin7_probe.wasm", guests::SPIN7_PROBE),
            ("spin5_probe.wasm", guests::SPIN5_PROBE),
        ],
    )
}

#[test]
fn guest_trap_gives_500_and_the_next_request_succeeds() {
    let app = app();
    let carrel = app.start(&[]);
    for prefix in ["/p7", "/p5"] {
        let (status, body) = carrel.get(&format!("{prefix}/x?op=trap"));
        assert_eq!(status, 500);
        assert!(body.contains("trapped"), "{body}");
        assert_eq!(carrel.get(&format!("{prefix}/x?op=hello")).0, 200);
    }
}

#[test]
fn deadline_exceeded_gives_500_within_the_deadline_plus_two_seconds() {
    let app = app();
    let carrel = app.start(&["--request-timeout", "1"]);
    for path in [
        "/p7/x?op=loop",
        "/p5/x?op=loop",
        "/p7/x?op=sleep&ms=10000",
        "/p5/x?op=sleep&ms=10000",
    ] {
        let start = Instant::now();
        let (status, body) = carrel.get(path);
        let took = start.elapsed();
        assert_eq!(status, 500, "{path}: {body}");
        assert!(body.contains("deadline"), "{path}: {body}");
        // Two seconds of slack: a loaded two-core machine delays the epoch tick and the
        // answer, not the deadline.
        assert!(took < Duration::from_secs(3), "{path} took {took:?}");
    }
    assert_eq!(carrel.get("/p7/x?op=hello").0, 200);
    assert_eq!(carrel.get("/p5/x?op=hello").0, 200);
}

#[test]
fn memory_cap_stops_a_guest_that_grows_past_it() {
    let app = app();
    let carrel = app.start(&["--max-memory-mib", "64"]);
    assert_eq!(
        carrel.get("/p5/x?op=memory&mb=16"),
        (200, "allocated 16 MiB".into())
    );
    for prefix in ["/p7", "/p5"] {
        let (status, body) = carrel.get(&format!("{prefix}/x?op=memory&mb=100"));
        assert_eq!(status, 500, "{body}");
        assert_eq!(carrel.get(&format!("{prefix}/x?op=hello")).0, 200);
    }
}

/// Sends a request by hand and returns the status line. The body is written until the
/// server stops reading it (it may answer 413 before the body is complete).
fn raw_request(base: &str, head: &str, body: &[u8]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(64 << 10) {
        if stream.write_all(chunk).is_err() {
            break;
        }
    }
    let mut status = String::new();
    BufReader::new(stream).read_line(&mut status).unwrap();
    status.trim_end().to_owned()
}

#[test]
fn body_over_the_limit_gives_413() {
    let app = app();
    let carrel = app.start(&["--max-body-mib", "1"]);
    let small = vec![b'x'; 1000];
    let (status, body) = carrel.post("/p7/x?op=echo", small.clone());
    assert_eq!((status, body.len()), (200, 1000));
    // Declared too large: refused before the body is read.
    let head = format!(
        "POST /p7/x?op=echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        2 << 20
    );
    assert_eq!(
        raw_request(&carrel.base, &head, &[]),
        "HTTP/1.1 413 Payload Too Large"
    );
    // Chunked, with no length declared: refused once the limit is crossed.
    let mut chunked = Vec::new();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 << 10).as_bytes());
        chunked.extend(std::iter::repeat_n(b'y', 64 << 10));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /p5/x?op=echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        raw_request(&carrel.base, head, &chunked),
        "HTTP/1.1 413 Payload Too Large"
    );
    assert_eq!(carrel.post("/p5/x?op=echo", small).0, 200);
}

#[test]
fn overload_gets_503_with_retry_after_and_never_a_crash() {
    let app = app();
    let carrel = app.start(&[
        "--max-concurrent-requests",
        "1",
        "--max-queued-requests",
        "1",
    ]);
    let url = carrel.url("/p5/x?op=sleep&ms=1500");
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let r = reqwest::blocking::get(url).unwrap();
                let retry = r
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned());
                (r.status().as_u16(), retry)
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    assert!(ok >= 1, "{results:?}");
    assert!(!busy.is_empty(), "{results:?}");
    assert!(
        busy.iter().all(|(_, retry)| retry.as_deref() == Some("1")),
        "{results:?}"
    );
    assert_eq!(ok + busy.len(), 6, "{results:?}");
    assert_eq!(carrel.get("/p7/x?op=hello").0, 200);
}

#[test]
fn idle_instances_dropped_at_shutdown_are_not_logged_as_failures() {
    let app = app();
    let carrel = support::Carrel::start_keeping_log(&app.manifest(), &[]);
    // The WASIp3 instance stays idle for a second after this, so SIGTERM finds it alive.
    assert_eq!(carrel.get("/p7/x?op=hello").0, 200);
    let (status, log) = carrel.terminate_with_log();
    assert!(status.success(), "{status}");
    assert!(log.contains("shutting down"), "{log}");
    assert!(!log.contains("instance ended with an error"), "{log}");
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits() {
    let app = app();
    let carrel = app.start(&[]);
    let url = carrel.url("/p5/x?op=sleep&ms=1000");
    let in_flight = std::thread::spawn(move || {
        let r = reqwest::blocking::get(url).unwrap();
        (r.status().as_u16(), r.text().unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    let (status, took) = carrel.terminate();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(in_flight.join().unwrap(), (200, "slept".into()));
}
