//! Who may use a study and what they see of it, end to end: the real binary over a
//! warehouse of ingested consultations, tokens that name their holders, the probe study
//! owned by the researcher who submitted it, and the real `carrel up` answering HTTP.
//! Another researcher gets 404 on every route of the owner's runs and can neither submit
//! nor run the study; a researcher never sees a run's log lines or error text; an
//! approval without the auditor's secret token is the operator's.

mod support;

use std::process::Output;
use support::desk::{Desk, desk, named_token, probe_section};
use support::{Carrel, carrel_command, carrel_ok};

/// A warehouse with the probe submitted by Dr Alice Martin (so hers) and approved by the
/// auditor; Dr Bob Durand is another researcher.
struct Access {
    d: Desk,
    alice: (String, String),
    bob: (String, String),
}

const ALICE: &str = "Dr Alice Martin";
const BOB: &str = "Dr Bob Durand";

fn warehouse(consultations: u32) -> Access {
    let d = desk(&probe_section("probe", ""), consultations, None);
    let alice = named_token(&d.state, "researcher", ALICE);
    let bob = named_token(&d.state, "researcher", BOB);
    d.study_ok(&["submit", "probe", "--by", &alice.0]);
    d.study_ok(&["approve", "probe", "--token", &d.auditor_token]);
    Access { d, alice, bob }
}

