//! For the patients' rights tests: who is in the source files, what the store holds
//! (decrypted, by patient pseudonym), FHIR Consents, and a search of the state directory
//! for identifiers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use carrel_warehouse::capabilities::keyed_hash::{KeyedHashGrants, PseudonymSecret};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn synthea_dir() -> PathBuf {
    repo().join("tests/fixtures/synthea-bulk-10")
}

/// A patient as the source files identify them, and how many consultations they have.
#[derive(Debug, Clone)]
pub struct SourcePatient {
    pub nir: Option<String>,
    pub family: String,
    pub given: String,
    pub birth_date: String,
    pub gender: String,
    pub consultations: usize,
}

impl SourcePatient {
    /// Their pseudonym in the store of `state`: the keyed hash of their identity key, as
    /// the pseudonymiser computes it.
    pub fn pseudonym(&self, state: &Path) -> String {
        let patient = carrel_fhir::IdentifiedPatient {
            nir: self.nir.clone(),
            family: Some(self.family.clone()),
            given: Some(self.given.clone()),
            birth_date: Some(self.birth_date.clone()),
            sex: Some(self.gender.clone()),
            ..Default::default()
        };
        let key = carrel_pseudonym::identity::identity_key(&patient).unwrap();
        let secret = PseudonymSecret::load_or_create(state).unwrap();
        let grants = KeyedHashGrants::new(&secret, &["patient".to_owned()]);
        grants
            .hash("patient", &[key.into_bytes()])
            .unwrap()
            .remove(0)
    }

    /// A FHIR Consent with a deny provision naming this patient in a contained Patient,
    /// with their NIR when `by_nir`, else by their identity traits alone.
    pub fn consent(&self, by_nir: bool) -> Vec<u8> {
        let mut patient = serde_json::json!({
            "resourceType": "Patient", "id": "objector",
            "name": [{"family": self.family, "given": [self.given]}],
            "birthDate": self.birth_date, "gender": self.gender
        });
        if by_nir {
            patient["identifier"] = serde_json::json!([
                {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": self.nir.as_deref().unwrap()}
            ]);
        }
        serde_json::json!({
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "#objector"},
            "contained": [patient],
            "provision": {"type": "deny"}
        })
        .to_string()
        .into_bytes()
    }
}

fn ndjson_lines(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("faulty")
        })
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn identified(resource: &serde_json::Value, nir: Option<String>) -> SourcePatient {
    let name = &resource["name"][0];
    SourcePatient {
        nir,
        family: name["family"].as_str().unwrap().to_owned(),
        given: name["given"][0].as_str().unwrap().to_owned(),
        birth_date: resource["birthDate"].as_str().unwrap().to_owned(),
        gender: resource["gender"].as_str().unwrap().to_owned(),
        consultations: 0,
    }
}

/// The patients of a `carrel synth` directory by NIR, each with their consultations
/// (every consultation has its Patient line).
pub fn synth_patients(dir: &Path) -> BTreeMap<String, SourcePatient> {
    let mut patients: BTreeMap<String, SourcePatient> = BTreeMap::new();
    for line in ndjson_lines(dir) {
        let resource: serde_json::Value = serde_json::from_str(&line).unwrap();
        if resource["resourceType"] != "Patient" {
            continue;
        }
        let nir = resource["identifier"][0]["value"]
            .as_str()
            .unwrap()
            .to_owned();
        patients
            .entry(nir.clone())
            .or_insert_with(|| identified(&resource, Some(nir)))
            .consultations += 1;
    }
    patients
}

/// The Synthea fixture's patients by id, each with their Encounters.
pub fn synthea_patients() -> BTreeMap<String, SourcePatient> {
    let mut patients = BTreeMap::new();
    let lines = ndjson_lines(&synthea_dir());
    for line in &lines {
        let resource: serde_json::Value = serde_json::from_str(line).unwrap();
        if resource["resourceType"] == "Patient" {
            let id = resource["id"].as_str().unwrap().to_owned();
            patients.insert(id, identified(&resource, None));
        }
    }
    for line in &lines {
        let resource: serde_json::Value = serde_json::from_str(line).unwrap();
        if resource["resourceType"] == "Encounter" {
            let subject = resource["subject"]["reference"].as_str().unwrap();
            let id = subject.rsplit(['/', ':']).next().unwrap();
            patients.get_mut(id).unwrap().consultations += 1;
        }
    }
    patients
}

