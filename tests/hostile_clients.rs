//! Clients that attack the warehouse rather than use it, against the real `carrel up`: a
//! flood of unauthenticated requests (with and without keep-alive) that must not grow the
//! audit log, guests that must never see a credential whatever the client sends, login
//! sessions that end, forms posted from another site, and a state directory found wider
//! than it should be.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use support::{Carrel, PROBES, TestApp, carrel_ok as carrel};

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "hostile-clients"

[[trigger.http]]
route = "/ingest/..."
component = "guarded"

[[trigger.http]]
route = "/open/..."
component = "open"

[component.guarded]
source = "spin7_probe.wasm"
key_value_stores = ["default"]

[component.guarded.tool.carrel]
auth = "ingest"

[component.open]
source = "spin5_probe.wasm"
"#;

fn new_token(state: &Path, args: &[&str]) -> (String, String) {
    let out = carrel(state, &[&["tokens", "add"], args].concat());
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    (id, out.lines().last().unwrap().trim().to_owned())
}

struct Fixture {
    app: TestApp,
    state: std::path::PathBuf,
    ingest_id: String,
    ingest: String,
    auditor_id: String,
    auditor: String,
}

fn fixture() -> Fixture {
    let app = TestApp::new(MANIFEST, PROBES);
    let state = app.path().join(".spin");
    carrel(&state, &["keys", "init"]);
    let (ingest_id, ingest) =
        new_token(&state, &["--association", "sos-brest", "--role", "ingest"]);
    let (auditor_id, auditor) = new_token(&state, &["--role", "auditor"]);
    Fixture {
        app,
        state,
        ingest_id,
        ingest,
        auditor_id,
        auditor,
    }
}

