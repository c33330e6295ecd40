//! Patients' rights end to end through the real binary: objections registered by an
//! association's client (a FHIR Consent) and by the operator (`carrel patients object`),
//! honoured at ingestion, by study runs and in storage; retention; what the register and
//! the auditor's view say; no identifier of an objection anywhere in the state directory.

mod support;

use std::path::Path;
use support::desk::{Desk, desk, study_section, token};
use support::patients::{
    SourcePatient, column_total, files_holding, post, rows_by_patient, stored_rows, synth_patients,
    synth_payload_of, synthea_dir, synthea_patients, synthea_payload_of,
};
use support::{Carrel, carrel_command, carrel_ok as run, ingest_token};

const EXACT: &str = "min_count = 1\nrounding = 1\nnoise_scale = 0\nepsilon_budget = 0\n";

/// The shipped `activity` study, releasing exact counts, with room for the Synthea
/// patients' many consultations.
fn activity() -> String {
    study_section(
        "activity",
        "activity.wasm",
        "",
        &format!(
            "[component.activity.tool.carrel.study.table]\n\
             dimensions = [\"association\", \"week\", \"visit_type\"]\n\
             measures = [\"consultations\"]\n\
             max_per_patient = 255\nmax_cells_per_patient = 4096\n\
             [component.activity.tool.carrel.study.disclosure]\n{EXACT}"
        ),
    )
}

/// Runs `activity` and returns the consultations it counted and the contributions the
/// host dropped past each patient's bound (the auditor's record).
fn activity_total(d: &Desk) -> (u64, u64) {
    let record = d.run("activity", &[]);
    assert_eq!(record["status"], "succeeded", "{record}");
    let run_id = record["run_id"].as_str().unwrap();
    let total = column_total(&d.csv(run_id), "consultations");
    let dropped = d.full_run(run_id)["contributions_dropped"]
        .as_u64()
        .unwrap();
    (total, dropped)
}

fn start(d: &Desk) -> Carrel {
    let state = d.state.to_str().unwrap().to_owned();
    let config = d.app.path().join("runtime-config.toml");
    Carrel::start(
        &d.app.manifest(),
        &[
            "--state-dir",
            &state,
            "--runtime-config-file",
            config.to_str().unwrap(),
        ],
        &[],
    )
}

/// A consultation of a patient the test makes up, to send along with withheld ones.
fn newcomer() -> Vec<u8> {
    let patient = serde_json::json!({"resourceType": "Patient", "id": "new-1",
        "name": [{"family": "Nouvel", "given": ["Arrivant"]}], "birthDate": "1990-01-02", "gender": "male"});
    let encounter = serde_json::json!({"resourceType": "Encounter", "id": "new-e1", "class": {"code": "HH"},
        "subject": {"reference": "Patient/new-1"}, "period": {"start": "2025-01-14T22:10:00+01:00"}});
    format!("{patient}\n{encounter}\n").into_bytes()
}

/// Identifiers of an objecting patient as they could leak: NIR, names, traits.
fn identifiers(patient: &SourcePatient) -> Vec<String> {
    let mut needles = vec![patient.family.clone(), patient.given.clone()];
    needles.extend(patient.nir.clone());
    needles
}

