//! Spin compatibility, end to end: spin-sdk 7 (WASIp3) and spin-sdk 5 (WASIp2) components
//! served by the real `carrel up`.

mod support;

use support::TestApp;

fn manifest(extra_component: &str) -> String {
    format!(
        r#"spin_manifest_version = 2

[application]
name = "probes"

[variables]
greeting = {{ default = "hello" }}
token = {{ default = "unset" }}

[[trigger.http]]
route = "/p7/..."
component = "p7"

[[trigger.http]]
route = "/p5/users/:user_id/..."
component = "p5"

[[trigger.http]]
route = "/exact"
component = "p7"

[[trigger.http]]
route = {{ private = true }}
component = "p5"

[component.p7]
source = "spin7_probe.wasm"
key_value_stores = ["default"]
environment = {{ REGION = "bretagne" }}
variables = {{ message = "{{{{ greeting }}}} from spin7", token = "{{{{ token }}}}" }}
{extra_component}
[component.p5]
source = "spin5_probe.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["http://127.0.0.1:1"]
variables = {{ message = "{{{{ greeting }}}} from spin5" }}
"#
    )
}

fn app() -> TestApp {
    TestApp::new(&manifest(""), support::PROBES)
}

fn headers_of(carrel: &support::Carrel, path: &str) -> serde_json::Value {
    let (status, body) = carrel.get(path);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn both_sdk_generations_answer_on_their_routes() {
    let app = app();
    let carrel = app.start(&[]);
    assert_eq!(carrel.get("/p7/anything"), (200, "hello from spin7".into()));
    assert_eq!(
        carrel.get("/p5/users/ana/x"),
        (200, "hello from spin5".into())
    );
    assert_eq!(carrel.get("/exact"), (200, "hello from spin7".into()));
    assert_eq!(carrel.get("/exact/more").0, 404);
    assert_eq!(carrel.get("/nowhere").0, 404);
    assert_eq!(carrel.get("/.well-known/spin/health"), (200, "OK\n".into()));
}

#[test]
fn requests_carry_spin_headers() {
    let app = app();
    let carrel = app.start(&[]);
    let h = headers_of(&carrel, "/p5/users/ana/a/b?op=headers");
    assert_eq!(h["spin-path-info"], "/a/b");
    assert_eq!(h["spin-matched-route"], "/p5/users/:user_id/...");
    assert_eq!(h["spin-component-route"], "/p5/users/:user_id");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-path-match-user-id"], "ana");
    assert!(
        h.get("spin-path-match-user_id").is_none(),
        "Spin writes `_` as `-`"
    );
    assert_eq!(
        h["spin-full-url"],
        carrel.url("/p5/users/ana/a/b?op=headers")
    );
    assert!(
        h["spin-client-addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let h = headers_of(&carrel, "/p7/x?op=headers");
    assert_eq!(h["spin-path-info"], "/x");
    assert_eq!(h["spin-matched-route"], "/p7/...");
    assert_eq!(h[":method"], "GET");
}

#[test]
fn key_value_round_trips_across_sdks_requests_and_restarts() {
    let app = app();
    let carrel = app.start(&[]);
    assert_eq!(
        carrel.post("/p7/x?op=kv-set&key=flu", "J11"),
        (200, "ok".into())
    );
    assert_eq!(
        carrel.post("/p5/users/a/x?op=kv-set&key=gastro", "A09"),
        (200, "ok".into())
    );
    assert_eq!(
        carrel.get("/p5/users/a/x?op=kv-get&key=flu"),
        (200, "J11".into())
    );
    assert_eq!(
        carrel.get("/p7/x?op=kv-exists&key=gastro"),
        (200, "true".into())
    );
    assert_eq!(
        carrel.get("/p7/x?op=kv-keys"),
        (200, r#"["flu","gastro"]"#.into())
    );
    assert_eq!(
        carrel.get("/p5/users/a/x?op=kv-keys"),
        (200, r#"["flu","gastro"]"#.into())
    );
    assert_eq!(
        carrel.get("/p7/x?op=kv-delete&key=gastro"),
        (200, "ok".into())
    );
    assert_eq!(
        carrel.get("/p5/users/a/x?op=kv-exists&key=gastro"),
        (200, "false".into())
    );
    assert_eq!(carrel.get("/p7/x?op=kv-get&key=gastro").0, 404);
    drop(carrel);

    let carrel = app.start(&[]);
    assert_eq!(carrel.get("/p7/x?op=kv-get&key=flu"), (200, "J11".into()));
    assert!(app.path().join(".spin/sqlite_key_value.db").is_file());
}

#[test]
fn store_not_granted_is_access_denied_for_both_sdks() {
    let app = app();
    let carrel = app.start(&[]);
    assert_eq!(
        carrel.get("/p7/x?op=kv-get&store=secrets&key=k"),
        (403, "access-denied".into())
    );
    assert_eq!(
        carrel.get("/p5/users/a/x?op=kv-get&store=secrets&key=k"),
        (403, "access-denied".into())
    );
    assert_eq!(carrel.get("/p7/x?op=hello").0, 200);
}

#[test]
fn granted_store_without_configuration_fails_at_start_naming_component_and_label() {
    let text = manifest("").replace(
        r#"key_value_stores = ["default"]"#,
        r#"key_value_stores = ["default", "cache"]"#,
    );
    let app = TestApp::new(&text, support::PROBES);
    let stderr = app.start_fails();
    assert!(
        stderr.contains("`p5`") || stderr.contains("`p7`"),
        "{stderr}"
    );
    assert!(stderr.contains("`cache`"), "{stderr}");

    std::fs::write(
        app.path().join("runtime-config.toml"),
        "[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n",
    )
    .unwrap();
    let rc = app.path().join("runtime-config.toml");
    let carrel = support::Carrel::start(
        &app.manifest(),
        &["--runtime-config-file", rc.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        carrel.post("/p7/x?op=kv-set&store=cache&key=k", "v"),
        (200, "ok".into())
    );
    assert!(app.path().join("cache.db").is_file());
}

#[test]
fn variables_are_templated_and_overridden_from_the_environment() {
    let app = app();
    let carrel = app.start(&[]);
    assert_eq!(
        carrel.get("/p7/x?op=var&name=message"),
        (200, "hello from spin7".into())
    );
    assert_eq!(
        carrel.get("/p5/users/a/x?op=var&name=message"),
        (200, "hello from spin5".into())
    );
    let (status, body) = carrel.get("/p5/users/a/x?op=var&name=token");
    assert_eq!(status, 500);
    assert!(body.contains("Undefined"), "{body}");
    drop(carrel);

    let carrel = support::Carrel::start(
        &app.manifest(),
        &[],
        &[
            ("SPIN_VARIABLE_GREETING", "bonjour"),
            ("SPIN_VARIABLE_TOKEN", "t0k"),
        ],
    );
    assert_eq!(
        carrel.get("/p7/x?op=var&name=message"),
        (200, "bonjour from spin7".into())
    );
    assert_eq!(carrel.get("/p7/x?op=var&name=token"), (200, "t0k".into()));
}

#[test]
fn outbound_http_is_denied_unless_granted() {
    let app = app();
    let carrel = app.start(&[]);
    for path in [
        "/p7/x?op=outbound&url=http://127.0.0.1:9/",
        "/p5/users/a/x?op=outbound&url=http://example.com/",
    ] {
        let (status, body) = carrel.get(path);
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("HttpRequestDenied"), "{body}");
    }
    // Granted (port 1 on loopback): the request leaves the sandbox and fails to connect.
    let (status, body) = carrel.get("/p5/users/a/x?op=outbound&url=http://127.0.0.1:1/");
    assert_eq!(status, 502);
    assert!(!body.contains("HttpRequestDenied"), "{body}");
}

#[test]
fn components_see_only_their_declared_environment_and_files() {
    let text = manifest(r#"files = [{ source = "assets", destination = "/" }]"#);
    let app = TestApp::new(&text, support::PROBES);
    std::fs::create_dir(app.path().join("assets")).unwrap();
    std::fs::write(app.path().join("assets/codes.txt"), "J11,A09,J21").unwrap();
    let carrel = app.start(&[]);
    let env: serde_json::Value = serde_json::from_str(&carrel.get("/p7/x?op=env").1).unwrap();
    assert_eq!(env, serde_json::json!({"REGION": "bretagne"}));
    assert_eq!(carrel.get("/p5/users/a/x?op=env"), (200, "{}".into()));
    assert_eq!(
        carrel.get("/p7/x?op=file&path=/codes.txt"),
        (200, "J11,A09,J21".into())
    );
    assert_eq!(carrel.get("/p7/x?op=file&path=/spin.toml").0, 404);
    assert_eq!(carrel.get("/p5/users/a/x?op=file&path=/codes.txt").0, 404);
}

#[test]
fn unknown_manifest_field_stops_start_with_file_line_and_field() {
    let text = manifest("").replace(
        "key_value_stores = [\"default\"]\nallowed",
        "key_value_stores = [\"default\"]\nallowed_outbound_hostz = []\nallowed",
    );
    let app = TestApp::new(&text, support::PROBES);
    let stderr = app.start_fails();
    let line = text
        .lines()
        .position(|l| l.starts_with("allowed_outbound_hostz"))
        .unwrap()
        + 1;
    assert!(stderr.contains(&format!("spin.toml:{line}:")), "{stderr}");
    assert!(stderr.contains("allowed_outbound_hostz"), "{stderr}");
}
