//! Cell-key noise and the privacy budget through the real binary: the same run releases
//! the same table however often it is repeated and pays once; a run that would overspend
//! is refused before it reads; the shipped indicator still agrees with the generator's
//! truth within what the noise and the rounding allow.

mod support;

use support::desk::{desk, ili_section, probe_section};

fn charged(privacy: &serde_json::Value) -> f64 {
    privacy["charged"].as_f64().unwrap()
}

#[test]
fn repeating_a_run_fifty_times_releases_the_same_table_and_spends_once() {
    let d = desk(&probe_section("noisy", ""), 2000, None);
    d.approve("noisy");
    let first = d.run("noisy", &["op=count"]);
    assert_eq!(first["status"], "succeeded", "{first}");
    let first_id = first["run_id"].as_str().unwrap().to_owned();
    let table = d.csv(&first_id);
    assert!(!table.is_empty());
    let epsilon = first["privacy"]["epsilon"].as_f64().unwrap();
    assert!(epsilon > 0.0, "{first}");
    assert_eq!(charged(&first["privacy"]), epsilon);
    let mut last = first.clone();
    for _ in 1..50 {
        last = d.run("noisy", &["op=count"]);
        assert_eq!(last["output_sha256"], first["output_sha256"], "{last}");
        assert_eq!(charged(&last["privacy"]), 0.0, "{last}");
    }
    assert_eq!(d.csv(last["run_id"].as_str().unwrap()), table);
    assert_eq!(last["privacy"]["spent"].as_f64().unwrap(), epsilon);
    // The auditor sees which release it repeated, and the perturbation it had.
    let full = d.full_run(last["run_id"].as_str().unwrap());
    assert_eq!(full["privacy"]["repeat_of"], first_id.as_str(), "{full}");
    assert_eq!(
        full["privacy"]["perturbation"], "carrel-cellkey-dlaplace-1",
        "{full}"
    );
    assert!(
        full["disclosure"]["perturbation"]["scale"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{full}"
    );
}

#[test]
fn a_run_that_would_overspend_the_privacy_budget_is_refused_before_it_reads() {
    // The probe's bounds: 24 cells of 1 consultation each, noise of scale 3: ε = 16.
    let section = probe_section("noisy", "")
        + "[component.noisy.tool.carrel.study.disclosure]\nepsilon_budget = 40\n";
    let d = desk(&section, 500, None);
    d.approve("noisy");
    let first = d.run("noisy", &["op=count"]);
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["privacy"]["spent"].as_f64().unwrap(), 16.0, "{first}");
    // A failed run pays too: whether a run fails can carry a bit.
    let failed = d.run("noisy", &["op=fail-rows"]);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(
        failed["privacy"]["spent"].as_f64().unwrap(),
        32.0,
        "{failed}"
    );
    let refused = d.run("noisy", &["op=count", "from=2023-01-02"]);
    assert_eq!(refused["status"], "refused", "{refused}");
    let refusal = refused["researcher_error"].as_str().unwrap();
    assert!(
        refusal.contains("spent 32 of its privacy budget of 40") && refusal.contains("costs 16"),
        "{refusal}"
    );
    let full = d.full_run(refused["run_id"].as_str().unwrap());
    assert_eq!(full["rows_read"], 0, "{full}");
    assert!(full["segments_read"].as_array().unwrap().is_empty());
}

#[test]
fn ili_weekly_agrees_with_the_generators_truth_within_the_noise_and_rounding() {
    let d = desk(&ili_section(""), 4000, None);
    d.approve("ili-weekly");
    let record = d.run("ili-weekly", &["by=national"]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let truth: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(d.truth["coded_by_week"].clone()).unwrap();
    let mut differences = Vec::new();
    for row in d.csv(record["run_id"].as_str().unwrap()) {
        let Ok(released) = row["coded"].parse::<i64>() else {
            continue; // withheld
        };
        let expected = truth.get(&row["week"]).copied().unwrap_or(0) as i64;
        differences.push((released - expected) as f64);
    }
    assert!(differences.len() > 20, "{differences:?}");
    // Noise of scale 3 (standard deviation 4.22) then rounding to 5 (at most 2.5). A
    // count off by 40 would take noise beyond 9 standard deviations.
    assert!(
        differences.iter().all(|d| d.abs() <= 40.0),
        "{differences:?}"
    );
    let rms = (differences.iter().map(|d| d * d).sum::<f64>() / differences.len() as f64).sqrt();
    let expected_rms = (4.22f64.powi(2) + 25.0 / 12.0).sqrt();
    assert!(
        rms > 0.3 * expected_rms && rms < 2.0 * expected_rms,
        "rms {rms:.2}, expected about {expected_rms:.2}: {differences:?}"
    );
}