#[test]
fn objections_are_honoured_at_ingestion_in_studies_and_in_storage_and_leave_no_identifier() {
    let config =
        format!("[disclosure]\n{EXACT}\n[patients]\nhow_to_object = \"Ask your association\"\n");
    let d = desk(&activity(), 400, Some(&config));
    let imported = carrel_command()
        .args(["import", "-f"])
        .arg(d.app.manifest())
        .arg("--state-dir")
        .arg(&d.state)
        .args(["--association", "sos-synthea"])
        .arg(synthea_dir())
        .output()
        .unwrap();
    assert!(imported.status.success(), "{imported:?}");
    d.approve("activity");

    // One patient of the synthetic data, objecting by Consent with their NIR; one of the
    // Synthea export (no NIR), objecting through the operator by identity traits.
    let synth_dir = d.app.path().join("synth");
    let by_nir = synth_patients(&synth_dir)
        .into_values()
        .max_by_key(|p| p.consultations)
        .unwrap();
    let synthea = synthea_patients();
    let (synthea_id, by_traits) = synthea.iter().find(|(_, p)| p.family == "Cole117").unwrap();
    let (nir_pseudonym, traits_pseudonym) =
        (by_nir.pseudonym(&d.state), by_traits.pseudonym(&d.state));
    let before = stored_rows(&d.state);
    let stored_by = rows_by_patient(&before);
    // The host's hash finds exactly the rows the source files give these patients.
    assert_eq!(stored_by[nir_pseudonym.as_str()], by_nir.consultations);
    assert_eq!(
        stored_by[traits_pseudonym.as_str()],
        by_traits.consultations
    );
    assert!(by_nir.consultations >= 2 && by_traits.consultations == 20);
    let (total_before, dropped_before) = activity_total(&d);
    assert_eq!(total_before, before.len() as u64);

    // The association's client objects with a Consent; a Consent that permits, or whose
    // NIR does not check, is refused without repeating it.
    let ingest = ingest_token(&d.state, "sos-test");
    let synthea_ingest = ingest_token(&d.state, "sos-synthea");
    let (_, auditor) = token(&d.state, "auditor");
    let carrel = start(&d);
    let json = "application/fhir+json";
    let (status, answer) = post(&carrel, &ingest, by_nir.consent(true), json, "objection-1");
    assert_eq!(status, 201, "{answer}");
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["objection"], "registered");
    assert_eq!(answer["newly_registered"], 2, "NIR and traits: {answer}");
    for needle in identifiers(&by_nir) {
        assert!(!answer.to_string().contains(&needle), "{answer}");
    }
    let mut permit: serde_json::Value = serde_json::from_slice(&by_nir.consent(true)).unwrap();
    permit["provision"]["type"] = "permit".into();
    let (status, refused) = post(
        &carrel,
        &ingest,
        permit.to_string().into_bytes(),
        json,
        "o-2",
    );
    assert_eq!(status, 400, "{refused}");
    let mut bad = by_nir.clone();
    let nir = bad.nir.as_mut().unwrap();
    nir.replace_range(13.., if nir.ends_with('0') { "01" } else { "00" });
    let (status, refused) = post(&carrel, &ingest, bad.consent(true), json, "o-3");
    assert_eq!(status, 400, "{refused}");
    assert!(refused.contains("does not check") && !refused.contains(bad.nir.as_deref().unwrap()));

    // Their consultations sent again are withheld, and counted without saying whose.
    let (payload, count) = synth_payload_of(&synth_dir, by_nir.nir.as_deref().unwrap());
    let mut mixed = payload.clone();
    mixed.extend(newcomer());
    let ndjson = "application/fhir+ndjson";
    let (status, receipt) = post(&carrel, &ingest, mixed, ndjson, "again-1");
    assert_eq!(status, 201, "{receipt}");
    let receipt: serde_json::Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(
        (
            receipt["rows_accepted"].as_u64(),
            receipt["rows_withheld"].as_u64()
        ),
        (Some(1), Some(count as u64))
    );
    let (status, receipt) = post(&carrel, &ingest, payload, ndjson, "again-2");
    assert_eq!(status, 201, "{receipt}");
    let receipt: serde_json::Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(
        (
            receipt["rows_accepted"].as_u64(),
            receipt["rows_withheld"].as_u64()
        ),
        (Some(0), Some(count as u64))
    );
    let (status, replay) = post(
        &carrel,
        &ingest,
        synth_payload_of(&synth_dir, by_nir.nir.as_deref().unwrap()).0,
        ndjson,
        "again-2",
    );
    assert_eq!(status, 200, "a replay answers the first receipt: {replay}");
    drop(carrel);

    // A study run after the objection, approved before it, no longer counts them.
    let (total, dropped) = activity_total(&d);
    assert_eq!(total, total_before - by_nir.consultations as u64 + 1);
    assert_eq!(dropped, dropped_before);

    // The operator registers the other objection by traits (written as a person would:
    // the normalisation makes `Cole` match the source's `Cole117`), and the pass removes
    // both patients' rows from storage.
    // (A scheduled pass may have removed the first patient's rows already.)
    let still_stored = rows_by_patient(&stored_rows(&d.state))
        .get(nir_pseudonym.as_str())
        .copied()
        .unwrap_or(0);
    let out = carrel_command()
        .args(["patients", "object", "--state-dir"])
        .arg(&d.state)
        .args([
            "--family",
            "Cole",
            "--given",
            "Devin",
            "--birth-date",
            &by_traits.birth_date,
            "--sex",
            &by_traits.gender,
        ])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        printed.contains("Objection registered: 1 pseudonym"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!(
            "objection: {}",
            by_traits.consultations + still_stored
        )),
        "{printed}"
    );
    for needle in ["Cole", "Devin"] {
        assert!(!printed.contains(needle), "{printed}");
    }
    let after = stored_rows(&d.state);
    let stored_by = rows_by_patient(&after);
    assert!(!stored_by.contains_key(nir_pseudonym.as_str()));
    assert!(!stored_by.contains_key(traits_pseudonym.as_str()));
    let kept: Vec<_> = before
        .iter()
        .filter(|r| r.patient_id != nir_pseudonym && r.patient_id != traits_pseudonym)
        .collect();
    assert_eq!(
        after.len(),
        kept.len() + 1,
        "everyone else's rows, and the newcomer's"
    );
    assert!(kept.iter().all(|r| after.contains(r)));
    let (total, dropped) = activity_total(&d);
    assert_eq!(
        total,
        total_before - (by_nir.consultations + by_traits.consultations) as u64 + 1
    );
    assert_eq!(dropped, dropped_before);

    // Sent again after the removal: withheld.
    let carrel = start(&d);
    let (status, receipt) = post(
        &carrel,
        &synthea_ingest,
        synthea_payload_of(synthea_id),
        ndjson,
        "cole-again",
    );
    assert_eq!(status, 201, "{receipt}");
    let receipt: serde_json::Value = serde_json::from_str(&receipt).unwrap();
    assert_eq!(
        receipt["rows_withheld"].as_u64(),
        Some(by_traits.consultations as u64)
    );

    // The register says what is held, for how long and how to object, with counts; the
    // auditor's view counts by month.
    let (status, register) = carrel.get("/register");
    assert_eq!(status, 200);
    for part in [
        "id=\"data-held\"",
        "id=\"retention\"",
        "Ask your association",
        "no retention period is set",
    ] {
        assert!(register.contains(part), "{part}: {register}");
    }
    assert!(
        register.contains("<span class=\"num\" id=\"objections-total\">2</span>"),
        "{register}"
    );
    let removed = by_nir.consultations + by_traits.consultations;
    assert!(
        register.contains(&format!("id=\"removed-objection-total\">{removed}</span>")),
        "{register}"
    );
    let page = carrel
        .client
        .get(carrel.url("/audit/patients"))
        .bearer_auth(&auditor)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("id=\"rights-total\""), "{page}");
    assert!(
        page.contains(&format!(
            "<td class=\"num removed-objection\">{removed}</td>"
        )),
        "{page}"
    );
    let withheld = 2 * by_nir.consultations + by_traits.consultations;
    assert!(
        page.contains(&format!("<td class=\"num withheld\">{withheld}</td>")),
        "{page}"
    );
    drop(carrel);

    // The audit chain verifies; nothing in the state directory names either patient.
    assert!(run(&d.state, &["audit", "verify"]).starts_with("OK"));
    let log = run(&d.state, &["audit", "export"]);
    assert_eq!(log.matches("\"patient.objection\"").count(), 2, "{log}");
    let mut needles = identifiers(&by_nir);
    needles.extend(identifiers(by_traits));
    needles.push("COLE|DEVIN".into());
    let found = files_holding(&d.state, &needles);
    assert!(
        found.is_empty(),
        "identifiers in the state directory: {found:?}"
    );
    // The search finds them where they are: in the source files.
    assert!(!files_holding(&synth_dir, &needles).is_empty());
}

