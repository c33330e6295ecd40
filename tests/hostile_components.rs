//! Hostile components: guests that try to exhaust, escape or fingerprint their sandbox.
//! Each must fail safely, with a clear reason, and the host must answer the next request.
//! (Loops, memory growth, ungranted stores, studies that break their contract and
//! a leaking pseudonymiser are covered next to the features they attack: spin_limits.rs,
//! spin_http.rs, studies.rs, study_contract.rs, ingest.rs; SECURITY.md lists them all.)

mod support;

use support::TestApp;
use support::desk::probe_desk;

const PROBES_MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "hostile"

[[trigger.http]]
route = "/p7/..."
component = "p7"

[[trigger.http]]
route = "/p5/..."
component = "p5"

[component.p7]
source = "spin7_probe.wasm"

[component.p5]
source = "spin5_probe.wasm"
allowed_outbound_hosts = ["http://127.0.0.1:1"]
"#;

#[test]
fn a_component_that_recurses_without_end_gets_500_and_the_host_goes_on() {
    let app = TestApp::new(PROBES_MANIFEST, support::PROBES);
    let carrel = app.start(&[]);
    for (prefix, hello) in [("/p7", "hello from spin7"), ("/p5", "hello from spin5")] {
        let (status, body) = carrel.get(&format!("{prefix}/x?op=recurse"));
        assert_eq!(status, 500, "{prefix}: {body}");
        assert!(!body.starts_with("depth"), "{prefix}: {body}");
        assert_eq!(carrel.get(&format!("{prefix}/x")), (200, hello.to_owned()));
    }
}

#[test]
fn outbound_requests_back_to_the_host_itself_are_denied() {
    // Service chaining through the host's own listener would let a component reach
    // routes (and other components' capabilities) its manifest does not grant.
    let app = TestApp::new(PROBES_MANIFEST, support::PROBES);
    let carrel = app.start(&[]);
    let port = carrel.base.rsplit(':').next().unwrap().to_owned();
    for target in [
        format!("http://127.0.0.1:{port}/p7/x"),
        format!("http://localhost:{port}/p7/x"),
        format!("http://[::1]:{port}/p7/x"),
        format!("http://127.0.0.2:{port}/p7/x"),
        format!("http://0.0.0.0:{port}/p7/x"),
        "http://self/p7/x".to_owned(),
    ] {
        for prefix in ["/p7", "/p5"] {
            let (status, body) = carrel.get(&format!("{prefix}/x?op=outbound&url={target}"));
            assert_eq!(status, 502, "{prefix} -> {target}: {body}");
            assert!(
                body.contains("HttpRequestDenied"),
                "{prefix} -> {target}: {body}"
            );
        }
    }
    assert_eq!(carrel.get("/p7/x"), (200, "hello from spin7".to_owned()));
}

#[test]
fn a_study_that_recurses_without_end_fails_cleanly_and_the_next_run_works() {
    let d = probe_desk("");
    let record = d.run("probe", &["op=recurse"]);
    assert_eq!(record["status"], "failed", "{record}");
    // Rust's stack in linear memory overflows before wasm's call stack does: a trap on an
    // out-of-bounds access below address 0, not a corruption of the study's data. The
    // error text is the auditors'.
    let full = d.full_run(record["run_id"].as_str().unwrap());
    let error = full["error"].as_str().unwrap();
    assert!(error.contains("trapped"), "{error}");
    assert_eq!(d.run("probe", &["op=count"])["status"], "succeeded");
}

#[test]
fn a_study_building_a_gigabyte_output_is_stopped_at_its_memory_limit() {
    let d = probe_desk("");
    let record = d.run("probe", &["op=gigabyte"]);
    assert_eq!(record["status"], "failed", "{record}");
    let full = d.full_run(record["run_id"].as_str().unwrap());
    let error = full["error"].as_str().unwrap();
    assert!(error.contains("memory"), "{error}");
    let run_id = record["run_id"].as_str().unwrap();
    assert!(!d.study(&["results", run_id]).status.success());
    assert_eq!(d.run("probe", &["op=count"])["status"], "succeeded");
}

/// The observations the `fingerprint` op logged (a study's log is the auditors'), for a
/// run whose parameters are `from`.
fn fingerprint(d: &support::desk::Desk, from: &str) -> Vec<String> {
    let record = d.run("probe", &["op=fingerprint", &format!("from={from}")]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let full = d.full_run(record["run_id"].as_str().unwrap());
    let mut seen: Vec<String> = full["logs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|line| line.as_str()?.strip_prefix("info: ").map(str::to_owned))
        .collect();
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn a_study_sees_no_environment_files_or_fine_clocks_and_its_random_numbers_repeat() {
    let d = probe_desk("");
    let seen = fingerprint(&d, "2000-01-01");
    for expected in [
        "env-vars=0",
        "args=0",
        "open /: denied",
        "open .: denied",
        "open /etc/passwd: denied",
        "open /proc/self/environ: denied",
        "open /tmp: denied",
        "seconds-into-day=0",
        "sub-second-nanos=0",
        "monotonic-elapsed-ns=0",
    ] {
        assert!(seen.iter().any(|s| s == expected), "{expected} in {seen:?}");
    }
    // Random numbers come from the run's parameters, not the host: the same run gives
    // the same numbers, other parameters others (both periods hold every row).
    assert_eq!(fingerprint(&d, "2000-01-01"), seen);
    let random = |seen: &[String]| seen.iter().find(|s| s.starts_with("random=")).cloned();
    assert!(random(&seen).is_some(), "{seen:?}");
    assert_ne!(random(&fingerprint(&d, "2000-01-02")), random(&seen));
}
