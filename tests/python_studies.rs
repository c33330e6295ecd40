//! Studies in Python (sdk/python, built with componentize-py): the Python ILI study
//! releases exactly the table of the shipped Rust one; the sandbox gives a Python study a
//! per-patient seed, the run's day, a log for auditors and nothing else; the hostile
//! studies of tests/study_contract.rs, written in Python, get the same refusals; and a
//! researcher's `study new --lang python`, `carrel build` and `study try --synthetic`
//! work as the README says. Each run goes through the real binary on ingested data.

mod support;

use std::collections::BTreeMap;
use support::desk::{Desk, desk, ili_section, probe_section_by, total};
use support::{carrel_command, python};

/// A study's time for a Python interpreter: the test sections give Rust studies 5 s
/// (and 64 MiB, which a Python study needs no more than).
fn for_python(section: String) -> String {
    section.replace("time_limit_seconds = 5", "time_limit_seconds = 60")
}

fn exact_policy(id: &str) -> String {
    format!(
        "[component.{id}.tool.carrel.study.disclosure]\nmin_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n"
    )
}

/// A warehouse of `consultations` synthetic consultations whose studies are `studies`,
/// sharing compiled components with the other tests.
fn warehouse(studies: &str, consultations: u32) -> Desk {
    let d = desk(
        studies,
        consultations,
        Some("[disclosure]\nmin_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n"),
    );
    python::share_compiled_components(&d.state);
    d
}

/// The Python probe's section (tests/python/probe), as the Rust probe's: unit `unit`,
/// counts by sex, exact counts, and a patient may add each of its consultations; a
/// hostile study that never returns stops at `time_limit` seconds.
fn python_probe_limited(id: &str, unit: &str, time_limit: u32) -> String {
    let ops = r#"["count", "twice", "out-of-range", "bad-measure", "bad-label", "log-rows", "print-rows", "fail-rows", "counter", "few", "carrier", "fail-target", "random", "urandom", "flood", "loop", "memory", "fingerprint"]"#;
    let wasm = python::study("probe");
    let section = probe_section_by(id, unit, r#"["sex"]"#, "max_per_patient = 255\n")
        .replace("study_probe.wasm", wasm.to_str().unwrap())
        .replace(support::desk::PROBE_OPS, ops);
    for_python(section).replace(
        "time_limit_seconds = 60",
        &format!("time_limit_seconds = {time_limit}"),
    ) + &exact_policy(id)
}

fn python_probe(id: &str, unit: &str) -> String {
    python_probe_limited(id, unit, 10)
}

/// A warehouse with the Python probe approved, by consultation (`py-probe`) and by
/// patient (`py-by-patient`), and by consultation with time for the locality check's
/// fresh instances to flood their logs too (`py-flood`: about 40 instances of 10,000
/// lines each, which took more than 10 s on a slower machine).
fn probe_warehouse() -> Desk {
    let d = warehouse(
        &(python_probe("py-probe", "consultation")
            + &python_probe("py-by-patient", "patient")
            + &python_probe_limited("py-flood", "consultation", 60)),
        3000,
    );
    d.approve("py-probe");
    d.approve("py-by-patient");
    d.approve("py-flood");
    d
}

fn log_lines(full: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(full["logs"].clone()).unwrap()
}

#[test]
fn the_python_ili_study_releases_exactly_the_table_of_the_rust_study() {
    if !python::available() {
        return;
    }
    let wasm = python::study("ili_weekly");
    let rust = ili_section(&exact_policy("ili-weekly"));
    let python = for_python(
        ili_section(&exact_policy("ili-weekly"))
            .replace("ili-weekly", "ili-python")
            .replace("ili_weekly.wasm", wasm.to_str().unwrap()),
    );
    let d = warehouse(&(rust + &python), 6000);
    d.approve("ili-weekly");
    d.approve("ili-python");
    for params in [&[][..], &["by=national"][..]] {
        let table = |id: &str| -> Vec<BTreeMap<String, String>> {
            let record = d.run(id, params);
            assert_eq!(record["status"], "succeeded", "{id} {params:?}: {record}");
            d.csv(record["run_id"].as_str().unwrap())
        };
        let from_rust = table("ili-weekly");
        let from_python = table("ili-python");
        assert!(from_rust.len() > 10, "{params:?}: {} rows", from_rust.len());
        let ili: u64 = from_rust
            .iter()
            .map(|r| r["ili"].parse::<u64>().unwrap())
            .sum();
        assert!(ili > 0, "the synthetic winters have influenza");
        assert_eq!(from_python, from_rust, "{params:?}");
    }
}

#[test]
fn a_python_study_draws_random_numbers_from_its_patients_seed_and_nothing_else() {
    if !python::available() {
        return;
    }
    let d = probe_warehouse();
    // `random` is reseeded for each patient: the run passes the locality check, and a
    // repeat on the same data releases the same table.
    let first = d.run("py-probe", &["op=random"]);
    assert_eq!(first["status"], "succeeded", "{first}");
    let (n, other) = (total(&d, &first, "n"), total(&d, &first, "other"));
    let consultations = d.truth["consultations"].as_u64().unwrap();
    assert_eq!(n + other, consultations);
    assert!(
        n > consultations / 3 && other > consultations / 3,
        "{n} {other}"
    );
    let full = d.full_run(first["run_id"].as_str().unwrap());
    assert!(
        full["locality"]["groups_checked"].as_u64().unwrap() > 0,
        "{full}"
    );
    let again = d.run("py-by-patient", &["op=random"]);
    assert_eq!(again["status"], "succeeded", "{again}");
    let repeat = d.run("py-by-patient", &["op=random"]);
    assert_eq!(repeat["output_sha256"], again["output_sha256"]);
    // `os.urandom` reads the run-wide source: what a patient draws depends on who came
    // before, and the host refuses the run.
    let record = d.run("py-probe", &["op=urandom"]);
    assert_eq!(record["status"], "refused", "{record}");
    assert_eq!(record["researcher_error"], "not patient-local");
}

#[test]
fn a_python_study_sees_the_run_day_and_no_file_socket_or_environment() {
    if !python::available() {
        return;
    }
    let d = probe_warehouse();
    let today = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 86_400
    };
    let before = today();
    let record = d.run("py-probe", &["op=fingerprint"]);
    let after = today();
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(record.get("logs").is_none_or(|l| l.is_null()), "{record}");
    let full = d.full_run(record["run_id"].as_str().unwrap());
    let logs = log_lines(&full);
    let seen = |line: &str| logs.iter().any(|l| l == &format!("stdout: {line}"));
    for line in [
        "env-vars=0",
        "argv=[]",
        "seconds-into-day=0",
        "sub-second=0.0",
        "monotonic-elapsed=0.0",
        "perf-counter=0.0",
        "listdir /: denied (FileNotFoundError)",
    ] {
        assert!(seen(line), "{line} not in {logs:?}");
    }
    for path in ["/", ".", "/etc/passwd", "/proc/self/environ", "/tmp/x"] {
        let line = logs
            .iter()
            .find(|l| l.starts_with(&format!("stdout: open {path}: ")))
            .unwrap_or_else(|| panic!("{path}: {logs:?}"));
        assert!(line.contains("denied"), "{line}");
    }
    assert!(
        logs.iter()
            .any(|l| l.starts_with("stdout: write /tmp: denied")),
        "{logs:?}"
    );
    assert!(!std::path::Path::new("/tmp/carrel-probe-written").exists());
    assert!(
        logs.iter().any(|l| l.starts_with("stdout: socket: denied")),
        "{logs:?}"
    );
    let day: u64 = logs
        .iter()
        .find_map(|l| l.strip_prefix("stdout: day="))
        .unwrap_or_else(|| panic!("{logs:?}"))
        .parse()
        .unwrap();
    assert!((before..=after).contains(&day), "{day} {before}");
}

