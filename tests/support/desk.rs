//! A warehouse for study tests: the real `carrel` binary, synthetic consultations of one
//! association ingested through the real ingestion components, an auditor and a
//! researcher token, and the study commands as methods. `run` gives a run as a researcher
//! sees it, `full_run` as an auditor does (`carrel audit run`).

use super::{TestApp, carrel_command, carrel_ok as run, guests};
use std::path::{Path, PathBuf};
use std::process::Output;

pub const INGESTION: &str = r#"
[[trigger.http]]
route = "/ingest/fhir"
component = "ingest-fhir"

[component.ingest-fhir]
source = "ingest_fhir.wasm"
key_value_stores = ["default"]
[component.ingest-fhir.tool.carrel]
auth = "ingest"
ingest = { dataset = "consultations", pseudonymiser = "pseudonymise" }

[component.pseudonymise]
source = "pseudonymise.wasm"
[component.pseudonymise.tool.carrel]
keyed_hash_domains = ["patient", "consultation"]
"#;

pub fn study_section(id: &str, wasm: &str, columns: &str, extra: &str) -> String {
    format!(
        r#"
[[trigger.study]]
component = "{id}"

[component.{id}]
source = "{wasm}"

[component.{id}.tool.carrel.study]
title = "Test study {id}"
purpose = "Testing the study desk"
legal_basis = "test"
principal_investigator = "Dr Test"
expires = "2099-12-31"
time_limit_seconds = 5
memory_limit_mb = 64
datasets = {{ consultations = [{columns}] }}
{extra}
"#
    )
}

/// A warehouse holding synthetic consultations of one association, an auditor token and
/// a researcher token.
pub struct Desk {
    pub app: TestApp,
    pub state: PathBuf,
    pub auditor: String,
    pub researcher: String,
    pub researcher_token: String,
    pub auditor_token: String,
    pub truth: serde_json::Value,
}

pub fn token(state: &Path, role: &str) -> (String, String) {
    let out = run(state, &["tokens", "add", "--role", role]);
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    (id, out.lines().last().unwrap().trim().to_owned())
}

/// A token whose holder is `name`: (id, token).
pub fn named_token(state: &Path, role: &str, name: &str) -> (String, String) {
    let out = run(state, &["tokens", "add", "--role", role, "--name", name]);
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    (id, out.lines().last().unwrap().trim().to_owned())
}

/// Generates `consultations` synthetic consultations (seed `seed`) under the app directory
/// and sends them through `carrel import` into `state` as association `sos-test`; returns
/// the generator's ground truth.
pub fn import_synthetic(
    app: &TestApp,
    state: &Path,
    seed: u64,
    consultations: u32,
) -> serde_json::Value {
    import_synthetic_as(app, state, seed, consultations, "sos-test")
}

/// [`import_synthetic`] as association `association`.
pub fn import_synthetic_as(
    app: &TestApp,
    state: &Path,
    seed: u64,
    consultations: u32,
    association: &str,
) -> serde_json::Value {
    let data = app.path().join("synth");
    let out = carrel_command()
        .args(["synth", "--seed"])
        .arg(seed.to_string())
        .arg("--consultations")
        .arg(consultations.to_string())
        .arg("--out")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("ground-truth.json")).unwrap()).unwrap();
    let imported = carrel_command()
        .args(["import", "-f"])
        .arg(app.manifest())
        .arg("--state-dir")
        .arg(state)
        .arg(format!("--association={association}"))
        .args(
            truth["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| data.join(f.as_str().unwrap())),
        )
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    truth
}

pub fn desk(studies: &str, consultations: u32, runtime_config: Option<&str>) -> Desk {
    let manifest = format!(
        "spin_manifest_version = 2\n[application]\nname = \"studies-test\"\n{INGESTION}\n{studies}"
    );
    let app = TestApp::new(
        &manifest,
        &[
            ("ingest_fhir.wasm", guests::INGEST_FHIR),
            ("pseudonymise.wasm", guests::PSEUDONYMISE),
            ("study_probe.wasm", guests::STUDY_PROBE),
            ("ili_weekly.wasm", guests::ILI_WEEKLY),
            ("activity.wasm", guests::ACTIVITY),
            ("score_probe.wasm", guests::SCORE_PROBE),
            ("glm_fit.wasm", guests::GLM_FIT),
            ("model_eval.wasm", guests::MODEL_EVAL),
        ],
    );
    if let Some(config) = runtime_config {
        std::fs::write(app.path().join("runtime-config.toml"), config).unwrap();
    }
    let state = app.path().join("state");
    run(&state, &["keys", "init"]);
    let truth = import_synthetic(&app, &state, 5, consultations);
    let (auditor, auditor_token) = token(&state, "auditor");
    let (researcher, researcher_token) = token(&state, "researcher");
    Desk {
        app,
        state,
        auditor,
        researcher,
        researcher_token,
        auditor_token,
        truth,
    }
}

impl Desk {
    pub fn study(&self, args: &[&str]) -> Output {
        let mut command = carrel_command();
        command
            .arg("study")
            .args(args)
            .arg("-f")
            .arg(self.app.manifest());
        command.arg("--state-dir").arg(&self.state);
        let config = self.app.path().join("runtime-config.toml");
        if config.is_file() {
            command.arg("--runtime-config-file").arg(config);
        }
        command.output().unwrap()
    }

