//! The study contract, tried as a hostile researcher would: the probe study names rows it
//! was not given, counts a row twice, writes rows into its log and its error, keeps state
//! across patients, moves unrelated rows when a target is present, and fails on purpose.
//! Each run goes through the real binary on ingested data; each test asserts what the
//! researcher sees (nothing row-level) and what the auditor sees (everything).

mod support;

use support::desk::{Desk, desk, probe_section_by, total};

/// The probe's manifest section: sees dates, ages and départements; counts by sex.
fn probe(id: &str, unit: &str, table_extra: &str) -> String {
    probe_section_by(id, unit, r#"["sex"]"#, table_extra)
}

/// A warehouse of 20,000 synthetic consultations with the probe approved, by
/// consultation (`probe`) and by patient (`by-patient`), under exact counts.
fn warehouse() -> Desk {
    let exact = "[component.ID.tool.carrel.study.disclosure]\nmin_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n";
    // Synthetic patients come back (re-consultations): a per-cell bound above any
    // patient's consultations keeps the totals exact.
    let studies = probe("probe", "consultation", "max_per_patient = 100\n")
        + &exact.replace("ID", "probe")
        + &probe("by-patient", "patient", "max_per_patient = 1\n")
        + &exact.replace("ID", "by-patient");
    let d = desk(
        &studies,
        20_000,
        Some("[disclosure]\nmin_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n"),
    );
    d.approve("probe");
    d.approve("by-patient");
    d
}

#[test]
fn honest_counts_are_the_hosts_and_a_row_counted_twice_counts_once() {
    let d = warehouse();
    let honest = d.run("probe", &["op=count"]);
    assert_eq!(honest["status"], "succeeded", "{honest}");
    let consultations = d.truth["consultations"].as_u64().unwrap();
    assert_eq!(total(&d, &honest, "n"), consultations);
    let twice = d.run("probe", &["op=twice"]);
    assert_eq!(twice["status"], "succeeded", "{twice}");
    assert_eq!(total(&d, &twice, "n"), consultations);
    let full = d.full_run(twice["run_id"].as_str().unwrap());
    assert_eq!(full["contributions_dropped"], consultations, "{full}");
}

#[test]
fn a_study_naming_a_row_or_label_it_was_not_given_fails_and_releases_nothing() {
    let d = warehouse();
    for op in ["op=out-of-range", "op=bad-label"] {
        let record = d.run("probe", &[op]);
        assert_eq!(record["status"], "failed", "{record}");
        assert_eq!(record["researcher_error"], "contract violation", "{record}");
        assert!(record["output_sha256"].is_null(), "{record}");
        let full = d.full_run(record["run_id"].as_str().unwrap());
        assert!(
            full["error"]
                .as_str()
                .unwrap()
                .contains("contract violation"),
            "{full}"
        );
    }
}

#[test]
fn rows_in_log_lines_and_error_text_reach_the_auditor_only() {
    let d = warehouse();
    for op in ["op=log-rows", "op=fail-rows"] {
        d.assert_rows_reach_the_auditor_only("probe", op);
    }
    let failed = d.run("probe", &["op=fail-rows"]);
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["researcher_error"], "failed");
}

#[test]
fn a_patient_adds_at_most_its_bound_to_a_cell() {
    let d = warehouse();
    let record = d.run("by-patient", &["op=all-rows-one-cell"]);
    assert_eq!(record["status"], "succeeded", "{record}");
    // One contribution per patient and cell: consultations equal patients.
    let rows = d.csv(record["run_id"].as_str().unwrap());
    for row in &rows {
        assert_eq!(row["n"], row["n_patients"], "{row:?}");
    }
    // (The synthetic patients seldom come back within one cell, so nothing is dropped
    // here; the tally's unit tests drop a patient's twentieth contribution to a cell.)
}

#[test]
fn studies_that_are_not_patient_local_are_refused_every_time() {
    let d = warehouse();
    for op in [
        "op=carrier",
        "op=carrier",
        "op=carrier",
        "op=counter",
        "op=few",
        "op=random",
    ] {
        let record = d.run("probe", &[op]);
        assert_eq!(record["status"], "refused", "{op}: {record}");
        assert_eq!(record["researcher_error"], "not patient-local", "{op}");
        assert!(record["output_sha256"].is_null());
        let full = d.full_run(record["run_id"].as_str().unwrap());
        let differing = full["locality"]["patients_differing"].as_array().unwrap();
        assert!(!differing.is_empty(), "{op}: {full}");
        // Named by this study's pseudonyms, never the stored ones.
        assert_eq!(differing[0].as_str().unwrap().len(), 24);
    }
    // The same probe, honest, passes the same check.
    let honest = d.run("by-patient", &["op=count"]);
    assert_eq!(honest["status"], "succeeded", "{honest}");
    let full = d.full_run(honest["run_id"].as_str().unwrap());
    assert!(
        full["locality"]["groups_checked"].as_u64().unwrap() > 0,
        "{full}"
    );
}

#[test]
fn a_study_failing_when_its_target_is_present_shows_only_that_it_failed() {
    let d = warehouse();
    let record = d.run("probe", &["op=fail-target"]);
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["researcher_error"], "failed");
    assert!(record.get("error").is_none_or(|e| e.is_null()), "{record}");
}

#[test]
fn undeclared_parameters_and_values_are_refused_before_the_study_runs() {
    let d = warehouse();
    let record = d.run("probe", &["op=count", "target=87|2A"]);
    assert_eq!(record["status"], "refused", "{record}");
    assert!(
        record["researcher_error"]
            .as_str()
            .unwrap()
            .contains("`target` is not declared"),
        "{record}"
    );
    let record = d.run("probe", &["op=leak"]);
    assert_eq!(record["status"], "refused", "{record}");
}

#[test]
fn a_manifest_granting_patient_pseudonyms_is_refused_naming_the_column() {
    let d = desk(&probe("probe", "consultation", ""), 200, None);
    let manifest = std::fs::read_to_string(d.app.manifest()).unwrap();
    let widened = manifest.replace(
        r#"["date", "age_years", "departement"]"#,
        r#"["date", "age_years", "departement", "patient_id"]"#,
    );
    assert_ne!(widened, manifest);
    std::fs::write(d.app.manifest(), widened).unwrap();
    let out = d.study(&["submit", "probe"]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("`patient_id` is never handed"), "{error}");
}
