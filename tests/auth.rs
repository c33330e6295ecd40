//! Bearer-token authentication of routes, end to end: `carrel keys init`, `carrel tokens
//! add|revoke`, then the real `carrel up`.

mod support;

use support::{PROBES, TestApp, carrel_ok as carrel};

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "auth"

[[trigger.http]]
route = "/ingest/..."
component = "guarded"

[[trigger.http]]
route = "/open/..."
component = "open"

[component.guarded]
source = "spin7_probe.wasm"

[component.guarded.tool.carrel]
auth = "ingest"

[component.open]
source = "spin5_probe.wasm"
"#;

fn new_token(state: &std::path::Path, args: &[&str]) -> (String, String) {
    let out = carrel(state, &[&["tokens", "add"], args].concat());
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("carrel_"), "{out}");
    (id, token)
}

#[test]
fn routes_requiring_a_role_refuse_missing_unknown_revoked_and_wrong_tokens() {
    let app = TestApp::new(MANIFEST, PROBES);
    let state = app.path().join(".spin");
    carrel(&state, &["keys", "init"]);
    let (ingest_id, ingest) = new_token(
        &state,
        &["--association", "sos-quimper", "--role", "ingest"],
    );
    let (_, researcher) = new_token(&state, &["--role", "researcher"]);
    let carrel_up = app.start(&[]);
    let get = |token: Option<&str>| {
        let mut request = carrel_up.client.get(carrel_up.url("/ingest/x?op=hello"));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().unwrap();
        let challenge = response.headers().get("www-authenticate").is_some();
        (response.status().as_u16(), challenge)
    };
    assert_eq!(get(None), (401, true));
    assert_eq!(get(Some("carrel_00000000_nope")), (401, true));
    assert_eq!(get(Some(&researcher)).0, 403);
    assert_eq!(get(Some(&ingest)), (200, false));
    // Routes without an auth requirement stay open.
    assert_eq!(carrel_up.get("/open/x?op=hello").0, 200);

    carrel(&state, &["tokens", "revoke", &ingest_id]);
    let refused = carrel_up
        .client
        .get(carrel_up.url("/ingest/x?op=hello"))
        .bearer_auth(&ingest)
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    // The refusal names the token by its id, never by the token.
    let text = refused.text().unwrap();
    assert!(
        text.contains(&ingest_id) && !text.contains(&ingest),
        "{text}"
    );
    // A clean stop writes the minute's counts of unauthenticated refusals.
    carrel_up.terminate();

    let log = carrel(&state, &["audit", "export"]);
    let failures: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "auth.failed")
        .collect();
    let count = |actor: &str| -> u64 {
        failures
            .iter()
            .filter(|e| e["actor"] == actor)
            .map(|e| e["details"]["count"].as_u64().unwrap_or(1))
            .sum()
    };
    // No token and an unknown one: counted together for the source, per minute.
    assert_eq!(count("anonymous"), 2, "{log}");
    assert!(
        failures
            .iter()
            .filter(|e| e["actor"] == "anonymous")
            .all(|e| e["subject"] == "source:127.0.0.1"),
        "{log}"
    );
    // A revoked token is named by its holder and id; a wrong role at once, by the holder.
    assert_eq!(count(&format!("ingest (token:{ingest_id})")), 1, "{log}");
    let wrong_role: Vec<_> = failures
        .iter()
        .filter(|e| e["subject"] == "route:/ingest/x")
        .collect();
    assert_eq!(wrong_role.len(), 1, "{log}");
    assert!(
        wrong_role[0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("researcher (token:"),
        "{log}"
    );
    assert!(
        !log.contains(&ingest) && !log.contains(&researcher),
        "tokens must never reach the audit log"
    );
    assert!(carrel(&state, &["audit", "verify"]).starts_with("OK"));
}

#[test]
fn app_needing_authentication_refuses_to_start_without_the_warehouse_state() {
    let app = TestApp::new(MANIFEST, PROBES);
    let stderr = app.start_fails();
    assert!(stderr.contains("carrel keys init"), "{stderr}");
}

/// Runs `carrel` from `cwd` with `env`, expecting success; returns stdout.
fn carrel_in(cwd: &std::path::Path, env: &[(&str, &std::path::Path)], args: &[&str]) -> String {
    let mut command = support::carrel_command();
    command.current_dir(cwd).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "carrel {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn keys_tokens_and_audit_beside_a_manifest_are_the_ones_its_carrel_up_checks() {
    let app = TestApp::new(MANIFEST, PROBES);
    let elsewhere = tempfile::tempdir().unwrap();
    let manifest = app.manifest();
    let manifest = manifest.to_str().unwrap();
    // From another directory, `-f` places the state where `carrel up -f` keeps it.
    carrel_in(elsewhere.path(), &[], &["keys", "init", "-f", manifest]);
    let out = carrel_in(
        elsewhere.path(),
        &[],
        &[
            "tokens",
            "add",
            "--role",
            "ingest",
            "--association",
            "sos-brest",
            "-f",
            manifest,
        ],
    );
    let token = out.lines().last().unwrap().trim().to_owned();
    assert!(app.path().join(".spin").is_dir());
    assert!(!elsewhere.path().join(".spin").exists());
    let carrel_up = app.start(&[]);
    let status = carrel_up
        .client
        .get(carrel_up.url("/ingest/x?op=hello"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 200);
    drop(carrel_up);

    // CARREL_STATE_DIR names it for every command, whatever the directory.
    let state = app.path().join(".spin");
    let listed = carrel_in(
        elsewhere.path(),
        &[("CARREL_STATE_DIR", &state)],
        &["tokens", "list"],
    );
    assert!(listed.contains("sos-brest"), "{listed}");
    // The auditor's commands follow the same rule.
    let verified = carrel_in(elsewhere.path(), &[], &["audit", "verify", "-f", manifest]);
    assert!(verified.starts_with("OK: "), "{verified}");
    let log = carrel_in(elsewhere.path(), &[], &["audit", "log", "-f", manifest]);
    assert!(log.contains("token.add"), "{log}");
}
