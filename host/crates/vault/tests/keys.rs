mod common;

use carrel_vault::{KeySource, MASTER_KEY_FILE, MasterKeyEnv, Vault, VaultError, init_master_key};
use common::{ACTOR, DATASET, consultation_batch, read_all, test_key, vault_with_consultations};

fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    dir.join(MASTER_KEY_FILE)
}

fn catalog_count(dir: &std::path::Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join(carrel_vault::CATALOG_FILE)).unwrap();
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

fn actions(vault: &Vault) -> Vec<String> {
    vault
        .audit()
        .entries(0)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

#[test]
fn missing_master_key_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let error = Vault::open(dir.path(), &MasterKeyEnv::unset())
        .err()
        .unwrap();
    assert!(matches!(error, VaultError::NoMasterKey));
    assert_eq!(
        error.to_string(),
        "no master key: run `carrel keys init` or set CARREL_MASTER_KEY"
    );
}

#[test]
fn wrong_master_key_is_refused_at_open_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    drop(vault_with_consultations(dir.path()));
    let other = MasterKeyEnv::with_value(MasterKeyEnv::generate_value().as_str());
    let error = Vault::open(dir.path(), &other).err().unwrap();
    assert!(matches!(error, VaultError::WrongMasterKey));
    assert_eq!(
        error.to_string(),
        "the master key does not match this state directory"
    );
}

#[test]
fn wrong_key_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    init_master_key(dir.path(), &MasterKeyEnv::unset(), ACTOR).unwrap();
    std::fs::write(
        key_file(dir.path()),
        format!("{}\n", MasterKeyEnv::generate_value().as_str()),
    )
    .unwrap();
    assert!(matches!(
        Vault::open(dir.path(), &MasterKeyEnv::unset()),
        Err(VaultError::WrongMasterKey)
    ));
}

#[test]
fn malformed_keys_are_reported_as_malformed() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Vault::open(dir.path(), &MasterKeyEnv::with_value("c2hvcnQ=")),
        Err(VaultError::MalformedEnvMasterKey)
    ));
    std::fs::write(key_file(dir.path()), "not base64 at all").unwrap();
    assert!(matches!(
        Vault::open(dir.path(), &MasterKeyEnv::unset()),
        Err(VaultError::MalformedMasterKeyFile { .. })
    ));
}

#[test]
fn environment_and_file_holding_different_keys_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    init_master_key(dir.path(), &MasterKeyEnv::unset(), ACTOR).unwrap();
    let error = Vault::open(dir.path(), &test_key()).err().unwrap();
    assert!(
        matches!(error, VaultError::ConflictingMasterKeys { .. }),
        "{error}"
    );
}

#[test]
fn environment_and_file_holding_the_same_key_reports_both() {
    let dir = tempfile::tempdir().unwrap();
    init_master_key(dir.path(), &MasterKeyEnv::unset(), ACTOR).unwrap();
    let same = MasterKeyEnv::with_value(
        std::fs::read_to_string(key_file(dir.path()))
            .unwrap()
            .trim(),
    );
    let vault = Vault::open(dir.path(), &same).unwrap();
    assert_eq!(
        vault.key_source(),
        &KeySource::EnvironmentAndFile(key_file(dir.path()))
    );
}

#[test]
fn keys_init_writes_a_private_key_file_once_and_refuses_to_overwrite_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let report = init_master_key(dir.path(), &MasterKeyEnv::unset(), ACTOR).unwrap();
    assert_eq!(report.source, KeySource::File(key_file(dir.path())));
    let mode = std::fs::metadata(key_file(dir.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let before = std::fs::read(key_file(dir.path())).unwrap();
    let error = init_master_key(dir.path(), &MasterKeyEnv::unset(), ACTOR).unwrap_err();
    assert!(matches!(error, VaultError::MasterKeyExists { .. }));
    assert!(
        error.to_string().contains("refusing to overwrite"),
        "{error}"
    );
    assert_eq!(std::fs::read(key_file(dir.path())).unwrap(), before);
    let vault = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
    assert_eq!(actions(&vault), ["key.init"]);
}

#[test]
fn keys_init_with_the_environment_key_binds_without_writing_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = init_master_key(dir.path(), &test_key(), ACTOR).unwrap();
    assert_eq!(
        (report.source, report.created_file),
        (KeySource::Environment, None)
    );
    assert!(!key_file(dir.path()).exists());
    assert!(matches!(
        init_master_key(dir.path(), &test_key(), ACTOR),
        Err(VaultError::AlreadyInitialised { .. })
    ));
}

