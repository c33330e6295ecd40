mod common;

use std::process::ExitCode;

use carrel_vault::cli::{AuditCommand, ExportFormat, KeysCommand};
use carrel_vault::{MasterKeyEnv, Vault};
use clap::{Parser, Subcommand};
use common::{ACTOR, DATASET, consultation_batch};

/// The shape the host gives these subcommands.
#[derive(Parser)]
struct Carrel {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(subcommand)]
    Keys(KeysCommand),
    #[command(subcommand)]
    Audit(AuditCommand),
}

fn parse(args: &[&str]) -> Command {
    Carrel::try_parse_from(std::iter::once("carrel").chain(args.iter().copied()))
        .unwrap()
        .command
}

fn run(dir: &std::path::Path, args: &[&str]) -> (ExitCode, String) {
    let mut out = Vec::new();
    let code = match parse(args) {
        Command::Keys(keys) => keys.run_with_env(dir, &MasterKeyEnv::unset(), &mut out),
        Command::Audit(audit) => audit.run(dir, &mut out),
    }
    .unwrap();
    (code, String::from_utf8(out).unwrap())
}

fn state_with_appends(dir: &std::path::Path) {
    run(dir, &["keys", "init"]);
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
        .append(DATASET, &consultation_batch(0, 10), ACTOR)
        .unwrap();
    vault
        .append(DATASET, &consultation_batch(10, 10), ACTOR)
        .unwrap();
}

#[test]
fn subcommands_parse_with_their_flags() {
    assert!(matches!(
        parse(&["keys", "rotate", "--data"]),
        Command::Keys(KeysCommand::Rotate { data: true })
    ));
    assert!(matches!(
        parse(&["keys", "rotate"]),
        Command::Keys(KeysCommand::Rotate { data: false })
    ));
    assert!(matches!(
        parse(&["audit", "export", "--since", "17", "--format", "jsonl"]),
        Command::Audit(AuditCommand::Export {
            since: 17,
            format: ExportFormat::Jsonl
        })
    ));
    assert!(Carrel::try_parse_from(["carrel", "audit", "export", "--format", "csv"]).is_err());
    assert!(matches!(
        parse(&["audit", "verify", "--segments"]),
        Command::Audit(AuditCommand::Verify { segments: true })
    ));
}

#[test]
fn keys_init_says_where_the_key_is_and_refuses_a_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = run(dir.path(), &["keys", "init"]);
    assert_eq!(code, ExitCode::SUCCESS);
    let key_file = dir.path().join("master.key").display().to_string();
    assert!(
        out.contains(&format!("using the master key from key file {key_file}")),
        "{out}"
    );
    let mut ignored = Vec::new();
    let again = KeysCommand::Init
        .run_with_env(dir.path(), &MasterKeyEnv::unset(), &mut ignored)
        .unwrap_err();
    assert!(
        again.to_string().contains("refusing to overwrite"),
        "{again}"
    );
}

#[test]
fn keys_rotate_with_data_reports_what_it_did_and_the_data_still_reads() {
    let dir = tempfile::tempdir().unwrap();
    state_with_appends(dir.path());
    let (code, out) = run(dir.path(), &["keys", "rotate", "--data"]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        out.contains("master key rotated: 4 data keys rewrapped"),
        "{out}"
    );
    assert!(
        out.contains("data keys rotated: 2 segments re-encrypted, 4 old data keys destroyed"),
        "{out}"
    );
    let vault = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
    assert_eq!(common::read_all(&vault, DATASET), consultation_batch(0, 20));
}

#[test]
fn audit_verify_prints_ok_with_the_head_and_head_prints_the_same_hash() {
    let dir = tempfile::tempdir().unwrap();
    state_with_appends(dir.path());
    let (code, out) = run(dir.path(), &["audit", "verify"]);
    assert_eq!(code, ExitCode::SUCCESS);
    let (_, head) = run(dir.path(), &["audit", "head"]);
    let hash = head.trim().rsplit(' ').next().unwrap();
    assert_eq!(out.trim(), format!("OK: 4 entries, head {hash}"));
    assert!(head.starts_with("seq 4 hash "), "{head}");
}

#[test]
fn audit_verify_segments_reads_every_segment_and_names_each_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    state_with_appends(dir.path());
    let (code, out) = run(dir.path(), &["audit", "verify", "--segments"]);
    assert_eq!(code, ExitCode::SUCCESS, "{out}");
    assert!(out.contains("OK: 2 of 2 segments intact ("), "{out}");
    // A restored backup with one segment altered by a bit and another one missing.
    let vault = Vault::open(dir.path(), &MasterKeyEnv::unset()).unwrap();
    let segments = vault.segments(DATASET).unwrap();
    drop(vault);
    let mut bytes = std::fs::read(&segments[0].file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&segments[0].file, bytes).unwrap();
    std::fs::remove_file(&segments[1].file).unwrap();
    let (code, out) = run(dir.path(), &["audit", "verify", "--segments"]);
    assert_eq!(code, ExitCode::FAILURE, "{out}");
    assert!(
        out.starts_with("OK: 4 entries"),
        "the chain itself is intact: {out}"
    );
    assert!(
        out.contains(&format!(
            "FAILED: dataset {DATASET} segment {}: sha256 of the file does not match the catalog",
            segments[0].id
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "FAILED: dataset {DATASET} segment {}: segment file",
            segments[1].id
        )) && out.contains("is missing"),
        "{out}"
    );
    assert!(out.contains("FAILED: 0 of 2 segments intact"), "{out}");
}

#[test]
fn audit_verify_fails_with_the_seq_and_reason_after_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    state_with_appends(dir.path());
    let conn = rusqlite::Connection::open(dir.path().join(carrel_vault::CATALOG_FILE)).unwrap();
    conn.execute("UPDATE audit SET subject = 'other' WHERE seq = 3", [])
        .unwrap();
    let (code, out) = run(dir.path(), &["audit", "verify"]);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(out.trim(), "FAILED at seq 3: edited (hash mismatch)");
}

#[test]
fn audit_export_prints_json_lines_after_the_given_seq() {
    let dir = tempfile::tempdir().unwrap();
    state_with_appends(dir.path());
    let (code, out) = run(dir.path(), &["audit", "export", "--since", "2"]);
    assert_eq!(code, ExitCode::SUCCESS);
    let entries: Vec<carrel_vault::AuditEntry> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert!(
        entries
            .iter()
            .all(|e| e.action == "dataset.append" && e.subject == DATASET)
    );
    assert_eq!(entries[0].details["rows"], 10);
}

#[test]
fn audit_commands_on_a_directory_without_a_catalog_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let error = AuditCommand::Verify { segments: false }
        .run(dir.path(), &mut Vec::new())
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string())
    );
    // The cause says why: the binary prints the whole chain.
    let cause = std::error::Error::source(&error).expect("the error keeps its cause");
    assert!(cause.to_string().contains("no catalog"), "{error}: {cause}");
}
