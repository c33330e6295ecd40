//! The auditor's web view and the public study register, end to end: the real `carrel up`
//! over a warehouse filled through the real ingestion components, with one approved and
//! run study and one only submitted. Plain HTTP checks, then headless Chromium driven
//! through WebDriver logs in, filters the log, opens a study and takes a screenshot.

mod support;

use std::path::{Path, PathBuf};
use support::desk::{INGESTION, import_synthetic, token};
use support::webdriver::{self, Browser};
use support::{Carrel, TestApp, carrel_command, carrel_ok as run, guests};

fn study_section(id: &str, title: &str) -> String {
    format!(
        r#"
[[trigger.study]]
component = "{id}"

[component.{id}]
source = "study_probe.wasm"

[component.{id}.tool.carrel.study]
title = "{title}"
purpose = "Counting consultations <for> the register test"
legal_basis = "CNIL decision 2026-001"
principal_investigator = "Dr Test"
expires = "2099-12-31"
time_limit_seconds = 5
memory_limit_mb = 64
datasets = {{ consultations = ["date", "age_years"] }}
params = {{ op = ["count"] }}
[component.{id}.tool.carrel.study.table]
dimensions = ["sex"]
measures = ["n", "other"]
"#
    )
}

/// A warehouse with consultations, an auditor and a researcher token, study `probe`
/// approved and run once (`op=count`), study `pending` submitted only; `carrel up` on it.
struct Fixture {
    app: TestApp,
    state: PathBuf,
    auditor_token: String,
    researcher_token: String,
    run: serde_json::Value,
    carrel: Carrel,
}

fn study(app: &TestApp, state: &Path, args: &[&str]) -> String {
    let out = carrel_command()
        .arg("study")
        .args(args)
        .arg("-f")
        .arg(app.manifest())
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "carrel study {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fixture() -> Fixture {
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"audit-page-test\"\n{INGESTION}\n{}\n{}",
        study_section("probe", "Probe counts"),
        study_section("pending", "Pending secret study")
    );
    let app = TestApp::new(
        &manifest,
        &[
            ("ingest_fhir.wasm", guests::INGEST_FHIR),
            ("pseudonymise.wasm", guests::PSEUDONYMISE),
            ("study_probe.wasm", guests::STUDY_PROBE),
        ],
    );
    let state = app.path().join("state");
    run(&state, &["keys", "init"]);
    import_synthetic(&app, &state, 7, 300);
    let (_, auditor_token) = token(&state, "auditor");
    let (_, researcher_token) = token(&state, "researcher");
    study(&app, &state, &["submit", "probe"]);
    study(
        &app,
        &state,
        &["approve", "probe", "--token", &auditor_token],
    );
    study(&app, &state, &["submit", "pending"]);
    let out = study(
        &app,
        &state,
        &["run", "probe", "--json", "--param", "op=count"],
    );
    let run: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    // The run in full (rows read…), as the auditor's pages show it.
    let run_id = run["run_id"].as_str().unwrap();
    let run: serde_json::Value =
        serde_json::from_str(&support::carrel_ok(&state, &["audit", "run", run_id])).unwrap();
    let carrel = Carrel::start(
        &app.manifest(),
        &["--state-dir", state.to_str().unwrap()],
        &[],
    );
    Fixture {
        app,
        state,
        auditor_token,
        researcher_token,
        run,
        carrel,
    }
}

fn get(f: &Fixture, path: &str, token: Option<&str>) -> (u16, String, Option<String>) {
    let mut request =
        support::no_redirects(std::time::Duration::from_secs(120)).get(f.carrel.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().unwrap();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.text().unwrap(), location)
}

