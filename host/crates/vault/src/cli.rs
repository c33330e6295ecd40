//! `carrel keys …` and `carrel audit …`, ready to be nested in the host's command line:
//!
//! ```text
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     #[command(subcommand)]
//!     Keys(carrel_vault::cli::KeysCommand),
//!     #[command(subcommand)]
//!     Audit(carrel_vault::cli::AuditCommand),
//! }
//! // …
//! Command::Keys(keys) => keys.run(&state_dir, &mut std::io::stdout()),
//! ```
//!
//! Each `run` prints human-readable output and returns the process exit status.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::audit::{AuditLog, VerifyReport};
use crate::error::VaultError;
use crate::master_key::{MasterKeyEnv, init_master_key};
use crate::rotation::RotationProgress;
use crate::segment_check::{SegmentCheckProgress, check_stored_segments};
use crate::store::Vault;

/// Actor recorded in the audit log for operator commands.
pub const OPERATOR_ACTOR: &str = "operator";

/// Why `carrel keys …` or `carrel audit …` stopped before it could say OK or FAILED.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("opening the audit log in {}", dir.display())]
    OpenAuditLog {
        dir: std::path::PathBuf,
        #[source]
        source: Box<VaultError>,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("cannot write the command's output")]
    Output(#[from] std::io::Error),
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum KeysCommand {
    /// Create the master key in master.key in the state directory (mode 0600), or, when
    /// CARREL_MASTER_KEY is set, bind the state directory to that key. Never overwrites.
    Init,
    /// Replace the master key and rewrap every data key under it.
    Rotate {
        /// Also replace every data key and re-encrypt every segment; if interrupted, run
        /// it again to continue where it stopped.
        #[arg(long)]
        data: bool,
    },
}

impl KeysCommand {
    /// Runs the command with `CARREL_MASTER_KEY` from the process environment.
    pub fn run(self, state_dir: &Path, out: &mut impl Write) -> Result<ExitCode, CommandError> {
        self.run_with_env(state_dir, &MasterKeyEnv::from_process(), out)
    }

    pub fn run_with_env(
        self,
        state_dir: &Path,
        env: &MasterKeyEnv,
        out: &mut impl Write,
    ) -> Result<ExitCode, CommandError> {
        self.run_with_progress(state_dir, env, out, &mut |_| {})
    }

    /// Like [`KeysCommand::run_with_env`], telling `progress` of each segment that a data
    /// key rotation re-encrypts (the host draws it as a progress bar).
    pub fn run_with_progress(
        self,
        state_dir: &Path,
        env: &MasterKeyEnv,
        out: &mut impl Write,
        progress: &mut dyn FnMut(RotationProgress),
    ) -> Result<ExitCode, CommandError> {
        match self {
            Self::Init => {
                let report = init_master_key(state_dir, env, OPERATOR_ACTOR)?;
                match &report.created_file {
                    Some(path) => writeln!(
                        out,
                        "created a new master key in {} (mode 0600)",
                        path.display()
                    )?,
                    None => writeln!(
                        out,
                        "no key file written: the state directory is bound to the key in the environment"
                    )?,
                }
                writeln!(out, "using the master key from {}", report.source)?;
                writeln!(out, "state directory: {}", state_dir.display())?;
            }
            Self::Rotate { data } => {
                let vault = Vault::open(state_dir, env)?;
                writeln!(out, "using the master key from {}", vault.key_source())?;
                let resuming = data && vault.data_rotation_pending()?;
                if resuming {
                    writeln!(
                        out,
                        "continuing the unfinished data key rotation (the master key is left as it is)"
                    )?;
                } else {
                    let report = vault.rotate_master_key(OPERATOR_ACTOR)?;
                    writeln!(
                        out,
                        "master key rotated: {} data keys rewrapped (audit seq {})",
                        report.data_keys_rewrapped, report.audit_seq
                    )?;
                }
                if data {
                    let report = vault.rotate_data_keys_with(OPERATOR_ACTOR, None, progress)?;
                    writeln!(
                        out,
                        "data keys rotated: {} segments re-encrypted, {} old data keys destroyed",
                        report.segments_reencrypted, report.data_keys_destroyed
                    )?;
                } else if vault.data_rotation_pending()? {
                    writeln!(
                        out,
                        "note: a data key rotation is unfinished; run `carrel keys rotate --data` to complete it"
                    )?;
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    #[default]
    Jsonl,
}

#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and report the first entry that was edited, deleted,
    /// reordered or cut off. Exits non-zero if the chain is broken.
    Verify {
        /// Also read every stored segment file and check it against the catalog (header,
        /// size, sha-256), as after restoring a backup; every damaged one is named.
        #[arg(long)]
        segments: bool,
    },
    /// Print audit entries.
    Export {
        /// Only entries with a sequence number greater than SEQ.
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        since: u64,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
    },
    /// Print the sequence number and hash of the last entry (record it elsewhere to
    /// detect a later rewrite of the whole log).
    Head,
}

impl AuditCommand {
    /// Needs no master key: auditors verify without being able to read data.
    pub fn run(self, state_dir: &Path, out: &mut impl Write) -> Result<ExitCode, CommandError> {
        self.run_with_progress(state_dir, out, &mut |_| {})
    }

    /// [`AuditCommand::run`], telling `progress` of each segment `verify --segments`
    /// checks.
    pub fn run_with_progress(
        self,
        state_dir: &Path,
        out: &mut impl Write,
        progress: &mut dyn FnMut(SegmentCheckProgress),
    ) -> Result<ExitCode, CommandError> {
        let log = AuditLog::open(state_dir).map_err(|source| CommandError::OpenAuditLog {
            dir: state_dir.to_owned(),
            source: Box::new(source),
        })?;
        match self {
            Self::Verify { segments } => {
                let mut code = match log.verify()? {
                    VerifyReport::Intact { entries, head } => {
                        writeln!(out, "OK: {entries} entries, head {}", head.hash)?;
                        ExitCode::SUCCESS
                    }
                    VerifyReport::Broken { seq, problem } => {
                        writeln!(out, "FAILED at seq {seq}: {problem}")?;
                        ExitCode::FAILURE
                    }
                };
                if segments {
                    let report = check_stored_segments(state_dir, progress)?;
                    for d in &report.damaged {
                        writeln!(
                            out,
                            "FAILED: dataset {} segment {}: {}",
                            d.dataset, d.segment, d.damage
                        )?;
                    }
                    let intact = report.segments - report.damaged.len() as u64;
                    writeln!(
                        out,
                        "{}: {intact} of {} segments intact ({} bytes, {} datasets)",
                        if report.damaged.is_empty() {
                            "OK"
                        } else {
                            "FAILED"
                        },
                        report.segments,
                        report.bytes,
                        report.datasets
                    )?;
                    if !report.damaged.is_empty() {
                        code = ExitCode::FAILURE;
                    }
                }
                Ok(code)
            }
            Self::Export {
                since,
                format: ExportFormat::Jsonl,
            } => {
                log.export_jsonl(since, out)?;
                Ok(ExitCode::SUCCESS)
            }
            Self::Head => {
                let head = log.head()?;
                writeln!(out, "seq {} hash {}", head.seq, head.hash)?;
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