/// `carrel study ARGS` with `env` (and no CARREL_TOKEN but what `env` sets).
fn study(d: &Desk, args: &[&str], env: &[(&str, &str)]) -> Output {
    carrel_command()
        .arg("study")
        .args(args)
        .arg("-f")
        .arg(d.app.manifest())
        .arg("--state-dir")
        .arg(&d.state)
        .env_remove("CARREL_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Access {
    /// Runs the probe with `op` as the researcher `by`: the run as they see it.
    fn run_as(&self, by: &str, op: &str) -> serde_json::Value {
        let out = self
            .d
            .study(&["run", "probe", "--json", "--by", by, "--param", op]);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no run ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    fn serve(&self) -> Carrel {
        Carrel::start(
            &self.d.app.manifest(),
            &["--state-dir", self.d.state.to_str().unwrap()],
            &[],
        )
    }
}

fn audit_entries(d: &Desk) -> Vec<serde_json::Value> {
    carrel_ok(&d.state, &["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// (status, body) of a request with a bearer token.
fn call(carrel: &Carrel, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let request = match method {
        "GET" => carrel.client.get(carrel.url(path)),
        "POST" => carrel.client.post(carrel.url(path)).body(body.to_owned()),
        "DELETE" => carrel.client.delete(carrel.url(path)),
        other => panic!("{other}"),
    };
    let r = request.bearer_auth(token).send().unwrap();
    (r.status().as_u16(), r.text().unwrap_or_default())
}

#[test]
fn a_second_researcher_gets_404_on_every_route_of_anothers_runs_and_cannot_submit_or_run_the_study()
{
    let a = warehouse(1500);
    let d = &a.d;
    let record = a.run_as(&a.alice.0, "op=count");
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(
        record["actor"],
        format!("{ALICE} (token:{})", a.alice.0),
        "{record}"
    );
    let run_id = record["run_id"].as_str().unwrap().to_owned();

    // On the command line, as Bob: nothing of Alice's study or runs, and no detail.
    for args in [
        vec!["run", "probe", "--by", &a.bob.0, "--param", "op=count"],
        vec!["submit", "probe", "--by", &a.bob.0],
        vec!["runs", "probe", "--by", &a.bob.0],
        vec!["show", &run_id, "--by", &a.bob.0],
        vec!["results", &run_id, "--by", &a.bob.0],
        vec!["owners", "list", "probe", "--by", &a.bob.0],
        vec!["owners", "add", "probe", &a.bob.0, "--by", &a.bob.0],
    ] {
        let out = d.study(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("no study `probe` of yours") || stderr.contains("no run `"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains(ALICE), "{args:?}: {stderr}");
    }
    assert_eq!(d.study_ok(&["runs", "--by", &a.bob.0]).trim(), "");
    assert!(d.study_ok(&["runs", "--by", &a.alice.0]).contains(&run_id));

    let carrel = a.serve();
    let (alice, bob) = (&a.alice.1, &a.bob.1);
    let reads = [
        format!("/api/runs/{run_id}"),
        format!("/api/runs/{run_id}/result.csv"),
        format!("/api/runs/{run_id}/result.arrow"),
        "/api/studies/probe/runs".to_owned(),
        "/api/studies/probe/owners".to_owned(),
        format!("/results/{run_id}"),
        format!("/results/{run_id}/result.csv"),
        format!("/results/{run_id}/result.arrow"),
    ];
    for path in &reads {
        let (status, body) = call(&carrel, "GET", path, alice, "");
        assert_eq!(status, 200, "{path}: {body}");
        let (status, body) = call(&carrel, "GET", path, bob, "");
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains(ALICE), "{path}: {body}");
    }
    let (status, list) = call(&carrel, "GET", "/results", bob, "");
    assert_eq!(status, 200);
    assert!(
        list.contains("id=\"no-runs\"") && !list.contains(&run_id),
        "{list}"
    );
    for (method, path, body) in [
        (
            "POST",
            "/api/studies/probe/submit".to_owned(),
            String::new(),
        ),
        (
            "POST",
            "/api/studies/probe/runs".to_owned(),
            r#"{"params": {"op": "count"}}"#.to_owned(),
        ),
        (
            "POST",
            "/api/studies/probe/owners".to_owned(),
            format!(r#"{{"token_id": "{}"}}"#, a.bob.0),
        ),
        (
            "DELETE",
            format!("/api/studies/probe/owners/{}", a.alice.0),
            String::new(),
        ),
    ] {
        let (status, answer) = call(&carrel, method, &path, bob, &body);
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    // Bob's attempts changed nothing: one run, Alice's, and Alice the only owner.
    let (_, runs) = call(
        &carrel,
        "GET",
        "/api/studies/probe/runs",
        &d.auditor_token,
        "",
    );
    let runs: Vec<serde_json::Value> = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (_, owners) = call(&carrel, "GET", "/api/studies/probe/owners", alice, "");
    let owners: Vec<serde_json::Value> = serde_json::from_str(&owners).unwrap();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(
        owners[0]["holder"],
        format!("{ALICE} (token:{})", a.alice.0)
    );

    // Once Alice adds him, Bob reads the study's runs.
    let (status, body) = call(
        &carrel,
        "POST",
        "/api/studies/probe/owners",
        alice,
        &format!(r#"{{"token_id": "{}"}}"#, a.bob.0),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&carrel, "GET", &format!("/api/runs/{run_id}"), bob, "");
    assert_eq!(status, 200, "{body}");

    // Every refusal is audited under Bob's name; no entry holds a secret token.
    let entries = audit_entries(d);
    let denied = entries
        .iter()
        .filter(|e| {
            e["action"] == "study.denied"
                && e["actor"] == format!("{BOB} (token:{})", a.bob.0).as_str()
        })
        .count();
    assert!(denied >= 10, "{denied} refusals audited");
    let log = serde_json::to_string(&entries).unwrap();
    for secret in [alice, bob, &d.auditor_token] {
        assert!(
            !log.contains(secret.as_str()),
            "the audit log holds a token"
        );
    }
}

#[test]
fn a_researchers_view_of_a_failed_run_carries_no_log_line_and_no_error_text() {
    let a = warehouse(1500);
    let d = &a.d;
    let failed = a.run_as(&a.alice.0, "op=fail-rows");
    assert_eq!(failed["status"], "failed", "{failed}");
    let failed_id = failed["run_id"].as_str().unwrap().to_owned();
    let error = d.full_run(&failed_id)["error"]
        .as_str()
        .expect("the auditor sees the study's error")
        .to_owned();
    assert!(error.contains("rows:"), "{error}");
    let logged = a.run_as(&a.alice.0, "op=log-rows");
    assert_eq!(logged["status"], "succeeded", "{logged}");
    let logged_id = logged["run_id"].as_str().unwrap().to_owned();
    let full = d.full_run(&logged_id);
    let line = full["logs"][0]
        .as_str()
        .expect("the auditor sees the study's log")
        .to_owned();

    // What the researcher is shown, by every route.
    for view in [&failed, &logged] {
        for hidden in ["error", "logs", "denied", "rows_read", "segments_read"] {
            assert!(view.get(hidden).is_none(), "{hidden} in {view}");
        }
    }
    assert!(failed["researcher_error"].is_string(), "{failed}");
    let mut shown = vec![
        serde_json::to_string(&failed).unwrap(),
        d.study_ok(&["show", &failed_id, "--by", &a.alice.0]),
        d.study_ok(&["show", &logged_id, "--by", &a.alice.0, "--json"]),
        d.study_ok(&["runs", "probe", "--by", &a.alice.0]),
    ];
    let carrel = a.serve();
    for path in [
        format!("/api/runs/{failed_id}"),
        format!("/api/runs/{logged_id}"),
        "/api/studies/probe/runs".to_owned(),
        "/results".to_owned(),
        format!("/results/{failed_id}"),
        format!("/results/{logged_id}"),
    ] {
        let (status, body) = call(&carrel, "GET", &path, &a.alice.1, "");
        assert_eq!(status, 200, "{path}: {body}");
        shown.push(body);
    }
    for text in &shown {
        assert!(!text.contains(&error), "the error text in {text}");
        assert!(!text.contains(&line), "a log line in {text}");
        assert!(!text.contains("Study log"), "{text}");
    }
    // The auditor sees both, over the API and on the study's page.
    let (_, body) = call(
        &carrel,
        "GET",
        &format!("/api/runs/{failed_id}"),
        &d.auditor_token,
        "",
    );
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(record["error"], error.as_str());
    let (_, page) = call(&carrel, "GET", "/audit/studies/probe", &d.auditor_token, "");
    assert!(page.contains("class=\"study-log\""), "{page}");
}

#[test]
fn an_approval_without_the_auditors_secret_is_recorded_as_the_operators() {
    let d = desk(&probe_section("probe", ""), 200, None);
    let alice = named_token(&d.state, "researcher", ALICE);
    let (audrey_id, audrey) = named_token(&d.state, "auditor", "Dr Audrey Tor");
    let audrey_holder = format!("Dr Audrey Tor (token:{audrey_id})");
    let submitted = stdout(&study(&d, &["submit", "probe", "--by", &alice.0], &[]));
    assert!(submitted.contains(ALICE), "{submitted}");

    // A token id proves nothing: refused.
    let out = study(&d, &["approve", "probe", "--by", &audrey_id], &[]);
    assert!(!out.status.success());
    // No token at all: the operator's approval, and the output says so.
    let approved = stdout(&study(&d, &["approve", "probe"], &[]));
    assert!(
        approved.contains("operator") && approved.contains("--token"),
        "{approved}"
    );
    let listing: serde_json::Value =
        serde_json::from_str(&stdout(&study(&d, &["list", "--json"], &[]))).unwrap();
    assert_eq!(listing[0]["submission"]["approved_by"], "operator");
    assert_eq!(
        listing[0]["owners"][0],
        format!("{ALICE} (token:{})", alice.0)
    );
    // The auditor's secret token, from CARREL_TOKEN: recorded under her name.
    let revoked = stdout(&study(
        &d,
        &["revoke", "probe"],
        &[("CARREL_TOKEN", audrey.as_str())],
    ));
    assert!(revoked.contains(&audrey_holder), "{revoked}");
    // A researcher's secret token is no auditor's.
    let out = study(&d, &["approve", "probe", "--token", &alice.1], &[]);
    assert!(!out.status.success());

    // Over HTTP, the bearer token is the auditor's identity.
    stdout(&study(&d, &["submit", "probe", "--by", &alice.0], &[]));
    let carrel = Carrel::start(
        &d.app.manifest(),
        &["--state-dir", d.state.to_str().unwrap()],
        &[],
    );
    let (status, body) = call(&carrel, "POST", "/api/studies/probe/approve", &audrey, "");
    assert_eq!(status, 200, "{body}");
    let submission: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(submission["approved_by"], audrey_holder.as_str());

    let entries = audit_entries(&d);
    let actors = |action: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["actor"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        actors("study.approve"),
        ["operator", audrey_holder.as_str()]
    );
    assert_eq!(actors("study.revoke"), [audrey_holder.as_str()]);
    assert_eq!(
        actors("study.submit"),
        vec![format!("{ALICE} (token:{})", alice.0); 2]
    );
    let log = serde_json::to_string(&entries).unwrap();
    assert!(!log.contains(&audrey) && !log.contains(&alice.1));
}
