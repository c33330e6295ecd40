//! Spin applications as Spin users write them, served by the real `carrel up`: wasip1
//! modules and wasm32-unknown-unknown ones (Spin's conformance guests), variables from `.env`, requests to the app itself, component logs, and what
//! carrel does not run refused by name.

mod support;

use support::{Carrel, TestApp, guests};

#[test]
fn a_wasip1_module_runs_and_reads_variables_from_dotenv_and_the_environment() {
    let manifest = r#"spin_manifest_version = 2

[application]
name = "variables"

[variables]
greeting = { required = true }

[[trigger.http]]
route = "/..."
component = "vars"

[component.vars]
source = "vars.wasm"
files = [{ source = "assets", destination = "/" }]
variables = { message = "{{ greeting }}, world" }
"#;
    let app = TestApp::new(manifest, &[("vars.wasm", guests::SPIN5_VARIABLES_WASIP1)]);
    std::fs::create_dir(app.path().join("assets")).unwrap();
    std::fs::write(app.path().join("assets/codes.txt"), "J11").unwrap();
    // Required and unset: the start fails naming it.
    let err = app.start_fails();
    assert!(err.contains("SPIN_VARIABLE_GREETING"), "{err}");

    std::fs::write(app.path().join(".env"), "SPIN_VARIABLE_GREETING=bonjour\n").unwrap();
    let carrel = app.start(&[]);
    assert_eq!(carrel.get("/?name=message"), (200, "bonjour, world".into()));
    // Its WASI preview 1 file reads go through the adapter to its `files`.
    assert_eq!(carrel.get("/?file=/codes.txt"), (200, "J11".into()));
    drop(carrel);

    // The process environment wins over .env, as in Spin.
    let carrel = Carrel::start(&app.manifest(), &[], &[("SPIN_VARIABLE_GREETING", "hola")]);
    assert_eq!(carrel.get("/?name=message"), (200, "hola, world".into()));
    drop(carrel);

    // Made a component once, then cached like any component.
    let cached: Vec<String> = std::fs::read_dir(app.path().join(".spin/cache"))
        .unwrap()
        .flat_map(|engine| std::fs::read_dir(engine.unwrap().path()).unwrap())
        .map(|f| f.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].contains("-p1-"), "{cached:?}");
}

#[test]
fn a_wasm32_unknown_unknown_module_of_bare_wit_bindgen_runs_as_a_component() {
    let manifest = r#"spin_manifest_version = 2

[application]
name = "unknown"

[[trigger.http]]
route = "/..."
component = "bare"

[component.bare]
source = "bare.wasm"
variables = { greeting = "hello from a module with no WASI imports" }
"#;
    let module = std::fs::read(guests::HTTP_UNKNOWN).unwrap();
    // A core module, as Spin's conformance guests are built, not a component.
    assert_eq!(&module[4..8], &[1, 0, 0, 0], "a core module's version");
    let app = TestApp::new(manifest, &[("bare.wasm", guests::HTTP_UNKNOWN)]);
    let carrel = app.start(&[]);
    assert_eq!(
        carrel.get("/anything"),
        (200, "hello from a module with no WASI imports".into())
    );
}

const SELF_MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "self"

[[trigger.http]]
route = "/caller/..."
component = "caller"

[[trigger.http]]
route = "/nogrant/..."
component = "nogrant"

[[trigger.http]]
route = { private = true }
component = "api"

[[trigger.http]]
route = "/p5/..."
component = "p5"

[component.caller]
source = "self_request.wasm"
allowed_outbound_hosts = ["http://self", "http://api.spin.internal"]

[component.nogrant]
source = "self_request.wasm"
allowed_outbound_hosts = ["*://*:*"]

[component.api]
source = "self_request.wasm"

[component.p5]
source = "spin5_probe.wasm"
allowed_outbound_hosts = ["http://self"]
"#;

fn self_app() -> TestApp {
    TestApp::new(
        SELF_MANIFEST,
        &[
            ("self_request.wasm", guests::SPIN7_SELF_REQUEST),
            ("spin5_probe.wasm", guests::SPIN5_PROBE),
        ],
    )
}

fn encoded(url: &str) -> String {
    url.replace('/', "%2F")
        .replace(':', "%3A")
        .replace('?', "%3F")
}

#[test]
fn self_requests_reach_the_apps_routes_in_process_when_granted() {
    let app = self_app();
    let carrel = app.start(&[]);
    // A relative URL (WASIp3), routed as a request from outside would be.
    let (status, body) = carrel.get(&format!("/caller/a?url={}", encoded("/p5/x?op=hello")));
    assert_eq!(
        (status, body.as_str()),
        (200, "status 200\nhello from spin5")
    );
    // http://self, to the caller's own route.
    let (status, body) = carrel.get(&format!(
        "/caller/a?url={}",
        encoded("http://self/caller/b")
    ));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("status 200\nhello from /caller/b"),
        "{body}"
    );
    // No socket is involved: the called component sees no client address.
    assert!(body.contains("spin-client-addr: 0.0.0.0:0"), "{body}");
    // A relative URL no route matches is the app's own 404.
    let (status, body) = carrel.get(&format!("/caller/a?url={}", encoded("/nowhere")));
    assert_eq!(status, 200);
    assert!(body.starts_with("status 404"), "{body}");
    // A relative URL from a WASIp2 component.
    assert_eq!(
        carrel.get(&format!("/p5/x?op=outbound&url={}", encoded("/caller/c"))),
        (200, "status 200".into())
    );
}