fn audit_entries(state: &Path) -> Vec<serde_json::Value> {
    run(state, &["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_register_is_public_and_the_audit_view_is_for_auditors() {
    let f = fixture();
    let (status, register, _) = get(&f, "/register", None);
    assert_eq!(status, 200, "{register}");
    assert!(register.contains("Probe counts"), "{register}");
    assert!(register.contains("CNIL decision 2026-001"));
    assert!(register.contains("Counting consultations &lt;for&gt; the register test"));
    assert!(
        register.contains("<td class=\"num runs\">1</td>"),
        "{register}"
    );
    assert!(
        register.contains("<td class=\"num released\">1</td>"),
        "{register}"
    );
    assert!(
        !register.contains("Pending secret study") && !register.contains("study-pending"),
        "a submitted study is not in the register: {register}"
    );
    for secret in [
        f.auditor_token.as_str(),
        f.researcher_token.as_str(),
        f.state.to_str().unwrap(),
        f.app.path().to_str().unwrap(),
        f.run["run_id"].as_str().unwrap(),
    ] {
        assert!(!register.contains(secret), "the register leaks {secret}");
    }

    let (status, _, location) = get(&f, "/audit", None);
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/audit/login"));
    let (status, body, _) = get(&f, "/audit", Some(&f.researcher_token));
    assert_eq!(status, 403, "{body}");
    let (status, body, _) = get(&f, "/audit", Some("carrel_nobody_00"));
    assert_eq!(status, 401, "{body}");

    let (status, body, _) = get(&f, "/audit", Some(&f.auditor_token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Audit chain intact"), "{body}");
    assert!(body.contains("href=\"/audit/studies/probe\""), "{body}");
    assert!(body.contains("href=\"/audit/studies/pending\""), "{body}");

    let (status, log, _) = get(
        &f,
        "/audit/log?action=study.approve",
        Some(&f.auditor_token),
    );
    assert_eq!(status, 200, "{log}");
    let actions: Vec<&str> = log
        .split("<td class=\"action\">")
        .skip(1)
        .map(|s| s.split('<').next().unwrap())
        .collect();
    assert_eq!(actions, ["study.approve"], "{log}");

    let (status, components, _) = get(&f, "/audit/components", Some(&f.auditor_token));
    assert_eq!(status, 200, "{components}");
    assert!(
        components.contains("id=\"component-probe\""),
        "{components}"
    );
    assert!(
        components.contains("id=\"component-ingest-fhir\""),
        "{components}"
    );
    assert!(components.contains("<code>wasi:"), "{components}");

    let refused = support::no_redirects(std::time::Duration::from_secs(120))
        .post(f.carrel.url("/audit/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", f.researcher_token))
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.headers().get("set-cookie").is_none());
    let entries = audit_entries(&f.state);
    let failures: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["action"] == "auth.failed" && e["subject"] == "route:/audit/login")
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    // The refused token is named by its holder and id, never by the token itself.
    let actor = failures[0]["actor"].as_str().unwrap();
    assert!(actor.ends_with(")") && actor.contains("(token:"), "{actor}");
    assert!(!actor.contains(&f.researcher_token), "{actor}");

    let accepted = support::no_redirects(std::time::Duration::from_secs(120))
        .post(f.carrel.url("/audit/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", f.auditor_token))
        .send()
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 303);
    let cookie = accepted.headers()["set-cookie"].to_str().unwrap();
    for attribute in [
        "carrel_audit=",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/audit",
    ] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
}

#[test]
fn an_auditor_logs_in_filters_the_log_and_opens_a_study_in_a_browser() {
    if webdriver::skipped_without_browser() {
        return;
    }
    let f = fixture();
    let b = Browser::start();

    b.goto(&f.carrel.url("/audit"));
    b.wait_for_url(|u| u.ends_with("/audit/login"));
    b.send_keys(&b.find("#token"), &f.auditor_token);
    b.click(&b.find("#login-submit"));
    b.wait_for_url(|u| u.ends_with("/audit"));
    let chain = b.text(&b.find("#chain-status"));
    assert!(chain.contains("Audit chain intact"), "{chain}");
    let head = b.text(&b.find("#head-hash"));
    assert_eq!(head.len(), 64, "{head}");
    let cookie = b
        .cookies()
        .into_iter()
        .find(|c| c["name"] == "carrel_audit")
        .expect("the login cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");

    b.click(&b.find("header a[href=\"/audit/log\"]"));
    b.wait_for_url(|u| u.ends_with("/audit/log"));
    let all = b.find_all("#log tr.entry").len();
    b.send_keys(&b.find("#filter-action"), "study.approve");
    b.click(&b.find("#filter-submit"));
    b.wait_for_url(|u| u.contains("action=study.approve"));
    let actions: Vec<String> = b
        .find_all("#log td.action")
        .iter()
        .map(|e| b.text(e))
        .collect();
    assert_eq!(actions, ["study.approve"], "filtered out of {all} entries");
    assert!(b.text(&b.find("#chain-status")).contains("intact"));

    b.click(&b.find("header a[href=\"/audit\"]"));
    b.wait_for_url(|u| u.ends_with("/audit"));
    b.click(&b.find("a.study-link[href=\"/audit/studies/probe\"]"));
    b.wait_for_url(|u| u.ends_with("/audit/studies/probe"));
    let runs = b.find_all("#runs tr.run");
    assert_eq!(runs.len(), 1);
    let run_id = f.run["run_id"].as_str().unwrap();
    assert!(b.text(&b.find("#runs")).contains(run_id));
    assert_eq!(
        b.text(&b.find("#runs td.rows-read")),
        f.run["rows_read"].to_string()
    );
    assert_eq!(
        b.text(&b.find("#runs td.rows-released")),
        f.run["rows_released"].to_string()
    );
    assert!(b.text(&b.find("#approval")).contains("approved"));
    assert!(b.source().contains("id=\"chain-status\""));
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots/audit.png");
    let shot = b.screenshot(&shot);
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    b.click(&b.find("#logout"));
    b.wait_for_url(|u| u.ends_with("/audit/login"));
    b.goto(&f.carrel.url("/audit"));
    b.wait_for_url(|u| u.ends_with("/audit/login"));
}
