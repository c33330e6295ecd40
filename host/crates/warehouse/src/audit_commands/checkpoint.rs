//! Signed checkpoints of the audit log: `carrel audit checkpoint` signs the head (seq, hash,
//! time) with an Ed25519 key the host keeps in `<state-dir>/audit-signing.key`; kept
//! elsewhere (printed, mailed to the data protection officer), a checkpoint later proves
//! that the log only grew: `carrel audit checkpoint --verify FILE`.
//!
//! The signed message is the UTF-8 text
//! `carrel-audit-checkpoint v1\nseq <seq>\nhash <hash>\ntime <time>\n`.

use carrel_vault::audit::{AuditHead, GENESIS_PREV_HASH};
use carrel_vault::{AuditAction, AuditEvent, AuditLog, VaultError, VerifyReport};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The key file in the state directory: a PKCS#8 v2 Ed25519 key, mode 0600.
pub const SIGNING_KEY_FILE: &str = "audit-signing.key";
pub const FORMAT: &str = "carrel-audit-checkpoint";
pub const FORMAT_VERSION: u32 = 1;

/// Why a checkpoint could not be made or checked (a checkpoint that does not hold is not an
/// error: [`check`] says why it fails).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{} is not an Ed25519 PKCS#8 key: {reason}", path.display())]
    NotAKey { path: PathBuf, reason: String },
    #[error("cannot read {}", path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {}", path.display())]
    CreateKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate an Ed25519 key")]
    GenerateKey,
    #[error("the signing key {} vanished after another process created it", path.display())]
    KeyVanished { path: PathBuf },
    #[error("opening the audit log in {}", dir.display())]
    OpenLog {
        dir: PathBuf,
        #[source]
        source: Box<VaultError>,
    },
    #[error(transparent)]
    Log(#[from] VaultError),
    #[error("cannot read {}", path.display())]
    ReadCheckpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a checkpoint printed by `carrel audit checkpoint`", path.display())]
    NotACheckpoint {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A signed audit head, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Always `carrel-audit-checkpoint`.
    pub format: String,
    pub format_version: u32,
    /// The last entry's sequence number when signed (0 for an empty log).
    pub seq: u64,
    /// Its hash.
    pub hash: String,
    /// When the checkpoint was made, RFC 3339 UTC.
    pub time: String,
    /// Always `ed25519`.
    pub algorithm: String,
    /// Hex of the 32-byte public key.
    pub public_key: String,
    /// Hex of the 64-byte signature of [`Checkpoint::message`].
    pub signature: String,
}

impl Checkpoint {
    pub fn message(seq: u64, hash: &str, time: &str) -> Vec<u8> {
        format!("{FORMAT} v{FORMAT_VERSION}\nseq {seq}\nhash {hash}\ntime {time}\n").into_bytes()
    }

    pub fn sign(key: &Ed25519KeyPair, head: &AuditHead, time: &str) -> Self {
        let signature = key.sign(&Self::message(head.seq, &head.hash, time));
        Self {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            seq: head.seq,
            hash: head.hash.clone(),
            time: time.to_owned(),
            algorithm: "ed25519".into(),
            public_key: hex::encode(key.public_key().as_ref()),
            signature: hex::encode(signature.as_ref()),
        }
    }

    /// Checks the signature against the public key the checkpoint names.
    pub fn signature_is_valid(&self) -> bool {
        let (Ok(public), Ok(signature)) =
            (hex::decode(&self.public_key), hex::decode(&self.signature))
        else {
            return false;
        };
        self.format == FORMAT
            && self.algorithm == "ed25519"
            && UnparsedPublicKey::new(&ED25519, public)
                .verify(&Self::message(self.seq, &self.hash, &self.time), &signature)
                .is_ok()
    }
}

/// The host's signing key, if it was ever created.
pub fn load_key(state_dir: &Path) -> Result<Option<Ed25519KeyPair>, CheckpointError> {
    let path = state_dir.join(SIGNING_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            Ed25519KeyPair::from_pkcs8(&bytes)
                .map(Some)
                .map_err(|e| CheckpointError::NotAKey {
                    path,
                    reason: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::ReadKey { path, source }),
    }
}

/// Loads the signing key, creating it (mode 0600, recorded in the audit log) on first use.
fn load_or_create_key(state_dir: &Path, log: &AuditLog) -> Result<Ed25519KeyPair, CheckpointError> {
    if let Some(key) = load_key(state_dir)? {
        return Ok(key);
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| CheckpointError::GenerateKey)?;
    let path = state_dir.join(SIGNING_KEY_FILE);
    let create_error = |source| CheckpointError::CreateKey {
        path: path.clone(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(pkcs8.as_ref()).map_err(create_error)?;
            file.sync_all().map_err(create_error)?;
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return load_key(state_dir)?.ok_or(CheckpointError::KeyVanished { path });
        }
        Err(source) => return Err(CheckpointError::CreateKey { path, source }),
    }
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| CheckpointError::NotAKey {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    log.append(
        &AuditEvent::new(
            carrel_vault::cli::OPERATOR_ACTOR,
            AuditAction::Other("audit.signing_key.create".into()),
            SIGNING_KEY_FILE,
        )
        .with_details(serde_json::json!({ "public_key": hex::encode(key.public_key().as_ref()) })),
    )?;
    Ok(key)
}

fn open_log(state_dir: &Path) -> Result<AuditLog, CheckpointError> {
    AuditLog::open(state_dir).map_err(|source| CheckpointError::OpenLog {
        dir: state_dir.to_owned(),
        source: Box::new(source),
    })
}

/// Signs the current head, creating the signing key on first use.
pub fn create(state_dir: &Path) -> Result<Checkpoint, CheckpointError> {
    let log = open_log(state_dir)?;
    let key = load_or_create_key(state_dir, &log)?;
    let head = log.head()?;
    let time = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .expect("current UTC time formats as RFC 3339");
    Ok(Checkpoint::sign(&key, &head, &time))
}

/// Why a checkpoint does not hold for this log; `Ok` says how far the log grew since.
pub fn check(
    state_dir: &Path,
    checkpoint: &Checkpoint,
) -> Result<Result<String, String>, CheckpointError> {
    if !checkpoint.signature_is_valid() {
        return Ok(Err(
            "the signature does not match the checkpoint: it was altered after signing, or is not an ed25519 carrel checkpoint".into(),
        ));
    }
    let ours = match load_key(state_dir)? {
        Some(key) => hex::encode(key.public_key().as_ref()),
        None => {
            return Ok(Err(format!(
                "{} has no {SIGNING_KEY_FILE}: this warehouse never signed a checkpoint",
                state_dir.display()
            )));
        }
    };
    if ours != checkpoint.public_key {
        return Ok(Err(format!(
            "signed by key {}, not by this warehouse's key {ours}",
            checkpoint.public_key
        )));
    }
    let log = open_log(state_dir)?;
    let head = log.head()?;
    if head.seq < checkpoint.seq {
        return Ok(Err(format!(
            "the log now ends at seq {}, before the checkpointed seq {}: it was cut off or replaced",
            head.seq, checkpoint.seq
        )));
    }
    let recorded = if checkpoint.seq == 0 {
        Some(GENESIS_PREV_HASH.to_owned())
    } else {
        log.entries(checkpoint.seq - 1)?
            .into_iter()
            .next()
            .filter(|e| e.seq == checkpoint.seq)
            .map(|e| e.hash)
    };
    match recorded {
        None => {
            return Ok(Err(format!(
                "the log has no entry {} any more: it was deleted",
                checkpoint.seq
            )));
        }
        Some(hash) if hash != checkpoint.hash => {
            return Ok(Err(format!(
                "entry {} now has hash {hash}, the checkpoint signed {}: the log was rewritten",
                checkpoint.seq, checkpoint.hash
            )));
        }
        Some(_) => {}
    }
    match log.verify()? {
        VerifyReport::Broken { seq, problem } => Ok(Err(format!(
            "the hash chain is broken at seq {seq}{}: {problem}",
            if seq <= checkpoint.seq {
                ", inside the checkpointed part"
            } else {
                ", after the checkpoint"
            }
        ))),
        VerifyReport::Intact { entries, head } => Ok(Ok(format!(
            "checkpoint of seq {} (hash {}, signed {}) holds: the log only grew since, by {} entries (now {entries}, head {})",
            checkpoint.seq,
            checkpoint.hash,
            checkpoint.time,
            head.seq - checkpoint.seq,
            head.hash
        ))),
    }
}

/// Reads a checkpoint file as `carrel audit checkpoint` printed it.
pub fn read(file: &Path) -> Result<Checkpoint, CheckpointError> {
    let text = std::fs::read_to_string(file).map_err(|source| CheckpointError::ReadCheckpoint {
        path: file.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| CheckpointError::NotACheckpoint {
        path: file.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Ed25519KeyPair {
        let rng = ring::rand::SystemRandom::new();
        Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref()).unwrap()
    }

    #[test]
    fn a_checkpoint_signature_covers_seq_hash_and_time() {
        let head = AuditHead {
            seq: 4,
            hash: "ab".repeat(32),
        };
        let checkpoint = Checkpoint::sign(&key(), &head, "2026-03-01T10:00:00Z");
        assert!(checkpoint.signature_is_valid());
        for tampered in [
            Checkpoint {
                seq: 5,
                ..checkpoint.clone()
            },
            Checkpoint {
                hash: "cd".repeat(32),
                ..checkpoint.clone()
            },
            Checkpoint {
                time: "2026-03-02T10:00:00Z".into(),
                ..checkpoint.clone()
            },
            Checkpoint {
                public_key: hex::encode(key().public_key().as_ref()),
                ..checkpoint.clone()
            },
        ] {
            assert!(!tampered.signature_is_valid(), "{tampered:?}");
        }
    }
}
