//! Studies end to end: the real `carrel` binary, a warehouse filled through the real
//! ingestion components, study components built for wasm32-wasip2, the approval state
//! machine, the sandbox's limits and disclosure control. `d.run` gives a run as a
//! researcher sees it; what only auditors see (error text, what was read and denied) is
//! read with `d.full_run`.

mod support;

use support::desk::{
    PROBE_COLUMNS, activity_section, desk, ili_section, probe_desk, probe_section, probe_section_by,
};
use support::{TestApp, carrel_command, guests};

#[test]
fn an_approved_study_runs_and_its_counts_leave_rounded() {
    let d = probe_desk("max_per_patient = 100\n");
    let record = d.run("probe", &["op=count"]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let full = d.full_run(record["run_id"].as_str().unwrap());
    assert_eq!(full["rows_read"], d.truth["consultations"]);
    assert!(!full["segments_read"].as_array().unwrap().is_empty());
    let rows = d.csv(record["run_id"].as_str().unwrap());
    let total: u64 = rows.iter().map(|r| r["n"].parse::<u64>().unwrap()).sum();
    assert_eq!(total % 5, 0, "released counts are rounded to 5");
    let consultations = d.truth["consultations"].as_u64().unwrap();
    // Each released count carries cell-key noise (scale 3, standard deviation 4.2) and
    // rounding to 5: a few standard deviations per row.
    assert!(
        total.abs_diff(consultations) <= 20 * rows.len() as u64,
        "{total} released for {consultations} consultations in {} rows",
        rows.len()
    );
    assert!(d.audit_actions().contains(&"study.run".to_owned()));
}

#[test]
fn a_study_that_loops_or_exhausts_memory_fails_and_the_host_goes_on() {
    let d = probe_desk("");
    let looping = d.run("probe", &["op=loop"]);
    assert_eq!(looping["status"], "failed");
    assert_eq!(looping["researcher_error"], "timed out", "{looping}");
    let looping = d.full_run(looping["run_id"].as_str().unwrap());
    assert!(
        looping["error"].as_str().unwrap().contains("deadline"),
        "{looping}"
    );
    let greedy = d.run("probe", &["op=memory"]);
    assert_eq!(greedy["status"], "failed");
    assert_eq!(greedy["researcher_error"], "failed", "{greedy}");
    let greedy = d.full_run(greedy["run_id"].as_str().unwrap());
    assert!(
        greedy["error"].as_str().unwrap().contains("memory"),
        "{greedy}"
    );
    let fine = d.run("probe", &["op=count"]);
    assert_eq!(fine["status"], "succeeded", "{fine}");
}

#[test]
fn a_table_with_more_cells_than_the_policy_allows_is_refused_and_releases_nothing() {
    let section = probe_section_by(
        "probe",
        "consultation",
        r#"["week", "departement"]"#,
        "[component.probe.tool.carrel.study.disclosure]\nmax_rows = 20\n",
    );
    let d = desk(&section, 1500, None);
    d.approve("probe");
    let record = d.run("probe", &["op=count"]);
    assert_eq!(record["status"], "refused", "{record}");
    assert_eq!(record["researcher_error"], "refused by disclosure control");
    let full = d.full_run(record["run_id"].as_str().unwrap());
    assert!(
        full["error"].as_str().unwrap().contains("max_rows"),
        "{full}"
    );
    let none = d.study(&["results", record["run_id"].as_str().unwrap()]);
    assert!(!none.status.success(), "a refused run has no results");
}

#[test]
fn small_weekly_counts_are_withheld_with_their_patient_counts() {
    // Without noise (which the operator allows here), withholding is exact: every week
    // holds a handful of consultations, so every row is there and every count withheld.
    let exact = "noise_scale = 0\nepsilon_budget = 0\n";
    let section = probe_section_by("probe", "consultation", r#"["week"]"#, "")
        + "[component.probe.tool.carrel.study.disclosure]\n"
        + exact;
    let d = desk(&section, 300, Some(&format!("[disclosure]\n{exact}")));
    d.approve("probe");
    let record = d.run("probe", &["op=count"]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let rows = d.csv(record["run_id"].as_str().unwrap());
    assert!(!rows.is_empty());
    // 300 consultations over two winters: a handful a week, all withheld.
    for row in &rows {
        assert_eq!(row["n"], "", "{row:?}");
        assert_eq!(row["n_patients"], "", "{row:?}");
    }

    // With the default noise, a row whose counts are all withheld is left out, and no
    // released count is 1 to 7.
    let d = desk(
        &probe_section_by("probe", "consultation", r#"["week"]"#, ""),
        300,
        None,
    );
    d.approve("probe");
    let record = d.run("probe", &["op=count"]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let noisy = d.csv(record["run_id"].as_str().unwrap());
    assert!(
        noisy.len() < rows.len() / 2,
        "{} of {}",
        noisy.len(),
        rows.len()
    );
    for row in &noisy {
        for column in ["n", "n_patients"] {
            if let Ok(n) = row[column].parse::<u64>() {
                assert!(n == 0 || n >= 8, "{row:?}");
            }
        }
    }
    assert!(
        record["disclosure"].get("rows_withheld").is_none(),
        "how many rows were left out is not the researcher's to see: {record}"
    );
}

#[test]
fn approval_state_machine_refuses_unsubmitted_unapproved_changed_and_revoked_studies() {
    let d = desk(&probe_section("probe", ""), 300, None);
    // A refusal before the study ran is told to the researcher in full.
    let refused = |record: serde_json::Value, why: &str| {
        assert_eq!(record["status"], "refused", "{record}");
        let error = record["researcher_error"].as_str().unwrap();
        assert!(error.contains(why), "{error}");
    };
    refused(d.run("probe", &["op=count"]), "never been submitted");
    d.study_ok(&["submit", "probe"]);
    refused(d.run("probe", &["op=count"]), "not approved");
    // A researcher's token cannot approve, nor can an auditor's token id.
    for proof in [
        ["--token", d.researcher_token.as_str()],
        ["--by", d.auditor.as_str()],
    ] {
        let out = d.study(&[&["approve", "probe"][..], &proof[..]].concat());
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("auditor"));
    }
    d.study_ok(&["approve", "probe", "--token", &d.auditor_token]);
    assert_eq!(d.run("probe", &["op=count"])["status"], "succeeded");
    // One changed byte in the wasm: refused until submitted and approved again.
    let wasm = d.app.path().join("study_probe.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    bytes.extend_from_slice(b"\0"); // a trailing byte of a custom section would do as well
    let original = std::fs::read(&wasm).unwrap();
    std::fs::write(&wasm, &bytes).unwrap();
    refused(
        d.run("probe", &["op=count"]),
        "binary changed since approval",
    );
    std::fs::write(&wasm, &original).unwrap();
    assert_eq!(d.run("probe", &["op=count"])["status"], "succeeded");
    // A widened manifest section: refused too.
    let manifest = std::fs::read_to_string(d.app.manifest()).unwrap();
    std::fs::write(
        d.app.manifest(),
        manifest.replace(
            PROBE_COLUMNS,
            r#""date", "age_years", "departement", "sex""#,
        ),
    )
    .unwrap();
    refused(d.run("probe", &["op=count"]), "manifest section changed");
    std::fs::write(d.app.manifest(), &manifest).unwrap();
    d.study_ok(&["revoke", "probe", "--token", &d.auditor_token]);
    refused(d.run("probe", &["op=count"]), "revoked");
    let list = d.study_ok(&["list", "--json"]);
    assert!(list.contains("\"revoked\""), "{list}");
}

#[test]
fn an_expired_study_is_refused() {
    let section = probe_section("probe", "").replace("2099-12-31", "2020-01-31");
    let d = desk(&section, 200, None);
    d.approve("probe");
    let record = d.run("probe", &["op=count"]);
    assert_eq!(record["status"], "refused");
    assert!(
        record["researcher_error"]
            .as_str()
            .unwrap()
            .contains("expired on 2020-01-31"),
        "{record}"
    );
}

fn exact_policy() -> &'static str {
    "[component.ili-weekly.tool.carrel.study.disclosure]\nmin_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n"
}

#[test]
fn ili_weekly_national_numbers_equal_the_generators_ground_truth() {
    let studies = ili_section(exact_policy())
        + &activity_section(
            "[component.activity.tool.carrel.study.disclosure]\nmin_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n",
        );
    // The operator lets these tests see exact counts; the default minimum is 8 and 5.
    let d = desk(
        &studies,
        4000,
        Some("[disclosure]\nmin_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n"),
    );
    d.approve("ili-weekly");
    d.approve("activity");
    let record = d.run("ili-weekly", &["by=national"]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let rows = d.csv(record["run_id"].as_str().unwrap());
    let expected = |key: &str| -> std::collections::BTreeMap<String, u64> {
        serde_json::from_value(d.truth[key].clone()).unwrap()
    };
    let column = |name: &str| -> std::collections::BTreeMap<String, u64> {
        rows.iter()
            .map(|r| (r["week"].clone(), r[name].parse::<u64>().unwrap()))
            .filter(|(_, n)| *n > 0)
            .collect()
    };
    assert_eq!(column("coded"), expected("coded_by_week"));
    assert_eq!(column("ili"), expected("ili_by_week"));

    let record = d.run("activity", &[]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let rows = d.csv(record["run_id"].as_str().unwrap());
    let mut by_week = std::collections::BTreeMap::<String, u64>::new();
    let mut by_visit = std::collections::BTreeMap::<String, u64>::new();
    for r in &rows {
        assert_eq!(r["association"], "sos-test");
        let n: u64 = r["consultations"].parse().unwrap();
        *by_week.entry(r["week"].clone()).or_default() += n;
        *by_visit.entry(r["visit_type"].clone()).or_default() += n;
    }
    assert_eq!(by_week, expected("by_week"));
    assert_eq!(by_visit, expected("by_visit_type"));
}

#[test]
fn shipped_study_under_the_default_policy_releases_no_small_or_unrounded_count() {
    let d = desk(&ili_section(""), 20_000, None);
    d.approve("ili-weekly");
    // One winter month, by week, region and age class: some cells are large, many small.
    let record = d.run("ili-weekly", &["from=2024-01-01", "to=2024-01-31"]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let rows = d.csv(record["run_id"].as_str().unwrap());
    let mut redacted = 0;
    for r in &rows {
        for column in ["coded", "ili", "gastro", "bronchiolitis"] {
            match r[column].as_str() {
                "" => redacted += 1,
                value => {
                    let n: u64 = value.parse().unwrap();
                    assert_eq!(n % 5, 0, "{column} = {n} is not rounded");
                }
            }
        }
    }
    assert!(
        redacted > 0,
        "a month over regions and age classes has small cells"
    );
    assert!(
        record["disclosure"].to_string().contains("secondary"),
        "{record}"
    );
}

#[test]
fn researchers_and_auditors_use_the_study_api_over_http() {
    let d = desk(&probe_section("probe", ""), 500, None);
    let state = d.state.to_str().unwrap().to_owned();
    let carrel = support::Carrel::start(&d.app.manifest(), &["--state-dir", &state], &[]);
    let client = &carrel.client;
    let post = |path: &str, token: &str, body: &str| {
        let r = client
            .post(carrel.url(path))
            .bearer_auth(token)
            .body(body.to_owned())
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let get = |path: &str, token: &str| {
        let r = client
            .get(carrel.url(path))
            .bearer_auth(token)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, _) = get("/api/studies", "not-a-token");
    assert_eq!(status, 401);
    let (status, body) = post("/api/studies/probe/submit", &d.researcher_token, "");
    assert_eq!(status, 200, "{body}");
    let (status, _) = post("/api/studies/probe/approve", &d.researcher_token, "");
    assert_eq!(status, 403, "a researcher cannot approve");
    let (status, body) = post("/api/studies/probe/approve", &d.auditor_token, "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        "/api/studies/probe/runs",
        &d.researcher_token,
        r#"{"params": {"op": "count"}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    let run_id = record["run_id"].as_str().unwrap();
    let (status, csv) = get(&format!("/api/runs/{run_id}/result.csv"), &d.auditor_token);
    assert_eq!(status, 200);
    assert!(csv.lines().next().unwrap().contains("n_patients"), "{csv}");
    let (status, body) = get("/api/studies/probe/runs", &d.researcher_token);
    assert_eq!(status, 200);
    assert!(body.contains(run_id));
    let (status, _) = get("/api/studies/nope/runs", &d.researcher_token);
    assert_eq!(status, 404);
}

#[test]
fn try_synthetic_runs_an_unapproved_study_without_a_warehouse() {
    let app = TestApp::new(
        &format!(
            "spin_manifest_version = 2\n[application]\nname = \"try\"\n{}",
            probe_section("probe", "")
        ),
        &[("study_probe.wasm", guests::STUDY_PROBE)],
    );
    let out = carrel_command()
        .args([
            "study",
            "try",
            "probe",
            "--synthetic",
            "--consultations",
            "2000",
            "--param",
            "op=count",
            "-f",
        ])
        .arg(app.manifest())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("succeeded") && stdout.contains("read 2000 rows"),
        "{stdout}"
    );
    assert!(
        !app.path().join(".spin/carrel.db").exists(),
        "no warehouse was created"
    );
}