fn audit_entries(state: &Path) -> Vec<serde_json::Value> {
    carrel(state, &["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Bytes of the catalog and its journal.
fn catalog_bytes(state: &Path) -> u64 {
    ["carrel.db", "carrel.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(state.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn an_unauthenticated_flood_with_and_without_keep_alive_leaves_one_counted_entry_per_source_and_minute()
 {
    let f = fixture();
    let carrel_up = f.app.start(&[]);
    let path = format!("/ingest/{}", "a".repeat(60_000));
    let before = catalog_bytes(&f.state);
    let started = Instant::now();
    let keep_alive = reqwest::blocking::Client::new();
    let one_shot = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for i in 0..2000 {
        let client = if i % 2 == 0 { &keep_alive } else { &one_shot };
        let mut request = client.get(carrel_up.url(&path));
        if i % 3 == 0 {
            request = request.bearer_auth(format!("carrel_{i:08x}_invented"));
        }
        assert_eq!(request.send().unwrap().status().as_u16(), 401);
    }
    let took = started.elapsed();
    let grown = catalog_bytes(&f.state).saturating_sub(before);
    assert!(
        grown < 100_000,
        "the flood grew the catalog by {grown} bytes"
    );
    let (status, _) = carrel_up.terminate();
    assert!(status.success());
    let failures: Vec<serde_json::Value> = audit_entries(&f.state)
        .into_iter()
        .filter(|e| e["action"] == "auth.failed")
        .collect();
    // One entry per minute the flood spanned (it may cross a minute's end).
    assert!(
        (1..=2 + took.as_secs() as usize / 60).contains(&failures.len()),
        "{failures:?}"
    );
    let counted: u64 = failures
        .iter()
        .map(|e| e["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 2000);
    for e in &failures {
        assert_eq!(e["subject"], "source:127.0.0.1");
        assert!(e.to_string().len() < 2000, "{e}");
        let route = e["details"]["routes"][0].as_str().unwrap();
        assert!(
            route.contains("…(sha256:") && route.ends_with("of 60008 bytes)"),
            "{route}"
        );
    }
    assert!(carrel(&f.state, &["audit", "verify"]).starts_with("OK"));
}

#[test]
fn guests_see_no_credential_whatever_the_client_sends() {
    let f = fixture();
    let carrel_up = f.app.start(&[]);
    // A live auditor's session, to try to pass its cookie on.
    let login = support::no_redirects(Duration::from_secs(30))
        .post(carrel_up.url("/audit/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", f.auditor))
        .send()
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let session = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let secrets = [f.ingest.as_str(), f.auditor.as_str(), &session[13..]];
    for route in ["/ingest/x?op=headers", "/open/x?op=headers"] {
        let echoed = carrel_up
            .client
            .get(carrel_up.url(route))
            .bearer_auth(&f.ingest)
            .header("cookie", format!("{session}; carrel_results=x; other=1"))
            .header("proxy-authorization", format!("Basic {}", f.auditor))
            .header("x-forwarded-for", "10.9.8.7")
            .header("forwarded", "for=10.9.8.7")
            .header("x-real-ip", "10.9.8.7")
            .header("spin-client-addr", "10.9.8.7:1")
            .header("carrel-caller-association", "sos-forged")
            .header("carrel-caller-role", "auditor")
            .header("x-carrel-token", f.auditor.as_str())
            .send()
            .unwrap()
            .text()
            .unwrap();
        let echoed: serde_json::Value = serde_json::from_str(&echoed).unwrap();
        let text = echoed.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{route} saw a secret: {text}");
        }
        for header in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-forwarded-for",
            "forwarded",
            "x-real-ip",
            "x-carrel-token",
        ] {
            assert!(echoed.get(header).is_none(), "{route} saw {header}: {text}");
        }
        assert!(
            echoed["spin-client-addr"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{text}"
        );
        if route.starts_with("/ingest") {
            // Who is calling, as the host says it.
            assert_eq!(echoed["carrel-caller-association"], "sos-brest", "{text}");
            assert_eq!(echoed["carrel-caller-role"], "ingest", "{text}");
            assert_eq!(echoed["carrel-caller-token-id"], f.ingest_id.as_str());
        } else {
            assert!(echoed.get("carrel-caller-association").is_none(), "{text}");
            assert!(echoed.get("carrel-caller-role").is_none(), "{text}");
        }
    }
}

/// Logs in at `/audit/login` with `headers`; returns the response.
fn login(carrel_up: &Carrel, token: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut request = support::no_redirects(Duration::from_secs(30))
        .post(carrel_up.url("/audit/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

fn session_cookie(response: &reqwest::blocking::Response) -> String {
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// `GET /audit` with `cookie`: the status and where it redirects.
fn audit_page(carrel_up: &Carrel, cookie: &str) -> (u16, String) {
    let response = support::no_redirects(Duration::from_secs(30))
        .get(carrel_up.url("/audit"))
        .header("cookie", cookie)
        .send()
        .unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), location)
}

#[test]
fn a_session_ends_at_logout_expiry_and_revocation_and_its_cookie_holds_no_token() {
    let f = fixture();
    let carrel_up = f.app.start(&["--session-lifetime", "3"]);
    let accepted = login(&carrel_up, &f.auditor, &[]);
    assert_eq!(accepted.status().as_u16(), 303);
    let set_cookie = accepted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/audit", "Max-Age=3"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP on loopback: {set_cookie}"
    );
    assert!(!set_cookie.contains(&f.auditor), "{set_cookie}");
    let cookie = session_cookie(&accepted);
    assert_eq!(audit_page(&carrel_up, &cookie).0, 200);
    // The session's id is no token: not on a route, not on the pages as a bearer.
    let id = cookie.split_once('=').unwrap().1;
    let as_bearer = carrel_up
        .client
        .get(carrel_up.url("/audit"))
        .bearer_auth(id)
        .send()
        .unwrap();
    assert_eq!(as_bearer.status().as_u16(), 401);

    // Logout ends it on the server: the same cookie no longer opens a page.
    let logout = support::no_redirects(Duration::from_secs(30))
        .post(carrel_up.url("/audit/logout"))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(logout.status().as_u16(), 303);
    assert_eq!(
        audit_page(&carrel_up, &cookie),
        (303, "/audit/login".into())
    );

    // Expiry.
    let expiring = session_cookie(&login(&carrel_up, &f.auditor, &[]));
    assert_eq!(audit_page(&carrel_up, &expiring).0, 200);
    std::thread::sleep(Duration::from_millis(3200));
    assert_eq!(
        audit_page(&carrel_up, &expiring),
        (303, "/audit/login".into())
    );

    // Revoking the token ends its sessions at once.
    let revoked = session_cookie(&login(&carrel_up, &f.auditor, &[]));
    assert_eq!(audit_page(&carrel_up, &revoked).0, 200);
    carrel(&f.state, &["tokens", "revoke", &f.auditor_id]);
    assert_eq!(
        audit_page(&carrel_up, &revoked),
        (303, "/audit/login".into())
    );
    carrel_up.terminate();

    let entries = audit_entries(&f.state);
    let of = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .collect::<Vec<_>>()
    };
    let logins = of("auth.login");
    let logouts = of("auth.logout");
    assert_eq!((logins.len(), logouts.len()), (3, 1), "{entries:?}");
    assert_eq!(
        logins[0]["details"]["session"], logouts[0]["details"]["session"],
        "login and logout name the same session"
    );
    assert_eq!(
        logouts[0]["actor"],
        format!("auditor (token:{})", f.auditor_id)
    );
    let text = serde_json::to_string(&entries).unwrap();
    assert!(
        !text.contains(id) && !text.contains(&f.auditor),
        "no secret in the log"
    );
}

#[test]
fn login_and_logout_forms_posted_from_another_site_are_refused() {
    let f = fixture();
    let carrel_up = f.app.start(&[]);
    let host = carrel_up.base.trim_start_matches("http://").to_owned();
    for headers in [
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        vec![
            ("origin", carrel_up.base.as_str()),
            ("sec-fetch-site", "same-site"),
        ],
    ] {
        let refused = login(&carrel_up, &f.auditor, &headers);
        assert_eq!(refused.status().as_u16(), 403, "{headers:?}");
        assert!(refused.headers().get("set-cookie").is_none(), "{headers:?}");
    }
    // The same form from the warehouse's own page logs in.
    let same_origin = login(
        &carrel_up,
        &f.auditor,
        &[
            ("origin", &carrel_up.base),
            ("sec-fetch-site", "same-origin"),
        ],
    );
    assert_eq!(same_origin.status().as_u16(), 303);
    let cookie = session_cookie(&same_origin);
    // A cross-site logout does not end the session.
    let logout = support::no_redirects(Duration::from_secs(30))
        .post(carrel_up.url("/audit/logout"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .send()
        .unwrap();
    assert_eq!(logout.status().as_u16(), 403);
    assert_eq!(audit_page(&carrel_up, &cookie).0, 200);
    // Behind a proxy (a public host name), the cookie is Secure.
    let proxied = login(&carrel_up, &f.auditor, &[("host", "warehouse.example.org")]);
    let set_cookie = proxied.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set_cookie
            .split("; ")
            .any(|attribute| attribute == "Secure"),
        "{set_cookie}"
    );
    assert!(!host.is_empty());
}

#[test]
fn a_state_directory_found_wider_is_narrowed_with_a_warning() {
    let app = TestApp::new(MANIFEST, PROBES);
    let state = app.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    carrel(&state, &["keys", "init"]);
    new_token(&state, &["--association", "sos-brest", "--role", "ingest"]);
    std::fs::write(state.join("left-by-someone"), b"x").unwrap();
    std::fs::set_permissions(
        state.join("left-by-someone"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let carrel_up =
        Carrel::start_keeping_log(&app.manifest(), &["--state-dir", state.to_str().unwrap()]);
    // The key-value store is created on first use.
    carrel_up.get("/open/x?op=hello");
    let (_, log) = carrel_up.terminate_with_log();
    assert!(log.contains("narrowed the permissions"), "{log}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&state).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(files >= 3, "carrel.db, master.key, …");
    assert!(state.join("carrel.db").is_file());
    assert!(state.join("sqlite_key_value.db").is_file());
}
