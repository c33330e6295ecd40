//! The auditor's view on the command line, end to end with the real `carrel` binary:
//! `carrel audit manifest` on real components, `audit diff`, `audit log` and signed
//! checkpoints.

mod support;

use serde_json::Value;
use std::path::Path;
use support::{TestApp, carrel_command, carrel_ok as carrel, guests};

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "audit"
version = "1.0.0"

[[trigger.http]]
route = "/probe/..."
component = "probe"

[[trigger.http]]
route = "/hello"
component = "hello"

# Imports wasi:http/outgoing-handler, but may reach no host.
[component.probe]
source = "spin5_probe.wasm"
key_value_stores = ["default"]

# Granted a store it never opens.
[component.hello]
source = "spin5_hello.wasm"
key_value_stores = ["default"]

[[trigger.study]]
component = "ili"

[component.ili]
source = "study.wasm"

[component.ili.tool.carrel.study]
title = "ILI"
purpose = "Weekly share of influenza-like illness"
legal_basis = "decision 2026-001"
principal_investigator = "Dr A"
expires = "2099-12-31"
datasets = { consultations = ["date"] }

[component.ili.tool.carrel.study.table]
dimensions = ["week"]
measures = ["ili"]
"#;

fn app(manifest: &str) -> TestApp {
    TestApp::new(
        manifest,
        &[
            ("spin5_probe.wasm", guests::SPIN5_PROBE),
            ("spin5_hello.wasm", guests::SPIN5_HELLO),
            ("study.wasm", guests::SPIN7_HELLO),
        ],
    )
}

