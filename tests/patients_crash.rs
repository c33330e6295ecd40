//! Removals are crash-safe and leave ingestion running: `carrel patients object` killed
//! with SIGKILL at random points of its pass leaves every segment either old or new,
//! never neither and never both counted, and the next run finishes the pass; while
//! `carrel up` rewrites the store on its schedule, ingestion keeps answering.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};
use support::batches::{Batch, synthetic_batches};
use support::desk::{INGESTION, token};
use support::ingest_token;
use support::patients::{StoredRow, post, stored_rows, synth_patients};
use support::{Carrel, TestApp, carrel_command, carrel_ok as run, guests};

const KILLS: u64 = 8;

/// A small deterministic generator for the kill points (xorshift64*).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn app() -> TestApp {
    TestApp::new(
        &format!("spin_manifest_version = 2\n[application]\nname = \"rights-crash\"\n{INGESTION}"),
        &[
            ("ingest_fhir.wasm", guests::INGEST_FHIR),
            ("pseudonymise.wasm", guests::PSEUDONYMISE),
        ],
    )
}

/// Sends every batch, one segment each; returns the receipts.
fn ingest(carrel: &Carrel, token: &str, batches: &[Batch]) -> Vec<serde_json::Value> {
    batches
        .iter()
        .map(|batch| {
            let (status, body) = post(
                carrel,
                token,
                batch.body.clone(),
                "application/fhir+ndjson",
                &batch.key,
            );
            assert_eq!(status, 201, "{}: {body}", batch.key);
            serde_json::from_str(&body).unwrap()
        })
        .collect()
}

fn catalog(state: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(state.join(carrel_vault::CATALOG_FILE)).unwrap()
}