#[test]
fn what_a_python_study_prints_or_logs_reaches_the_auditor_only_and_bounded() {
    if !python::available() {
        return;
    }
    let d = probe_warehouse();
    for op in ["op=print-rows", "op=log-rows", "op=fail-rows"] {
        d.assert_rows_reach_the_auditor_only("py-probe", op);
    }
    let printed = d.run("py-probe", &["op=print-rows"]);
    let logs = log_lines(&d.full_run(printed["run_id"].as_str().unwrap()));
    assert!(logs[0].starts_with("stdout: dep="), "{logs:?}");
    assert!(logs[1].starts_with("stderr: dep="), "{logs:?}");
    let failed = d.run("py-probe", &["op=fail-rows"]);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["researcher_error"], "failed");
    // 10,000 printed lines: the log keeps its bound and says how many it dropped.
    let flood = d.run("py-flood", &["op=flood"]);
    assert_eq!(flood["status"], "succeeded", "{flood}");
    let logs = log_lines(&d.full_run(flood["run_id"].as_str().unwrap()));
    assert_eq!(logs.len(), 201, "{:?}", &logs[..3]);
    assert_eq!(logs[0], "stdout: line 0");
    assert!(
        logs[200].starts_with("(") && logs[200].ends_with("more messages dropped)"),
        "{}",
        logs[200]
    );
}