#[test]
fn service_chaining_reaches_a_private_component_named_in_the_grant_only() {
    let app = self_app();
    let carrel = app.start(&[]);
    let (status, body) = carrel.get(&format!(
        "/caller/a?url={}",
        encoded("http://api.spin.internal/v1/items")
    ));
    assert_eq!(status, 200, "{body}");
    assert!(
        body.starts_with("status 200\nhello from /v1/items\nspin-path-info: /v1/items"),
        "{body}"
    );
    // A private route is not reachable from outside.
    assert_eq!(carrel.get("/v1/items").0, 404);
    // Not granted: p5 is not named, and a wildcard host grants neither self nor chaining.
    for (path, url) in [
        ("/caller/a", "http://p5.spin.internal/x"),
        ("/nogrant/a", "/p5/x"),
        ("/nogrant/a", "http://self/p5/x"),
        ("/nogrant/a", "http://api.spin.internal/x"),
    ] {
        let (status, body) = carrel.get(&format!("{path}?url={}", encoded(url)));
        assert_eq!(status, 502, "{path} -> {url}: {body}");
        assert!(
            body.contains("HttpRequestDenied"),
            "{path} -> {url}: {body}"
        );
    }
}

#[test]
fn service_chaining_to_a_component_the_app_lacks_stops_the_start() {
    let text = SELF_MANIFEST.replace("http://api.spin.internal", "http://ghost.spin.internal");
    let app = TestApp::new(
        &text,
        &[
            ("self_request.wasm", guests::SPIN7_SELF_REQUEST),
            ("spin5_probe.wasm", guests::SPIN5_PROBE),
        ],
    );
    let err = app.start_fails();
    assert!(
        err.contains("ghost.spin.internal") && err.contains("`caller`"),
        "{err}"
    );
}

const STDOUT_MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "logs"

[[trigger.http]]
route = "/..."
component = "printer"

[component.printer]
source = "stdout.wasm"
"#;

#[test]
fn component_output_goes_to_log_files_in_the_state_dir_or_the_log_dir() {
    let app = TestApp::new(STDOUT_MANIFEST, &[("stdout.wasm", guests::SPIN5_STDOUT)]);
    let carrel = app.start(&[]);
    assert_eq!(
        carrel.get("/?line=first-marker"),
        (200, "wrote 1 lines".into())
    );
    drop(carrel);
    let logs = app.path().join(".spin/logs");
    let stdout = std::fs::read_to_string(logs.join("printer_stdout.txt")).unwrap();
    let stderr = std::fs::read_to_string(logs.join("printer_stderr.txt")).unwrap();
    assert_eq!(stdout, "first-marker\n");
    assert_eq!(stderr, "error: first-marker\n");

    let elsewhere = app.path().join("elsewhere");
    let carrel = app.start(&["--log-dir", elsewhere.to_str().unwrap()]);
    assert_eq!(carrel.get("/?line=second-marker").0, 200);
    drop(carrel);
    let stdout = std::fs::read_to_string(elsewhere.join("printer_stdout.txt")).unwrap();
    assert_eq!(stdout, "second-marker\n");
    let first = std::fs::read_to_string(logs.join("printer_stdout.txt")).unwrap();
    assert_eq!(first, "first-marker\n");
}

#[test]
fn the_host_log_has_no_colour_codes_when_it_is_not_a_terminal() {
    let app = TestApp::new(STDOUT_MANIFEST, &[("stdout.wasm", guests::SPIN5_STDOUT)]);
    let carrel = Carrel::start_keeping_log(&app.manifest(), &[]);
    assert_eq!(carrel.get("/?line=x").0, 200);
    let (_, log) = carrel.terminate_with_log();
    assert!(log.contains("application loaded"), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
}

#[test]
fn what_carrel_does_not_run_stops_the_start_by_name() {
    let with_redis = format!(
        "{STDOUT_MANIFEST}\n[[trigger.redis]]\nchannel = \"visits\"\ncomponent = \"printer\"\n"
    );
    let app = TestApp::new(&with_redis, &[("stdout.wasm", guests::SPIN5_STDOUT)]);
    let err = app.start_fails();
    assert!(
        err.contains("[[trigger.redis]]") && err.contains("spin.toml:"),
        "{err}"
    );

    let app = TestApp::new(STDOUT_MANIFEST, &[("stdout.wasm", guests::SPIN5_STDOUT)]);
    let rc = app.path().join("runtime-config.toml");
    std::fs::write(
        &rc,
        "[key_value_store.cache]\ntype = \"azure_cosmos\"\naccount = \"a\"\n",
    )
    .unwrap();
    let out = support::carrel_command()
        .args(["up", "-f"])
        .arg(app.manifest())
        .args(["--listen", "127.0.0.1:0", "--runtime-config-file"])
        .arg(&rc)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[key_value_store.cache]") && err.contains("\"azure_cosmos\""),
        "{err}"
    );
}
