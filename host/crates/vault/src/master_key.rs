//! Where the master key comes from, how the state directory recognises it, and the
//! crash-safe hand-over between an old and a new key file during rotation.
//!
//! The key is taken from `CARREL_MASTER_KEY` (base64) or `<state-dir>/master.key` (the
//! same base64 text, mode 0600). If both are present they must hold the same key. The
//! catalog stores a key-check value (an AES-GCM encryption of a fixed label), so a wrong
//! key is recognised at open instead of producing garbage later.
//!
//! Rotation writes the new key to `master.key.next` before rewrapping the data keys, and
//! renames it over `master.key` after the rewrap commits. Opening after a crash accepts
//! whichever of the two files matches the key-check value, and finishes or discards the
//! hand-over accordingly.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::{Connection, TransactionBehavior};
use serde_json::json;
use zeroize::Zeroizing;

use crate::audit::{AuditAction, AuditEvent, append_in_transaction};
use crate::catalog::{self, meta_get, meta_set};
use crate::crypto::{SecretKey, associated_data, open_blob, seal_blob};
use crate::error::{MASTER_KEY_ENV, Result, VaultError, io_context};
use crate::fsio;

pub const MASTER_KEY_FILE: &str = "master.key";
pub(crate) const NEXT_MASTER_KEY_FILE: &str = "master.key.next";
const LOCK_FILE: &str = "vault.lock";
const KEY_CHECK_META: &str = "master_key_check";
const KEY_CHECK_DOMAIN: &str = "carrel-vault/master-key-check/v1";
const KEY_CHECK_LABEL: &[u8] = b"carrel master key check";

/// Which master key is in use; printed by the CLI so the operator is never unsure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    Environment,
    /// Both were present and hold the same key.
    EnvironmentAndFile(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "key file {}", path.display()),
            Self::Environment => write!(f, "environment variable {MASTER_KEY_ENV}"),
            Self::EnvironmentAndFile(path) => {
                write!(
                    f,
                    "environment variable {MASTER_KEY_ENV} (the same key as {})",
                    path.display()
                )
            }
        }
    }
}

impl KeySource {
    fn audit_name(&self) -> &'static str {
        match self {
            Self::File(_) => "file",
            Self::Environment => "environment",
            Self::EnvironmentAndFile(_) => "environment_and_file",
        }
    }
}

/// The value of `CARREL_MASTER_KEY`, passed explicitly so tests and embedders never
/// depend on (or race on) the process environment.
#[derive(Clone, Default)]
pub struct MasterKeyEnv(Option<Zeroizing<String>>);

impl std::fmt::Debug for MasterKeyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.0.is_some() { "set" } else { "unset" };
        write!(f, "MasterKeyEnv({state})")
    }
}

impl MasterKeyEnv {
    /// Reads `CARREL_MASTER_KEY` from the process environment; an empty value counts as unset.
    pub fn from_process() -> Self {
        Self(
            std::env::var(MASTER_KEY_ENV)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Zeroizing::new),
        )
    }

    pub fn unset() -> Self {
        Self(None)
    }

    pub fn with_value(base64_key: impl Into<String>) -> Self {
        Self(Some(Zeroizing::new(base64_key.into())))
    }

    /// A fresh random key, encoded as `CARREL_MASTER_KEY` expects it.
    pub fn generate_value() -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(SecretKey::generate().as_bytes()))
    }

    fn key(&self) -> Result<Option<SecretKey>> {
        let Some(text) = &self.0 else { return Ok(None) };
        decode_key(text)
            .map(Some)
            .ok_or(VaultError::MalformedEnvMasterKey)
    }
}

fn decode_key(text: &str) -> Option<SecretKey> {
    let bytes = Zeroizing::new(BASE64.decode(text.trim()).ok()?);
    SecretKey::from_slice(&bytes)
}

fn encode_key(key: &SecretKey) -> Zeroizing<String> {
    Zeroizing::new(format!("{}\n", BASE64.encode(key.as_bytes())))
}