fn strings(state: &Path, sql: &str) -> BTreeSet<String> {
    let conn = catalog(state);
    let mut statement = conn.prepare(sql).unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// After a kill, as the next process finds it: every consultation is stored at most once,
/// none is invented, nobody who did not object lost any, every segment file is the
/// catalog's, and the audit chain verifies. Returns whether a pass is left unfinished.
fn check_after_kill(state: &Path, expected: &[StoredRow], kill: u64) -> (bool, u64) {
    // Opening the vault removes the orphan files a kill left (a new segment written and
    // not committed, or an old one committed away and not yet removed).
    let orphans = carrel_vault::Vault::open(state, &carrel_vault::MasterKeyEnv::unset())
        .unwrap()
        .orphans_removed_at_open();
    let rows = stored_rows(state);
    let registered = strings(state, "SELECT pseudonym FROM patient_objections");
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.consultation_id.as_str()).collect();
    assert_eq!(
        ids.len(),
        rows.len(),
        "kill {kill}: a consultation counted twice"
    );
    let expected_set: BTreeSet<&StoredRow> = expected.iter().collect();
    assert!(
        rows.iter().all(|r| expected_set.contains(r)),
        "kill {kill}: a row appeared"
    );
    let stored: BTreeSet<&StoredRow> = rows.iter().collect();
    let lost = expected
        .iter()
        .filter(|r| !registered.contains(&r.patient_id) && !stored.contains(r))
        .count();
    assert_eq!(
        lost, 0,
        "kill {kill}: rows of patients who did not object are gone"
    );
    let files = std::fs::read_dir(state.join("segments/consultations"))
        .unwrap()
        .count();
    let segments = strings(state, "SELECT file_name FROM segments").len();
    assert_eq!(
        files, segments,
        "kill {kill}: segment files beside the catalog's"
    );
    let verify = carrel_command()
        .args(["audit", "verify", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    assert!(verify.status.success(), "kill {kill}: {verify:?}");
    let vault = carrel_vault::Vault::open(state, &carrel_vault::MasterKeyEnv::unset()).unwrap();
    (vault.purge_pending("consultations").unwrap(), orphans)
}

fn object(state: &Path, nir: &str) -> std::process::Command {
    let mut command = carrel_command();
    command
        .args(["patients", "object", "--nir", nir, "--state-dir"])
        .arg(state)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    command
}

#[test]
fn sigkill_during_a_pass_leaves_every_row_once_and_the_next_run_finishes_it() {
    let app = app();
    let state = app.path().join("state");
    run(&state, &["keys", "init"]);
    let token = ingest_token(&state, "sos-crash");
    let synth = app.path().join("synth");
    let batches = synthetic_batches(&synth, 3000, 15, "crash");
    let carrel = app.start(&["--state-dir", state.to_str().unwrap()]);
    ingest(&carrel, &token, &batches);
    drop(carrel);
    let expected = stored_rows(&state);
    let old_keys = strings(&state, "SELECT key_id FROM data_keys");
    let mut candidates: Vec<_> = synth_patients(&synth).into_values().collect();
    candidates.sort_by_key(|p| std::cmp::Reverse(p.consultations));
    let nirs: Vec<String> = candidates.iter().map(|p| p.nir.clone().unwrap()).collect();

    // How long a whole command takes, on a copy.
    let calibration = app.path().join("calibration");
    copy_dir(&state, &calibration);
    let started = Instant::now();
    assert!(object(&calibration, &nirs[0]).status().unwrap().success());
    let whole = started.elapsed().as_millis() as u64;

    let seed = std::env::var("CARREL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0b1e_c710);
    let mut dice = Dice(seed);
    let (mut mid_pass, mut orphans) = (0, 0);
    for kill in 0..KILLS {
        let mut child = object(&state, &nirs[kill as usize + 1]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(
            whole / 10 + dice.below(whole * 8 / 10),
        ));
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        child.wait().unwrap();
        let (pending, removed) = check_after_kill(&state, &expected, kill);
        mid_pass += u64::from(pending);
        orphans += removed;
    }
    assert!(
        mid_pass >= KILLS / 4,
        "only {mid_pass} of {KILLS} kills landed during a pass (a whole command took {whole} ms)"
    );

    // The next run finishes: exactly the objecting patients' rows are gone, and the keys
    // every old segment was under are destroyed.
    let out = carrel_command()
        .args(["patients", "apply", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let registered = strings(&state, "SELECT pseudonym FROM patient_objections");
    assert!(!registered.is_empty());
    let remaining: Vec<StoredRow> = expected
        .iter()
        .filter(|r| !registered.contains(&r.patient_id))
        .cloned()
        .collect();
    assert!(remaining.len() < expected.len());
    assert_eq!(stored_rows(&state), remaining);
    assert!(!check_after_kill(&state, &expected, KILLS).0);
    assert!(old_keys.is_disjoint(&strings(&state, "SELECT key_id FROM data_keys")));
    eprintln!(
        "{KILLS} kills (seed {seed:#x}), {mid_pass} during a pass of {} segments (~{whole} ms a command), {orphans} orphan files removed at the next open; {} of {} rows left",
        batches.len(),
        remaining.len(),
        expected.len()
    );
}

#[test]
fn ingestion_keeps_answering_while_a_scheduled_pass_rewrites_the_store() {
    let app = app();
    let state = app.path().join("state");
    run(&state, &["keys", "init"]);
    let first = ingest_token(&state, "sos-first");
    let second = ingest_token(&state, "sos-second");
    let (_, auditor) = token(&state, "auditor");
    let synth = app.path().join("synth");
    let batches = synthetic_batches(&synth, 2000, 10, "sched");
    let config = app.path().join("runtime-config.toml");
    std::fs::write(&config, "[patients]\npass_interval_seconds = 1\n").unwrap();
    let args = [
        "--state-dir",
        state.to_str().unwrap(),
        "--runtime-config-file",
        config.to_str().unwrap(),
    ];
    let carrel = app.start(&args);
    ingest(&carrel, &first, &batches);
    let objector = synth_patients(&synth)
        .into_values()
        .max_by_key(|p| p.consultations)
        .unwrap();

    // A second association sends the same kind of data all along; meanwhile the first
    // registers an objection, which wakes the pass.
    let receipts = std::thread::scope(|scope| {
        // Paced, so that it is still sending when the pass (woken within a second) runs.
        let sender = scope.spawn(|| {
            batches
                .chunks(1)
                .flat_map(|batch| {
                    std::thread::sleep(Duration::from_millis(15));
                    ingest(&carrel, &second, batch)
                })
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(200));
        let (status, answer) = post(
            &carrel,
            &first,
            objector.consent(true),
            "application/fhir+json",
            "objection",
        );
        assert_eq!(status, 201, "{answer}");
        let started = Instant::now();
        loop {
            let page = carrel
                .client
                .get(carrel.url("/audit/patients"))
                .bearer_auth(&auditor)
                .send()
                .unwrap()
                .text()
                .unwrap();
            let passes = page
                .split("id=\"rights-total\"")
                .nth(1)
                .and_then(|total| total.split("<td class=\"num passes\">").nth(1))
                .and_then(|cell| cell.split('<').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
            if passes > 0 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "no pass: {page}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        sender.join().unwrap()
    });
    drop(carrel);

    // Appends were committed between the pass's start and its end.
    let log: Vec<serde_json::Value> = run(&state, &["audit", "export"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seq_of = |phase: &str| {
        log.iter()
            .find(|e| e["action"] == "dataset.purge" && e["details"]["phase"] == phase)
            .unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    let (pass_started, pass_completed) = (seq_of("started"), seq_of("completed"));
    let during = log
        .iter()
        .filter(|e| e["action"] == "dataset.append")
        .filter(|e| (pass_started..pass_completed).contains(&e["seq"].as_u64().unwrap()))
        .count();
    assert!(
        during > 0,
        "no append between #{pass_started} and #{pass_completed}"
    );

    // Nothing of the objecting patient is left; everything else is stored once.
    let rows = stored_rows(&state);
    let pseudonym = objector.pseudonym(&state);
    assert!(rows.iter().all(|r| r.patient_id != pseudonym));
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.consultation_id.as_str()).collect();
    assert_eq!(ids.len(), rows.len());
    let per_association = 2000 - objector.consultations as u64;
    let accepted: u64 = receipts
        .iter()
        .map(|r| r["rows_accepted"].as_u64().unwrap())
        .sum();
    let withheld: u64 = receipts
        .iter()
        .map(|r| r["rows_withheld"].as_u64().unwrap())
        .sum();
    // The second association's rows of the objector were withheld, or stored before the
    // objection and removed by the pass.
    assert!(withheld <= objector.consultations as u64);
    assert_eq!(
        rows.len() as u64,
        per_association + accepted - (objector.consultations as u64 - withheld)
    );
    let by_reason: BTreeMap<String, u64> = log
        .iter()
        .filter(|e| e["action"] == "dataset.rewrite")
        .flat_map(|e| {
            e["details"]["rows_removed"]
                .as_object()
                .cloned()
                .unwrap_or_default()
        })
        .fold(BTreeMap::new(), |mut sum, (reason, n)| {
            *sum.entry(reason).or_default() += n.as_u64().unwrap();
            sum
        });
    assert_eq!(
        by_reason.get("objection").copied(),
        Some(2 * objector.consultations as u64 - withheld)
    );
}
