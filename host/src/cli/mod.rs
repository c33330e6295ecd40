//! The subcommands of `carrel`, one module each where the binary does more than hand the
//! arguments to the library that serves them.

mod audit;
mod build;
mod demo;
mod import;
mod keys;
mod patients;
mod study;
mod synth;
mod table_print;
mod tokens;
mod up;
mod watch;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// carrel: a health data warehouse on a Spin-compatible WebAssembly host.
#[derive(Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// A warehouse with two winters of synthetic data, approved studies and demo tokens,
    /// served: the first command to run.
    Demo(demo::DemoArgs),
    /// Serve a Spin application (`spin.toml`).
    Up(up::UpArgs),
    /// Run every component's build command, like `spin build`.
    Build(build::BuildArgs),
    /// Rebuild components when their `watch` files change and restart serving, like
    /// `spin watch`.
    Watch(watch::WatchArgs),
    /// Manage the master key and data keys of the state directory.
    Keys {
        #[command(flatten)]
        state: carrel_warehouse::state_dir::StateLocation,
        #[command(subcommand)]
        command: carrel_vault::cli::KeysCommand,
    },
    /// Create, list and revoke bearer tokens (ingestion clients, researchers, auditors).
    Tokens {
        #[command(flatten)]
        state: carrel_warehouse::state_dir::StateLocation,
        #[command(subcommand)]
        command: tokens::TokensCommand,
    },
    /// Send FHIR files (NDJSON or Bundles) through the ingestion path as one association.
    /// Starts the app in-process; stop `carrel up` on the same state directory first.
    Import(import::ImportArgs),
    /// Write synthetic out-of-hours consultations as FHIR, with their ground truth.
    Synth(synth::SynthArgs),
    /// Submit, approve, revoke, run and try studies; download their released results.
    Study(study::StudyArgs),
    /// What each component may do and what its binary imports; the hash-chained audit
    /// log: verify, export, read, sign checkpoints.
    Audit(audit::AuditArgs),
    /// Patients' objections: register one and remove the patient's stored consultations.
    Patients(patients::PatientsArgs),
    /// The retention period: remove the consultations older than it.
    Retention(patients::RetentionArgs),
}

#[derive(Args)]
pub struct ManifestArg {
    /// The application manifest.
    #[arg(short = 'f', long = "from", default_value = "spin.toml")]
    pub from: PathBuf,
}

/// Runs one subcommand.
pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Build(args) => build::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Watch(args) => watch::run(args).map(|()| ExitCode::SUCCESS),
        Command::Up(args) => up::run(args).map(|()| ExitCode::SUCCESS),
        Command::Keys { state, command } => keys::run(&state.resolve(), command),
        Command::Import(args) => import::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Study(args) => study::run(args),
        Command::Tokens { state, command } => tokens::run(&state.resolve(), command),
        Command::Audit(args) => audit::run(args),
        Command::Patients(args) => patients::patients(args).map(|()| ExitCode::SUCCESS),
        Command::Retention(args) => patients::retention(args).map(|()| ExitCode::SUCCESS),
    }
}
