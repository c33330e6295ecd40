//! Tests of purge passes ([`crate::purge`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::types::Date32Type;
use arrow_array::{Date32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

use crate::dataset::ColumnGroups;
use crate::master_key::MasterKeyEnv;
use crate::purge::{PURGE_ACTION, REWRITE_ACTION, RowRemoval, RowSelector};
use crate::store::Vault;
use crate::{VaultError, VerifyReport};

const DATASET: &str = "visits";
const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("patient", DataType::Utf8, false),
        Field::new("day", DataType::Date32, false),
        Field::new("note", DataType::Utf8, false),
    ]))
}

fn open(dir: &Path) -> Vault {
    Vault::open(dir, &MasterKeyEnv::with_value(KEY)).unwrap()
}

fn vault(dir: &Path) -> Vault {
    let vault = open(dir);
    vault
        .create_dataset(
            DATASET,
            &schema(),
            &ColumnGroups::new()
                .with_group("identifiers", &["patient"])
                .with_group("encounter", &["day"])
                .with_group("clinical", &["note"]),
            "test",
        )
        .unwrap();
    vault
}

fn batch(rows: &[(&str, i32)]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| format!("{}@{}", r.0, r.1)),
            )),
        ],
    )
    .unwrap()
}

/// Removes the rows of `objecting` patients, and rows before `before`.
struct Remove {
    objecting: BTreeSet<String>,
    before: i32,
    /// Fails at this call of `select` (counting from 1), as a crash would stop a pass.
    fail_at_call: Option<usize>,
    calls: AtomicUsize,
}

impl Remove {
    fn new(objecting: &[&str], before: i32) -> Self {
        Self {
            objecting: objecting.iter().map(|p| (*p).to_owned()).collect(),
            before,
            fail_at_call: None,
            calls: AtomicUsize::new(0),
        }
    }
}

impl RowSelector for Remove {
    fn columns(&self) -> Vec<String> {
        vec!["patient".into(), "day".into()]
    }

    fn select(&self, rows: &RecordBatch) -> Result<RowRemoval, String> {
        let patients = rows.column(0).as_string::<i32>();
        let days = rows.column(1).as_primitive::<Date32Type>();
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at_call == Some(call) {
            return Err("stopped here".into());
        }
        let mut removal = RowRemoval::default();
        for (patient, day) in patients.iter().zip(days.iter()) {
            let (patient, day) = (patient.unwrap(), day.unwrap());
            let reason = if self.objecting.contains(patient) {
                Some("objection")
            } else if day < self.before {
                Some("retention")
            } else {
                None
            };
            removal.keep.push(reason.is_none());
            if let Some(reason) = reason {
                *removal.removed.entry(reason.into()).or_default() += 1;
            }
        }
        Ok(removal)
    }
}

fn stored(vault: &Vault) -> Vec<(String, i32, String)> {
    let mut rows = Vec::new();
    for batch in vault.scan(DATASET, &["patient", "day", "note"]).unwrap() {
        let batch = batch.unwrap();
        for i in 0..batch.num_rows() {
            rows.push((
                batch.column(0).as_string::<i32>().value(i).to_owned(),
                batch.column(1).as_primitive::<Date32Type>().value(i),
                batch.column(2).as_string::<i32>().value(i).to_owned(),
            ));
        }
    }
    rows.sort();
    rows
}

fn key_ids(dir: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(dir.join(crate::CATALOG_FILE)).unwrap();
    let mut statement = conn.prepare("SELECT key_id FROM data_keys").unwrap();
    statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir.join(crate::SEGMENTS_DIR).join(DATASET))
        .unwrap()
        .count()
}

/// Three segments: one loses a patient's rows, one loses all its rows, one keeps all.
fn three_segments(vault: &Vault) {
    vault
        .append(
            DATASET,
            &batch(&[("ann", 100), ("bob", 200), ("ann", 300)]),
            "t",
        )
        .unwrap();
    vault
        .append(DATASET, &batch(&[("ann", 400), ("cat", 50)]), "t")
        .unwrap();
    vault
        .append(DATASET, &batch(&[("bob", 500), ("cat", 600)]), "t")
        .unwrap();
}

#[test]
fn a_pass_removes_exactly_the_selected_rows_and_destroys_the_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault(dir.path());
    three_segments(&vault);
    let old_keys = key_ids(dir.path());
    let before = vault.segments(DATASET).unwrap();
    let selector = Remove::new(&["ann"], 60);
    assert_eq!(
        vault.rows_to_purge(DATASET, &selector).unwrap(),
        BTreeMap::from([("objection".into(), 3), ("retention".into(), 1)])
    );

    let mut steps = Vec::new();
    let report = vault
        .purge_rows(DATASET, "operator", &selector, &mut |p| steps.push(p))
        .unwrap();
    assert!(report.started_new_pass);
    assert_eq!(
        report.rows_removed,
        BTreeMap::from([("objection".into(), 3), ("retention".into(), 1)])
    );
    assert_eq!(
        (
            report.segments_rewritten,
            report.segments_removed,
            report.segments_reencrypted
        ),
        (1, 1, 1)
    );
    assert_eq!(report.data_keys_destroyed, 3);
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[2].rows_removed, 4);

    assert_eq!(
        stored(&vault),
        vec![
            ("bob".into(), 200, "bob@200".into()),
            ("bob".into(), 500, "bob@500".into()),
            ("cat".into(), 600, "cat@600".into()),
        ]
    );
    assert!(old_keys.is_disjoint(&key_ids(dir.path())));
    let after = vault.segments(DATASET).unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(segment_files(dir.path()), 2, "old files are gone");
    // The segment that kept its rows keeps its id; the one that lost some has a new one.
    assert_eq!(after[1].id, before[2].id);
    assert_ne!(after[0].id, before[0].id);
    assert_eq!((after[0].position, after[0].rows), (0, 1));
    assert_eq!(vault.verify_segments(DATASET).unwrap(), 2);
    assert_eq!(vault.earliest_date(DATASET, "day").unwrap(), Some(200));

    let entries = vault.audit().entries(0).unwrap();
    let rewrites: Vec<_> = entries
        .iter()
        .filter(|e| e.action == REWRITE_ACTION)
        .collect();
    assert_eq!(rewrites.len(), 2);
    assert_eq!(rewrites[0].details["rows_removed"]["objection"], 2);
    assert_eq!(rewrites[1].details["rows_after"], 0);
    let purges: Vec<_> = entries
        .iter()
        .filter(|e| e.action == PURGE_ACTION)
        .collect();
    assert_eq!(purges[0].details["phase"], "started");
    assert_eq!(purges[1].details["phase"], "completed");
    assert!(
        !format!("{entries:?}").contains("ann"),
        "no row value audited"
    );
    assert!(matches!(
        vault.audit().verify().unwrap(),
        VerifyReport::Intact { .. }
    ));

    // Nothing left to remove: the next pass changes nothing.
    let again = vault
        .purge_rows(DATASET, "operator", &selector, &mut |_| {})
        .unwrap();
    assert_eq!(again, Default::default());
}

