//! Ingestion end to end through the warehouse's real spin.toml: the ingest-fhir component,
//! the pseudonymiser component, the host's checks, the encrypted vault and the audit log.

mod support;

use std::path::{Path, PathBuf};
use support::{Carrel, TestApp, carrel_command, carrel_ok as run};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn fixture() -> Vec<u8> {
    let dir = repo().join("tests/fixtures/synthea-bulk-10");
    let mut body = Vec::new();
    for file in [
        "Patient.000.ndjson",
        "Encounter.000.ndjson",
        "Condition.000.ndjson",
    ] {
        body.extend(
            std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
        );
    }
    body
}

struct Warehouse {
    _dir: tempfile::TempDir,
    state: PathBuf,
    token: String,
    carrel: Option<Carrel>,
}

fn warehouse() -> Warehouse {
    // The artifacts crate has built components/ into components/target, where spin.toml looks.
    let _ = support::guests::INGEST_FHIR;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    run(&state, &["keys", "init"]);
    let token = support::ingest_token(&state, "sos-rennes");
    let state_arg = state.to_str().unwrap().to_owned();
    let carrel = Carrel::start(&repo().join("spin.toml"), &["--state-dir", &state_arg], &[]);
    Warehouse {
        _dir: dir,
        state,
        token,
        carrel: Some(carrel),
    }
}

impl Warehouse {
    fn post(
        &self,
        body: Vec<u8>,
        content_type: &str,
        key: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let carrel = self.carrel.as_ref().unwrap();
        let mut request = carrel
            .client
            .post(carrel.url("/ingest/fhir"))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = key {
            request = request.header("idempotency-key", k);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let text = response.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Stops the server and reads every stored row back, decrypted.
    fn stored_rows(&mut self) -> Vec<arrow_array::RecordBatch> {
        drop(self.carrel.take());
        let vault =
            carrel_vault::Vault::open(&self.state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
        let columns: Vec<String> = carrel_pseudonym::canonical_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
        vault
            .scan("consultations", &columns)
            .unwrap()
            .map(|b| b.unwrap())
            .collect()
    }
}

#[test]
fn synthea_export_ingests_one_row_per_encounter_and_stores_no_identifier() {
    let mut w = warehouse();
    let (status, receipt) = w.post(fixture(), "application/fhir+ndjson", Some("synthea-10"));
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["rows_accepted"], 1215);

    // A replay returns the first receipt and stores nothing twice.
    let (status, again) = w.post(fixture(), "application/fhir+ndjson", Some("synthea-10"));
    assert!(status == 200 || status == 201, "{again}");
    assert_eq!(again["batch_id"], receipt["batch_id"]);

    let batches = w.stored_rows();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1215);

    // Nothing the fixture identifies a person by may be in storage.
    let mut stored = String::new();
    for batch in &batches {
        for column in batch.columns() {
            stored.push_str(&format!("{:?}", column));
        }
    }
    let patients =
        std::fs::read_to_string(repo().join("tests/fixtures/synthea-bulk-10/Patient.000.ndjson"))
            .unwrap();
    for line in patients.lines() {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        let mut secrets = vec![p["id"].as_str().unwrap().to_owned()];
        for name in p["name"].as_array().into_iter().flatten() {
            secrets.extend(name["family"].as_str().map(str::to_owned));
            secrets.extend(
                name["given"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.as_str().map(str::to_owned)),
            );
        }
        for address in p["address"].as_array().into_iter().flatten() {
            secrets.extend(
                address["line"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| l.as_str().map(str::to_owned)),
            );
            secrets.extend(address["postalCode"].as_str().map(str::to_owned));
        }
        for telecom in p["telecom"].as_array().into_iter().flatten() {
            secrets.extend(telecom["value"].as_str().map(str::to_owned));
        }
        for identifier in p["identifier"].as_array().into_iter().flatten() {
            secrets.extend(identifier["value"].as_str().map(str::to_owned));
        }
        secrets.extend(p["birthDate"].as_str().map(str::to_owned));
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            assert!(
                !stored.contains(secret.as_str()),
                "stored rows contain `{secret}` from the fixture"
            );
        }
    }

    let log = run(&w.state, &["audit", "export"]);
    assert!(log.contains("\"dataset.append\""), "{log}");
    assert!(run(&w.state, &["audit", "verify"]).starts_with("OK"));
}

