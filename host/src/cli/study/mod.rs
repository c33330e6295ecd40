//! `carrel study …`: the researcher's and the auditor's commands. They open the warehouse
//! state directly, so they run while `carrel up` is stopped; while it runs, use the same
//! operations under `/api/studies`.
//!
//! `run`, `runs`, `show` and `results` act for a researcher (`--by` their token id, or
//! the operator without it) and show runs as a researcher sees them
//! ([`super::view`]): the full record, with the study's log and error text, is the
//! auditors' (`/audit`, `carrel audit log`). Only a study's owners submit, run it and
//! read its runs ([`super::owners`]).

mod access;
mod new;
mod print;

use crate::cli::table_print::print_table;
use access::{OwnersCommand, auditor, owners, recorded_as, researcher};
use anyhow::{Context, anyhow, bail};
use carrel_vault::{AuditLog, MasterKeyEnv, Vault};
use carrel_warehouse::progress::Progress;
use carrel_warehouse::study::metadata::{terminal_json, terminal_lines, terminal_safe};
use carrel_warehouse::study::service::{StudyService, study_specs};
use carrel_warehouse::study::spec::ReadObserver;
use carrel_warehouse::study::synthetic::{SyntheticWarehouse, try_study};
use clap::{Args, Subcommand, ValueEnum};
use print::{RunProgress, exit_code, print_record, print_view, print_view_line};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args)]
pub struct StudyArgs {
    /// The application manifest declaring the studies.
    #[arg(short = 'f', long = "from", default_value = "spin.toml", global = true)]
    pub from: PathBuf,
    /// State directory; default `.spin` next to the manifest.
    #[arg(long, global = true, env = carrel_warehouse::state_dir::ENV)]
    pub state_dir: Option<PathBuf>,
    /// Runtime configuration, for the operator's minimum disclosure policy.
    #[arg(long, global = true)]
    pub runtime_config_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: StudyCommand,
}