fn files_holding(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if std::fs::read(&path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn the_destroyed_keys_are_nowhere_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault(dir.path());
    three_segments(&vault);
    let wrapped: Vec<Vec<u8>> = {
        let conn = rusqlite::Connection::open(dir.path().join(crate::CATALOG_FILE)).unwrap();
        let mut statement = conn.prepare("SELECT wrapped FROM data_keys").unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    assert!(
        !files_holding(dir.path(), &wrapped[0]).is_empty(),
        "the search finds them"
    );
    vault
        .purge_rows(DATASET, "t", &Remove::new(&["ann"], 0), &mut |_| {})
        .unwrap();
    for key in &wrapped {
        assert_eq!(
            files_holding(dir.path(), key),
            Vec::<std::path::PathBuf>::new()
        );
    }
}

#[test]
fn a_copy_of_an_old_segment_cannot_be_decrypted_after_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault(dir.path());
    three_segments(&vault);
    let first = vault.segments(DATASET).unwrap().remove(0);
    let copy = dir.path().join("backup.seg");
    std::fs::copy(&first.file, &copy).unwrap();
    let header = crate::segment_file::SegmentReader::open(&copy, first.bytes).unwrap();
    vault
        .purge_rows(DATASET, "t", &Remove::new(&["ann"], 0), &mut |_| {})
        .unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(crate::CATALOG_FILE)).unwrap();
    for block in &header.blocks {
        let master = vault.master();
        let key = vault
            .data_keys
            .get(&conn, &master, &block.key_id, DATASET, &block.group)
            .unwrap();
        assert!(
            key.is_none(),
            "the key of group {} still exists",
            block.group
        );
    }
}

#[test]
fn an_interrupted_pass_is_continued_and_appends_meanwhile_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    {
        let vault = vault(dir.path());
        three_segments(&vault);
        let mut failing = Remove::new(&["ann"], 0);
        // Three calls look for rows; the fifth is the second segment's rewrite.
        failing.fail_at_call = Some(5);
        let stopped = vault.purge_rows(DATASET, "t", &failing, &mut |_| {});
        assert!(
            matches!(stopped, Err(VaultError::Selector { .. })),
            "{stopped:?}"
        );
        assert!(vault.purge_pending(DATASET).unwrap());
        // An append while the pass is pending is under the new keys, and stays.
        vault.append(DATASET, &batch(&[("dan", 700)]), "t").unwrap();
    }
    let vault = open(dir.path());
    assert!(vault.purge_pending(DATASET).unwrap());
    let report = vault
        .purge_rows(DATASET, "t", &Remove::new(&["ann"], 0), &mut |_| {})
        .unwrap();
    assert!(!report.started_new_pass);
    assert!(!vault.purge_pending(DATASET).unwrap());
    let patients: Vec<String> = stored(&vault).into_iter().map(|r| r.0).collect();
    assert_eq!(patients, ["bob", "bob", "cat", "cat", "dan"]);
    assert_eq!(vault.segments(DATASET).unwrap().len(), 4);
    assert_eq!(segment_files(dir.path()), 4);
    assert!(matches!(
        vault.audit().verify().unwrap(),
        VerifyReport::Intact { .. }
    ));
}

#[test]
fn a_selector_that_miscounts_stops_the_pass_before_any_change() {
    struct Liar;
    impl RowSelector for Liar {
        fn columns(&self) -> Vec<String> {
            vec!["day".into()]
        }
        fn select(&self, rows: &RecordBatch) -> Result<RowRemoval, String> {
            Ok(RowRemoval {
                keep: vec![false; rows.num_rows()],
                removed: BTreeMap::new(),
            })
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let vault = vault(dir.path());
    three_segments(&vault);
    let keys = key_ids(dir.path());
    let refused = vault.purge_rows(DATASET, "t", &Liar, &mut |_| {});
    assert!(
        matches!(&refused, Err(VaultError::Selector { reason, .. }) if reason.contains("reasons")),
        "{refused:?}"
    );
    assert!(!vault.purge_pending(DATASET).unwrap());
    assert_eq!(key_ids(dir.path()), keys);
    assert_eq!(stored(&vault).len(), 7);
}
