//! Hostile words, end to end: control characters and bidirectional overrides in every text
//! field of a study (refused at submit, naming the field; escaped by the command line), ids
//! that are not ids, a register that must show what was approved rather than what the
//! manifest says now, and a released cell that a spreadsheet would run as a formula.

mod support;

use support::desk::{INGESTION, activity_section, import_synthetic_as, named_token, token};
use support::{Carrel, TestApp, carrel_command, carrel_ok, guests};

/// A probe study `id` whose `field` is `value` (a TOML string, escapes allowed).
fn section(id: &str, field: &str, value: &str) -> String {
    let mut fields = vec![
        ("title", "\"Probe counts\"".to_owned()),
        ("purpose", "\"Counting consultations\"".to_owned()),
        ("legal_basis", "\"CNIL decision 2026-001\"".to_owned()),
        ("principal_investigator", "\"Dr Test\"".to_owned()),
    ];
    for (name, text) in &mut fields {
        if *name == field {
            *text = value.to_owned();
        }
    }
    let fields: String = fields
        .iter()
        .map(|(name, text)| format!("{name} = {text}\n"))
        .collect();
    format!(
        r#"
[[trigger.study]]
component = "{id}"

[component.{id}]
source = "study_probe.wasm"

[component.{id}.tool.carrel.study]
{fields}expires = "2099-12-31"
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

fn app(studies: &str) -> (TestApp, std::path::PathBuf) {
    let manifest =
        format!("spin_manifest_version = 2\n[application]\nname = \"metadata-test\"\n{studies}");
    let app = TestApp::new(&manifest, &[("study_probe.wasm", guests::STUDY_PROBE)]);
    let state = app.path().join("state");
    carrel_ok(&state, &["keys", "init"]);
    (app, state)
}

fn study(app: &TestApp, state: &std::path::Path, args: &[&str]) -> std::process::Output {
    carrel_command()
        .arg("study")
        .args(args)
        .arg("-f")
        .arg(app.manifest())
        .arg("--state-dir")
        .arg(state)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[test]
fn control_and_bidirectional_characters_in_every_text_field_are_refused_at_submit_naming_the_field()
{
    let long_purpose = format!("\"{}\"", "x".repeat(1_000_000));
    let cases = [
        (
            "bidi-pi",
            "principal_investigator",
            r#""Dr \u202Egnihtemos\u202C""#,
        ),
        ("nul-title", "title", r#""Probe\u0000""#),
        (
            "esc-purpose",
            "purpose",
            r#""\u001B[2J\u001B]0;pwned\u0007""#,
        ),
        ("bel-basis", "legal_basis", r#""decision\u0007""#),
        ("isolate-title", "title", r#""\u2067x""#),
        (
            "zero-width-pi",
            "principal_investigator",
            r#""Dr\u200BTest""#,
        ),
        ("long-purpose", "purpose", long_purpose.as_str()),
    ];
    let studies: String = cases
        .iter()
        .map(|(id, field, value)| section(id, field, value))
        .collect();
    let (app, state) = app(&studies);
    for (id, field, _) in &cases {
        let out = study(&app, &state, &["submit", id]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{id} was accepted");
        assert!(stderr.contains(field), "{id}: {stderr}");
        assert!(
            stderr.len() < 2000,
            "{id}: the error echoes the value: {stderr}"
        );
        // Nothing in the output is an escape sequence, the log's colours included.
        assert!(
            !stderr.chars().any(|c| c != '\n' && c.is_control()),
            "{id}: {stderr:?}"
        );
    }
    let log = carrel_ok(&state, &["audit", "export"]);
    assert!(!log.contains("study.submit"), "nothing was submitted");

    // Listing the studies writes no control character to the terminal: they are escaped.
    let list = study(&app, &state, &["list"]);
    assert!(list.status.success());
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(
        !text.chars().any(|c| c != '\n'
            && (c.is_control()
                || ('\u{2066}'..='\u{2069}').contains(&c)
                || ('\u{202A}'..='\u{202E}').contains(&c))),
        "{text:?}"
    );
    assert!(
        text.contains("\\u{202e}") && text.contains("\\u{0}"),
        "{text}"
    );

    // A holder's name is held to the same rule.
    let out = carrel_command()
        .args([
            "tokens",
            "add",
            "--role",
            "researcher",
            "--name",
            "Dr \u{202e}evE",
        ])
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bidirectional"));
}

#[test]
fn a_study_whose_id_is_not_an_id_is_refused_at_submit() {
    let studies = section("probe", "title", "\"Probe\"")
        .replace("component = \"probe\"", "component = \"Probe_1\"");
    let studies = studies.replace("[component.probe", "[component.Probe_1");
    let (app, state) = app(&studies);
    let out = study(&app, &state, &["submit", "Probe_1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted");
    assert!(stderr.contains("study id"), "{stderr}");
}

#[test]
fn the_register_shows_the_approved_text_and_says_when_the_manifest_changed_since() {
    let (app, state) = app(&section("probe", "purpose", "\"Approved purpose\""));
    let (researcher, researcher_token) = named_token(&state, "researcher", "Dr Alice Martin");
    let (_, auditor) = token(&state, "auditor");
    for args in [
        vec!["submit", "probe", "--by", &researcher],
        vec!["approve", "probe", "--token", &auditor],
    ] {
        let out = study(&app, &state, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let manifest = std::fs::read_to_string(app.manifest()).unwrap();
    std::fs::write(
        app.manifest(),
        manifest.replace("Approved purpose", "Widened purpose nobody approved"),
    )
    .unwrap();
    let carrel = Carrel::start(
        &app.manifest(),
        &["--state-dir", state.to_str().unwrap()],
        &[],
    );
    let (status, register) = carrel.get("/register");
    assert_eq!(status, 200);
    assert!(register.contains("Approved purpose"), "{register}");
    assert!(!register.contains("Widened purpose"), "{register}");
    assert!(
        register.contains("changed since approval: runs refused"),
        "{register}"
    );
    let refused = carrel
        .client
        .post(carrel.url("/api/studies/probe/runs"))
        .bearer_auth(&researcher_token)
        .body("{\"params\": {\"op\": \"count\"}}")
        .send()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 409);
    let body = refused.text().unwrap();
    assert!(
        body.contains("manifest section changed since approval"),
        "{body}"
    );
}

#[test]
fn a_released_cell_a_spreadsheet_would_run_as_a_formula_is_escaped_in_csv() {
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"csv-test\"\n{INGESTION}\n{}",
        // By association alone: 600 consultations by week would all be withheld.
        activity_section("by = { by_association = [\"association\"] }")
    );
    let app = TestApp::new(
        &manifest,
        &[
            ("ingest_fhir.wasm", guests::INGEST_FHIR),
            ("pseudonymise.wasm", guests::PSEUDONYMISE),
            ("activity.wasm", guests::ACTIVITY),
        ],
    );
    let state = app.path().join("state");
    carrel_ok(&state, &["keys", "init"]);
    // An association whose code a spreadsheet would read as a formula (`-` starts one).
    import_synthetic_as(&app, &state, 11, 600, "-cmd");
    let (_, auditor) = token(&state, "auditor");
    for args in [
        vec!["submit", "activity"],
        vec!["approve", "activity", "--token", &auditor],
    ] {
        let out = study(&app, &state, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = study(
        &app,
        &state,
        &["run", "activity", "--json", "--param", "by=by_association"],
    );
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["status"], "succeeded", "{run}");
    let run_id = run["run_id"].as_str().unwrap();
    let out = study(&app, &state, &["results", run_id, "--format", "csv"]);
    let csv = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert!(!rows.is_empty(), "{csv}");
    for row in rows {
        assert!(row.starts_with("\"'-cmd\","), "{row}");
    }
}