    pub fn study_ok(&self, args: &[&str]) -> String {
        let out = self.study(args);
        assert!(
            out.status.success(),
            "carrel study {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Submits `id` as the operator and approves it as the auditor.
    pub fn approve(&self, id: &str) {
        self.study_ok(&["submit", id]);
        self.study_ok(&["approve", id, "--token", &self.auditor_token]);
    }

    /// Runs `study` with `param` (a probe's op that prints, logs or fails with rows) and
    /// asserts that the rows reach the auditors' full record, never what the researcher
    /// is shown.
    pub fn assert_rows_reach_the_auditor_only(&self, study: &str, param: &str) {
        let out = self.study(&["run", study, "--json", "--param", param]);
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !leaks_rows(&shown),
            "{param}: the researcher saw rows: {shown}"
        );
        let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let full = self.full_run(record["run_id"].as_str().unwrap());
        let kept = format!("{} {}", full["logs"], full["error"]);
        assert!(
            leaks_rows(&kept),
            "{param}: the auditor sees what it wrote: {full}"
        );
    }

    /// A run as recorded in full, as an auditor sees it (`carrel audit run`).
    pub fn full_run(&self, run_id: &str) -> serde_json::Value {
        serde_json::from_str(&run(&self.state, &["audit", "run", run_id])).unwrap()
    }

    /// Runs `id` as the operator and returns the run as a researcher sees it.
    pub fn run(&self, id: &str, params: &[&str]) -> serde_json::Value {
        let mut args = vec!["run", id, "--json"];
        for p in params {
            args.extend(["--param", p]);
        }
        let out = self.study(&args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no run record ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub fn csv(&self, run_id: &str) -> Vec<std::collections::BTreeMap<String, String>> {
        let text = self.study_ok(&["results", run_id, "--format", "csv"]);
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        lines
            .map(|line| {
                header
                    .iter()
                    .zip(line.split(','))
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }

    pub fn audit_actions(&self) -> Vec<String> {
        let out = run(&self.state, &["audit", "export"]);
        out.lines()
            .map(|l| {
                let entry: serde_json::Value = serde_json::from_str(l).unwrap();
                entry["action"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

/// The columns the probe is handed.
pub const PROBE_COLUMNS: &str = r#""date", "age_years", "departement""#;

/// Every behaviour of the probe (tests/programs/study-probe), declared as its `op`.
pub const PROBE_OPS: &str = r#"["count", "twice", "out-of-range", "bad-label", "log-rows", "fail-rows", "all-rows-one-cell", "counter", "few", "carrier", "fail-target", "random", "loop", "memory", "recurse", "gigabyte", "fingerprint"]"#;

/// The probe's section: unit `unit`, its table by `dimensions` (a TOML list) with measures
/// `n` and `other`; `extra` follows the table (more table keys, or other subtables).
pub fn probe_section_by(id: &str, unit: &str, dimensions: &str, extra: &str) -> String {
    study_section(
        id,
        "study_probe.wasm",
        PROBE_COLUMNS,
        &format!(
            "unit = \"{unit}\"\nparams = {{ op = {PROBE_OPS} }}\n\
             [component.{id}.tool.carrel.study.table]\n\
             dimensions = {dimensions}\nmeasures = [\"n\", \"other\"]\n{extra}"
        ),
    )
}

/// The probe by consultation, counting by sex.
pub fn probe_section(id: &str, extra: &str) -> String {
    probe_section_by(id, "consultation", r#"["sex"]"#, extra)
}

/// The shipped `ili-weekly` study's section, as spin.toml has it.
pub fn ili_section(extra: &str) -> String {
    study_section(
        "ili-weekly",
        "ili_weekly.wasm",
        r#""age_years", "diagnoses""#,
        &format!(
            r#"[component.ili-weekly.tool.carrel.study.table]
dimensions = ["week", "region", "age_class"]
measures = ["coded", "ili", "gastro", "bronchiolitis"]
shares = {{ ili_share = ["ili", "coded"], gastro_share = ["gastro", "coded"], bronchiolitis_share = ["bronchiolitis", "coded"] }}
max_per_patient = 3
by = {{ national = ["week"] }}
{extra}"#
        ),
    )
}

/// The shipped `activity` study's section, as spin.toml has it.
pub fn activity_section(extra: &str) -> String {
    study_section(
        "activity",
        "activity.wasm",
        "",
        &format!(
            r#"[component.activity.tool.carrel.study.table]
dimensions = ["association", "week", "visit_type"]
measures = ["consultations"]
max_per_patient = 3
{extra}"#
        ),
    )
}

pub fn probe_desk(extra: &str) -> Desk {
    let d = desk(&probe_section("probe", extra), 1500, None);
    d.approve("probe");
    d
}

/// The sum of a released count column of a run.
pub fn total(d: &Desk, record: &serde_json::Value, column: &str) -> u64 {
    d.csv(record["run_id"].as_str().unwrap())
        .iter()
        .map(|r| r[column].parse::<u64>().unwrap_or(0))
        .sum()
}

/// Whether text shows what a row-level leak of the probes would: département codes,
/// ages and dates as they write them (`dep=35 age=87 date=19723`).
pub fn leaks_rows(text: &str) -> bool {
    text.contains("dep=") || text.contains("age=") || text.contains("date=")
}
