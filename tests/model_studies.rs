//! The studies that evaluate and fit models, through the real binary on synthetic data
//! drawn from stated models (`carrel synth`'s ground truth): the host fits a logistic
//! regression from feature vectors it never releases and its intervals cover the
//! generator's coefficients; the host computes a model's AUROC from its own counts of
//! binned scores and it matches the truth; hostile scores and fits are refused.

mod support;

use support::desk::{Desk, desk, study_section};

const FEATURES: &str = r#"["age_years", "visit_type=home", "diagnoses:J", "sex=F"]"#;
const COLUMNS: &str = r#""age_years", "visit_type", "diagnoses", "sex", "outcome""#;

fn fit_section(id: &str, extra: &str) -> String {
    study_section(
        id,
        "glm_fit.wasm",
        COLUMNS,
        &format!(
            "kind = \"model-fit\"\n[component.{id}.tool.carrel.study.fit]\nfamily = \"logistic\"\nfeatures = {FEATURES}\noutcome = \"outcome=hospital\"\n{extra}"
        ),
    )
}

fn evaluation_section(id: &str, file: &str, extra: &str) -> String {
    study_section(
        id,
        "score_probe.wasm",
        COLUMNS,
        &format!(
            "kind = \"model-evaluation\"\n[component.{id}.tool.carrel.study.model]\nfile = \"{file}\"\nfeatures = {FEATURES}\noutcome = \"hospital\"\nbins = 100\nthresholds = [0.05, 0.1]\nsubgroups = [\"age_class\", \"visit_type\"]\n{extra}"
        ),
    )
}

/// The score probe's "model file": the referral model's coefficients as JSON.
fn true_model(d: &Desk, op: &str) -> String {
    let referral = &d.truth["models"]["referral"];
    let mut model = referral["coefficients"].clone();
    model["intercept"] = referral["intercept"].clone();
    model["op"] = serde_json::json!(op);
    model.to_string()
}

fn write_model(d: &Desk, file: &str, op: &str) {
    std::fs::write(d.app.path().join(file), true_model(d, op)).unwrap();
}