#[test]
fn hostile_python_studies_get_the_refusals_of_hostile_rust_studies() {
    if !python::available() {
        return;
    }
    let d = probe_warehouse();
    let consultations = d.truth["consultations"].as_u64().unwrap();
    let honest = d.run("py-probe", &["op=count"]);
    assert_eq!(honest["status"], "succeeded", "{honest}");
    assert_eq!(total(&d, &honest, "n"), consultations);
    let twice = d.run("py-probe", &["op=twice"]);
    assert_eq!(total(&d, &twice, "n"), consultations);
    let full = d.full_run(twice["run_id"].as_str().unwrap());
    assert_eq!(full["contributions_dropped"], consultations, "{full}");

    for op in ["op=out-of-range", "op=bad-measure", "op=bad-label"] {
        let record = d.run("py-probe", &[op]);
        assert_eq!(record["status"], "failed", "{op}: {record}");
        assert_eq!(record["researcher_error"], "contract violation", "{op}");
        assert!(record["output_sha256"].is_null(), "{record}");
    }
    for (id, op) in [
        ("py-probe", "op=carrier"),
        ("py-probe", "op=counter"),
        ("py-probe", "op=few"),
        ("py-by-patient", "op=counter"),
    ] {
        let record = d.run(id, &[op]);
        assert_eq!(record["status"], "refused", "{id} {op}: {record}");
        assert_eq!(record["researcher_error"], "not patient-local", "{op}");
        assert!(record["output_sha256"].is_null());
    }
    let target = d.run("py-probe", &["op=fail-target"]);
    assert_eq!(target["status"], "failed", "{target}");
    assert_eq!(target["researcher_error"], "failed");
    assert!(target.get("error").is_none_or(|e| e.is_null()), "{target}");
    for (op, category) in [("op=loop", "timed out"), ("op=memory", "failed")] {
        let record = d.run("py-probe", &[op]);
        assert_eq!(record["status"], "failed", "{op}: {record}");
        assert_eq!(record["researcher_error"], category, "{op}: {record}");
    }
}

#[test]
fn the_python_sdk_passes_its_own_tests() {
    let out = std::process::Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "tests"])
        .current_dir(python::repository().join("sdk/python"))
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_researcher_writes_builds_and_tries_a_python_study() {
    if !python::available() {
        return;
    }
    let repo = python::repository();
    let root = tempfile::tempdir().unwrap();
    // The SDK and the WIT where a clone of the repository has them.
    std::fs::create_dir_all(root.path().join("sdk")).unwrap();
    std::os::unix::fs::symlink(repo.join("sdk/python"), root.path().join("sdk/python")).unwrap();
    std::os::unix::fs::symlink(repo.join("wit"), root.path().join("wit")).unwrap();
    let manifest = root.path().join("spin.toml");
    std::fs::write(
        &manifest,
        "spin_manifest_version = 2\n\n[application]\nname = \"python-scaffold-test\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.path().join(".spin")).unwrap();
    python::share_compiled_components(&root.path().join(".spin"));
    let carrel = |args: &[&str]| {
        let out = carrel_command()
            .args(args)
            .arg("-f")
            .arg(&manifest)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "carrel {args:?}: {text}");
        text
    };
    let said = carrel(&["study", "new", "flu-py", "--lang", "python"]);
    assert!(said.contains("carrel build -c flu-py"), "{said}");
    let project = root.path().join("components/studies/flu-py");
    for file in ["app.py", "test_app.py", "README.md", "study.toml.example"] {
        assert!(project.join(file).is_file(), "{file}");
    }
    let spin = std::fs::read_to_string(&manifest).unwrap();
    assert!(spin.contains("[component.flu-py.build]"), "{spin}");
    // Its own tests pass on dummy data.
    let tests = std::process::Command::new("python3")
        .args(["-m", "unittest"])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(tests.status.success(), "{tests:?}");

    carrel(&["build", "-c", "flu-py"]);
    assert!(project.join("flu_py.wasm").is_file());
    let tried = carrel(&[
        "study",
        "try",
        "flu-py",
        "--synthetic",
        "--consultations",
        "2000",
    ]);
    assert!(tried.contains("succeeded"), "{tried}");
    assert!(tried.contains("age_class"), "{tried}");
    assert!(tried.contains("ili_share"), "{tried}");
    // The compiled interpreter is cached in the state directory, keyed by the
    // component's sha256: the next try or run loads it instead of compiling it again.
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(project.join("flu_py.wasm")).unwrap(),
        ))
    };
    let cached = std::fs::read_dir(root.path().join(".spin/cache"))
        .unwrap()
        .any(|engine| {
            engine
                .unwrap()
                .path()
                .join(format!("{sha256}.cwasm"))
                .is_file()
        });
    assert!(cached, "no compiled component cached for {sha256}");
}
