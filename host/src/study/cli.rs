//! `carrel study …`: the researcher's and the auditor's commands. They open the warehouse
//! state directly, so they run while `carrel up` is stopped; while it runs, use the same
//! operations under `/api/studies`.

use super::desk::{StudyDesk, study_specs};
use super::registry::RunRecord;
use super::synthetic::{SyntheticWarehouse, try_study};
use super::run::ReadObserver;
use crate::progress::Progress;
use crate::tokens::{Role, TokenStore};
use anyhow::{Context, anyhow, bail};
use carrel_vault::{AuditLog, MasterKeyEnv, Vault};
use clap::{Args, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Args)]
pub struct StudyArgs {
    /// The application manifest declaring the studies.
    #[arg(short = 'f', long = "from", default_value = "spin.toml", global = true)]
    pub from: PathBuf,
    /// State directory; default `.spin` next to the manifest.
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    /// Runtime configuration, for the operator's minimum disclosure policy.
    #[arg(long, global = true)]
    pub runtime_config_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: StudyCommand,
}

#[derive(Subcommand)]
pub enum StudyCommand {
    /// Write a new study crate on the study SDK (a worked example that builds and passes
    /// `try --synthetic` as it is), add it to the components workspace and the manifest.
    New {
        /// The study's id: lowercase letters, digits and `-`, starting with a letter.
        name: String,
        /// Directory the crate is created in; default `components/studies` next to the
        /// manifest.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Append the study's section to the manifest (the default).
        #[arg(long, overrides_with = "no_manifest")]
        add_to_manifest: bool,
        /// Only print the manifest section (also written to study.toml.example).
        #[arg(long)]
        no_manifest: bool,
    },
    /// Studies in the manifest with their approval state, hashes and expiry.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Record the sha256 of the study's wasm and manifest section for approval.
    Submit {
        id: String,
        /// The researcher's token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
    },
    /// Approve exactly the submitted hashes.
    Approve {
        id: String,
        /// The id of an active auditor token (`carrel tokens add --role auditor`).
        #[arg(long)]
        by: String,
    },
    /// Withdraw the approval; runs are refused until it is submitted and approved again.
    Revoke {
        id: String,
        /// The id of an active auditor token.
        #[arg(long)]
        by: String,
    },
    /// Run an approved study on the warehouse's data.
    Run {
        id: String,
        /// A study parameter, `name=value`; repeatable.
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// The researcher's token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
        /// Print the run record as JSON instead of a summary and the first rows.
        #[arg(long)]
        json: bool,
    },
    /// Run a study, approved or not, on synthetic data generated now (never real data).
    Try {
        id: String,
        #[arg(long, required = true)]
        synthetic: bool,
        #[arg(long, default_value_t = 20_000)]
        consultations: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
    },
    /// Runs of one study, or of all, newest first.
    Runs { id: Option<String> },
    /// The released table of a run.
    Results {
        run_id: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: ResultFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ResultFormat {
    Csv,
    Arrow,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not name=value"))?;
    if name.is_empty() {
        return Err(format!("`{text}` has an empty name"));
    }
    Ok((name.to_owned(), value.to_owned()))
}

/// Checks that `id` is an active token of `role`; returns the audit actor for it.
fn token_actor(state_dir: &Path, id: &str, role: Role) -> anyhow::Result<String> {
    let tokens = TokenStore::open(state_dir)?;
    let token = tokens
        .list()?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| anyhow!("no token with id `{id}` (see `carrel tokens list`)"))?;
    if token.revoked.is_some() {
        bail!("token `{id}` is revoked");
    }
    if token.role != role {
        bail!(
            "token `{id}` has role {}, not {}",
            token.role.as_str(),
            role.as_str()
        );
    }
    Ok(format!("token:{id}"))
}

fn operator_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "operator".into())
    )
}

