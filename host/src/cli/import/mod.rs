//! `carrel import`: FHIR files sent through the ingestion path as one association.

pub mod send;

use super::ManifestArg;
use carrel_warehouse::app::AppOptions;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// State directory; default `.spin` next to the manifest.
    #[arg(long, env = carrel_warehouse::state_dir::ENV)]
    pub state_dir: Option<PathBuf>,
    /// The association the consultations come from (stamped on every row).
    #[arg(long)]
    pub association: String,
    /// Files, or directories whose .ndjson and .json files are sent in name order.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let payloads = send::collect_payloads(&args.paths)?;
    let mut options = AppOptions::new(&args.manifest.from);
    options.state_dir = args.state_dir;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let summary = runtime.block_on(send::import(&options, &args.association, &payloads))?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "Imported {} rows in {} requests in {seconds:.1} s ({:.0} rows/s); {} already imported, {} refused.",
        summary.rows,
        summary.files,
        summary.rows as f64 / seconds.max(1e-3),
        summary.replayed_files,
        summary.refused.len()
    );
    if summary.withheld > 0 {
        println!(
            "{} consultations withheld: their patients objected.",
            summary.withheld
        );
    }
    for (file, why) in &summary.refused {
        println!("refused {}: {why}", file.display());
    }
    Ok(if summary.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
