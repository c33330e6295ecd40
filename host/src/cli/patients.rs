//! `carrel patients object` and `carrel retention apply`: the operator's commands. They
//! open the state directory themselves (stop `carrel up` first; while it runs, an
//! association's client sends a Consent to `/ingest/fhir`), and finish with a pass that
//! removes what must go, with a progress bar.

use anyhow::{Context, bail};
use carrel_fhir::IdentifiedPatient;
use carrel_vault::{MasterKeyEnv, PurgeProgress, Vault};
use carrel_warehouse::patients::objections::Channel;
use carrel_warehouse::patients::pass::PassReport;
use carrel_warehouse::patients::{PatientRights, PatientsConfig};
use carrel_warehouse::progress::Progress;
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

#[derive(Args)]
pub struct StateArgs {
    #[command(flatten)]
    pub location: carrel_warehouse::state_dir::StateLocation,
    /// Runtime configuration with the `[patients]` table (retention period).
    #[arg(long, global = true)]
    pub runtime_config_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct PatientsArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(subcommand)]
    pub command: PatientsCommand,
}

#[derive(Subcommand)]
pub enum PatientsCommand {
    /// Register a patient's objection, then remove their stored consultations. Only the
    /// keyed hashes of the identifiers are kept; nothing printed or audited names them.
    Object(ObjectArgs),
    /// Remove the stored consultations of patients who objected (and those past
    /// retention), or finish a pass that was interrupted.
    Apply,
}

#[derive(Args)]
pub struct ObjectArgs {
    /// The patient's NIR (spaces allowed).
    #[arg(long)]
    pub nir: Option<String>,
    /// Family name, as the associations send it (with --given and --birth-date).
    #[arg(long)]
    pub family: Option<String>,
    /// First given name.
    #[arg(long)]
    pub given: Option<String>,
    /// Birth date, YYYY-MM-DD.
    #[arg(long)]
    pub birth_date: Option<String>,
    /// FHIR administrative gender: female, male, other, unknown.
    #[arg(long)]
    pub sex: Option<String>,
    /// A FHIR Consent with a deny provision (JSON file, `-` for standard input) instead
    /// of the options above.
    #[arg(long, conflicts_with_all = ["nir", "family", "given", "birth_date", "sex"])]
    pub consent: Option<PathBuf>,
}

#[derive(Args)]
pub struct RetentionArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(subcommand)]
    pub command: RetentionCommand,
}

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Remove the consultations older than the retention period of the runtime config
    /// (and those of patients who objected, if a pass has not yet removed them).
    Apply,
}

fn open(state: &StateArgs) -> anyhow::Result<PatientRights> {
    let config =
        carrel_warehouse::app::WarehouseSettings::load(state.runtime_config_file.as_deref())?
            .patients;
    open_with(&state.location.resolve(), config)
}

fn open_with(state_dir: &Path, config: PatientsConfig) -> anyhow::Result<PatientRights> {
    let vault = Vault::open(state_dir, &MasterKeyEnv::from_process()).with_context(|| {
        format!(
            "cannot open the warehouse in {} (is `carrel up` running on it? then send a Consent to /ingest/fhir)",
            state_dir.display()
        )
    })?;
    Ok(PatientRights::open(Arc::new(vault), state_dir, config)?)
}

pub fn patients(args: PatientsArgs) -> anyhow::Result<()> {
    match args.command {
        PatientsCommand::Object(object) => {
            let patient = identified(&object)?;
            let rights = open(&args.state)?;
            let registered = rights
                .object(
                    &patient,
                    carrel_vault::cli::OPERATOR_ACTOR,
                    Channel::Operator,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "Objection registered: {} pseudonym(s) newly registered (audit entry #{}); no identifier is kept.",
                registered.newly_registered, registered.audit_seq
            );
            print_pass(&pass_with_bar(&rights)?);
        }
        PatientsCommand::Apply => print_pass(&pass_with_bar(&open(&args.state)?)?),
    }
    Ok(())
}

pub fn retention(args: RetentionArgs) -> anyhow::Result<()> {
    match args.command {
        RetentionCommand::Apply => {
            let rights = open(&args.state)?;
            if rights.config.retention_days.is_none() {
                bail!(
                    "no retention period: set `retention_days` in the [patients] table of the runtime config (--runtime-config-file)"
                );
            }
            print_pass(&pass_with_bar(&rights)?);
        }
    }
    Ok(())
}

fn identified(args: &ObjectArgs) -> anyhow::Result<IdentifiedPatient> {
    let Some(path) = &args.consent else {
        if args.nir.is_none() && args.family.is_none() && args.given.is_none() {
            bail!(
                "name the patient: --nir, or --family, --given and --birth-date, or --consent FILE"
            );
        }
        return Ok(IdentifiedPatient {
            nir: args.nir.clone(),
            family: args.family.clone(),
            given: args.given.clone(),
            birth_date: args.birth_date.clone(),
            sex: args.sex.clone(),
            ..Default::default()
        });
    };
    let body = if path.as_os_str() == "-" {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)?;
        body
    } else {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    carrel_fhir::parse_objection(&body).map_err(|refusal| {
        let problems: Vec<String> = refusal.problems.iter().map(|p| p.to_string()).collect();
        anyhow::anyhow!(
            "{} is not an objection: {}",
            path.display(),
            problems.join("; ")
        )
    })
}

fn pass_with_bar(rights: &PatientRights) -> anyhow::Result<PassReport> {
    let bar: OnceLock<Progress> = OnceLock::new();
    let mut done = 0;
    let report = rights.run_pass(
        carrel_vault::cli::OPERATOR_ACTOR,
        &mut |step: PurgeProgress| {
            let progress = bar.get_or_init(|| Progress::new("removing rows", step.segments_total));
            // A continued pass starts a new count: the bar grows to take it.
            if step.segments_done == 1 && done > 0 {
                progress.grow(step.segments_total);
            }
            done += 1;
            progress.advance(
                1,
                &format!(
                    "{} of {} segments, {} rows removed",
                    step.segments_done, step.segments_total, step.rows_removed
                ),
            );
        },
    )?;
    if let Some(progress) = bar.get() {
        progress.finish();
    }
    Ok(report)
}

fn print_pass(report: &PassReport) {
    if report.rows_removed_total() == 0 && report.data_keys_destroyed == 0 {
        println!(
            "Nothing to remove: no stored consultation is past retention or of a patient who objected."
        );
        return;
    }
    let reasons: Vec<String> = report
        .rows_removed
        .iter()
        .map(|(reason, count)| format!("{reason}: {count}"))
        .collect();
    println!(
        "Removed {} consultations ({}): {} segments rewritten, {} removed, {} re-encrypted; {} data keys destroyed.",
        report.rows_removed_total(),
        if reasons.is_empty() {
            "none".to_owned()
        } else {
            reasons.join(", ")
        },
        report.segments_rewritten,
        report.segments_removed,
        report.segments_reencrypted,
        report.data_keys_destroyed
    );
}