pub fn run(args: StudyArgs) -> anyhow::Result<ExitCode> {
    // Scaffolding needs no loadable manifest (it may be the first study of a new one).
    if let StudyCommand::New {
        name,
        dir,
        no_manifest,
        ..
    } = &args.command
    {
        return super::scaffold::run(&super::scaffold::ScaffoldOptions {
            name: name.clone(),
            dir: dir.clone(),
            manifest: args.from.clone(),
            add_to_manifest: !no_manifest,
        });
    }
    let manifest = crate::manifest::load(&args.from)?;
    let specs = study_specs(&manifest)?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| crate::app::default_state_dir(&manifest));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let StudyCommand::Try {
        id,
        consultations,
        seed,
        params,
        ..
    } = &args.command
    {
        let spec = specs
            .get(id)
            .ok_or_else(|| anyhow!("no study `{id}` in {}", args.from.display()))?;
        let progress = Progress::new("synthetic consultations", *consultations);
        let mut stored = 0;
        let warehouse = SyntheticWarehouse::build(*consultations, *seed, &mut |n| {
            progress.advance(n - stored, "stored");
            stored = n;
        })?;
        progress.finish();
        let (record, released) = runtime.block_on(try_study(spec, &warehouse, params.clone()))?;
        print_record(&record);
        if let Some(bytes) = released {
            print_table(&bytes, 20)?;
        }
        return Ok(exit_code(&record));
    }
    let operator_policy =
        crate::runtime_config::RuntimeConfig::load_optional(args.runtime_config_file.as_deref())?
            .disclosure;
    let vault = Vault::open(&state_dir, &MasterKeyEnv::from_process()).with_context(|| {
        format!(
            "cannot open the warehouse in {} (is `carrel up` running on it? then use /api/studies)",
            state_dir.display()
        )
    })?;
    let audit = Arc::new(AuditLog::open(&state_dir)?);
    let desk = StudyDesk::new(specs, Arc::new(vault), audit, &state_dir, operator_policy)?;
    match args.command {
        StudyCommand::List { json } => {
            let listing = desk.list()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&listing)?);
            } else {
                for s in listing {
                    println!(
                        "{:<20} {:<14} expires {}  wasm {}  manifest {}{}\n    {} ({})",
                        s.id,
                        s.state,
                        s.expires,
                        s.wasm_sha256
                            .as_deref()
                            .map(|h| &h[..12])
                            .unwrap_or("(not built)"),
                        &s.manifest_sha256[..12],
                        if s.changed_since_submission {
                            "  CHANGED since submission"
                        } else {
                            ""
                        },
                        s.title,
                        s.principal_investigator
                    );
                }
            }
        }
        StudyCommand::Submit { id, by } => {
            let actor = match by {
                Some(token) => token_actor(&state_dir, &token, Role::Researcher)?,
                None => operator_actor(),
            };
            let s = desk.submit(&id, &actor)?;
            println!(
                "Submitted {id}: wasm sha256 {}, manifest sha256 {}. An auditor approves it with `carrel study approve {id} --by <auditor token id>`.",
                s.wasm_sha256, s.manifest_sha256
            );
        }
        StudyCommand::Approve { id, by } => {
            let actor = token_actor(&state_dir, &by, Role::Auditor)?;
            let s = desk.approve(&id, &actor)?;
            println!(
                "Approved {id} for wasm sha256 {} and manifest sha256 {}.",
                s.wasm_sha256, s.manifest_sha256
            );
        }
        StudyCommand::Revoke { id, by } => {
            let actor = token_actor(&state_dir, &by, Role::Auditor)?;
            desk.revoke(&id, &actor)?;
            println!("Revoked {id}.");
        }
        StudyCommand::Run {
            id,
            params,
            by,
            json,
        } => {
            let actor = match by {
                Some(token) => token_actor(&state_dir, &token, Role::Researcher)?,
                None => operator_actor(),
            };
            let progress = Arc::new(RunProgress::default());
            let observer: Arc<dyn ReadObserver> = progress.clone();
            let run = desk.run_observed(&id, params, &actor, Some(observer));
            let (record, seq) = runtime.block_on(run)?;
            progress.finish();
            if json {
                println!("{}", serde_json::to_string_pretty(&record)?);
                return Ok(exit_code(&record));
            }
            print_record(&record);
            println!("audit entry {seq}");
            if let Some(bytes) = desk.registry.result(&record.run_id)? {
                print_table(&bytes, 20)?;
            }
            return Ok(exit_code(&record));
        }
        StudyCommand::Runs { id } => {
            for r in desk.registry.runs(id.as_deref())? {
                println!(
                    "{}  {:<16} {:<9} {} rows read, {} released  {}",
                    r.run_id,
                    r.study,
                    r.status,
                    r.rows_read,
                    r.rows_released,
                    r.error.as_deref().unwrap_or("")
                );
            }
        }
        StudyCommand::Results {
            run_id,
            format,
            out,
        } => {
            let record = desk.registry.run(&run_id)?;
            let bytes = desk.registry.result(&run_id)?.ok_or_else(|| {
                anyhow!(
                    "run {run_id} released nothing ({}: {})",
                    record.status,
                    record.error.as_deref().unwrap_or("")
                )
            })?;
            let rendered = match format {
                ResultFormat::Arrow => bytes,
                ResultFormat::Csv => crate::results::to_csv(&bytes)?,
            };
            match out {
                Some(path) => std::fs::write(&path, rendered)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&rendered)?;
                }
            }
        }
        StudyCommand::Try { .. } | StudyCommand::New { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The reading of a run as a progress bar: segments decrypted of those planned, with the
/// rows handed to the study and their rate. It starts when the study opens its first scan
/// (compiling the study is not reading).
#[derive(Default)]
struct RunProgress {
    started: OnceLock<(Progress, Instant)>,
    rows: AtomicU64,
}

impl RunProgress {
    fn finish(&self) {
        if let Some((progress, _)) = self.started.get() {
            progress.finish();
        }
    }
}

impl ReadObserver for RunProgress {
    fn planned(&self, segments: u64) {
        let mut created = false;
        let (progress, _) = self.started.get_or_init(|| {
            created = true;
            (Progress::new("reading segments", segments), Instant::now())
        });
        if !created {
            progress.grow(segments);
        }
    }

    fn read(&self, segments: u64, rows: u64) {
        let Some((progress, started)) = self.started.get() else {
            return;
        };
        let rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let rate = rows as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.advance(segments, &format!("{rows} rows, {rate:.0} rows/s"));
    }
}

fn exit_code(record: &RunRecord) -> ExitCode {
    if record.status == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_record(r: &RunRecord) {
    println!(
        "run {} of {}: {}{}",
        r.run_id,
        r.study,
        r.status,
        r.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    );
    println!(
        "  read {} rows from {} segments; released {} rows",
        r.rows_read,
        r.segments_read.len(),
        r.rows_released
    );
    if !r.disclosure.is_null() {
        println!("  disclosure control: {}", r.disclosure);
    }
    for denied in &r.denied {
        println!("  denied: {denied}");
    }
    for line in &r.logs {
        println!("  log {line}");
    }
}

pub(crate) fn print_table(ipc: &[u8], rows: usize) -> anyhow::Result<()> {
    let batches = carrel_pseudonym::from_ipc(ipc)?;
    let mut shown = Vec::new();
    let mut left = rows;
    for batch in &batches {
        if left == 0 {
            break;
        }
        let take = left.min(batch.num_rows());
        shown.push(batch.slice(0, take));
        left -= take;
    }
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!("{}", arrow_cast::pretty::pretty_format_batches(&shown)?);
    if total > rows {
        println!("({} of {total} rows shown; empty cells are redacted)", rows);
    } else {
        println!("(empty cells are redacted)");
    }
    Ok(())
}