#[test]
fn bad_payload_is_refused_whole_with_an_operation_outcome_and_nothing_is_stored() {
    let mut w = warehouse();
    let mut body = fixture();
    body.extend_from_slice(b"{\"resourceType\": \"Encounter\", \"id\": \"x\", \"period\": {\"start\": \"2024-13-01\"}}\n{not json\n");
    let (status, outcome) = w.post(body, "application/fhir+ndjson", None);
    assert!(status == 400 || status == 422, "{status} {outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(outcome["issue"].as_array().unwrap().len() >= 2, "{outcome}");

    let (status, _) = w.post(b"<xml/>".to_vec(), "application/xml", None);
    assert_eq!(status, 415);

    drop(w.carrel.take());
    let vault = carrel_vault::Vault::open(&w.state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
    let segments = vault.segments("consultations").unwrap_or_default();
    assert!(segments.is_empty(), "{segments:?}");
}

#[test]
fn import_sends_a_bulk_export_through_the_ingestion_path_once() {
    let _ = support::guests::PSEUDONYMISE;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    run(&state, &["keys", "init"]);
    let fixture = repo().join("tests/fixtures/synthea-bulk-10");
    let import = |state: &Path| {
        carrel_command()
            .args(["import", "-f"])
            .arg(repo().join("spin.toml"))
            .arg("--state-dir")
            .arg(state)
            .args(["--association", "sos-vannes"])
            .arg(&fixture)
            .output()
            .unwrap()
    };
    let first = import(&state);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(out.contains("Imported 1215 rows in 1 requests"), "{out}");
    let again = import(&state);
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        out.contains("Imported 0 rows") && out.contains("1 already imported"),
        "{out}"
    );
    let log = run(&state, &["audit", "export"]);
    assert_eq!(log.matches("\"dataset.append\"").count(), 1, "{log}");
    assert!(run(&state, &["audit", "verify"]).starts_with("OK"));
    let checked = run(&state, &["audit", "verify", "--segments"]);
    assert!(checked.contains("OK: 1 of 1 segments intact"), "{checked}");
}

#[test]
fn synthetic_round_trip_stores_the_counts_of_the_generators_ground_truth() {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let data = dir.path().join("synth");
    run(&state, &["keys", "init"]);
    let out = carrel_command()
        .args([
            "synth",
            "--consultations",
            "3000",
            "--seed",
            "11",
            "--faults",
            "0.02",
            "--out",
        ])
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
    // Only the valid files are sent: the faulty ones are refused whole (tested elsewhere).
    let valid: Vec<PathBuf> = truth["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| data.join(f.as_str().unwrap()))
        .collect();
    let imported = carrel_command()
        .args(["import", "-f"])
        .arg(repo().join("spin.toml"))
        .arg("--state-dir")
        .arg(&state)
        .args(["--association", "sos-lorient"])
        .args(&valid)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let vault = carrel_vault::Vault::open(&state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
    let mut rows = 0u64;
    let mut by_code = std::collections::BTreeMap::<String, u64>::new();
    let mut by_age = std::collections::BTreeMap::<String, u64>::new();
    for batch in vault
        .scan("consultations", &["age_years", "diagnoses"])
        .unwrap()
    {
        let batch = batch.unwrap();
        rows += batch.num_rows() as u64;
        let ages = batch
            .column(0)
            .as_primitive::<arrow_array::types::UInt8Type>();
        let diagnoses = batch.column(1).as_list::<i32>();
        for i in 0..batch.num_rows() {
            let class = match ages.value(i) {
                0..=1 => "<2",
                2..=14 => "2-14",
                15..=74 => "15-74",
                _ => "75+",
            };
            assert!(!ages.is_null(i));
            *by_age.entry(class.to_owned()).or_default() += 1;
            let codes = diagnoses.value(i);
            for code in codes.as_string::<i32>().iter().flatten() {
                *by_code.entry(code.to_owned()).or_default() += 1;
            }
        }
    }
    assert_eq!(rows, truth["consultations"].as_u64().unwrap());
    let expected = |key: &str| -> std::collections::BTreeMap<String, u64> {
        serde_json::from_value(truth[key].clone()).unwrap()
    };
    assert_eq!(by_code, expected("by_code"));
    assert_eq!(by_age, expected("by_age_class"));
}

#[test]
fn concurrent_posts_of_one_batch_key_store_it_once() {
    // The receipt commits in the append's transaction: when several requests with one key
    // race past the first receipt lookup, the second append to commit is refused whole by
    // the receipt's primary key and answers the first receipt.
    let mut w = warehouse();
    let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| w.post(fixture(), "application/fhir+ndjson", Some("raced"))))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (status, answer) in &answers {
        assert!(*status == 200 || *status == 201, "{status} {answer}");
        assert_eq!(answer["batch_id"], answers[0].1["batch_id"], "{answers:?}");
        assert_eq!(answer["rows_accepted"], 1215);
    }
    let rows: usize = w.stored_rows().iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 1215);
    let log = run(&w.state, &["audit", "export"]);
    assert_eq!(log.matches("\"dataset.append\"").count(), 1, "{log}");
}

/// The warehouse's ingestion route with a hostile pseudonymiser (tests/programs/
/// pseudonymise-leaks-nir): the real one, except that it copies each patient's NIR into
/// the `diagnoses` list column.
const LEAKY_MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "leaky"

[[trigger.http]]
route = "/ingest/fhir"
component = "ingest-fhir"

[component.ingest-fhir]
source = "ingest_fhir.wasm"
key_value_stores = ["default"]

[component.ingest-fhir.tool.carrel]
auth = "ingest"
ingest = { dataset = "consultations", pseudonymiser = "leaky" }

[component.leaky]
source = "pseudonymise_leaks_nir.wasm"

