//! Crash safety: a child process appends in a loop and is SIGKILLed at varied moments;
//! after each kill the catalog and the segment files must agree exactly.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use arrow_array::RecordBatch;
use carrel_vault::{SEGMENTS_DIR, Vault, VerifyReport};
use common::{DATASET, consultation_batch, test_key, vault_with_consultations};

/// Set in the child: the test binary re-executes this very test, which then appends.
const CHILD_ENV: &str = "CARREL_VAULT_CRASH_CHILD_STATE_DIR";
const TEST_NAME: &str = "killed_appender_leaves_catalog_and_files_in_agreement";
const READY: &str = "carrel-vault crash child ready";
const APPENDED: &str = "carrel-vault crash child appended";
const KILLS: u64 = 24;

/// The batch the child appends at `position`, so the parent knows what each segment holds.
fn batch_for(position: u64) -> RecordBatch {
    consultation_batch(
        position * 1_000_000,
        500 + (position * 7919 % 6000) as usize,
    )
}

fn append_until_killed(state_dir: &Path) -> ! {
    let vault = Vault::open(state_dir, &test_key()).expect("child opens the vault");
    println!("{READY}");
    loop {
        let position = vault.segments(DATASET).unwrap().len() as u64;
        vault
            .append(DATASET, &batch_for(position), "crash-child")
            .unwrap();
        println!("{APPENDED}");
    }
}

/// Opens the vault (which sweeps orphans) and checks catalog, files, contents and the
/// audit log agree. Returns how many segments there are.
fn check_agreement(state_dir: &Path, already_checked: u64) -> (u64, u64) {
    let vault = Vault::open(state_dir, &test_key()).unwrap();
    let segments = vault.segments(DATASET).unwrap();
    let positions: Vec<u64> = segments.iter().map(|s| s.position).collect();
    assert_eq!(
        positions,
        (0..segments.len() as u64).collect::<Vec<_>>(),
        "positions are contiguous"
    );
    assert_eq!(
        vault.verify_segments(DATASET).unwrap(),
        segments.len() as u64
    );

    let on_disk: BTreeSet<_> = std::fs::read_dir(state_dir.join(SEGMENTS_DIR).join(DATASET))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let in_catalog: BTreeSet<_> = segments.iter().map(|s| s.file.clone()).collect();
    assert_eq!(on_disk, in_catalog, "no orphan or temp file survives open");

    let mut scan = vault
        .scan(DATASET, &["consultation_id", "diagnoses", "hour"])
        .unwrap();
    for (segment, batch) in segments.iter().zip(scan.by_ref()) {
        let batch = batch.unwrap();
        assert_eq!(batch.num_rows() as u64, segment.rows);
        if segment.position >= already_checked {
            let expected = batch_for(segment.position);
            assert_eq!(
                batch,
                expected.project(&[0, 9, 4]).unwrap(),
                "segment {} is whole",
                segment.position
            );
        }
    }
    assert_eq!(scan.segment_ids_read().len(), segments.len());

    let appends = vault
        .audit()
        .entries(0)
        .unwrap()
        .iter()
        .filter(|e| e.action == "dataset.append")
        .count();
    assert_eq!(
        appends,
        segments.len(),
        "one committed audit entry per visible segment"
    );
    assert!(matches!(
        vault.audit().verify().unwrap(),
        VerifyReport::Intact { .. }
    ));
    (segments.len() as u64, vault.orphans_removed_at_open())
}

#[test]
fn killed_appender_leaves_catalog_and_files_in_agreement() {
    if let Ok(state_dir) = std::env::var(CHILD_ENV) {
        append_until_killed(Path::new(&state_dir));
    }
    let dir = tempfile::tempdir().unwrap();
    drop(vault_with_consultations(dir.path()));
    let mut segments = 0;
    let mut orphans_removed = 0;
    for kill in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every sixth kill lands during start-up (open, orphan sweep); the others after
        // the child is appending, at delays spread over a few append durations. Every
        // third waits for a completed append first, so the run makes progress however
        // slow the machine is. The reader stays open until the kill: a closed pipe would
        // end the child by a failed print instead.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        if kill % 6 != 0 {
            // The harness prints "test <name> ... " without a newline before the test runs.
            assert!(
                lines.any(|line| line.unwrap().ends_with(READY)),
                "child never became ready"
            );
        }
        if kill % 3 == 1 {
            assert!(
                lines.any(|line| line.unwrap() == APPENDED),
                "child never appended"
            );
        }
        std::thread::sleep(Duration::from_millis((kill * 53) % 300 + kill % 3));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(lines);
        let (now, removed) = check_agreement(dir.path(), segments);
        assert!(now >= segments, "no committed segment disappears");
        println!("kill {kill}: {now} segments, {removed} orphan files swept at open");
        segments = now;
        orphans_removed += removed;
    }
    assert!(
        segments >= KILLS / 3,
        "the child made progress between kills ({segments} segments)"
    );
    println!("{KILLS} kills: {segments} segments survived, {orphans_removed} orphan files swept");
}
