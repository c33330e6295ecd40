use super::*;

const APP: &str = r#"spin_manifest_version = 2

[application]
name = "demo"

[variables]
greeting = { default = "hello" }
token = { required = true, secret = true }

[[trigger.http]]
route = "/hello/..."
component = "hello"

[[trigger.http]]
route = { private = true }
component = "hello"

[[trigger.study]]
component = "ili"

[component.hello]
source = "hello.wasm"
key_value_stores = ["default"]
variables = { message = "{{ greeting }}, world", secret = "{{ token }}" }

[component.hello.tool.carrel]
anything = "kept"

[component.ili]
source = "ili.wasm"
"#;

fn parse_app(text: &str) -> Result<LoadedManifest, ManifestError> {
    parse(Path::new("/apps/spin.toml"), text)
}

#[test]
fn valid_manifest_keeps_http_routes_custom_triggers_and_tool_tables() {
    let m = parse_app(APP).unwrap();
    assert_eq!(m.http_triggers.len(), 2);
    assert!(matches!(m.http_triggers[1].route, HttpRoute::Private(_)));
    assert_eq!(m.manifest.trigger["study"].len(), 1);
    assert_eq!(
        m.manifest.component["hello"].tool["carrel"]["anything"].as_str(),
        Some("kept")
    );
    assert_eq!(m.base_dir(), Path::new("/apps"));
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let text = APP.replace("key_value_stores", "key_value_storez");
    let err = parse_app(&text).unwrap_err().to_string();
    let line = text
        .lines()
        .position(|l| l.starts_with("key_value_storez"))
        .unwrap()
        + 1;
    assert!(
        err.starts_with(&format!("/apps/spin.toml:{line}:")),
        "{err}"
    );
    assert!(err.contains("key_value_storez"), "{err}");
}

#[test]
fn unknown_field_in_http_trigger_names_its_line() {
    let text = APP.replace("route = \"/hello/...\"", "route = \"/hello/...\"\nroot = 1");
    let err = parse_app(&text).unwrap_err().to_string();
    assert!(err.starts_with("/apps/spin.toml:12:"), "{err}");
    assert!(err.contains("root"), "{err}");
}

#[test]
fn trigger_naming_a_missing_component_is_refused() {
    let err = parse_app(&APP.replace("component = \"ili\"", "component = \"nope\""))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn manifest_version_one_is_refused() {
    let err = parse_app(&APP.replace("spin_manifest_version = 2", "spin_manifest_version = 1"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("version 2"), "{err}");
}

#[test]
fn template_of_undeclared_variable_is_refused() {
    let err = parse_app(&APP.replace("{{ greeting }}", "{{ nobody }}"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn environment_overrides_defaults_and_fills_required_variables() {
    let m = parse_app(APP).unwrap();
    let env = |k: &str| match k {
        "SPIN_VARIABLE_TOKEN" => Some("s3cret".to_owned()),
        "SPIN_VARIABLE_GREETING" => Some("bonjour".to_owned()),
        _ => None,
    };
    let vars = resolve_component_variables(&m.manifest, &env).unwrap();
    assert_eq!(vars["hello"]["message"], Ok("bonjour, world".to_owned()));
    assert_eq!(vars["hello"]["secret"], Ok("s3cret".to_owned()));
}

#[test]
fn missing_required_variable_stops_the_app() {
    let m = parse_app(APP).unwrap();
    let err = resolve_component_variables(&m.manifest, &|_| None).unwrap_err();
    assert_eq!(err, VariableError::Missing("token".into()));
    assert!(err.to_string().contains("SPIN_VARIABLE_TOKEN"));
}

#[test]
fn outbound_host_templates_take_component_then_application_variables() {
    let app = APP.replace(
        "key_value_stores = [\"default\"]",
        "key_value_stores = [\"default\"]\nallowed_outbound_hosts = [\"https://{{ message }}\", \"*://127.0.0.1:{{ greeting }}\", \"http://plain\"]",
    );
    let m = parse_app(&app).unwrap();
    let env = |k: &str| (k == "SPIN_VARIABLE_TOKEN").then(|| "t".to_owned());
    let vars = resolve_component_variables(&m.manifest, &env).unwrap();
    let hosts = resolve_outbound_hosts(&m.manifest, &env, &vars).unwrap();
    assert_eq!(
        hosts["hello"],
        [
            "https://hello, world",
            "*://127.0.0.1:hello",
            "http://plain"
        ]
    );
    assert!(hosts["ili"].is_empty());
}

#[test]
fn an_outbound_host_template_of_an_unknown_variable_is_refused() {
    let app = APP.replace(
        "key_value_stores = [\"default\"]",
        "key_value_stores = [\"default\"]\nallowed_outbound_hosts = [\"https://{{ nowhere }}\"]",
    );
    let err = parse_app(&app).unwrap_err().to_string();
    assert!(
        err.contains("nowhere") && err.contains("allowed_outbound_hosts"),
        "{err}"
    );
}