/// One stored consultation, decrypted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredRow {
    pub consultation_id: String,
    pub patient_id: String,
    pub date: i32,
}

/// Every stored consultation of `state` (no server may run on it).
pub fn stored_rows(state: &Path) -> Vec<StoredRow> {
    let vault = carrel_vault::Vault::open(state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
    let mut rows = Vec::new();
    let Ok(scan) = vault.scan("consultations", &["consultation_id", "patient_id", "date"]) else {
        return rows;
    };
    for batch in scan {
        let batch = batch.unwrap();
        let ids = batch.column(0).as_string::<i32>();
        let patients = batch.column(1).as_string::<i32>();
        let dates = batch.column(2).as_primitive::<Date32Type>();
        for i in 0..batch.num_rows() {
            rows.push(StoredRow {
                consultation_id: ids.value(i).to_owned(),
                patient_id: patients.value(i).to_owned(),
                date: dates.value(i),
            });
        }
    }
    rows.sort();
    rows
}

/// Stored rows of each patient pseudonym.
pub fn rows_by_patient(rows: &[StoredRow]) -> BTreeMap<&str, usize> {
    let mut by = BTreeMap::new();
    for row in rows {
        *by.entry(row.patient_id.as_str()).or_default() += 1;
    }
    by
}

/// Every file under `dir` that holds one of `needles`, with the needle.
pub fn files_holding(dir: &Path, needles: &[String]) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        for needle in needles {
            if bytes
                .windows(needle.len())
                .any(|window| window == needle.as_bytes())
            {
                found.push((path.clone(), needle.clone()));
            }
        }
    }
    found
}

/// The sum of a CSV table's `column`.
pub fn column_total(rows: &[BTreeMap<String, String>], column: &str) -> u64 {
    rows.iter()
        .map(|r| r[column].parse::<u64>().unwrap_or(0))
        .sum()
}

/// An NDJSON payload of the consultations of the patient with `nir` in a `carrel synth`
/// directory (their Patient, Encounter and Condition lines), and how many there are.
pub fn synth_payload_of(dir: &Path, nir: &str) -> (Vec<u8>, usize) {
    let lines = ndjson_lines(dir);
    let mut ids = std::collections::BTreeSet::new();
    for line in &lines {
        let resource: serde_json::Value = serde_json::from_str(line).unwrap();
        if resource["resourceType"] == "Patient" && resource["identifier"][0]["value"] == nir {
            let id = resource["id"].as_str().unwrap();
            ids.insert(id.trim_start_matches("p-").to_owned());
        }
    }
    let mut body = Vec::new();
    for line in &lines {
        let resource: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = resource["id"].as_str().unwrap_or_default();
        let number = id.split_once('-').map_or("", |(_, n)| n);
        if ids.contains(number) {
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
        }
    }
    (body, ids.len())
}

/// An NDJSON payload of the Synthea fixture's patient `id` alone: their Patient line and
/// their Encounters.
pub fn synthea_payload_of(id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for line in ndjson_lines(&synthea_dir()) {
        let resource: serde_json::Value = serde_json::from_str(&line).unwrap();
        let subject = resource["subject"]["reference"]
            .as_str()
            .unwrap_or_default();
        let mine = match resource["resourceType"].as_str() {
            Some("Patient") => resource["id"] == id,
            Some("Encounter") => subject.ends_with(id),
            _ => false,
        };
        if mine {
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
        }
    }
    body
}

/// POSTs `body` to the FHIR ingestion endpoint as `token`; the status and the answer.
pub fn post(
    carrel: &super::Carrel,
    token: &str,
    body: Vec<u8>,
    content_type: &str,
    key: &str,
) -> (u16, String) {
    let response = carrel
        .client
        .post(carrel.url("/ingest/fhir"))
        .bearer_auth(token)
        .header("content-type", content_type)
        .header("idempotency-key", key)
        .body(body)
        .send()
        .unwrap();
    (response.status().as_u16(), response.text().unwrap())
}
