//! Times the generator: `cargo run --release -p carrel-synth --example synth_throughput --
//! [consultations] [out_dir]` (defaults: 1,000,000 into a temporary folder).

use std::time::Instant;

use carrel_synth::{SynthOptions, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let consultations = match args.next() {
        Some(text) => text.parse()?,
        None => 1_000_000,
    };
    let temporary = tempfile::tempdir()?;
    let out_dir = args
        .next()
        .map_or_else(|| temporary.path().to_owned(), Into::into);
    let options = SynthOptions {
        consultations,
        ..SynthOptions::default()
    };
    let started = Instant::now();
    let truth = generate(&options, &out_dir, &mut |_| {})?;
    let elapsed = started.elapsed();
    let bytes: u64 = std::fs::read_dir(&out_dir)?
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    println!(
        "{} consultations in {} files ({} MB) in {:.2} s",
        truth.consultations,
        truth.files.len(),
        bytes / 1_000_000,
        elapsed.as_secs_f64()
    );
    Ok(())
}