#[test]
fn a_fitted_logistic_regression_covers_the_generators_coefficients() {
    let d = desk(&fit_section("referral-fit", ""), 20_000, None);
    d.approve("referral-fit");
    let record = d.run("referral-fit", &[]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let report = &record["model_report"];
    assert_eq!(report["family"], "logistic", "{report}");
    assert!(report["rows"].as_u64().unwrap() > 19_000, "{report}");
    let table = d.csv(record["run_id"].as_str().unwrap());
    let truth = &d.truth["models"]["referral"];
    assert_eq!(table.len(), 5);
    for row in &table {
        let expected = match row["term"].as_str() {
            "(intercept)" => truth["intercept"].as_f64().unwrap(),
            term => truth["coefficients"][term].as_f64().unwrap(),
        };
        let (lower, upper): (f64, f64) = (
            row["ci_lower"].parse().unwrap(),
            row["ci_upper"].parse().unwrap(),
        );
        assert!(
            lower <= expected && expected <= upper,
            "{}: {expected} outside [{lower}, {upper}]",
            row["term"]
        );
    }
    // The vectors never left the host: the auditor's record has no row either.
    let full = d.full_run(record["run_id"].as_str().unwrap());
    assert!(full["logs"].as_array().unwrap().is_empty(), "{full}");
}

#[test]
fn a_fit_on_a_feature_that_gives_the_outcome_away_or_with_too_many_parameters_is_refused() {
    let separated =
        fit_section("separated", "").replace(FEATURES, r#"["age_years", "outcome=hospital"]"#);
    let crowded = fit_section("crowded", "max_parameter_fraction = 0.0001\n");
    let d = desk(&(separated + &crowded), 2_000, None);
    // `outcome=hospital` as a feature separates the classes perfectly; DataSHIELD's level
    // check sees it first (no referred patient has level 0), before the fit would.
    for (id, why) in [
        (
            "separated",
            "level 0 of `outcome=hospital` is held by fewer than 8 patients",
        ),
        ("crowded", "parameters for about"),
    ] {
        d.approve(id);
        let record = d.run(id, &[]);
        assert_eq!(record["status"], "refused", "{record}");
        assert_eq!(record["researcher_error"], "refused by disclosure control");
        assert!(record["output_sha256"].is_null());
        let full = d.full_run(record["run_id"].as_str().unwrap());
        assert!(full["error"].as_str().unwrap().contains(why), "{full}");
    }
}

#[test]
fn the_true_models_auroc_from_the_hosts_counts_matches_the_ground_truth() {
    let d = desk(
        &evaluation_section("referral-eval", "true.json", ""),
        20_000,
        None,
    );
    write_model(&d, "true.json", "score");
    d.approve("referral-eval");
    let record = d.run("referral-eval", &[]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let report = &record["model_report"];
    let auroc = report["overall"]["auroc"].as_f64().unwrap();
    let truth = d.truth["models"]["referral"]["auroc"].as_f64().unwrap();
    assert!(
        (auroc - truth).abs() < 0.02,
        "AUROC {auroc}, truth {truth}: {report}"
    );
    let [lower, upper] = [0, 1].map(|i| report["overall"]["auroc_ci95"][i].as_f64().unwrap());
    assert!(lower < auroc && auroc < upper, "{report}");
    // The true model is calibrated: slope about 1.
    let slope = report["overall"]["calibration"]["slope"].as_f64().unwrap();
    assert!((0.8..1.25).contains(&slope), "{report}");
    assert_eq!(report["overall"]["thresholds"].as_array().unwrap().len(), 2);
    assert!(
        report["subgroups"]["visit_type"]["home"]["auroc"].is_number(),
        "{report}"
    );
    // The released table: rows per bin and outcome, overall and per subgroup value.
    let table = d.csv(record["run_id"].as_str().unwrap());
    assert!(table.iter().any(|r| r["grouping"] == "overall"));
    assert!(
        table
            .iter()
            .any(|r| r["grouping"] == "age_class" && r["level"] == "75+")
    );
}

#[test]
fn a_useless_model_scores_half_and_hostile_scores_are_contract_violations() {
    let sections = ["constant", "out-of-range", "nan", "beyond"]
        .iter()
        .map(|op| evaluation_section(op, &format!("{op}.json"), ""))
        .collect::<String>();
    let d = desk(&sections, 3_000, None);
    for op in ["constant", "out-of-range", "nan", "beyond"] {
        write_model(&d, &format!("{op}.json"), op);
        d.approve(op);
        let record = d.run(op, &[]);
        if op == "constant" {
            assert_eq!(record["status"], "succeeded", "{record}");
            let auroc = record["model_report"]["overall"]["auroc"].as_f64().unwrap();
            assert!((auroc - 0.5).abs() < 1e-9, "{record}");
            continue;
        }
        assert_eq!(record["status"], "failed", "{op}: {record}");
        assert_eq!(record["researcher_error"], "contract violation", "{record}");
        assert!(record["output_sha256"].is_null());
    }
}

#[test]
fn a_model_file_the_study_cannot_read_is_refused_at_submit_and_a_changed_one_needs_approval() {
    let d = desk(&evaluation_section("eval", "model.json", ""), 300, None);
    std::fs::write(d.app.path().join("model.json"), "{not json").unwrap();
    let out = d.study(&["submit", "eval"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("model model.json") && err.contains("not a model file"),
        "{err}"
    );
    write_model(&d, "model.json", "score");
    d.approve("eval");
    assert_eq!(d.run("eval", &[])["status"], "succeeded");
    // One changed byte of the model is a new manifest hash: runs are refused.
    write_model(&d, "model.json", "constant");
    let record = d.run("eval", &[]);
    assert_eq!(record["status"], "refused", "{record}");
    assert!(
        record["researcher_error"]
            .as_str()
            .unwrap()
            .contains("manifest section changed"),
        "{record}"
    );
}

#[test]
fn a_model_fitted_on_the_first_year_and_exported_as_onnx_is_evaluated_on_the_second() {
    let evaluation = study_section(
        "referral-eval",
        "model_eval.wasm",
        COLUMNS,
        &format!(
            "kind = \"model-evaluation\"\n[component.referral-eval.tool.carrel.study.model]\nfile = \"referral.onnx\"\nfeatures = {FEATURES}\noutcome = \"hospital\"\nbins = 100\nthresholds = [0.05]\nsubgroups = [\"visit_type\"]\n"
        ),
    );
    let d = desk(
        &format!("{}{evaluation}", fit_section("referral-fit", "")),
        20_000,
        None,
    );
    // Without its model file the evaluation cannot even be submitted.
    assert!(!d.study(&["submit", "referral-eval"]).status.success());
    d.approve("referral-fit");
    let fit = d.run("referral-fit", &["to=2024-06-30"]);
    assert_eq!(fit["status"], "succeeded", "{fit}");
    let model = d.app.path().join("referral.onnx");
    d.study_ok(&[
        "results",
        fit["run_id"].as_str().unwrap(),
        "--format",
        "onnx",
        "--out",
        model.to_str().unwrap(),
    ]);
    d.approve("referral-eval");
    let evaluated = d.run("referral-eval", &["from=2024-07-01"]);
    assert_eq!(evaluated["status"], "succeeded", "{evaluated}");
    let report = &evaluated["model_report"]["overall"];
    let auroc = report["auroc"].as_f64().unwrap();
    let truth = d.truth["models"]["referral"]["auroc"].as_f64().unwrap();
    // A model fitted on half the data, evaluated on the other half: near the true model.
    assert!((auroc - truth).abs() < 0.03, "AUROC {auroc}, truth {truth}");
    let slope = report["calibration"]["slope"].as_f64().unwrap();
    assert!((0.7..1.4).contains(&slope), "calibration slope {slope}");
}

#[test]
fn a_fitted_poisson_regression_does_not_export_as_onnx() {
    let d = desk(
        &study_section(
            "visits-fit",
            "glm_fit.wasm",
            COLUMNS,
            &format!(
                "kind = \"model-fit\"\n[component.visits-fit.tool.carrel.study.fit]\nfamily = \"poisson\"\nfeatures = {FEATURES}\noutcome = \"outcome=hospital\"\n"
            ),
        ),
        3_000,
        None,
    );
    d.approve("visits-fit");
    let fit = d.run("visits-fit", &[]);
    assert_eq!(fit["status"], "succeeded", "{fit}");
    let out = d.study(&[
        "results",
        fit["run_id"].as_str().unwrap(),
        "--format",
        "onnx",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only a logistic regression"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