#[test]
fn retention_removes_exactly_the_rows_older_than_the_period() {
    let d = desk(&activity(), 300, None);
    let config = d.app.path().join("retention.toml");
    let apply = |state: &Path| {
        carrel_command()
            .args(["retention", "apply", "--state-dir"])
            .arg(state)
            .arg("--runtime-config-file")
            .arg(&config)
            .output()
            .unwrap()
    };
    std::fs::write(&config, "").unwrap();
    let refused = apply(&d.state);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("retention_days"),
        "{refused:?}"
    );

    let before = stored_rows(&d.state);
    let mut dates: Vec<i32> = before.iter().map(|r| r.date).collect();
    dates.sort_unstable();
    let first_kept = dates[dates.len() / 2];
    let today = (time::OffsetDateTime::now_utc().date()
        - time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap())
    .whole_days() as i32;
    std::fs::write(
        &config,
        format!("[patients]\nretention_days = {}\n", today - first_kept),
    )
    .unwrap();
    let out = apply(&d.state);
    assert!(out.status.success(), "{out:?}");
    let old = before.iter().filter(|r| r.date < first_kept).count();
    assert!(old > 0);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("Removed {old} consultations (retention: {old})")),
        "{printed}"
    );
    let expected: Vec<_> = before
        .into_iter()
        .filter(|r| r.date >= first_kept)
        .collect();
    assert_eq!(stored_rows(&d.state), expected);

    let again = apply(&d.state);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("Nothing to remove"),
        "{again:?}"
    );
    assert!(run(&d.state, &["audit", "verify"]).starts_with("OK"));
    let log = run(&d.state, &["audit", "export"]);
    assert!(
        log.contains(&format!("\"retention\":{old}")),
        "counts audited: {log}"
    );
}
