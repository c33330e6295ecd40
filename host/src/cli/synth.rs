//! `carrel synth`: synthetic out-of-hours consultations as FHIR, with their ground truth.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct SynthArgs {
    /// Number of consultations (Encounters), faulty ones included.
    #[arg(long, default_value_t = 10_000)]
    pub consultations: u64,
    /// Seed: the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: SynthFormatArg,
    /// Fraction of records made invalid (written to separate faulty-*.ndjson files).
    #[arg(long, default_value_t = 0.0)]
    pub faults: f64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SynthFormatArg {
    Ndjson,
    Bundle,
}

pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let options = carrel_synth::SynthOptions {
        consultations: args.consultations,
        seed: args.seed,
        format: match args.format {
            SynthFormatArg::Ndjson => carrel_synth::SynthFormat::Ndjson,
            SynthFormatArg::Bundle => carrel_synth::SynthFormat::Bundle,
        },
        faults: args.faults,
        ..Default::default()
    };
    let progress = carrel_warehouse::progress::Progress::new("synth", args.consultations);
    let mut done = 0;
    let started = std::time::Instant::now();
    let truth = carrel_synth::generate(&options, &args.out, &mut |n| {
        let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-3);
        progress.advance(n - done, &format!("{n} consultations, {rate:.0}/s"));
        done = n;
    })?;
    progress.finish();
    println!(
        "Wrote {} valid and {} faulty consultations in {} files to {} ({:.1} s); ground truth in {}",
        truth.consultations,
        truth.faulty,
        truth.files.len() + truth.faulty_files.len(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.join(carrel_synth::GROUND_TRUTH_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}