fn report(app: &TestApp, state: &Path) -> Value {
    let manifest = app.manifest();
    let out = carrel(
        state,
        &[
            "audit",
            "manifest",
            "-f",
            manifest.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn component<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no component {id} in {report}"))
}

fn findings(component: &Value) -> Vec<(String, String)> {
    component["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Runs `carrel args…`, returning (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let out = carrel_command().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn report_flags_an_ungranted_outbound_import_and_an_unused_store_from_the_binaries() {
    let app = app(MANIFEST);
    let state = app.path().join(".spin");
    let report = report(&app, &state);
    assert_eq!(report["format"], "carrel-audit-manifest");
    assert_eq!(report["format_version"], 1);
    assert!(report["warehouse"].is_null(), "{report}");
    let ids: Vec<&str> = report["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["hello", "ili", "probe"]);

    let probe = component(&report, "probe");
    let sha = probe["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    let outbound = probe["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["interface"] == "wasi:http/outgoing-handler")
        .unwrap_or_else(|| panic!("the spin5 probe imports outgoing HTTP: {probe}"));
    assert_eq!(outbound["granted"], false);
    assert!(outbound["version"].as_str().unwrap().starts_with("0.2."));
    let probe_findings = findings(probe);
    assert!(
        probe_findings
            .iter()
            .any(|(kind, subject)| kind == "import-without-grant"
                && subject.starts_with("wasi:http/outgoing-handler@")),
        "{probe_findings:?}"
    );
    // The probe opens its store: that grant is used.
    assert!(
        !probe_findings
            .iter()
            .any(|(kind, _)| kind == "unused-grant"),
        "{probe_findings:?}"
    );
    assert!(
        probe["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["class"] == "baseline" && i["interface"] == "wasi:cli/environment")
    );

    let hello = component(&report, "hello");
    assert!(
        findings(hello).contains(&("unused-grant".into(), "key_value_stores".into())),
        "{hello}"
    );
    let ili = component(&report, "ili");
    assert_eq!(
        ili["grants"]["study"]["datasets"]["consultations"][0],
        "date"
    );
    assert_eq!(ili["manifest_sha256"].as_str().unwrap().len(), 64);

    let manifest = app.manifest();
    let text = carrel(
        &state,
        &[
            "audit",
            "manifest",
            "probe",
            "-f",
            manifest.to_str().unwrap(),
        ],
    );
    assert!(text.contains("no warehouse state"), "{text}");
    assert!(text.contains(&format!("sha256   {sha}")), "{text}");
    assert!(
        text.contains("NO GRANT") && text.contains("allowed_outbound_hosts"),
        "{text}"
    );
    assert!(!text.contains("component hello"), "{text}");
    assert!(text.contains("1 component, "), "{text}");
}

#[test]
fn diff_of_two_reports_shows_an_added_study_column_and_approvals_follow_the_hashes() {
    let app = app(MANIFEST);
    let state = app.path().join(".spin");
    carrel(&state, &["keys", "init"]);
    let before = report(&app, &state);
    let ili = component(&before, "ili");
    assert_eq!(ili["approval"]["state"], "not-submitted", "{ili}");

    let registry = carrel_warehouse::study::StudyRegistry::open(&state).unwrap();
    let (wasm, section) = (
        ili["sha256"].as_str().unwrap(),
        ili["manifest_sha256"].as_str().unwrap(),
    );
    registry
        .submit("ili", wasm, section, "token:researcher")
        .unwrap();
    registry
        .approve("ili", wasm, section, "token:auditor")
        .unwrap();
    let approved = report(&app, &state);
    let approval = &component(&approved, "ili")["approval"];
    assert_eq!(approval["state"], "approved");
    assert_eq!(approval["approved_by"], "token:auditor");
    assert_eq!(approval["wasm_sha256"], wasm);
    assert_eq!(approval["matches_current"], true);

    let old = app.path().join("old.json");
    std::fs::write(&old, serde_json::to_string_pretty(&approved).unwrap()).unwrap();
    std::fs::write(
        app.manifest(),
        MANIFEST.replace("[\"date\"]", "[\"date\", \"diagnoses\"]"),
    )
    .unwrap();
    let widened = report(&app, &state);
    assert_eq!(
        component(&widened, "ili")["approval"]["matches_current"],
        false
    );
    let new = app.path().join("new.json");
    std::fs::write(&new, serde_json::to_string_pretty(&widened).unwrap()).unwrap();

    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    let (code, out) = run(&["audit", "diff", old, new]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("component ili")
            && out.contains("+ grant study.datasets.consultations: diagnoses")
            && out.contains("~ manifest_sha256: "),
        "{out}"
    );
    assert!(!out.contains("component probe"), "{out}");
    assert_eq!(run(&["audit", "diff", old, old]), (0, String::new()));
    let (code, json) = run(&["audit", "diff", new, old, "--format", "json"]);
    assert_eq!(code, 1);
    let changes: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert!(changes.iter().any(|c| c["area"] == "grant"
        && c["change"] == "removed"
        && c["item"] == "study.datasets.consultations"
        && c["old"] == "diagnoses"));
    assert_eq!(run(&["audit", "diff", old, "/nonexistent.json"]).0, 2);
}

fn write_checkpoint(state: &Path, name: &str) -> (std::path::PathBuf, Value) {
    let text = carrel(state, &["audit", "checkpoint"]);
    let path = state.join(name);
    std::fs::write(&path, &text).unwrap();
    (path, serde_json::from_str(&text).unwrap())
}

fn verify_checkpoint(state: &Path, file: &Path) -> (i32, String) {
    let state = state.to_str().unwrap();
    run(&[
        "audit",
        "checkpoint",
        "--verify",
        file.to_str().unwrap(),
        "--state-dir",
        state,
    ])
}

#[test]
fn a_checkpoint_verifies_after_the_log_grew_and_fails_once_it_is_edited() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".spin");
    carrel(&state, &["keys", "init"]);
    let (file, checkpoint) = write_checkpoint(&state, "checkpoint.json");
    assert_eq!(checkpoint["algorithm"], "ed25519");
    assert_eq!(checkpoint["public_key"].as_str().unwrap().len(), 64);
    let seq = checkpoint["seq"].as_u64().unwrap();
    assert!(
        seq >= 2,
        "key.init and the key's creation are in the log: {checkpoint}"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(state.join("audit-signing.key")).unwrap();
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    // The log grows; the checkpoint still holds, and the host keeps its key.
    carrel(&state, &["tokens", "add", "--role", "auditor"]);
    let (code, out) = verify_checkpoint(&state, &file);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK") && out.contains("only grew"), "{out}");
    let (_, later) = write_checkpoint(&state, "later.json");
    assert_eq!(later["public_key"], checkpoint["public_key"]);
    assert!(later["seq"].as_u64().unwrap() > seq);

    // The log reads as lines; the signing key's creation is one of them.
    let log = carrel(&state, &["audit", "log", "--action", "audit"]);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains("audit.signing_key.create") && log.contains("operator"),
        "{log}"
    );
    let last = carrel(&state, &["audit", "log", "--limit", "1"]);
    assert_eq!(last.lines().count(), 1);
    assert!(
        last.trim_start()
            .starts_with(&format!("{}  ", later["seq"])),
        "{last}"
    );

    // A checkpoint altered after signing is refused.
    let forged = state.join("forged.json");
    let mut value = checkpoint.clone();
    value["seq"] = Value::from(seq - 1);
    std::fs::write(&forged, value.to_string()).unwrap();
    let (code, out) = verify_checkpoint(&state, &forged);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("FAILED") && out.contains("signature"),
        "{out}"
    );

    // Editing an entry before the checkpoint breaks it.
    let db = rusqlite::Connection::open(state.join("carrel.db")).unwrap();
    db.execute("UPDATE audit SET actor = 'intruder' WHERE seq = 1", [])
        .unwrap();
    let (code, out) = verify_checkpoint(&state, &file);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with("FAILED") && out.contains("broken at seq 1"),
        "{out}"
    );
    // The vault's own subcommands are still there.
    assert!(
        run(&["audit", "verify", "--state-dir", state.to_str().unwrap()])
            .1
            .starts_with("FAILED")
    );
    assert!(carrel(&state, &["audit", "head"]).starts_with("seq "));
    // Rewriting the checkpointed entry's hash is caught too.
    db.execute(
        "UPDATE audit SET hash = ?1 WHERE seq = ?2",
        rusqlite::params!["00".repeat(32), seq as i64],
    )
    .unwrap();
    let (code, out) = verify_checkpoint(&state, &file);
    assert_eq!(code, 1);
    assert!(out.contains("was rewritten"), "{out}");
}