#[derive(Subcommand)]
pub enum StudyCommand {
    /// Write a new study on the study SDK (a worked example that builds and passes
    /// `try --synthetic` as it is): a Rust crate added to the components workspace, or a
    /// Python project; and its section in the manifest.
    New {
        /// The study's id: lowercase letters, digits and `-`, starting with a letter.
        name: String,
        /// The study's language.
        #[arg(long, value_enum, default_value = "rust")]
        lang: StudyLanguage,
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
        /// `model-eval`: no code, the shipped study that evaluates an ONNX model you bring.
        #[arg(long, value_parser = ["model-eval"])]
        template: Option<String>,
    },
    /// Studies in the manifest with their approval state, hashes and expiry.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Record the sha256 of the study's wasm and manifest section for approval. The
    /// first researcher to submit a study owns it; only owners submit it again.
    Submit {
        id: String,
        /// The researcher's token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
    },
    /// Approve exactly the submitted hashes, as the auditor whose token is given;
    /// without one, the approval is recorded as the operator's.
    Approve {
        id: String,
        #[command(flatten)]
        auditor: AuditorToken,
    },
    /// Withdraw the approval; runs are refused until it is submitted and approved again.
    /// Recorded as the auditor's whose token is given, else as the operator's.
    Revoke {
        id: String,
        #[command(flatten)]
        auditor: AuditorToken,
    },
    /// Owners of a study: list, add, remove (by an owner, or the operator).
    Owners {
        #[command(subcommand)]
        command: OwnersCommand,
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
        /// Print the run (as a researcher sees it) as JSON instead of a summary and the
        /// first rows.
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
    /// Runs of one study, or of all the researcher's studies, newest first.
    Runs {
        id: Option<String>,
        /// The researcher's token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One run, as a researcher sees it.
    Show {
        run_id: String,
        /// The researcher's token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The released table of a run.
    Results {
        run_id: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: ResultFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The researcher's token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
    },
}

/// How an auditor proves who they are on the command line.
#[derive(Args)]
pub struct AuditorToken {
    /// The auditor's secret token (as printed by `carrel tokens add --role auditor`).
    #[arg(long, env = "CARREL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Refused: a token id proves nothing; give the secret token with --token.
    #[arg(long, hide = true)]
    by: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StudyLanguage {
    /// A crate on components/study-sdk, built with cargo.
    Rust,
    /// `app.py` on sdk/python, built with componentize-py.
    Python,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ResultFormat {
    Csv,
    Arrow,
    /// A fitted logistic regression (a `model-fit` run) as an ONNX model.
    Onnx,
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

pub fn run(args: StudyArgs) -> anyhow::Result<ExitCode> {
    // Scaffolding needs no loadable manifest (it may be the first study of a new one).
    if let StudyCommand::New {
        name,
        lang,
        dir,
        no_manifest,
        template,
        ..
    } = &args.command
    {
        // A template section runs a shipped component: there is no code, in any language.
        if template.is_some() {
            return new::model_eval(name, &args.from, !no_manifest);
        }
        let options = carrel_warehouse::study::scaffold::ScaffoldOptions {
            name: name.clone(),
            dir: dir.clone(),
            manifest: args.from.clone(),
            add_to_manifest: !no_manifest,
        };
        return match lang {
            StudyLanguage::Rust => new::rust(&options),
            StudyLanguage::Python => new::python(&options),
        };
    }
    let manifest = carrel_warehouse::manifest::load(&args.from)?;
    let specs = study_specs(&manifest)?;
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| carrel_warehouse::state_dir::beside_loaded(&manifest));
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
        let cache = state_dir.join("cache");
        let (record, released) =
            runtime.block_on(try_study(spec, &warehouse, params.clone(), Some(&cache)))?;
        print_record(&record);
        if let Some(bytes) = released {
            print_table(&bytes, 20)?;
        }
        return Ok(exit_code(record.status));
    }
    // Owners live in the catalog: no master key needed, and `carrel up` may be running.
    let command = match args.command {
        StudyCommand::Owners { command } => {
            owners(&state_dir, command)?;
            return Ok(ExitCode::SUCCESS);
        }
        other => other,
    };
    let settings =
        carrel_warehouse::app::WarehouseSettings::load(args.runtime_config_file.as_deref())?;
    let operator_policy = settings.disclosure;
    let vault = Vault::open(&state_dir, &MasterKeyEnv::from_process()).with_context(|| {
        format!(
            "cannot open the warehouse in {} (is `carrel up` running on it? then use /api/studies)",
            state_dir.display()
        )
    })?;
    let audit = Arc::new(AuditLog::open(&state_dir)?);
    let vault = Arc::new(vault);
    // Runs leave out the rows of patients who objected and rows past retention.
    let rights = carrel_warehouse::patients::PatientRights::open(
        vault.clone(),
        &state_dir,
        settings.patients,
    )?;
    let desk = StudyService::new(specs, vault, audit, &state_dir, operator_policy)?
        .with_rights(Arc::new(rights));
    match command {
        StudyCommand::List { json } => {
            let listing = desk.list()?;
            if json {
                println!("{}", terminal_json(&listing)?);
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
                        terminal_safe(&s.title),
                        terminal_safe(&s.principal_investigator)
                    );
                    if !s.owners.is_empty() {
                        println!("    owned by {}", terminal_safe(&s.owners.join(", ")));
                    }
                }
            }
        }
        StudyCommand::Submit { id, by } => {
            let who = researcher(&state_dir, by.as_deref())?;
            let s = runtime.block_on(desk.submit(&id, &who))?;
            println!(
                "Submitted {id} as {}: wasm sha256 {}, manifest sha256 {}. An auditor approves it with `carrel study approve {id} --token <auditor's token>`.",
                who.actor(),
                s.wasm_sha256,
                s.manifest_sha256
            );
        }
        StudyCommand::Approve { id, auditor: a } => {
            let who = auditor_of(&state_dir, a)?;
            let s = desk.approve(&id, &who)?;
            println!(
                "Approved {id} for wasm sha256 {} and manifest sha256 {}. {}",
                s.wasm_sha256,
                s.manifest_sha256,
                recorded_as(&who)
            );
        }
        StudyCommand::Revoke { id, auditor: a } => {
            let who = auditor_of(&state_dir, a)?;
            desk.revoke(&id, &who)?;
            println!("Revoked {id}. {}", recorded_as(&who));
        }
        StudyCommand::Run {
            id,
            params,
            by,
            json,
        } => {
            let who = researcher(&state_dir, by.as_deref())?;
            let progress = Arc::new(RunProgress::default());
            let observer: Arc<dyn ReadObserver> = progress.clone();
            let run = desk.run_observed(&id, params, &who, Some(observer));
            let (record, seq) = runtime.block_on(run)?;
            progress.finish();
            let view = record.for_researcher();
            if json {
                println!("{}", terminal_json(&view)?);
                return Ok(exit_code(view.status));
            }
            print_view(&view);
            println!("audit entry {seq}");
            if let Some(bytes) = desk.registry.result(&record.run_id)? {
                print_table(&bytes, 20)?;
            }
            return Ok(exit_code(view.status));
        }
        StudyCommand::Runs { id, by, json } => {
            let who = researcher(&state_dir, by.as_deref())?;
            let runs: Vec<_> = desk
                .registry
                .runs_for(&who, id.as_deref())?
                .iter()
                .map(|r| r.for_researcher())
                .collect();
            if json {
                println!("{}", terminal_json(&runs)?);
            } else {
                runs.iter().for_each(print_view_line);
            }
        }
        StudyCommand::Show { run_id, by, json } => {
            let who = researcher(&state_dir, by.as_deref())?;
            let view = desk.registry.run_for(&who, &run_id)?.for_researcher();
            if json {
                println!("{}", terminal_json(&view)?);
            } else {
                print_view(&view);
            }
        }
        StudyCommand::Results {
            run_id,
            format,
            out,
            by,
        } => {
            let who = researcher(&state_dir, by.as_deref())?;
            let record = desk.registry.run_for(&who, &run_id)?.for_researcher();
            let bytes = desk.registry.result(&run_id)?.ok_or_else(|| {
                anyhow!(
                    "run {run_id} released nothing ({})",
                    record
                        .researcher_error
                        .as_deref()
                        .unwrap_or(record.status.as_str())
                )
            })?;
            let rendered = match format {
                ResultFormat::Arrow => bytes,
                ResultFormat::Csv => carrel_warehouse::download_formats::to_csv(&bytes)?,
                ResultFormat::Onnx => {
                    carrel_warehouse::download_formats::to_onnx(&bytes, &record.model_report)?
                }
            };
            match out {
                Some(path) => std::fs::write(&path, rendered)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => {
                    use std::io::{IsTerminal, Write};
                    let mut stdout = std::io::stdout();
                    if stdout.is_terminal() {
                        // Cells hold what associations sent: nothing in them may act on
                        // the terminal.
                        let text = match format {
                            ResultFormat::Csv => String::from_utf8_lossy(&rendered).into_owned(),
                            ResultFormat::Arrow | ResultFormat::Onnx => anyhow::bail!(
                                "this format is binary: write it to a file (--out FILE) or a pipe"
                            ),
                        };
                        stdout.write_all(terminal_lines(&text).as_bytes())?;
                    } else {
                        stdout.write_all(&rendered)?;
                    }
                }
            }
        }
        StudyCommand::Try { .. } | StudyCommand::New { .. } | StudyCommand::Owners { .. } => {
            unreachable!("handled above")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn auditor_of(
    state_dir: &std::path::Path,
    token: AuditorToken,
) -> anyhow::Result<carrel_warehouse::study::Caller> {
    if token.by.is_some() {
        bail!(
            "an approval or revocation proves the auditor with their secret token: pass it with --token (or CARREL_TOKEN), not a token id with --by"
        );
    }
    auditor(state_dir, token.token.as_deref())
}