[component.leaky.tool.carrel]
keyed_hash_domains = ["patient", "consultation"]
"#;

/// A valid NIR (its key checks), written with spaces as some sources do.
const NIR: &str = "2 69 05 49 588 157 80";
const NIR_COMPACT: &str = "269054958815780";

/// Two consultations of one patient, with the patient's NIR when `nir` is given.
fn consultations(nir: Option<&str>) -> Vec<u8> {
    let mut patient = serde_json::json!({
        "resourceType": "Patient", "id": "p1",
        "name": [{"family": "Kerjean", "given": ["Maëlle"]}],
        "birthDate": "1969-05-02", "gender": "female",
        "address": [{"postalCode": "29200", "country": "FR"}]
    });
    if let Some(nir) = nir {
        patient["identifier"] =
            serde_json::json!([{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": nir}]);
    }
    let encounter = |id: &str, start: &str| {
        serde_json::json!({
            "resourceType": "Encounter", "id": id, "class": {"code": "HH"},
            "subject": {"reference": "Patient/p1"}, "period": {"start": start},
            "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J11.1"}]}]
        })
    };
    [
        patient,
        encounter("e1", "2025-01-14T22:10:00+01:00"),
        encounter("e2", "2025-01-18T03:40:00+01:00"),
    ]
    .iter()
    .map(|r| format!("{r}\n"))
    .collect::<String>()
    .into_bytes()
}

#[test]
fn pseudonymiser_that_leaks_a_nir_is_refused_and_nothing_is_stored() {
    let app = TestApp::new(
        LEAKY_MANIFEST,
        &[
            ("ingest_fhir.wasm", support::guests::INGEST_FHIR),
            (
                "pseudonymise_leaks_nir.wasm",
                support::guests::PSEUDONYMISE_LEAKS_NIR,
            ),
        ],
    );
    let state = app.path().join(".spin");
    run(&state, &["keys", "init"]);
    let token = support::ingest_token(&state, "sos-brest");
    let carrel = app.start(&[]);
    let post = |body: Vec<u8>| {
        let response = carrel
            .client
            .post(carrel.url("/ingest/fhir"))
            .bearer_auth(&token)
            .header("content-type", "application/fhir+ndjson")
            .header("idempotency-key", "brest-2025-01-19")
            .body(body)
            .send()
            .unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };

    // The leaking batch is refused whole with an OperationOutcome that names the column
    // and does not repeat the identifier.
    let (status, body) = post(consultations(Some(NIR)));
    assert_eq!(status, 422, "{body}");
    let outcome: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcome["resourceType"], "OperationOutcome", "{outcome}");
    let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        diagnostics.contains("`diagnoses`") && diagnostics.contains("valid NIR"),
        "{outcome}"
    );
    assert!(!body.contains(NIR_COMPACT) && !body.contains(NIR), "{body}");

    // Refused again when sent again: a refusal leaves no receipt to replay.
    let (status, body) = post(consultations(Some(NIR)));
    assert_eq!(status, 422, "{body}");

    // The server still answers, and the same batch key is free for a batch that does not
    // leak (this pseudonymiser has no NIR to copy when the source sends none).
    let (status, body) = post(consultations(None));
    assert_eq!(status, 201, "{body}");
    let receipt: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(receipt["rows_accepted"], 2, "{receipt}");
    drop(carrel);

    // Stored: the one batch that did not leak, nothing of the refused ones.
    let vault = carrel_vault::Vault::open(&state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
    let segments = vault.segments("consultations").unwrap();
    assert_eq!(segments.len(), 1, "{segments:?}");
    assert_eq!(segments[0].id, receipt["segment"].as_str().unwrap());
    let stored: String = vault
        .scan("consultations", &["diagnoses", "departement"])
        .unwrap()
        .map(|b| format!("{:?}", b.unwrap()))
        .collect();
    assert!(!stored.contains(NIR_COMPACT), "{stored}");
    drop(vault);

    // Both refusals are audited under the authenticated association, with the reason
    // and without the identifier; only the accepted batch was appended.
    let log = run(&state, &["audit", "export"]);
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let refusals: Vec<_> = entries
        .iter()
        .filter(|e| e["action"] == "ingest.refused")
        .collect();
    assert_eq!(refusals.len(), 2, "{log}");
    for refusal in refusals {
        assert_eq!(refusal["actor"], "sos-brest", "{refusal}");
        assert_eq!(refusal["subject"], "dataset:consultations", "{refusal}");
        let reason = refusal["details"]["reason"].as_str().unwrap();
        assert!(
            reason.contains("`diagnoses`") && reason.contains("NIR"),
            "{refusal}"
        );
    }
    assert!(!log.contains(NIR_COMPACT), "{log}");
    assert_eq!(log.matches("\"dataset.append\"").count(), 1, "{log}");
    assert!(run(&state, &["audit", "verify"]).starts_with("OK"));
    let checked = run(&state, &["audit", "verify", "--segments"]);
    assert!(checked.contains("OK: 1 of 1 segments intact"), "{checked}");
}