fn read_key_file(path: &Path) -> Result<Option<SecretKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => Zeroizing::new(text),
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_context(format!("reading {}", path.display()))(error)),
    };
    if let Ok(metadata) = std::fs::metadata(path)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "master key file is readable by group or others; expected mode 0600");
    }
    decode_key(&text)
        .map(Some)
        .ok_or_else(|| VaultError::MalformedMasterKeyFile {
            path: path.to_owned(),
        })
}

pub(crate) fn write_key_file(path: &Path, key: &SecretKey) -> Result<()> {
    let text = encode_key(key);
    fsio::write_durably(path, 0o600, |w| w.write_all(text.as_bytes()))
        .map_err(io_context(format!("writing {}", path.display())))
}

pub(crate) fn key_check_value(master: &SecretKey) -> Vec<u8> {
    seal_blob(
        master,
        &associated_data(KEY_CHECK_DOMAIN, &[]),
        KEY_CHECK_LABEL,
    )
}

fn key_matches(master: &SecretKey, check: &[u8]) -> bool {
    open_blob(master, &associated_data(KEY_CHECK_DOMAIN, &[]), check)
        .is_ok_and(|label| label.as_slice() == KEY_CHECK_LABEL)
}

pub(crate) fn store_key_check(conn: &Connection, master: &SecretKey) -> Result<()> {
    meta_set(conn, KEY_CHECK_META, &key_check_value(master))
}

/// Takes the exclusive lock on the state directory: one process at a time may hold keys
/// and write segments. Readers of the audit log do not need it.
pub(crate) fn lock_state_dir(state_dir: &Path) -> Result<File> {
    let path = state_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_context(format!("opening {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(VaultError::StateDirLocked {
            path: state_dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(io_context(format!("locking {}", path.display()))(error))
        }
    }
}

/// Whether any master key is at hand, checked before anything is created on disk so a
/// missing key leaves the state directory untouched.
pub(crate) fn any_key_present(state_dir: &Path, env: &MasterKeyEnv) -> bool {
    env.0.is_some() || state_dir.join(MASTER_KEY_FILE).exists()
}

/// Removes temp files of key writes that a crash interrupted (see `fsio::temp_path_for`):
/// they may hold key material and are never read.
fn remove_interrupted_key_writes(state_dir: &Path) -> Result<()> {
    let listing = std::fs::read_dir(state_dir)
        .map_err(io_context(format!("listing {}", state_dir.display())))?;
    for entry in listing.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&format!(".{MASTER_KEY_FILE}")) && name.ends_with(fsio::TEMP_SUFFIX) {
            std::fs::remove_file(entry.path())
                .map_err(io_context(format!("removing {}", entry.path().display())))?;
        }
    }
    Ok(())
}

pub(crate) struct ResolvedKey {
    pub key: SecretKey,
    pub source: KeySource,
}

