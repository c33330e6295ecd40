//! Ingestion requests cut from `carrel synth` output, for the crash and load tests.

use super::carrel_command;
use std::collections::HashMap;
use std::path::Path;

/// One ingestion request: its idempotency key, NDJSON body and number of Encounters.
pub struct Batch {
    pub key: String,
    pub body: Vec<u8>,
    pub rows: u64,
}

/// `consultations` synthetic consultations (`carrel synth` into `dir`) split into batches of
/// `per_batch` at Patient lines (each consultation is a
/// Patient, an Encounter and maybe a Condition, so every batch is self-contained).
pub fn synthetic_batches(
    dir: &Path,
    consultations: u64,
    per_batch: usize,
    name: &str,
) -> Vec<Batch> {
    let out = carrel_command()
        .args(["synth", "--seed", "11", "--consultations"])
        .arg(consultations.to_string())
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut batches = Vec::new();
    let mut body = String::new();
    let mut in_batch = 0;
    let mut rows = 0;
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    let lines: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    for line in lines.iter().map(String::as_str).chain([""]) {
        let patient = line.is_empty() || line.starts_with(r#"{"resourceType":"Patient""#);
        if patient && (in_batch == per_batch || line.is_empty()) && !body.is_empty() {
            batches.push(Batch {
                key: format!("{name}-{}", batches.len()),
                body: std::mem::take(&mut body).into_bytes(),
                rows,
            });
            in_batch = 0;
            rows = 0;
        }
        if patient {
            in_batch += 1;
        }
        if line.starts_with(r#"{"resourceType":"Encounter""#) {
            rows += 1;
        }
        body.push_str(line);
        body.push('\n');
    }
    batches
}

/// Segment id → rows, read from the vault while no server runs.
pub fn stored_segments(state: &Path) -> HashMap<String, u64> {
    let vault = carrel_vault::Vault::open(state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
    vault
        .segments("consultations")
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.id, s.rows))
        .collect()
}