#[test]
fn keys_init_after_the_key_file_was_lost_refuses_to_make_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    init_master_key(dir.path(), &MasterKeyEnv::unset(), ACTOR).unwrap();
    std::fs::remove_file(key_file(dir.path())).unwrap();
    assert!(matches!(
        init_master_key(dir.path(), &MasterKeyEnv::unset(), ACTOR),
        Err(VaultError::MasterKeyLost { .. })
    ));
    assert!(!key_file(dir.path()).exists());
}

#[test]
fn a_second_open_of_the_same_state_directory_is_refused_while_the_first_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), &test_key()).unwrap();
    assert!(matches!(
        Vault::open(dir.path(), &test_key()),
        Err(VaultError::StateDirLocked { .. })
    ));
    drop(vault);
    Vault::open(dir.path(), &test_key()).unwrap();
}

fn file_keyed_vault_with_data(dir: &std::path::Path) -> (Vault, arrow_array::RecordBatch) {
    init_master_key(dir, &MasterKeyEnv::unset(), ACTOR).unwrap();
    let vault = Vault::open(dir, &MasterKeyEnv::unset()).unwrap();
    let schema = carrel_vault::consultation::consultation_schema();
    vault
        .create_dataset(
            DATASET,
            &schema,
            &carrel_vault::consultation::consultation_column_groups(),
            ACTOR,
        )
        .unwrap();
    vault
        .create_dataset(
            "second",
            &schema,
            &carrel_vault::consultation::consultation_column_groups(),
            ACTOR,
        )
        .unwrap();
    for start in [0, 40, 80, 120, 160] {
        vault
            .append(DATASET, &consultation_batch(start, 40), ACTOR)
            .unwrap();
    }
    vault
        .append("second", &consultation_batch(0, 40), ACTOR)
        .unwrap();
    let expected = read_all(&vault, DATASET);
    (vault, expected)
}

#[test]
fn master_rotation_keeps_every_row_and_retires_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, expected) = file_keyed_vault_with_data(dir.path());
    let old_key = std::fs::read_to_string(key_file(dir.path())).unwrap();
    let report = vault.rotate_master_key(ACTOR).unwrap();
    assert_eq!(
        report.data_keys_rewrapped, 8,
        "4 groups in each of 2 datasets"
    );
    assert_eq!(read_all(&vault, DATASET), expected);
    vault
        .append(DATASET, &consultation_batch(200, 10), ACTOR)
        .unwrap();
    drop(vault);

    assert_ne!(
        std::fs::read_to_string(key_file(dir.path())).unwrap(),
        old_key
    );
    assert!(!dir.path().join("master.key.next").exists());
    let reopened = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
    assert_eq!(read_all(&reopened, DATASET).slice(0, 200), expected);
    assert!(actions(&reopened).contains(&"key.rotate".to_owned()));
    drop(reopened);
    std::fs::write(key_file(dir.path()), old_key).unwrap();
    assert!(matches!(
        Vault::open(dir.path(), &MasterKeyEnv::unset()),
        Err(VaultError::WrongMasterKey)
    ));
}

#[test]
fn rotation_refuses_a_key_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let vault = vault_with_consultations(dir.path());
    assert!(matches!(
        vault.rotate_master_key(ACTOR),
        Err(VaultError::RotationNeedsKeyFile { .. })
    ));
    assert!(!key_file(dir.path()).exists());
}

