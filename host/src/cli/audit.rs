//! `carrel audit manifest|diff|log|checkpoint|runs|run`, beside the vault's
//! `carrel audit verify|export|head`: the reports of the warehouse's `audit_commands`,
//! printed as text or JSON.

use carrel_warehouse::audit_commands::{checkpoint, diff, inspect, log, render};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// `--state-dir`, else `.spin` beside the manifest of `-f` (the one rule of
    /// [`crate::state_dir`]); `-f` is also the manifest `audit manifest` reports on.
    #[command(flatten)]
    pub location: carrel_warehouse::state_dir::StateLocation,
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// What every component is granted, what its binary imports, and the difference:
    /// imports that will be denied, grants it cannot use. Approvals of studies.
    Manifest {
        /// Only this component.
        component: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// What changed between two `audit manifest --format json` reports: components,
    /// grants, imports, hashes. Exits 0 when identical, 1 when different, 2 on trouble.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Audit entries, one readable line each: seq, time, actor, action, subject, details.
    Log(log::LogArgs),
    /// Sign the audit head (seq, hash, time) with the host's Ed25519 key and print the
    /// checkpoint as JSON; keep it elsewhere to prove later that the log only grew.
    Checkpoint {
        /// Check a checkpoint instead: its signature, and that the log still has that
        /// entry with that hash (exits non-zero otherwise).
        #[arg(long, value_name = "FILE")]
        verify: Option<PathBuf>,
    },
    /// Study runs in full, newest first, as JSON: what a researcher is not shown (the
    /// study's log and error text, rows and segments read, names denied, locality check).
    Runs {
        /// Only this study's runs.
        study: Option<String>,
    },
    /// One study run in full, as JSON.
    Run { run_id: String },
    #[command(flatten)]
    Chain(carrel_vault::cli::AuditCommand),
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let state_dir = args.location.resolve();
    let mut out = std::io::stdout().lock();
    match args.command {
        AuditCommand::Manifest { component, format } => {
            let report = inspect::build(&inspect::ReportOptions {
                manifest: args.location.from.clone(),
                component,
                state_dir: args.location.state_dir.clone(),
            })?;
            match format {
                OutputFormat::Text => render::text(&report, &mut out)?,
                OutputFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &report)?;
                    writeln!(out)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Diff { old, new, format } => {
            let reports = diff::read(&old).and_then(|o| Ok((o, diff::read(&new)?)));
            let (old, new) = match reports {
                Ok(reports) => reports,
                Err(e) => {
                    eprintln!("Error: {e:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            let changes = diff::diff(&old, &new);
            match format {
                OutputFormat::Text => diff::text(&changes, &mut out)?,
                OutputFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &changes)?;
                    writeln!(out)?;
                }
            }
            Ok(if changes.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::Log(filters) => print_log(&state_dir, &filters, &mut out),
        AuditCommand::Checkpoint { verify: None } => {
            let signed = checkpoint::create(&state_dir)?;
            serde_json::to_writer_pretty(&mut out, &signed)?;
            writeln!(out)?;
            Ok(ExitCode::SUCCESS)
        }
        // Prints `OK: …` or `FAILED: …` and exits accordingly.
        AuditCommand::Checkpoint { verify: Some(file) } => {
            let signed = checkpoint::read(&file)?;
            match checkpoint::check(&state_dir, &signed)? {
                Ok(message) => {
                    writeln!(out, "OK: {message}")?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(problem) => {
                    writeln!(out, "FAILED: {problem}")?;
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        // Run records hold what studies wrote: printed with control characters escaped.
        AuditCommand::Runs { study } => {
            let registry = carrel_warehouse::study::StudyRegistry::open(&state_dir)?;
            let runs = registry.runs(study.as_deref())?;
            writeln!(
                out,
                "{}",
                carrel_warehouse::study::metadata::terminal_json(&runs)?
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Run { run_id } => {
            let registry = carrel_warehouse::study::StudyRegistry::open(&state_dir)?;
            let run = registry.run(&run_id)?;
            writeln!(
                out,
                "{}",
                carrel_warehouse::study::metadata::terminal_json(&run)?
            )?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Chain(command) => {
            let bar = carrel_warehouse::progress::SegmentBar::new("checking segments");
            let code = command.run_with_progress(&state_dir, &mut out, &mut |step| {
                bar.update(step.segments_done, step.segments_total, step.bytes)
            });
            bar.finish();
            Ok(code?)
        }
    }
}

/// `carrel audit log`: the entries the filters select, one readable line each.
fn print_log(
    state_dir: &std::path::Path,
    args: &log::LogArgs,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let log = carrel_vault::AuditLog::open(state_dir)
        .with_context(|| format!("opening the audit log in {}", state_dir.display()))?;
    let entries = log.entries(0)?;
    let total = entries.len();
    let selected = args.select(entries);
    for entry in &selected {
        writeln!(out, "{}", log::line(entry))?;
    }
    if selected.is_empty() {
        eprintln!("no entry matches (the log has {total})");
    }
    Ok(ExitCode::SUCCESS)
}