/// Finds the master key, checks it against the catalog (binding the catalog to it on
/// first use) and completes or discards an interrupted rotation.
pub(crate) fn resolve(
    state_dir: &Path,
    env: &MasterKeyEnv,
    conn: &mut Connection,
    actor: &str,
) -> Result<ResolvedKey> {
    remove_interrupted_key_writes(state_dir)?;
    let file_path = state_dir.join(MASTER_KEY_FILE);
    let (key, source) = match (env.key()?, read_key_file(&file_path)?) {
        (Some(from_env), Some(from_file)) if from_env != from_file => {
            return Err(VaultError::ConflictingMasterKeys { path: file_path });
        }
        (Some(from_env), Some(_)) => (from_env, KeySource::EnvironmentAndFile(file_path.clone())),
        (Some(from_env), None) => (from_env, KeySource::Environment),
        (None, Some(from_file)) => (from_file, KeySource::File(file_path.clone())),
        (None, None) => return Err(VaultError::NoMasterKey),
    };
    let next_path = state_dir.join(NEXT_MASTER_KEY_FILE);
    let Some(check) = meta_get(conn, KEY_CHECK_META)? else {
        bind_catalog(conn, &key, &source, actor)?;
        return Ok(ResolvedKey { key, source });
    };
    if key_matches(&key, &check) {
        if next_path.exists() {
            // The rotation that wrote it never committed: the new key encrypts nothing.
            tracing::info!("discarding the key of a rotation that did not commit");
            std::fs::remove_file(&next_path)
                .map_err(io_context(format!("removing {}", next_path.display())))?;
            fsio::sync_dir(state_dir).map_err(io_context("syncing the state directory"))?;
        }
        return Ok(ResolvedKey { key, source });
    }
    if let KeySource::File(_) = source
        && let Some(next) = read_key_file(&next_path)?
        && key_matches(&next, &check)
    {
        // The rotation committed but crashed before promoting its key file.
        tracing::info!("completing an interrupted master key rotation");
        fsio::rename_durably(&next_path, &file_path)
            .map_err(io_context(format!("renaming {}", next_path.display())))?;
        return Ok(ResolvedKey { key: next, source });
    }
    Err(VaultError::WrongMasterKey)
}

/// Records the key-check value of the first key this catalog sees, audited as `key.init`.
fn bind_catalog(
    conn: &mut Connection,
    key: &SecretKey,
    source: &KeySource,
    actor: &str,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let data_keys: i64 = tx.query_row("SELECT count(*) FROM data_keys", [], |row| row.get(0))?;
    if data_keys > 0 {
        return Err(VaultError::CatalogCorrupt(
            "data keys are stored but the master key check is missing".into(),
        ));
    }
    store_key_check(&tx, key)?;
    let event = AuditEvent::new(actor, AuditAction::KeyInit, "master-key")
        .with_details(json!({"source": source.audit_name()}));
    append_in_transaction(&tx, &event)?;
    tx.commit()?;
    Ok(())
}

/// What `keys init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInitReport {
    pub source: KeySource,
    /// The key file written, or `None` when the key comes from the environment.
    pub created_file: Option<PathBuf>,
}

/// Creates the master key of a state directory (or, with `CARREL_MASTER_KEY` set, binds
/// the directory to that key) and records it. Never overwrites an existing key.
pub fn init_master_key(state_dir: &Path, env: &MasterKeyEnv, actor: &str) -> Result<KeyInitReport> {
    fsio::create_private_dir(state_dir)
        .map_err(io_context(format!("creating {}", state_dir.display())))?;
    let _lock = lock_state_dir(state_dir)?;
    let mut conn = catalog::open_connection(state_dir)?;
    catalog::migrate(&conn)?;
    let file_path = state_dir.join(MASTER_KEY_FILE);
    if file_path.exists() {
        return Err(VaultError::MasterKeyExists { path: file_path });
    }
    let existing_check = meta_get(&conn, KEY_CHECK_META)?;
    match env.key()? {
        Some(key) => {
            if let Some(check) = existing_check {
                return Err(if key_matches(&key, &check) {
                    VaultError::AlreadyInitialised {
                        source_description: KeySource::Environment.to_string(),
                    }
                } else {
                    VaultError::WrongMasterKey
                });
            }
            bind_catalog(&mut conn, &key, &KeySource::Environment, actor)?;
            Ok(KeyInitReport {
                source: KeySource::Environment,
                created_file: None,
            })
        }
        None => {
            if existing_check.is_some() {
                return Err(VaultError::MasterKeyLost { path: file_path });
            }
            let key = SecretKey::generate();
            // The file goes first: a crash before the catalog commit leaves a key that the
            // next open binds, never a catalog bound to a key that was not saved.
            write_key_file(&file_path, &key)?;
            let source = KeySource::File(file_path.clone());
            bind_catalog(&mut conn, &key, &source, actor)?;
            Ok(KeyInitReport {
                source,
                created_file: Some(file_path),
            })
        }
    }
}
