//! Spin's SQLite, end to end: a spin-sdk 7 component (`spin:sqlite/sqlite@3.1.0`, async)
//! and a spin-sdk 5 one (`fermyon:spin/sqlite@2.0.0`, and the synchronous 3.0 functions)
//! served by the real `carrel up`, sharing databases granted per label.

mod support;

use serde_json::{Value, json};
use support::{Carrel, TestApp, carrel_command, guests};

const MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "sqlite"

[[trigger.http]]
route = "/s7/..."
component = "s7"

[[trigger.http]]
route = "/s5/..."
component = "s5"

[component.s7]
source = "spin7_sqlite.wasm"
sqlite_databases = ["default"]

[component.s5]
source = "spin5_sqlite.wasm"
sqlite_databases = ["default", "visits"]
"#;

const RUNTIME_CONFIG: &str =
    "[sqlite_database.visits]\ntype = \"spin\"\npath = \"data/visits.db\"\n";

fn app() -> TestApp {
    let app = TestApp::new(
        MANIFEST,
        &[
            ("spin7_sqlite.wasm", guests::SPIN7_SQLITE),
            ("spin5_sqlite.wasm", guests::SPIN5_SQLITE),
        ],
    );
    std::fs::write(app.path().join("runtime-config.toml"), RUNTIME_CONFIG).unwrap();
    app
}

fn start(app: &TestApp) -> Carrel {
    let rc = app.path().join("runtime-config.toml");
    Carrel::start(
        &app.manifest(),
        &["--runtime-config-file", rc.to_str().unwrap()],
        &[],
    )
}

/// Runs one statement through a component; returns the status and the body.
fn sql(carrel: &Carrel, path: &str, statement: &str, params: Value) -> (u16, String) {
    carrel.post(
        path,
        json!({ "sql": statement, "params": params }).to_string(),
    )
}

fn rows(carrel: &Carrel, path: &str, statement: &str) -> Value {
    let (status, body) = sql(carrel, path, statement, json!([]));
    assert_eq!(status, 200, "{path}: {body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    reply["rows"].clone()
}

#[test]
fn both_sdk_generations_share_the_default_database_at_spins_path() {
    let app = app();
    let carrel = start(&app);
    let (status, body) = sql(
        &carrel,
        "/s7/x",
        "CREATE TABLE visits (code TEXT, hour INTEGER, weight REAL, raw BLOB, note)",
        json!([]),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = sql(
        &carrel,
        "/s7/x",
        "INSERT INTO visits VALUES (?, ?, ?, ?, ?)",
        json!(["J11", 23, 1.5, {"blob": [0, 255]}, null]),
    );
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (reply["changes"].clone(), reply["last_insert_rowid"].clone()),
        (json!(1), json!(1))
    );

    // spin-sdk 5, fermyon:spin/sqlite@2.0.0, sees the row spin-sdk 7 wrote.
    assert_eq!(
        rows(&carrel, "/s5/x?api=v2", "SELECT * FROM visits"),
        json!([["J11", 23, 1.5, {"blob": [0, 255]}, null]])
    );
    // spin-sdk 5's synchronous spin:sqlite@3.0.0 functions.
    let (status, body) = sql(
        &carrel,
        "/s5/x?api=v3",
        "INSERT INTO visits (code, hour) VALUES (?, ?), (?, ?)",
        json!(["A09", 2, "J21", 3]),
    );
    assert_eq!(status, 200, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (reply["changes"].clone(), reply["last_insert_rowid"].clone()),
        (json!(2), json!(3))
    );
    drop(carrel);

    assert!(app.path().join(".spin/sqlite_db.db").is_file());
    let carrel = start(&app);
    assert_eq!(
        rows(&carrel, "/s7/x", "SELECT code FROM visits ORDER BY hour"),
        json!([["A09"], ["J21"], ["J11"]])
    );
    // A SQL error is the guest's to handle: an `io` error value, not a failed request.
    let (status, body) = sql(&carrel, "/s7/x", "SELECT * FROM nowhere", json!([]));
    assert_eq!(status, 500);
    assert!(
        body.contains("Io") && body.contains("no such table"),
        "{body}"
    );
}

#[test]
fn a_database_not_granted_is_access_denied_in_every_interface() {
    let app = app();
    let carrel = start(&app);
    for path in [
        "/s7/x?db=visits",
        "/s5/x?api=v2&db=secret",
        "/s5/x?api=v3&db=secret",
    ] {
        assert_eq!(
            sql(&carrel, path, "SELECT 1", json!([])),
            (403, "access-denied".to_owned()),
            "{path}"
        );
    }
    // The label s5 is granted lives where the runtime config puts it.
    sql(&carrel, "/s5/x?db=visits", "CREATE TABLE t (x)", json!([]));
    assert!(app.path().join("data/visits.db").is_file());
}

#[test]
fn a_granted_database_without_configuration_stops_the_start_naming_component_and_label() {
    let app = app();
    let err = app.start_fails();
    assert!(err.contains("`s5`") && err.contains("`visits`"), "{err}");
    assert!(err.contains("[sqlite_database.visits]"), "{err}");
}

#[test]
fn sql_cannot_reach_a_file_outside_its_database() {
    let app = app();
    let carrel = start(&app);
    let outside = app.path().join("stolen.db");
    for statement in [
        format!("ATTACH DATABASE '{}' AS other", outside.display()),
        format!("VACUUM INTO '{}'", outside.display()),
    ] {
        let (status, body) = sql(&carrel, "/s7/x", &statement, json!([]));
        assert_eq!(status, 500, "{statement}: {body}");
        assert!(body.contains("authoriz"), "{body}");
    }
    assert!(!outside.exists());
}

#[test]
fn the_capability_report_and_audit_diff_show_the_sqlite_grant() {
    let app = app();
    let report = |manifest: &std::path::Path| -> Value {
        let out = carrel_command()
            .args(["audit", "manifest", "-f"])
            .arg(manifest)
            .args(["--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let before = report(&app.manifest());
    let s5 = &before["components"][0];
    assert_eq!(s5["id"], "s5");
    assert_eq!(
        s5["grants"]["sqlite_databases"],
        json!(["default", "visits"])
    );
    let import = s5["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["interface"] == "fermyon:spin/sqlite")
        .expect("the spin-sdk 5 component imports fermyon:spin/sqlite");
    assert_eq!(import["capability"], "sqlite");
    assert_eq!(import["granted"], true);
    assert!(s5["findings"].as_array().unwrap().is_empty(), "{s5}");

    std::fs::write(
        app.manifest(),
        MANIFEST.replace(
            "sqlite_databases = [\"default\"]",
            "sqlite_databases = [\"default\", \"visits\"]",
        ),
    )
    .unwrap();
    let after = report(&app.manifest());
    let old = app.path().join("old.json");
    let new = app.path().join("new.json");
    std::fs::write(&old, before.to_string()).unwrap();
    std::fs::write(&new, after.to_string()).unwrap();
    let out = carrel_command()
        .args(["audit", "diff"])
        .args([&old, &new])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("component s7") && text.contains("+ grant sqlite_databases: visits"),
        "{text}"
    );
}