#[test]
fn new_key_of_a_rotation_that_never_committed_is_discarded_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, expected) = file_keyed_vault_with_data(dir.path());
    drop(vault);
    // What a crash between writing master.key.next and the rewrap commit leaves behind.
    let next = dir.path().join("master.key.next");
    std::fs::write(
        &next,
        format!("{}\n", MasterKeyEnv::generate_value().as_str()),
    )
    .unwrap();
    // And what a crash while writing that file leaves: a temp file holding key material.
    let interrupted = dir.path().join(".master.key.next.0a1b2c3d.tmp");
    std::fs::write(&interrupted, "half a key").unwrap();
    let vault = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
    assert!(!next.exists());
    assert!(!interrupted.exists());
    assert_eq!(read_all(&vault, DATASET), expected);
}

#[test]
fn data_rotation_re_encrypts_every_segment_and_destroys_the_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, expected) = file_keyed_vault_with_data(dir.path());
    let before = vault.segments(DATASET).unwrap();
    let report = vault.rotate_data_keys(ACTOR, None).unwrap();
    assert!(report.started_new_rotation && report.completed);
    assert_eq!(
        (report.segments_reencrypted, report.data_keys_destroyed),
        (6, 8)
    );
    let after = vault.segments(DATASET).unwrap();
    for (old, new) in before.iter().zip(&after) {
        assert_eq!((&old.id, old.position), (&new.id, new.position));
        assert_ne!(old.sha256, new.sha256);
        assert!(!old.file.exists(), "old file removed");
    }
    assert_eq!(read_all(&vault, DATASET), expected);
    assert_eq!(vault.verify_segments(DATASET).unwrap(), 5);
    assert_eq!(
        catalog_count(dir.path(), "SELECT count(*) FROM data_keys"),
        8
    );
    assert!(!vault.data_rotation_pending().unwrap());
    let rotate_entries = actions(&vault)
        .iter()
        .filter(|a| *a == "key.rotate_data")
        .count();
    assert_eq!(rotate_entries, 2, "started and completed");
}

#[test]
fn interrupted_data_rotation_resumes_where_it_stopped_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, expected) = file_keyed_vault_with_data(dir.path());
    let partial = vault.rotate_data_keys(ACTOR, Some(2)).unwrap();
    assert_eq!(
        (
            partial.segments_reencrypted,
            partial.segments_remaining,
            partial.completed
        ),
        (2, 4, false)
    );
    // A segment appended mid-rotation is written under the new keys straight away.
    vault
        .append(DATASET, &consultation_batch(200, 10), ACTOR)
        .unwrap();
    // A re-encrypted file whose catalog switch never committed, as a crash would leave.
    let stray = vault.segments(DATASET).unwrap()[3]
        .file
        .with_file_name("0000000003-abandoned.seg");
    std::fs::copy(&vault.segments(DATASET).unwrap()[3].file, &stray).unwrap();
    drop(vault);

    let vault = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
    assert_eq!(vault.orphans_removed_at_open(), 1);
    assert!(!stray.exists());
    assert!(vault.data_rotation_pending().unwrap());
    assert_eq!(
        read_all(&vault, DATASET).slice(0, 200),
        expected,
        "readable with old and new keys mixed"
    );
    assert_eq!(
        catalog_count(
            dir.path(),
            "SELECT count(*) FROM data_keys WHERE state = 'retiring'"
        ),
        8
    );

    let mut steps = Vec::new();
    let resumed = vault
        .rotate_data_keys_with(ACTOR, None, &mut |step| {
            assert!(step.bytes > 0);
            steps.push((step.segments_done, step.segments_total));
        })
        .unwrap();
    assert_eq!(
        steps,
        [(1, 4), (2, 4), (3, 4), (4, 4)],
        "progress per segment"
    );
    assert!(!resumed.started_new_rotation && resumed.completed);
    assert_eq!(
        (resumed.segments_reencrypted, resumed.data_keys_destroyed),
        (4, 8)
    );
    assert_eq!(read_all(&vault, DATASET).slice(0, 200), expected);
    assert_eq!(read_all(&vault, DATASET).num_rows(), 210);
    assert_eq!(
        catalog_count(dir.path(), "SELECT count(*) FROM data_keys"),
        8
    );
    assert!(matches!(
        vault.audit().verify().unwrap(),
        carrel_vault::VerifyReport::Intact { .. }
    ));
}
